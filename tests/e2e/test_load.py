"""Load: a classroom of browsers on one server at once (127.0.0.1 only, bounded in count and time).

Each of SESSIONS browser contexts loads an example, edits it, inspects it, downloads its weights and saves it
to the library, all at the same time, on a server whose library is PostgreSQL (a classroom server, see
docs/deploy.md). Every one must succeed with no error box, and every save must be in the database. The server's
memory per session and the slowest step are printed (run with -s to see them) and checked against generous
bounds.

Behind the `load` marker: `pytest -m load` (CI enables it in .ci/run).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import os
import time
from pathlib import Path

import pytest
import torch

from builder.store import Store

from ..conftest import new_database
from .conftest import CHROME_ARGS, CHROMIUM, WAIT_MS, serve

pytestmark = pytest.mark.load

SESSIONS = int(os.environ.get("BLOCKWORK_LOAD_SESSIONS", "30"))
ARRIVAL_S = 0.5  # student i opens the app i × 0.5 s after the first (all 30 within 15 s; every session stays open)
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (streamlit runs in one process)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def wait_idle(page) -> None:
    await page.wait_for_timeout(200)  # let a click's rerun start before waiting for it to end
    await page.wait_for_selector(IDLE, timeout=WAIT_MS * 3)


async def student(browser, url: str, i: int, timings: dict[str, float]) -> bytes:
    await asyncio.sleep(max(i, 0) * ARRIVAL_S)  # a class arrives within seconds, not in one instant
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(WAIT_MS * 3)  # a busy 2-core server answers slowly, not wrongly
    page = await context.new_page()
    step_start = time.monotonic()

    async def step(name: str) -> None:
        nonlocal step_start
        now = time.monotonic()
        timings[name] = max(timings.get(name, 0.0), now - step_start)
        step_start = now

    try:
        await page.goto(url, timeout=WAIT_MS * 3, wait_until="domcontentloaded")  # then the app itself is awaited
        await wait_idle(page)
        await step("open")
        # load an example on the Design page
        picker = page.locator(".st-key-start input")  # choosing an example loads it
        await picker.click()
        await picker.fill("tied")
        await picker.press("Enter")
        await wait_idle(page)
        await page.locator(".st-key-row_6").wait_for(timeout=WAIT_MS * 3)
        await step("load example")
        # edit: duplicate the first ReLU (layers[1]); everything after it moves down one place
        await page.locator(".st-key-edit_1 button").first.click()  # open the row: its editor holds Duplicate
        await wait_idle(page)
        await page.locator(".st-key-dup_1 button").first.click()  # a button with help renders twice
        await wait_idle(page)
        await page.locator(".st-key-row_7").wait_for(timeout=WAIT_MS * 3)
        await step("edit")
        # inspect
        await page.get_by_test_id("stSidebarNav").get_by_role("link", name="Inspect").click()  # same session
        await page.get_by_role("heading", name="Inspect", level=1).wait_for()
        await wait_idle(page)
        await page.locator(".st-key-graph svg g.node").first.wait_for(timeout=WAIT_MS * 3)
        labels = await page.locator(".st-key-graph svg g.node text").all_text_contents()
        assert "7 · Linear" in labels, labels  # the edit is there: the last Linear moved from 6 to 7
        await step("inspect")
        # download the weights
        await page.get_by_test_id("stSidebarNav").get_by_role("link", name="Weights").click()
        await page.get_by_role("heading", name="Weights", level=1).wait_for()
        await page.get_by_role("heading", name="Code").wait_for()  # the page has drawn to its end
        await wait_idle(page)
        async with page.expect_download(timeout=WAIT_MS * 3) as info:
            await page.locator(".st-key-download_params button").click()
        download = await info.value
        data = Path(await download.path()).read_bytes()
        await step("download")
        # save it to the library (PostgreSQL)
        await page.get_by_test_id("stSidebarNav").get_by_role("link", name="Library").click()
        await page.get_by_role("heading", name="Library", level=1).wait_for()
        await wait_idle(page)
        await page.get_by_role("tab", name="Saved designs").click()
        name = f"student {i}"
        await page.locator(".st-key-lib_name input").fill(name)
        await page.locator(".st-key-lib_name input").press("Enter")
        await wait_idle(page)
        await page.locator(".st-key-lib_save button").click()
        await wait_idle(page)
        await page.get_by_test_id("stAlertContentSuccess").filter(has_text=f"as {name!r}, version 1").wait_for()
        await step("save to library")
        errors = (
            await page.get_by_test_id("stException").count() + await page.get_by_test_id("stAlertContentError").count()
        )
        assert errors == 0, f"student {i}: {errors} error boxes"
        return data
    except Exception:
        await page.screenshot(path=f"/tmp/load-student-{i}.png", full_page=True)
        raise
    finally:
        await context.close()


@pytest.fixture(scope="module")
def classroom_server(postgres_server: str, tmp_path_factory: pytest.TempPathFactory):
    """An app server whose library is a fresh PostgreSQL database: (url, process, database URL)."""
    log = tmp_path_factory.mktemp("load") / "server.log"
    with new_database(postgres_server) as db, serve(log, {"BLOCKWORK_DB": db}) as (url, proc):
        yield url, proc, db


def test_a_classroom_at_once(classroom_server) -> None:
    from playwright.async_api import async_playwright

    app_url, app_process, db = classroom_server

    timings: dict[str, float] = {}
    memory: dict[str, float] = {}

    async def classroom() -> tuple[list[bytes], float]:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROME_ARGS)
            try:
                await student(browser, app_url, -1, {})  # warm-up: the server imports torch, compiles pages
                memory["before"] = memory["peak"] = rss_mib(app_process.pid)

                async def sample() -> None:  # the server's peak memory while the sessions are alive
                    while True:
                        memory["peak"] = max(memory["peak"], rss_mib(app_process.pid))
                        await asyncio.sleep(0.25)

                sampler = asyncio.create_task(sample())
                start = time.monotonic()
                try:
                    files = await asyncio.wait_for(
                        asyncio.gather(*(student(browser, app_url, i, timings) for i in range(SESSIONS))), 600
                    )
                finally:
                    sampler.cancel()
                return files, time.monotonic() - start
            finally:
                await browser.close()

    # In a thread of its own: the other browser tests' sync Playwright keeps an event loop on this one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        files, elapsed = pool.submit(asyncio.run, classroom()).result()
    before, peak = memory["before"], memory["peak"]
    per_session = (peak - before) / SESSIONS
    print(
        f"\n{SESSIONS} sessions in {elapsed:.1f} s; server RSS {before:.0f} MiB before, {peak:.0f} MiB at peak "
        f"({per_session:.1f} MiB per session); slowest step per kind: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    )
    assert len(files) == SESSIONS
    for data in files:
        state = torch.load(io.BytesIO(data), weights_only=True)
        assert "7.weight" in state and torch.equal(state["3.weight"], state["5.weight"])  # still tied
    assert per_session < 100, per_session
    saved = {e.name: e.versions for e in Store(db).entries()}
    assert saved == {f"student {i}": 1 for i in range(-1, SESSIONS)}, saved  # (-1: the warm-up)
