"""A fresh server whose first visitor opens a page's own address (a bookmark, a share link to /weights).

Streamlit starts such a server in its old pages/-folder mode; ui.py switches it off and reruns the page
through app.py. The page must come up whole: navigation, sidebar, no exception, downloads working.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from ui.navigation import PAGES

from .conftest import WAIT_MS, no_errors, serve, wait_idle


@pytest.mark.parametrize("path", ["weights"])
def test_first_visit_to_a_page_address_on_a_fresh_server(page: Page, tmp_path: Path, path: str) -> None:
    with serve(tmp_path / "server.log") as (url, _):
        page.goto(f"{url}/{path}")
        wait_idle(page)
        expect(page.get_by_role("heading", name="Weights", level=1)).to_be_visible(timeout=WAIT_MS)
        expect(page).to_have_title(f"{PAGES[path].title} · Blockwork")  # the page itself, not a blank one
        expect(page.get_by_test_id("stSidebarNav")).to_be_visible()
        expect(page.locator(".st-key-device_select")).to_be_visible()
        no_errors(page)
        with page.expect_download(timeout=WAIT_MS) as info:
            page.locator(".st-key-download_params button").click()
        assert info.value.suggested_filename == "sequential_mlp.params"
