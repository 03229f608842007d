"""The JSON Schema of design documents, generated from the layer registry (the one source of truth).

`docs/design.schema.json` is this schema written out; a test keeps the two equal. Regenerate with
`python -m builder.schema > docs/design.schema.json`. The schema lets editors and other tools check a design
without Blockwork; Blockwork itself checks more (shapes, names, budgets) when it parses and builds.
"""

from __future__ import annotations

import json
from typing import Any

from .design import DTYPES, FORMAT, MAX_NAME, READS
from .flow import MERGES, OPS, RESERVED_NAMES, OpType
from .init_spec import BIAS_CHOICES, INIT_TYPES, METHODS, SEED_MAX, Method
from .registry import BLOCK_TYPE, FLOW_TYPE, REGISTRY, REQUIRED, Arg, LayerType

_ID = "^[A-Za-z_][A-Za-z0-9_]*$"
_NAME = "^[^.\\u0000-\\u001f\\u007f]+$"  # what add_module accepts (no dot), printable
_TARGET = "^[^.]+(\\.[^.]+)*$"  # a child's key, or a dotted key of a grandchild


def _ints(arg: Arg, length: int | None) -> dict[str, Any]:
    one = _number(arg, "integer")
    many: dict[str, Any] = {"type": "array", "items": one, "minItems": length or 1, "maxItems": length or 64}
    return {"anyOf": [one, many]}


def _number(arg: Arg, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind}
    if arg.min is not None:
        out["minimum"] = arg.min
    if arg.max is not None:
        out["maximum"] = arg.max
    return out


def _arg_schema(arg: Arg) -> dict[str, Any]:
    kind = arg.kind
    if kind in ("int", "float"):
        out = _number(arg, "integer" if kind == "int" else "number")
    elif kind == "bool":
        out = {"type": "boolean"}
    elif kind == "choice":
        out = {"enum": list(arg.choices)}
    elif kind in ("int1", "int2"):
        out = _ints(arg, int(kind[-1]))
    elif kind in ("padding1", "padding2"):
        out = {"anyOf": [*_ints(arg, int(kind[-1]))["anyOf"], {"enum": ["same", "valid"]}]}
    elif kind == "ints":
        out = _ints(arg, None)
    elif kind == "floats":
        one = _number(arg, "number")
        out = {"anyOf": [one, {"type": "array", "items": one, "minItems": 1, "maxItems": 64}]}
    elif kind == "layer":  # a nested layer: one of the allowed types, without a name or init of its own
        out = {
            "allOf": [{"anyOf": [{"$ref": f"#/$defs/{t}"} for t in arg.layer_types]}],
            "not": {"anyOf": [{"required": ["name"]}, {"required": ["init"]}]},
        }
    else:
        raise AssertionError(kind)
    if arg.optional:
        out = {"anyOf": [out, {"type": "null"}]}
    if arg.help:
        out["description"] = arg.help
    if arg.default is not REQUIRED:
        out["default"] = arg.default
    return out


def _method_schema(m: Method) -> dict[str, Any]:
    props: dict[str, Any] = {"method": {"const": m.name}}
    for o in m.options:
        if o.kind == "float":
            props[o.name] = {"type": "number", **({"exclusiveMinimum": 0} if o.positive else {}), "default": o.default}
        else:
            props[o.name] = {"enum": list(o.choices), "default": o.default}
    if m.name != "default":
        props["bias"] = {"enum": list(BIAS_CHOICES), "default": "zeros"}
    return {
        "title": m.label,
        "type": "object",
        "properties": props,
        "required": ["method"],
        "additionalProperties": False,
    }


def _init_schema() -> dict[str, Any]:
    """An init: a method name, or an object with the method and its options (see builder/init.py)."""
    return {"anyOf": [{"enum": list(METHODS)}, *(_method_schema(m) for m in METHODS.values())]}


def _layer_schema(lt: LayerType) -> dict[str, Any]:
    props: dict[str, Any] = {"type": {"const": lt.name}, "name": {"$ref": "#/$defs/name"}}
    if lt.name in INIT_TYPES:
        props["init"] = {"$ref": "#/$defs/init"}
    props.update({a.name: _arg_schema(a) for a in lt.args})
    return {
        "title": lt.name,
        "description": lt.doc,
        "type": "object",
        "properties": props,
        "required": ["type", *(a.name for a in lt.args if a.required)],
        "additionalProperties": False,
    }


def _op_schema(op: OpType) -> dict[str, Any]:
    return {
        "title": f"op {op.name}",
        "description": op.doc,
        "type": "object",
        "properties": {"op": {"const": op.name}, **{a.name: _arg_schema(a) for a in op.args}},
        "required": ["op", *(a.name for a in op.args if a.required)],
        "additionalProperties": False,
    }


