"""Forward flows: blocks that are more than a chain — skip connections, parallel branches, inline operations.

A flow block is its named children (the module tree, registered as hand-written PyTorch registers them, so
state_dict keys are the book's) plus a *flow*: the steps its forward runs on the current value ``x``, in order:

    "conv1"                                      x = self.conv1(x)           (a grandchild: "net.0")
    {"call": "rnn", "output": "h"}               x = self.rnn(x)[1][0]       (a tuple-returning child's output)
    {"op": "relu"}                               x = F.relu(x)               (parameter-free: adds no keys)
    {"branches": [[...], []], "merge": "add"}    x = body(x) + x             ([] is the identity: a skip)

Combinators are not modules: `Residual.conv1.weight` is `conv1.weight` under the block, as in the book.

Here: the steps as data (Call, Op, Branches) and their JSON reading (`parse_flow`); the parameter-free
operations (OPS) and merges (MERGES); `compile_flow`, which turns steps into a plain-data program; `run`, the
one walker that executes a program step by step with a visitor (the dry run's checks and records every step);
`compile_forward`, which writes a program once as a straight-line Python function (what FlowModule.forward
runs: no per-step interpretation); and FlowModule, the one nn.Module class every flow block builds into.
"""

from __future__ import annotations

import itertools
import linecache
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .errors import DesignError, json_kind
from .registry import REGISTRY, REQUIRED, SIZE_MAX, Arg, LayerType, call, call_code, check_value

Dims: TypeAlias = int | tuple[int, ...]  # one dim or several, as torch takes them

# -- the steps, as a design holds them ------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """Call a child of the block: `target` is its key ("conv1"), or a dotted key for a grandchild ("net.0")."""

    target: str
    output: str | None = None  # a tuple-returning child (LSTM, …): which output; None: its default


@dataclass(frozen=True)
class Op:
    """A parameter-free operation (a key of OPS) with the arguments given (defaults are not stored)."""

    op: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Branches:
    """Parallel branches, each a flow run on the same input, joined by `merge` (a key of MERGES).

    An empty branch is the identity (a skip connection). cat and stack need `dim`; add, mul and mean join
    elementwise and take no dim.
    """

    branches: tuple[tuple[Step, ...], ...]
    merge: str
    dim: int | None = None


Step: TypeAlias = Call | Op | Branches
Flow: TypeAlias = tuple[Step, ...]
# Where a step sits in a flow: (i,) step i of the flow; (i, b, j) step j of branch b of (branches) step i;
# (i, b, j, c, k) one level deeper. As a place to insert at, its last index may equal that list's length.
StepAt: TypeAlias = tuple[int, ...]


# -- parameter-free operations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OpType:
    """An operation a forward writes inline. `fn(x, **args)` is exactly what `code` says (the exported code)."""

    name: str
    fn: Callable[..., torch.Tensor]
    args: tuple[Arg, ...] = ()
    code: str = ""  # how forward writes it: a format string over {x} and the arguments (values as repr)
    doc: str = ""


def _dim(name: str = "dim", default: Any = REQUIRED, optional: bool = False) -> Arg:
    return Arg(name, "int", default, min=-64, max=64, optional=optional, example=1)


def _dims(name: str, default: Any = REQUIRED, optional: bool = False) -> Arg:
    return Arg(name, "ints", default, min=-64, max=64, optional=optional, example=[0, 2, 1])


def _relu(x: Tensor) -> Tensor:
    return F.relu(x)


def _gelu(x: Tensor, approximate: str) -> Tensor:
    return F.gelu(x, approximate=approximate)


def _sigmoid(x: Tensor) -> Tensor:
    return torch.sigmoid(x)


def _tanh(x: Tensor) -> Tensor:
    return torch.tanh(x)


def _silu(x: Tensor) -> Tensor:
    return F.silu(x)


def _elu(x: Tensor, alpha: float) -> Tensor:
    return F.elu(x, alpha=alpha)


