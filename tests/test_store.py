"""The design library: round trips, versions, restore, search, import/export, trash, owners, crashes and concurrent
saves from threads and processes. Every test runs on SQLite and on PostgreSQL (a real server: see conftest's
`postgres_server`); those about the SQLite file itself skip on PostgreSQL."""

from __future__ import annotations

import dataclasses
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from builder import Design, DesignError, example_names, load_example
from builder.design import Layer
from builder.store import NotAllowed, Store, StoreError, close_engines, default_path

from .conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "library-before-sqlalchemy.sqlite3"  # written by the SQLite-only store


@pytest.fixture(autouse=True, params=["sqlite", "postgresql"])
def library(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path | str:
    """Every test gets its own library (a file, or a fresh PostgreSQL database); nothing is written to the
    repository's data/ folder. Returns its location: the file's Path, or the database URL."""
    monkeypatch.delenv("BLOCKWORK_TEACHERS", raising=False)
    monkeypatch.delenv("BLOCKWORK_DB_POOL", raising=False)
    location = tmp_path / "library.sqlite3" if request.param == "sqlite" else request.getfixturevalue("postgres_db")
    monkeypatch.setenv("BLOCKWORK_DB", str(location))
    yield location
    close_engines()


@pytest.fixture
def sqlite_file(library: Path | str) -> Path:
    """For tests about the SQLite file itself (paths, WAL, the old file format)."""
    if not isinstance(library, Path):
        pytest.skip("about the SQLite file (paths, WAL journal, files written by older Blockwork)")
    return library


def sql(store: Store, statement: str, **params) -> list[tuple]:
    """Run SQL on the library's database directly (as someone editing it by hand would); returns the rows."""
    with store.engine.begin() as con:
        result = con.execute(sa.text(statement), params)
        return [tuple(r) for r in result] if result.returns_rows else []


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


def test_location_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_file: Path) -> None:
    library = sqlite_file
    assert default_path() == library
    assert Store().path == library
    monkeypatch.delenv("BLOCKWORK_DB")
    monkeypatch.setenv("BLOCKWORK_DATA_DIR", str(tmp_path / "classroom"))
    assert default_path() == tmp_path / "classroom" / "blockwork.sqlite3"
    Store().save("a", mlp(3))
    assert (tmp_path / "classroom" / "blockwork.sqlite3").exists()
    monkeypatch.delenv("BLOCKWORK_DATA_DIR")
    assert default_path() == ROOT / "data" / "blockwork.sqlite3"  # the git-ignored default (not created here)
    monkeypatch.setenv("BLOCKWORK_DB", "postgresql+psycopg://someone@db.example/blockwork")
    assert default_path() is None and Store().where == "postgresql+psycopg://someone@db.example/blockwork"
    monkeypatch.setenv("BLOCKWORK_DB", "postgresql+psycopg://someone:secret@db.example/blockwork")
    assert "secret" not in Store().where  # messages never show a password
    for bad, words in [
        ("mysql://x@y/z", "SQLite or PostgreSQL"),
        ("sqlite://", "in-memory"),
        ("not a url://x", "neither"),
        ("postgresql://u@h:port/db", "neither"),
    ]:
        monkeypatch.setenv("BLOCKWORK_DB", bad)
        with pytest.raises(StoreError, match=words):
            Store()


def test_a_database_that_cannot_be_reached_is_a_clear_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLOCKWORK_DB", "postgresql+psycopg://nobody@127.0.0.1:9/nowhere")  # port 9: nothing listens
    store = Store()  # constructing waits for no network
    for call in (store.entries, lambda: store.save("x", mlp(3))):
        with pytest.raises(StoreError, match=r"cannot open the design library at postgresql\+psycopg://nobody@127"):
            call()


def test_looking_creates_no_file_the_first_save_does(sqlite_file: Path) -> None:
    library = sqlite_file
    store = Store()
    assert store.entries() == [] and len(store) == 0 and "x" not in store
    with pytest.raises(StoreError, match="no design named"):
        store.load("x")
    assert not library.exists()
    store.save("x", mlp(3))
    assert library.exists() and Store().load("x") == dataclasses.replace(mlp(3), name="x")


def test_an_unusable_location_is_a_store_error(tmp_path: Path, sqlite_file: Path) -> None:
    (tmp_path / "a file").write_text("not a folder")
    store = Store(tmp_path / "a file" / "library.sqlite3")
    assert store.entries() == []
    with pytest.raises(StoreError, match="cannot open the design library"):
        store.save("x", mlp(3))


