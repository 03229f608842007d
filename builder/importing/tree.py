"""The one shape both importers (pasted code, a live module) produce before it becomes a design.

`Leaf` is a registry layer with its constructor arguments; `Branchy` is a block: its children under their
state_dict keys and, when forward is more than running them in order, its flow (FLOW-SPEC steps). Sharing is
object identity, as in PyTorch: the same Leaf or Branchy placed at several keys is one shared layer.
`to_design` turns the tree into a validated Design: names as the keys, shared definitions and uses, the flow.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import design as design_module
from ..design import Design
from ..errors import DesignError
from ..registry import BLOCK_TYPE, REGISTRY

FLOW_TYPE = "Module"  # FLOW-SPEC: a block with a flow is {"type": "Module", "class": ..., "layers", "flow"}


@dataclass(eq=False)
class Leaf:
    """One registry layer: `type` is its registry name, `args` its constructor arguments as JSON values."""

    type: str
    args: dict[str, Any] = field(default_factory=dict)
    label: str | None = None  # a name the source gave it (`shared = nn.Linear(8, 8)`), for a shared definition


@dataclass(eq=False)
class Branchy:
    """A block: children by state_dict key (in registration order) and the flow of its forward.

    flow None: nn.Sequential (children in order). cls: the class name a flow block is built as.
    """

    children: list[tuple[str, Leaf | Branchy]] = field(default_factory=list)
    flow: list[Any] | None = None
    cls: str | None = None
    label: str | None = None

    def walk(self, prefix: str = "") -> Iterator[tuple[str, Leaf | Branchy]]:
        """(dotted key, node) of everything below, parents first; a node met again is not entered again."""
        seen: set[int] = set()

        def visit(node: Branchy, pre: str) -> Iterator[tuple[str, Leaf | Branchy]]:
            for key, child in node.children:
                yield pre + key, child
                if isinstance(child, Branchy) and id(child) not in seen:
                    seen.add(id(child))
                    yield from visit(child, pre + key + ".")

        yield from visit(self, prefix)


Node = Leaf | Branchy


def flows_supported() -> bool:
    """Whether this Blockwork reads flow blocks (design format 2)."""
    return design_module.FORMAT >= 2


def to_design(
    top: Node, *, name: str, input_shape: tuple[int, ...], input_dtype: str = "float32", description: str = ""
) -> Design:
    """The tree as a Design. A top Leaf is refused (a design's top is a block; its keys would gain "0.")."""
    if isinstance(top, Leaf):
        raise DesignError(
            f"the network is a single {top.type} layer; a design's top is a block of layers (wrap it in "
            f"nn.Sequential, whose keys start with '0.')"
        )
    for _, node in [("", top), *top.walk()]:
        if isinstance(node, Branchy):
            _Emitter.lower(node)
    emitter = _Emitter(top)
    data: dict[str, Any] = {
        "format": max(design_module.FORMAT, 1),
        "name": name[:100] or "imported",
        "input": {"shape": list(input_shape)} | ({"dtype": input_dtype} if input_dtype != "float32" else {}),
    }
    if description:
        data["description"] = description[:5_000]
    data["layers"] = emitter.children(top)
    if top.flow is not None:
        emitter.require_flows(top)
        data["flow"] = top.flow
        if top.cls:
            data["class"] = top.cls
    if emitter.shared:
        data["shared"] = emitter.shared
    return Design.from_dict(data)


class _Emitter:
    def __init__(self, top: Branchy) -> None:
        counts: dict[int, int] = {}
        for _, node in top.walk():
            counts[id(node)] = counts.get(id(node), 0) + 1
        self.repeated = {i for i, n in counts.items() if n > 1}
        self.names: dict[int, str] = {}
        self.shared: dict[str, Any] = {}

    def require_flows(self, node: Branchy) -> None:
        if not flows_supported():
            raise DesignError(
                f"{node.cls or 'a block'}: its forward is not a plain chain of its children; this Blockwork "
                f"reads chains only (design format 1)"
            )

    @staticmethod
    def lower(node: Branchy) -> bool:
        """Before flow blocks (design format 1): a forward that calls every child once, in order, with
        activations between, is a Sequential whose activation layers hold no weights — same keys, same
        outputs. True when `node` was rewritten so."""
        if node.flow is None or flows_supported():
            return False
        names = [k for k, _ in node.children]
        called = [s for s in node.flow if isinstance(s, str)]
        ops = [s for s in node.flow if not isinstance(s, str)]
        if called != names or any(s.get("op") not in _LAYER_OF_OP for s in ops):
            return False
        by_name = dict(node.children)
        layers: list[tuple[str, Node]] = []
        for step in node.flow:
            if isinstance(step, str):
                layers.append((step, by_name[step]))
            else:
                layer_type, arg_names = _LAYER_OF_OP[step["op"]]
                layers.append((str(len(layers)), Leaf(layer_type, {a: step[a] for a in arg_names if a in step})))
        node.children, node.flow = layers, None
        return True

    def children(self, block: Branchy) -> list[dict[str, Any]]:
        out = []
        for i, (key, child) in enumerate(block.children):
            entry = self.use(child) if id(child) in self.repeated else self.node(child)
            if key != str(i):
                entry["name"] = key
            out.append(entry)
        return out

    def use(self, node: Node) -> dict[str, Any]:
        name = self.names.get(id(node))
        if name is None:
            name = self.shared_name(node)
            self.names[id(node)] = name
            self.shared[name] = self.node(node)
        return {"shared": name}

    def shared_name(self, node: Node) -> str:
        base = re.sub(r"\W", "_", node.label or "")
        if not base or not base.isidentifier():
            base = "shared"
        name, n = base[:60], 2
        while name in self.shared:
            name, n = f"{base[:56]}_{n}", n + 1
        return name

    def node(self, node: Node) -> dict[str, Any]:
        if isinstance(node, Leaf):
            if node.type not in REGISTRY:
                raise DesignError(f"{node.type} is not a Blockwork layer type")
            return {"type": node.type, **node.args}
        entry: dict[str, Any]
        if node.flow is None:
            entry = {"type": BLOCK_TYPE, "layers": self.children(node)}
        else:
            self.require_flows(node)
            entry = {"type": FLOW_TYPE, "layers": self.children(node), "flow": node.flow}
            if node.cls:
                entry["class"] = node.cls
        return entry


_LAYER_OF_OP: dict[str, tuple[str, tuple[str, ...]]] = {
    "relu": ("ReLU", ()),
    "sigmoid": ("Sigmoid", ()),
    "tanh": ("Tanh", ()),
    "gelu": ("GELU", ()),
    "silu": ("SiLU", ()),
    "leaky_relu": ("LeakyReLU", ("negative_slope",)),
    "softmax": ("Softmax", ("dim",)),
    "log_softmax": ("LogSoftmax", ("dim",)),
    "flatten": ("Flatten", ("start_dim", "end_dim")),
}
