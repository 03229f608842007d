"""A class pressing Train at once: N browsers each train the tied-moons preset on one server (issue 13, defect 5).

Measured with the browsers on the same machine as the server, as in a classroom demo on a laptop: one run
alone first (after a warm-up run; the median of SOLO_RUNS), then N runs started together; each run is timed
from its Train click until its page says "done". The row's ratio is the slowest of the N against the solo
run; the target is each within 4× of it. Beside it: the machine's load average before the benchmark (other
work on the machine slows the N more than the solo run), and the CPU seconds a run costs, server and browsers
together, alone and in the class: on a busy machine these say what wall times cannot (on 2 free cores, N runs
of C CPU seconds each take at least N·C/2 seconds).

That bound is printed as the row's floor: N·C_class / (cores · solo time). With the browsers on the server's
machine it is itself above 4 for N = 8 on 2 cores whenever a run costs more CPU than its solo wall time (a
solo run keeps one core busy while the other helps draw): here every student's drawing is paid by the server's
cores, which in a classroom it is not (each browser draws on its student's machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
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
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
WAIT_MS = 300_000  # a busy 2-core server with 8 browsers answers slowly, not wrongly
# Where a run that never says "done" leaves its evidence: a screenshot and the text of its page, and the server's log
ARTIFACTS = Path(os.environ.get("BLOCKWORK_BENCH_ARTIFACTS", tempfile.gettempdir())) / "blockwork-classroom"
SOLO_RUNS = 3  # the solo time is their median: one run alone is short, and a hiccup would swing the ratio


@contextlib.contextmanager
def server(log_path: Path) -> Iterator[tuple[str, int]]:
    """`streamlit run app.py` on a free local port, its output in `log_path`: (url, pid); stopped on exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w+b") as log:
        yield from _serve(port, log)


def _serve(port: int, log: IO[bytes]) -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"streamlit did not start: {log.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU time so far of every live process below `root` (here: the server, and the browsers with their
    driver). On a busy machine this says what a run costs where wall time cannot: the same work, shared."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0.0, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += cpu_seconds(pid)
        todo += children.get(pid, [])
    return total


async def wait_idle(page) -> None:
    await page.wait_for_timeout(200)
    await page.wait_for_selector(IDLE, timeout=WAIT_MS)


