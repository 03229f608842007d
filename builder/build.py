"""Designs become torch.nn modules: first on the `meta` device (no memory), then for real.

`dry_run(design)` builds the network on `meta`, runs the example input through it layer by layer (which
materializes torch's Lazy* layers and records every output shape) and checks the budgets, all without
allocating a single weight. `build(design, device)` does the same, then gives the network real storage on
the device with `to_empty` and initializes every layer with its own `reset_parameters` — the same
initialization (and, under a seed, the same random stream) as constructing it by hand.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeAlias, TypeVar

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from .design import Block, Design, Layer, Node, Use, check_block, child_key, layer_type, resolve
from .errors import DesignError, first_line
from .flow import (
    Call,
    CompiledStep,
    FlowModule,
    Program,
    apply_merge,
    apply_op,
    compile_flow,
    invoke,
    merge_label,
    run,
)
from .init import apply as apply_init
from .init import initialize
from .limits import Limits, limits
from .registry import BLOCK_TYPE, FLOW_TYPE, REGISTRY, ArgError, LayerType, check_args, check_input

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

    Incremental: what one node does to one input is remembered (see `_DryRun`), so after an edit only the
    edited node and the nodes whose input changed run again on meta; the result is the same as from scratch.
    """
    key = _run_key(design)
    with _RUNS_LOCK:
        if key in _RUNS:
            _RUNS.move_to_end(key)
            return _RUNS[key]
    return _remember(key, _DryRun(design).run())


def dry_run_until_fault(design: Design) -> DryRun:
    """What a dry run of `design` saw: its `dry_run` when it builds; else the layers and flow steps that ran
    before the fault, with their shapes — `output_shape` () and the parameter counts 0, as they are unknown —
    so a form can still offer the size arriving at a place before the fault. Raises nothing."""
    try:
        return dry_run(design)
    except DesignError:
        pass
    seen = _DryRun(design)
    with contextlib.suppress(DesignError):
        return seen.run()  # (not reached: the same design, the same fault)
    return DryRun(tuple(design.input_shape), (), tuple(seen.records), 0, 0, tuple(seen.steps))


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


def clear_caches() -> None:
    """Forget every remembered dry run and node result (the next dry run starts from scratch)."""
    with _RUNS_LOCK:
        _RUNS.clear()
    for cache in (_BUILT, _CALLS, _STEPS):
        cache.clear()


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
    dry_run(design)  # budgets and shapes checked on meta before anything is allocated
    # The sizes are known to fit, so torch's own dry run (construction, then a forward pass of the example
    # input, as the chapter does) can run on the device, far cheaper than meta kernels.
    seeded = (seed if seed is not None else design.seed) is not None
    net = _MetaBuilder(design, checked=True).materialize(torch.device(device), keep_rng=seeded)
    if seeded:  # `initialize` redraws every weight in one fixed order under the seed
        initialize(net, design, seed)
        return net
    # Unseeded, construction's own initialization is PyTorch's default, as by hand; only the statistics the
    # forward pass moved are reset, then the design's init methods run after the defaults as always.
    for module in net.modules():
        # looked up on the class: a module without it would raise (and catch) an AttributeError per module
        reset_stats = getattr(type(module), "reset_running_stats", None)
        if reset_stats is not None:
            reset_stats(module)
    apply_init(net, design)
    return net


def meta_network(design: Design) -> tuple[nn.Module, DryRun]:
    """The design's network on the meta device with its lazy sizes inferred (shapes only, no memory), and its
    dry run (which checks it first). For views that need the modules themselves (state_dict keys, lazy before
    and after)."""
    run = dry_run(design)
    return _MetaBuilder(design, checked=True).materialize(torch.device("meta"), keep_rng=False), run


def layer_kwargs(layer: Layer) -> dict[str, object]:
    """All constructor arguments of a (validated) layer, defaults filled in."""
    return check_args(REGISTRY[layer.type], layer.args, layer.type)


