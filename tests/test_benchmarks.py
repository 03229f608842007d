"""The benchmarks' quick mode runs in `make test`, so they cannot rot. Targets are judged by `make bench`
(ratios on a quiet machine), not here: a timing assertion in a unit test would only measure the noise."""

from __future__ import annotations

from collections.abc import Iterator

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


def test_a_case_that_stops_with_an_error_becomes_a_failed_row(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One broken case (a browser that timed out) must not lose the rows of the cases after it."""
    from benchmarks import run
    from benchmarks.cases import Row

    def broken(quick: bool) -> Iterator[Row]:
        raise TimeoutError("waiting for '— done'")
        yield  # a generator, as every case is

    def fine(quick: bool) -> Iterator[Row]:
        yield Row("fine", "a case after the broken one", "1 ms", "1 ms", 1.0, "≤ 1.1", True)

    written: list[list[Row]] = []
    monkeypatch.setattr(run, "CASES", {"broken": broken, "fine": fine})
    monkeypatch.setattr(run, "write", lambda rows, elapsed: written.append(rows))
    assert run.main([]) == 0
    rows = written[0]
    assert [(r.benchmark, r.met) for r in rows] == [("broken", False), ("fine", True)]
    assert "waiting for '— done'" in rows[0].ours
    assert "broken" in capsys.readouterr().out
