"""The Design page in a real browser: build a residual block by clicking, add its shortcut, and find the skip edge
and the merge node in the preview's SVG."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import WAIT_MS, no_errors, wait_idle
from .test_design_browser import press


def test_build_a_residual_block_by_clicking_and_see_skip_and_merge(page: Page, app_url: str) -> None:
    page.goto(app_url)  # the Design page: Linear(20 → 256), ReLU, Linear(256 → 10)
    wait_idle(page)
    expect(page.locator(".st-key-row_2")).to_be_visible(timeout=WAIT_MS)
    page.locator(".st-key-sel_1 input").check(force=True)  # the ReLU: out = relu(x) + x, (2, 256)
    wait_idle(page)
    press(page, "residual")
    expect(page.locator(".st-key-row_1")).to_contain_text("Residual", timeout=WAIT_MS)
    expect(page.locator(".st-key-row_1")).to_contain_text("| skip] +")
    wait_idle(page)
    expect(page.locator(".st-key-row_1")).to_contain_text("(2, 256)")  # it builds

    graph = page.locator(".st-key-graph svg")
    expect(graph.locator("g.node title", has_text="merge").first).to_be_attached(timeout=WAIT_MS)
    merge_labels = graph.locator("g.node", has=page.locator("title", has_text="merge")).all_text_contents()
    assert any("+" in t for t in merge_labels), merge_labels
    skip = graph.locator("g.edge", has=page.locator("text", has_text="skip"))
    expect(skip).to_have_count(1)
    assert skip.locator("path[stroke-dasharray]").count() == 1  # drawn dashed

    # the block's editor is open: a shortcut Linear(256 → 256) in the skip, drawn where the skip was
    layer = page.locator(".st-key-flow_layer_0 input")
    expect(layer).to_be_visible(timeout=WAIT_MS)
    layer.fill('{"type": "Linear", "in_features": 256, "out_features": 256, "name": "short"}')
    layer.press("Enter")
    wait_idle(page)
    press(page, "add_to_branch_0")
    expect(page.locator(".st-key-row_1")).to_contain_text("| short] +", timeout=WAIT_MS)
    wait_idle(page)
    expect(graph.locator("g.node text", has_text="short").first).to_be_visible(timeout=WAIT_MS)
    expect(graph.locator("g.edge", has=page.locator("text", has_text="skip"))).to_have_count(0)
    no_errors(page)
