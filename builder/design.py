"""The design document: the one thing a user edits; every other view is derived from it.

A design is plain data (JSON, versioned by a `format` field) describing a stack of layers:

    {"format": 2, "name": "tied", "input": {"shape": [2, 4]},
     "shared": {"shared": {"type": "Linear", "in_features": 8, "out_features": 8}},
     "layers": [{"type": "Linear", "in_features": 4, "out_features": 8}, {"type": "ReLU"},
                {"shared": "shared"}, {"type": "ReLU"}, {"shared": "shared"}, {"type": "ReLU"},
                {"type": "Linear", "in_features": 8, "out_features": 1}]}

Each entry of `layers` is one of
    a layer   {"type": <torch.nn class name>, <constructor argument>: value, ..., "name"?: str}
    a block   {"type": "Sequential", "layers": [...], "name"?: str}
    a flow block {"type": "Module", "class"?: "Residual", "layers": [...], "flow": [steps], "name"?: str}
    a use     {"shared": <name in "shared">, "name"?: str}
Children without a name are indexed as nn.Sequential indexes them (their position); named children use
their names, so state_dict keys are those of the equivalent hand-written PyTorch. A flow block's forward
runs its flow over its children (skips, branches, inline ops: builder.flow); the design's top level may
have a flow too. docs/design-format.md is the full reference. Format 2 added flows and names with spaces;
a format-1 document reads unchanged. The classes here are immutable by convention; editors build new designs.
"""

from __future__ import annotations

import json
import keyword
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from .errors import DesignError, json_kind
from .flow import RESERVED_NAMES, Call, Flow, flow_to_list, parse_flow, walk_steps
from .init_spec import INIT_TYPES, check_init, check_seed
from .limits import limits
from .registry import BLOCK_TYPE, FLOW_TYPE, REGISTRY, ArgError, LayerType, check_args, unknown_type

FORMAT = 2  # what this Blockwork writes
READS = (1, 2)  # what it reads: format 1 (stacks only) is format 2 without flows
DTYPES = ("float32", "int64")  # example input dtypes; int64 feeds Embedding
MAX_NAME = 64  # characters of a child's or a class's name
_RESERVED = {"type", "name", "layers", "shared", "init", "class", "flow"}


@dataclass(frozen=True)
class Layer:
    """One torch layer: its registry type and the arguments given (defaults are not stored)."""

    type: str
    args: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    init: Mapping[str, Any] | None = None  # how its weight starts (builder.init); None: inherited


@dataclass(frozen=True)
class Block:
    """A nested block of child nodes: an nn.Sequential, or with a `flow` a module whose forward runs it."""

    layers: tuple[Node, ...] = ()
    name: str | None = None
    init: Mapping[str, Any] | None = None  # default init for the layers inside (builder.init)
    flow: Flow | None = None  # None: nn.Sequential (the children in order)
    cls: str | None = None  # a flow block's class name (its repr, the exported code's class); None: "Block"

    @property
    def class_name(self) -> str:
        return self.cls or ("Block" if self.flow is not None else BLOCK_TYPE)


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
    flow: Flow | None = None  # the top module's forward over `layers`; None: an nn.Sequential of them
    cls: str | None = None  # the top module's class name when it has a flow; None: "Net"

    @property
    def class_name(self) -> str:
        return self.cls or ("Net" if self.flow is not None else BLOCK_TYPE)

    @property
    def has_flow(self) -> bool:
        """Whether any block (or the top level) has a flow, i.e. the network is more than nested chains."""
        nodes = [*self.layers, *self.shared.values()]
        return self.flow is not None or any(isinstance(n, Block) and n.flow is not None for n in _all(nodes))

    @property
    def top(self) -> Block:
        """The top level as a block (the network's own module)."""
        return Block(layers=self.layers, flow=self.flow, cls=self.class_name if self.flow is not None else None)

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
        if self.cls is not None:
            out["class"] = self.cls
        out["layers"] = [_node_to_dict(n) for n in self.layers]
        if self.flow is not None:
            out["flow"] = flow_to_list(self.flow)
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


def resolve(children: tuple[Node, ...], target: str, shared: Mapping[str, Layer | Block]) -> tuple[Node, str] | None:
    """The node a flow's call names ("conv1", or "net.0" for a grandchild) and its design path relative to the
    block ("layers[0]", "layers[0].layers[1]"); None when there is no such child. A use stays a Use."""
    node: Node | None = None
    path, nodes = "", children
    for part in target.split("."):
        found = next(((i, n) for i, n in enumerate(nodes) if child_key(n, i) == part), None)
        if found is None:
            return None
        i, node = found
        path += f".layers[{i}]"
        inner = shared.get(node.shared) if isinstance(node, Use) else node
        nodes = inner.layers if isinstance(inner, Block) else ()
    return (node, path.removeprefix(".")) if node is not None else None


