"""Gradients of tied (shared) parameters, one contribution per use, computed exactly.

A shared layer is one module at several positions, so its weight receives a gradient from every place it is
used and autograd adds them into one `.grad`. `tied_gradients` shows the parts of that sum: in a diagnostic
forward pass each call of a module that holds a shared parameter sees its own copy of it (`p.clone()`, a
separate node of the autograd graph), and `torch.autograd.grad` returns d loss / d copy for every copy. Those
are the per-use contributions; an independent ordinary backward gives the `.grad` they must add up to.

Both passes run on deep copies of the caller's network (under the same seed, so Dropout draws the same
masks), so its weights, `.grad`, buffers (BatchNorm running statistics), train/eval mode and device are
never touched.

The batches and losses a page offers are here too, as pure functions of the design and a seed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.parameter import is_lazy

from .build import example_input
from .design import Block, Design, Layer, Use
from .errors import DesignError, first_line
from .flow import FlowModule, PlainVisitor

# -- batches and losses -------------------------------------------------------------------------------

BATCHES: dict[str, str] = {
    "example": "the example input (the dry run's batch): torch.randn with seed 0",
    "random": "random data of the same shape: torch.rand (uniform in [0, 1), as the chapter's X) with the seed",
}

LOSSES: dict[str, str] = {
    "sum": "the sum of all outputs: not an error measure (it can be negative), just one number to differentiate",
    "mse": "mean squared error against a random target",
    "cross_entropy": "cross-entropy against random class labels",
}
LOSS_NAMES: dict[str, str] = {  # what the number is called where it is shown
    "sum": "Sum of the outputs",
    "mse": "MSE loss",
    "cross_entropy": "Cross-entropy loss",
}


def make_batch(
    design: Design, source: str = "example", seed: int = 0, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """A batch of the design's input shape.

    source "example": `example_input(design)` (torch.randn, seed 0), the batch the dry run used; "random":
    uniform data in [0, 1) drawn with `seed` (the chapter's `torch.rand`; so never the example batch, even
    with seed 0), or for int64 inputs (Embedding) random indices below the smallest `num_embeddings`.
    `check_code` writes the same recipe as plain PyTorch.
    """
    if source not in BATCHES:
        raise DesignError(f"batch must be one of {', '.join(map(repr, BATCHES))}, got {source!r}")
    if source == "example":
        return example_input(design, device=device)
    gen = torch.Generator().manual_seed(int(seed))
    if design.input_dtype == "int64":
        high = min(_embedding_sizes(design), default=1)
        return torch.randint(0, high, design.input_shape, generator=gen).to(device)
    return torch.rand(design.input_shape, generator=gen).to(device)


def _embedding_sizes(design: Design) -> Iterator[int]:
    nodes = [*design.shared.values(), *(n for _, _, n in design.walk())]
    for node in nodes:
        if isinstance(node, Block):
            nodes.extend(node.layers)
        elif isinstance(node, Layer) and node.type == "Embedding":
            yield int(node.args["num_embeddings"])


@dataclass(frozen=True, eq=False)
class Loss:
    """A scalar loss of the network's output; random targets are drawn once, so every call agrees."""

    kind: str  # a key of LOSSES
    output_shape: tuple[int, ...]
    target: torch.Tensor | None = None  # MSE: a float tensor of output_shape; cross-entropy: class indices

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        if tuple(output.shape) != self.output_shape:
            raise DesignError(f"the loss expects an output of shape {self.output_shape}, got {tuple(output.shape)}")
        if not output.is_floating_point():
            raise DesignError(f"the loss needs a floating-point output, got {str(output.dtype).removeprefix('torch.')}")
        if self.kind == "sum":
            return output.sum()
        assert self.target is not None
        target = self.target.to(output.device)
        if self.kind == "mse":
            return F.mse_loss(output, target.to(output.dtype))
        return F.cross_entropy(output, target)

    def describe(self) -> str:
        return LOSSES[self.kind]

    @property
    def name(self) -> str:
        """What the number is called: "Sum of the outputs", "MSE loss", "Cross-entropy loss"."""
        return LOSS_NAMES[self.kind]


