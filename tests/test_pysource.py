"""Source and parsing across a server's threads (issue 13, defect 5: the classroom hang).

Eight students pressing Train at once: one of them got "SystemError: AST constructor recursion depth mismatch"
instead of a run — the Train page makes the training bundle on every run of the page, and the bundle copies
builder.data's classes with inspect.getsource, which parses their module. CPython 3.11 keeps one AST depth
counter for all threads (gh-106905): a garbage collection inside one parse that lets another thread run, and a
parse there, breaks it. Here the garbage has finalizers that let other threads run, as a server's may.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import builder
from builder import TrainConfig, load_example, training_bundle
from builder.data import make_dataset
from builder.pysource import parse, source_of

THREADS = 4


class Cycle:
    """Cyclic garbage (only the cycle collector frees it) whose finalizer lets another thread run."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        time.sleep(0)


def at_once(work: Callable[[], object], times: int) -> list[BaseException]:
    """`work` `times` times in each of THREADS threads started together, making garbage between calls; the
    exceptions raised."""
    errors: list[BaseException] = []
    go = threading.Barrier(THREADS)

    def thread() -> None:
        go.wait()
        for _ in range(times):
            for _ in range(200):
                Cycle()
            try:
                work()
            except Exception as e:  # noqa: BLE001 - collected and asserted on below
                errors.append(e)

    threads = [threading.Thread(target=thread) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def files(zipped: bytes) -> dict[str, bytes]:
    """A zip's files by name (its bytes hold the time it was made)."""
    with zipfile.ZipFile(io.BytesIO(zipped)) as z:
        return {name: z.read(name) for name in z.namelist()}


def test_training_bundles_made_at_once_by_several_sessions_all_succeed() -> None:
    design, data = load_example("tied_moons"), make_dataset("moons", n=200, noise=0.15, seed=0)
    config = TrainConfig()
    alone = training_bundle(design, data, config)
    builder.pysource._SOURCES.clear()  # as on a fresh server: the first runs of the Train page come together
    errors = at_once(lambda: training_bundle(design, data, config), times=20)
    assert errors == []
    assert files(training_bundle(design, data, config)) == files(alone)  # the same files, whoever made it first


def test_parsing_while_other_threads_read_sources_never_fails() -> None:
    text = Path(builder.training.__file__).read_text(encoding="utf-8")

    def work() -> None:
        parse(text)
        builder.pysource._SOURCES.clear()
        source_of(builder.data.Dataset)

    assert at_once(work, times=15) == []


def test_source_of_is_inspect_getsource() -> None:
    import inspect

    assert source_of(builder.data.Dataset) == inspect.getsource(builder.data.Dataset)
    assert source_of(builder.data.Dataset) is source_of(builder.data.Dataset)  # computed once
