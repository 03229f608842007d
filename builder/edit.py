"""Editing designs: pure functions that take a Design and return a new one, plus an undo history.

Nothing here mutates a design or touches Streamlit; the Design page calls these and a notebook can too:

    from builder import edit
    d = edit.insert(d, (2,), edit.make_layer("Linear", {"in_features": 8, "out_features": 8}))
    d = edit.share(d, (2,), "shared")         # layers[2] becomes a use of the shared layer 'shared'
    d = edit.use_shared(d, (4,), "shared")    # ...used again at layers[4]: the same module object

Nodes are addressed by a path of indices into the stack, consistent with `Design.walk()`:
`(0, 2)` is `layers[0].layers[2]` (see `parse_path` / `format_path`). An insertion path names where the new
node will sit, so `(len(parent),)` appends. Shared definitions are addressed by their name.

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
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from .build import DryRun
from .design import DTYPES, Block, Design, Layer, Node, Use
from .errors import DesignError
from .registry import REGISTRY, Arg, LayerType, check_value

Path: TypeAlias = tuple[int, ...]

__all__ = [
    "History",
    "Path",
    "clear",
    "delete",
    "delete_shared",
    "duplicate",
    "form_type",
    "form_values",
    "format_path",
    "format_value",
    "group",
    "input_shape_at",
    "insert",
    "insert_points",
    "lazy_arg",
    "locate",
    "make_layer",
    "move",
    "new_values",
    "node_at",
    "parse_path",
    "parse_shape",
    "parse_value",
    "paths",
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
    "uses",
]

_STEP = re.compile(r"layers\[(\d+)\]")


# -- addressing ----------------------------------------------------------------------------------------


def format_path(path: Path) -> str:
    """(0, 2) -> "layers[0].layers[2]", the design path builder's messages use."""
    return ".".join(f"layers[{i}]" for i in path)


def parse_path(text: str) -> Path:
    """ "layers[0].layers[2]" -> (0, 2). Raises DesignError for anything that is not a path in the stack."""
    steps = text.split(".") if text else []
    out = []
    for step in steps:
        m = _STEP.fullmatch(step)
        if not m:
            raise DesignError(f"{text!r} is not a path in the stack (expected e.g. 'layers[0].layers[2]')")
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
    return _siblings(design, path)[path[-1]]


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


def suggest_name(design: Design, base: str = "shared") -> str:
    """A shared-layer name not yet taken: "shared", then "shared2", "shared3"..."""
    if base not in design.shared:
        return base
    i = 2
    while f"{base}{i}" in design.shared:
        i += 1
    return f"{base}{i}"


# -- editing the stack ---------------------------------------------------------------------------------


def insert(design: Design, path: Path, node: Node) -> Design:
    """Insert `node` so that it sits at `path` (the last index may equal the parent's length: append)."""
    _check_path(path)
    parent = _container(design, path[:-1])
    i = path[-1]
    if not 0 <= i <= len(parent):
        raise DesignError(f"cannot insert at {format_path(path)}: that block has {len(parent)} layers")
    return _result(_put(design, path[:-1], (*parent[:i], node, *parent[i:])))


def delete(design: Design, path: Path) -> Design:
    """Remove the node at `path`. A shared layer whose last use goes with it is dropped from `shared`.

    Refuses to empty a block (delete or ungroup the block instead); deleting the stack's only layer gives an
    empty design (as `clear`).
    """
    parent = _siblings(design, path)
    if len(path) > 1 and len(parent) == 1:
        raise DesignError(
            f"cannot delete {format_path(path)}: it is the only layer of block "
            f"{format_path(path[:-1])}; delete or ungroup the block instead",
            format_path(path),
        )
    i = path[-1]
    out = _put(design, path[:-1], parent[:i] + parent[i + 1 :])
    return _result(_prune(out, design))


def move(design: Design, path: Path, offset: int) -> Design:
    """Move the node at `path` `offset` places within its block (-1: up, towards the input; +1: down)."""
    parent = _siblings(design, path)
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
    return _result(_put(design, path[:-1], tuple(items)))


