"""The design library: round trips, versions, restore, search, import/export, crashes and concurrent saves."""

from __future__ import annotations

import dataclasses
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from builder import Design, DesignError, example_names, load_example
from builder.design import Layer
from builder.store import Store, StoreError, default_path

from .conftest import ROOT


@pytest.fixture(autouse=True)
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own library file; nothing is written to the repository's data/ folder."""
    path = tmp_path / "library.sqlite3"
    monkeypatch.setenv("BLOCKWORK_DB", str(path))
    return path


def mlp(width: int) -> Design:
    """A small design told apart by its hidden width."""
    return Design.from_dict(
        {
            "format": 1,
            "name": "mlp",
            "input": {"shape": [2, 4]},
            "layers": [
                {"type": "Linear", "in_features": 4, "out_features": width},
                {"type": "ReLU"},
                {"type": "Linear", "in_features": width, "out_features": 1},
            ],
        }
    )


def width(design: Design) -> int:
    return design.layers[0].args["out_features"]


# -- where it lives --------------------------------------------------------------------------------------------


def test_location_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, library: Path) -> None:
    assert default_path() == library
    assert Store().path == library
    monkeypatch.delenv("BLOCKWORK_DB")
    monkeypatch.setenv("BLOCKWORK_DATA_DIR", str(tmp_path / "classroom"))
    assert default_path() == tmp_path / "classroom" / "blockwork.sqlite3"
    Store().save("a", mlp(3))
    assert (tmp_path / "classroom" / "blockwork.sqlite3").exists()
    monkeypatch.delenv("BLOCKWORK_DATA_DIR")
    assert default_path() == ROOT / "data" / "blockwork.sqlite3"  # the git-ignored default (not created here)


def test_looking_creates_no_file_the_first_save_does(library: Path) -> None:
    store = Store()
    assert store.entries() == [] and len(store) == 0 and "x" not in store
    with pytest.raises(StoreError, match="no design named"):
        store.load("x")
    assert not library.exists()
    store.save("x", mlp(3))
    assert library.exists() and Store().load("x") == dataclasses.replace(mlp(3), name="x")


def test_an_unusable_location_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "a file").write_text("not a folder")
    store = Store(tmp_path / "a file" / "library.sqlite3")
    assert store.entries() == []
    with pytest.raises(StoreError, match="cannot open the design library"):
        store.save("x", mlp(3))


