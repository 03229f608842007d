"""The design document: the one thing a user edits; every other view is derived from it.

A design is plain data (JSON, versioned by a `format` field) describing a stack of layers:

    {"format": 1, "name": "tied", "input": {"shape": [2, 4]},
     "shared": {"shared": {"type": "Linear", "in_features": 8, "out_features": 8}},
     "layers": [{"type": "Linear", "in_features": 4, "out_features": 8}, {"type": "ReLU"},
                {"shared": "shared"}, {"type": "ReLU"}, {"shared": "shared"}, {"type": "ReLU"},
                {"type": "Linear", "in_features": 8, "out_features": 1}]}

Each entry of `layers` is one of
    a layer   {"type": <torch.nn class name>, <constructor argument>: value, ..., "name"?: str}
    a block   {"type": "Sequential", "layers": [...], "name"?: str}
    a use     {"shared": <name in "shared">, "name"?: str}
Children without a name are indexed as nn.Sequential indexes them (their position); named children use
their names, so state_dict keys are those of the equivalent hand-written PyTorch. docs/design-format.md
is the full reference. The classes here are immutable by convention; editors build new designs.
"""

from __future__ import annotations

import json
import keyword
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from torch import nn

from .errors import DesignError, json_kind
from .init_spec import INIT_TYPES, check_init, check_seed
from .limits import limits
from .registry import BLOCK_TYPE, REGISTRY, ArgError, check_args, unknown_type

FORMAT = 1
DTYPES = ("float32", "int64")  # example input dtypes; int64 feeds Embedding
_RESERVED = {"type", "name", "layers", "shared", "init"}
_SEQUENTIAL_ATTRS = frozenset(dir(nn.Sequential()))


@dataclass(frozen=True)
class Layer:
    """One torch layer: its registry type and the arguments given (defaults are not stored)."""

    type: str
    args: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    init: Mapping[str, Any] | None = None  # how its weight starts (builder.init); None: inherited


@dataclass(frozen=True)
class Block:
    """A nested nn.Sequential of child nodes."""

    layers: tuple[Node, ...] = ()
    name: str | None = None
    init: Mapping[str, Any] | None = None  # default init for the layers inside (builder.init)


@dataclass(frozen=True)
class Use:
    """A use of a shared layer: the same module object at every position that uses it."""

    shared: str
    name: str | None = None


Node: TypeAlias = Layer | Block | Use