def _leaky_relu(x: Tensor, negative_slope: float) -> Tensor:
    return F.leaky_relu(x, negative_slope=negative_slope)


def _softmax(x: Tensor, dim: int) -> Tensor:
    return F.softmax(x, dim=dim)


def _log_softmax(x: Tensor, dim: int) -> Tensor:
    return F.log_softmax(x, dim=dim)


def _flatten(x: Tensor, start_dim: int, end_dim: int) -> Tensor:
    return torch.flatten(x, start_dim, end_dim)


def _reshape(x: Tensor, shape: Dims) -> Tensor:
    return x.reshape(shape)


def _view(x: Tensor, shape: Dims) -> Tensor:
    return x.view(shape)


def _permute(x: Tensor, dims: Dims) -> Tensor:
    return x.permute(dims)


def _transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    return x.transpose(dim0, dim1)


def _unsqueeze(x: Tensor, dim: int) -> Tensor:
    return x.unsqueeze(dim)


def _squeeze(x: Tensor, dim: int) -> Tensor:
    return x.squeeze(dim)


def _mean(x: Tensor, dim: Dims | None, keepdim: bool) -> Tensor:
    return x.mean() if dim is None else x.mean(dim, keepdim=keepdim)


def _sum(x: Tensor, dim: Dims | None, keepdim: bool) -> Tensor:
    return x.sum() if dim is None else x.sum(dim, keepdim=keepdim)


def _select(x: Tensor, dim: int, index: int) -> Tensor:
    return x.select(dim, index)


_SHAPE = Arg("shape", "ints", REQUIRED, min=-1, max=SIZE_MAX, example=[-1, 64], help="-1: inferred (one at most)")
_KEEPDIM = Arg("keepdim", "bool", False)

OPS: dict[str, OpType] = {
    o.name: o
    for o in (
        OpType("relu", _relu, (), "F.relu({x})", "max(0, x)"),
        OpType(
            "gelu",
            _gelu,
            (Arg("approximate", "choice", "none", choices=("none", "tanh")),),
            "F.gelu({x}, approximate={approximate})",
            "x · Φ(x)",
        ),
        OpType("sigmoid", _sigmoid, (), "torch.sigmoid({x})", "1 / (1 + e⁻ˣ)"),
        OpType("tanh", _tanh, (), "torch.tanh({x})", "tanh(x)"),
        OpType("silu", _silu, (), "F.silu({x})", "x · σ(x)"),
        OpType("elu", _elu, (Arg("alpha", "float", 1.0, min=0),), "F.elu({x}, alpha={alpha})", "ELU"),
        OpType(
            "leaky_relu",
            _leaky_relu,
            (Arg("negative_slope", "float", 0.01, min=0),),
            "F.leaky_relu({x}, negative_slope={negative_slope})",
            "max(0, x) + slope · min(0, x)",
        ),
        OpType("softmax", _softmax, (_dim(),), "F.softmax({x}, dim={dim})", "exp(x) / Σ exp(x) along dim"),
        OpType("log_softmax", _log_softmax, (_dim(),), "F.log_softmax({x}, dim={dim})", "log softmax along dim"),
        OpType(
            "flatten",
            _flatten,
            (_dim("start_dim", 0), _dim("end_dim", -1)),
            "torch.flatten({x}, {start_dim}, {end_dim})",
            "torch.flatten: joins dims start_dim..end_dim (torch's default start_dim=0 flattens the batch too; "
            "nn.Flatten's is 1)",
        ),
        OpType("reshape", _reshape, (_SHAPE,), "{x}.reshape({shape})", "x.reshape(shape)"),
        OpType("view", _view, (_SHAPE,), "{x}.view({shape})", "x.view(shape)"),
        OpType("permute", _permute, (_dims("dims"),), "{x}.permute({dims})", "x.permute(dims)"),
        OpType(
            "transpose",
            _transpose,
            (_dim("dim0"), _dim("dim1")),
            "{x}.transpose({dim0}, {dim1})",
            "swaps two dims",
        ),
        OpType("unsqueeze", _unsqueeze, (_dim(),), "{x}.unsqueeze({dim})", "inserts a dim of size 1"),
        OpType("squeeze", _squeeze, (_dim(),), "{x}.squeeze({dim})", "removes dim if its size is 1"),
        OpType(
            "mean",
            _mean,
            (_dims("dim", None, optional=True), _KEEPDIM),
            "{x}.mean({dim}, keepdim={keepdim})",
            "mean over dim (all dims when dim is null)",
        ),
        OpType(
            "sum",
            _sum,
            (_dims("dim", None, optional=True), _KEEPDIM),
            "{x}.sum({dim}, keepdim={keepdim})",
            "sum over dim (all dims when dim is null)",
        ),
        OpType(
            "select",
            _select,
            (_dim(), Arg("index", "int", REQUIRED, min=-SIZE_MAX, max=SIZE_MAX, example=-1)),
            "{x}.select({dim}, {index})",
            "x.select(dim, index), e.g. the last time step: dim 1, index -1 (x[:, -1])",
        ),
    )
}


