"""The Import tab in a real browser: paste the book's tied network as code, see its shared weights drawn, use it."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from ..snippets import CHAPTER
from .conftest import WAIT_MS, no_errors, wait_idle
from .test_design_browser import press


def test_paste_the_tied_network_and_see_the_shared_weights_node(page: Page, app_url: str) -> None:
    page.goto(app_url)  # the Design page is the start page
    wait_idle(page)
    page.get_by_role("tab", name="Import").click()
    box = page.locator(".st-key-import_code textarea")
    expect(box).to_be_visible(timeout=WAIT_MS)
    box.fill(CHAPTER["tied"])  # as pasted from the book: no imports, prints and all
    box.press("Control+Enter")
    wait_idle(page)
    press(page, "import_read")
    found = page.locator(".st-key-import_use_box svg g.node text")
    expect(found.filter(has_text="shared weights 'shared'")).to_be_visible(timeout=WAIT_MS)
    labels = found.all_text_contents()
    assert labels.count("shared 'shared'") == 2, labels  # the one layer at both of its uses
    expect(page.locator(".st-key-import_use_box")).to_contain_text("never run")

    press(page, "import_use")
    wait_idle(page)
    expect(page.get_by_text("Imported 'net'", exact=False).first).to_be_visible(timeout=WAIT_MS)
    preview = page.locator(".st-key-graph svg g.node text", has_text="shared weights 'shared'")
    expect(preview).to_be_visible(timeout=WAIT_MS)  # now the session's design: the preview draws it too
    no_errors(page)


def test_an_import_that_does_not_build_is_explained_on_the_import_tab_which_stays(page: Page, app_url: str) -> None:
    page.goto(app_url)
    wait_idle(page)
    page.get_by_role("tab", name="Import").click()
    box = page.locator(".st-key-import_code textarea")
    expect(box).to_be_visible(timeout=WAIT_MS)
    box.fill("net = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(100, 10))")
    box.press("Control+Enter")
    wait_idle(page)
    press(page, "import_read")
    offer = page.locator(".st-key-import_use_box")
    expect(offer).to_contain_text("This design does not build", timeout=WAIT_MS)
    expect(offer).to_contain_text("layers[2] Linear: expects 100 input features, gets 256")

    press(page, "import_use")  # "Use it anyway, to fix it"
    wait_idle(page)
    expect(page.get_by_text("which does not build", exact=False).first).to_be_visible(timeout=WAIT_MS)
    # the person stays where they were: the Import tab, its explanation in view (a message above the tabs
    # used to shift them, and the browser fell back to the first tab)
    expect(page.get_by_role("tab", name="Import")).to_have_attribute("aria-selected", "true")
    expect(offer).to_be_visible()
