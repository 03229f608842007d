"""Designs become torch.nn modules: first on the `meta` device (no memory), then for real.

`dry_run(design)` builds the network on `meta`, runs the example input through it layer by layer (which
materializes torch's Lazy* layers and records every output shape) and checks the budgets, all without
allocating a single weight. `build(design, device)` does the same, then gives the network real storage on
the device with `to_empty` and initializes every layer with its own `reset_parameters` — the same
initialization (and, under a seed, the same random stream) as constructing it by hand.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from .design import Block, Design, Layer, Node, Use, check_block, child_key, layer_type, resolve
from .errors import DesignError, first_line
from .flow import Call, CompiledStep, FlowModule, apply_merge, apply_op, compile_flow, invoke, merge_label, run
from .init import apply as apply_init
from .init import initialize
from .limits import Limits, limits
from .registry import BLOCK_TYPE, FLOW_TYPE, REGISTRY, ArgError, check_args, check_input

_TORCH_DTYPES = {"float32": torch.float32, "int64": torch.int64}


@dataclass(frozen=True)
class LayerRun:
    """What the dry run saw at one position of the network."""

    path: str  # where the node sits in the design, e.g. "layers[2]" or "shared.blk.layers[0]"
    key: str  # its name in the built module, e.g. "2" or "0.net.0" (state_dict key prefix)
    type: str  # registry type, "Sequential" for a block, "Module" for a block with a flow
    depth: int  # 0 for top-level layers
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    parameters: int  # parameters of this module and its children (a shared layer: at each of its uses)
    shared: str | None = None  # the shared layer this position uses (also set inside a shared block)
    inferred: Mapping[str, int] = field(default_factory=dict)  # lazy sizes torch inferred: {"in_features": 20}
    lazy: bool = False  # a Lazy* layer (before the dry run its `inferred` sizes are unknown)
    step: str | None = None  # the flow step that called it ("layers[1].flow[0].branches[0][2]"); None in a chain

    @property
    def is_block(self) -> bool:
        return self.type in (BLOCK_TYPE, FLOW_TYPE)


@dataclass(frozen=True)
class StepRun:
    """What the dry run saw at one step of a flow (builder.flow)."""

    path: str  # the step's design path, e.g. "layers[1].flow[0]"; a branch: "layers[1].flow[0].branches[1]"
    block: str  # module key of the block whose flow it is ("" for the design's top-level flow)
    kind: str  # "call" | "op" | "branch" (one branch's result) | "merge" (a branches step's joined result)
    label: str  # "conv1", "rnn[h]", "relu", "branch 1 (identity)", "cat dim=1", "+"
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    depth: int  # the depth of the block's children (as LayerRun.depth)
    shared: str | None = None  # set inside a shared block


@dataclass(frozen=True)
class DryRun:
    """Output shapes and parameter counts of a design, found on the meta device."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    layers: tuple[LayerRun, ...]  # every call of a node in forward order, blocks before their children
    parameters: int  # unique parameters: a shared layer counted once
    parameters_per_use: int  # a shared layer counted at every position that uses it
    # Every step of every flow, in the order run: a branches step's inner steps, then one "branch" record
    # per branch, then its "merge". Empty for a design without flows.
    steps: tuple[StepRun, ...] = ()

    def by_key(self) -> dict[str, LayerRun]:
        """The run of each module key; a child a flow calls several times: its first call."""
        out: dict[str, LayerRun] = {}
        for r in self.layers:
            out.setdefault(r.key, r)
        return out

    def by_step(self) -> dict[tuple[str, str], StepRun]:
        """Each flow step's run by (block key, step path); a shared flow block has one block key per use."""
        return {(r.block, r.path): r for r in self.steps}


def example_input(design: Design, device: str | torch.device = "cpu", seed: int | None = 0) -> torch.Tensor:
    """A batch of the design's input shape: standard normal floats, or zeros for int64 (valid indices)."""
    shape, dtype = design.input_shape, _TORCH_DTYPES[design.input_dtype]
    if torch.device(device).type == "meta":
        return torch.empty(shape, dtype=dtype, device="meta")
    if dtype == torch.int64:
        return torch.zeros(shape, dtype=dtype, device=device)
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    return torch.randn(shape, generator=gen).to(device)