def make_loss(kind: str, output_shape: Sequence[int], seed: int = 0) -> Loss:
    """The loss `kind` (a key of LOSSES) for outputs of `output_shape`, random targets drawn with `seed`.

    cross_entropy reads the output as class scores: (C,), (N, C) or (N, C, d1, ...) with C >= 2 classes,
    as torch.nn.functional.cross_entropy does, and draws labels of shape (), (N,) or (N, d1, ...).
    """
    shape = tuple(int(s) for s in output_shape)
    if kind not in LOSSES:
        raise DesignError(f"loss must be one of {', '.join(map(repr, LOSSES))}, got {kind!r}")
    gen = torch.Generator().manual_seed(int(seed))
    if kind == "sum":
        return Loss(kind, shape)
    if kind == "mse":
        return Loss(kind, shape, torch.randn(shape, generator=gen))
    classes = shape[0] if len(shape) == 1 else (shape[1] if len(shape) >= 2 else 0)
    if classes < 2:
        raise DesignError(
            f"cross-entropy reads the output {shape} as class scores (batch, classes, ...) and "
            f"needs at least 2 classes, but it has {classes}. Choose the sum or MSE loss, or end "
            f"the network with a layer of 2 or more outputs."
        )
    label_shape = () if len(shape) == 1 else (shape[0], *shape[2:])
    return Loss(kind, shape, torch.randint(0, classes, label_shape, generator=gen))


# -- per-use gradients --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SharedGradient(Sequence[torch.Tensor]):
    """The gradient of one shared parameter, split by use. As a sequence: the per-use tensors, in order.

    All tensors are detached CPU copies with the parameter's shape.
    """

    name: str  # its first state_dict key, e.g. "2.weight"
    keys: tuple[str, ...]  # every state_dict key that holds this very tensor, e.g. ("2.weight", "4.weight")
    where: tuple[str, ...]  # the module position of each use in forward order ("2", "4"), or "use 3"
    uses: tuple[torch.Tensor, ...]  # d loss / d parameter through each use alone, in forward order
    total: torch.Tensor  # the sum of the uses
    grad: torch.Tensor  # .grad after an ordinary backward of the same loss
    max_abs_diff: float  # max |total - grad|: zero up to float rounding
    # per use: why its gradient is exactly 0 at `largest_entry()` (the entry the table shows), else None
    zero_notes: tuple[str | None, ...] = ()

    def __getitem__(self, i: int) -> torch.Tensor:  # type: ignore[override]
        return self.uses[i]

    @property
    def agrees(self) -> bool:
        """Whether the sum of the uses equals .grad up to float rounding (relative to .grad's largest entry)."""
        return self.max_abs_diff <= 1e-5 * max(1.0, float(self.grad.abs().max()))

    def __len__(self) -> int:
        return len(self.uses)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.grad.shape)

    def table(self) -> pd.DataFrame:
        """One row per use, then their sum and the ordinary .grad.

        Columns: the entry where |.grad| is largest (e.g. "entry (2, 3)") and the sum of all entries, which
        add up across the uses as the gradients do, then the norm, which does not (‖a + b‖ ≤ ‖a‖ + ‖b‖).
        """
        index = self.largest_entry()
        label = "entry " + (str(index) if len(index) != 1 else f"({index[0]})")
        rows = [
            (f"use {i + 1} (at {w})" if not w.startswith("use ") else w, g)
            for i, (w, g) in enumerate(zip(self.where, self.uses, strict=True))
        ]
        rows += [("sum of the uses", self.total), (".grad (ordinary backward)", self.grad)]
        frame = pd.DataFrame(
            [
                {
                    "gradient": label_,
                    label: float(g[index]) if g.numel() else 0.0,
                    "sum of entries": float(g.sum()),
                    "norm": float(g.norm()),
                }
                for label_, g in rows
            ]
        )
        if any(self.zero_notes):
            frame["why 0"] = [*(n or "" for n in self.zero_notes), "", ""]
        return frame

    def largest_entry(self) -> tuple[int, ...]:
        """The index of the entry of .grad with the largest absolute value (the first one on ties)."""
        if self.grad.numel() == 0:
            return ()
        flat = int(self.grad.abs().flatten().argmax())
        return tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), self.grad.shape))


