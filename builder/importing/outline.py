"""What a bare `.params` file holds, without a design: its keys as a module tree, shapes, dtypes and ties.

A `.params` file is `torch.save(net.state_dict())`: a flat mapping of dotted keys to tensors. The dots are
the module tree (`net.0.weight` is the `weight` of child `0` of child `net`), and torch.save keeps tensors
that share storage shared in the file — so the chapter's tied network (one Linear at positions 2 and 4)
shows up as `2.weight`/`4.weight` on one storage. The file is read by `read_params`, with its checks
(weights_only unpickling, size cap, dense CPU tensors only), before anything here looks at it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO

import pandas as pd
import torch

from ..params import read_params

OUTLINE_COLUMNS = ["key", "shape", "dtype", "count", "tied with"]


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the file: its key, shape, dtype and element count; `tie` numbers its tie group."""

    key: str
    shape: tuple[int, ...]
    dtype: str  # "float32", "int64", …
    count: int
    tie: int | None = None  # index into ParamsOutline.ties, None when the tensor is alone on its storage

    @property
    def name(self) -> str:
        """The tensor's own name within its module: "weight" of "net.0.weight"."""
        return self.key.rpartition(".")[2]

    @property
    def module(self) -> str:
        """The module path holding it: "net.0" of "net.0.weight" ("" for a tensor of the top module)."""
        return self.key.rpartition(".")[0]


@dataclass(frozen=True)
class OutlineNode:
    """A module of the file's tree: its own tensors and its child modules, in the file's order."""

    name: str  # its last key component ("" for the top)
    path: str  # its full module path ("net.0"; "" for the top)
    tensors: tuple[TensorInfo, ...] = ()
    children: tuple[OutlineNode, ...] = ()

    @property
    def count(self) -> int:
        """Elements in this module and below, every entry counted (tied ones at each place)."""
        return sum(t.count for t in self.tensors) + sum(c.count for c in self.children)

    def walk(self) -> Iterator[OutlineNode]:
        """This node and every node below it, parents first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def tensor_keys(self) -> Iterator[str]:
        """Every tensor key in this subtree, in the file's order."""
        for node in self.walk():
            for t in node.tensors:
                yield t.key


@dataclass(frozen=True)
class ParamsOutline:
    """A `.params` file read as data: every tensor, the module tree of the keys and the ties.

    tensors: in the file's order (state_dict order: registration order of the modules).
    ties:    groups of keys that are one tensor in the file (same storage, offset, shape and strides),
             each group in file order; only groups of two or more.
    """

    tensors: tuple[TensorInfo, ...]
    ties: tuple[tuple[str, ...], ...] = ()
    root: OutlineNode = field(default_factory=lambda: OutlineNode("", ""))

    @property
    def count(self) -> int:
        """Elements of every entry (a tied tensor at each of its keys, as the file lists it)."""
        return sum(t.count for t in self.tensors)

    @property
    def unique_count(self) -> int:
        """Elements stored: a tied tensor counted once."""
        return self.count - sum(self.by_key()[k].count for group in self.ties for k in group[1:])

    def by_key(self) -> dict[str, TensorInfo]:
        return {t.key: t for t in self.tensors}

    def tied_with(self, key: str) -> tuple[str, ...]:
        """The other keys holding the same tensor as `key` (empty when none)."""
        tie = self.by_key()[key].tie
        return () if tie is None else tuple(k for k in self.ties[tie] if k != key)

    def table(self) -> pd.DataFrame:
        """One row per key: key, shape, dtype, count, and the keys it is tied with."""
        rows = [
            {
                "key": t.key,
                "shape": _shape(t.shape),
                "dtype": t.dtype,
                "count": t.count,
                "tied with": ", ".join(self.tied_with(t.key)),
            }
            for t in self.tensors
        ]
        return pd.DataFrame(rows, columns=OUTLINE_COLUMNS)

    def tree_text(self) -> str:
        """The module tree as indented text, one module or tensor per line, with shapes and ties:

        net (2 modules, 4,490 elements)
          0  weight (256, 20) float32 · bias (256,) float32
        """
        lines: list[str] = []

        def visit(node: OutlineNode, depth: int) -> None:
            pad = "  " * depth
            if node.path:
                lines.append(f"{pad}{node.name}  ({node.count:,} elements)")
                pad += "  "
            for t in node.tensors:
                tied = self.tied_with(t.key)
                note = f"  = {', '.join(tied)}" if tied else ""
                lines.append(f"{pad}{t.name} {_shape(t.shape)} {t.dtype}{note}")
            for child in node.children:
                visit(child, depth + (1 if node.path else 0))

        visit(self.root, 0)
        return "\n".join(lines)


def outline_params(
    data: str | os.PathLike[str] | bytes | IO[bytes] | Mapping[str, torch.Tensor], *, max_mb: int | None = None
) -> ParamsOutline:
    """Outline a `.params` file (bytes, a path, a binary file, or a state_dict already in memory).

    Files are read by `read_params` with every check `load_params` makes (torch.load with weights_only, the
    size cap `max_mb` when given — the app's upload limit for a browser's upload —, only dense tensors), so a
    corrupt, malicious or oversized file is a ParamsError and nothing in it runs. Keys are split at dots into
    the module tree; tensors sharing one storage are ties.
    """
    state = dict(data) if isinstance(data, Mapping) else read_params(data, max_mb=max_mb)
    groups: dict[tuple[object, ...], list[str]] = {}
    for key, t in state.items():
        groups.setdefault(_storage_view(t, key), []).append(key)
    ties = tuple(tuple(keys) for keys in groups.values() if len(keys) > 1)
    tie_of = {k: i for i, keys in enumerate(ties) for k in keys}
    tensors = tuple(
        TensorInfo(
            key=k,
            shape=tuple(t.shape),
            dtype=str(t.dtype).removeprefix("torch."),
            count=t.numel(),
            tie=tie_of.get(k),
        )
        for k, t in state.items()
    )
    return ParamsOutline(tensors=tensors, ties=ties, root=_tree(tensors))


def _storage_view(t: torch.Tensor, key: str) -> tuple[object, ...]:
    """What makes two entries one tensor: the same storage seen through the same window. Empty tensors
    have no storage to share, so each is its own."""
    if t.numel() == 0 or t.device.type == "meta":
        return ("alone", key)
    storage = t.untyped_storage()
    return (storage.data_ptr(), storage.nbytes(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)


def _tree(tensors: tuple[TensorInfo, ...]) -> OutlineNode:
    """Nest the flat keys at their dots; modules and tensors keep the order of their first key in the file."""

    class Draft:
        def __init__(self) -> None:
            self.tensors: list[TensorInfo] = []
            self.children: dict[str, Draft] = {}

    top = Draft()
    for t in tensors:
        node = top
        if t.module:
            for part in t.module.split("."):
                node = node.children.setdefault(part, Draft())
        node.tensors.append(t)

    def freeze(draft: Draft, name: str, path: str) -> OutlineNode:
        children = tuple(freeze(d, n, f"{path}.{n}" if path else n) for n, d in draft.children.items())
        return OutlineNode(name=name, path=path, tensors=tuple(draft.tensors), children=children)

    return freeze(top, "", "")


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