def _construct(node: Layer, path: str) -> nn.Module:
    """One layer's module (on the device of the caller's context); bad arguments raise DesignError at `path`."""
    lt = REGISTRY[node.type]
    try:
        return lt.module(**check_args(lt, node.args, path))
    except ArgError as e:
        raise DesignError(str(e), f"{path}.{e.arg}" if e.arg else path) from None
    except (ValueError, TypeError, RuntimeError) as e:
        raise DesignError(f"{path} {node.type}: {first_line(e)}", path) from None


def _layer_type(block: Block, call: Call, shared: Mapping[str, Layer | Block]) -> LayerType | None:
    """The registry type of the layer a flow calls (None for a block): builder.flow.compile_flow's question."""
    found = resolve(block.layers, call.target, shared)
    return layer_type(found[0], shared) if found else None


def _refuse_over_budget(cap: int, total: int, sizes: list[tuple[int, str, str]], after_dry_run: bool) -> None:
    """Raise when `total` parameters exceed `cap`; sizes: (parameters, design path, type) of each layer."""
    if total <= cap:
        return
    largest = sorted((t for t in sizes if t[0]), key=lambda t: -t[0])[:3]
    names = "; ".join(f"{path} {kind}: {n:,}" for n, path, kind in largest)
    when = "after torch inferred the lazy sizes" if after_dry_run else "before any memory is allocated"
    raise DesignError(
        f"the design has {total:,} parameters, over the budget of {cap:,} "
        f"(BLOCKWORK_MAX_PARAMS); refused {when}. Largest layers: {names}"
    )


class _MetaBuilder:
    """Instantiation of a design's modules (on meta or a device) and torch's own dry run of them."""

    def __init__(self, design: Design, *, checked: bool = False) -> None:
        """checked: the design's dry run passed, so its blocks were checked (check_block) on this very design."""
        self.design = design
        self.checked = checked
        self.shared_modules: dict[str, nn.Module] = {}
        self.leaves: list[tuple[str, str, nn.Module]] = []  # (design path, type, module) for budget messages

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

    def block(self, block: Block, path: str) -> nn.Module:
        """An nn.Sequential, or a FlowModule for a block with a flow. path: the block's ("" for the top)."""
        if not self.checked:  # designs made by editors were never parsed
            check_block(block, path, self.design.shared)
        at = f"{path}." if path else ""
        children = [(child_key(n, i), self.module(n, f"{at}layers[{i}]")) for i, n in enumerate(block.layers)]
        if block.flow is not None:
            program = compile_flow(block.flow, lambda c: _layer_type(block, c, self.design.shared))
            return FlowModule(block.class_name, children, program)
        if all(n.name is None for n in block.layers):
            return nn.Sequential(*(m for _, m in children))
        return nn.Sequential(OrderedDict(children))

    def module(self, node: Node, path: str) -> nn.Module:
        if isinstance(node, Use):
            if node.shared not in self.shared_modules:
                self.shared_modules[node.shared] = self.module(self.design.shared[node.shared], f"shared.{node.shared}")
            return self.shared_modules[node.shared]
        if isinstance(node, Block):
            return self.block(node, path)
        module = _construct(node, path)
        self.leaves.append((path, node.type, module))
        return module

    def check_budget(self, net: nn.Module) -> None:
        """The parameter budget of a network built on meta, before any forward pass (lazy sizes unknown)."""
        total = sum(p.numel() for p in net.parameters() if not is_lazy(p))
        cap = limits().max_params
        if total <= cap:  # each layer's size is only for the refusal's message (largest layers)
            return
        sizes = [(sum(p.numel() for p in m.parameters() if not is_lazy(p)), at, kind) for at, kind, m in self.leaves]
        _refuse_over_budget(cap, total, sizes, after_dry_run=False)


