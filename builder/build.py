"""Designs become torch.nn modules: first on the `meta` device (no memory), then for real.

`dry_run(design)` builds the network on `meta`, runs the example input through it layer by layer (which
materializes torch's Lazy* layers and records every output shape) and checks the budgets, all without
allocating a single weight. `build(design, device)` does the same, then gives the network real storage on
the device with `to_empty` and initializes every layer with its own `reset_parameters` — the same
initialization (and, under a seed, the same random stream) as constructing it by hand.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from .design import Block, Design, Layer, Node, Use, child_key
from .errors import DesignError, first_line
from .init import apply as apply_init
from .init import initialize
from .limits import Limits, limits
from .registry import BLOCK_TYPE, REGISTRY, ArgError, check_args, check_input

_TORCH_DTYPES = {"float32": torch.float32, "int64": torch.int64}


@dataclass(frozen=True)
class LayerRun:
    """What the dry run saw at one position of the network."""

    path: str  # where the node sits in the design, e.g. "layers[2]" or "shared.blk.layers[0]"
    key: str  # its name in the built module, e.g. "2" or "0.net.0" (state_dict key prefix)
    type: str  # registry type, or "Sequential" for a block
    depth: int  # 0 for top-level layers
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    parameters: int  # parameters of this module and its children (a shared layer: at each of its uses)
    shared: str | None = None  # the shared layer this position uses (also set inside a shared block)
    inferred: Mapping[str, int] = field(default_factory=dict)  # lazy sizes torch inferred: {"in_features": 20}
    lazy: bool = False  # a Lazy* layer (before the dry run its `inferred` sizes are unknown)


@dataclass(frozen=True)
class DryRun:
    """Output shapes and parameter counts of a design, found on the meta device."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    layers: tuple[LayerRun, ...]  # every node in forward order, blocks before their children
    parameters: int  # unique parameters: a shared layer counted once
    parameters_per_use: int  # a shared layer counted at every position that uses it

    def by_key(self) -> dict[str, LayerRun]:
        return {r.key: r for r in self.layers}


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

    The top module is an nn.Sequential; blocks are nested nn.Sequentials; a shared layer is one module
    object at every position that uses it. With `seed` (else the design's own `seed`), weights are reproducible
    (and equal to hand-written construction under torch.manual_seed(seed) for designs without shared layers
    or init methods). The global RNG is left as it was when a seed is given. The design's `init` methods
    (builder.init) run after PyTorch's default initialization.
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

    def run(self) -> tuple[nn.Module, DryRun]:
        d = self.design
        with torch.device("meta"):
            net = self.sequential(d.layers, "layers")
        self.check_budget(net, after_dry_run=False)
        x = example_input(d, device="meta")
        # Outside the device context: ops on meta tensors stay on meta, without its per-op dispatch cost.
        with torch.no_grad():
            y = self.forward(d.layers, net, x, "layers", "", depth=0, shared=None)
        self.check_budget(net, after_dry_run=True)
        per_use = sum(t.numel() for k, t in net.state_dict(keep_vars=True).items() if isinstance(t, nn.Parameter))
        unique = sum(p.numel() for p in net.parameters())
        return net, DryRun(
            input_shape=tuple(x.shape),
            output_shape=tuple(y.shape),
            layers=tuple(self.records),
            parameters=unique,
            parameters_per_use=per_use,
        )

    def materialize(self, device: torch.device, keep_rng: bool) -> nn.Module:
        """Construct on `device` and materialize lazy layers by a forward pass, as hand-written code does.
        Only for a design whose meta dry run passed: nothing here checks sizes. keep_rng: leave the caller's
        RNG as it was (the weights drawn here are about to be redrawn under a seed)."""
        fork = torch.random.fork_rng(devices=[device] if device.type == "cuda" else []) if keep_rng else None
        with fork or contextlib.nullcontext():
            with torch.device(device) if device.type != "cpu" else contextlib.nullcontext():
                net = self.sequential(self.design.layers, "layers")
            with torch.no_grad():
                net(example_input(self.design, device=device))
        return net

    # -- instantiation (on meta) ---------------------------------------------------------------------

    def sequential(self, nodes: tuple[Node, ...], path: str) -> nn.Sequential:
        children = [(child_key(n, i), self.module(n, f"{path}[{i}]")) for i, n in enumerate(nodes)]
        if all(n.name is None for n in nodes):
            return nn.Sequential(*(m for _, m in children))
        return nn.Sequential(OrderedDict(children))

    def module(self, node: Node, path: str) -> nn.Module:
        if isinstance(node, Use):
            if node.shared not in self.shared_modules:
                self.shared_modules[node.shared] = self.module(self.design.shared[node.shared], f"shared.{node.shared}")
            return self.shared_modules[node.shared]
        if isinstance(node, Block):
            return self.sequential(node.layers, f"{path}.layers")
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

    def forward(
        self,
        nodes: tuple[Node, ...],
        seq: nn.Sequential,
        x: torch.Tensor,
        path: str,
        prefix: str,
        depth: int,
        shared: str | None,
    ) -> torch.Tensor:
        for i, node in enumerate(nodes):
            node_path, key = f"{path}[{i}]", prefix + child_key(node, i)
            module = seq[i]
            use = shared
            if isinstance(node, Use):
                use = node.shared
                node = self.design.shared[node.shared]
            if isinstance(node, Block):
                sub = f"shared.{use}.layers" if use and use != shared else f"{node_path}.layers"
                start = len(self.records)
                assert isinstance(module, nn.Sequential)
                y = self.forward(node.layers, module, x, sub, key + ".", depth + 1, use)
                count = sum(p.numel() for p in module.parameters())
                self.records.insert(
                    start, LayerRun(node_path, key, BLOCK_TYPE, depth, tuple(x.shape), tuple(y.shape), count, use)
                )
            else:
                y = self.leaf(node, module, x, node_path, key, depth, use)
            x = y
        return x

    def leaf(
        self, node: Layer, module: nn.Module, x: torch.Tensor, path: str, key: str, depth: int, shared: str | None
    ) -> torch.Tensor:
        lt = REGISTRY[node.type]
        label = f"{path} {node.type}" + (f" (shared {shared!r})" if shared else "")
        if lt.returns_tuple or lt.self_attention:
            raise DesignError(
                f"{label}: returns a tuple ({', '.join(lt.outputs)}), which an nn.Sequential would hand on whole; "
                f"call it from a block's flow, which takes its {lt.default_output!r} (or the output you name)",
                path,
            )
        problem = check_input(lt, layer_kwargs(node), tuple(x.shape))
        if problem:
            raise DesignError(f"{label}: {problem}", path)
        if node.type == "Embedding" and x.dtype != torch.int64:
            raise DesignError(f"{label}: expects integer indices; set the input dtype to int64", path)
        try:
            y: torch.Tensor = module(x)
        except (RuntimeError, ValueError, IndexError, TypeError) as e:
            raise DesignError(
                f"{label}: cannot take an input of shape {tuple(x.shape)}: {first_line(e)}", path
            ) from None
        if y.numel() > self.limits.max_activation:
            raise DesignError(
                f"{label}: its output {tuple(y.shape)} has {y.numel():,} elements, over the "
                f"limit of {self.limits.max_activation:,} (BLOCKWORK_MAX_ACTIVATION)",
                path,
            )
        inferred = {lt.infers: int(getattr(module, lt.infers))} if lt.infers else {}
        count = sum(p.numel() for p in module.parameters())
        self.records.append(
            LayerRun(path, key, node.type, depth, tuple(x.shape), tuple(y.shape), count, shared, inferred, lt.is_lazy)
        )
        return y