def test_wal_mode_and_a_file_that_is_not_a_library(tmp_path: Path, sqlite_file: Path) -> None:
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
    sql(store, "UPDATE versions SET json = :j WHERE number = 2", j='{"format": 1, "layers": "oops"}')
    with pytest.raises(DesignError, match="'net' .*no longer reads"):
        store.load("net")
    assert width(store.load("net", 1)) == 3  # the other versions still read
    assert [e.name for e in store.entries()] == ["net"]  # and the list still shows it
    assert store.restore("net", 1) == 3 and width(store.load("net")) == 3


def test_a_row_that_is_not_even_json_is_reported_not_raised() -> None:
    store = Store()
    store.save("net", mlp(3))
    sql(store, "UPDATE versions SET json = '{not json'")
    assert [(v.number, v.layers) for v in store.versions("net")] == [(1, 0)]
    with pytest.raises(DesignError, match="no longer reads"):
        store.load("net")


def test_a_library_locked_too_long_is_a_store_error_and_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store()
    store.save("net", mlp(3))
    monkeypatch.setattr("builder.store.BUSY_TIMEOUT_S", 0.2)
    with Store()._write():  # another session is in the middle of a write: it holds the library's write lock
        t0 = time.perf_counter()
        with pytest.raises(StoreError, match="could not be written .*nothing was changed"):
            store.save("net", mlp(4))
        assert 0.15 < time.perf_counter() - t0 < 10  # it waited for the lock, then gave up
        assert width(store.load("net")) == 3  # readers are not blocked
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
    assert [e.name for e in store.entries()] == ["C", "b"]  # the newest change first


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


def crash_at_the_head_update(store: Store, crash) -> None:
    """Call `crash()` when a save sends its last statement (the new version is written, the head not yet moved)."""

    @sa.event.listens_for(store.engine, "before_cursor_execute")
    def before(con, cursor, statement, *args) -> None:  # noqa: ANN001
        if statement.startswith("UPDATE designs SET") and "head=" in statement:
            crash()


def simulated_crash() -> None:
    raise RuntimeError("simulated crash in the middle of a save")


