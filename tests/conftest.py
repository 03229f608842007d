"""Shared fixtures: the repository root, AppTest sessions, the chapter's hand-written networks."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from . import pgserver

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app() -> AppTest:
    """A fresh browser session of the whole app (app.py with st.navigation), already run once."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    """Switch a session to `pages/<page>.py` and run it; fails on any exception."""
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server's URL: $BLOCKWORK_TEST_PG (what .ci/run starts), else a throwaway one started here
    (tests/pgserver.py: needs Debian's postgresql), else the PostgreSQL variants skip, saying why."""
    given = os.environ.get("BLOCKWORK_TEST_PG", "").strip()
    if given:
        yield given
        return
    reason = pgserver.unavailable()
    if reason is not None:
        pytest.skip(f"no PostgreSQL for the tests: {reason}; or set BLOCKWORK_TEST_PG to a server URL")
    folder = tempfile.mkdtemp(prefix="blockwork-pg-")  # under /tmp: the server's user must reach it
    try:
        yield pgserver.start(folder)
    finally:
        pgserver.stop(folder)


@contextlib.contextmanager
def new_database(server_url: str) -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server at `server_url`; its URL. Dropped afterwards."""
    import psycopg
    import sqlalchemy as sa

    from builder.store import close_engines

    server = sa.make_url(server_url)
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        close_engines()
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_db(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server; its URL. Dropped afterwards."""
    with new_database(postgres_server) as url:
        yield url


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """What each st.download_button would hand the browser, by the button's media URL (AppTest keeps the bytes
    in a MemoryMediaFileStorage; this records them as they are stored). Read with `download_bytes`."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    stored: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):  # type: ignore[no-untyped-def]
        file_id = original(self, path_or_data, mimetype, kind, filename)
        stored[file_id] = path_or_data if isinstance(path_or_data, bytes) else bytes(path_or_data, "utf-8")
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return stored


def download_bytes(at: AppTest, stored: dict[str, bytes], label_start: str) -> bytes:
    """The bytes of the download button whose label starts with `label_start`, as this run drew it."""
    for button in at.get("download_button"):
        if button.proto.label.startswith(label_start):
            file_id = button.proto.url.rsplit("/", 1)[-1].split(".")[0]
            return stored[file_id]
    raise KeyError(label_start)