@dataclass(frozen=True, eq=False)
class TiedGradients(Mapping[str, SharedGradient]):
    """What one forward and backward gave. As a mapping: shared parameter name -> its SharedGradient."""

    loss: float
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    training: bool  # whether the top module ran in train mode (Dropout on, BatchNorm batch statistics)
    shared: Mapping[str, SharedGradient]  # in state_dict order
    grads: Mapping[str, torch.Tensor]  # ordinary .grad of every trainable parameter by first key (zeros if unused)
    # every state_dict key of each parameter (named so as not to hide Mapping.keys())
    tied_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> SharedGradient:
        return self.shared[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.shared)

    def __len__(self) -> int:
        return len(self.shared)

    def norms(self) -> pd.DataFrame:
        """One row per trainable parameter (tied ones once): key, shape, gradient norm, uses, tied keys."""
        return pd.DataFrame(
            [
                {
                    "parameter": name,
                    "shape": str(tuple(g.shape)),
                    "grad norm": float(g.norm()),
                    "uses": len(self.shared[name]) if name in self.shared else 1,
                    "tied_with": ", ".join(self.tied_keys.get(name, (name,))[1:]),
                }
                for name, g in self.grads.items()
            ],
            columns=["parameter", "shape", "grad norm", "uses", "tied_with"],
        )


