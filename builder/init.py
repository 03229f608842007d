"""Initialization as part of the design (d2l 6.3): which method fills which layer's weights, and a seed.

A design may say how its weights start, for all layers or per layer:

    {"seed": 0, "init": {"method": "xavier_uniform"},
     "layers": [{"type": "Linear", "in_features": 20, "out_features": 256, "init": {"method": "normal", "std": 0.01}},
                ...]}

`init` on the design is the default for every layer with a weight matrix or kernel (Linear, convolutions,
MyLinear, Embedding); `init` on a block applies to the layers inside it; `init` on a layer wins. A shared
layer takes its `init` from its own definition (or the design's default), never from a block that uses it,
because it is one module wherever it sits. Biases are set to zero unless the spec says `"bias": "default"`;
`with_init` (what editors call) always writes the bias down, as the chapter treats it beside the method (zeros
beside normal and constant, kept beside Xavier, Kaiming and my_init).

Order matters for reproducibility: every layer is first reset by its own `reset_parameters` (PyTorch's
default) in `net.modules()` order, then the chosen methods run in the same order. The exported code
(`to_code`) copies the method functions (`builder.init_methods`) verbatim and calls them in the same order,
so under the same seed it produces the same weights. What a spec may say and its checks are
`builder.init_spec`'s (a leaf module, so `builder.design` can check specs without importing this one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .addressing import parse_path
from .design import Block, Design, Layer, Node, Use, child_key
from .errors import DesignError
from .init_methods import zero_bias
from .init_spec import INIT_TYPES, bias_zeroed, check_init, check_seed, describe, kwargs_of, method_fn, with_bias
from .reset import reset_like_construction

# -- which layer gets what ---------------------------------------------------------------------------------


def plan(design: Design) -> list[tuple[str, str, dict[str, Any]]]:
    """(module key, layer type, spec) for every layer that gets a non-default method, in net.modules() order.

    A shared layer appears once, at its first use (where net.modules() meets it).
    """
    out: list[tuple[str, str, dict[str, Any]]] = []
    seen: set[str] = set()

    def visit(nodes: tuple[Node, ...], prefix: str, inherited: Mapping[str, Any] | None) -> None:
        for i, node in enumerate(nodes):
            key = prefix + child_key(node, i)
            target: Layer | Block
            if isinstance(node, Use):
                if node.shared in seen:
                    continue
                seen.add(node.shared)
                target, own = design.shared[node.shared], design.init  # shared: its own, else the design's
            else:
                target, own = node, inherited
            spec = target.init if target.init is not None else own
            if isinstance(target, Block):
                visit(target.layers, key + ".", spec)
            elif spec is not None and spec["method"] != "default" and target.type in INIT_TYPES:
                out.append((key, target.type, dict(spec)))

    visit(design.layers, "", design.init)
    return out


# -- running it --------------------------------------------------------------------------------------------


def reset_to_defaults(net: nn.Module) -> None:
    """Initialize every layer as its constructor would, in construction order (shared layers once)."""
    reset_like_construction(net)


def apply(net: nn.Module, design: Design) -> None:
    """Run the design's chosen methods on an already reset network (no seeding here: see `initialize`)."""
    with torch.no_grad():
        for key, _, spec in plan(design):
            module = net.get_submodule(key)
            method_fn(spec["method"])(module, **kwargs_of(spec))
            if bias_zeroed(spec):
                zero_bias(module)


def initialize(net: nn.Module, design: Design, seed: int | None = None) -> None:
    """Re-initialize `net` (built from `design`) in place: PyTorch's default for every layer, then the
    design's methods. `seed` (else the design's seed) makes it reproducible; the global RNG is restored."""
    seed = design.seed if seed is None else seed
    if seed is None:
        reset_to_defaults(net)
        apply(net, design)
        return
    devices = sorted({t.device for t in net.parameters() if t.device.type == "cuda"}, key=str)
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        reset_to_defaults(net)
        apply(net, design)


# -- editing a design's initialization ---------------------------------------------------------------------


def eligible(design: Design) -> list[tuple[str, str]]:
    """(design path, module key) of every layer an init applies to, shared definitions as "shared.<name>"."""
    out = [(p, k) for p, k, n in design.walk() if isinstance(n, Layer) and n.type in INIT_TYPES]
    out += [
        (f"shared.{name}", f"shared '{name}'")
        for name, n in design.shared.items()
        if isinstance(n, Layer) and n.type in INIT_TYPES
    ]
    return out


def with_init(design: Design, path: str | None, spec: Mapping[str, Any] | None) -> Design:
    """A copy of `design` with `spec` as the init at `path` (None: the design's default; a spec of None
    removes it: the layer goes back to using the design's default). `path` is a design path such as
    "layers[2]", "layers[0].layers[1]" or "shared.name". A spec without "bias" gets the chapter's bias for its
    method (`init_spec.with_bias`)."""
    checked = None if spec is None else with_bias(check_init(dict(spec), "init"))
    if path is None:
        return dataclasses.replace(design, init=checked)
    if path.startswith("shared."):
        name = path.removeprefix("shared.")
        if name not in design.shared:
            raise DesignError(f"{path}: no such shared layer", path)
        shared = dict(design.shared)
        shared[name] = _set_node_init(shared[name], checked, path)
        return dataclasses.replace(design, shared=shared)
    steps = parse_path(path)
    return dataclasses.replace(design, layers=_set_in(design.layers, steps, checked, path))


