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
from collections.abc import Callable, Iterator, Mapping, Sequence
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
from .build import dry_run
from .design import DTYPES, Block, Design, Layer, Node, Use, child_key, layer_type, resolve
from .errors import DesignError
from .flow import MERGES, Branches, Call, Flow, Op, Step, StepAt, steps_at
from .forms import make_layer, with_input_size
from .registry import REGISTRY

__all__ = [
    "StepAt",
    "add_branch",
    "add_step",
    "became_flow",
    "move_step",
    "remove_step",
    "set_class",
    "set_output",
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
    "flow_holder",
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
    """Insert `node` so that it sits at `path` (the last index may equal the parent's length: append).

    In a block with a flow (or a network with one) the new child is called right after the call of the child
    above it (before the one below it when it comes first); the network's last child at the network's end.
    Later unnamed children move one place, and every flow's calls follow them. A tuple-returning layer (LSTM,
    GRU, RNN, MultiheadAttention) inserted into a Sequential makes that Sequential a chain flow: its children
    called in order, the new layer giving its default output (`became_flow` says so in words)."""
    check_path(path)
    parent = children_of(design, path[:-1])
    i = path[-1]
    if not 0 <= i <= len(parent):
        raise DesignError(f"cannot insert at {format_path(path)}: that block has {len(parent)} layers")
    shifted = {child_key(n, j): child_key(n, j + 1) for j, n in enumerate(parent) if j >= i and n.name is None}
    out = _follow(with_children(design, path[:-1], (*parent[:i], node, *parent[i:])), path[:-1], shifted)
    holder = flow_holder(out, path[:-1])
    call = Call(child_key(node, i), _default_output(node, design.shared))
    if holder.flow is not None:
        out = _put(out, path[:-1], replace(holder, flow=_placed(holder, i, call, top=len(path) == 1)))
    elif call.output is not None:
        out = _put(out, path[:-1], _as_chain(holder, design.shared))
    return _checked(out)


def delete(design: Design, path: Path) -> Design:
    """Remove the node at `path`. A shared layer whose last use goes with it is dropped from `shared`.

    Refuses to empty a block (delete or ungroup the block instead); deleting the stack's only layer gives an
    empty design (as `clear`). Every flow stops calling it: a branch left without layers becomes the identity
    (a skip) when its branches are added (add/mul/mean: a residual block without its shortcut), and goes when
    they are joined (cat/stack: one input fewer); a branches step left with one identity branch goes.
    """
    parent = siblings_of(design, path)
    if len(path) > 1 and len(parent) == 1:
        raise DesignError(
            f"cannot delete {format_path(path)}: it is the only layer of block "
            f"{format_path(path[:-1])}; delete or ungroup the block instead",
            format_path(path),
        )
    i = path[-1]
    keys: dict[str, str | None] = {child_key(parent[i], i): None}
    keys |= {child_key(n, j): child_key(n, j - 1) for j, n in enumerate(parent) if j > i and n.name is None}
    out = _follow(with_children(design, path[:-1], parent[:i] + parent[i + 1 :]), path[:-1], keys)
    if not out.layers:
        out = replace(out, flow=None, cls=None)
    return _checked(_drop_unused_shared(out, design))


def move(design: Design, path: Path, offset: int) -> Design:
    """Move the node at `path` `offset` places within its block (-1: up, towards the input; +1: down).

    In a flow, where the two children swapping places are each called once in the same chain (or the same
    branch), in the order of their rows, their calls swap too: the forward runs them in the new order. Elsewhere
    (and where the calls ran in the other order already) only their order in the module and state_dict
    changes; calls of unnamed children follow their new positions."""
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
    order = list(range(len(parent)))
    order.insert(j, order.pop(i))  # order[new place] = old place
    keys = {child_key(parent[k], k): child_key(parent[k], at) for at, k in enumerate(order) if parent[k].name is None}
    out = _follow(with_children(design, path[:-1], tuple(items)), path[:-1], keys)
    if abs(offset) == 1:  # every flow calling both in one list runs them in the new order
        moved, other = child_key(parent[i], j), child_key(parent[j], i)
        for h in range(len(path)):
            holder = flow_holder(out, path[:h])
            if holder.flow is not None:
                rel = _rel(out, path[:h], path[:-1])
                flow = _swapped(holder.flow, rel + moved, rel + other, offset > 0)
                out = _put(out, path[:h], replace(holder, flow=flow))
    return _checked(out)


def duplicate(design: Design, path: Path) -> Design:
    """Insert a copy of the node right after it. A copy of a use is another use of the same shared layer
    (same weights); a copy of a layer or block has its own weights. A named node's copy gets a free name
    ("linear" -> "linear_2").

    The copy fits where it lands: in a chain, it receives the original's output, so a layer's copy (a block's:
    its first layer) takes that input size, as hand-written code would: Linear(4, 8) duplicated is followed by
    Linear(8, 8), Conv2d(3, 16, 3) by Conv2d(16, 16, 3). A lazy layer infers it anyway; a design that does
    not build gets a plain copy (nothing to read the size from)."""
    parent = siblings_of(design, path)
    node = parent[path[-1]]
    if node.name is not None:
        node = replace(node, name=_free_name(node.name, {n.name for n in parent if n.name}))
    return insert(design, (*path[:-1], path[-1] + 1), _fitted_copy(design, path, node))


def _fitted_copy(design: Design, path: Path, node: Node) -> Node:
    """`node` (a copy of the node at `path`) with its input size set to the original's output, when the node
    sits in a chain (a Sequential: no flow decides what it receives) of a design that builds."""
    container = design if len(path) == 1 else node_at(design, path[:-1])
    if isinstance(node, Use) or not isinstance(container, Design | Block) or container.flow is not None:
        return node
    try:
        run = dry_run(design)
    except DesignError:
        return node
    original = next((r for r in run.layers if r.path == format_path(path)), None)
    return node if original is None else _with_input(node, original.output_shape)


def _with_input(node: Node, shape: tuple[int, ...]) -> Node:
    """A layer (a chain's first layer, for a block) that takes `shape`'s size as its input size."""
    if isinstance(node, Layer) and not REGISTRY[node.type].is_lazy:
        return replace(node, args=with_input_size(REGISTRY[node.type], node.args, shape))
    if isinstance(node, Block) and node.flow is None and node.layers:
        return replace(node, layers=(_with_input(node.layers[0], shape), *node.layers[1:]))
    return node


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

    def block(calls: tuple[Call, ...]) -> Block:  # a Sequential; a chain flow when it holds a tuple layer
        seq = Block(layers=parent[start:stop], name=name or None)
        return replace(seq, flow=calls) if any(c.output for c in calls) else seq

    return _wrap(design, parent_path, start, stop, block, None)


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
    # Every flow that called the block runs what the block ran: its flow (or its children in order) in place of
    # the call; a Sequential parent of a flow block becomes a chain flow first, so no skip or branch is lost.
    pp, g, n = path[:-1], child_key(node, i), len(node.layers)
    if node.flow is not None and flow_holder(design, pp).flow is None:
        design = _put(design, pp, _as_chain(flow_holder(design, pp), design.shared))
    inner = node.flow if node.flow is not None else _as_chain(node, design.shared).flow or ()
    for h in range(len(path)):
        holder = flow_holder(design, path[:h])
        if holder.flow is not None:
            rel = _rel(design, path[:h], pp)
            flow = _inlined(holder.flow, Call(rel + g), _prefixed(inner, rel + g + "."))
            design = _put(design, path[:h], replace(holder, flow=flow))
    keys = {f"{g}.{child_key(c, k)}": child_key(c, i + k) for k, c in enumerate(node.layers)}
    keys |= {child_key(c, k): child_key(c, k + n - 1) for k, c in enumerate(parent) if k > i and c.name is None}
    out = with_children(design, pp, (*parent[:i], *node.layers, *parent[i + 1 :]))
    return _checked(_follow(out, pp, keys))


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
    old, new = child_key(node, path[-1]), name if name is not None else str(path[-1])
    return _checked(_follow(out, path[:-1], {old: new}))  # the flows' calls follow the rename


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


# -- flows: residual blocks, parallel branches, merges, steps ------------------------------------------
# A flow holder is a flow block, addressed by its path like any node, or the network's top level, addressed
# by the empty path (). Its branches step is addressed by `step`, the index of a Branches step in the holder's
# own flow, and a branch by its index in that step. Any step, nested or not, is addressed by a StepAt:
# (i,) is step i of the holder's flow, (i, b, j) step j of branch b of (branches) step i, (i, b, j, c, k) one
# level deeper; an insertion StepAt names where the new step will sit (its last index may equal the length).
# Children keep the keys they had (a name, or their position), so state_dict keys are those of the book's
# classes when the layers are named (conv1, bn1, ...).


def residual(design: Design, selection: Sequence[Path], name: str | None = None, cls: str = "Residual") -> Design:
    """Wrap consecutive siblings into a residual block: out = body(x) + x, the selected layers the body.

    The block is a flow block (type Module, class `cls`) whose flow is one branches step: branch 0 calls the
    layers in order, branch 1 is empty (the identity skip), merged by "add". Give the skip layers with
    `add_to_branch(..., branch=1, ...)` (a 1x1 convolution: the book's use_1x1conv).
    """
    parent_path, start, stop = _consecutive(design, selection, "residual")
    body = children_of(design, parent_path)[start:stop]

    def block(calls: tuple[Call, ...]) -> Block:
        flow: Flow = (Branches(branches=(calls, ()), merge="add"),)
        return Block(layers=body, name=name or None, flow=flow, cls=cls or None)

    return _wrap(design, parent_path, start, stop, block, "residual")


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
    body = children_of(design, parent_path)[start:stop]

    def block(calls: tuple[Call, ...]) -> Block:
        step = Branches(branches=tuple((c,) for c in calls), merge=merge, dim=dim if MERGES[merge][1] else None)
        return Block(layers=body, name=name or None, flow=(step,), cls=cls or None)

    return _wrap(design, parent_path, start, stop, block, "branches")


def add_step(design: Design, path: Path, at: StepAt, item: Node | Step) -> Design:
    """Put `item` into the flow of the holder at `path` (() : the network) so that it sits at `at`.

    A step (an Op, a Call, a Branches step) goes in as it is. A node (a layer, block or use) becomes a new
    child, registered after the others (its key: its name, or its position), and a call of it is the step:
    a layer added to a branch, or to the chain. A holder without a flow (a Sequential) first becomes a chain
    flow: its children called in order, so nothing it computes changes until the new step."""
    holder = flow_holder(design, path)
    if holder.flow is None:
        holder = _as_chain(holder, design.shared)
    flow = holder.flow or ()
    if isinstance(item, Call | Op | Branches):
        step: Step = item
    else:
        step = Call(child_key(item, len(holder.layers)), _default_output(item, design.shared))
        holder = replace(holder, layers=(*holder.layers, item))
    lane, i = _lane(flow, at, path)
    if not 0 <= i <= len(lane):
        raise DesignError(f"{_at_words(path, at)}: that place has {len(lane)} steps", _flow_path(path))
    return _checked(_put(design, path, replace(holder, flow=_with_lane(flow, at[:-1], (*lane[:i], step, *lane[i:])))))


def remove_step(design: Design, path: Path, at: StepAt) -> Design:
    """Remove the step at `at`. A call's child goes with it when no other step calls it (as `delete` does:
    every flow stops calling it); an unnamed child's removal re-keys those after it, and the calls follow.
    A branches step goes whole, with the children only it called."""
    holder = flow_holder(design, path)
    flow = holder.flow or ()
    lane, i = _lane(flow, at, path)
    if not 0 <= i < len(lane):
        raise DesignError(f"{_at_words(path, at)}: there is no such step", _flow_path(path))
    step = lane[i]
    if isinstance(step, Call) and "." not in step.target:
        calls = [s for _, s in _steps(flow) if isinstance(s, Call) and s.target.split(".")[0] == step.target]
        if len(calls) == 1:  # its only call: the child goes (its calls go with it, everywhere)
            k = next(k for k, n in enumerate(holder.layers) if child_key(n, k) == step.target)
            if len(holder.layers) == 1 and path:
                raise DesignError(
                    f"{_at_words(path, at)}: {step.target!r} is the only layer of block {format_path(path)}; "
                    f"delete or ungroup the block instead",
                    _flow_path(path),
                )
            return delete(design, (*path, k))
    before = _called(flow)
    out = _put(design, path, replace(holder, flow=_with_lane(flow, at[:-1], lane[:i] + lane[i + 1 :])))
    return _drop_uncalled_children(out, path, before)


def move_step(design: Design, path: Path, at: StepAt, offset: int) -> Design:
    """Move the step at `at` `offset` places within its chain or branch (-1: earlier, towards the input)."""
    holder = flow_holder(design, path)
    flow = holder.flow or ()
    lane, i = _lane(flow, at, path)
    if not 0 <= i < len(lane):
        raise DesignError(f"{_at_words(path, at)}: there is no such step", _flow_path(path))
    j = i + offset
    if not 0 <= j < len(lane):
        side = "first" if offset < 0 else "last"
        raise DesignError(f"{_at_words(path, at)}: it is already the {side} step there", _flow_path(path))
    items = list(lane)
    items.insert(j, items.pop(i))
    return _checked(_put(design, path, replace(holder, flow=_with_lane(flow, at[:-1], tuple(items)))))


def set_output(design: Design, path: Path, at: StepAt, output: str | None) -> Design:
    """Choose which output the call at `at` takes of its tuple-returning layer (LSTM: "output", "h", "c")."""
    holder = flow_holder(design, path)
    flow = holder.flow or ()
    lane, i = _lane(flow, at, path)
    step = lane[i] if 0 <= i < len(lane) else None
    if not isinstance(step, Call):
        raise DesignError(f"{_at_words(path, at)}: is not a call of a layer", _flow_path(path))
    new = (*lane[:i], replace(step, output=output or None), *lane[i + 1 :])
    return _checked(_put(design, path, replace(holder, flow=_with_lane(flow, at[:-1], new))))


def set_class(design: Design, path: Path, cls: str | None) -> Design:
    """Name the class of a flow holder (its repr and the exported code's class: "Residual", "LSTMLM")."""
    holder = flow_holder(design, path)
    if holder.flow is None:
        raise DesignError(f"{_holder_words(path)} is a Sequential: only a block with a flow has a class name")
    return _checked(_put(design, path, replace(holder, cls=(cls or "").strip() or None)))


def add_to_branch(design: Design, path: Path, step: int | StepAt, branch: int, node: Node | Step) -> Design:
    """Add `node` (a layer: a new child, called; or a step such as an Op) at the end of branch `branch` of the
    holder's branches step `step`. On a residual block's empty branch a layer is a shortcut (the book's 1x1
    conv)."""
    _, b = _branches(design, path, step)
    _check_branch(b, branch, path, step)
    return add_step(design, path, (*_at(step), branch, len(b.branches[branch])), node)


def add_branch(design: Design, path: Path, step: int | StepAt, node: Node | None = None) -> Design:
    """Add a branch to the branches step: empty (an identity, a skip) or calling `node`, a new child."""
    block, b = _branches(design, path, step)
    lanes: tuple[tuple[Step, ...], ...] = (*b.branches, ())
    design = _with_step(design, path, block, step, replace(b, branches=lanes))
    return add_to_branch(design, path, step, len(lanes) - 1, node) if node is not None else design


def remove_branch(design: Design, path: Path, step: int | StepAt, branch: int) -> Design:
    """Remove a branch; the children only it called go with it (a block holds no layer its forward skips).
    Refuses to remove the last branch (remove the block instead)."""
    block, b = _branches(design, path, step)
    _check_branch(b, branch, path, step)
    if len(b.branches) == 1:
        raise DesignError(
            f"{_step_words(path, step)}: branch 0 is its only branch; ungroup or delete the block instead",
            _flow_path(path),
        )
    lanes = b.branches[:branch] + b.branches[branch + 1 :]
    flow = block.flow or ()
    out = _put(design, path, replace(block, flow=_replaced(flow, _at(step), (replace(b, branches=lanes),))))
    return _drop_uncalled_children(out, path, _called(flow))


def move_branch(design: Design, path: Path, step: int | StepAt, branch: int, offset: int) -> Design:
    """Move a branch `offset` places among its step's branches (cat joins them in this order)."""
    block, b = _branches(design, path, step)
    _check_branch(b, branch, path, step)
    j = branch + offset
    if not 0 <= j < len(b.branches):
        side = "first" if offset < 0 else "last"
        raise DesignError(f"{_step_words(path, step)}: branch {branch} is already the {side}", _flow_path(path))
    lanes = list(b.branches)
    lanes.insert(j, lanes.pop(branch))
    return _with_step(design, path, block, step, replace(b, branches=tuple(lanes)))


def set_merge(design: Design, path: Path, step: int | StepAt, merge: str, dim: int | None = None) -> Design:
    """Choose how the branches join: cat/stack along `dim`, or add/mul/mean (no dim: equal shapes)."""
    block, b = _branches(design, path, step)
    _check_merge(merge, dim, _step_words(path, step))
    return _with_step(design, path, block, step, replace(b, merge=merge, dim=dim if MERGES[merge][1] else None))


def move_call(design: Design, path: Path, step: int | StepAt, branch: int, index: int, to: int | None) -> Design:
    """Move the `index`-th step of branch `branch` to the end of branch `to`, or out of the branches to right
    after their merge (`to` None: the layer then runs on the merged result)."""
    block, b = _branches(design, path, step)
    _check_branch(b, branch, path, step)
    lane = b.branches[branch]
    if not 0 <= index < len(lane):
        raise DesignError(
            f"{_step_words(path, step)} branch {branch}: has {len(lane)} steps, no step {index}", _flow_path(path)
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
    new = _replaced(block.flow or (), _at(step), (replace(b, branches=tuple(lanes)), *after))
    return _checked(_put(design, path, replace(block, flow=new)))


def became_flow(before: Design, after: Design, path: Path) -> str | None:
    """What to tell a person when an edit made the Sequential at `path` (() : the network) a flow, e.g.
    "the network now runs as a flow: rnn gives its sequence output (choose h or c in its editor)"; else None."""
    try:
        old, new = flow_holder(before, path), flow_holder(after, path)
    except DesignError:
        return None
    if old.flow is not None or new.flow is None:
        return None
    outs = []
    for _, s in _steps(new.flow):
        found = resolve(new.layers, s.target, after.shared) if isinstance(s, Call) and s.output else None
        lt = layer_type(found[0], after.shared) if found else None
        if isinstance(s, Call) and lt is not None and s.output is not None:
            what = "attention output" if lt.self_attention else "sequence output"
            others = [o for o in lt.outputs if o != s.output]
            outs.append(f"{s.target} gives its {what} ({s.output!r}; choose {' or '.join(others)} in its editor)")
    return f"{_holder_words(path)} now runs as a flow" + (": " + "; ".join(outs) if outs else "")


def _consecutive(design: Design, selection: Sequence[Path], what: str) -> tuple[Path, int, int]:
    """(parent path, start, stop) of a selection of siblings next to each other (any block; see `_wrap`)."""
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
    return parent_path, idx[0], idx[-1] + 1


def _wrap(
    design: Design,
    parent_path: Path,
    start: int,
    stop: int,
    make: Callable[[tuple[Call, ...]], Block],
    what: str | None,
) -> Design:
    """Wrap the children start..stop-1 of the block at `parent_path` (() : the network) into the block that
    `make(calls)` gives, `calls` being how it calls them (keys inside the new block; a tuple layer with the output
    the enclosing flow took, else its default). Every flow above follows: where it called the wrapped children
    one after the other, in order, it calls the new block once. A residual block or branches (`what`) must be
    called that way: a flow that calls the wrapped children apart (elsewhere, in another order, in branches)
    is refused, naming them, since its forward would skip the new block's flow."""
    parent = children_of(design, parent_path)
    body = parent[start:stop]
    outer = [child_key(n, k) for k, n in enumerate(parent) if start <= k < stop]
    outputs = {k: _default_output(n, design.shared) for k, n in zip(outer, body, strict=True)}
    holder = flow_holder(design, parent_path)
    taken = [s for _, s in steps_at(holder.flow or ()) if isinstance(s, Call) and s.target in outputs]
    outputs |= {s.target: s.output or outputs[s.target] for s in taken}  # the output the flow took
    new = make(tuple(Call(child_key(n, i), outputs[k]) for i, (k, n) in enumerate(zip(outer, body, strict=True))))
    g = child_key(new, start)
    keys = {k: f"{g}.{child_key(n, i)}" for i, (k, n) in enumerate(zip(outer, body, strict=True))}
    keys |= {
        child_key(n, k): child_key(n, k - (stop - start) + 1)
        for k, n in enumerate(parent)
        if k >= stop and n.name is None
    }
    out = _follow(with_children(design, parent_path, (*parent[:start], new, *parent[stop:])), parent_path, keys)
    for h in range(len(parent_path) + 1):
        above = flow_holder(out, parent_path[:h])
        if above.flow is None:
            continue
        rel = _rel(out, parent_path[:h], parent_path)
        flow = _collapsed(above.flow, tuple(rel + keys[k] for k in outer), Call(rel + g))
        apart = sorted(
            {s.target for _, s in steps_at(flow) if isinstance(s, Call) and s.target.startswith(rel + g + ".")}
        )
        if what and apart:
            raise DesignError(
                f"{what}: {_holder_words(parent_path[:h])}'s flow calls "
                f"{', '.join(repr(t.removeprefix(rel + g + '.')) for t in apart)} apart from the others selected "
                f"({' → '.join(outer)} are not called one after the other, in this order); "
                f"wrap layers its flow runs in a row, or edit its flow first",
                _flow_path(parent_path[:h]),
            )
        out = _put(out, parent_path[:h], replace(above, flow=flow))
    return _checked(out)


def flow_holder(design: Design, path: Path) -> Block:
    """The block at `path`, or for () the network's top level as a block (its own class name, not a default):
    what holds a flow, to read it (the flow edits take the same path)."""
    if not path:
        return Block(layers=design.layers, flow=design.flow, cls=design.cls)
    node = node_at(design, path)
    if not isinstance(node, Block):
        raise DesignError(f"{format_path(path)} is not a block: it has no flow", format_path(path))
    return node


def _put(design: Design, path: Path, block: Block) -> Design:
    """`design` with `block` as the holder at `path` (() : its top level); not checked."""
    if not path:
        return replace(design, layers=block.layers, flow=block.flow, cls=block.cls)
    return with_node(design, path, block)


def _holder_words(path: Path) -> str:
    return f"block {format_path(path)}" if path else "the network"


def _flow_path(path: Path) -> str:
    return f"{format_path(path)}.flow" if path else "flow"


def _default_output(node: Node, shared: Mapping[str, Layer | Block]) -> str | None:
    """The output a call of `node` takes when it returns a tuple (LSTM: "output"), else None."""
    lt = layer_type(node, shared)
    return lt.default_output if lt is not None and (lt.returns_tuple or lt.self_attention) else None


def _as_chain(block: Block, shared: Mapping[str, Layer | Block]) -> Block:
    """A Sequential as the chain flow that computes the same: each child called in order (a tuple-returning
    one with its default output named)."""
    calls = tuple(Call(child_key(n, i), _default_output(n, shared)) for i, n in enumerate(block.layers))
    return replace(block, flow=calls)


def _placed(block: Block, i: int, call: Call, top: bool) -> Flow:
    """The flow of `block` (whose child `i` is new) calling it: at the network's end when it is the last child of
    the top level (the stack's "at the end"); else right after the last call of child i - 1, else right before
    the first call of child i + 1 (calls of the child itself, not of its children: "net", not "net.0"); else at
    the end of the chain."""
    flow = block.flow or ()
    if top and i == len(block.layers) - 1:
        return (*flow, call)
    for near, after in ((i - 1, True), (i + 1, False)):
        if not 0 <= near < len(block.layers):
            continue
        key = child_key(block.layers[near], near)
        found = [at for at, s in steps_at(flow) if isinstance(s, Call) and s.target == key]
        if found:
            at = found[-1] if after else found[0]
            lane, k = _lane(flow, at, ())
            k += 1 if after else 0
            return _with_lane(flow, at[:-1], (*lane[:k], call, *lane[k:]))
    return (*flow, call)


def _rel(design: Design, holder: Path, parent: Path) -> str:
    """The keys leading from the holder at `holder` to the block at `parent` below it, as a call's prefix
    ("" when they are the same, "net." for its child net)."""
    keys = [child_key(node_at(design, parent[: d + 1]), parent[d]) for d in range(len(holder), len(parent))]
    return "".join(k + "." for k in keys)


def _follow(design: Design, parent: Path, keys: Mapping[str, str | None]) -> Design:
    """`design`, whose children at `parent` just changed, with every flow above them following: a call of the
    child that was keyed `old` (or of something inside it) calls `keys[old]` instead, or goes when that is
    None (see `_recalled` for the branches it empties)."""
    keys = {k: v for k, v in keys.items() if k != v}
    if not keys:
        return design
    for h in range(len(parent) + 1):
        holder = flow_holder(design, parent[:h])
        if holder.flow is None:
            continue
        prefix = _rel(design, parent[:h], parent)

        def retarget(call: Call, prefix: str = prefix) -> Call | None:
            if not call.target.startswith(prefix):
                return call
            parts = call.target[len(prefix) :].split(".")
            for n in (2, 1):  # "g.0" (a grandchild ungroup moves up) before "g"
                old = ".".join(parts[:n])
                if len(parts) >= n and old in keys:
                    new = keys[old]
                    rest = "".join("." + p for p in parts[n:])
                    return None if new is None else replace(call, target=prefix + new + rest)
            return call

        design = _put(design, parent[:h], replace(holder, flow=_recalled(holder.flow, retarget)))
    return design


def _recalled(flow: Flow, retarget: Callable[[Call], Call | None]) -> Flow:
    """The flow with each call retargeted (None: removed). A branch left without the calls it had becomes the
    identity when the branches are added (add/mul/mean: a skip), and goes when they are joined (cat/stack);
    a branches step left with one identity branch, or none, goes (it would pass its input on)."""
    out: list[Step] = []
    for step in flow:
        if isinstance(step, Call):
            new = retarget(step)
            if new is not None:
                out.append(new)
        elif isinstance(step, Branches):
            lanes: list[Flow] = []
            for lane in step.branches:
                kept = _recalled(lane, retarget)
                if _called(lane) and not _called(kept):  # its layers are gone
                    if MERGES[step.merge][1]:  # cat / stack: that part of the joined output is gone
                        continue
                    kept = ()  # add / mul / mean: the identity, a skip (a residual block without its shortcut)
                lanes.append(kept)
            if lanes and lanes != [()]:
                out.append(replace(step, branches=tuple(lanes)))
        else:
            out.append(step)
    return tuple(out)


def _swapped(flow: Flow, a: str, b: str, down: bool) -> Flow:
    """The flow with the calls of `a` (moved one row down, or up) and `b` (the row it passed) swapping places in
    every chain or branch that calls each once in the rows' old order (a before b when `down`); where the calls
    ran in the other order already, the rows now agree with them and the calls stay."""

    def head(s: Step, key: str) -> bool:
        return isinstance(s, Call) and (s.target == key or s.target.startswith(key + "."))

    out: list[Step] = []
    for step in flow:
        out.append(
            replace(step, branches=tuple(_swapped(x, a, b, down) for x in step.branches))
            if isinstance(step, Branches)
            else step
        )
    ia = [i for i, s in enumerate(out) if head(s, a)]
    ib = [i for i, s in enumerate(out) if head(s, b)]
    if len(ia) == 1 and len(ib) == 1 and (ia[0] < ib[0]) == down:
        out[ia[0]], out[ib[0]] = out[ib[0]], out[ia[0]]
    return tuple(out)


def _prefixed(flow: Flow, prefix: str) -> Flow:
    """The flow with every call's target under `prefix` ("g." + "conv1")."""
    return _recalled(flow, lambda c: replace(c, target=prefix + c.target))


def _inlined(flow: Flow, call: Call, steps: Flow) -> Flow:
    """The flow with each plain `call` replaced by `steps` (a block's flow in place of the block's call)."""
    out: list[Step] = []
    for s in flow:
        if s == call:
            out.extend(steps)
        elif isinstance(s, Branches):
            out.append(replace(s, branches=tuple(_inlined(b, call, steps) for b in s.branches)))
        else:
            out.append(s)
    return tuple(out)


def _collapsed(flow: Flow, run: tuple[str, ...], call: Call) -> Flow:
    """The flow with each occurrence of consecutive calls of the targets `run` (in order) replaced by `call`."""

    def at(k: int) -> bool:
        part = flow[k : k + len(run)]
        if len(part) != len(run):
            return False
        return all(isinstance(s, Call) and s.target == t for s, t in zip(part, run, strict=True))

    out: list[Step] = []
    k = 0
    while k < len(flow):
        s = flow[k]
        if run and at(k):
            out.append(call)
            k += len(run)
            continue
        out.append(
            replace(s, branches=tuple(_collapsed(b, run, call) for b in s.branches)) if isinstance(s, Branches) else s
        )
        k += 1
    return tuple(out)


def _called(flow: Flow) -> set[str]:
    """The keys of the children a flow calls (heads of dotted targets)."""
    return {s.target.split(".")[0] for _, s in _steps(flow) if isinstance(s, Call)}


def _drop_uncalled_children(design: Design, path: Path, before: set[str]) -> Design:
    """Delete the children of the holder at `path` that its flow called in `before` and calls no more (a block
    holds no layer its forward skips); the last first, so the others' positions stay put."""
    holder = flow_holder(design, path)
    now = _called(holder.flow or ())
    gone = [k for k, n in enumerate(holder.layers) if child_key(n, k) in before - now]
    for k in reversed(gone):
        design = delete(design, (*path, k))
    return _checked(design)


def _lane(flow: Flow, at: StepAt, path: Path) -> tuple[Flow, int]:
    """The chain or branch `at` points into, and its index there."""
    if not at or len(at) % 2 != 1:
        raise DesignError(f"{at!r} is not a step's place in a flow ((i,) or (i, branch, j), ...)", _flow_path(path))
    lane = flow
    for d in range(0, len(at) - 1, 2):
        i, b = at[d], at[d + 1]
        step = lane[i] if 0 <= i < len(lane) else None
        if not isinstance(step, Branches) or not 0 <= b < len(step.branches):
            raise DesignError(f"{_at_words(path, at[: d + 1])}: has no branch {b}", _flow_path(path))
        lane = step.branches[b]
    return lane, at[-1]


def _with_lane(flow: Flow, at: tuple[int, ...], lane: Flow) -> Flow:
    """The flow with the chain or branch at `at` ((): the flow itself; (i, b): branch b of step i) replaced."""
    if not at:
        return lane
    i, b = at[0], at[1]
    step = flow[i]
    assert isinstance(step, Branches)
    lanes = list(step.branches)
    lanes[b] = _with_lane(lanes[b], at[2:], lane)
    return (*flow[:i], replace(step, branches=tuple(lanes)), *flow[i + 1 :])


def _at_words(path: Path, at: StepAt) -> str:
    """ "layers[0].flow[1].branches[0][2]" : a step's design path, as the dry run's messages write it."""
    text = f"{_flow_path(path)}[{at[0]}]"
    for d in range(1, len(at) - 1, 2):
        text += f".branches[{at[d]}][{at[d + 1]}]"
    return text


def _branches(design: Design, path: Path, step: int | StepAt) -> tuple[Block, Branches]:
    if path and not isinstance(node_at(design, path), Block):
        raise DesignError(f"{format_path(path)} has no branches: it is not a block", format_path(path))
    node = flow_holder(design, path)
    where = format_path(path) or "the network"
    if node.flow is None:
        raise DesignError(
            f"{where} has no branches: it is a Sequential (make one with Residual or Branches)", _flow_path(path)
        )
    lane, i = _lane(node.flow, _at(step), path)
    b = lane[i] if 0 <= i < len(lane) else None
    if not isinstance(b, Branches):
        found = [_at_words(path, at) for at, s in steps_at(node.flow) if isinstance(s, Branches)]
        raise DesignError(
            f"{_step_words(path, step)} is not a branches step (branches steps: {', '.join(found) or 'none'})",
            _flow_path(path),
        )
    return node, b


def _check_branch(b: Branches, branch: int, path: Path, step: int | StepAt) -> None:
    if not 0 <= branch < len(b.branches):
        raise DesignError(
            f"{_step_words(path, step)}: has branches 0..{len(b.branches) - 1}, no branch {branch}", _flow_path(path)
        )


def _check_merge(merge: str, dim: int | None, where: str) -> None:
    if merge not in MERGES:
        raise DesignError(f"{where}: unknown merge {merge!r}; merges: {', '.join(MERGES)}")
    if MERGES[merge][1] and dim is None:
        raise DesignError(f"{where}: {merge} needs a dim (e.g. 1, the channels of an image batch)")


def _step_words(path: Path, step: int | StepAt) -> str:
    return _at_words(path, _at(step))


def _at(step: int | StepAt) -> StepAt:
    """A branches step given by its index in the holder's own flow, or by its place anywhere (StepAt)."""
    return (step,) if isinstance(step, int) else step


def _replaced(flow: Flow, at: StepAt, new: Flow) -> Flow:
    """The flow with the step at `at` replaced by the steps `new` (none: removed)."""
    lane, i = _lane(flow, at, ())
    return _with_lane(flow, at[:-1], (*lane[:i], *new, *lane[i + 1 :]))


def _with_step(design: Design, path: Path, block: Block, step: int | StepAt, new: Branches) -> Design:
    return _checked(_put(design, path, replace(block, flow=_replaced(block.flow or (), _at(step), (new,)))))


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