def duplicate(design: Design, path: Path) -> Design:
    """Insert a copy of the node right after it. A copy of a use is another use of the same shared layer
    (same weights); a copy of a layer or block has its own weights. A named node's copy gets a free name
    ("linear" -> "linear_2")."""
    parent = _siblings(design, path)
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
    parent = _siblings(design, chosen[0])
    if idx[-1] >= len(parent):
        raise DesignError(f"group: there is no layer at {format_path(chosen[-1])}")
    start, stop = idx[0], idx[-1] + 1
    block = Block(layers=parent[start:stop], name=name or None)
    return _result(_put(design, parent_path, (*parent[:start], block, *parent[stop:])))


def ungroup(design: Design, path: Path) -> Design:
    """Replace the block at `path` by its children, in place."""
    parent = _siblings(design, path)
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
    return _result(_put(design, path[:-1], (*parent[:i], *node.layers, *parent[i + 1 :])))


def rename(design: Design, path: Path, name: str | None) -> Design:
    """Give the node at `path` a name (its key in the module and state_dict), or None / "" to index it."""
    parent = _siblings(design, path)
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
    return _result(_replace_raw(design, path, node))


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
        return _result(replace(design, shared={**design.shared, node.shared: spec}))
    new = make_layer(node.type, values, node.name, where=format_path(path))
    return replace_node(design, path, replace(node, type=new.type, args=new.args))


def set_input(design: Design, shape: Sequence[int], dtype: str | None = None) -> Design:
    """Set the example input's shape (and dtype: float32, float64 or int64, which Embedding needs)."""
    dtype = design.input_dtype if dtype is None else dtype
    if dtype not in DTYPES:
        raise DesignError(f"input.dtype: must be one of {', '.join(DTYPES)}, got {dtype!r}", "input.dtype")
    return _result(replace(design, input_shape=tuple(shape), input_dtype=dtype))


def clear(design: Design) -> Design:
    """An empty stack with the same input: where building from scratch starts (it does not build yet)."""
    return Design(layers=(), input_shape=design.input_shape, input_dtype=design.input_dtype)


# -- shared layers -------------------------------------------------------------------------------------


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
    parent = _siblings(design, path)
    i = path[-1]
    out = _put(out, path[:-1], (*parent[:i], Use(shared=name, name=node.name), *parent[i + 1 :]))
    return _result(out)


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
    return _result(_prune(_replace_raw(design, path, copy), design))


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
    return _result(replace(out, shared=shared))


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
    return _result(replace(design, shared=shared, layers=fix(design.layers)))


# -- layers from form values ---------------------------------------------------------------------------


def form_type(type_name: str) -> str:
    """The type whose arguments an editor shows: the eager one for a lazy type (LazyLinear -> Linear), so
    the inferred size appears as an input that may be left empty."""
    lt = _layer_type(type_name)
    return lt.eager or lt.name


def lazy_arg(type_name: str) -> str | None:
    """The argument of `form_type(type_name)` that may be left empty to make the layer lazy, if any."""
    base = REGISTRY[form_type(type_name)]
    return REGISTRY[base.lazy].infers if base.lazy else None


def form_values(layer: Layer) -> dict[str, Any]:
    """Every argument of the layer's form type, as given or torch's default; a lazy layer's inferred size
    is None (empty). Required arguments missing from the layer are None too."""
    base = REGISTRY[form_type(layer.type)]
    out: dict[str, Any] = {}
    for arg in base.args:
        if arg.name in layer.args:
            out[arg.name] = layer.args[arg.name]
        else:
            out[arg.name] = None if arg.required else arg.default
    return out


def make_layer(
    type_name: str, values: Mapping[str, Any], name: str | None = None, *, where: str = "new layer"
) -> Layer:
    """A layer of `type_name` (or its lazy / eager twin) from form values.

    Leaving the lazy argument empty (None or missing) gives the lazy type: Linear without in_features is
    LazyLinear; giving it turns a lazy type back into the eager one. Arguments equal to torch's default are
    not stored, so the JSON stays as short as hand-written PyTorch (`Linear(4, 8)`, not `bias=True`).
    """
    base = REGISTRY[form_type(type_name)]
    values = dict(values)
    target = base
    infers = lazy_arg(type_name)
    if infers is not None and values.get(infers) is None:
        target = REGISTRY[base.lazy]  # type: ignore[index]
        values.pop(infers, None)
    known = {a.name for a in base.args}
    unknown = sorted(set(values) - known)
    if unknown:
        raise DesignError(
            f"{where} ({base.name}): no argument {unknown[0]!r} (its arguments: {', '.join(sorted(known)) or 'none'})",
            f"{where}.{unknown[0]}",
        )
    args: dict[str, Any] = {}
    for arg in target.args:
        if arg.name not in values:
            continue
        value = values[arg.name]
        if value is None and not arg.optional:
            if arg.required:
                raise DesignError(f"{where} ({target.name}): {arg.name} is needed", f"{where}.{arg.name}")
            continue  # empty optional input: torch's default
        try:
            value = check_value(arg, value, f"{where}.{arg.name}")
        except ValueError as e:
            raise DesignError(str(e), f"{where}.{arg.name}") from None
        if not arg.required and _same(value, arg.default):
            continue
        args[arg.name] = value
    return Layer(type=target.name, args=args, name=name or None)