def dry_run(design: Design) -> DryRun:
    """Infer every layer's output shape and the parameter counts without allocating memory.

    Raises DesignError (with `.path` at the layer at fault) when an input does not fit a layer, a layer's
    arguments are inconsistent (e.g. groups not dividing channels), or a budget is exceeded.
    """
    key = _run_key(design)
    with _RUNS_LOCK:
        if key in _RUNS:
            _RUNS.move_to_end(key)
            return _RUNS[key]
    return _remember(key, _MetaBuilder(design).run()[1])


# Dry runs are pure data (shapes and counts) determined by the design and the limits, so they are cached
# by exactly that: views of the same design (graph, tables, pages of every session) reuse one run.
_RUNS: OrderedDict[tuple[str, Limits], DryRun] = OrderedDict()
_RUNS_LOCK = threading.Lock()
_RUNS_MAX = 256


def _run_key(design: Design) -> tuple[str, Limits]:
    return design.to_json(indent=None), limits()


def _remember(key: tuple[str, Limits], run: DryRun) -> DryRun:
    with _RUNS_LOCK:
        _RUNS[key] = run
        while len(_RUNS) > _RUNS_MAX:
            _RUNS.popitem(last=False)
    return run


def build(design: Design, device: str | torch.device = "cpu", *, seed: int | None = None) -> nn.Module:
    """Build the design as an ordinary torch.nn.Module on `device`, its lazy layers already materialized.

    The top module is an nn.Sequential; blocks are nested nn.Sequentials; a block with a flow (and a top level
    with one) is a builder.flow.FlowModule; a shared layer is one module object at every position that uses
    it. With `seed` (else the design's own `seed`), weights are reproducible (and equal to hand-written
    construction under torch.manual_seed(seed) for designs without shared layers or init methods). The global
    RNG is left as it was when a seed is given. The design's `init` methods (builder.init) run after PyTorch's
    default initialization.
    """
    if not isinstance(design, Design):
        raise TypeError(f"build expects a Design, got {type(design).__name__}")
    key, target = _run_key(design), torch.device(device)
    with _RUNS_LOCK:
        known = key in _RUNS
    if known and (seed if seed is not None else design.seed) is None:
        # This design's meta dry run has passed (same limits): its sizes are known to fit, so torch's own
        # dry run can run on the device, far cheaper than meta kernels. Unseeded, construction's own
        # initialization is PyTorch's default, as by hand; only the statistics the dry run moved are reset.
        net = _MetaBuilder(design).materialize(target, keep_rng=False)
        for module in net.modules():
            reset_stats = getattr(module, "reset_running_stats", None)
            if reset_stats is not None:
                reset_stats()
        apply_init(net, design)  # the design's init methods, after the defaults as always
        return net
    if known:  # seeded: `initialize` redraws every weight in one fixed order, whichever path built it
        net = _MetaBuilder(design).materialize(target, keep_rng=True)
    else:
        net, run = _MetaBuilder(design).run()  # budgets checked before anything is allocated
        _remember(key, run)
        net.to_empty(device=target)
    initialize(net, design, seed)  # reset_to_defaults, then the design's init methods, under the seed
    return net


def layer_kwargs(layer: Layer) -> dict[str, object]:
    """All constructor arguments of a (validated) layer, defaults filled in."""
    return check_args(REGISTRY[layer.type], layer.args, layer.type)