def layer_type(node: Node, shared: Mapping[str, Layer | Block]) -> LayerType | None:
    """The registry type of a layer (or of the layer a use stands for); None for a block."""
    if isinstance(node, Use):
        node = shared[node.shared]
    return REGISTRY[node.type] if isinstance(node, Layer) else None


def check_block(block: Block, where: str, shared: Mapping[str, Layer | Block]) -> None:
    """What a block's parts must agree on beyond their own JSON (builder.build checks it again, since editors
    make designs without parsing): unique child keys, no tuple-returning layer where nn.Sequential would pass
    the tuple on, and a flow that names existing children and outputs. `where` is the block's design path
    ("layers[2]"; "" for the top level)."""
    at = f"{where}." if where else ""
    seen: dict[str, int] = {}
    for i, node in enumerate(block.layers):
        key = child_key(node, i)
        if key in seen:
            j = seen[key]
            if node.name is None:  # an unnamed child's position clashes with an earlier child's name
                raise DesignError(
                    f"{at}layers[{i}]: its position {key!r} is the name of {at}layers[{j}]; rename that one",
                    f"{at}layers[{j}].name",
                )
            whose = "used by" if block.layers[j].name is not None else "the position of"
            raise DesignError(
                f"{at}layers[{i}]: the name {key!r} is already {whose} {at}layers[{j}]", f"{at}layers[{i}].name"
            )
        seen[key] = i
        lt = layer_type(node, shared)
        if block.flow is None and lt is not None and (lt.returns_tuple or lt.self_attention):
            raise DesignError(
                f"{at}layers[{i}] {lt.name}: returns a tuple ({', '.join(lt.outputs)}), which an nn.Sequential "
                f"would hand on whole; call it from a block's flow (type {FLOW_TYPE!r}), which takes its "
                f"{lt.default_output!r} (or the output you name)",
                f"{at}layers[{i}]",
            )
    if block.flow is None:
        return
    for path, step in walk_steps(block.flow, f"{at}flow"):
        if not isinstance(step, Call):
            continue
        found = resolve(block.layers, step.target, shared)
        if found is None:
            keys = ", ".join(repr(k) for k in seen) or "none"
            raise DesignError(
                f"{path}: {_block_words(where)} has no child {step.target!r} (its children: {keys})",
                path,
            )
        lt = layer_type(found[0], shared)
        if step.output is not None:
            if lt is None or not lt.returns_tuple:
                what = lt.name if lt is not None else "a block"
                raise DesignError(
                    f"{path}.output: {step.target!r} ({what}) returns one tensor; only a tuple-returning layer "
                    f"(LSTM, GRU, …) has outputs to choose",
                    f"{path}.output",
                )
            if step.output not in lt.outputs:
                raise DesignError(
                    f"{path}.output: {lt.name} has no output {step.output!r}; its outputs: {', '.join(lt.outputs)}",
                    f"{path}.output",
                )


def _block_words(where: str) -> str:
    return f"the block at {where}" if where else "the network"


def _all(nodes: list[Node]) -> Iterator[Node]:
    for node in nodes:
        yield node
        if isinstance(node, Block):
            yield from _all(list(node.layers))


def _walk(nodes: tuple[Node, ...], path: str, prefix: str) -> Iterator[tuple[str, str, Node]]:
    for i, node in enumerate(nodes):
        p, k = f"{path}[{i}]", prefix + child_key(node, i)
        yield p, k, node
        if isinstance(node, Block):
            yield from _walk(node.layers, f"{p}.layers", k + ".")