def test_wal_mode_and_a_file_that_is_not_a_library(tmp_path: Path) -> None:
    store = Store()
    store.save("x", mlp(3))
    with sqlite3.connect(store.path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a Blockwork design library"):
        Store(junk)


# -- round trips -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", example_names())
def test_every_example_round_trips(name: str) -> None:
    store = Store()
    design = load_example(name)
    assert store.save(f"my {name}", design) == 1
    back = store.load(f"my {name}")
    assert back == dataclasses.replace(design, name=f"my {name}")  # stored under its library name
    assert Design.from_json(store.export_json(f"my {name}")) == back


def test_names_are_trimmed_and_case_insensitive() -> None:
    store = Store()
    store.save("  Tied   net ", load_example("tied"))
    assert "tied net" in store and "TIED NET" in store
    assert store.save("TIED NET", load_example("tied")) == 2  # the same design, a new version
    assert [e.name for e in store.entries()] == ["Tied net"]
    assert store.load("tied net").name == "Tied net"


@pytest.mark.parametrize("bad", ["", "   ", "x" * 101, "tab\x00name", 3])
def test_bad_names_are_refused(bad: object) -> None:
    with pytest.raises(StoreError):
        Store().save(bad, mlp(3))  # type: ignore[arg-type]
    assert len(Store()) == 0


def test_an_invalid_design_is_not_stored() -> None:
    store = Store()
    store.save("net", mlp(3))
    broken = Design(layers=(Layer("NoSuchLayer"),), input_shape=(2, 4))
    with pytest.raises(DesignError, match="unknown layer type"):
        store.save("net", broken)
    assert [v.number for v in store.versions("net")] == [1]
    with pytest.raises(TypeError):
        store.save("net", {"format": 1})  # type: ignore[arg-type]


def test_a_row_edited_by_hand_is_checked_when_read_back() -> None:
    store = Store()
    store.save("net", mlp(3))
    store.save("net", mlp(4))
    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE versions SET json = ? WHERE number = 2", ('{"format": 1, "layers": "oops"}',))
    with pytest.raises(DesignError, match="'net' .*no longer reads"):
        store.load("net")
    assert width(store.load("net", 1)) == 3  # the other versions still read
    assert [e.name for e in store.entries()] == ["net"]  # and the list still shows it
    assert store.restore("net", 1) == 3 and width(store.load("net")) == 3


def test_a_row_that_is_not_even_json_is_reported_not_raised() -> None:
    store = Store()
    store.save("net", mlp(3))
    with sqlite3.connect(store.path) as con:
        con.execute("UPDATE versions SET json = '{not json'")
    assert [(v.number, v.layers) for v in store.versions("net")] == [(1, 0)]
    with pytest.raises(DesignError, match="no longer reads"):
        store.load("net")


def test_a_library_locked_too_long_is_a_store_error_and_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store()
    store.save("net", mlp(3))
    monkeypatch.setattr("builder.store.BUSY_TIMEOUT_S", 0.2)
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another session holds the write lock
    try:
        with pytest.raises(StoreError, match="could not be written .*nothing was changed"):
            store.save("net", mlp(4))
        assert width(store.load("net")) == 3  # readers are not blocked (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.save("net", mlp(4)) == 2


# -- versions ----------------------------------------------------------------------------------------------


def test_every_save_keeps_a_version_and_an_old_one_can_be_restored() -> None:
    store = Store()
    for w in (3, 4, 5):
        store.save("net", mlp(w), note=f"width {w}")
    assert [(v.number, v.note, v.layers) for v in store.versions("net")] == [
        (3, "width 5", 3),
        (2, "width 4", 3),
        (1, "width 3", 3),
    ]
    assert width(store.load("net")) == 5
    assert [width(store.load("net", n)) for n in (1, 2, 3)] == [3, 4, 5]
    assert store.restore("net", 1) == 4
    assert width(store.load("net")) == 3
    assert store.versions("net")[0].note == "restored from version 1"
    assert [width(store.load("net", n)) for n in (1, 2, 3, 4)] == [3, 4, 5, 3]  # nothing lost
    assert store.entries()[0].versions == 4


def test_unknown_names_and_versions_are_clear_errors() -> None:
    store = Store()
    store.save("net", mlp(3))
    with pytest.raises(StoreError, match="no design named 'other'"):
        store.load("other")
    with pytest.raises(StoreError, match="no version 7"):
        store.load("net", 7)
    with pytest.raises(StoreError, match="no version 0"):
        store.restore("net", 0)
    with pytest.raises(StoreError, match="whole number"):
        store.load("net", "1")  # type: ignore[arg-type]
    for op in (lambda: store.delete("other"), lambda: store.rename("other", "x"), lambda: store.versions("x")):
        with pytest.raises(StoreError):
            op()


# -- rename, delete, list, search ------------------------------------------------------------------------------


def test_rename_keeps_the_versions_and_refuses_a_taken_name() -> None:
    store = Store()
    store.save("a", mlp(3))
    store.save("a", mlp(4))
    store.save("b", mlp(5))
    assert store.rename("a", "  c ") == "c"
    assert "a" not in store and [v.number for v in store.versions("c")] == [2, 1]
    assert store.load("c").name == "c" and width(store.load("c", 1)) == 3
    with pytest.raises(StoreError, match="already a design named 'b'"):
        store.rename("c", "B")
    assert store.rename("c", "C") == "C"  # only its case changes
    store.delete("C")
    assert [e.name for e in store.entries()] == ["b"]
    with sqlite3.connect(store.path) as con:
        assert con.execute("SELECT count(*) FROM versions").fetchone()[0] == 1  # its versions went too


def test_list_is_newest_first_and_search_looks_at_name_description_and_layers() -> None:
    store = Store()
    store.save("lenet for the class", load_example("lenet"))
    store.save("tied", load_example("tied"))
    store.save("100% lazy", load_example("lazy_mlp"))
    assert [e.name for e in store.entries()] == ["100% lazy", "tied", "lenet for the class"]
    assert [e.name for e in store.search("LENET")] == ["lenet for the class"]
    assert [e.name for e in store.search("avgpool2d")] == ["lenet for the class"]  # a layer type
    assert [e.name for e in store.search("gradient is the sum")] == ["tied"]  # the description
    assert [e.name for e in store.search("%")] == ["100% lazy"]  # wildcards are plain characters
    assert store.search("nothing like it") == []
    assert len(store.search("  ")) == 3


# -- import and export ---------------------------------------------------------------------------------------


def test_import_and_export_json() -> None:
    store = Store()
    text = (ROOT / "examples" / "tied.json").read_text()
    assert store.import_json(text) == ("tied", 1)  # the design's own name
    assert store.import_json(text.encode(), name="class copy") == ("class copy", 1)
    assert store.import_json(text) == ("tied", 2)  # never overwrites: a new version
    assert store.versions("tied")[0].note == "imported"
    exported = store.export_json("tied", 1)
    assert Design.from_json(exported) == load_example("tied")
    for bad in ('{"format": 1', '{"format": 2, "layers": []}', b"\xff\xfe", "[]"):
        with pytest.raises(DesignError):
            store.import_json(bad)
    assert len(store) == 2


# -- crashes -------------------------------------------------------------------------------------------------


class CrashingConnection:
    """A connection that fails at the last statement of a save: the new version is written, the head not yet."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def execute(self, sql: str, *args):
        if sql.startswith("UPDATE designs SET head"):
            raise RuntimeError("simulated crash in the middle of a save")
        return self.con.execute(sql, *args)

    @property
    def in_transaction(self) -> bool:
        return self.con.in_transaction

    def close(self) -> None:
        self.con.close()


def test_an_exception_during_a_save_leaves_the_previous_version(monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store()
    store.save("net", mlp(3))
    real = Store._connect
    monkeypatch.setattr(Store, "_connect", lambda self: CrashingConnection(real(self)))
    with pytest.raises(RuntimeError, match="simulated crash"):
        store.save("net", mlp(4))
    with pytest.raises(RuntimeError):
        store.save("new", mlp(5))
    monkeypatch.setattr(Store, "_connect", real)
    assert [v.number for v in store.versions("net")] == [1] and width(store.load("net")) == 3
    assert "new" not in store
    with sqlite3.connect(store.path) as con:
        assert con.execute("SELECT count(*) FROM versions").fetchone()[0] == 1  # no half-written version
    assert store.save("net", mlp(6)) == 2  # and the library carries on


CHILD = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {root!r})
    from builder import Design
    from builder.store import Store

    def mlp(w):
        return Design.from_dict({{"format": 1, "input": {{"shape": [2, 4]}}, "layers": [
            {{"type": "Linear", "in_features": 4, "out_features": w}}]}})

    store = Store()
    mode = sys.argv[1]
    if mode == "die-mid-save":
        real = Store._connect
        class Dying:
            def __init__(self, con): self.con = con
            def execute(self, sql, *args):
                if sql.startswith("UPDATE designs SET head"):
                    os._exit(9)  # the process dies inside the transaction, nothing cleans up
                return self.con.execute(sql, *args)
            def close(self): self.con.close()
        Store._connect = lambda self: Dying(real(self))
        store.save("net", mlp(99))
    else:  # save until killed
        w = 1
        while True:
            store.save("net", mlp(w))
            print(w, flush=True)
            w += 1
""")


