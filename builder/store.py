"""The design library: named designs in a database, every save kept as a version, nothing destroyed but by purge.

    from builder.store import Store
    store = Store()                          # $BLOCKWORK_DB (a file path or a database URL), else
                                             # $BLOCKWORK_DATA_DIR/blockwork.sqlite3, else <repo>/data/blockwork.sqlite3
    store.save("my tied net", design, user="ana@school.org")   # → 1, then 2, 3, ... on each later save
    store.load("my tied net")                # the newest version (a Design, validated again)
    store.restore("my tied net", 1)          # version 1's design saved as a new version: nothing is lost
    store.delete("my tied net")              # into the trash with all its versions; store.trash() lists it
    store.undelete("my tied net")            # back, every version with it
    store.purge("my tied net")               # only this removes a design (and only one in the trash)

Two databases, one code (SQLAlchemy Core): SQLite by default (one file, no server: `make run`), PostgreSQL when
BLOCKWORK_DB is a URL such as `postgresql+psycopg://blockwork@127.0.0.1/blockwork` (a classroom: several app
processes share it). The schema is created, and an older one migrated, by the first Store that opens the database.

Why concurrent saves from threads and processes lose nothing:
- every write is one transaction that takes the library's write lock before it reads anything (SQLite:
  `BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped advisory lock), so two saves of one name cannot both read
  "head is 3" and both write version 4. A write is short (one design's JSON), so one lock for the whole library
  costs little even for a class. A crash (an exception, a killed process) before COMMIT leaves the database as it
  was, previous versions intact;
- readers never wait for the writer (SQLite's WAL journal; PostgreSQL's snapshots); a writer waits up to
  BUSY_TIMEOUT_S for the lock, then gets a StoreError and nothing changed;
- each process keeps one engine per database with a bounded pool (BLOCKWORK_DB_POOL connections); a connection
  is used by one thread at a time.

Who may change what (the check is here, so no page can skip it): every mutating method takes `user`, the acting
user's e-mail (None where the server has no login). A design saved by a signed-in user belongs to them: only they
or a teacher (an e-mail in BLOCKWORK_TEACHERS) may save over it, restore, rename, delete, undelete or purge it;
anyone may open and fork it. A design saved without login belongs to no one: anyone may change it.

Designs are validated (Design.from_json) before they are stored and again when read back, so a row edited by hand,
or written by an older Blockwork with looser checks, cannot reach a page unchecked.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, Row

from .design import Design
from .errors import DesignError

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "data"  # git-ignored
FILE_NAME = "blockwork.sqlite3"
MAX_NAME = 100  # characters of a library name (a design's own name has the same cap)
MAX_USER = 320  # characters of an e-mail address
BUSY_TIMEOUT_S = 30.0  # how long a write waits for another session's write to finish
POOL_DEFAULT = 5  # connections per process and database (BLOCKWORK_DB_POOL)
SCHEMA_VERSION = 2  # 1: designs + versions (SQLite only); 2: + owners, trash, authors, blockwork_schema
_LOCK_KEY = 0x426C6F636B776F72  # "Blockwor": PostgreSQL's advisory lock that serializes the library's writes

# -- the schema ------------------------------------------------------------------------------------------------

_meta = sa.MetaData()
designs = sa.Table(
    "designs",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(MAX_NAME), nullable=False),  # unique ignoring case: the index below
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created", sa.Float, nullable=False),  # seconds since the epoch
    sa.Column("updated", sa.Float, nullable=False),
    sa.Column("head", sa.Integer, nullable=False),  # the newest version's number
    sa.Column("owner", sa.String(MAX_USER)),  # who saved it first; NULL: saved without login, anyone may change it
    sa.Column("deleted", sa.Float),  # when it went to the trash; NULL: in the library
    sa.Column("deleted_by", sa.String(MAX_USER)),
)
sa.Index("designs_name_key", sa.func.lower(designs.c.name), unique=True)
versions = sa.Table(
    "versions",
    _meta,
    sa.Column("design_id", sa.Integer, sa.ForeignKey("designs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),  # 1, 2, 3, ... per design, no gaps
    sa.Column("saved", sa.Float, nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("json", sa.Text, nullable=False),
    sa.Column("author", sa.String(MAX_USER)),  # who saved this version (NULL without login)
)
schema = sa.Table("blockwork_schema", _meta, sa.Column("version", sa.Integer, nullable=False))

# Version 1 (the SQLite-only store) → 2. SQLite's DDL is transactional too: all of it or nothing.
_MIGRATE_1_TO_2 = (
    "ALTER TABLE designs ADD COLUMN owner VARCHAR(320)",
    "ALTER TABLE designs ADD COLUMN deleted FLOAT",
    "ALTER TABLE designs ADD COLUMN deleted_by VARCHAR(320)",
    "ALTER TABLE versions ADD COLUMN author VARCHAR(320)",
    "CREATE UNIQUE INDEX IF NOT EXISTS designs_name_key ON designs (lower(name))",
)

_engines: dict[tuple[int, str], Engine] = {}  # (process id, URL) → engine: a forked child makes its own
_ready: set[tuple[int, str]] = set()  # databases whose schema this process has checked
_engines_lock = threading.Lock()


class StoreError(ValueError):
    """A library request that cannot be done: an unknown name, a name taken, a version that does not exist."""


class NotAllowed(StoreError):
    """The acting user may not change this design (it belongs to someone else)."""


@dataclass(frozen=True)
class Entry:
    """One saved design as the library lists it."""

    name: str
    description: str
    versions: int  # the newest version's number (versions are 1..versions)
    created: float  # seconds since the epoch
    updated: float
    owner: str | None = None  # e-mail of who saved it first; None: anyone may change it
    deleted: float | None = None  # when it went to the trash (None: in the library)
    deleted_by: str | None = None


@dataclass(frozen=True)
class Version:
    """One saved version of a design."""

    number: int
    saved: float  # seconds since the epoch
    note: str  # e.g. "restored from version 2", "imported from tied.json"
    layers: int  # entries in its `layers` (a quick way to tell versions apart)
    author: str | None = None  # who saved it (None without login)


# -- configuration ---------------------------------------------------------------------------------------------


def default_path() -> Path | None:
    """The library file: $BLOCKWORK_DB (a file), else $BLOCKWORK_DATA_DIR/blockwork.sqlite3, else the repository's
    data/ folder; None when BLOCKWORK_DB is a database URL. Read on every call, so a test or a deployment can
    point it elsewhere."""
    db = os.environ.get("BLOCKWORK_DB", "").strip()
    if db:
        return None if "://" in db else Path(db).expanduser()
    folder = os.environ.get("BLOCKWORK_DATA_DIR", "").strip()
    return (Path(folder).expanduser() if folder else DEFAULT_DIR) / FILE_NAME


def teachers() -> frozenset[str]:
    """E-mails allowed to change every design: $BLOCKWORK_TEACHERS, separated by commas or spaces."""
    text = os.environ.get("BLOCKWORK_TEACHERS", "")
    return frozenset(part.lower() for part in text.replace(",", " ").split())


def pool_size() -> int:
    """Connections one process may hold to the library (BLOCKWORK_DB_POOL, default 5)."""
    text = os.environ.get("BLOCKWORK_DB_POOL", "").strip()
    if not text:
        return POOL_DEFAULT
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise StoreError(f"BLOCKWORK_DB_POOL must be a whole number from 1 to 100, got {text!r}")
    return int(text)


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


def check_user(user: object) -> str | None:
    """The acting user as stored: an e-mail in lower case, or None (no login)."""
    if user is None:
        return None
    if not isinstance(user, str) or not user.strip() or len(user.strip()) > MAX_USER or not user.isprintable():
        raise StoreError(f"the acting user must be an e-mail address (at most {MAX_USER} characters), got {user!r}")
    return user.strip().lower()


def refusal(name: str, owner: str | None, user: str | None) -> str | None:
    """Why `user` may not change the design `name` owned by `owner`, or None when they may.

    The one rule, used by every Store method that changes a design and by the page to explain a disabled button."""
    if owner is None:
        return None  # saved without login: everyone's
    user = check_user(user)
    if user is not None and (user == owner.lower() or user in teachers()):
        return None
    if user is None:
        return f"{name!r} belongs to {owner}: sign in as its owner or a teacher to change it"
    return f"{name!r} belongs to {owner}: only its owner or a teacher may change it; fork it to have your own copy"


# -- the store -------------------------------------------------------------------------------------------------


class Store:
    """A design library in one database. Cheap to create: pages make one per request (engines are shared)."""

    def __init__(self, location: str | os.PathLike[str] | None = None, *, login: bool = False) -> None:
        """`location`: a file path (SQLite) or a database URL; default: BLOCKWORK_DB / BLOCKWORK_DATA_DIR.
        `login`: the server has login, so every change needs a signed-in user (and every new design an owner)."""
        self.login = login
        if location is None:
            path = default_path()
            location = path if path is not None else os.environ["BLOCKWORK_DB"].strip()
        self.url = _url(location)
        self.path: Path | None = Path(self.url.database or "") if self.sqlite else None  # the file, for SQLite
        if self.path is not None and self.path.exists():
            self._ensure()  # an existing file is checked now; a missing one is created by the first save
        # a server database is checked by the first call: constructing a Store never waits for a network

    @property
    def sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def where(self) -> str:
        """The library as messages name it: the file, or the URL without its password."""
        return str(self.path) if self.sqlite else self.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        """This process's engine for the library (created on first use; its pool is bounded)."""
        key = (os.getpid(), self.url.render_as_string(hide_password=False))
        with _engines_lock:
            engine = _engines.get(key)
            if engine is None:
                engine = _engines[key] = _make_engine(self.url)
        return engine

    # -- transactions ------------------------------------------------------------------------------------------

    def _ensure(self) -> None:
        """Create the schema, or migrate an older one, once per process and database."""
        key = (os.getpid(), self.url.render_as_string(hide_password=False))
        if key in _ready and not self._missing():
            return
        if self.path is not None and key in _ready:  # the file went away: pooled connections still point at it
            with _engines_lock:
                _engines.pop(key).dispose()
                _ready.discard(key)
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot open the design library at {self.where}: {e}") from None
            self._wal()
        with self._write(ensure=False) as con:
            tables = set(sa.inspect(con).get_table_names())
            if schema.name in tables:
                found = con.execute(sa.select(sa.func.max(schema.c.version))).scalar() or 0
            else:
                found = 1 if designs.name in tables else 0
            if found > SCHEMA_VERSION:
                raise StoreError(
                    f"the design library at {self.where} was written by a newer Blockwork (schema {found}; this "
                    f"one knows up to {SCHEMA_VERSION}): update Blockwork"
                )
            if found == 0:
                _meta.create_all(con)
                con.execute(schema.insert().values(version=SCHEMA_VERSION))
            elif found == 1:
                for statement in _MIGRATE_1_TO_2:
                    con.exec_driver_sql(statement)
                schema.create(con)
                con.execute(schema.insert().values(version=SCHEMA_VERSION))
        _ready.add(key)

    def _wal(self) -> None:
        """SQLite: switch the file to the WAL journal (kept in the file; every later connection uses it). Done on
        the driver's connection: the switch cannot happen inside a transaction."""
        for _ in range(100):  # switching needs the file to itself for a moment
            try:
                raw = self.engine.raw_connection()
                try:
                    raw.cursor().execute("PRAGMA journal_mode = WAL")
                finally:
                    raw.close()
                return
            except (sqlite3.Error, sa_exc.DBAPIError) as e:
                orig: BaseException | None = e.orig if isinstance(e, sa_exc.DBAPIError) else e
                if not isinstance(orig, sqlite3.OperationalError) or "locked" not in str(orig):
                    raise self._error(e, "opened") from None
                time.sleep(0.05)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        if self._missing():  # nothing saved yet: an empty library, no file made just to look
            with _empty_lock, _empty().connect() as con:
                yield con
            return
        try:
            self._ensure()
            with self.engine.connect() as con, con.begin():
                yield con
        except sa_exc.DBAPIError as e:
            raise self._error(e, "read") from None
        except sa_exc.TimeoutError:
            raise self._busy() from None

    @contextmanager
    def _write(self, ensure: bool = True) -> Iterator[Connection]:
        """One transaction holding the library's write lock: committed when the block ends, rolled back on any
        exception (or a crash)."""
        try:
            if ensure:
                self._ensure()
            with self.engine.connect() as con:
                con.execution_options(blockwork_write=True)  # SQLite: the begin hook says BEGIN IMMEDIATE
                with con.begin():
                    if not self.sqlite:
                        ms = int(BUSY_TIMEOUT_S * 1000)
                        con.execute(sa.text("SELECT set_config('lock_timeout', :t, true)"), {"t": f"{ms}ms"})
                        con.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
                    yield con
        except sa_exc.DBAPIError as e:  # busy past the timeout, disk full, read-only file, server gone, ...
            raise self._error(e, "written") from None
        except sa_exc.TimeoutError:
            raise self._busy() from None

    def _missing(self) -> bool:
        """A SQLite library whose file does not exist (yet)."""
        return self.path is not None and not self.path.exists()

    def _error(self, e: BaseException, done: str) -> StoreError:
        """A database failure as a StoreError naming the library and the driver's reason (never a password)."""
        orig = e.orig if isinstance(e, sa_exc.DBAPIError) else e
        reason = " ".join(str(orig).split()) or type(orig).__name__
        if "file is not a database" in reason:
            return StoreError(f"{self.where} is not a Blockwork design library ({reason})")
        if "unable to open" in reason or "connect" in reason:
            return StoreError(f"cannot open the design library at {self.where}: {reason}")
        tail = "; nothing was changed" if done == "written" else ""
        return StoreError(f"the design library at {self.where} could not be {done} ({reason}){tail}")

    def _busy(self) -> StoreError:
        return StoreError(
            f"the design library at {self.where} is busy: all {pool_size()} connections of this server process "
            f"stayed in use for {BUSY_TIMEOUT_S:g} s; nothing was changed, try again"
        )

    # -- writing -------------------------------------------------------------------------------------------

    def _actor(self, user: object) -> str | None:
        user = check_user(user)
        if user is None and self.login:
            raise NotAllowed("sign in to change the library (anyone may open and export its designs)")
        return user

    def save(self, name: str, design: Design, note: str = "", *, user: str | None = None) -> int:
        """Save `design` as the newest version of `name` (created if new, owned by `user`); returns its number.

        The design is checked first (a DesignError leaves the library unchanged) and stored under its library
        name, so loading it gives a design called `name`. Saving over someone else's design is NotAllowed."""
        name, user = check_name(name), self._actor(user)
        text = _validated(design, name)
        with self._write() as con:
            row = _row(con, name)
            if row is None:
                design_id = _insert(con, name, design.description, user)
            else:
                if row.deleted is not None:
                    raise StoreError(
                        f"{row.name!r} is in the trash: undelete it to save to it again, or choose another name"
                    )
                _allow(row, user)
                design_id = row.id
            return _append(con, design_id, text, design.description, note[:200], user)

    def restore(self, name: str, version: int, *, user: str | None = None) -> int:
        """Save version `version` of `name` again as its newest version (later versions are kept)."""
        user = self._actor(user)
        with self._write() as con:
            row = _live(con, name)
            _allow(row, user)
            design = _parse(_text(con, row, version), row.name, version)
            text = _validated(design, row.name)
            return _append(con, row.id, text, design.description, f"restored from version {version}", user)

    def fork(self, name: str, new: str, *, version: int | None = None, user: str | None = None) -> str:
        """Save a copy of `name` (its newest version, or `version`) as a new design `new` owned by `user`.
        Anyone may fork any design in the library; returns the new name."""
        new, user = check_name(new), self._actor(user)
        with self._write() as con:
            row = _live(con, name)
            design = _parse(_text(con, row, version), row.name, version)
            _free(con, new, None)
            design_id = _insert(con, new, design.description, user)
            which = version if version is not None else row.head
            _append(con, design_id, _validated(design, new), design.description,
                    f"forked from {row.name!r} version {which}", user)  # fmt: skip
        return new

    def rename(self, old: str, new: str, *, user: str | None = None) -> str:
        """Give a saved design a new name (its versions, owner and history go with it); returns the new name."""
        new, user = check_name(new), self._actor(user)
        with self._write() as con:
            row = _live(con, old)
            _allow(row, user)
            _free(con, new, row.id)
            con.execute(designs.update().where(designs.c.id == row.id).values(name=new, updated=time.time()))
        return new

    def delete(self, name: str, *, user: str | None = None) -> None:
        """Move a saved design, with all its versions, to the trash (see trash, undelete, purge)."""
        user = self._actor(user)
        with self._write() as con:
            row = _live(con, name)
            _allow(row, user)
            con.execute(designs.update().where(designs.c.id == row.id).values(deleted=time.time(), deleted_by=user))

    def undelete(self, name: str, *, user: str | None = None) -> str:
        """Bring a design back from the trash with all its versions; returns its name."""
        user = self._actor(user)
        with self._write() as con:
            row = _trashed(con, name)
            _allow(row, user)
            con.execute(designs.update().where(designs.c.id == row.id).values(deleted=None, deleted_by=None))
        return str(row.name)

    def purge(self, name: str, *, user: str | None = None) -> None:
        """Remove a design in the trash and every version of it, for good. A design not in the trash is refused
        (delete it first): nothing is destroyed in one step."""
        user = self._actor(user)
        with self._write() as con:
            row = _trashed(con, name)
            _allow(row, user)
            con.execute(versions.delete().where(versions.c.design_id == row.id))
            con.execute(designs.delete().where(designs.c.id == row.id))

    def import_json(
        self, text: str | bytes, name: str | None = None, note: str = "imported", *, user: str | None = None
    ) -> tuple[str, int]:
        """Save design JSON (a file a user uploads) under `name`, else the design's own name.

        Returns (name, version): an existing name gets a new version, so an import never overwrites.
        DesignError (nothing saved) when the JSON is not a valid design."""
        design = Design.from_json(text)
        name = check_name(name if name is not None and name.strip() else design.name)
        return name, self.save(name, design, note, user=user)

    # -- reading -------------------------------------------------------------------------------------------

    def load(self, name: str, version: int | None = None) -> Design:
        """A saved design (the newest version, or `version`), validated again; named by its library name."""
        with self._read() as con:
            row = _live(con, name)
            text = _text(con, row, version)
        return dataclasses.replace(_parse(text, row.name, version), name=row.name)

    def export_json(self, name: str, version: int | None = None) -> str:
        """The design JSON of a saved design: the same format as the files in examples/."""
        return self.load(name, version).to_json()

    def entries(self, query: str = "") -> list[Entry]:
        """Saved designs (not those in the trash), the most recently saved first; `query` keeps those whose name,
        description or newest version contains it (case-insensitive; e.g. "tied", "BatchNorm")."""
        sql = _listing().where(designs.c.deleted.is_(None))
        query = query.strip()
        if query:
            like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            sql = sql.where(
                sa.or_(*(c.ilike(like, escape="\\") for c in (designs.c.name, designs.c.description, versions.c.json)))
            )
        with self._read() as con:
            return [Entry(*row) for row in con.execute(sql.order_by(designs.c.updated.desc(), designs.c.name))]

    search = entries

    def trash(self) -> list[Entry]:
        """Designs in the trash, the most recently deleted first (each keeps all its versions)."""
        sql = _listing().where(designs.c.deleted.is_not(None)).order_by(designs.c.deleted.desc(), designs.c.name)
        with self._read() as con:
            return [Entry(*row) for row in con.execute(sql)]

    def entry(self, name: str) -> Entry:
        """One design as the library lists it, in the library or in the trash (StoreError when unknown)."""
        with self._read() as con:
            row = _row(con, name if isinstance(name, str) else "")
            if row is None:
                raise StoreError(f"the library has no design named {name!r}")
            return Entry(*con.execute(_listing().where(designs.c.id == row.id)).one())

    def versions(self, name: str) -> list[Version]:
        """Every version of a saved design, the newest first."""
        with self._read() as con:
            row = _live(con, name)
            rows = con.execute(
                sa.select(versions.c.number, versions.c.saved, versions.c.note, versions.c.json, versions.c.author)
                .where(versions.c.design_id == row.id)
                .order_by(versions.c.number.desc())
            ).all()
        return [Version(n, saved, note, _layer_count(text), author) for n, saved, note, text, author in rows]

    def may_change(self, name: str, user: str | None) -> str | None:
        """Why `user` may not change `name` (None: they may). For pages that explain before a click."""
        entry = self.entry(name)
        if self.login and check_user(user) is None:
            return "sign in to change the library (anyone may open and export its designs)"
        return refusal(entry.name, entry.owner, user)

    def __contains__(self, name: object) -> bool:
        """A design of that name is in the library (not in the trash)."""
        if not isinstance(name, str):
            return False
        with self._read() as con:
            row = _row(con, name)
        return row is not None and row.deleted is None

    def __len__(self) -> int:
        with self._read() as con:
            return con.execute(sa.select(sa.func.count()).where(designs.c.deleted.is_(None))).scalar_one()