def _node_to_dict(node: Node) -> dict[str, Any]:
    if isinstance(node, Use):
        out: dict[str, Any] = {"shared": node.shared}
    elif isinstance(node, Block) and node.flow is not None:
        out = {"type": FLOW_TYPE}
        if node.cls is not None:
            out["class"] = node.cls
        out["layers"] = [_node_to_dict(n) for n in node.layers]
        out["flow"] = flow_to_list(node.flow)
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
        fields = {"format", "name", "description", "input", "shared", "class", "layers", "flow", "init", "seed"}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise DesignError(f"design has an unknown field {unknown[0]!r}", unknown[0])
        fmt = data.get("format")
        if isinstance(fmt, bool) or fmt not in READS:
            if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > FORMAT:
                raise DesignError(
                    f"format: this design is format {fmt}; this Blockwork reads formats "
                    f"{' and '.join(map(str, READS))}. Update Blockwork to open it.",
                    "format",
                )
            raise DesignError(f"format: must be {' or '.join(map(str, READS))}, got {fmt!r}", "format")
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
            if len(key) > MAX_NAME:
                raise DesignError(f"{where}: a shared layer's name is at most {MAX_NAME} characters", where)
            node = self.node(spec, where, depth=1, shared=None)
            assert not isinstance(node, Use)
            if node.name is not None:
                raise DesignError(
                    f"{where}: a shared definition takes its name from its key; give the name on each use instead",
                    f"{where}.name",
                )
            shared[key] = node
        layers = self.nodes(data.get("layers"), "layers", depth=1, shared=shared)
        flow = self.flow(data, "", depth=1)
        cls = self.class_name(data, "")
        if not layers:
            raise DesignError("layers: a design needs at least one layer", "layers")
        check_block(Block(layers=layers, flow=flow), "", shared)
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
            flow=flow,
            cls=cls,
        )

    def flow(self, spec: dict[str, Any], where: str, depth: int) -> Flow | None:
        """The optional "flow" of a block (or of the design, where = "")."""
        if "flow" not in spec:
            return None
        at = f"{where}.flow" if where else "flow"
        return parse_flow(spec["flow"], at, self.count_one, depth, self.limits.max_depth)

    def class_name(self, spec: dict[str, Any], where: str) -> str | None:
        if "class" not in spec:
            return None
        at = f"{where}.class" if where else "class"
        if "flow" not in spec:
            raise DesignError(f"{at}: only a block with a flow has a class name", at)
        name = self.identifier(spec["class"], at, "a class name")
        if name in ("nn", "torch", "F"):
            raise DesignError(f"{at}: {name!r} is taken by the exported code's imports; choose another", at)
        return name

    def count_one(self, where: str) -> None:
        self.count += 1
        if self.count > self.limits.max_layers:
            raise DesignError(
                f"{where}: the design has more than {self.limits.max_layers:,} layers and steps (BLOCKWORK_MAX_LAYERS)",
                where,
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
        if len(value) > MAX_NAME:
            raise DesignError(f"{where}: {what} is at most {MAX_NAME} characters", where)
        return value

    def child_name(self, value: Any, where: str) -> str:
        """A child's name: whatever nn.Module.add_module accepts (so the book's "block 0" works), printable."""
        if not isinstance(value, str) or not value:
            raise DesignError(f"{where}: a name must be non-empty text, got {value!r}", where)
        if "." in value:
            raise DesignError(
                f"{where}: a name cannot contain '.' (state_dict keys join names with dots), got {value!r}", where
            )
        if not value.isprintable():
            raise DesignError(f"{where}: a name cannot hold control characters, got {value!r}", where)
        if len(value) > MAX_NAME:
            raise DesignError(f"{where}: a name is at most {MAX_NAME} characters, got {len(value)}", where)
        if value in RESERVED_NAMES:
            raise DesignError(
                f"{where}: {value!r} is taken by nn.Sequential / nn.Module itself (add_module refuses it); "
                f"choose another name",
                where,
            )
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
        return tuple(self.node(spec, f"{where}[{i}]", depth, shared) for i, spec in enumerate(raw))

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
            name = self.child_name(name, f"{where}.name")
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
        if kind in (BLOCK_TYPE, FLOW_TYPE):
            allowed = {"type", "layers", "name", "init"} | ({"class", "flow"} if kind == FLOW_TYPE else set())
            extra = sorted(set(spec) - allowed)
            if extra:
                hint = (
                    f"; a block with a flow has type {FLOW_TYPE!r}"
                    if kind == BLOCK_TYPE and extra[0] in ("flow", "class")
                    else ""
                )
                raise DesignError(
                    f"{where}: a {kind} block takes only {', '.join(map(repr, sorted(allowed - {'type'})))}, "
                    f"not {extra[0]!r}{hint}",
                    f"{where}.{extra[0]}",
                )
            if depth >= self.limits.max_depth:
                raise DesignError(
                    f"{where}: blocks nest more than {self.limits.max_depth} deep (BLOCKWORK_MAX_DEPTH)", where
                )
            children = self.nodes(
                spec.get("layers", [] if kind == FLOW_TYPE else None), f"{where}.layers", depth + 1, shared
            )
            flow = None
            if kind == FLOW_TYPE:
                if "flow" not in spec:
                    raise DesignError(
                        f"{where}: a {FLOW_TYPE} block needs a 'flow' (how its forward runs its layers); "
                        f"without one, use {BLOCK_TYPE}",
                        f"{where}.flow",
                    )
                flow = self.flow(spec, where, depth + 1)
            if not children and not flow:
                raise DesignError(f"{where}.layers: a block needs at least one layer", f"{where}.layers")
            block = Block(
                layers=children, name=name, init=self.init(spec, where), flow=flow, cls=self.class_name(spec, where)
            )
            check_block(block, where, shared or {})
            return block
        lt = REGISTRY.get(kind) if isinstance(kind, str) else None
        if lt is None:
            raise DesignError(f"{where}.type: {unknown_type(kind)}", f"{where}.type")
        if "layers" in spec or "flow" in spec:
            field_ = "layers" if "layers" in spec else "flow"
            raise DesignError(
                f"{where}: {kind} is a layer, not a block; only {BLOCK_TYPE} and {FLOW_TYPE} have {field_!r}",
                f"{where}.{field_}",
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