def test_an_exception_during_a_save_leaves_the_previous_version() -> None:
    store = Store()
    store.save("net", mlp(3))
    crash_at_the_head_update(store, simulated_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        store.save("net", mlp(4))
    with pytest.raises(RuntimeError):
        store.save("new", mlp(5))
    close_engines()  # a fresh engine: without the crashing hook
    store = Store()
    assert [v.number for v in store.versions("net")] == [1] and width(store.load("net")) == 3
    assert "new" not in store
    assert sql(store, "SELECT count(*) FROM versions") == [(1,)]  # no half-written version
    assert store.save("net", mlp(6)) == 2  # and the library carries on


CHILD = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    import sqlalchemy as sa
    from builder import Design
    from builder.store import Store

    def mlp(w):
        return Design.from_dict({{"format": 1, "input": {{"shape": [2, 4]}}, "layers": [
            {{"type": "Linear", "in_features": 4, "out_features": w}}]}})

    store = Store()  # BLOCKWORK_DB from the test: the same file or database
    mode = sys.argv[1]
    if mode == "die-mid-save":
        @sa.event.listens_for(store.engine, "before_cursor_execute")
        def before(con, cursor, statement, *args):
            if statement.startswith("UPDATE designs SET") and "head=" in statement:
                os._exit(9)  # the process dies inside the transaction, nothing cleans up
        store.save("net", mlp(99))
    elif mode == "loop":  # save until killed
        w = 1
        while True:
            store.save("net", mlp(w))
            print(w, flush=True)
            w += 1
    else:  # "saves P N GO": process P saves N versions of "shared" once the file GO exists
        p, n, go = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        store.entries()  # connect and check the schema before the start line
        while not os.path.exists(go):
            time.sleep(0.005)
        for i in range(n):
            print(store.save("shared", mlp(1000 * (p + 1) + i), user=None), flush=True)
            time.sleep(0.002)  # a breath between saves, as people have: the others get their turn
""")


def child(tmp_path: Path) -> Path:
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT)))
    return script


def integrity_ok(store: Store) -> None:
    if store.sqlite:  # (PostgreSQL has no such check: its WAL replay is what makes a crash safe)
        with sqlite3.connect(store.path) as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_process_killed_inside_a_save_leaves_the_previous_version(tmp_path: Path) -> None:
    store = Store()
    store.save("net", mlp(3))
    done = subprocess.run(
        [sys.executable, str(child(tmp_path)), "die-mid-save"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 9, done.stderr
    assert [v.number for v in store.versions("net")] == [1] and width(store.load("net")) == 3
    integrity_ok(store)
    assert sql(store, "SELECT count(*) FROM versions") == [(1,)]
    assert store.save("net", mlp(4)) == 2  # the dead process's lock went with it


def test_sigkill_at_a_random_moment_of_saving_loses_nothing_committed(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, str(child(tmp_path)), "loop"], stdout=subprocess.PIPE, text=True)
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
    integrity_ok(store)
    assert store.save("net", mlp(1)) == numbers[0] + 1


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
            mine = Store()  # as each browser session would: its own Store, the process's pool
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


def test_concurrent_saves_from_four_processes_lose_nothing(tmp_path: Path) -> None:
    """4 processes (as 4 app servers would) × 50 saves of one design, all released at once."""
    processes, saves = 4, 50
    Store().save("warm-up", mlp(1))  # the schema exists before the processes race
    go = tmp_path / "go"
    script = child(tmp_path)
    procs = [
        subprocess.Popen([sys.executable, str(script), "saves", str(p), str(saves), str(go)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for p in range(processes)
    ]  # fmt: skip
    time.sleep(0.5)
    go.touch()
    got = {}
    for p, proc in enumerate(procs):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        got[p] = [int(line) for line in out.split()]
    store = Store()
    total = processes * saves
    assert [v.number for v in store.versions("shared")] == list(range(total, 0, -1))  # no gaps, no duplicates
    assert sorted(n for ns in got.values() for n in ns) == list(range(1, total + 1))
    for p, ns in got.items():
        assert len(ns) == saves and ns == sorted(ns)
        for i, n in enumerate(ns):  # each version holds the design the process saved when it got that number
            assert width(store.load("shared", n)) == 1000 * (p + 1) + i
    interleaved = [p for p, ns in got.items() if ns != list(range(ns[0], ns[0] + saves))]
    assert interleaved, "the processes never took turns: the test proved nothing"


def test_each_process_holds_a_bounded_pool(monkeypatch: pytest.MonkeyPatch, library: Path | str) -> None:
    monkeypatch.setenv("BLOCKWORK_DB_POOL", "2")
    store = Store()
    assert store.engine.pool.size() == 2
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:  # PostgreSQL: how many connections the server sees on this database
        import psycopg

        url = sa.make_url(str(library)).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as con:
            while not stop.is_set():
                q = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> %s"
                seen.append(con.execute(q, (con.info.backend_pid,)).fetchone()[0])
                time.sleep(0.01)

    watcher = threading.Thread(target=watch) if not store.sqlite else None
    if watcher:
        watcher.start()

    def saves(t: int) -> None:
        for i in range(10):
            store.save(f"s{t}", mlp(i + 1))

    workers = [threading.Thread(target=saves, args=(t,)) for t in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    stop.set()
    if watcher:
        watcher.join()
        assert seen and max(seen) <= 2, seen
    assert store.engine.pool.checkedout() == 0 and len(store) == 8
    assert all(store.entry(f"s{t}").versions == 10 for t in range(8))
    monkeypatch.setenv("BLOCKWORK_DB_POOL", "lots")
    close_engines()
    with pytest.raises(StoreError, match="BLOCKWORK_DB_POOL must be a whole number"):
        Store().entries()


# -- nothing destroyed: the trash ----------------------------------------------------------------------------


def test_delete_moves_to_the_trash_and_undelete_brings_every_version_back() -> None:
    store = Store()
    store.save("a", mlp(3), note="first")
    store.save("a", mlp(4))
    store.save("b", mlp(5))
    store.delete(" A ")
    assert [e.name for e in store.entries()] == ["b"] and "a" not in store and len(store) == 1
    [gone] = store.trash()
    assert (gone.name, gone.versions, gone.deleted_by) == ("a", 2, None) and gone.deleted >= gone.updated
    for call, words in [
        (lambda: store.load("a"), "in the trash: undelete it first"),
        (lambda: store.versions("a"), "in the trash"),
        (lambda: store.save("a", mlp(9)), "'a' is in the trash: undelete it to save to it again"),
        (lambda: store.rename("b", "a"), "already a design named 'a' in the trash"),
        (lambda: store.fork("b", "A"), "already a design named 'a' in the trash"),
        (lambda: store.delete("a"), "in the trash"),
        (lambda: store.undelete("b"), "'b' is not in the trash"),
        (lambda: store.purge("b"), "'b' is not in the trash .delete it first"),  # never destroyed in one step
        (lambda: store.undelete("zzz"), "no design named 'zzz', not even in the trash"),
    ]:
        with pytest.raises(StoreError, match=words):
            call()
    assert store.undelete("a") == "a" and store.trash() == []
    assert [(v.number, v.note) for v in store.versions("a")] == [(2, ""), (1, "first")]
    assert [width(store.load("a", n)) for n in (1, 2)] == [3, 4]
    assert store.save("a", mlp(6)) == 3


def test_purge_removes_a_trashed_design_for_good_and_frees_its_name() -> None:
    store = Store()
    store.save("a", mlp(3))
    store.save("a", mlp(4))
    store.save("b", mlp(5))
    store.delete("a")
    store.purge("A")
    assert store.trash() == [] and [e.name for e in store.entries()] == ["b"]
    assert sql(store, "SELECT count(*) FROM versions") == [(1,)]  # its versions went too
    with pytest.raises(StoreError, match="no design named 'a'"):
        store.undelete("a")
    assert store.save("a", mlp(7)) == 1  # a new design under the old name


def test_rename_and_overwrite_keep_the_history() -> None:
    store = Store()
    store.save("draft", mlp(3), note="first try")
    store.rename("draft", "final")
    store.save("final", mlp(4), note="wider")
    assert [(v.number, v.note) for v in store.versions("final")] == [(2, "wider"), (1, "first try")]
    assert width(store.load("final", 1)) == 3


# -- who may change what ---------------------------------------------------------------------------------------

ANA, BEN, TEACHER = "ana@school.example", "ben@school.example", "teacher@school.example"


def test_a_design_belongs_to_who_saved_it_others_may_open_and_fork_it() -> None:
    store = Store()
    assert store.save("ana net", mlp(3), user="Ana@School.example") == 1  # e-mails are compared in lower case
    store.save("ana net", mlp(4), user=ANA)
    assert store.entry("ana net").owner == ANA
    assert [v.author for v in store.versions("ana net")] == [ANA, ANA]
    assert width(store.load("ana net")) == 4  # anyone may open it
    refused = [
        lambda u: store.save("ana net", mlp(9), user=u),
        lambda u: store.restore("ana net", 1, user=u),
        lambda u: store.rename("ana net", "mine now", user=u),
        lambda u: store.delete("ana net", user=u),
        lambda u: store.import_json(mlp(9).to_json(), name="ana net", user=u),
    ]
    for call in refused:
        with pytest.raises(NotAllowed, match="'ana net' belongs to ana@school.example: only its owner or a teacher"):
            call(BEN)
        with pytest.raises(NotAllowed, match="sign in as its owner or a teacher"):
            call(None)  # nobody signed in cannot change an owned design either
    assert store.may_change("ana net", BEN).endswith("fork it to have your own copy")
    assert store.may_change("ana net", ANA) is None
    assert [v.number for v in store.versions("ana net")] == [2, 1] and width(store.load("ana net")) == 4
    assert store.fork("ana net", "ben copy", user=BEN) == "ben copy"
    copy = store.entry("ben copy")
    assert copy.owner == BEN and copy.versions == 1
    assert store.versions("ben copy")[0].note == "forked from 'ana net' version 2"
    assert store.load("ben copy") == dataclasses.replace(store.load("ana net"), name="ben copy")
    assert store.save("ben copy", mlp(5), user=BEN) == 2
    with pytest.raises(NotAllowed):
        store.save("ben copy", mlp(5), user=ANA)  # the fork is Ben's
    assert store.fork("ana net", "old one", version=1, user=BEN) and width(store.load("old one")) == 3
    with pytest.raises(StoreError, match="already a design named"):
        store.fork("ana net", "ben copy", user=BEN)


def test_the_owner_and_a_teacher_may_trash_restore_and_purge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLOCKWORK_TEACHERS", f"other@school.example, {TEACHER.upper()}")
    store = Store()
    store.save("ana net", mlp(3), user=ANA)
    store.delete("ana net", user=ANA)
    assert store.trash()[0].deleted_by == ANA
    for call in (lambda u: store.undelete("ana net", user=u), lambda u: store.purge("ana net", user=u)):
        with pytest.raises(NotAllowed):
            call(BEN)
    assert store.undelete("ana net", user=TEACHER) == "ana net"  # a teacher brings it back
    assert store.save("ana net", mlp(4), user=TEACHER) == 2  # and may change it
    assert store.entry("ana net").owner == ANA  # it stays Ana's
    assert store.rename("ana net", "ana final", user=TEACHER) == "ana final"
    store.delete("ana final", user=TEACHER)
    assert store.trash()[0].deleted_by == TEACHER
    store.purge("ana final", user=TEACHER)
    assert store.trash() == [] and len(store) == 0
    monkeypatch.delenv("BLOCKWORK_TEACHERS")
    store.save("x", mlp(3), user=ANA)
    with pytest.raises(NotAllowed):
        store.delete("x", user=TEACHER)  # without the setting, no teachers


def test_with_login_every_change_needs_a_user_and_every_new_design_gets_an_owner() -> None:
    Store().save("from before login", mlp(3))  # ownerless: saved when the server had no login
    store = Store(login=True)
    for call in (
        lambda: store.save("new", mlp(3)),
        lambda: store.save("from before login", mlp(4)),
        lambda: store.fork("from before login", "copy"),
        lambda: store.delete("from before login"),
        lambda: store.import_json(mlp(3).to_json()),
    ):
        with pytest.raises(NotAllowed, match="sign in to change the library"):
            call()
    assert store.may_change("from before login", None).startswith("sign in")
    assert store.may_change("from before login", BEN) is None  # signed in: an ownerless design is everyone's
    store.save("new", mlp(3), user=BEN)
    assert store.entry("new").owner == BEN and len(store) == 2 and store.load("new").layers  # reading needs no user


def test_without_login_everything_stays_editable() -> None:
    store = Store()
    store.save("shared", mlp(3))  # user None: a server without login
    assert store.entry("shared").owner is None and store.may_change("shared", None) is None
    store.save("shared", mlp(4), user=BEN)  # a design without owner is everyone's, signed in or not
    store.rename("shared", "common", user=ANA)
    store.delete("common")
    store.undelete("common", user=BEN)
    assert store.entry("common").owner is None and store.entry("common").versions == 2
    for bad in ("", "  ", "x" * 400, 7):
        with pytest.raises(StoreError, match="acting user must be an e-mail"):
            store.save("common", mlp(3), user=bad)  # type: ignore[arg-type]


# -- the schema: created, migrated, refused when newer ------------------------------------------------------------


def test_a_library_file_from_before_keeps_working(tmp_path: Path, sqlite_file: Path) -> None:
    old = tmp_path / "old.sqlite3"
    shutil.copy(FIXTURE, old)
    with sqlite3.connect(old) as con:  # the fixture really is the old format: no owners, no schema table
        assert "owner" not in [c[1] for c in con.execute("PRAGMA table_info(designs)")]
    store = Store(old)
    assert [e.name for e in store.entries()] == ["100% lazy", "LeNet for the class", "tied net"]
    assert [(v.number, v.note, v.author) for v in store.versions("tied net")] == [
        (3, "restored from version 1", None),
        (2, "second", None),
        (1, "first", None),
    ]
    assert store.load("tied net", 1) == dataclasses.replace(load_example("tied"), name="tied net")
    assert store.load("tied net", 2) == dataclasses.replace(load_example("lenet"), name="tied net")
    assert store.load("100% lazy") == dataclasses.replace(load_example("lazy_mlp"), name="100% lazy")
    assert all(e.owner is None for e in store.entries())  # saved without login: everyone's
    assert store.save("TIED NET", load_example("tied"), user=ANA) == 4  # names still ignore case
    store.delete("LeNet for the class")
    assert [e.name for e in store.trash()] == ["LeNet for the class"]
    with pytest.raises(StoreError, match="already a design named"):
        store.fork("tied net", "100% LAZY")
    close_engines()
    assert Store(old).entry("tied net").versions == 4  # opened again: migrated once, nothing lost
    with sqlite3.connect(old) as con:
        assert con.execute("SELECT version FROM blockwork_schema").fetchall() == [(2,)]
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_library_from_a_newer_blockwork_is_refused() -> None:
    store = Store()
    store.save("x", mlp(3))
    sql(store, "UPDATE blockwork_schema SET version = 99")
    close_engines()
    with pytest.raises(StoreError, match="written by a newer Blockwork .schema 99"):
        Store().entries()