def test_a_process_killed_inside_a_save_leaves_the_previous_version(tmp_path: Path) -> None:
    store = Store()
    store.save("net", mlp(3))
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT)))
    done = subprocess.run([sys.executable, str(script), "die-mid-save"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    assert [v.number for v in store.versions("net")] == [1] and width(store.load("net")) == 3
    with sqlite3.connect(store.path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT count(*) FROM versions").fetchone()[0] == 1
    assert store.save("net", mlp(4)) == 2


def test_sigkill_at_a_random_moment_of_saving_loses_nothing_committed(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT)))
    proc = subprocess.Popen([sys.executable, str(script), "loop"], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(15):  # let it commit some saves, then kill it wherever it is
            assert proc.stdout.readline(), "the child stopped saving"
        time.sleep(0.013)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    store = Store()
    numbers = [v.number for v in store.versions("net")]
    assert numbers == list(range(len(numbers), 0, -1)) and len(numbers) >= 15  # consecutive, all committed ones
    assert width(store.load("net")) == numbers[0]  # the newest committed version reads
    with sqlite3.connect(store.path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- concurrency ---------------------------------------------------------------------------------------------


def test_concurrent_saves_from_threads_lose_nothing() -> None:
    store = Store()
    threads, saves = 8, 20
    errors: list[BaseException] = []
    got: dict[int, list[int]] = {}
    start = threading.Barrier(threads)

    def session(t: int) -> None:
        try:
            start.wait()
            mine = Store()  # as each browser session would: its own Store, a connection per call
            got[t] = [mine.save("shared", mlp(1000 + t * saves + i)) for i in range(saves)]
            for i in range(saves):
                mine.save(f"session {t}", mlp(t * saves + i + 1))
            mine.entries("session")
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    workers = [threading.Thread(target=session, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    assert not errors, errors
    total = threads * saves
    numbers = [v.number for v in store.versions("shared")]
    assert numbers == list(range(total, 0, -1))  # consecutive, no gaps, no duplicates
    assert sorted(n for ns in got.values() for n in ns) == list(range(1, total + 1))
    for t, ns in got.items():
        assert ns == sorted(ns)  # each session's own saves in order
        for i, n in enumerate(ns):  # the version a save returned holds that save's design
            assert width(store.load("shared", n)) == 1000 + t * saves + i
    for t in range(threads):
        assert [v.number for v in store.versions(f"session {t}")][0] == saves
        assert width(store.load(f"session {t}")) == t * saves + saves
    assert len(store) == threads + 1
