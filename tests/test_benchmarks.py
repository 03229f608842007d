"""The benchmarks' quick mode runs in `make test`, so they cannot rot. Targets are judged by `make bench`
(ratios on a quiet machine), not here: a timing assertion in a unit test would only measure the noise."""

from __future__ import annotations

import pytest

from benchmarks.cases import CASES


@pytest.mark.parametrize("name", list(CASES))
def test_benchmark_runs_in_quick_mode(name: str) -> None:
    rows = list(CASES[name](True))
    assert rows
    for row in rows:
        if row.theirs == "not installed":  # peer tools are only in benchmarks/requirements.txt
            continue
        assert row.ours
        assert row.ratio is None or row.ratio > 0