def op_kwargs(op: Op) -> dict[str, Any]:
    """All arguments of a (validated) op, defaults filled in, in the form torch takes (tuples for lists)."""
    spec = OPS[op.op]
    return {a.name: op.args.get(a.name, a.default) for a in spec.args}


# -- merges -------------------------------------------------------------------------------------------------


def _cat(outs: list[Tensor], dim: int | None) -> Tensor:
    assert dim is not None  # parse_flow requires it
    return torch.cat(outs, dim)


def _stack(outs: list[Tensor], dim: int | None) -> Tensor:
    assert dim is not None  # parse_flow requires it
    return torch.stack(outs, dim)


def _add(outs: list[Tensor], dim: int | None) -> Tensor:
    y = outs[0]
    for o in outs[1:]:
        y = y + o
    return y


def _mul(outs: list[Tensor], dim: int | None) -> Tensor:
    y = outs[0]
    for o in outs[1:]:
        y = y * o
    return y


def _mean_of(outs: list[Tensor], dim: int | None) -> Tensor:
    return torch.stack(outs).mean(0)


# merge -> (function of the branch outputs and dim, whether it needs dim, the exported code over {xs} / {dim})
MERGES: dict[str, tuple[Callable[[list[torch.Tensor], int | None], torch.Tensor], bool, str]] = {
    "cat": (_cat, True, "torch.cat(({xs}), dim={dim})"),
    "stack": (_stack, True, "torch.stack(({xs}), dim={dim})"),
    "add": (_add, False, "{x0} + {x1} + …"),
    "mul": (_mul, False, "{x0} * {x1} * …"),
    "mean": (_mean_of, False, "torch.stack(({xs})).mean(0)"),
}


def merge_label(merge: str, dim: int | None) -> str:
    """How a diagram or message names a merge: "cat dim=1", "+", "×", "mean", "stack dim=0"."""
    return {"add": "+", "mul": "×", "mean": "mean"}.get(merge) or f"{merge} dim={dim}"


def step_text(step: Step) -> str:
    """A step in a few characters: "conv1", "rnn[h]", "relu", "mean(dim=1)", "[conv1 → bn1 | skip] +"."""
    if isinstance(step, Call):
        return step.target + (f"[{step.output}]" if step.output else "")
    if isinstance(step, Op):
        given = ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in step.args.items())
        return f"{step.op}({given})" if given else step.op
    lanes = " | ".join(" → ".join(map(step_text, b)) or "skip" for b in step.branches)
    return f"[{lanes}] {merge_label(step.merge, step.dim)}"