def tied_gradients(
    net: nn.Module,
    x: torch.Tensor,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    *,
    train: bool | None = None,
    seed: int = 0,
) -> TiedGradients:
    """Split the gradient of every shared parameter of `net` into one exact contribution per use.

    Args:
        net: a built network; a parameter is shared when the state_dict lists it under several keys (one
            module at several positions, or one tensor assigned to several modules). It is left exactly as
            it was: weights, .grad, buffers, train/eval mode and device.
        x: the input batch; moved to the network's device.
        loss_fn: output -> scalar tensor (e.g. `make_loss(...)`).
        train: run in train mode (True), eval mode (False), or in the modes the network has now (None).
        seed: the random seed of both passes, so Dropout masks agree between them.

    Returns a TiedGradients: a mapping from each shared parameter's first state_dict key (e.g. "2.weight")
    to its SharedGradient (the per-use tensors in forward order, their sum, the ordinary .grad and the largest
    absolute difference), plus the loss and the ordinary .grad of every parameter.

    Raises DesignError when the network still has lazy (uninitialized) parameters, cannot take `x`, or the
    loss is not a scalar.
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"tied_gradients expects a torch.nn.Module, got {type(net).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"tied_gradients expects the input as a tensor, got {type(x).__name__}")
    if any(is_lazy(t) for t in (*net.parameters(), *net.buffers())):
        raise DesignError(
            "the network has lazy parameters that are not initialized yet; run a dry run first (builder.build does it)"
        )
    keys = _keys_by_tensor(net)
    params = [p for p in net.parameters() if p.requires_grad]
    names = {id(p): keys[id(p)][0] for p in params}
    shared_ids = [id(p) for p in params if len(keys[id(p)]) > 1]
    device = next((t.device for t in (*net.parameters(), *net.buffers())), torch.device("cpu"))
    if device.type == "meta":
        raise DesignError(
            "the network is on the meta device, which holds shapes but no values; build it on a real "
            'device (builder.build(design, device="cpu")) to compute gradients'
        )
    x = x.to(device)

    # 1. The ordinary backward: what an optimizer would see in .grad.
    work = _copy(net, train)
    with _seeded(seed, device):
        loss, out = _forward(work, x, loss_fn)
        if loss.requires_grad:
            _backward(loss.backward)
    training = work.training
    work_params = dict(zip((id(p) for p in net.parameters()), work.parameters(), strict=True))
    grads = {names[i]: _cpu(work_params[i].grad, work_params[i]) for i in (id(p) for p in params)}
    loss_value, out_shape = float(loss.detach()), tuple(out.shape)
    del work, work_params, loss, out

    # 2. The diagnostic pass: every call of a module holding a shared parameter gets its own copy of it.
    shared: dict[str, SharedGradient] = {}
    if shared_ids:
        work = _copy(net, train)
        copies = dict(zip((id(p) for p in net.parameters()), work.parameters(), strict=True))
        target = {id(copies[i]): i for i in shared_ids}  # work's tensor -> the caller's parameter id
        recorder = _PerUse(work, target)
        try:
            with _seeded(seed, device):
                loss, _ = _forward(work, x, loss_fn)
        finally:
            recorder.remove()
        flat = [t for i in shared_ids for t in recorder.uses[i]]
        found = (
            _backward(lambda: torch.autograd.grad(loss, flat, allow_unused=True)) if flat and loss.requires_grad else ()
        )
        found_iter = iter(found)
        for i in shared_ids:
            name, where = names[i], tuple(p or "(top)" for p in recorder.positions[i])
            per_use = tuple(_cpu(next(found_iter, None), copies[i]) for _ in recorder.uses[i])
            total = torch.stack(per_use).sum(0) if per_use else torch.zeros_like(grads[name])
            diff = float((total - grads[name]).abs().max()) if total.numel() else 0.0
            sg = SharedGradient(name, tuple(keys[i]), where, per_use, total, grads[name], diff)
            index, attr = sg.largest_entry(), name.rpartition(".")[2]
            notes = tuple(
                _why_zero(call, attr, index) if index and float(g[index]) == 0.0 else None
                for call, g in zip(recorder.calls[i], per_use, strict=True)
            )
            shared[name] = dataclasses.replace(sg, zero_notes=notes) if any(notes) else sg
        del work, copies, recorder, loss
    shared = {k: shared[k] for k in sorted(shared, key=list(grads).index)}
    return TiedGradients(
        loss=loss_value,
        input_shape=tuple(x.shape),
        output_shape=out_shape,
        training=training,
        shared=shared,
        grads=grads,
        tied_keys={names[id(p)]: tuple(keys[id(p)]) for p in params},
    )


class _PerUse:
    """Forward hooks that give each call of a module its own copy (a clone) of the shared parameters it holds.

    The clone is a separate node of the autograd graph, so d loss / d clone is the gradient through that call
    alone; its gradient flows on into the one parameter, which therefore still receives the sum.
    """

    def __init__(self, net: nn.Module, target: Mapping[int, int]) -> None:
        self.uses: dict[int, list[torch.Tensor]] = {i: [] for i in target.values()}
        # per call, beside each use: the module, its input and (after backward) the gradient at its output
        self.calls: dict[int, list[_Call]] = {i: [] for i in target.values()}
        # per use, the module key it was called at: a flow may call children in any order, or one child twice
        self.positions: dict[int, list[str]] = {i: [] for i in target.values()}
        self.stack: list[tuple[nn.Module, str, dict[int, int]]] = []  # (module, its key, calls of each inner one)
        self.called_as: str | None = None  # the key a flow is calling its next child by (_FlowKeys)
        self.handles = []
        self.flows = [m for m in net.modules() if isinstance(m, FlowModule)]
        for m in self.flows:
            m._flow_visitor = _FlowKeys(self)  # this deep copy only: the caller's network is never touched
        for module in net.modules():  # each module object once
            self.handles.append(module.register_forward_pre_hook(self._enter))  # before _pre: the key is known
            self.handles.append(module.register_forward_hook(self._leave, always_call=True))
            held = {n: target[id(p)] for n, p in module._parameters.items() if p is not None and id(p) in target}
            if held:
                self.handles.append(module.register_forward_pre_hook(self._pre(held)))
                self.handles.append(module.register_forward_hook(self._post(), always_call=True))

    def _pre(self, held: Mapping[str, int]) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            stack = module.__dict__.setdefault("_blockwork_saved", [])
            stack.append({n: module._parameters[n] for n in held})
            call = _Call(module, args[0].detach() if args and isinstance(args[0], torch.Tensor) else None)
            module.__dict__.setdefault("_blockwork_calls", []).append(call)
            for n, i in held.items():
                use = module._parameters[n].clone()  # type: ignore[union-attr]
                self.uses[i].append(use)
                self.positions[i].append(self.stack[-1][1] if self.stack else "")
                self.calls[i].append(call)
                module._parameters[n] = use  # type: ignore[assignment]  # read by forward as self.<n>

        return hook

    @staticmethod
    def _post() -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            module._parameters.update(module.__dict__["_blockwork_saved"].pop())
            call: _Call = module.__dict__["_blockwork_calls"].pop()
            if isinstance(output, torch.Tensor) and output.requires_grad:
                output.register_hook(call.keep_grad)  # type: ignore[no-untyped-call]

        return hook

    def _enter(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        """Push the key this call of `module` sits at: found under the calling module (its parent, or a deeper
        one, as a flow's "net.0"); a module registered at several keys there (a shared layer used twice in a
        Sequential) takes them in order, call by call."""
        if not self.stack:
            self.stack.append((module, "", {}))
            return
        parent, where, counts = self.stack[-1]
        if self.called_as is not None:  # a flow said which key it calls
            name, self.called_as = self.called_as, None
        else:
            names = [n for n, m in parent.named_modules(remove_duplicate=False) if m is module and n]
            k = counts[id(module)] = counts.get(id(module), -1) + 1
            name = names[k % len(names)] if names else "?"
        self.stack.append((module, f"{where}.{name}" if where else name, {}))

    def _leave(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if self.stack and self.stack[-1][0] is module:
            self.stack.pop()

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        for m in self.flows:
            del m._flow_visitor


class _FlowKeys(PlainVisitor):
    """Runs a flow as forward does, telling _PerUse the key of each child it calls (a shared layer registered
    as "left" and "right" is one object: only the flow knows which key it called)."""

    def __init__(self, recorder: _PerUse) -> None:
        self.recorder = recorder

    def call(self, path: str, step: tuple[Any, ...], module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        self.recorder.called_as = ".".join(step[1])
        return super().call(path, step, module, x)


@dataclass(eq=False)
class _Call:
    """One call of a module holding a shared parameter: its input and the gradient that reached its output."""

    module: nn.Module
    input: torch.Tensor | None
    output_grad: torch.Tensor | None = None

    def keep_grad(self, grad: torch.Tensor) -> None:
        self.output_grad = grad.detach()


def _why_zero(call: _Call, param: str, index: tuple[int, ...]) -> str:
    """Why a use's gradient is exactly 0 at `index` of its parameter `param` ("weight", "bias").

    For nn.Linear, weight.grad[i, j] = sum over samples of out_grad[n, i] * input[n, j]: it is 0 when input j is
    0 for every sample (the ReLU before this use is off there: a dead unit) or when output i receives no
    gradient (the ReLU after it is off for every sample).
    """
    g, x = call.output_grad, call.input
    if g is None or not bool(g.ne(0).any()):
        return "no gradient reaches this use's output (everything after it is cut off, e.g. by a ReLU that is off)"
    if isinstance(call.module, nn.Linear) and index:
        i = index[0]
        g2 = g.reshape(-1, g.shape[-1])
        after = g2[:, i].eq(0)  # per sample: output i gets no gradient (the ReLU after this use is off there)
        if bool(after.all()):
            return f"output {i} of this use gets no gradient: the ReLU after it is off (≤ 0) for every sample"
        if param == "weight" and len(index) == 2 and x is not None:
            j = index[1]
            before = x.reshape(-1, x.shape[-1])[:, j].eq(0)  # per sample: input j is 0 (the ReLU before is off)
            if bool(before.all()):
                return f"input {j} of this use is 0 for every sample: the ReLU before it is off there"
            if bool((after | before).all()):
                cut = [
                    f"sample {n}: " + (f"output {i} gets no gradient" if a else f"input {j} is 0")
                    for n, (a, b) in enumerate(zip(after.tolist(), before.tolist(), strict=True))
                ]
                return (
                    "a ReLU is off on the way in every sample ("
                    + "; ".join(cut[:4])
                    + ("; …)" if len(cut) > 4 else ")")
                )
    return "the samples' contributions cancel exactly"


def _keys_by_tensor(net: nn.Module) -> dict[int, list[str]]:
    """Every state_dict key of each parameter, by the parameter's identity (tied tensors share one id)."""
    params = {id(p) for p in net.parameters()}
    found: dict[int, list[str]] = {}
    for key, t in net.state_dict(keep_vars=True).items():  # keep_vars: the Parameter objects themselves
        if id(t) in params:
            found.setdefault(id(t), []).append(key)
    return found


