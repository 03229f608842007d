"""The Inspect page in a real browser: the example's layers are drawn in the graph SVG."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import WAIT_MS, no_errors, wait_idle


def graph_labels(page: Page) -> list[str]:
    nodes = page.locator(".st-key-graph svg g.node text")
    expect(nodes.first).to_be_visible(timeout=WAIT_MS)
    return nodes.all_text_contents()


def test_default_example_is_drawn(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/inspect")  # Design is the start page
    wait_idle(page)
    labels = graph_labels(page)
    assert "0 · Linear" in labels and "20 → 256" in labels
    assert "2 · Linear" in labels and "256 → 10" in labels
    assert "1 · ReLU" in labels
    no_errors(page)


def test_picking_the_tied_example_draws_one_weights_node(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/inspect")  # Design is the start page
    wait_idle(page)
    graph_labels(page)  # the first run has finished drawing (a rerun would close the list)
    page.locator(".st-key-example").click()
    page.get_by_role("option", name="tied", exact=True).click()
    wait_idle(page)
    expect(page.locator(".st-key-graph svg g.node text", has_text="4 · Linear")).to_be_visible(timeout=WAIT_MS)
    labels = graph_labels(page)
    assert labels.count("shared 'shared'") == 2  # the same layer drawn at both of its uses
    assert "shared weights 'shared'" in labels and "used 2×" in labels
    # the dashed links from the one weights node to each use
    assert page.locator(".st-key-graph svg g.edge title", has_text="weights_shared").count() == 2
    no_errors(page)


def test_resnet_opens_folded_and_an_expanded_block_shows_its_skip_edge_and_add_node(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/inspect")
    wait_idle(page)
    graph_labels(page)
    page.locator(".st-key-example").click()
    page.get_by_role("option", name="resnet18", exact=True).click()
    wait_idle(page)
    folded = page.locator(".st-key-graph svg g.node text", has_text="0 · Residual")
    expect(folded.first).to_be_visible(timeout=WAIT_MS)  # depth 2: each residual block one box
    assert "74,112 parameters" in graph_labels(page)
    assert page.locator(".st-key-graph svg g.edge text", has_text="skip").count() == 0
    page.locator(".st-key-graph_expand input").click()
    page.keyboard.type("b2.0")  # the list filters to b2.0; Enter picks it
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    wait_idle(page)
    expect(page.locator(".st-key-graph svg g.edge text", has_text="skip")).to_have_count(1, timeout=WAIT_MS)
    labels = graph_labels(page)
    assert "conv1 · Conv2d" in labels  # what torch built from the LazyConv2d and "+" in labels and "relu" in labels
    no_errors(page)
