"""Share links in a real browser: a URL with ?design=... opens that design (drawn on the Inspect page), the
Library page's link round-trips into a new session, and a tampered link shows an error box, not a traceback."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from builder import load_example, share

from .conftest import WAIT_MS, no_errors, wait_idle


def graph_labels(page: Page, has_text: str) -> list[str]:
    expect(page.locator(".st-key-graph svg g.node text", has_text=has_text).first).to_be_visible(timeout=WAIT_MS)
    return page.locator(".st-key-graph svg g.node text").all_text_contents()


def test_a_share_url_opens_its_design_on_the_inspect_page(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/inspect?design={share.encode(load_example('lenet'))}")
    wait_idle(page)
    labels = graph_labels(page, "0 · Conv2d")
    assert "3 · Conv2d" in labels and "11 · Linear" in labels and "84 → 10" in labels
    assert "1 · Sigmoid" in labels and "2 · AvgPool2d" in labels
    no_errors(page)


def test_the_library_link_round_trips_into_a_new_session(page: Page, app_url: str, browser: Browser) -> None:
    page.goto(f"{app_url}/library")
    wait_idle(page)
    page.locator(".st-key-preset_tied button").click()  # load the tied preset
    wait_idle(page)
    expect(page.locator(".st-key-preset_tied button")).to_be_disabled(timeout=WAIT_MS)
    page.get_by_role("tab", name="Share by link").click()
    page.get_by_test_id("stButtonGroup").get_by_text("Inspect", exact=True).click()  # open on the graph
    wait_idle(page)
    code = page.locator(".st-key-share_link code")
    expect(code).to_contain_text("/inspect?design=", timeout=WAIT_MS)
    link = code.inner_text().strip()
    assert link.startswith(app_url)

    other = browser.new_context().new_page()  # another person: a fresh session
    try:
        other.goto(link)
        wait_idle(other)
        labels = graph_labels(other, "shared 'shared'")
        assert labels.count("shared 'shared'") == 2 and "shared weights 'shared'" in labels
        no_errors(other)
    finally:
        other.context.close()


def test_a_tampered_link_shows_an_error_and_the_default_design(page: Page, app_url: str) -> None:
    token = share.encode(load_example("lenet"))
    page.goto(f"{app_url}/inspect?design={token[:-9]}")
    wait_idle(page)
    error = page.get_by_test_id("stAlertContentError")
    expect(error.first).to_contain_text("This share link could not be opened", timeout=WAIT_MS)
    assert page.get_by_test_id("stException").count() == 0
    labels = graph_labels(page, "0 · Linear")
    assert "20 → 256" in labels  # the default design, drawn as usual


def test_a_tampered_deep_link_is_reported_once(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/weights?design=garbage!")  # a page that also initializes the session itself
    wait_idle(page)
    expect(page.get_by_test_id("stAlertContentError").first).to_contain_text("could not be opened", timeout=WAIT_MS)
    expect(page.get_by_role("heading", name="Weights", exact=True)).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)
    assert page.get_by_test_id("stAlertContentError").filter(has_text="share link").count() == 1
    assert page.get_by_test_id("stException").count() == 0