class _MetaBuilder:
    """One meta-device build of a design: instantiate, check budgets, dry-run, check budgets again."""

    def __init__(self, design: Design) -> None:
        self.design = design
        self.limits = limits()
        self.shared_modules: dict[str, nn.Module] = {}
        self.leaves: list[tuple[str, str, nn.Module]] = []  # (design path, type, module) for budget messages
        self.records: list[LayerRun] = []
        self.steps: list[StepRun] = []

    def run(self) -> tuple[nn.Module, DryRun]:
        d = self.design
        with torch.device("meta"):
            net = self.block(d.top, "")
        self.check_budget(net, after_dry_run=False)
        x = example_input(d, device="meta")
        # Outside the device context: ops on meta tensors stay on meta, without its per-op dispatch cost.
        with torch.no_grad():
            y = self.run_block(d.top, net, x, "", "", depth=0, shared=None)
        self.check_never_run()
        self.check_budget(net, after_dry_run=True)
        per_use = sum(t.numel() for k, t in net.state_dict(keep_vars=True).items() if isinstance(t, nn.Parameter))
        unique = sum(p.numel() for p in net.parameters())
        return net, DryRun(
            input_shape=tuple(x.shape),
            output_shape=tuple(y.shape),
            layers=tuple(self.records),
            parameters=unique,
            parameters_per_use=per_use,
            steps=tuple(self.steps),
        )

    def materialize(self, device: torch.device, keep_rng: bool) -> nn.Module:
        """Construct on `device` and materialize lazy layers by a forward pass, as hand-written code does.
        Only for a design whose meta dry run passed: nothing here checks sizes. keep_rng: leave the caller's
        RNG as it was (the weights drawn here are about to be redrawn under a seed)."""
        fork = torch.random.fork_rng(devices=[device] if device.type == "cuda" else []) if keep_rng else None
        with fork or contextlib.nullcontext():
            with torch.device(device) if device.type != "cpu" else contextlib.nullcontext():
                net = self.block(self.design.top, "")
            with torch.no_grad():
                net(example_input(self.design, device=device))
        return net

    # -- instantiation (on meta) ---------------------------------------------------------------------

    def block(self, block: Block, path: str) -> nn.Module:
        """An nn.Sequential, or a FlowModule for a block with a flow. path: the block's ("" for the top)."""
        check_block(block, path, self.design.shared)  # designs made by editors were never parsed
        at = f"{path}." if path else ""
        children = [(child_key(n, i), self.module(n, f"{at}layers[{i}]")) for i, n in enumerate(block.layers)]
        if block.flow is not None:
            return FlowModule(block.class_name, children, compile_flow(block.flow, lambda c: self.tuple_type(block, c)))
        if all(n.name is None for n in block.layers):
            return nn.Sequential(*(m for _, m in children))
        return nn.Sequential(OrderedDict(children))

    def tuple_type(self, block: Block, call: Call) -> str | None:
        found = resolve(block.layers, call.target, self.design.shared)
        lt = layer_type(found[0], self.design.shared) if found else None
        return lt.name if lt is not None and (lt.returns_tuple or lt.self_attention) else None

    def module(self, node: Node, path: str) -> nn.Module:
        if isinstance(node, Use):
            if node.shared not in self.shared_modules:
                self.shared_modules[node.shared] = self.module(self.design.shared[node.shared], f"shared.{node.shared}")
            return self.shared_modules[node.shared]
        if isinstance(node, Block):
            return self.block(node, path)
        lt = REGISTRY[node.type]
        try:
            module = lt.module(**check_args(lt, node.args, path))
        except ArgError as e:
            raise DesignError(str(e), f"{path}.{e.arg}" if e.arg else path) from None
        except (ValueError, TypeError, RuntimeError) as e:
            raise DesignError(f"{path} {node.type}: {first_line(e)}", path) from None
        self.leaves.append((path, node.type, module))
        return module

    # -- budgets -------------------------------------------------------------------------------------

    def check_budget(self, net: nn.Module, after_dry_run: bool) -> None:
        cap = self.limits.max_params
        total = sum(p.numel() for p in net.parameters() if not is_lazy(p))
        if total <= cap:
            return
        own = {}
        for path, kind, module in self.leaves:
            if id(module) not in own:
                n = sum(p.numel() for p in module.parameters() if not is_lazy(p))
                own[id(module)] = (n, path, kind)
        largest = sorted((t for t in own.values() if t[0]), key=lambda t: -t[0])[:3]
        names = "; ".join(f"{path} {kind}: {n:,}" for n, path, kind in largest)
        when = "after torch inferred the lazy sizes" if after_dry_run else "before any memory is allocated"
        raise DesignError(
            f"the design has {total:,} parameters, over the budget of {cap:,} "
            f"(BLOCKWORK_MAX_PARAMS); refused {when}. Largest layers: {names}"
        )

    # -- the dry run ---------------------------------------------------------------------------------

    def run_block(
        self, block: Block, module: nn.Module, x: torch.Tensor, path: str, key: str, depth: int, shared: str | None
    ) -> torch.Tensor:
        """Run a block's children (depth: theirs) in order, or its flow through the flow walker."""
        at, prefix = (f"{path}." if path else ""), (f"{key}." if key else "")
        if block.flow is None:
            assert isinstance(module, nn.Sequential)
            for i, node in enumerate(block.layers):
                x = self.run_node(node, module[i], x, f"{at}layers[{i}]", prefix + child_key(node, i), depth, shared)
            return x
        assert isinstance(module, FlowModule)
        return run(module, module._flow_program, x, _FlowVisit(self, block, path, key, depth, shared), f"{at}flow")

    def run_node(
        self,
        node: Node,
        module: nn.Module,
        x: torch.Tensor,
        path: str,
        key: str,
        depth: int,
        shared: str | None,
        call: tuple[str, CompiledStep, str] | None = None,  # called by a flow: (step path, step, words for messages)
    ) -> torch.Tensor:
        use = shared
        if isinstance(node, Use):
            use = node.shared
            node = self.design.shared[node.shared]
        if isinstance(node, Layer):
            return self.leaf(node, module, x, path, key, depth, use, call)
        inner = f"shared.{use}" if use and use != shared else path
        start = len(self.records)
        y = self.run_block(node, module, x, inner, key, depth + 1, use)
        if call is not None and call[1][3] is None and not isinstance(y, torch.Tensor):
            raise DesignError(f"{call[2]}{path}: returned {type(y).__name__}, not a tensor", call[0])
        count = sum(p.numel() for p in module.parameters())
        kind = FLOW_TYPE if node.flow is not None else BLOCK_TYPE
        step = call[0] if call else None
        self.records.insert(
            start, LayerRun(path, key, kind, depth, tuple(x.shape), tuple(y.shape), count, use, step=step)
        )
        return y

    def leaf(
        self,
        node: Layer,
        module: nn.Module,
        x: torch.Tensor,
        path: str,
        key: str,
        depth: int,
        shared: str | None,
        call: tuple[str, CompiledStep, str] | None = None,
    ) -> torch.Tensor:
        lt = REGISTRY[node.type]
        words, at = (call[2], call[0]) if call else ("", path)
        label = f"{words}{path} {node.type}" + (f" (shared {shared!r})" if shared else "")
        problem = check_input(lt, layer_kwargs(node), tuple(x.shape))
        if problem:
            raise DesignError(f"{label}: {problem}", at)
        if node.type == "Embedding" and x.dtype != torch.int64:
            raise DesignError(f"{label}: expects integer indices; set the input dtype to int64", at)
        if (lt.returns_tuple or lt.self_attention) and call is None:  # check_block refuses it; never pass a tuple on
            raise DesignError(
                f"{label}: returns a tuple ({', '.join(lt.outputs)}), which an nn.Sequential would hand on whole; "
                f"call it from a block's flow, which takes its {lt.default_output!r} (or the output you name)",
                at,
            )
        try:
            y = invoke(call[1], module, x) if call else module(x)
        except (RuntimeError, ValueError, IndexError, TypeError, AssertionError) as e:
            raise DesignError(f"{label}: cannot take an input of shape {tuple(x.shape)}: {first_line(e)}", at) from None
        self.check_size(y, label, at)
        inferred = {lt.infers: int(getattr(module, lt.infers))} if lt.infers else {}
        count = sum(p.numel() for p in module.parameters())
        self.records.append(
            LayerRun(
                path,
                key,
                node.type,
                depth,
                tuple(x.shape),
                tuple(y.shape),
                count,
                shared,
                inferred,
                lt.is_lazy,
                step=call[0] if call else None,
            )
        )
        return y

    def check_size(self, y: torch.Tensor, label: str, path: str) -> None:
        if y.numel() > self.limits.max_activation:
            raise DesignError(
                f"{label}: its output {tuple(y.shape)} has {y.numel():,} elements, over the "
                f"limit of {self.limits.max_activation:,} (BLOCKWORK_MAX_ACTIVATION)",
                path,
            )

    def check_never_run(self) -> None:
        """A lazy layer no flow calls never learns its sizes: refuse it before anything is allocated."""
        for path, kind, module in self.leaves:
            if any(is_lazy(t) for t in (*module.parameters(), *module.buffers())):
                lt = REGISTRY[kind]
                raise DesignError(
                    f"{path} {kind}: no flow ever calls it, so torch cannot infer its {lt.infers}; call it in "
                    f"its block's flow, or give the size with {lt.eager}",
                    path,
                )


