"""Side-by-side timing: the two contenders alternate, so machine noise hits both alike; medians, not means."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Comparison:
    ours: float  # median seconds
    theirs: float
    repeats: int

    @property
    def ratio(self) -> float:
        return self.ours / self.theirs


def compare(ours: Callable[[], object], theirs: Callable[[], object], repeats: int, warmup: int = 1) -> Comparison:
    """Run `ours` and `theirs` alternately `repeats` times (after `warmup` rounds); compare medians."""
    for _ in range(warmup):
        ours()
        theirs()
    a, b = [], []
    for i in range(repeats):
        # alternate which goes first, so neither always benefits from a warm cache
        order = ((ours, a), (theirs, b)) if i % 2 == 0 else ((theirs, b), (ours, a))
        for fn, times in order:
            gc.collect()
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return Comparison(statistics.median(a), statistics.median(b), repeats)