def new_values(type_name: str, input_shape: Sequence[int] | None = None) -> dict[str, Any]:
    """Form values for a new layer of `type_name`: torch's defaults, the registry's examples for required
    arguments, and the input size the layer will see when it is known (a Linear after (2, 8) starts at
    8 → …). A Lazy* type starts with that size empty."""
    lt = _layer_type(type_name)
    base = REGISTRY[form_type(type_name)]
    out = {a.name: (a.example if a.required else a.default) for a in base.args}
    lazy = lazy_arg(type_name)
    if lazy:
        axis = base.feature_axis
        if lt.is_lazy:
            out[lazy] = None
        elif input_shape is not None and axis is not None and -len(input_shape) <= axis < len(input_shape):
            out[lazy] = input_shape[axis]
    return out


def insert_points(design: Design) -> dict[str, str]:
    """Where a new node can go, as {insertion path: label}, the end first: at the start, after every node
    and first inside every block. Labels use module keys ("after 0.net.1 · ReLU")."""
    out = {format_path((len(design.layers),)): "at the end"}
    if design.layers:
        out[format_path((0,))] = "at the start"
    for (path, node), (_, key, _) in zip(paths(design), design.walk(), strict=True):
        if isinstance(node, Block):
            out.setdefault(format_path((*path, 0)), f"first inside {key} · Sequential")
            kind = "Sequential"
        else:
            kind = f"shared '{node.shared}'" if isinstance(node, Use) else node.type
        out.setdefault(format_path((*path[:-1], path[-1] + 1)), f"after {key} · {kind}")
    return out


def input_shape_at(design: Design, path: Path, run: DryRun | None) -> tuple[int, ...] | None:
    """The shape a node inserted at `path` would receive, when the dry run `run` of `design` knows it."""
    if path[-1] == 0 and len(path) == 1:
        return tuple(design.input_shape)
    if run is None:
        return None
    runs = {r.path: r for r in run.layers}
    if path[-1] > 0:
        before = runs.get(format_path((*path[:-1], path[-1] - 1)))
        return before.output_shape if before else None
    block = runs.get(format_path(path[:-1]))
    return block.input_shape if block else None


def parse_value(arg: Arg, text: str) -> Any:
    """What a person typed into an argument's text box, as JSON would carry it.

    "" -> None (empty: lazy size or optional), "3" -> 3, "3, 5" or "(3, 5)" -> [3, 5], "same" -> "same",
    "0.1" -> 0.1, "true"/"false" -> bool. Validity against the argument's range is `check_value`'s job.
    """
    text = text.strip()
    if not text or text.lower() in ("none", "null"):
        return None
    if arg.kind == "bool":
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise DesignError(f"{arg.name}: type true or false, got {text!r}", arg.name)
    if arg.kind == "choice" or (arg.kind.startswith("padding") and text.isalpha()):
        return text
    inner = text.strip("()[] ")
    parts = [p.strip() for p in inner.replace("×", ",").replace("x", ",").split(",") if p.strip()]
    try:
        numbers = [float(p) if arg.kind == "float" else int(p) for p in parts]
    except ValueError:
        want = {"float": "a number", "int": "a whole number"}.get(arg.kind, "a whole number or a list like 3, 5")
        raise DesignError(f"{arg.name}: type {want}, got {text!r}", arg.name) from None
    if arg.kind in ("int", "float"):
        if len(numbers) != 1:
            raise DesignError(f"{arg.name}: type one number, got {text!r}", arg.name)
        return numbers[0]
    is_list = "," in text or "×" in text or text.startswith(("(", "["))
    return numbers if is_list or len(numbers) != 1 else numbers[0]


