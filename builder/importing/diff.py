"""A `.params` file against a design, layer by layer: which keys match, which are missing, unexpected or of
another shape — before anything is loaded, and without building real weights (the design's network is made on
the meta device, its lazy sizes inferred by the dry run)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..design import Design
from .outline import ParamsOutline

DIFF_COLUMNS = ["layer", "key", "status", "design", "file"]
_STATUSES = ("matched", "missing", "unexpected", "wrong shape")


@dataclass(frozen=True)
class KeyDiff:
    key: str
    status: str  # "matched" | "missing" (design only) | "unexpected" (file only) | "wrong shape"
    design: tuple[int, ...] | None
    file: tuple[int, ...] | None

    @property
    def layer(self) -> str:
        return self.key.rpartition(".")[0]


@dataclass(frozen=True)
class ParamsDiff:
    rows: tuple[KeyDiff, ...]

    @property
    def fits(self) -> bool:
        """Every key of each side in the other, with the same shape: the file loads strictly."""
        return all(r.status == "matched" for r in self.rows)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    def summary(self) -> str:
        """ "6 matched, 1 missing, 0 unexpected, 1 wrong shape"."""
        return ", ".join(f"{self.count(s)} {s}" for s in _STATUSES)

    def table(self, problems_only: bool = False) -> pd.DataFrame:
        """One row per key (the design's order, then the file's extra keys): layer, key, status, both shapes."""
        rows = [
            {
                "layer": r.layer or "(top)",
                "key": r.key,
                "status": r.status,
                "design": _shape(r.design),
                "file": _shape(r.file),
            }
            for r in self.rows
            if not problems_only or r.status != "matched"
        ]
        return pd.DataFrame(rows, columns=DIFF_COLUMNS)

    def layers(self) -> pd.DataFrame:
        """One row per layer: how many of its keys match, are missing, unexpected or of another shape."""
        order: dict[str, dict[str, int]] = {}
        for r in self.rows:
            counts = order.setdefault(r.layer or "(top)", dict.fromkeys(_STATUSES, 0))
            counts[r.status] += 1
        return pd.DataFrame(
            [{"layer": layer, **counts} for layer, counts in order.items()],
            columns=["layer", *_STATUSES],
        )


def diff_params(design: Design, outline: ParamsOutline) -> ParamsDiff:
    """Compare the keys and shapes of a design's network with a file's. Raises DesignError when the design
    cannot be dry-run (its shapes are then unknown)."""
    from ..build import meta_network

    net, _ = meta_network(design)  # meta: shapes only, lazy sizes inferred, no memory
    ours = {k: tuple(t.shape) for k, t in net.state_dict(keep_vars=True).items()}
    theirs = {t.key: t.shape for t in outline.tensors}
    rows = []
    for key, shape in ours.items():
        if key not in theirs:
            rows.append(KeyDiff(key, "missing", shape, None))
        elif theirs[key] != shape:
            rows.append(KeyDiff(key, "wrong shape", shape, theirs[key]))
        else:
            rows.append(KeyDiff(key, "matched", shape, shape))
    rows += [KeyDiff(k, "unexpected", None, s) for k, s in theirs.items() if k not in ours]
    return ParamsDiff(tuple(rows))


def _shape(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return ""
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
