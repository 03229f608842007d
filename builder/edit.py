"""Editing designs: pure functions that take a Design and return a new one.

Nothing here mutates a design or touches Streamlit; the Design page calls these and a notebook can too:

    from builder import edit, forms
    d = edit.insert(d, (2,), forms.make_layer("Linear", {"in_features": 8, "out_features": 8}))
    d = edit.share(d, (2,), "shared")         # layers[2] becomes a use of the shared layer 'shared'
    d = edit.use_shared(d, (4,), "shared")    # ...used again at layers[4]: the same module object

Nodes are addressed by a path of indices into the stack (`builder.addressing`: `(0, 2)` is
`layers[0].layers[2]`). An insertion path names where the new node will sit, so `(len(parent),)` appends.
Shared definitions are addressed by their name. The editor's form model (typed text -> layer) is
`builder.forms`; its undo history `builder.undo.UndoHistory`.

Every edit returns a design that `Design.from_dict` accepts (the result is re-read, so its arguments are in
canonical form) and raises DesignError with a message a person can act on when the edit is impossible
(moving the first layer up, grouping layers from different blocks, a name already taken...). Whether the
result *builds* (shapes fit) is the dry run's question, not the editor's: a half-finished design is a
normal state while editing. The one exception to "at least one layer" is the empty stack that `clear` (or
deleting the last layer) gives to start from; such a design is for the editor only (it does not build and
cannot be read back until a layer is added).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from .addressing import (
    Path,
    check_path,
    children_of,
    format_path,
    node_at,
    paths,
    siblings_of,
    uses,
    with_children,
    with_node,
)
from .design import DTYPES, Block, Design, Node, Use
from .errors import DesignError
from .forms import make_layer

__all__ = [
    "clear",
    "delete",
    "delete_shared",
    "duplicate",
    "group",
    "insert",
    "move",
    "rename",
    "rename_shared",
    "replace_node",
    "set_args",
    "set_input",
    "share",
    "suggest_name",
    "ungroup",
    "unshare",
    "use_shared",
]


# -- editing the stack ---------------------------------------------------------------------------------


def insert(design: Design, path: Path, node: Node) -> Design:
    """Insert `node` so that it sits at `path` (the last index may equal the parent's length: append)."""
    check_path(path)
    parent = children_of(design, path[:-1])
    i = path[-1]
    if not 0 <= i <= len(parent):
        raise DesignError(f"cannot insert at {format_path(path)}: that block has {len(parent)} layers")
    return _checked(with_children(design, path[:-1], (*parent[:i], node, *parent[i:])))


def delete(design: Design, path: Path) -> Design:
    """Remove the node at `path`. A shared layer whose last use goes with it is dropped from `shared`.

    Refuses to empty a block (delete or ungroup the block instead); deleting the stack's only layer gives an
    empty design (as `clear`).
    """
    parent = siblings_of(design, path)
    if len(path) > 1 and len(parent) == 1:
        raise DesignError(
            f"cannot delete {format_path(path)}: it is the only layer of block "
            f"{format_path(path[:-1])}; delete or ungroup the block instead",
            format_path(path),
        )
    i = path[-1]
    out = with_children(design, path[:-1], parent[:i] + parent[i + 1 :])
    return _checked(_drop_unused_shared(out, design))


def move(design: Design, path: Path, offset: int) -> Design:
    """Move the node at `path` `offset` places within its block (-1: up, towards the input; +1: down)."""
    parent = siblings_of(design, path)
    i = path[-1]
    j = i + offset
    if offset == 0:
        return design
    where = "the stack" if len(path) == 1 else f"block {format_path(path[:-1])}"
    if j < 0 or j >= len(parent):
        up = j < 0
        if i == (0 if up else len(parent) - 1):
            reason = f"it is already the {'first' if up else 'last'} layer of {where}"
        else:
            room = i if up else len(parent) - 1 - i
            reason = f"only {room} layer{'s' if room != 1 else ''} {'above' if up else 'below'} it in {where}"
        raise DesignError(f"cannot move {format_path(path)} {'up' if up else 'down'}: {reason}", format_path(path))
    items = list(parent)
    items.insert(j, items.pop(i))
    return _checked(with_children(design, path[:-1], tuple(items)))


def duplicate(design: Design, path: Path) -> Design:
    """Insert a copy of the node right after it. A copy of a use is another use of the same shared layer
    (same weights); a copy of a layer or block has its own weights. A named node's copy gets a free name
    ("linear" -> "linear_2")."""
    parent = siblings_of(design, path)
    node = parent[path[-1]]
    if node.name is not None:
        node = replace(node, name=_free_name(node.name, {n.name for n in parent if n.name}))
    return insert(design, (*path[:-1], path[-1] + 1), node)


def group(design: Design, selection: Sequence[Path], name: str | None = None) -> Design:
    """Wrap consecutive siblings into one block (an nn.Sequential), named or indexed, where the first was."""
    chosen = sorted(set(selection))
    if not chosen:
        raise DesignError("select the layers to group first")
    parent_path = chosen[0][:-1]
    if any(p[:-1] != parent_path for p in chosen):
        raise DesignError(
            "group: the selected layers must sit in the same block (select "
            + ", ".join(format_path(p) for p in chosen)
            + " from one level)"
        )
    idx = [p[-1] for p in chosen]
    if idx != list(range(idx[0], idx[0] + len(idx))):
        raise DesignError(
            f"group: the selected layers must be next to each other, got {', '.join(format_path(p) for p in chosen)}"
        )
    parent = siblings_of(design, chosen[0])
    if idx[-1] >= len(parent):
        raise DesignError(f"group: there is no layer at {format_path(chosen[-1])}")
    start, stop = idx[0], idx[-1] + 1
    block = Block(layers=parent[start:stop], name=name or None)
    return _checked(with_children(design, parent_path, (*parent[:start], block, *parent[stop:])))


def ungroup(design: Design, path: Path) -> Design:
    """Replace the block at `path` by its children, in place."""
    parent = siblings_of(design, path)
    node = parent[path[-1]]
    if isinstance(node, Use):
        raise DesignError(
            f"cannot ungroup {format_path(path)}: it is a use of shared layer {node.shared!r}; unshare it first",
            format_path(path),
        )
    if not isinstance(node, Block):
        raise DesignError(
            f"cannot ungroup {format_path(path)}: it is a {node.type} layer, not a block", format_path(path)
        )
    i = path[-1]
    others = {n.name: j for j, n in enumerate(parent) if n.name and j != i}
    for child in node.layers:
        if child.name in others:
            raise DesignError(
                f"cannot ungroup {format_path(path)}: its child {child.name!r} would clash with "
                f"{format_path((*path[:-1], others[child.name]))}, which has the same name; "
                f"rename one first",
                format_path(path),
            )
    return _checked(with_children(design, path[:-1], (*parent[:i], *node.layers, *parent[i + 1 :])))


def rename(design: Design, path: Path, name: str | None) -> Design:
    """Give the node at `path` a name (its key in the module and state_dict), or None / "" to index it."""
    parent = siblings_of(design, path)
    node = parent[path[-1]]
    name = name.strip() if isinstance(name, str) else None
    name = name or None
    if name is not None:
        for j, other in enumerate(parent):
            if j != path[-1] and other.name == name:
                raise DesignError(
                    f"{format_path(path)}.name: {name!r} is already the name of {format_path((*path[:-1], j))}",
                    f"{format_path(path)}.name",
                )
    return replace_node(design, path, replace(node, name=name))


def replace_node(design: Design, path: Path, node: Node) -> Design:
    """Put `node` at `path` in place of what is there."""
    return _checked(with_node(design, path, node))


def set_args(design: Design, path: Path, values: Mapping[str, Any]) -> Design:
    """Set the arguments of the layer at `path` from form values (see `make_layer`: an empty input size
    makes the layer lazy, a given one makes it eager again). At a use, the shared definition changes, and
    so does every use of it."""
    node = node_at(design, path)
    if isinstance(node, Block):
        raise DesignError(f"{format_path(path)} is a block; it has no arguments of its own", format_path(path))
    if isinstance(node, Use):
        spec = design.shared[node.shared]
        if isinstance(spec, Block):
            raise DesignError(
                f"{format_path(path)} uses the shared block {node.shared!r}, which has no "
                f"arguments of its own; edit its layers in the JSON view",
                format_path(path),
            )
        new = make_layer(spec.type, values, where=f"shared.{node.shared}")
        spec = replace(spec, type=new.type, args=new.args)  # keeps what else the layer carries (init)
        return _checked(replace(design, shared={**design.shared, node.shared: spec}))
    new = make_layer(node.type, values, node.name, where=format_path(path))
    return replace_node(design, path, replace(node, type=new.type, args=new.args))


def set_input(design: Design, shape: Sequence[int], dtype: str | None = None) -> Design:
    """Set the example input's shape (and dtype: float32, float64 or int64, which Embedding needs)."""
    dtype = design.input_dtype if dtype is None else dtype
    if dtype not in DTYPES:
        raise DesignError(f"input.dtype: must be one of {', '.join(DTYPES)}, got {dtype!r}", "input.dtype")
    return _checked(replace(design, input_shape=tuple(shape), input_dtype=dtype))


def clear(design: Design) -> Design:
    """An empty stack with the same input: where building from scratch starts (it does not build yet)."""
    return Design(layers=(), input_shape=design.input_shape, input_dtype=design.input_dtype)


# -- shared layers -------------------------------------------------------------------------------------


def suggest_name(design: Design, base: str = "shared") -> str:
    """A shared-layer name not yet taken: "shared", then "shared2", "shared3"..."""
    if base not in design.shared:
        return base
    i = 2
    while f"{base}{i}" in design.shared:
        i += 1
    return f"{base}{i}"


def share(design: Design, path: Path, name: str) -> Design:
    """Make the layer or block at `path` a shared layer called `name`; `path` becomes its first use.

    The node's own name (if any) stays on the use; the definition is named by `name` only. Insert further
    uses with `use_shared`: each is the same module object, so they train the same weights.
    """
    node = node_at(design, path)
    where = format_path(path)
    if isinstance(node, Use):
        raise DesignError(f"{where} is already a use of shared layer {node.shared!r}", where)
    if name in design.shared:
        raise DesignError(f"there is already a shared layer called {name!r}; choose another name", where)
    if isinstance(node, Block):
        inner = [p for p, n in paths(replace(design, layers=node.layers)) if isinstance(n, Use)]
        if inner:
            used = node_at(replace(design, layers=node.layers), inner[0])
            assert isinstance(used, Use)
            raise DesignError(
                f"cannot share {where}: it contains a use of shared layer {used.shared!r}, and a "
                f"shared layer cannot use another one; unshare that use first",
                where,
            )
    definition = replace(node, name=None)
    out = replace(design, shared={**design.shared, name: definition})
    parent = siblings_of(design, path)
    i = path[-1]
    out = with_children(out, path[:-1], (*parent[:i], Use(shared=name, name=node.name), *parent[i + 1 :]))
    return _checked(out)


def use_shared(design: Design, path: Path, name: str, use_name: str | None = None) -> Design:
    """Insert another use of the shared layer `name` at `path` (anywhere, including inside blocks)."""
    if name not in design.shared:
        known = ", ".join(map(repr, design.shared)) or "none yet; mark a layer as shared first"
        raise DesignError(f"there is no shared layer {name!r} (shared layers: {known})")
    return insert(design, path, Use(shared=name, name=use_name or None))


def unshare(design: Design, path: Path) -> Design:
    """Turn the use at `path` into an independent copy of the shared layer (its own weights). The other uses
    stay shared; the definition is dropped when this was its last use."""
    node = node_at(design, path)
    if not isinstance(node, Use):
        raise DesignError(f"{format_path(path)} is not a use of a shared layer", format_path(path))
    copy = replace(design.shared[node.shared], name=node.name)
    return _checked(_drop_unused_shared(with_node(design, path, copy), design))


def delete_shared(design: Design, name: str, *, with_uses: bool = False) -> Design:
    """Remove the shared layer `name`.

    While it is still used this REFUSES (with_uses=False), naming the uses, so no position silently loses
    its layer; with_uses=True removes every use as well (each as `delete` would).
    """
    if name not in design.shared:
        raise DesignError(f"there is no shared layer {name!r}")
    where = uses(design, name)
    if where and not with_uses:
        raise DesignError(
            f"cannot delete shared layer {name!r}: it is still used at "
            f"{', '.join(map(format_path, where))}; delete those uses first "
            f"(refused, nothing was removed)",
            f"shared.{name}",
        )
    out = design
    for p in reversed(where):  # deepest/last first, so earlier paths stay valid
        out = delete(out, p)
    shared = {k: v for k, v in out.shared.items() if k != name}
    return _checked(replace(out, shared=shared))


def rename_shared(design: Design, old: str, new: str) -> Design:
    """Rename a shared layer and every use of it."""
    if old not in design.shared:
        raise DesignError(f"there is no shared layer {old!r}")
    if new == old:
        return design
    if new in design.shared:
        raise DesignError(f"there is already a shared layer called {new!r}", f"shared.{new}")

    def fix(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
        out: list[Node] = []
        for n in nodes:
            if isinstance(n, Use) and n.shared == old:
                n = replace(n, shared=new)
            elif isinstance(n, Block):
                n = replace(n, layers=fix(n.layers))
            out.append(n)
        return tuple(out)

    shared = {(new if k == old else k): v for k, v in design.shared.items()}
    return _checked(replace(design, shared=shared, layers=fix(design.layers)))


# -- internals -----------------------------------------------------------------------------------------


def _drop_unused_shared(design: Design, before: Design) -> Design:
    """Drop shared definitions whose last use an edit removed (the design holds no invisible weights)."""
    used = {n.shared for _, n in paths(design) if isinstance(n, Use)}
    had = {n.shared for _, n in paths(before) if isinstance(n, Use)}
    gone = had - used
    if not gone:
        return design
    return replace(design, shared={k: v for k, v in design.shared.items() if k not in gone})


def _free_name(name: str, taken: set[str]) -> str:
    stem = re.sub(r"_\d+$", "", name)
    i = 2
    while f"{stem}_{i}" in taken:
        i += 1
    return f"{stem}_{i}"


def _checked(design: Design) -> Design:
    """Check an edited design as `Design.from_dict` would and return its canonical form.

    An empty stack is allowed here (the editor's starting point); everything else must read back.
    """
    data = design.to_dict()
    empty = not data["layers"]
    if empty:
        data["layers"] = [{"type": "Identity"}]
    checked = Design.from_dict(data)
    return replace(checked, layers=()) if empty else checked