def format_value(value: Any) -> str:
    """The text an argument's box shows for `value` (inverse of `parse_value`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def parse_shape(text: str) -> tuple[int, ...]:
    """ "2, 4" or "(2, 4)" or "2x4" -> (2, 4): the example input's shape as typed."""
    inner = text.strip().strip("()[] ")
    parts = [p.strip() for p in inner.replace("×", ",").replace("x", ",").split(",") if p.strip()]
    if not parts:
        raise DesignError(
            "input.shape: type the example input's sizes, e.g. 2, 20 (batch of 2, 20 features)", "input.shape"
        )
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise DesignError(
            f"input.shape: type whole numbers separated by commas, e.g. 2, 20; got {text!r}", "input.shape"
        ) from None
    for i, s in enumerate(sizes):
        if s < 1:
            raise DesignError(f"input.shape[{i}]: must be a positive whole number, got {s}", f"input.shape[{i}]")
    return sizes


# -- undo / redo ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """An immutable undo/redo history of designs: `present` is the one being edited.

    `push` records an edit (and forgets what could be redone, as editors do); `undo`/`redo` step through.
    At most `limit` past designs are kept (the oldest are forgotten first).
    """

    present: Design
    past: tuple[Design, ...] = ()
    future: tuple[Design, ...] = ()
    limit: int = 200

    @property
    def can_undo(self) -> bool:
        return bool(self.past)

    @property
    def can_redo(self) -> bool:
        return bool(self.future)

    def push(self, design: Design) -> History:
        """Make `design` the present; an edit that changes nothing is not recorded."""
        if design == self.present:
            return self
        past = (*self.past, self.present)[-self.limit :]
        return replace(self, present=design, past=past, future=())

    def undo(self) -> History:
        if not self.past:
            raise DesignError("nothing to undo")
        return replace(self, present=self.past[-1], past=self.past[:-1], future=(self.present, *self.future))

    def redo(self) -> History:
        if not self.future:
            raise DesignError("nothing to redo")
        return replace(self, present=self.future[0], past=(*self.past, self.present), future=self.future[1:])


# -- internals -----------------------------------------------------------------------------------------


def _layer_type(type_name: str) -> LayerType:
    lt = REGISTRY.get(type_name)
    if lt is None:
        raise DesignError(f"unknown layer type {type_name!r}")
    return lt


def _check_path(path: Path) -> None:
    if not path or any(not isinstance(i, int) or isinstance(i, bool) or i < 0 for i in path):
        raise DesignError(f"{path!r} is not a path in the stack (a tuple of indices such as (0, 2))")


def _container(design: Design, path: Path) -> tuple[Node, ...]:
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


def _siblings(design: Design, path: Path) -> tuple[Node, ...]:
    """The children of the block holding `path`, checking that `path` names a node."""
    _check_path(path)
    parent = _container(design, path[:-1])
    if path[-1] >= len(parent):
        raise DesignError(f"there is no layer at {format_path(path)}")
    return parent


def _put(design: Design, path: Path, children: tuple[Node, ...]) -> Design:
    """`design` with the children of the block at `path` (the stack for ()) replaced."""

    def rebuild(nodes: tuple[Node, ...], rest: Path) -> tuple[Node, ...]:
        if not rest:
            return children
        i = rest[0]
        block = nodes[i]
        assert isinstance(block, Block)
        return (*nodes[:i], replace(block, layers=rebuild(block.layers, rest[1:])), *nodes[i + 1 :])

    return replace(design, layers=rebuild(design.layers, path))


def _replace_raw(design: Design, path: Path, node: Node) -> Design:
    """`design` with `node` at `path`, not yet checked (see `_result`)."""
    parent = _siblings(design, path)
    i = path[-1]
    return _put(design, path[:-1], (*parent[:i], node, *parent[i + 1 :]))


def _prune(design: Design, before: Design) -> Design:
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


def _same(value: Any, default: Any) -> bool:
    if isinstance(value, bool) != isinstance(default, bool):
        return False
    return value == default


def _result(design: Design) -> Design:
    """Check an edited design as `Design.from_dict` would and return its canonical form.

    An empty stack is allowed here (the editor's starting point); everything else must read back.
    """
    data = design.to_dict()
    empty = not data["layers"]
    if empty:
        data["layers"] = [{"type": "Identity"}]
    checked = Design.from_dict(data)
    return replace(checked, layers=()) if empty else checked