async def open_train(browser, url: str, epochs: int | None):
    """A fresh session on the Train page with the tied-moons preset loaded, ready to press Train."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    await page.goto(url)
    await wait_idle(page)
    await page.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
    await wait_idle(page)
    await page.locator(".st-key-train_start button").wait_for()
    loaded = page.get_by_text("Design tied_moons")
    use_example = page.locator(".st-key-train_use_example").get_by_role("button")
    # the page can still be drawing after its script ended (elements whose code it fetches on first use come
    # last: with 8 pages opening at once, the Train button was there while "Use example" was not yet)
    await use_example.or_(loaded).first.wait_for()
    for _ in range(3):  # load the preset the data suggests
        if await loaded.count() or not await use_example.count():
            break
        await use_example.click()
        with contextlib.suppress(PlaywrightTimeout):  # a click landing while the button is drawn again is lost:
            await loaded.wait_for(timeout=30_000)  # a person clicks again
    await loaded.wait_for()
    if epochs is not None:
        box = page.locator(".st-key-train_epochs input")
        await box.fill(str(epochs))
        await box.press("Enter")
        await wait_idle(page)
    return context, page


class RunNeverDone(RuntimeError):
    """A run whose page did not say "done" in time; the message says where its screenshot and the log are."""


async def train(page, name: str = "run") -> float:
    """Press Train; seconds until the page says the run is done. If it never does (or shows a traceback), a
    RunNeverDone naming the screenshot and page text saved in ARTIFACTS (beside the server's log), with the
    progress text it showed."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    start = time.monotonic()
    await page.locator(".st-key-train_start button").click()
    done = page.get_by_test_id("stProgress").filter(has_text="— done")
    failed = page.get_by_test_id("stException")  # a traceback on the page: no use waiting for "done"
    try:
        await done.or_(failed).first.wait_for(timeout=WAIT_MS)
    except PlaywrightTimeout:
        raise RunNeverDone(await _evidence(page, name, time.monotonic() - start)) from None
    if await failed.count():
        raise RunNeverDone(await _evidence(page, name, time.monotonic() - start, "showed a traceback"))
    return time.monotonic() - start


async def _evidence(page, name: str, seconds: float, what: str = "did not say '— done'") -> str:
    """Save what a stuck page shows; the message for the error."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot, text = ARTIFACTS / f"{name}.png", ARTIFACTS / f"{name}.txt"
    progress = "(none)"
    with contextlib.suppress(Exception):
        await page.screenshot(path=str(shot), full_page=True)
    with contextlib.suppress(Exception):
        bars = page.get_by_test_id("stProgress")
        progress = " | ".join(await bars.all_inner_texts()) or "(no progress bar)"
    with contextlib.suppress(Exception):
        state = await page.locator("[data-testid='stApp']").get_attribute("data-test-script-state", timeout=5000)
        body = await page.inner_text("body", timeout=5000)
        text.write_text(f"script state: {state}\nprogress: {progress}\n\n{body}")
    return (
        f"{name}: the page {what} within {seconds:.0f} s; its progress bar read {progress!r}. "
        f"Screenshot {shot}, page text {text}, server log {ARTIFACTS / 'server.log'}"
    )


@dataclass
class Classroom:
    solo: float  # seconds of the solo run (the median of SOLO_RUNS)
    solo_server_cpu: float  # its server CPU seconds
    solo_cpu: float  # its CPU seconds, server and browsers
    class_cpu: float  # CPU seconds per run while the N ran, server and browsers
    class_server_cpu: float  # the server's share of it
    load: float  # 1-minute load average before the benchmark started (other work on the machine)
    times: list[float]  # each concurrent run's seconds


async def classroom(url: str, pid: int, students: int, epochs: int | None) -> Classroom:
    from playwright.async_api import async_playwright

    load = os.getloadavg()[0]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        try:
            context, page = await open_train(browser, url, epochs)
            await train(page, "warm-up")  # first imports, first figures
            await page.reload()
            await context.close()
            solos = []
            for _ in range(SOLO_RUNS):
                context, page = await open_train(browser, url, epochs)
                server, every = cpu_seconds(pid), tree_cpu_seconds(os.getpid())
                seconds = await train(page, "solo")
                solos.append((seconds, cpu_seconds(pid) - server, tree_cpu_seconds(os.getpid()) - every))
                await context.close()
            solo, solo_server_cpu, solo_cpu = sorted(solos)[SOLO_RUNS // 2]
            opened = await asyncio.gather(*(open_train(browser, url, epochs) for _ in range(students)))
            server, every = cpu_seconds(pid), tree_cpu_seconds(os.getpid())
            times = await asyncio.gather(*(train(page, f"student{i}") for i, (_, page) in enumerate(opened)))
            class_cpu = (tree_cpu_seconds(os.getpid()) - every) / students
            class_server_cpu = (cpu_seconds(pid) - server) / students
            for context, _ in opened:
                await context.close()
        finally:
            await browser.close()
    return Classroom(solo, solo_server_cpu, solo_cpu, class_cpu, class_server_cpu, load, list(times))


def bench_classroom(quick: bool) -> Iterator[object]:
    from .cases import Row

    students = 8
    if quick or not Path(CHROMIUM).exists():  # a server and 9 browsers take minutes: `make bench` only
        why = "run by make bench" if quick else "chromium missing"
        yield Row("classroom training", f"{students} browsers train tied_moons at once", why, "", None, "≤ 4", None)
        return
    log = ARTIFACTS / "server.log"
    with server(log) as (url, pid):
        try:
            c = asyncio.run(classroom(url, pid, students, None))  # the preset's own settings
        except RunNeverDone as e:
            tail = log.read_text(errors="replace")[-3000:]
            raise RunNeverDone(f"{e}\nserver log, last lines:\n{tail}") from None
    worst = max(c.times)
    ratio = worst / c.solo
    # no schedule beats the machine: the class's CPU seconds spread over every core, against the solo time
    floor = students * c.class_cpu / (os.cpu_count() or 1) / c.solo
    yield Row(
        "classroom training",
        f"{students} browsers train tied_moons at once vs 1 (browsers on the same machine, load average "
        f"{c.load:.1f} before). CPU per run, server + browser: {c.solo_cpu:.2f} s alone ({c.solo_server_cpu:.2f} s "
        f"server), {c.class_cpu:.2f} s in the class ({c.class_server_cpu:.2f} s server): on {os.cpu_count()} cores "
        f"no run order ends the class before {floor:.1f}x the solo time",
        f"slowest {worst:.1f} s (each: {', '.join(f'{t:.1f}' for t in sorted(c.times))} s)",
        f"{c.solo:.1f} s",
        ratio,
        "≤ 4",
        ratio <= 4,
    )
