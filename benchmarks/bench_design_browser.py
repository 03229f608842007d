"""One edit on the Design page in a real browser, a 200-layer design against the 7-layer `tied` example (issue 16).

Two browser sessions on one server: one holds `tied`, the other a flat 200-layer chain (benchmarks.cases'
mixed_design: lazy and shared layers, no block to fold — only paging helps). In each, row 1's editor is open;
the edit is "move it down" then "move it back up" (the same edit on both designs, and both keep building).
Each edit is timed from the click until the page settled: the moved row's editor shows at its new place, the
script has finished, and the browser has painted twice. The two sessions take turns, edit by edit, so load on
the machine hits both alike; the row compares the medians (EDITS each, after a warm-up).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .bench_classroom import ARTIFACTS, CHROME_ARGS, CHROMIUM, IDLE, server

EDITS = 10  # per design, after one warm-up pair: the row's medians are of 10 edits each
WAIT_MS = 120_000
LARGE = 200


def _settle(page: Any, key: str) -> None:
    page.locator(f".st-key-{key}").wait_for(timeout=WAIT_MS)
    page.wait_for_timeout(50)  # the script state flips to "running" after the click is sent
    page.wait_for_selector(IDLE, timeout=WAIT_MS)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _open(browser: Any, url: str) -> Any:
    """A session on the Design page (the start page) at `url`, with row 1's editor open."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.locator(".st-key-row_1").wait_for(timeout=WAIT_MS)
    page.wait_for_selector(IDLE, timeout=WAIT_MS)
    page.locator(".st-key-edit_1 button").first.click()
    _settle(page, "down_1")
    return page


def _edit(page: Any, down: bool) -> float:
    """Move the open row down (row 1 -> 2) or back up; seconds until the page settled."""
    start = time.perf_counter()
    page.locator(f".st-key-{'down_1' if down else 'up_2'} button").first.click()
    _settle(page, "up_2" if down else "down_1")
    return time.perf_counter() - start


def measure(url: str) -> tuple[list[float], list[float]]:
    """(seconds per edit on the 200-layer design, on tied)."""
    from playwright.sync_api import sync_playwright

    from builder import load_example, share

    from .cases import mixed_design

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        try:
            pages = {
                name: _open(browser, f"{url}/?{share.PARAM}={share.encode(d)}")
                for name, d in (("large", mixed_design(LARGE)), ("tied", load_example("tied")))
            }
            times: dict[str, list[float]] = {"large": [], "tied": []}
            for i in range(EDITS + 2):  # the first pair warms up (first figures, first imports)
                for name, page in pages.items():
                    t = _edit(page, down=i % 2 == 0)
                    if i >= 2:
                        times[name].append(t)
        finally:
            browser.close()
    return times["large"], times["tied"]


def bench_design_browser(quick: bool) -> Iterator[object]:
    from .cases import Row

    case = f"one edit (move a row) on a {LARGE}-layer design vs the 7-layer tied design, in Chromium"
    if quick or not Path(CHROMIUM).exists():  # a server and a browser: `make bench` only
        yield Row("browser edit", case, "run by make bench" if quick else "chromium missing", "", None, "≤ 1.5", None)
        return
    with server(ARTIFACTS.parent / "blockwork-design-browser" / "server.log") as (url, _):
        large, tied = measure(url)
    a, b = statistics.median(large), statistics.median(tied)
    yield Row(
        "browser edit",
        f"{case} (median of {len(large)} edits each, taking turns)",
        f"{a * 1e3:.0f} ms",
        f"{b * 1e3:.0f} ms",
        a / b,
        "≤ 1.5",
        a / b <= 1.5,
    )
