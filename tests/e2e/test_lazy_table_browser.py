"""Issue 13, defect 7, in a real browser at 1280 px and 150 % (853 px wide): the table of lazy layers ("in_features=256
inferred") fits its box; its last column was cut off, the grid scrolled sideways."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from .conftest import WAIT_MS, wait_idle
from .test_last_built_browser import shot

# The table's scrolling area: wider content than its box means a column is cut off.
OVERFLOW = """key => [...document.querySelectorAll(`.st-key-${key} [data-testid=stDataFrame] .dvn-scroller`)]
    .map(e => e.scrollWidth - e.clientWidth)"""


def test_the_lazy_layers_table_fits_on_lessons_and_inspect(browser: Browser, app_url: str) -> None:
    for width, scale in ((1280, 1), (853, 1.5)):
        page = browser.new_page(viewport={"width": width, "height": 800}, device_scale_factor=scale)
        page.goto(f"{app_url}/lessons")
        wait_idle(page)
        expect(page.get_by_role("heading", name="Lessons", level=1)).to_be_visible(timeout=WAIT_MS)
        page.wait_for_timeout(1000)  # a deep link reruns once through app.py
        wait_idle(page)
        page.locator(".st-key-lesson_pick input").click()
        page.keyboard.type("Lazy")
        page.get_by_role("option").filter(has_text="Lazy initialization").first.click()
        picked = page.locator(".st-key-lesson_pick input")
        expect(picked).to_have_value(re.compile("Lazy initialization"), timeout=WAIT_MS)
        wait_idle(page)  # choosing the step loads its preset, lazy_mlp
        table = page.locator(".st-key-lesson_try").get_by_test_id("stDataFrame")
        expect(table).to_be_visible(timeout=WAIT_MS)
        table.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        shot(page, f"lesson-lazy-{width}")
        cut = page.evaluate(OVERFLOW, "lesson_try")
        assert cut and all(extra <= 1 for extra in cut), f"{width} px: the table is {cut} px wider than its box"

        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Inspect").click()
        wait_idle(page)
        page.locator(".st-key-inspect_dry_run").get_by_text("Show the dry run").click()
        wait_idle(page)
        table = page.locator(".st-key-dry_run").get_by_test_id("stDataFrame")
        expect(table).to_be_visible(timeout=WAIT_MS)
        table.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        shot(page, f"inspect-lazy-{width}")
        cut = page.evaluate(OVERFLOW, "dry_run")
        assert cut and all(extra <= 1 for extra in cut), f"{width} px: the table is {cut} px wider than its box"
        page.close()
