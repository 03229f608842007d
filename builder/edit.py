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
from collections.abc import Iterator, Mapping, Sequence
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
from .design import DTYPES, Block, Design, Node, Use, child_key
from .errors import DesignError
from .flow import MERGES, Branches, Call, Flow, Step
from .forms import make_layer

__all__ = [
    "add_branch",
    "add_to_branch",
    "branch_out",
    "clear",
    "move_branch",
    "move_call",
    "remove_branch",
    "residual",
    "set_merge",
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
    out = with_node(design, path, replace(node, name=name))
    holder = design if len(path) == 1 else node_at(design, path[:-1])
    flow = holder.flow if isinstance(holder, Block | Design) else None
    if flow is not None:  # the block's flow calls the child by its key: its calls follow the rename
        old, new = child_key(node, path[-1]), name if name is not None else str(path[-1])
        renamed = _renamed_calls(flow, old, new)
        if len(path) == 1:
            out = replace(out, flow=renamed)
        else:
            block = node_at(out, path[:-1])
            assert isinstance(block, Block)
            out = with_node(out, path[:-1], replace(block, flow=renamed))
    return _checked(out)


def _renamed_calls(flow: Flow, old: str, new: str) -> Flow:
    """The flow with its calls of child `old` (and of its descendants, "old.…") calling `new` instead."""
    out: list[Step] = []
    for step in flow:
        if isinstance(step, Call) and (step.target == old or step.target.startswith(old + ".")):
            out.append(replace(step, target=new + step.target[len(old) :]))
        elif isinstance(step, Branches):
            out.append(replace(step, branches=tuple(_renamed_calls(b, old, new) for b in step.branches)))
        else:
            out.append(step)
    return tuple(out)


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


# -- flows: residual blocks, parallel branches, merges -------------------------------------------------
# A flow block is addressed by its path like any node; its branches step by `step`, the index of a Branches
# step in the block's own flow (not nested ones), and a branch by its index in that step. Children keep the
# keys they had (a name, or their position in the new block), so state_dict keys are those of the book's
# classes when the layers are named (conv1, bn1, ...).


def residual(design: Design, selection: Sequence[Path], name: str | None = None, cls: str = "Residual") -> Design:
    """Wrap consecutive siblings into a residual block: out = body(x) + x, the selected layers the body.

    The block is a flow block (type Module, class `cls`) whose flow is one branches step: branch 0 calls the
    layers in order, branch 1 is empty (the identity skip), merged by "add". Give the skip layers with
    `add_to_branch(..., branch=1, ...)` (a 1x1 convolution: the book's use_1x1conv).
    """
    parent_path, start, stop = _consecutive(design, selection, "residual")
    parent = children_of(design, parent_path)
    body = parent[start:stop]
    calls = tuple(Call(child_key(n, i)) for i, n in enumerate(body))
    flow: Flow = (Branches(branches=(calls, ()), merge="add"),)
    block = Block(layers=body, name=name or None, flow=flow, cls=cls or None)
    return _checked(with_children(design, parent_path, (*parent[:start], block, *parent[stop:])))


def branch_out(
    design: Design,
    selection: Sequence[Path],
    merge: str = "cat",
    dim: int | None = 1,
    name: str | None = None,
    cls: str = "Parallel",
) -> Design:
    """Wrap consecutive siblings into parallel branches: each selected layer (or block) becomes one branch
    run on the same input, joined by `merge` (cat along `dim` by default, as Inception's)."""
    _check_merge(merge, dim, "branches")
    parent_path, start, stop = _consecutive(design, selection, "branches")
    parent = children_of(design, parent_path)
    body = parent[start:stop]
    lanes = tuple((Call(child_key(n, i)),) for i, n in enumerate(body))
    step = Branches(branches=lanes, merge=merge, dim=dim if MERGES[merge][1] else None)
    block = Block(layers=body, name=name or None, flow=(step,), cls=cls or None)
    return _checked(with_children(design, parent_path, (*parent[:start], block, *parent[stop:])))


def add_to_branch(design: Design, path: Path, step: int, branch: int, node: Node) -> Design:
    """Add `node` as a new child of the flow block at `path` and call it at the end of branch `branch` of its
    branches step `step`. On a residual block's empty branch this is a shortcut (the book's 1x1 conv)."""
    block, b = _branches(design, path, step)
    _check_branch(b, branch, path, step)
    key = child_key(node, len(block.layers))
    lanes = list(b.branches)
    lanes[branch] = (*lanes[branch], Call(key))
    return _with_step(
        design, path, replace(block, layers=(*block.layers, node)), step, replace(b, branches=tuple(lanes))
    )


def add_branch(design: Design, path: Path, step: int, node: Node | None = None) -> Design:
    """Add a branch to the branches step: empty (an identity, a skip) or calling `node`, a new child."""
    block, b = _branches(design, path, step)
    lanes: tuple[tuple[Step, ...], ...] = (*b.branches, ())
    design = _with_step(design, path, block, step, replace(b, branches=lanes))
    return add_to_branch(design, path, step, len(lanes) - 1, node) if node is not None else design


def remove_branch(design: Design, path: Path, step: int, branch: int) -> Design:
    """Remove a branch; the children only it called go with it (a block holds no layer its forward skips).
    Refuses to remove the last branch (remove the block instead)."""
    block, b = _branches(design, path, step)
    _check_branch(b, branch, path, step)
    if len(b.branches) == 1:
        raise DesignError(
            f"{_step_words(path, step)}: branch 0 is its only branch; ungroup or delete the block instead",
            format_path(path),
        )
    lanes = b.branches[:branch] + b.branches[branch + 1 :]
    flow = (*block.flow[:step], replace(b, branches=lanes), *block.flow[step + 1 :]) if block.flow else ()
    return _checked(with_node(design, path, _drop_uncalled(replace(block, flow=flow))))


def move_branch(design: Design, path: Path, step: int, branch: int, offset: int) -> Design:
    """Move a branch `offset` places among its step's branches (cat joins them in this order)."""
    block, b = _branches(design, path, step)
    _check_branch(b, branch, path, step)
    j = branch + offset
    if not 0 <= j < len(b.branches):
        side = "first" if offset < 0 else "last"
        raise DesignError(f"{_step_words(path, step)}: branch {branch} is already the {side}", format_path(path))
    lanes = list(b.branches)
    lanes.insert(j, lanes.pop(branch))
    return _with_step(design, path, block, step, replace(b, branches=tuple(lanes)))


def set_merge(design: Design, path: Path, step: int, merge: str, dim: int | None = None) -> Design:
    """Choose how the branches join: cat/stack along `dim`, or add/mul/mean (no dim: equal shapes)."""
    block, b = _branches(design, path, step)
    _check_merge(merge, dim, _step_words(path, step))
    return _with_step(design, path, block, step, replace(b, merge=merge, dim=dim if MERGES[merge][1] else None))


def move_call(design: Design, path: Path, step: int, branch: int, index: int, to: int | None) -> Design:
    """Move the `index`-th step of branch `branch` to the end of branch `to`, or out of the branches to right
    after their merge (`to` None: the layer then runs on the merged result)."""
    block, b = _branches(design, path, step)
    _check_branch(b, branch, path, step)
    lane = b.branches[branch]
    if not 0 <= index < len(lane):
        raise DesignError(
            f"{_step_words(path, step)} branch {branch}: has {len(lane)} steps, no step {index}", format_path(path)
        )
    moved = lane[index]
    lanes = list(b.branches)
    lanes[branch] = lane[:index] + lane[index + 1 :]
    after: tuple[Step, ...] = ()
    if to is None:
        after = (moved,)
    else:
        _check_branch(b, to, path, step)
        lanes[to] = (*lanes[to], moved)
    flow = block.flow or ()
    new = (*flow[:step], replace(b, branches=tuple(lanes)), *after, *flow[step + 1 :])
    return _checked(with_node(design, path, replace(block, flow=new)))


def _consecutive(design: Design, selection: Sequence[Path], what: str) -> tuple[Path, int, int]:
    """(parent path, start, stop) of a selection of siblings next to each other, in a block without a flow."""
    chosen = sorted(set(selection))
    if not chosen:
        raise DesignError(f"{what}: select the layers to wrap first")
    parent_path = chosen[0][:-1]
    if any(p[:-1] != parent_path for p in chosen):
        raise DesignError(
            f"{what}: the selected layers must sit in the same block (got "
            + ", ".join(format_path(p) for p in chosen)
            + ")"
        )
    idx = [p[-1] for p in chosen]
    if idx != list(range(idx[0], idx[0] + len(idx))):
        raise DesignError(
            f"{what}: the selected layers must be next to each other, got {', '.join(map(format_path, chosen))}"
        )
    siblings_of(design, chosen[-1])
    if parent_path:
        holder = node_at(design, parent_path)
        if isinstance(holder, Block) and holder.flow is not None:
            raise DesignError(
                f"{what}: {format_path(parent_path)} is a flow block ({holder.class_name}); its flow calls these "
                f"layers, so wrap them inside a Sequential block first (Group) or edit its flow",
                format_path(parent_path),
            )
    elif design.flow is not None:
        raise DesignError(f"{what}: the network's top level has a flow; wrap layers inside its blocks instead")
    return parent_path, idx[0], idx[-1] + 1


def _branches(design: Design, path: Path, step: int) -> tuple[Block, Branches]:
    node = node_at(design, path)
    where = format_path(path)
    if not isinstance(node, Block) or node.flow is None:
        what = "a Sequential block" if isinstance(node, Block) else "not a block"
        raise DesignError(f"{where} has no branches: it is {what} (make one with Residual or Branches)", where)
    if not 0 <= step < len(node.flow) or not isinstance(node.flow[step], Branches):
        found = [i for i, s in enumerate(node.flow) if isinstance(s, Branches)]
        raise DesignError(
            f"{where}.flow[{step}] is not a branches step (branches steps: {', '.join(map(str, found)) or 'none'})",
            where,
        )
    b = node.flow[step]
    assert isinstance(b, Branches)
    return node, b


def _check_branch(b: Branches, branch: int, path: Path, step: int) -> None:
    if not 0 <= branch < len(b.branches):
        raise DesignError(
            f"{_step_words(path, step)}: has branches 0..{len(b.branches) - 1}, no branch {branch}", format_path(path)
        )


def _check_merge(merge: str, dim: int | None, where: str) -> None:
    if merge not in MERGES:
        raise DesignError(f"{where}: unknown merge {merge!r}; merges: {', '.join(MERGES)}")
    if MERGES[merge][1] and dim is None:
        raise DesignError(f"{where}: {merge} needs a dim (e.g. 1, the channels of an image batch)")


def _step_words(path: Path, step: int) -> str:
    return f"{format_path(path)}.flow[{step}]"


def _with_step(design: Design, path: Path, block: Block, step: int, new: Branches) -> Design:
    flow = block.flow or ()
    return _checked(with_node(design, path, replace(block, flow=(*flow[:step], new, *flow[step + 1 :]))))


def _drop_uncalled(block: Block) -> Block:
    """The block without the children its flow no longer calls; later unnamed children are re-keyed (their
    position changes) and the flow's calls follow them."""
    called = {s.target.split(".")[0] for _, s in _steps(block.flow or ()) if isinstance(s, Call)}
    keep = [(i, n) for i, n in enumerate(block.layers) if child_key(n, i) in called]
    renamed = {child_key(n, i): child_key(n, j) for j, (i, n) in enumerate(keep)}

    def fix(flow: tuple[Step, ...]) -> tuple[Step, ...]:
        out: list[Step] = []
        for s in flow:
            if isinstance(s, Call):
                head, dot, rest = s.target.partition(".")
                s = replace(s, target=renamed[head] + dot + rest)
            elif isinstance(s, Branches):
                s = replace(s, branches=tuple(fix(b) for b in s.branches))
            out.append(s)
        return tuple(out)

    return replace(block, layers=tuple(n for _, n in keep), flow=fix(block.flow or ()))


def _steps(flow: tuple[Step, ...]) -> Iterator[tuple[int, Step]]:
    for i, s in enumerate(flow):
        yield i, s
        if isinstance(s, Branches):
            for b in s.branches:
                yield from _steps(b)


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
