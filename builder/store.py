"""The design library: named designs in an embedded SQLite database, every save kept as a version.

    from builder.store import Store
    store = Store()                         # $BLOCKWORK_DB, else $BLOCKWORK_DATA_DIR/blockwork.sqlite3,
                                            # else <repo>/data/blockwork.sqlite3
    store.save("my tied net", design)       # → 1, then 2, 3, ... on each later save
    store.load("my tied net")               # the newest version (a Design, validated again)
    store.restore("my tied net", 1)         # version 1's design saved as a new version: nothing is lost

Why it is safe to share one file between many browser sessions (threads) and processes:
- every write is one `BEGIN IMMEDIATE` transaction: the write lock is taken before anything is read, so two
  saves of the same name cannot both read "head is 3" and both write version 4; a crash (an exception, a killed
  process) before COMMIT leaves the database exactly as it was, previous versions intact;
- WAL journal: readers never block the writer and see the last committed state; a busy timeout makes a
  writer wait for the lock instead of failing;
- one connection per call: no sqlite3 connection object is shared between threads.
Designs are validated (Design.from_json) before they are stored and again when read back, so a file edited
by hand, or written by an older Blockwork with looser checks, cannot reach a page unchecked.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .design import Design
from .errors import DesignError

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "data"  # git-ignored
FILE_NAME = "blockwork.sqlite3"
MAX_NAME = 100  # characters of a library name (a design's own name has the same cap)
BUSY_TIMEOUT_S = 30.0  # how long a write waits for another session's write to finish

_SCHEMA = """
CREATE TABLE IF NOT EXISTS designs (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    created     REAL NOT NULL,
    updated     REAL NOT NULL,
    head        INTEGER NOT NULL               -- the newest version's number
);
CREATE TABLE IF NOT EXISTS versions (
    design_id INTEGER NOT NULL REFERENCES designs(id) ON DELETE CASCADE,
    number    INTEGER NOT NULL,                -- 1, 2, 3, ... per design, no gaps
    saved     REAL NOT NULL,
    note      TEXT NOT NULL DEFAULT '',
    json      TEXT NOT NULL,
    PRIMARY KEY (design_id, number)
);
"""
_ready: set[str] = set()  # database files whose schema this process has created
_ready_lock = threading.Lock()


class StoreError(ValueError):
    """A library request that cannot be done: an unknown name, a name taken, a version that does not exist."""


@dataclass(frozen=True)
class Entry:
    """One saved design as the library lists it."""

    name: str
    description: str
    versions: int  # the newest version's number (versions are 1..versions)
    created: float  # seconds since the epoch
    updated: float


@dataclass(frozen=True)
class Version:
    """One saved version of a design."""

    number: int
    saved: float  # seconds since the epoch
    note: str  # e.g. "restored from version 2", "imported from tied.json"
    layers: int  # entries in its `layers` (a quick way to tell versions apart)


def default_path() -> Path:
    """Where the library lives: $BLOCKWORK_DB (a file), else $BLOCKWORK_DATA_DIR/blockwork.sqlite3, else the
    repository's data/ folder. Read on every call, so a test or a deployment can point it elsewhere."""
    db = os.environ.get("BLOCKWORK_DB", "").strip()
    if db:
        return Path(db).expanduser()
    folder = os.environ.get("BLOCKWORK_DATA_DIR", "").strip()
    return (Path(folder).expanduser() if folder else DEFAULT_DIR) / FILE_NAME


def check_name(name: object) -> str:
    """A library name, trimmed: 1 to 100 printable characters."""
    if not isinstance(name, str):
        raise StoreError(f"a design's name must be text, got {type(name).__name__}")
    name = " ".join(name.split())
    if not name:
        raise StoreError("give the design a name")
    if len(name) > MAX_NAME:
        raise StoreError(f"a design's name is at most {MAX_NAME} characters, got {len(name)}")
    if not name.isprintable():
        raise StoreError("a design's name cannot hold control characters")
    return name