@dataclass(frozen=True)
class Design:
    """A whole network: the example input, the shared layer definitions and the stack of layers."""

    layers: tuple[Node, ...]
    input_shape: tuple[int, ...]
    input_dtype: str = "float32"
    shared: Mapping[str, Layer | Block] = field(default_factory=dict)
    name: str = "untitled"
    description: str = ""
    init: Mapping[str, Any] | None = None  # default init for every layer (builder.init); None: PyTorch's
    seed: int | None = None  # makes the built weights reproducible

    # -- reading and writing -------------------------------------------------------------------------

    @classmethod
    def from_json(cls, text: str | bytes) -> Design:
        """Parse and validate design JSON. Raises DesignError naming the field at fault."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DesignError(f"design is not UTF-8 text (byte {e.start})") from None
        if not isinstance(text, str):
            raise DesignError(f"design must be JSON text, got {type(text).__name__}")
        cap = limits().max_design_chars
        if len(text) > cap:
            raise DesignError(f"design is {len(text):,} characters, over the limit of {cap:,}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DesignError(f"design is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        except RecursionError:
            raise DesignError("design is nested too deeply to read") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> Design:
        """Validate plain data (as parsed from JSON) and return the design."""
        return _Parser().design(data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT, "name": self.name}
        if self.description:
            out["description"] = self.description
        out["input"] = {"shape": list(self.input_shape)}
        if self.input_dtype != "float32":
            out["input"]["dtype"] = self.input_dtype
        if self.shared:
            out["shared"] = {k: _node_to_dict(v) for k, v in self.shared.items()}
        out["layers"] = [_node_to_dict(n) for n in self.layers]
        if self.init is not None:
            out["init"] = dict(self.init)
        if self.seed is not None:
            out["seed"] = self.seed
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text that `from_json` reads back to an equal design."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    # -- walking -------------------------------------------------------------------------------------

    def walk(self) -> Iterator[tuple[str, str, Node]]:
        """Every node in forward order as (design path, module key, node); uses are not expanded.

        design path: "layers[2].layers[0]" — where the node sits in the JSON.
        module key:  "2.0" — its name in the built module (the state_dict key prefix).
        """
        yield from _walk(self.layers, "layers", "")


def child_key(node: Node, index: int) -> str:
    """The attribute name nn.Sequential gives this child: its name, or its position."""
    return node.name if node.name is not None else str(index)


def _walk(nodes: tuple[Node, ...], path: str, prefix: str) -> Iterator[tuple[str, str, Node]]:
    for i, node in enumerate(nodes):
        p, k = f"{path}[{i}]", prefix + child_key(node, i)
        yield p, k, node
        if isinstance(node, Block):
            yield from _walk(node.layers, f"{p}.layers", k + ".")


def _node_to_dict(node: Node) -> dict[str, Any]:
    if isinstance(node, Use):
        out: dict[str, Any] = {"shared": node.shared}
    elif isinstance(node, Block):
        out = {"type": BLOCK_TYPE, "layers": [_node_to_dict(n) for n in node.layers]}
    else:
        out = {"type": node.type, **{k: list(v) if isinstance(v, tuple) else v for k, v in node.args.items()}}
    if node.name is not None:
        out["name"] = node.name
    if not isinstance(node, Use) and node.init is not None:
        out["init"] = dict(node.init)
    return out


class _Parser:
    """Turns plain data into a Design, counting layers and depth against the limits as it goes."""

    def __init__(self) -> None:
        self.limits = limits()
        self.count = 0

    def design(self, data: Any) -> Design:
        if not isinstance(data, dict):
            raise DesignError(f"design must be a JSON object, got {json_kind(data)}")
        unknown = sorted(set(data) - {"format", "name", "description", "input", "shared", "layers", "init", "seed"})
        if unknown:
            raise DesignError(f"design has an unknown field {unknown[0]!r}", unknown[0])
        fmt = data.get("format")
        if fmt != FORMAT:
            if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > FORMAT:
                raise DesignError(
                    f"format: this design is format {fmt}; this Blockwork reads format "
                    f"{FORMAT}. Update Blockwork to open it.",
                    "format",
                )
            raise DesignError(f"format: must be {FORMAT}, got {fmt!r}", "format")
        name = self.text(data.get("name", "untitled"), "name", 100)
        description = self.text(data.get("description", ""), "description", 5_000)
        shape, dtype = self.input(data.get("input"))
        shared_raw = data.get("shared", {})
        if not isinstance(shared_raw, dict):
            raise DesignError(f"shared: must be an object of name → layer, got {json_kind(shared_raw)}", "shared")
        shared: dict[str, Layer | Block] = {}
        for key, spec in shared_raw.items():
            where = f"shared.{key}"
            self.identifier(key, where, "a shared layer's name")
            node = self.node(spec, where, depth=1, shared=None)
            assert not isinstance(node, Use)
            if node.name is not None:
                raise DesignError(
                    f"{where}: a shared definition takes its name from its key; give the name on each use instead",
                    f"{where}.name",
                )
            shared[key] = node
        layers = self.nodes(data.get("layers"), "layers", depth=1, shared=shared)
        if not layers:
            raise DesignError("layers: a design needs at least one layer", "layers")
        init = check_init(data["init"], "init") if data.get("init") is not None else None
        return Design(
            layers=layers,
            input_shape=shape,
            input_dtype=dtype,
            shared=shared,
            name=name,
            description=description,
            init=init,
            seed=check_seed(data.get("seed")),
        )

    def text(self, value: Any, where: str, max_len: int) -> str:
        if not isinstance(value, str):
            raise DesignError(f"{where}: must be a string, got {json_kind(value)}", where)
        if len(value) > max_len:
            raise DesignError(f"{where}: at most {max_len} characters, got {len(value)}", where)
        return value

    def identifier(self, value: Any, where: str, what: str) -> str:
        if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value):
            raise DesignError(
                f"{where}: {what} must be a Python identifier (letters, digits, _; "
                f"not starting with a digit), got {value!r}",
                where,
            )
        if len(value) > 64:
            raise DesignError(f"{where}: {what} is at most 64 characters", where)
        return value

    def input(self, raw: Any) -> tuple[tuple[int, ...], str]:
        if not isinstance(raw, dict):
            raise DesignError(f'input: must be an object like {{"shape": [2, 20]}}, got {json_kind(raw)}', "input")
        unknown = sorted(set(raw) - {"shape", "dtype"})
        if unknown:
            raise DesignError(f"input has an unknown field {unknown[0]!r}", f"input.{unknown[0]}")
        shape = raw.get("shape")
        if not isinstance(shape, list) or not 1 <= len(shape) <= 8:
            raise DesignError(f"input.shape: must be a list of 1 to 8 sizes, got {shape!r}", "input.shape")
        for i, s in enumerate(shape):
            if isinstance(s, bool) or not isinstance(s, int) or s < 1:
                raise DesignError(f"input.shape[{i}]: must be a positive whole number, got {s!r}", f"input.shape[{i}]")
        numel = 1
        for s in shape:
            numel *= s
        if numel > self.limits.max_activation:
            raise DesignError(
                f"input.shape: {tuple(shape)} has {numel:,} elements, over the limit of "
                f"{self.limits.max_activation:,} (BLOCKWORK_MAX_ACTIVATION)",
                "input.shape",
            )
        dtype = raw.get("dtype", "float32")
        if dtype not in DTYPES:
            raise DesignError(f"input.dtype: must be one of {', '.join(DTYPES)}, got {dtype!r}", "input.dtype")
        return tuple(shape), dtype

    def nodes(self, raw: Any, where: str, depth: int, shared: Mapping[str, Any] | None) -> tuple[Node, ...]:
        if not isinstance(raw, list):
            raise DesignError(f"{where}: must be a list of layers, got {json_kind(raw)}", where)
        nodes = tuple(self.node(spec, f"{where}[{i}]", depth, shared) for i, spec in enumerate(raw))
        seen: dict[str, int] = {}
        for i, node in enumerate(nodes):
            if node.name is not None:
                if node.name in seen:
                    raise DesignError(
                        f"{where}[{i}]: the name {node.name!r} is already used by {where}[{seen[node.name]}]",
                        f"{where}[{i}].name",
                    )
                seen[node.name] = i
        return nodes

    def node(self, spec: Any, where: str, depth: int, shared: Mapping[str, Any] | None) -> Node:
        if not isinstance(spec, dict):
            raise DesignError(f'{where}: must be an object like {{"type": "ReLU"}}, got {json_kind(spec)}', where)
        self.count += 1
        if self.count > self.limits.max_layers:
            raise DesignError(
                f"{where}: the design has more than {self.limits.max_layers:,} layers (BLOCKWORK_MAX_LAYERS)", where
            )
        name = spec.get("name")
        if name is not None:
            name = self.identifier(name, f"{where}.name", "a layer's name")
            if name in _SEQUENTIAL_ATTRS:
                raise DesignError(
                    f"{where}.name: {name!r} is taken by nn.Sequential itself; choose another name", f"{where}.name"
                )
        if "shared" in spec:
            extra = sorted(set(spec) - {"shared", "name"})
            if extra:
                raise DesignError(
                    f"{where}: a use of a shared layer takes only 'shared' and 'name', not {extra[0]!r}",
                    f"{where}.{extra[0]}",
                )
            ref = spec["shared"]
            if shared is None:
                raise DesignError(f"{where}: a shared definition cannot use another shared layer", where)
            if not isinstance(ref, str) or ref not in shared:
                known = ", ".join(map(repr, shared)) or "none are defined"
                raise DesignError(
                    f"{where}: uses shared layer {ref!r}, which does not exist (shared layers: {known})",
                    f"{where}.shared",
                )
            return Use(shared=ref, name=name)
        kind = spec.get("type")
        if kind is None:
            raise DesignError(f"{where}: needs a 'type' (a torch.nn class name) or 'shared'", where)
        if kind == BLOCK_TYPE:
            extra = sorted(set(spec) - {"type", "layers", "name", "init"})
            if extra:
                raise DesignError(
                    f"{where}: a Sequential block takes only 'layers', 'name' and 'init', not {extra[0]!r}",
                    f"{where}.{extra[0]}",
                )
            if depth >= self.limits.max_depth:
                raise DesignError(
                    f"{where}: blocks nest more than {self.limits.max_depth} deep (BLOCKWORK_MAX_DEPTH)", where
                )
            children = self.nodes(spec.get("layers"), f"{where}.layers", depth + 1, shared)
            if not children:
                raise DesignError(f"{where}.layers: a block needs at least one layer", f"{where}.layers")
            return Block(layers=children, name=name, init=self.init(spec, where))
        lt = REGISTRY.get(kind) if isinstance(kind, str) else None
        if lt is None:
            raise DesignError(f"{where}.type: {unknown_type(kind)}", f"{where}.type")
        if "layers" in spec:
            raise DesignError(
                f"{where}: {kind} is a layer, not a block; only {BLOCK_TYPE} has 'layers'", f"{where}.layers"
            )
        args = {k: v for k, v in spec.items() if k not in _RESERVED}
        try:
            kwargs = check_args(lt, args, where)
        except ArgError as e:
            raise DesignError(str(e), f"{where}.{e.arg}" if e.arg else where) from None
        # keep the arguments as given (not defaults), in canonical form (tuples for lists)
        init = self.init(spec, where)
        if init is not None and kind not in INIT_TYPES:
            raise DesignError(
                f"{where}.init: {kind} has no weight matrix or kernel to initialize (init applies "
                f"to {', '.join(sorted(INIT_TYPES))})",
                f"{where}.init",
            )
        return Layer(type=kind, args={k: kwargs[k] for k in args}, name=name, init=init)

    def init(self, spec: dict[str, Any], where: str) -> dict[str, Any] | None:
        return check_init(spec["init"], f"{where}.init") if spec.get("init") is not None else None
