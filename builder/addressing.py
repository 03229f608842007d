"""Addressing nodes of a design's stack: paths of indices, their text form, and walking/looking up by path.

A node is addressed by a path of indices into the stack, consistent with `Design.walk()`: `(0, 2)` is
`layers[0].layers[2]`, the text form every builder message uses (`format_path` / `parse_path`). This is
the one parser of such text paths: the editor (`builder.edit`) and initialization (`builder.init`) both
use it. Nothing here changes a design except `with_children` / `with_node`, which return an unchecked copy
(the editor checks its results).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import TypeAlias

from .design import Block, Design, Node, Use
from .errors import DesignError

Path: TypeAlias = tuple[int, ...]

__all__ = [
    "Path",
    "check_path",
    "children_of",
    "format_path",
    "locate",
    "node_at",
    "parse_path",
    "paths",
    "siblings_of",
    "uses",
    "with_children",
    "with_node",
]

_STEP = re.compile(r"layers\[(\d+)\]")


def format_path(path: Path) -> str:
    """(0, 2) -> "layers[0].layers[2]", the design path builder's messages use."""
    return ".".join(f"layers[{i}]" for i in path)


def parse_path(text: str) -> Path:
    """ "layers[0].layers[2]" -> (0, 2). Raises DesignError (its `path` is `text`) for anything that is not
    a path in the stack, such as "shared.x" or "layers[x]"."""
    steps = text.split(".") if text else []
    out = []
    for step in steps:
        m = _STEP.fullmatch(step)
        if not m:
            raise DesignError(
                f"{text!r} is not a path in the stack (not a layer's path like layers[0] or layers[1].layers[2])",
                text,
            )
        out.append(int(m.group(1)))
    if not out:
        raise DesignError("an empty path does not name a layer")
    return tuple(out)


def paths(design: Design) -> Iterator[tuple[Path, Node]]:
    """Every node of the stack in forward order (blocks before their children), as `Design.walk()`."""

    def walk(nodes: tuple[Node, ...], prefix: Path) -> Iterator[tuple[Path, Node]]:
        for i, node in enumerate(nodes):
            yield (*prefix, i), node
            if isinstance(node, Block):
                yield from walk(node.layers, (*prefix, i))

    yield from walk(design.layers, ())


def node_at(design: Design, path: Path) -> Node:
    """The node at `path`. Raises DesignError when there is none."""
    return siblings_of(design, path)[path[-1]]


def uses(design: Design, name: str) -> list[Path]:
    """Where the shared layer `name` is used, in forward order."""
    return [p for p, n in paths(design) if isinstance(n, Use) and n.shared == name]


def locate(design: Design, error_path: str | None) -> list[Path]:
    """The stack nodes an error's design path points at: the deepest node on the path
    ("layers[3].in_features" -> [(3,)]), or every use of a shared layer ("shared.tied.out_features")."""
    if not error_path:
        return []
    if error_path.startswith("shared."):
        name = error_path.split(".")[1].split("[")[0]
        return uses(design, name)
    found: Path = ()
    for p, _ in paths(design):
        text = format_path(p)
        if (error_path == text or error_path.startswith(text + ".")) and len(p) > len(found):
            found = p
    return [found] if found else []


def check_path(path: Path) -> None:
    """Refuse anything but a non-empty tuple of non-negative indices."""
    if not path or any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in path):
        raise DesignError(f"{path!r} is not a path in the stack (a tuple of indices such as (0, 2))")


def children_of(design: Design, path: Path) -> tuple[Node, ...]:
    """The children of the block at `path` (the stack itself for ())."""
    nodes = design.layers
    for depth, i in enumerate(path):
        if not 0 <= i < len(nodes):
            raise DesignError(f"there is no layer at {format_path(path[: depth + 1])}")
        node = nodes[i]
        if not isinstance(node, Block):
            raise DesignError(f"{format_path(path[: depth + 1])} is not a block; layers cannot hold others")
        nodes = node.layers
    return nodes


def siblings_of(design: Design, path: Path) -> tuple[Node, ...]:
    """The children of the block holding `path`, checking that `path` names a node."""
    check_path(path)
    parent = children_of(design, path[:-1])
    if path[-1] >= len(parent):
        raise DesignError(f"there is no layer at {format_path(path)}")
    return parent


def with_children(design: Design, path: Path, children: tuple[Node, ...]) -> Design:
    """`design` with the children of the block at `path` (the stack for ()) replaced; not checked."""

    def rebuild(nodes: tuple[Node, ...], rest: Path) -> tuple[Node, ...]:
        if not rest:
            return children
        i = rest[0]
        block = nodes[i]
        assert isinstance(block, Block)
        return (*nodes[:i], replace(block, layers=rebuild(block.layers, rest[1:])), *nodes[i + 1 :])

    return replace(design, layers=rebuild(design.layers, path))


def with_node(design: Design, path: Path, node: Node) -> Design:
    """`design` with `node` at `path` in place of what is there; not checked."""
    parent = siblings_of(design, path)
    i = path[-1]
    return with_children(design, path[:-1], (*parent[:i], node, *parent[i + 1 :]))