class Store:
    """A design library in one SQLite file. Cheap to create: pages make one per request."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        if self.path.exists():
            self._ensure()  # an existing file is checked now; a missing one is created by the first save

    def _ensure(self) -> None:
        key = str(self.path.resolve())
        with _ready_lock:
            if key not in _ready or not self.path.exists():
                self._create()
                _ready.add(key)

    # -- connections ---------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are ours (BEGIN IMMEDIATE ... COMMIT), not the module's guesses
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA synchronous = FULL")  # a committed save survives a power cut too
        return con

    def _create(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = self._connect()
        except (OSError, sqlite3.OperationalError) as e:
            raise StoreError(f"cannot open the design library at {self.path}: {e}") from None
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a Blockwork design library ({e})") from None
        try:
            for _ in range(100):  # switching to WAL needs the file to itself for a moment
                try:
                    con.execute("PRAGMA journal_mode = WAL")  # kept in the file: every later connection uses it
                    break
                except sqlite3.OperationalError as e:
                    if "locked" not in str(e):
                        raise
                    time.sleep(0.05)
            con.executescript(_SCHEMA)  # idempotent (IF NOT EXISTS)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a Blockwork design library ({e})") from None
        finally:
            con.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        try:
            if self.path.exists():
                self._ensure()
                con = self._connect()
            else:  # nothing saved yet: an empty library, without creating a file just to look
                con = sqlite3.connect(":memory:")
                con.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the design library at {self.path}: {e}") from None
        try:
            yield con
        except sqlite3.Error as e:
            raise StoreError(f"the design library at {self.path} could not be read: {e}") from None
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed when the block ends, rolled back on any exception (or a crash)."""
        self._ensure()
        try:
            con = self._connect()
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the design library at {self.path}: {e}") from None
        try:
            con.execute("BEGIN IMMEDIATE")  # take the write lock now, before reading what to write
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:  # busy past the timeout, disk full, read-only file, ...
            raise StoreError(
                f"the design library at {self.path} could not be written ({e}); nothing was changed"
            ) from None
        finally:
            con.close()

    # -- writing -------------------------------------------------------------------------------------------

    def save(self, name: str, design: Design, note: str = "") -> int:
        """Save `design` as the newest version of `name` (created if new); returns the version's number.

        The design is checked first (a DesignError leaves the library unchanged) and stored under its library
        name, so loading it gives a design called `name`.
        """
        name = check_name(name)
        text = _validated(design, name)
        with self._write() as con:
            return self._append(con, name, text, design.description, note[:200])

    def _append(self, con: sqlite3.Connection, name: str, text: str, description: str, note: str) -> int:
        now = time.time()
        row = con.execute("SELECT id, head FROM designs WHERE name = ?", (name,)).fetchone()
        if row is None:
            cur = con.execute(
                "INSERT INTO designs (name, description, created, updated, head) VALUES (?, ?, ?, ?, 0)",
                (name, description, now, now),
            )
            design_id, head = cur.lastrowid, 0
        else:
            design_id, head = row
        number = head + 1
        con.execute(
            "INSERT INTO versions (design_id, number, saved, note, json) VALUES (?, ?, ?, ?, ?)",
            (design_id, number, now, note, text),
        )
        con.execute(
            "UPDATE designs SET head = ?, updated = ?, description = ? WHERE id = ?",
            (number, now, description, design_id),
        )
        return number

    def restore(self, name: str, version: int) -> int:
        """Save version `version` of `name` again as its newest version (later versions are kept)."""
        with self._write() as con:
            design_id, real = self._id(con, name)
            text = self._text(con, design_id, real, version)
            design = _parse(text, real, version)
            return self._append(
                con, real, _validated(design, real), design.description, f"restored from version {version}"
            )

    def rename(self, old: str, new: str) -> str:
        """Give a saved design a new name (its versions go with it); returns the new name."""
        new = check_name(new)
        with self._write() as con:
            design_id, real = self._id(con, old)
            clash = con.execute("SELECT name FROM designs WHERE name = ? AND id != ?", (new, design_id)).fetchone()
            if clash is not None:
                raise StoreError(f"there is already a design named {clash[0]!r}; choose another name")
            con.execute("UPDATE designs SET name = ?, updated = ? WHERE id = ?", (new, time.time(), design_id))
        return new

    def delete(self, name: str) -> None:
        """Delete a saved design and all of its versions."""
        with self._write() as con:
            design_id, _ = self._id(con, name)
            con.execute("DELETE FROM versions WHERE design_id = ?", (design_id,))
            con.execute("DELETE FROM designs WHERE id = ?", (design_id,))

    def import_json(self, text: str | bytes, name: str | None = None, note: str = "imported") -> tuple[str, int]:
        """Save design JSON (a file a user uploads) under `name`, else the design's own name.

        Returns (name, version): an existing name gets a new version, so an import never overwrites.
        DesignError (nothing saved) when the JSON is not a valid design.
        """
        design = Design.from_json(text)
        name = check_name(name if name is not None and name.strip() else design.name)
        return name, self.save(name, design, note)

    # -- reading -------------------------------------------------------------------------------------------

    def load(self, name: str, version: int | None = None) -> Design:
        """A saved design (the newest version, or `version`), validated again; named by its library name."""
        with self._read() as con:
            design_id, real = self._id(con, name)
            text = self._text(con, design_id, real, version)
        return dataclasses.replace(_parse(text, real, version), name=real)

    def export_json(self, name: str, version: int | None = None) -> str:
        """The design JSON of a saved design: the same format as the files in examples/."""
        return self.load(name, version).to_json()

    def entries(self, query: str = "") -> list[Entry]:
        """Saved designs, the most recently saved first; `query` keeps those whose name, description or
        layers contain it (case-insensitive; e.g. "tied", "BatchNorm")."""
        sql = (
            "SELECT d.name, d.description, d.head, d.created, d.updated FROM designs d "
            "JOIN versions v ON v.design_id = d.id AND v.number = d.head"
        )
        args: tuple[str, ...] = ()
        query = query.strip()
        if query:
            like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            sql += " WHERE d.name LIKE ? ESCAPE '\\' OR d.description LIKE ? ESCAPE '\\' OR v.json LIKE ? ESCAPE '\\'"
            args = (like, like, like)
        sql += " ORDER BY d.updated DESC, d.name"
        with self._read() as con:
            return [Entry(*row) for row in con.execute(sql, args)]

    search = entries

    def versions(self, name: str) -> list[Version]:
        """Every version of a saved design, the newest first."""
        with self._read() as con:
            design_id, _ = self._id(con, name)
            rows = con.execute(
                "SELECT number, saved, note, CASE WHEN json_valid(json) THEN "
                "json_array_length(json, '$.layers') END FROM versions "
                "WHERE design_id = ? ORDER BY number DESC",
                (design_id,),
            ).fetchall()
        return [Version(n, saved, note, layers or 0) for n, saved, note, layers in rows]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        with self._read() as con:
            return con.execute("SELECT 1 FROM designs WHERE name = ?", (" ".join(name.split()),)).fetchone() is not None

    def __len__(self) -> int:
        with self._read() as con:
            count: int = con.execute("SELECT count(*) FROM designs").fetchone()[0]
            return count

    # -- helpers -------------------------------------------------------------------------------------------

    def _id(self, con: sqlite3.Connection, name: str) -> tuple[int, str]:
        row = con.execute(
            "SELECT id, name FROM designs WHERE name = ?", (" ".join(name.split()) if isinstance(name, str) else name,)
        ).fetchone()
        if row is None:
            raise StoreError(f"the library has no design named {name!r}")
        return int(row[0]), str(row[1])

    def _text(self, con: sqlite3.Connection, design_id: int, name: str, version: int | None) -> str:
        if version is None:
            row = con.execute(
                "SELECT v.json FROM versions v JOIN designs d ON d.id = v.design_id "
                "WHERE d.id = ? AND v.number = d.head",
                (design_id,),
            ).fetchone()
        else:
            if isinstance(version, bool) or not isinstance(version, int):
                raise StoreError(f"a version is a whole number, got {version!r}")
            row = con.execute(
                "SELECT json FROM versions WHERE design_id = ? AND number = ?", (design_id, version)
            ).fetchone()
        if row is None:
            raise StoreError(f"{name!r} has no version {version}")
        return str(row[0])


def _validated(design: Design, name: str) -> str:
    """The JSON stored for `design` saved as `name`, read back once to be sure it is a valid design."""
    if not isinstance(design, Design):
        raise TypeError(f"save expects a Design, got {type(design).__name__}")
    text = dataclasses.replace(design, name=name).to_json(indent=None)
    Design.from_json(text)  # DesignError: nothing is written
    return text


def _parse(text: str, name: str, version: int | None) -> Design:
    try:
        return Design.from_json(text)
    except DesignError as e:
        which = f"version {version}" if version is not None else "its newest version"
        raise DesignError(f"the saved design {name!r} ({which}) no longer reads: {e}", e.path) from None