def steps_at(flow: Flow, at: StepAt = ()) -> Iterator[tuple[StepAt, Step]]:
    """Every step with its place (StepAt), in order: a branches step before its branches' steps."""
    for i, s in enumerate(flow):
        yield (*at, i), s
        if isinstance(s, Branches):
            for b, lane in enumerate(s.branches):
                yield from steps_at(lane, (*at, i, b))


def flow_points(flow: Flow) -> dict[StepAt, str]:
    """Where a new step can go, as {place: label}, the end of the chain first: "at the end", "at the start",
    "after conv1", "after the merge (+)", "branch 1: at the start", "branch 0: after bn1" (nested branches
    prefixed by their branches step's "branch b › ")."""
    out: dict[StepAt, str] = {(len(flow),): "at the end"}

    def walk(lane: Flow, at: StepAt, prefix: str) -> None:
        out.setdefault((*at, 0), f"{prefix}at the start")
        for i, s in enumerate(lane):
            if isinstance(s, Branches):
                for b, inner in enumerate(s.branches):
                    walk(inner, (*at, i, b), f"{prefix}branch {b}: ")
                after = f"the merge ({merge_label(s.merge, s.dim)})"
            else:
                after = step_text(s)
            out.setdefault((*at, i + 1), f"{prefix}after {after}")

    walk(flow, (), "")
    return out


# -- reading steps from JSON --------------------------------------------------------------------------------


def parse_flow(raw: Any, where: str, count: Callable[[str], None], depth: int, max_depth: int) -> Flow:
    """Validate a flow's JSON (a list of steps) at design path `where` (e.g. "layers[2].flow").

    `count(path)` is called once per step (the caller counts them against the layer limit). Child names are
    checked later, against the block's children (builder.design).
    """
    if not isinstance(raw, list):
        raise DesignError(
            f'{where}: must be a list of steps like ["conv1", {{"op": "relu"}}], got {json_kind(raw)}', where
        )
    return tuple(_step(s, f"{where}[{i}]", count, depth, max_depth) for i, s in enumerate(raw))


def _step(raw: Any, where: str, count: Callable[[str], None], depth: int, max_depth: int) -> Step:
    count(where)
    if isinstance(raw, str):
        return Call(_target(raw, where))
    if not isinstance(raw, dict):
        raise DesignError(
            f'{where}: a step is a child\'s name, {{"op": ...}}, {{"call": ...}} or {{"branches": ...}}, '
            f"got {json_kind(raw)}",
            where,
        )
    kinds = [k for k in ("call", "op", "branches") if k in raw]
    if len(kinds) != 1:
        raise DesignError(
            f'{where}: a step has exactly one of "call", "op" or "branches"'
            + (f", not {' and '.join(map(repr, kinds))}" if kinds else f" (it has {', '.join(map(repr, raw))})"),
            where,
        )
    kind = kinds[0]
    if kind == "call":
        _only(raw, {"call", "output"}, where, "a call")
        output = raw.get("output")
        if output is not None and not isinstance(output, str):
            raise DesignError(f"{where}.output: must be an output's name, got {json_kind(output)}", f"{where}.output")
        return Call(_target(raw["call"], f"{where}.call"), output)
    if kind == "op":
        name = raw["op"]
        spec = OPS.get(name) if isinstance(name, str) else None
        if spec is None:
            raise DesignError(f"{where}.op: unknown operation {name!r}; known: {', '.join(OPS)}", f"{where}.op")
        given = {k: v for k, v in raw.items() if k != "op"}
        args: dict[str, Any] = {}
        known = {a.name: a for a in spec.args}
        for key, value in given.items():
            if key not in known:
                names = ", ".join(known) or "none"
                raise DesignError(f"{where}: {name} has no argument {key!r} (its arguments: {names})", f"{where}.{key}")
            try:
                args[key] = check_value(known[key], value, f"{where}.{key}")
            except ValueError as e:
                raise DesignError(str(e), f"{where}.{key}") from None
        missing = [a.name for a in spec.args if a.required and a.name not in args]
        if missing:
            raise DesignError(f"{where}: {name} needs {missing[0]!r}", f"{where}.{missing[0]}")
        return Op(name, args)
    _only(raw, {"branches", "merge", "dim"}, where, "a branches step")
    if depth >= max_depth:
        raise DesignError(f"{where}: branches nest more than {max_depth} deep (BLOCKWORK_MAX_DEPTH)", where)
    branches = raw["branches"]
    if not isinstance(branches, list) or not branches:
        raise DesignError(
            f"{where}.branches: must be a non-empty list of branches (each a list of steps; [] is the identity), "
            f"got {branches!r}"
            if isinstance(branches, list)
            else f"{where}.branches: must be a list of branches, got {json_kind(branches)}",
            f"{where}.branches",
        )
    merge = raw.get("merge")
    if not isinstance(merge, str) or merge not in MERGES:  # a JSON list or object is not hashable
        raise DesignError(
            f"{where}.merge: must be one of {', '.join(map(repr, MERGES))}, got {merge!r}", f"{where}.merge"
        )
    needs_dim, dim = MERGES[merge][1], raw.get("dim")
    if needs_dim:
        if isinstance(dim, bool) or not isinstance(dim, int) or not -64 <= dim <= 64:
            raise DesignError(
                f"{where}.dim: {merge} needs the dim to join along (a whole number), got {dim!r}", f"{where}.dim"
            )
    elif "dim" in raw:
        raise DesignError(f"{where}.dim: {merge} joins elementwise and takes no dim", f"{where}.dim")
    flows = tuple(parse_flow(b, f"{where}.branches[{j}]", count, depth + 1, max_depth) for j, b in enumerate(branches))
    return Branches(flows, merge, dim if needs_dim else None)