class _FlowVisit:
    """The dry run's visitor of one flow block (builder.flow.run): checks each step, records its shapes."""

    def __init__(
        self, builder: _MetaBuilder, block: Block, path: str, key: str, depth: int, shared: str | None
    ) -> None:
        self.b, self.block, self.key, self.depth, self.shared = builder, block, key, depth, shared
        self.at = f"{path}." if path else ""
        self.name = f"block {key!r}" if key else f"the network ({block.class_name})"

    def words(self, path: str) -> str:
        """ "block 'b3.0' branch 1: " — where in the network a step sits, for messages."""
        branch = _BRANCH.search(path)
        return f"{self.name}{f' branch {branch.group(1)}' if branch else ''}: "

    def record(self, path: str, kind: str, label: str, x: torch.Tensor, y: torch.Tensor) -> None:
        self.b.steps.append(
            StepRun(path, self.key, kind, label, tuple(x.shape), tuple(y.shape), self.depth, self.shared)
        )

    def call(self, path: str, step: CompiledStep, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        target = ".".join(step[1])
        found = resolve(self.block.layers, target, self.b.design.shared)
        assert found is not None  # check_block made sure
        node, rel = found
        key = f"{self.key}.{target}" if self.key else target
        depth = self.depth + len(step[1]) - 1
        y = self.b.run_node(node, module, x, self.at + rel, key, depth, self.shared, (path, step, self.words(path)))
        self.record(path, "call", target + (f"[{step[3]}]" if step[3] else ""), x, y)
        return y

    def op(self, path: str, step: CompiledStep, x: torch.Tensor) -> torch.Tensor:
        label = f"{self.words(path)}{step[1]}"
        try:
            y = apply_op(step, x)
        except (RuntimeError, ValueError, IndexError, TypeError) as e:
            raise DesignError(
                f"{label}: cannot take an input of shape {tuple(x.shape)}: {first_line(e)}", path
            ) from None
        self.b.check_size(y, label, path)
        self.record(path, "op", step[1], x, y)
        return y

    def merge(self, path: str, step: CompiledStep, x: torch.Tensor, outs: list[torch.Tensor]) -> torch.Tensor:
        programs, merge, dim = step[1], step[2], step[3]
        names = [f"branch {j}" + (" (identity)" if not p else "") for j, p in enumerate(programs)]
        for j, out in enumerate(outs):
            self.record(f"{path}.branches[{j}]", "branch", names[j], x, out)
        label = f"{self.words(path)[:-2]} {merge}" + (f" dim={dim}" if dim is not None else "")
        shapes = [tuple(o.shape) for o in outs]
        problem = _merge_problem(merge, dim, shapes)
        if problem is not None:
            j, why = problem
            raise DesignError(f"{label}: {names[0]} gives {shapes[0]}, {names[j]} gives {shapes[j]}; {why}", path)
        try:
            y = apply_merge(step, outs)
        except (RuntimeError, ValueError, IndexError, TypeError) as e:
            raise DesignError(f"{label}: cannot join {', '.join(map(str, shapes))}: {first_line(e)}", path) from None
        self.b.check_size(y, label, path)
        self.record(path, "merge", merge_label(merge, dim), x, y)
        return y


_BRANCH = re.compile(r"\.branches\[(\d+)\]\[\d+\]$")


def _merge_problem(merge: str, dim: int | None, shapes: list[tuple[int, ...]]) -> tuple[int, str] | None:
    """(the first branch that cannot join branch 0, why), or None when the shapes merge."""
    first = shapes[0]
    for j, shape in enumerate(shapes[1:], start=1):
        if len(shape) != len(first):
            return j, f"{merge} needs outputs of the same number of dimensions"
        if merge == "cat":
            d = dim % len(first) if -len(first) <= dim < len(first) else None  # type: ignore[operator]
            if d is None:
                return j, f"dim {dim} is out of range for {len(first)}-D outputs"
            if any(a != b for i, (a, b) in enumerate(zip(first, shape, strict=True)) if i != d):
                return j, f"cat along dim {dim} needs every other size equal"
        elif shape != first:
            return j, f"{merge} needs equal shapes" + (" (a skip must keep the shape)" if merge == "add" else "")
    if merge == "cat" and not -len(first) <= dim < len(first):  # type: ignore[operator]
        return 0, f"dim {dim} is out of range for {len(first)}-D outputs"
    if merge == "stack" and not -len(first) - 1 <= dim <= len(first):  # type: ignore[operator]
        return 0, f"dim {dim} is out of range for stacking {len(first)}-D outputs"
    return None