def with_seed(design: Design, seed: int | None) -> Design:
    return dataclasses.replace(design, seed=check_seed(seed))


def _set_in(
    nodes: tuple[Node, ...], steps: tuple[int, ...], spec: Mapping[str, Any] | None, path: str
) -> tuple[Node, ...]:
    i = steps[0]
    if not 0 <= i < len(nodes):
        raise DesignError(f"{path}: no such layer", path)
    node = nodes[i]
    if len(steps) > 1:
        if not isinstance(node, Block):
            raise DesignError(f"{path}: no such layer", path)
        node = dataclasses.replace(node, layers=_set_in(node.layers, steps[1:], spec, path))
    else:
        node = _set_node_init(node, spec, path)
    return (*nodes[:i], node, *nodes[i + 1 :])


def _set_node_init(node: Node, spec: Mapping[str, Any] | None, path: str) -> Layer | Block:
    if isinstance(node, Use):
        raise DesignError(
            f"{path}: a use of a shared layer takes its init from the shared definition (shared.{node.shared})", path
        )
    if isinstance(node, Layer) and spec is not None and node.type not in INIT_TYPES:
        raise DesignError(f"{path}: {node.type} has no weight matrix or kernel to initialize", path)
    return dataclasses.replace(node, init=spec)


def own_inits(design: Design) -> list[str]:
    """The design paths of every layer, block and shared definition with its own init, in design order:
    the places a design-wide default does not reach."""
    out = [p for p, _, n in design.walk() if not isinstance(n, Use) and n.init is not None]
    for name, node in design.shared.items():
        if node.init is not None:
            out.append(f"shared.{name}")
        if isinstance(node, Block):
            out += [
                f"shared.{name}.{p}" for p, _, n in _walk_block(node) if not isinstance(n, Use) and n.init is not None
            ]
    return out


def with_init_everywhere(design: Design, spec: Mapping[str, Any] | None) -> Design:
    """A copy of `design` with `spec` as its default and every layer's, block's and shared definition's own
    init removed, so that the one method reaches every layer (None: PyTorch's default everywhere)."""
    checked = None if spec is None else with_bias(check_init(dict(spec), "init"))

    def clear(node: Node) -> Node:
        if isinstance(node, Use):
            return node
        if isinstance(node, Block):
            return dataclasses.replace(node, init=None, layers=tuple(clear(n) for n in node.layers))
        return dataclasses.replace(node, init=None)

    shared = {name: clear(node) for name, node in design.shared.items()}
    return dataclasses.replace(
        design,
        init=checked,
        layers=tuple(clear(n) for n in design.layers),
        shared=shared,  # type: ignore[arg-type]
    )


@dataclasses.dataclass(frozen=True)
class InitRow:
    """How one layer's weights start, and why: the row of a per-layer initialization table."""

    path: str  # design path, e.g. "layers[2]" or "shared.name"
    key: str  # module key at its first use, e.g. "2" (a shared definition: "shared 'name'")
    type: str  # layer type, e.g. "Linear"
    own: str  # its own setting described, or "" when it has none (it uses what it inherits)
    applied: str  # what it gets, described: "normal(std=0.01), bias zeros", "PyTorch default"
    source: str  # where that comes from: "its own", "block layers[1]", "the design's default", "nothing chosen"


def init_table(design: Design) -> list[InitRow]:
    """One row per layer an init applies to (`eligible`), saying what it gets and from where."""
    rows: list[InitRow] = []

    def source_of(inherited: tuple[Mapping[str, Any] | None, str]) -> tuple[Mapping[str, Any] | None, str]:
        return inherited if inherited[0] is not None else (None, "nothing chosen: PyTorch's default")

    def visit(nodes: tuple[Node, ...], path: str, prefix: str, inherited: tuple[Mapping[str, Any] | None, str]) -> None:
        for i, node in enumerate(nodes):
            p, k = f"{path}[{i}]", prefix + child_key(node, i)
            if isinstance(node, Use):
                continue
            if isinstance(node, Block):
                visit(node.layers, f"{p}.layers", k + ".", (node.init, f"block {p}") if node.init else inherited)
            elif node.type in INIT_TYPES:
                spec, source = (node.init, "its own") if node.init is not None else source_of(inherited)
                rows.append(InitRow(p, k, node.type, describe(node.init) if node.init else "", describe(spec), source))

    default = (design.init, "the design's default")
    visit(design.layers, "layers", "", default)
    for name, node in design.shared.items():
        if isinstance(node, Layer) and node.type in INIT_TYPES:
            spec, source = (node.init, "its own") if node.init is not None else source_of(default)
            own = describe(node.init) if node.init else ""
            rows.append(InitRow(f"shared.{name}", f"shared '{name}'", node.type, own, describe(spec), source))
    return rows


def _walk_block(block: Block) -> list[tuple[str, str, Node]]:
    out: list[tuple[str, str, Node]] = []

    def visit(nodes: tuple[Node, ...], path: str) -> None:
        for i, node in enumerate(nodes):
            out.append((f"{path}[{i}]", "", node))
            if isinstance(node, Block):
                visit(node.layers, f"{path}[{i}].layers")

    visit(block.layers, "layers")
    return out