# -- the dry run, node by node ------------------------------------------------------------------------------
#
# A node's result depends only on what the node is and what it is given: a layer's type and arguments (its
# signature), its input's shape, strides and dtype, how a flow calls it (which output of a tuple), and, for a
# lazy layer torch has already materialized (a shared layer's later use, a child a flow calls twice), the
# input that materialized it. Those questions and their answers are remembered process-wide (every session
# asks about the same layers), so a dry run after an edit runs on meta only what the edit changed. Budgets,
# the activation limit and the never-called check are not remembered: each run checks them from the answers.

_Form: TypeAlias = tuple[tuple[int, ...], tuple[int, ...], torch.dtype]  # a tensor's shape, strides, dtype
_V = TypeVar("_V")


def _form(t: torch.Tensor) -> _Form:
    return tuple(t.shape), tuple(t.stride()), t.dtype


def _meta(form: _Form) -> torch.Tensor:
    """A meta tensor of that form: what the remembered call returned (views need the strides)."""
    return torch.empty_strided(form[0], form[1], dtype=form[2], device="meta")


class Answers(Generic[_V]):
    """A bounded map of remembered answers (least recently used forgotten first), safe across threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> _V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: _V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True)
class _Built:
    """What constructing a layer gives, by its signature."""

    parameters: int  # parameters allocated by construction (a lazy layer's uninitialized ones not counted)
    per_use: int  # the same, counted as its state_dict counts them
    lazy: bool  # holds uninitialized tensors until its first call


@dataclass(frozen=True)
class _Called:
    """What one call of a layer gives: its output's form and the layer's sizes after the call."""

    output: _Form
    inferred: tuple[tuple[str, int], ...]  # lazy sizes torch inferred
    parameters: int
    per_use: int


@dataclass(frozen=True)
class _Leaf:
    """One layer module of the network being dry-run (a shared layer: one for all its uses)."""

    path: str  # where it is defined: "layers[3]", "shared.s", "shared.blk.layers[0]"
    node: Layer
    signature: tuple[str, str]  # (type, arguments as JSON): what its calls' answers are remembered by
    built: _Built


@dataclass(frozen=True)
class _BlockPlan:
    leaves: tuple[str, ...]  # the (unique) layer modules under the block, by defining path
    program: Program | None  # a flow block's compiled flow
    skeleton: nn.Module | None  # a flow block's children by key (builder.flow.run walks calls through them)


# ~0.6 kB an answer (measured with tracemalloc): at most ~20 MB per app process, ten 2 000-layer designs' worth.
_BUILT: Answers[_Built] = Answers(5_000)
_CALLS: Answers[_Called] = Answers(20_000)
_STEPS: Answers[_Form] = Answers(10_000)
_SKELETON_LEAF = nn.Module()  # stands for a layer in a skeleton: the dry run never calls skeletons' modules


class _DryRun:
    """One dry run of a design: plan (check and construct every node, on meta), budget, run, budget again.

    The phases and the order of their errors are those of a real meta build: every layer constructs before
    the parameter budget is checked, which comes before any forward step. `remember=False` asks every
    question afresh (the from-scratch result the remembered one must equal)."""

    def __init__(self, design: Design, remember: bool = True) -> None:
        self.design = design
        self.limits = limits()
        self.remember = remember
        self.leaves: dict[str, _Leaf] = {}  # by defining path, in construction order
        self.blocks: dict[str, _BlockPlan] = {}  # by defining path ("" for the top, "shared.blk")
        self.shared_positions: dict[str, list[str]] = {}
        self.live: dict[str, nn.Module] = {}  # meta modules built in this run, in the state self.materialized says
        self.materialized: dict[str, _Form] = {}  # a lazy layer's first input: what torch inferred its sizes from
        self.counts: dict[str, tuple[int, int]] = {}  # each layer's (parameters, per_use) so far
        self.records: list[LayerRun] = []
        self.steps: list[StepRun] = []

    def run(self) -> DryRun:
        d = self.design
        positions = self.plan_block(d.top, "")
        unique = list(dict.fromkeys(positions))
        self.check_budget(unique, after_dry_run=False)
        x = example_input(d, device="meta")
        # Outside a device context: ops on meta tensors stay on meta, without its per-op dispatch cost.
        with torch.no_grad():
            y = self.run_block(d.top, "", x, "", depth=0, shared=None)
        self.check_never_run()
        self.check_budget(unique, after_dry_run=True)
        return DryRun(
            input_shape=tuple(x.shape),
            output_shape=tuple(y.shape),
            layers=tuple(self.records),
            parameters=sum(self.counts[p][0] for p in unique),
            parameters_per_use=sum(self.counts[p][1] for p in positions),
            steps=tuple(self.steps),
        )

    # -- plan: what _MetaBuilder.block constructs, in its order; returns the layers at each module position --

    def plan_block(self, block: Block, path: str) -> list[str]:
        shared = self.design.shared
        check_block(block, path, shared)  # designs made by editors were never parsed
        at = f"{path}." if path else ""
        positions = [p for i, n in enumerate(block.layers) for p in self.plan_node(n, f"{at}layers[{i}]")]
        program = skeleton = None
        if block.flow is not None:
            program = compile_flow(block.flow, lambda c: _layer_type(block, c, shared))
            skeleton = _skeleton(block, shared)
        self.blocks[path] = _BlockPlan(tuple(dict.fromkeys(positions)), program, skeleton)
        return positions

    def plan_node(self, node: Node, path: str) -> list[str]:
        if isinstance(node, Use):
            if node.shared not in self.shared_positions:
                where = f"shared.{node.shared}"
                self.shared_positions[node.shared] = self.plan_node(self.design.shared[node.shared], where)
            return self.shared_positions[node.shared]
        if isinstance(node, Block):
            return self.plan_block(node, path)
        signature = (node.type, json.dumps(node.args, sort_keys=True, default=repr))
        built = _BUILT.get(signature) if self.remember else None
        if built is None:
            with torch.device("meta"):
                module = _construct(node, path)
            sd = module.state_dict(keep_vars=True).values()
            built = _Built(
                parameters=sum(p.numel() for p in module.parameters() if not is_lazy(p)),
                per_use=sum(t.numel() for t in sd if isinstance(t, nn.Parameter) and not is_lazy(t)),
                lazy=any(is_lazy(t) for t in (*module.parameters(), *module.buffers())),
            )
            if self.remember:
                _BUILT.put(signature, built)
            self.live[path] = module
        self.leaves[path] = _Leaf(path, node, signature, built)
        self.counts[path] = (built.parameters, built.per_use)
        return [path]

    # -- budgets -------------------------------------------------------------------------------------

    def check_budget(self, unique: list[str], after_dry_run: bool) -> None:
        total = sum(self.counts[p][0] for p in unique)
        sizes = [(self.counts[p][0], p, self.leaves[p].node.type) for p in unique]
        _refuse_over_budget(self.limits.max_params, total, sizes, after_dry_run)

    def check_size(self, y: torch.Tensor, label: str, path: str) -> None:
        if y.numel() > self.limits.max_activation:
            raise DesignError(
                f"{label}: its output {tuple(y.shape)} has {y.numel():,} elements, over the "
                f"limit of {self.limits.max_activation:,} (BLOCKWORK_MAX_ACTIVATION)",
                path,
            )

    def check_never_run(self) -> None:
        """A lazy layer no flow calls never learns its sizes: refuse it before anything is allocated."""
        for path, leaf in self.leaves.items():
            if leaf.built.lazy and path not in self.materialized:
                lt = REGISTRY[leaf.node.type]
                raise DesignError(
                    f"{path} {leaf.node.type}: no flow ever calls it, so torch cannot infer its {lt.infers}; "
                    f"call it in its block's flow, or give the size with {lt.eager}",
                    path,
                )

    # -- the run -------------------------------------------------------------------------------------

    def run_block(
        self, block: Block, where: str, x: torch.Tensor, key: str, depth: int, shared: str | None
    ) -> torch.Tensor:
        """Run a block's children (depth: theirs) in order, or its flow through the flow walker.
        where: the block's defining path ("" for the top, "shared.blk" for a shared block)."""
        at, prefix = (f"{where}." if where else ""), (f"{key}." if key else "")
        plan = self.blocks[where]
        if plan.program is None:
            for i, node in enumerate(block.layers):
                x = self.run_node(node, x, f"{at}layers[{i}]", prefix + child_key(node, i), depth, shared)
            return x
        assert plan.skeleton is not None
        return run(plan.skeleton, plan.program, x, _FlowVisit(self, block, where, key, depth, shared), f"{at}flow")

    def run_node(
        self,
        node: Node,
        x: torch.Tensor,
        path: str,
        key: str,
        depth: int,
        shared: str | None,
        call: tuple[str, CompiledStep, str] | None = None,  # called by a flow: (step path, step, words for messages)
    ) -> torch.Tensor:
        use, where = shared, path
        if isinstance(node, Use):
            use, where = node.shared, f"shared.{node.shared}"
            node = self.design.shared[node.shared]
        if isinstance(node, Layer):
            return self.leaf(self.leaves[where], x, path, key, depth, use, call)
        inner = f"shared.{use}" if use and use != shared else path
        start = len(self.records)
        y = self.run_block(node, inner, x, key, depth + 1, use)
        if call is not None and call[1][3] is None and not isinstance(y, torch.Tensor):
            raise DesignError(f"{call[2]}{path}: returned {type(y).__name__}, not a tensor", call[0])
        count = sum(self.counts[p][0] for p in self.blocks[inner].leaves)
        kind = FLOW_TYPE if node.flow is not None else BLOCK_TYPE
        step = call[0] if call else None
        self.records.insert(
            start, LayerRun(path, key, kind, depth, tuple(x.shape), tuple(y.shape), count, use, step=step)
        )
        return y

    def leaf(
        self,
        leaf: _Leaf,
        x: torch.Tensor,
        path: str,
        key: str,
        depth: int,
        shared: str | None,
        call: tuple[str, CompiledStep, str] | None = None,
    ) -> torch.Tensor:
        node, lt = leaf.node, REGISTRY[leaf.node.type]
        words, at = (call[2], call[0]) if call else ("", path)
        label = f"{words}{path} {node.type}" + (f" (shared {shared!r})" if shared else "")
        state = self.materialized.get(leaf.path) if leaf.built.lazy else None
        given = _form(x)
        question = (leaf.signature, (call[1][2], call[1][3]) if call else None, state, given)
        answer = _CALLS.get(question) if self.remember else None
        if answer is None:
            y, answer = self.call(leaf, lt, x, label, at, state, call)
            if self.remember:
                _CALLS.put(question, answer)
        else:
            y = _meta(answer.output)
            if leaf.built.lazy and state is None:
                self.live.pop(leaf.path, None)  # not run here: a later call builds it afresh from the answer
        if leaf.built.lazy and state is None:
            self.materialized[leaf.path] = given
        self.counts[leaf.path] = (answer.parameters, answer.per_use)
        self.check_size(y, label, at)
        self.records.append(
            LayerRun(
                path,
                key,
                node.type,
                depth,
                given[0],
                answer.output[0],
                answer.parameters,
                shared,
                dict(answer.inferred),
                lt.is_lazy,
                step=call[0] if call else None,
            )
        )
        return y

    def call(
        self,
        leaf: _Leaf,
        lt: LayerType,
        x: torch.Tensor,
        label: str,
        at: str,
        state: _Form | None,
        call: tuple[str, CompiledStep, str] | None,
    ) -> tuple[torch.Tensor, _Called]:
        """Run the layer on meta: its checks, then torch's forward (which materializes a lazy layer)."""
        problem = check_input(lt, layer_kwargs(leaf.node), tuple(x.shape))
        if problem:
            raise DesignError(f"{label}: {problem}", at)
        if leaf.node.type == "Embedding" and x.dtype != torch.int64:
            raise DesignError(f"{label}: expects integer indices; set the input dtype to int64", at)
        if (lt.returns_tuple or lt.self_attention) and call is None:  # check_block refuses it; never pass a tuple on
            raise DesignError(
                f"{label}: returns a tuple ({', '.join(lt.outputs)}), which an nn.Sequential would hand on whole; "
                f"call it from a block's flow, which takes its {lt.default_output!r} (or the output you name)",
                at,
            )
        module = self.live.get(leaf.path)
        if module is None:
            with torch.device("meta"):
                module = _construct(leaf.node, leaf.path)
            if state is not None:  # torch materialized it at an earlier call, remembered: infer the same sizes
                module(_meta(state))
            self.live[leaf.path] = module
        try:
            y = invoke(call[1], module, x) if call else module(x)
        except (RuntimeError, ValueError, IndexError, TypeError, AssertionError) as e:
            raise DesignError(f"{label}: cannot take an input of shape {tuple(x.shape)}: {first_line(e)}", at) from None
        inferred = ((lt.infers, int(getattr(module, lt.infers))),) if lt.infers else ()
        sd = module.state_dict(keep_vars=True).values()
        return y, _Called(
            output=_form(y),
            inferred=inferred,
            parameters=sum(p.numel() for p in module.parameters()),
            per_use=sum(t.numel() for t in sd if isinstance(t, nn.Parameter)),
        )

    def step(self, question: Hashable, work: Callable[[], torch.Tensor]) -> torch.Tensor:
        """A parameter-free step's result (an op, a merge): remembered by its question, else `work()`."""
        known = _STEPS.get(question) if self.remember else None
        if known is not None:
            return _meta(known)
        y = work()
        if self.remember:
            _STEPS.put(question, _form(y))
        return y