def _only(raw: dict[str, Any], allowed: set[str], where: str, what: str) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise DesignError(
            f"{where}: {what} takes only {', '.join(map(repr, sorted(allowed)))}, not {extra[0]!r}",
            f"{where}.{extra[0]}",
        )


def _target(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw or any(not part for part in raw.split(".")):
        raise DesignError(f'{where}: must name a child of the block (like "conv1" or "net.0"), got {raw!r}', where)
    return raw


def flow_to_list(flow: Flow) -> list[Any]:
    """The flow as JSON data (what `parse_flow` reads back to an equal flow)."""
    out: list[Any] = []
    for step in flow:
        if isinstance(step, Call):
            out.append(step.target if step.output is None else {"call": step.target, "output": step.output})
        elif isinstance(step, Op):
            out.append({"op": step.op, **{k: list(v) if isinstance(v, tuple) else v for k, v in step.args.items()}})
        else:
            d: dict[str, Any] = {"branches": [flow_to_list(b) for b in step.branches], "merge": step.merge}
            if step.dim is not None:
                d["dim"] = step.dim
            out.append(d)
    return out


def walk_steps(flow: Flow, where: str) -> Iterable[tuple[str, Step]]:
    """Every step with its design path, in order, branches' steps after their Branches step."""
    for i, step in enumerate(flow):
        path = f"{where}[{i}]"
        yield path, step
        if isinstance(step, Branches):
            for j, b in enumerate(step.branches):
                yield from walk_steps(b, f"{path}.branches[{j}]")


# -- the program and the walker -----------------------------------------------------------------------------

# A compiled flow is plain data (so deepcopy, pickling and .to() need nothing special), resolved by name at
# every call as hand-written `self.conv1(x)` is:
#   (CALL, names, tuple_type, output, fresh)   names: the key's parts; tuple_type: the registry type of a
#                                              tuple-returning child (registry.call picks its output), else
#                                              None; fresh: its output may be added to in place (fresh_output)
#   (OP, op name, kwargs)
#   (BRANCHES, (program, ...), merge, dim)
CALL, OP, BRANCHES = 0, 1, 2
CompiledStep: TypeAlias = tuple[Any, ...]
Program: TypeAlias = tuple[CompiledStep, ...]

# Layers whose output is always a new tensor that their backward does not need, so a forward may add to it in
# place, as the book's residual does (`Y = self.bn2(self.conv2(Y)); Y += X`): convolutions, linear layers and
# embeddings, normalizations.
FRESH_OUTPUT_CATEGORIES = frozenset({"Convolution", "Linear", "Normalization"})


def fresh_output(lt: LayerType | None) -> bool:
    """Whether a layer's output may be added to in place (`Y += X`): a fresh tensor no backward needs."""
    return lt is not None and lt.category in FRESH_OUTPUT_CATEGORIES and not lt.outputs and not lt.self_attention


def compile_flow(flow: Flow, layer_type: Callable[[Call], LayerType | None]) -> Program:
    """The program of a (checked) flow; `layer_type(call)` is the registry type of the layer a call reaches
    (None for a block)."""
    out: list[tuple[Any, ...]] = []
    for step in flow:
        if isinstance(step, Call):
            lt = layer_type(step)
            tuple_type = lt.name if lt is not None and (lt.returns_tuple or lt.self_attention) else None
            out.append((CALL, tuple(step.target.split(".")), tuple_type, step.output, fresh_output(lt)))
        elif isinstance(step, Op):
            out.append((OP, step.op, op_kwargs(step)))
        else:
            out.append((BRANCHES, tuple(compile_flow(b, layer_type) for b in step.branches), step.merge, step.dim))
    return tuple(out)


class Visitor(Protocol):
    """What the dry run plugs into `run` to check and record each step (see builder.build)."""

    def call(self, path: str, step: tuple[Any, ...], module: nn.Module, x: torch.Tensor) -> torch.Tensor: ...

    def op(self, path: str, step: tuple[Any, ...], x: torch.Tensor) -> torch.Tensor: ...

    def merge(self, path: str, step: tuple[Any, ...], x: torch.Tensor, outs: list[torch.Tensor]) -> torch.Tensor: ...


def invoke(step: tuple[Any, ...], module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A CALL step's work: the child on x, or a tuple-returning child's chosen output."""
    y: Tensor = module(x) if step[2] is None else call(REGISTRY[step[2]], module, x, step[3])
    return y


def apply_op(step: tuple[Any, ...], x: torch.Tensor) -> torch.Tensor:
    y: Tensor = OPS[step[1]].fn(x, **step[2])
    return y


def apply_merge(step: tuple[Any, ...], outs: list[torch.Tensor]) -> torch.Tensor:
    return MERGES[step[2]][0](outs, step[3])


def run(block: nn.Module, program: Program, x: Tensor, visitor: Visitor | None = None, where: str = "flow") -> Tensor:
    """Run a program on x inside `block` (whose children the calls name), step by step. The one flow walker: the
    dry run passes a visitor, which does each step's work itself after checking it, and records it; bare, it
    computes what compile_forward's function does (FlowModule.forward runs that, unless a visitor is set)."""
    for i, step in enumerate(program):
        tag = step[0]
        if tag == CALL:
            module = block
            for name in step[1]:
                module = module._modules[name]  # type: ignore[assignment]
            x = invoke(step, module, x) if visitor is None else visitor.call(f"{where}[{i}]", step, module, x)
        elif tag == OP:
            x = apply_op(step, x) if visitor is None else visitor.op(f"{where}[{i}]", step, x)
        elif visitor is None:
            x = apply_merge(step, [run(block, b, x) for b in step[1]])
        else:
            path = f"{where}[{i}]"
            outs = [run(block, b, x, visitor, f"{path}.branches[{j}]") for j, b in enumerate(step[1])]
            x = visitor.merge(path, step, x, outs)
    return x


class PlainVisitor:
    """A visitor that does each step's work as forward does: subclass it to watch a forward pass step by step
    (builder.gradients labels each call of a shared layer with the key the flow called it by)."""

    def call(self, path: str, step: tuple[Any, ...], module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return invoke(step, module, x)

    def op(self, path: str, step: tuple[Any, ...], x: torch.Tensor) -> torch.Tensor:
        return apply_op(step, x)

    def merge(self, path: str, step: tuple[Any, ...], x: torch.Tensor, outs: list[torch.Tensor]) -> torch.Tensor:
        return apply_merge(step, outs)


def describe(program: Program) -> str:
    """A one-line text of a program: "(conv1 → bn1 → relu → conv2 → bn2 | x) + → relu"."""
    parts = []
    for step in program:
        if step[0] == CALL:
            parts.append(".".join(step[1]) + (f"[{step[3]}]" if step[3] else ""))
        elif step[0] == OP:
            parts.append(step[1])
        else:
            inner = " | ".join(describe(b) or "x" for b in step[1])
            parts.append(f"({inner}) {merge_label(step[2], step[3])}")
    return " → ".join(parts)


# -- the compiled forward ------------------------------------------------------------------------------------
#
# FlowModule.forward does not walk the program: each block's program is written once, when the module is made,
# as a straight-line Python function, the forward a person would write, one statement per step:
#
#     def forward(self, x):                       # the book's Residual, its flow
#         b = self._modules[_c0](x)               # [conv1 → bn1 → relu → conv2 → bn2 | skip] + → relu
#         b = self._modules[_c1](b)
#         b = _c2(b)                              # _c2 is flow._relu (F.relu)
#         …
#         b += x                                  # add: in place, as the book's `Y += X`
#         x = b
#         del b
#         x = _c2(x)
#         return x
#
# Nothing of the design is ever written into the source: child keys (any string add_module accepts, "block 0"
# included), operation and merge functions and their argument values are constants the code names `_c0`, `_c1`…,
# passed in the function's globals (which hold nothing else: no builtins). Only identifiers made here, and a
# layer type's output indices (registry.call_code), are source text. Children are still looked up at each call,
# as hand-written `self.conv1(x)` is, so a replaced child, a deep copy or hooks behave as in hand-written code;
# the same functions as the walker's do each step's work, so both give identical results. One difference, the
# book's: an `add` whose branch 0 ends in a layer's new output (fresh_output) sums into it in place, `Y += X`.


def _source(program: Program) -> tuple[str, dict[str, Any]]:
    """The forward of a program as Python source, and the constants it names."""
    consts: dict[str, Any] = {}
    lines: list[str] = []
    used: set[str] = {"self", "x"}

    def const(value: Any) -> str:
        name = f"_c{len(consts)}"
        consts[name] = value
        return name

    def fresh() -> str:
        name = f"b{len(used) - 1}"
        used.add(name)
        return name

    def chain(steps: Program, src: str, var: str) -> str:
        """Write steps applied to `src`, each result into `var`; returns the variable holding the result."""
        cur = src
        for step in steps:
            if step[0] == CALL:
                names, tuple_type, output = step[1], step[2], step[3]
                if not names or not all(isinstance(n, str) for n in names):
                    raise ValueError(f"a call names a child by its key, got {names!r}")
                module = "self" + "".join(f"._modules[{const(n)}]" for n in names)
                expr = (
                    f"{module}({cur})" if tuple_type is None else call_code(REGISTRY[tuple_type], module, cur, output)
                )
            elif step[0] == OP:
                spec = OPS[step[1]]
                known = {a.name for a in spec.args}
                if not set(step[2]) <= known:  # keyword names are the registry's, never the design's
                    raise ValueError(f"{step[1]} has no argument {sorted(set(step[2]) - known)[0]!r}")
                args = "".join(f", {k}={const(v)}" for k, v in step[2].items())
                expr = f"{const(spec.fn)}({cur}{args})"
            elif step[0] == BRANCHES:
                lanes = [chain(b, cur, fresh()) if b else cur for b in step[1]]
                first = step[1][0]
                if step[2] == "add" and first and first[-1][0] == CALL and first[-1][4]:
                    # the book's `Y += X`: branch 0 ends in a layer's new output, the sum goes into it (the same
                    # values as flow._add's b0 + b1 + …, without allocating another tensor)
                    lines.extend(f"{lanes[0]} += {lane}" for lane in lanes[1:])
                    expr = lanes[0]
                else:
                    expr = f"{const(MERGES[step[2]][0])}([{', '.join(lanes)}], {const(step[3])})"
                lines.append(f"{var} = {expr}")
                done = sorted({lane for lane in lanes if lane not in (cur, var)})
                if done:
                    lines.append(f"del {', '.join(done)}")  # as hand-written code's branch results go out of scope
                cur = var
                continue
            else:
                raise ValueError(f"unknown flow step {step!r}")
            lines.append(f"{var} = {expr}")
            cur = var
        return cur

    result = chain(program, "x", "x")
    body = "".join(f"    {line}\n" for line in lines)
    return f"def forward(self, x):\n{body}    return {result}\n", consts


# By the program's repr (plain data: equal reprs, equal programs): blocks alike share one function. Bounded, oldest
# out first; a function stays valid for the modules that hold it.
_COMPILED: dict[str, Callable[[nn.Module, Tensor], Tensor]] = {}
_COMPILED_MAX = 2_000
_FILES = itertools.count()


def compile_forward(program: Program) -> Callable[[nn.Module, Tensor], Tensor]:
    """The program as a function forward(block, x): what `run(block, program, x)` computes, without walking."""
    key = repr(program)
    fn = _COMPILED.get(key)
    if fn is None:
        source, consts = _source(program)
        filename = f"<blockwork flow {next(_FILES)}>"
        namespace: dict[str, Any] = {"__builtins__": {}, **consts}
        exec(compile(source, filename, "exec"), namespace)  # noqa: S102 -- source made above from identifiers only
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # readable tracebacks
        fn = namespace["forward"]
        if len(_COMPILED) >= _COMPILED_MAX:
            linecache.cache.pop(next(iter(_COMPILED.values())).__code__.co_filename, None)
            del _COMPILED[next(iter(_COMPILED))]
        _COMPILED[key] = fn
    return fn


class FlowModule(nn.Module):
    """A design's flow block, built: its children registered by name in order, its forward the flow.

    Its repr shows the block's class name (e.g. "Residual"); it holds no tensors of its own, so its
    state_dict keys are its children's, as those of the hand-written class. Its forward is the flow compiled
    to straight-line code (compile_forward); with a visitor set it walks the flow instead (`run`).
    """

    _flow_visitor: Visitor | None = None  # set on an instance to watch its forward (diagnostics only)

    def __init__(self, class_name: str, children: Iterable[tuple[str, nn.Module]], program: Program) -> None:
        super().__init__()
        for key, module in children:
            self.add_module(key, module)
        self._flow_class = class_name
        self._flow_program: Program = program
        self._flow_forward = compile_forward(program)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._flow_visitor is not None:
            return run(self, self._flow_program, x, self._flow_visitor)
        return self._flow_forward(self, x)

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()  # type: ignore[no-untyped-call]
        state.pop("_flow_forward", None)  # code made at run time does not pickle: made again when loaded
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)  # type: ignore[no-untyped-call]
        self._flow_forward = compile_forward(self._flow_program)

    def _get_name(self) -> str:
        return self._flow_class

    def extra_repr(self) -> str:
        return f"flow: {describe(self._flow_program)}"


# Names a child cannot have: attributes of the modules that hold children (add_module refuses them).
RESERVED_NAMES = frozenset(dir(nn.Sequential())) | frozenset(dir(FlowModule("X", (), ())))