# -- engines ---------------------------------------------------------------------------------------------------


def _url(location: str | os.PathLike[str]) -> URL:
    text = str(location).strip()
    if "://" not in text:
        return URL.create("sqlite", database=str(Path(text).expanduser()))
    try:
        url = sa.make_url(text)
    except (sa_exc.ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        raise StoreError(f"BLOCKWORK_DB is neither a file path nor a database URL: {text!r}") from None
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(f"the design library runs on SQLite or PostgreSQL, not {backend!r} ({text})")
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise StoreError("an in-memory SQLite library would vanish with its process: give a file path")
    return url


def _make_engine(url: URL) -> Engine:
    size = pool_size()  # at most this many connections per process; a caller beyond it waits, then StoreError
    options = {"pool_size": size, "max_overflow": 0, "pool_timeout": BUSY_TIMEOUT_S}
    if url.get_backend_name() != "sqlite":
        return sa.create_engine(
            url, **options, pool_pre_ping=True, pool_recycle=1800, connect_args={"connect_timeout": 10}
        )
    engine = sa.create_engine(url, **options, connect_args={"timeout": BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_con, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_con.isolation_level = None  # transactions are ours (the begin hook), not the driver's guesses
        for pragma in ("foreign_keys = ON", "synchronous = FULL"):  # FULL: a committed save survives a power cut
            dbapi_con.execute(f"PRAGMA {pragma}")

    @sa.event.listens_for(engine, "begin")
    def _begin(con: Connection) -> None:
        con.exec_driver_sql(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        # a write takes the lock now, before reading what to write; a read sees one snapshot
        con.exec_driver_sql("BEGIN IMMEDIATE" if con.get_execution_options().get("blockwork_write") else "BEGIN")

    return engine


_empty_engine: Engine | None = None
_empty_lock = threading.Lock()  # its one connection serves one thread at a time


def _empty() -> Engine:
    """An in-memory library with the schema and nothing in it: what a missing SQLite file reads as."""
    global _empty_engine
    with _engines_lock:
        if _empty_engine is None:
            _empty_engine = sa.create_engine(
                "sqlite://", poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False}
            )
            _meta.create_all(_empty_engine)
    return _empty_engine


def close_engines() -> None:
    """Close this process's pooled connections to every library (tests; a server shutting down)."""
    with _engines_lock:
        for key in [k for k in _engines if k[0] == os.getpid()]:
            _engines.pop(key).dispose()
            _ready.discard(key)


# -- rows ------------------------------------------------------------------------------------------------------


def _listing() -> sa.Select[Any]:
    return sa.select(
        designs.c.name, designs.c.description, designs.c.head, designs.c.created, designs.c.updated,
        designs.c.owner, designs.c.deleted, designs.c.deleted_by,
    ).join(versions, sa.and_(versions.c.design_id == designs.c.id, versions.c.number == designs.c.head))  # fmt: skip


DesignRow = Row[int, str, int, str | None, float | None]  # id, name, head, owner, deleted


def _row(con: Connection, name: str) -> DesignRow | None:
    """The design called `name` (ignoring case and extra spaces), in the library or the trash."""
    key = " ".join(name.split()) if isinstance(name, str) else ""
    return con.execute(
        sa.select(designs.c.id, designs.c.name, designs.c.head, designs.c.owner, designs.c.deleted).where(
            sa.func.lower(designs.c.name) == sa.func.lower(sa.literal(key, sa.String))
        )
    ).first()


def _live(con: Connection, name: str) -> DesignRow:
    row = _row(con, name)
    if row is None:
        raise StoreError(f"the library has no design named {name!r}")
    if row.deleted is not None:
        raise StoreError(f"{row.name!r} is in the trash: undelete it first")
    return row


def _trashed(con: Connection, name: str) -> DesignRow:
    row = _row(con, name)
    if row is None:
        raise StoreError(f"the library has no design named {name!r}, not even in the trash")
    if row.deleted is None:
        raise StoreError(f"{row.name!r} is not in the trash (delete it first)")
    return row


def _allow(row: DesignRow, user: str | None) -> None:
    reason = refusal(row.name, row.owner, user)
    if reason is not None:
        raise NotAllowed(reason)


def _free(con: Connection, name: str, design_id: int | None) -> None:
    """StoreError unless `name` is free (or taken only by `design_id` itself, e.g. a rename changing case)."""
    row = _row(con, name)
    if row is not None and row.id != design_id:
        where = " in the trash" if row.deleted is not None else ""
        raise StoreError(f"there is already a design named {row.name!r}{where}; choose another name")


def _insert(con: Connection, name: str, description: str, owner: str | None) -> int:
    now = time.time()
    values = {"name": name, "description": description, "created": now, "updated": now, "head": 0, "owner": owner}
    key = con.execute(designs.insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def _append(con: Connection, design_id: int, text: str, description: str, note: str, user: str | None) -> int:
    """Write the next version of a design (the caller holds the write lock); returns its number."""
    now = time.time()
    head: int = con.execute(sa.select(designs.c.head).where(designs.c.id == design_id)).scalar_one()
    number = head + 1
    con.execute(
        versions.insert().values(design_id=design_id, number=number, saved=now, note=note, json=text, author=user)
    )
    con.execute(
        designs.update().where(designs.c.id == design_id).values(head=number, updated=now, description=description)
    )
    return number


def _text(con: Connection, row: DesignRow, version: int | None) -> str:
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise StoreError(f"a version is a whole number, got {version!r}")
    number = row.head if version is None else version
    text = con.execute(
        sa.select(versions.c.json).where(versions.c.design_id == row.id, versions.c.number == number)
    ).scalar()
    if text is None:
        raise StoreError(f"{row.name!r} has no version {version}")
    return str(text)


def _layer_count(text: str) -> int:
    try:
        layers = json.loads(text).get("layers")
    except (ValueError, AttributeError):
        return 0
    return len(layers) if isinstance(layers, list) else 0


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