def _copy(net: nn.Module, train: bool | None) -> nn.Module:
    work = copy.deepcopy(net)  # keeps tying: a shared module is still one object in the copy
    for p in work.parameters():
        p.grad = None
    if train is not None:
        work.train(train)
    return work


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(int(seed))
        yield


def _forward(
    net: nn.Module, x: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        out = net(x)
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        raise DesignError(f"the network cannot take an input of shape {tuple(x.shape)}: {first_line(e)}") from None
    if not isinstance(out, torch.Tensor):
        raise DesignError(f"the network returned {type(out).__name__}, not a tensor")
    try:
        loss = loss_fn(out)
    except DesignError:
        raise
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        raise DesignError(f"the loss cannot take the output of shape {tuple(out.shape)}: {first_line(e)}") from None
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise DesignError(f"the loss must be a single number (a scalar tensor), got {shape}")
    return loss.reshape(()), out


def _backward(step: Callable[[], Any]) -> Any:
    try:
        return step()
    except RuntimeError as e:  # e.g. out of memory on the device
        raise DesignError(f"the backward pass failed: {first_line(e)}") from None


def _cpu(t: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros(like.shape, dtype=like.dtype) if t is None else t.detach().to("cpu", copy=True)


# -- for drawing ------------------------------------------------------------------------------------------

HEATMAP_MAX_SIDE = 64  # a heatmap cell per value stays readable up to about this many rows or columns


def as_matrix(t: torch.Tensor) -> torch.Tensor | None:
    """The tensor as a 2-D matrix for a heatmap, or None when it is not small (or is a vector).

    A weight of shape (out, in, k, k) becomes (out, in·k·k), the way it multiplies the unfolded input.
    """
    if t.dim() < 2:
        return None
    m = t.reshape(t.shape[0], -1)
    return m if max(m.shape) <= HEATMAP_MAX_SIDE else None


def is_finite(result: TiedGradients) -> bool:
    """Whether the loss and every gradient are finite numbers (no inf or NaN)."""
    return math.isfinite(result.loss) and all(bool(torch.isfinite(g).all()) for g in result.grads.values())


# -- the same numbers in plain PyTorch --------------------------------------------------------------------


def check_code(
    design: Design, result: TiedGradients, source: str, seed: int, loss_kind: str, train: bool, weights_file: str
) -> str:
    """A standalone script that reproduces `result` (the page's numbers) in plain PyTorch: the design's code,
    the session's weights from `weights_file` (a .params download), the same batch (`make_batch`'s recipe),
    loss (`make_loss`'s), mode and seed; then every shared layer untied by giving each use but the first its
    own copy, so each use's gradient is an ordinary `.grad`. It prints what the page's tables show."""
    from .codegen import to_code  # codegen is a sibling; imported here to keep this module's imports light

    if source not in BATCHES:
        raise DesignError(f"batch must be one of {', '.join(map(repr, BATCHES))}, got {source!r}")
    if loss_kind not in LOSSES:
        raise DesignError(f"loss must be one of {', '.join(map(repr, LOSSES))}, got {loss_kind!r}")
    model = to_code(design).split('\nif __name__ == "__main__":')[0].rstrip()
    if model.startswith('"""'):  # the exported file's own docstring: this script has one
        model = model[model.index('"""', 3) + 3 :].lstrip()
    shape = tuple(design.input_shape)
    gen = f"generator=torch.Generator().manual_seed({int(seed)})"
    if source == "example":
        batch = (
            f"X = torch.zeros({shape}, dtype=torch.long)  # the example input: index 0 everywhere"
            if design.input_dtype == "int64"
            else f"X = torch.randn({shape}, generator=torch.Generator().manual_seed(0))  # the example input"
        )
    elif design.input_dtype == "int64":
        high = min(_embedding_sizes(design), default=1)
        batch = f"X = torch.randint(0, {high}, {shape}, {gen})  # random indices"
    else:
        batch = f"X = torch.rand({shape}, {gen})  # random data, uniform in [0, 1)"
    out_shape = tuple(result.output_shape)
    if loss_kind == "sum":
        loss = ["def loss_of(out):", "    return out.sum()  # the sum of the outputs: not an error measure"]
    elif loss_kind == "mse":
        loss = [
            f"target = torch.randn({out_shape}, {gen})",
            "",
            "",
            "def loss_of(out):",
            "    return F.mse_loss(out, target)",
        ]
    else:
        classes = out_shape[0] if len(out_shape) == 1 else out_shape[1]
        labels = () if len(out_shape) == 1 else (out_shape[0], *out_shape[2:])
        loss = [
            f"labels = torch.randint(0, {classes}, {labels}, {gen})",
            "",
            "",
            "def loss_of(out):",
            "    return F.cross_entropy(out, labels)",
        ]
    positional = {n: sg for n, sg in result.shared.items() if not any(w.startswith("use ") for w in sg.where)}
    # A use's position is that of the module holding the parameter ("3.0" inside a shared block used at "3"):
    # untie at the use of the shared layer itself, since a copy of a part would still sit in the one block.
    use_keys = {k for _, k, n in design.walk() if isinstance(n, Use)}

    def use_of(position: str) -> str:
        parts = position.split(".")
        prefixes = (".".join(parts[: n + 1]) for n in range(len(parts)))
        return next((p for p in prefixes if p in use_keys), position)

    untie = sorted({use_of(w) for sg in positional.values() for w in sg.where[1:]}, key=lambda w: (w.count("."), w))
    checks = [(n, list(sg.where), sg.largest_entry()) for n, sg in positional.items()]
    lines = [
        '"""The Gradients page in plain PyTorch: the same network, weights, batch, loss and seed, so the same',
        "numbers. Each shared layer is untied (every use but the first gets its own copy, same values), so each",
        'use\'s share of the gradient is an ordinary .grad; they add up to the tied network\'s .grad."""',
        "",
        "import copy",
        "",
        "import torch",
        "from torch.nn import functional as F",
        "",
        model,
        "",
        "",
        "net = make_model()",
        f"net.load_state_dict(torch.load({weights_file!r}, weights_only=True))  # the session's weights",
        f"net.{'train' if train else 'eval'}()  # the page's mode",
        batch,
        *loss,
        "",
        "",
        f"torch.manual_seed({int(seed)})  # the page's seed: the same Dropout masks in both passes",
        "loss = loss_of(net(X))",
        "loss.backward()",
        f'print(f"{LOSS_NAMES[loss_kind]}: {{loss.item():.5g}}")',
        "",
        "untied = copy.deepcopy(net)  # still tied: deepcopy keeps one module at every use",
        f"for position in {untie!r}:  # every use but the first: its own copy",
        "    untied.set_submodule(position, copy.deepcopy(untied.get_submodule(position)))",
        "untied.zero_grad()",
        f"torch.manual_seed({int(seed)})",
        "loss_of(untied(X)).backward()",
        "",
        "",
        "def show(label, g, index):",
        '    print(f"{label}: entry {index} {g[index].item():.5f}, sum of entries {g.sum().item():.5f}, "',
        '          f"norm {g.norm().item():.5f}")',
        "",
        "",
        f"for name, positions, index in {checks!r}:",
        '    attr = name.rpartition(".")[2]',
        "    uses = [getattr(untied.get_submodule(p), attr).grad for p in positions]",
        "    for i, (p, g) in enumerate(zip(positions, uses)):",
        '        show(f"{name} use {i + 1} (at {p})", g, index)',
        '    show(f"{name} sum of the uses", sum(uses), index)',
        '    show(f"{name} .grad", net.get_parameter(name).grad, index)',
    ]
    return "\n".join(lines) + "\n"