def _flow_defs() -> dict[str, Any]:
    """A flow: a list of steps (builder.flow)."""
    needs_dim = [m for m, (_, dim, _) in MERGES.items() if dim]
    elementwise = [m for m in MERGES if m not in needs_dim]
    branches = {"type": "array", "items": {"$ref": "#/$defs/flow"}, "minItems": 1}
    return {
        "flow": {"type": "array", "items": {"$ref": "#/$defs/step"}},
        "step": {
            "anyOf": [
                {"title": "call a child", "type": "string", "pattern": _TARGET},
                {"$ref": "#/$defs/call"},
                *({"$ref": f"#/$defs/op_{name}"} for name in OPS),
                {"$ref": "#/$defs/branches"},
            ]
        },
        "call": {
            "title": "call a child, choosing a tuple-returning layer's output",
            "type": "object",
            "properties": {"call": {"type": "string", "pattern": _TARGET}, "output": {"type": "string"}},
            "required": ["call"],
            "additionalProperties": False,
        },
        "branches": {
            "title": "parallel branches joined by a merge ([] is the identity: a skip)",
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "branches": branches,
                        "merge": {"enum": needs_dim},
                        "dim": {"type": "integer", "minimum": -64, "maximum": 64},
                    },
                    "required": ["branches", "merge", "dim"],
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {"branches": branches, "merge": {"enum": elementwise}},
                    "required": ["branches", "merge"],
                    "additionalProperties": False,
                },
            ],
        },
        **{f"op_{name}": _op_schema(op) for name, op in OPS.items()},
    }


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of design format FORMAT."""
    layer_refs = [{"$ref": f"#/$defs/{name}"} for name in REGISTRY]
    defs: dict[str, Any] = {
        "init": _init_schema(),
        "name": {
            "type": "string",
            "pattern": _NAME,
            "maxLength": MAX_NAME,
            "not": {"enum": sorted(RESERVED_NAMES)},
            "description": "child name: any name nn.Module.add_module accepts (no '.'); unnamed children are "
            "indexed by position as nn.Sequential does",
        },
        "class": {"type": "string", "pattern": _ID, "maxLength": MAX_NAME, "not": {"enum": ["nn", "torch", "F"]}},
        "node": {
            "anyOf": [{"$ref": "#/$defs/block"}, {"$ref": "#/$defs/flow_block"}, {"$ref": "#/$defs/use"}, *layer_refs]
        },
        "block": {
            "title": "block",
            "description": "a nested nn.Sequential",
            "type": "object",
            "properties": {
                "type": {"const": BLOCK_TYPE},
                "name": {"$ref": "#/$defs/name"},
                "layers": {"type": "array", "items": {"$ref": "#/$defs/node"}, "minItems": 1},
                "init": {"$ref": "#/$defs/init"},
            },
            "required": ["type", "layers"],
            "additionalProperties": False,
        },
        "flow_block": {
            "title": "block with a flow",
            "description": "a module whose forward runs its flow over its named children (builder.flow)",
            "type": "object",
            "properties": {
                "type": {"const": FLOW_TYPE},
                "class": {"$ref": "#/$defs/class"},
                "name": {"$ref": "#/$defs/name"},
                "layers": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                "flow": {"$ref": "#/$defs/flow"},
                "init": {"$ref": "#/$defs/init"},
            },
            "required": ["type", "flow"],
            "additionalProperties": False,
        },
        **_flow_defs(),
        "use": {
            "title": "use of a shared layer",
            "type": "object",
            "properties": {"shared": {"type": "string", "pattern": _ID}, "name": {"$ref": "#/$defs/name"}},
            "required": ["shared"],
            "additionalProperties": False,
        },
    }
    defs.update({name: _layer_schema(lt) for name, lt in REGISTRY.items()})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://blockwork.invalid/design-format-{FORMAT}.schema.json",
        "title": "Blockwork design",
        "description": "A PyTorch network as a stack of layers, nested blocks, flows (skips, branches) and shared "
        "layers. See docs/design-format.md.",
        "type": "object",
        "properties": {
            "format": {"enum": list(READS)},
            "name": {"type": "string", "maxLength": 100},
            "description": {"type": "string", "maxLength": 5000},
            "seed": {"type": "integer", "minimum": 0, "maximum": SEED_MAX},
            "init": {"$ref": "#/$defs/init"},
            "input": {
                "type": "object",
                "properties": {
                    "shape": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 1},
                        "minItems": 1,
                        "maxItems": 8,
                    },
                    "dtype": {"enum": list(DTYPES), "default": "float32"},
                },
                "required": ["shape"],
                "additionalProperties": False,
            },
            "shared": {
                "type": "object",
                "propertyNames": {"pattern": _ID},
                "additionalProperties": {
                    "anyOf": [{"$ref": "#/$defs/block"}, {"$ref": "#/$defs/flow_block"}, *layer_refs]
                },
            },
            "class": {"$ref": "#/$defs/class"},
            "layers": {"type": "array", "items": {"$ref": "#/$defs/node"}, "minItems": 1},
            "flow": {"$ref": "#/$defs/flow"},
        },
        "required": ["format", "input", "layers"],
        "additionalProperties": False,
        "$defs": defs,
    }


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
