"""The Gradients page and Inspect's dry-run toggle in a real browser: plotly and graphviz actually draw."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import WAIT_MS, no_errors, wait_idle


def open_page(page: Page, app_url: str, title: str) -> None:
    """Open the app at its root (which runs app.py and its st.navigation), then the page from the sidebar."""
    page.goto(app_url)
    wait_idle(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    wait_idle(page)
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible(timeout=WAIT_MS)


def test_gradients_of_the_tied_example_are_plotted(page: Page, app_url: str) -> None:
    open_page(page, app_url, "Gradients")
    page.locator(".st-key-grad_load_tied button").click()
    wait_idle(page)
    expect(page.get_by_text("Shared 'shared' · Linear, used 2× (at 2, 4)")).to_be_visible(timeout=WAIT_MS)

    # the bar chart of every parameter's gradient norm: one bar per parameter (tied tensors once)
    norms = page.locator(".st-key-grad_norms .js-plotly-plot svg.main-svg")
    expect(norms.first).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(".st-key-grad_norms .js-plotly-plot g.point")).to_have_count(6, timeout=WAIT_MS)
    labels = page.locator(".st-key-grad_norms .js-plotly-plot g.ytick text").all_text_contents()
    assert any("2.weight" in t and "shared ×2" in t for t in labels), labels

    # the heatmaps of the shared 8×8 weight: each use, their sum, .grad
    heat = page.locator(".st-key-grad_heat_2_weight .js-plotly-plot")
    expect(heat.locator("svg.main-svg").first).to_be_visible(timeout=WAIT_MS)
    titles = heat.locator("g.annotation text").all_text_contents()
    assert titles[:4] == ["use 1 · at 2", "use 2 · at 4", "sum of the uses", ".grad"], titles
    assert heat.locator("g.hm image").count() == 4  # plotly draws each heatmap as an image
    assert page.locator(".js-plotly-plot svg.main-svg").count() >= 4  # 2 figures, each with 2+ svg layers
    no_errors(page)


def test_inspect_dry_run_toggle_draws_both_states(page: Page, app_url: str) -> None:
    open_page(page, app_url, "Inspect")
    page.locator(".st-key-example").click()
    page.get_by_role("option", name="lazy_mlp", exact=True).click()
    wait_idle(page)
    page.locator(".st-key-inspect_dry_run").get_by_text("Show the dry run").click()
    wait_idle(page)
    before = page.locator(".st-key-graph_before svg g.node text")
    after = page.locator(".st-key-graph_after svg g.node text")
    expect(before.first).to_be_visible(timeout=WAIT_MS)
    expect(after.first).to_be_visible(timeout=WAIT_MS)
    assert before.all_text_contents().count("lazy: size pending") == 2
    assert "? → 256" in before.all_text_contents()
    assert {"lazy: in_features=20 inferred", "lazy: in_features=256 inferred"} <= set(after.all_text_contents())
    assert "20 → 256" in after.all_text_contents()
    no_errors(page)
