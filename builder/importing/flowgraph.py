"""Forward passes as data: a DAG of symbolic tensors over the input, and its series-parallel flow (FLOW-SPEC).

Both importers record what forward does as `T` nodes — the input, a step applied to one tensor (a child call
or a parameter-free operation), a merge of several tensors — and `to_steps` turns the DAG into flow steps:
a chain from the input, and for every merge, branches that start at the nearest tensor all the merged parts
come from (an empty branch is the skip connection).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Activations a flow step names like F.<name> (FLOW-SPEC ops), with the arguments each takes.
ACTIVATIONS: dict[str, tuple[str, ...]] = {
    "relu": (),
    "gelu": ("approximate",),
    "sigmoid": (),
    "tanh": (),
    "silu": (),
    "elu": ("alpha",),
    "leaky_relu": ("negative_slope",),
    "softmax": ("dim",),
    "log_softmax": ("dim",),
}
MERGES = {"cat": "cat", "concat": "cat", "concatenate": "cat", "stack": "stack"}


# Symbolic tensors of a forward pass: a DAG over the input, turned into flow steps afterwards.
@dataclass(eq=False)
class T:
    kind: str  # "input" | "step" | "merge"
    parent: T | None = None  # "step": the tensor the step applies to
    step: Any = None  # "step": a FLOW-SPEC step (a child key, {"call": ...}, {"op": ...})
    parts: tuple[T, ...] = ()  # "merge": the joined tensors in order
    merge: str = ""
    dim: int | None = None


# -- symbolic tensors → flow steps ------------------------------------------------------------------------------


def to_steps(result: T, x: T, fail: Callable[[str], Exception]) -> list[Any]:
    """The DAG of forward as a series-parallel flow: a chain from the input, a merge as branches from the
    nearest tensor every merged part comes from."""
    memo: dict[int, T | None] = {}

    def parent(t: T) -> T | None:
        if t.kind == "input":
            return None
        if t.kind == "step":
            return t.parent
        if id(t) not in memo:
            memo[id(t)] = common(t.parts)
        return memo[id(t)]

    def spine(t: T) -> list[T]:
        out = []
        cur: T | None = t
        while cur is not None:
            out.append(cur)
            cur = parent(cur)
        return out

    def common(parts: tuple[T, ...]) -> T:
        spines = [spine(p) for p in parts]
        others = [{id(s) for s in sp} for sp in spines[1:]]
        for candidate in spines[0]:
            if all(id(candidate) in o for o in others):
                return candidate
        raise fail("forward joins tensors that do not come from one input")

    def chain(t: T, base: T) -> list[Any]:
        steps: list[Any] = []
        cur = t
        while cur is not base:
            if cur.kind == "input":
                raise fail("forward's branches do not nest (each branch must start where the others do)")
            if cur.kind == "step":
                steps.append(cur.step)
                assert cur.parent is not None
                cur = cur.parent
            else:
                start = parent(cur)
                assert start is not None
                merge: dict[str, Any] = {"branches": [chain(p, start) for p in cur.parts], "merge": cur.merge}
                if cur.dim is not None:
                    merge["dim"] = cur.dim
                steps.append(merge)
                cur = start
        return steps[::-1]

    if x not in spine(result):
        raise fail("forward's result does not come from its input")
    return chain(result, x)


def tuple_outputs(type_name: str) -> Any:
    """The shape of a tuple-returning layer's result as names (registry `outputs`), or None for a layer that
    returns one tensor: LSTM → ("output", ("h", "c")), GRU → ("output", "state")."""
    from ..registry import REGISTRY

    lt = REGISTRY.get(type_name)
    if lt is None or not lt.outputs:
        return None
    tree: dict[int, Any] = {}
    for name, path in lt.outputs.items():
        node = tree
        for i in path[:-1]:
            node = node.setdefault(i, {})
            if not isinstance(node, dict):
                break
        else:
            node.setdefault(path[-1], name)

    def freeze(node: Any) -> Any:
        return tuple(freeze(node[i]) for i in range(len(node))) if isinstance(node, dict) else node

    return freeze(tree)


def default_output(type_name: str) -> str | None:
    from ..registry import REGISTRY

    lt = REGISTRY.get(type_name)
    return lt.default_output if lt is not None else None


def self_attention(type_name: str) -> bool:
    from ..registry import REGISTRY

    lt = REGISTRY.get(type_name)
    return bool(lt is not None and lt.self_attention)


def torch_class(type_name: str) -> type | None:
    """The torch.nn class a registry type builds (TransformerEncoder's registry entry is a factory)."""
    from torch import nn

    from ..registry import REGISTRY

    lt = REGISTRY.get(type_name)
    if lt is None:
        return None
    if isinstance(lt.module, type):
        return lt.module
    found = getattr(nn, type_name, None)
    return found if isinstance(found, type) else None
