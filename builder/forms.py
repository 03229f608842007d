"""The Design page's form model: what an editor shows for a layer and how typed text becomes a layer.

Pure functions, no Streamlit. An argument's text box shows `format_value(v)` and reads back with
`parse_value(arg, text)`; `form_values(layer)` fills an editor and `make_layer(type, values)` turns the
submitted values into a layer (leaving a lazy-able size empty gives the Lazy* type); `new_values` pre-fills
the add panel, `insert_points` lists where a new node may go and `input_shape_at` what it would receive.
The edits themselves are `builder.edit`'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .addressing import Path, format_path, node_at, paths
from .build import DryRun, LayerRun, StepRun
from .design import Block, Design, Layer, Node, Use, child_key
from .errors import DesignError
from .flow import OPS, Call, Op, StepAt, steps_at
from .registry import REGISTRY, Arg, LayerType, check_value, unknown_type

__all__ = [
    "arriving_shape",
    "form_type",
    "form_values",
    "flow_input_shape",
    "format_value",
    "input_shape_at",
    "insert_points",
    "lazy_arg",
    "make_layer",
    "make_op",
    "new_values",
    "op_values",
    "parse_shape",
    "parse_value",
    "with_input_size",
]


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
        if not arg.required and _is_default(value, arg.default):
            continue
        args[arg.name] = value
    return Layer(type=target.name, args=args, name=name or None)


def make_op(name: str, values: Mapping[str, Any], *, where: str = "new step") -> Op:
    """A parameter-free operation (a key of builder.flow.OPS) from form values; arguments equal to the default
    are not stored and an empty optional one is its default (mean's dim: all dims)."""
    spec = OPS.get(name)
    if spec is None:
        raise DesignError(f"{where}: unknown operation {name!r}; known: {', '.join(OPS)}", where)
    known = {a.name: a for a in spec.args}
    unknown = sorted(set(values) - set(known))
    if unknown:
        names = ", ".join(known) or "none"
        raise DesignError(f"{where} ({name}): no argument {unknown[0]!r} (its arguments: {names})", where)
    args: dict[str, Any] = {}
    for arg in spec.args:
        value = values.get(arg.name)
        if value is None:
            if arg.required:
                raise DesignError(f"{where} ({name}): {arg.name} is needed", f"{where}.{arg.name}")
            continue
        try:
            value = check_value(arg, value, f"{where}.{arg.name}")
        except ValueError as e:
            raise DesignError(str(e), f"{where}.{arg.name}") from None
        if arg.required or not _is_default(value, arg.default):
            args[arg.name] = value
    return Op(name, args)


def op_values(name: str) -> dict[str, Any]:
    """Form values for a new step of operation `name`: its defaults, and examples for required arguments
    (select: dim 1, index -1, the last time step)."""
    return {a.name: (a.example if a.required else a.default) for a in OPS[name].args}


def new_values(type_name: str, input_shape: Sequence[int] | None = None) -> dict[str, Any]:
    """Form values for a new layer of `type_name`: torch's defaults, the registry's examples for required
    arguments, and the input size the layer will see when it is known (a Linear after (2, 8) starts at
    8 → …). A Lazy* type starts with that size empty."""
    lt = _layer_type(type_name)
    base = REGISTRY[form_type(type_name)]
    out = {a.name: (a.example if a.required or a.example is not None else a.default) for a in base.args}
    lazy = lazy_arg(type_name)
    if lazy and lt.is_lazy:
        out[lazy] = None
    elif input_shape is not None:
        # The size arriving here: torch has no Lazy LSTM, GroupNorm or Transformer layer, so their input
        # size starts as the shape the dry run found (an LSTM after (2, 35, 32) starts at input_size 32).
        out = with_input_size(base, out, input_shape)
    return _divisors_fit(base, out)


def with_input_size(lt: LayerType, values: Mapping[str, Any], input_shape: Sequence[int]) -> dict[str, Any]:
    """A layer's argument `values` with its input size (in_features, in_channels, num_features, input_size,
    embed_dim…) set to what `input_shape` carries, and the arguments that must divide it lowered to fit
    (num_heads); unchanged when the type has no input size or the shape has no such axis."""
    out = dict(values)
    axis, arg = lt.feature_axis, lt.feature_arg
    if axis is None or not arg or not -len(input_shape) <= axis < len(input_shape):
        return out
    outer, _, inner = arg.partition(".")
    if inner:  # a nested layer's argument: TransformerEncoder's encoder_layer.d_model
        nested = {**out[outer], inner: input_shape[axis]}
        out[outer] = _divisors_fit(REGISTRY[nested["type"]], nested)
    else:
        out[arg] = input_shape[axis]
    return _divisors_fit(lt, out)


def _divisors_fit(lt: LayerType, values: dict[str, Any]) -> dict[str, Any]:
    """`values` with each argument that must divide another (num_heads, nhead, num_groups) lowered to the
    largest divisor at most its value: 4 heads for embed_dim 32, 2 for a pre-filled embed_dim of 10."""
    for arg in lt.args:
        total, parts = values.get(arg.divides or ""), values.get(arg.name)
        if isinstance(total, int) and isinstance(parts, int) and parts > 0 and total % parts:
            values[arg.name] = max(d for d in range(1, parts + 1) if total % d == 0)
    return values


def insert_points(design: Design, near: Iterable[tuple[Path, Node, str]] | None = None) -> dict[str, str]:
    """Where a new node can go, as {insertion path: label}, the end first: at the start, after every node
    and first inside every block. Labels use module keys ("after 0.net.1 · ReLU"). `near`: only after and
    inside these nodes, given as (path, node, module key) (the rows a page shows; the end and start always)."""
    out = {format_path((len(design.layers),)): "at the end"}
    if design.layers:
        out[format_path((0,))] = "at the start"
    every = ((path, node, key) for (path, node), (_, key, _) in zip(paths(design), design.walk(), strict=True))
    for path, node, key in every if near is None else near:
        if isinstance(node, Block):
            out.setdefault(format_path((*path, 0)), f"first inside {key} · Sequential")
            kind = "Sequential"
        else:
            kind = f"shared '{node.shared}'" if isinstance(node, Use) else node.type
        out.setdefault(format_path((*path[:-1], path[-1] + 1)), f"after {key} · {kind}")
    return out


def input_shape_at(design: Design, path: Path, run: DryRun | None) -> tuple[int, ...] | None:
    """The shape a node inserted at `path` would receive, when the dry run `run` of `design` knows it. `run` may
    be what a dry run saw before a fault (`build.dry_run_until_fault`): places after the fault are None."""
    if path[-1] == 0 and len(path) == 1:
        return tuple(design.input_shape)
    if run is None:
        return None
    runs = _runs(run)
    if path == (len(design.layers),):  # the stack's end: what the network outputs (its flow's end, if it has one)
        if design.flow is not None:
            return flow_input_shape(design, (), (len(design.flow),), run)
        last = runs.get(format_path((len(design.layers) - 1,)))
        return last.output_shape if last else None
    if path[-1] > 0:
        before = runs.get(format_path((*path[:-1], path[-1] - 1)))
        return before.output_shape if before else None
    block = runs.get(format_path(path[:-1]))
    return block.input_shape if block else None


def flow_input_shape(design: Design, path: Path, at: StepAt, run: DryRun | None) -> tuple[int, ...] | None:
    """The shape a step inserted at `at` in the flow of the holder at `path` (() : the network) would receive,
    when the dry run `run` of `design` knows it: the output of the step before it, else the input of its
    branch (what arrives at its branches step), or of the holder. A Sequential holder counts as the chain of its
    children. `run` may be what a dry run saw before a fault (`build.dry_run_until_fault`): places before the
    fault are known, the others are None."""
    if run is None:
        return tuple(design.input_shape) if not path and at == (0,) else None
    holder = _holder(design, path)
    if holder is None:
        return None
    where = f"{format_path(path)}.flow" if path else "flow"
    lane = where + "".join(f"[{at[d]}].branches[{at[d + 1]}]" for d in range(0, len(at) - 1, 2))
    j = at[-1]
    if j > 0:
        if holder.flow is None:  # a Sequential: its children's runs
            before = _runs(run).get(format_path((*path, j - 1)))
            return before.output_shape if before else None
        step = _steps(run).get(f"{lane}[{j - 1}]")
        return step.output_shape if step else None
    if len(at) > 1:
        branch = _steps(run).get(lane)
        return branch.input_shape if branch else flow_input_shape(design, path, at[:-2], run)
    return arriving_shape(design, path, run)


def arriving_shape(design: Design, path: Path, run: DryRun) -> tuple[int, ...] | None:
    """The shape arriving at the node at `path` (() : the network's input), when `run` knows it: its own run,
    else the output of what runs before it in its holder (the previous child of a Sequential, the flow step
    before its call)."""
    if not path:
        return tuple(design.input_shape)
    own = _runs(run).get(format_path(path))
    if own is not None:
        return own.input_shape
    parent, i = path[:-1], path[-1]
    holder = _holder(design, parent)
    if holder is None:
        return None
    if holder.flow is None:
        if i == 0:
            return arriving_shape(design, parent, run)
        before = _runs(run).get(format_path((*parent, i - 1)))
        return before.output_shape if before else None
    key = child_key(holder.layers[i], i)
    call = next((a for a, s in steps_at(holder.flow) if isinstance(s, Call) and s.target == key), None)
    return flow_input_shape(design, parent, call, run) if call is not None else None


def _holder(design: Design, path: Path) -> Block | None:
    if not path:
        return design.top
    try:
        node = node_at(design, path)
    except DesignError:
        return None
    return node if isinstance(node, Block) else None


def _runs(run: DryRun) -> dict[str, LayerRun]:
    return {r.path: r for r in run.layers}


def _steps(run: DryRun) -> dict[str, StepRun]:
    out: dict[str, StepRun] = {}
    for r in run.steps:
        out.setdefault(r.path, r)
    return out


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
    if arg.kind == "layer":  # a nested layer as JSON: {"type": "TransformerEncoderLayer", "d_model": 32, ...}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise DesignError(
                f'{arg.name}: type a layer as JSON, like {{"type": "{arg.layer_types[0]}", ...}} ({e.msg})', arg.name
            ) from None
        return value
    inner = text.strip("()[] ")
    parts = [p.strip() for p in inner.replace("×", ",").replace("x", ",").split(",") if p.strip()]
    try:
        numbers = [float(p) if arg.kind in ("float", "floats") else int(p) for p in parts]
    except ValueError:
        want = {"float": "a number", "int": "a whole number", "floats": "a number or a list like 2, 1.5"}.get(
            arg.kind, "a whole number or a list like 3, 5"
        )
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
    if isinstance(value, Mapping):  # a nested layer
        return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in value.items()})
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


def _layer_type(type_name: str) -> LayerType:
    lt = REGISTRY.get(type_name)
    if lt is None:
        raise DesignError(unknown_type(type_name))
    return lt


def _is_default(value: Any, default: Any) -> bool:
    """Equal to torch's default, a bool never standing for a number (True == 1 in Python)."""
    if isinstance(value, bool) != isinstance(default, bool):
        return False
    return bool(value == default)