def _skeleton(block: Block, shared: Mapping[str, Layer | Block]) -> nn.Module:
    """The block's children by key, nested blocks as their own children: what builder.flow.run walks a call's
    names through (the dry run's visitor does the call's work itself)."""
    skeleton = nn.Module()
    for i, node in enumerate(block.layers):
        inner = shared[node.shared] if isinstance(node, Use) else node
        skeleton._modules[child_key(node, i)] = _skeleton(inner, shared) if isinstance(inner, Block) else _SKELETON_LEAF
    return skeleton


class _FlowVisit:
    """The dry run's visitor of one flow block (builder.flow.run): checks each step, records its shapes."""

    def __init__(self, runner: _DryRun, block: Block, path: str, key: str, depth: int, shared: str | None) -> None:
        self.b, self.block, self.key, self.depth, self.shared = runner, block, key, depth, shared
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
        y = self.b.run_node(node, x, self.at + rel, key, depth, self.shared, (path, step, self.words(path)))
        self.record(path, "call", target + (f"[{step[3]}]" if step[3] else ""), x, y)
        return y

    def op(self, path: str, step: CompiledStep, x: torch.Tensor) -> torch.Tensor:
        label = f"{self.words(path)}{step[1]}"

        def work() -> torch.Tensor:
            try:
                return apply_op(step, x)
            except (RuntimeError, ValueError, IndexError, TypeError) as e:
                raise DesignError(
                    f"{label}: cannot take an input of shape {tuple(x.shape)}: {first_line(e)}", path
                ) from None

        y = self.b.step(("op", step[1], repr(step[2]), _form(x)), work)
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

        def work() -> torch.Tensor:
            try:
                return apply_merge(step, outs)
            except (RuntimeError, ValueError, IndexError, TypeError) as e:
                raise DesignError(
                    f"{label}: cannot join {', '.join(map(str, shapes))}: {first_line(e)}", path
                ) from None

        y = self.b.step(("merge", merge, dim, tuple(_form(o) for o in outs)), work)
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
