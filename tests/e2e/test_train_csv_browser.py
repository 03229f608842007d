"""Issue 13, defect 7, in a real browser: after a run, a broken CSV upload says which line is wrong and the
run's results go (the run stays in the runs table); a good file, another target: no widget-key warning in the
server's log."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from ..test_train_csv import GOOD
from .conftest import WAIT_MS, serve, wait_idle
from .test_last_built_browser import shot
from .test_train_browser import open_train, progress_text, set_number


def pick(page: Page, key: str, option: str) -> None:
    page.locator(f".st-key-{key}").click()
    page.keyboard.type(option.split(" ")[0])  # the list filters, as a person searching would
    page.get_by_role("option", name=option, exact=True).click()
    expect(page.locator(f".st-key-{key} input")).to_have_value(option, timeout=WAIT_MS)
    wait_idle(page)


def test_broken_csv_after_a_run_says_the_line_and_hides_the_results(page: Page, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with serve(log) as (url, _proc):
        open_train(page, url)
        if page.locator(".st-key-train_use_example").count():
            page.locator(".st-key-train_use_example").get_by_role("button").click()
            wait_idle(page)
        set_number(page, "train_epochs", 3)
        page.locator(".st-key-train_start button").click()
        expect(progress_text(page)).to_contain_text("Epoch 3 of 3 — done", timeout=WAIT_MS)
        wait_idle(page)
        expect(page.locator(".st-key-train_curves")).to_be_visible()

        pick(page, "train_source", "Upload a CSV file…")
        bad = tmp_path / "broken.csv"
        bad.write_bytes(b"a,b,label\n1,2,x\n3,4,y\n5,6,x,9\n7,8,y\n")
        page.locator(".st-key-train_csv_upload input[type=file]").set_input_files(str(bad))
        error = page.get_by_test_id("stAlertContentError")
        expect(error).to_contain_text("line 4 has 4 values, but the header line names 3 columns", timeout=WAIT_MS)
        expect(error).to_contain_text("broken.csv")
        wait_idle(page)
        expect(page.locator(".st-key-train_curves")).to_have_count(0)  # the last run's results are put away
        expect(page.locator(".st-key-train_start button")).to_be_disabled()
        shot(page, "train-broken-csv")

        good = tmp_path / "good.csv"
        good.write_bytes(GOOD)
        page.locator(".st-key-train_csv_upload input[type=file]").set_input_files(str(good))
        expect(page.locator(".st-key-train_csv_target")).to_be_visible(timeout=WAIT_MS)
        wait_idle(page)
        pick(page, "train_csv_target", "a")  # another target: the features follow
        expect(page.locator(".st-key-train_csv_features")).to_contain_text("label", timeout=WAIT_MS)
        shot(page, "train-good-csv")
    text = log.read_text()
    assert "Session State API" not in text, text
