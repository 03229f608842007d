"""A throwaway PostgreSQL server for the tests and CI: one data folder, 127.0.0.1 only, trust auth, no fsync.

    python3 tests/pgserver.py start DIR    # prints the server's URL (postgresql+psycopg://test@127.0.0.1:PORT/postgres)
    python3 tests/pgserver.py stop DIR

The tests' `postgres_server` fixture uses the server named by $BLOCKWORK_TEST_PG (what .ci/run starts with this
script), else starts one itself with the same functions, else skips the PostgreSQL variants saying why.
`initdb` refuses to run as root, so as root the server runs as the `postgres` user (Debian's packages create it);
any other user runs it as themselves. Standard library only: .ci/run calls it before the venv exists.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
from pathlib import Path

USER = "test"  # the database superuser the tests connect as (no password: trust, 127.0.0.1 only)


def binary(name: str) -> str | None:
    """A PostgreSQL program: on PATH, else in Debian's /usr/lib/postgresql/<version>/bin (the newest)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    return candidates[-1] if candidates else None


def unavailable() -> str | None:
    """Why no server can be started here (None: one can)."""
    if binary("initdb") is None or binary("pg_ctl") is None:
        return "PostgreSQL's initdb/pg_ctl are not installed (Debian: apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and initdb refuses root; there is no `postgres` user to run it as"
    return None


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(folder: str | os.PathLike) -> str:
    """Create a cluster in `folder` (an empty or new directory) and start it; returns its URL."""
    reason = unavailable()
    if reason is not None:
        raise RuntimeError(reason)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = _free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    subprocess.run(
        _as_server_user([binary("initdb"), "-D", str(folder / "data"), "-U", USER, "--auth=trust", "-E", "UTF8",
                         "--no-locale", "--no-sync"]), **run)  # fmt: skip
    options = f"-p {port} -h 127.0.0.1 -k {folder} -F -c fsync=off -c full_page_writes=off -c max_connections=300"
    subprocess.run(
        _as_server_user([binary("pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"), "-w",
                         "-o", options, "start"]), **run)  # fmt: skip
    (folder / "url").write_text(url := f"postgresql+psycopg://{USER}@127.0.0.1:{port}/postgres")
    return url


def stop(folder: str | os.PathLike) -> None:
    """Stop the server in `folder` (at once: it is throwaway) and remove the folder."""
    folder = Path(folder)
    if (folder / "data" / "postmaster.pid").exists():
        subprocess.run(
            _as_server_user([binary("pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "-w", "stop"]),
            capture_output=True, timeout=60,
        )  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: python3 tests/pgserver.py start|stop DIR")
    if sys.argv[1] == "start":
        try:
            print(start(sys.argv[2]))
        except (RuntimeError, subprocess.CalledProcessError) as e:
            sys.exit(f"cannot start PostgreSQL: {e} {getattr(e, 'stderr', '') or ''}")
    else:
        stop(sys.argv[2])
