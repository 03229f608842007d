"""Real-browser tests: one Streamlit server per test session, driven by Debian's chromium via Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROME_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 60_000  # the first render of a page that imports torch takes seconds


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    run_load = os.environ.get("BLOCKWORK_LOAD_TEST") == "1"
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.browser)
        if item.get_closest_marker("load") and not run_load:
            item.add_marker(pytest.mark.skip(reason="load test: set BLOCKWORK_LOAD_TEST=1 (.ci/run does)"))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:  # overrides pytest-playwright's
    if not Path(CHROMIUM).exists():
        pytest.fail("browser tests need Debian's chromium: apt-get install -y chromium")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROME_ARGS}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(app_server: tuple[str, subprocess.Popen]) -> str:
    return app_server[0]


@pytest.fixture(scope="session")
def app_process(app_server: tuple[str, subprocess.Popen]) -> subprocess.Popen:
    return app_server[1]


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen]]:
    """One app server for the whole test session."""
    with serve(tmp_path_factory.mktemp("streamlit") / "server.log") as server:
        yield server


@contextlib.contextmanager
def serve(
    log_path: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = (), port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start `streamlit run app.py` on a free local port (or `port`), with `env` added to the environment and
    `args` added to the command line (e.g. `--secrets.files`); stop it on exit."""
    port = port or free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
                *args,
            ],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        try:
            while True:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not start:\n{log_path.read_text()}")
                time.sleep(0.2)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_idle(page) -> None:
    """Wait until the app has finished its current rerun."""
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=WAIT_MS)


def no_errors(page) -> None:
    """No exception box and no error box on the page."""
    boxes = page.get_by_test_id("stException").all() + page.get_by_test_id("stAlertContentError").all()
    assert not boxes, [b.inner_text() for b in boxes]
