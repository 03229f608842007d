"""Issue 13, defect 3, in a real browser: JSON whose sizes do not fit, applied on the JSON tab, is said there;
Inspect and Weights say they show the last design that built, and their link leads back to the Design page."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from ..test_last_built import BANNER, MISFIT
from .conftest import WAIT_MS, wait_idle

SHOTS = os.environ.get("BLOCKWORK_SHOTS")  # a folder: also save what the person sees there


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=False)


def test_misfit_json_is_said_on_its_tab_and_every_page_says_what_it_shows(page: Page, app_url: str) -> None:
    page.goto(app_url)
    wait_idle(page)
    page.get_by_role("tab", name="JSON").click()
    box = page.locator(".st-key-json textarea")
    box.fill(MISFIT)
    page.locator(".st-key-json_apply button").first.click()
    wait_idle(page)
    json_panel = page.get_by_role("tabpanel", name="JSON")
    expect(json_panel.get_by_test_id("stAlertContentError")).to_contain_text(
        "expects 100 input features, gets 256", timeout=WAIT_MS
    )
    expect(json_panel.get_by_test_id("stAlertContentError")).to_contain_text("layers[1]")
    json_panel.get_by_test_id("stAlertContentError").scroll_into_view_if_needed()
    shot(page, "json-tab-misfit")

    for title in ("Inspect", "Weights"):
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
        wait_idle(page)
        warning = page.locator(".st-key-last_built").get_by_test_id("stAlertContentWarning")
        expect(warning).to_contain_text(BANNER, timeout=WAIT_MS)
        expect(warning).to_contain_text("layers[1]")
        shot(page, f"{title.lower()}-last-built")

    page.locator(".st-key-last_built").get_by_role("link", name="Fix it on the Design page").click()
    wait_idle(page)
    expect(page.get_by_role("heading", name="Design")).to_be_visible(timeout=WAIT_MS)
    page.locator(".st-key-undo button").first.click()  # back to the design that built: no banner anywhere
    wait_idle(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Inspect").click()
    wait_idle(page)
    expect(page.get_by_role("heading", name="Inspect")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(".st-key-last_built")).to_have_count(0)
