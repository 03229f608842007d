"""A 300-layer design on the Design page in a real browser: folded blocks, a second page of rows, a layer inside
a folded block edited, and the change seen in its row and in the preview graph (issue 16, item 1)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from builder import Design, share, stack_view

from .conftest import WAIT_MS, no_errors, wait_idle


def blocks_of(n_blocks: int, size: int) -> Design:
    """n_blocks blocks of `size` layers: Linear(8, 8), ReLU, Linear(8, 8), …"""
    lin = {"type": "Linear", "in_features": 8, "out_features": 8}
    inner = [lin if i % 2 == 0 else {"type": "ReLU"} for i in range(size)]
    blocks = [{"type": "Sequential", "layers": inner} for _ in range(n_blocks)]
    return Design.from_dict({"format": 2, "input": {"shape": [2, 8]}, "layers": blocks})


def press(page: Page, key: str) -> None:
    page.locator(f".st-key-{key} button").first.click()
    wait_idle(page)


def test_edit_a_layer_inside_a_folded_block_of_a_300_layer_design(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/?{share.PARAM}={share.encode(blocks_of(30, 10))}")
    wait_idle(page)
    expect(page.locator(".st-key-row_0")).to_be_visible(timeout=WAIT_MS)
    rows = page.locator("[class*='st-key-row_']")
    expect(rows).to_have_count(stack_view.PAGE_SIZE)  # 30 folded blocks: the first page of them
    expect(page.locator(".st-key-row_0")).to_contain_text("10 layers · 360 parameters")

    press(page, "page_next")
    expect(page.locator(".st-key-row_27")).to_be_visible(timeout=WAIT_MS)
    press(page, "fold_27")  # unfold block 27
    expect(page.locator(".st-key-row_27_4")).to_contain_text("4 · Linear", timeout=WAIT_MS)
    press(page, "edit_27_4")
    name = page.locator(".st-key-name input")
    expect(name).to_be_visible(timeout=WAIT_MS)
    name.fill("probe")
    press(page, "apply")

    expect(page.locator(".st-key-row_27_4")).to_contain_text("probe · Linear", timeout=WAIT_MS)
    expect(page.locator(".st-key-row_27_4")).to_contain_text("(2, 8)")
    node = page.locator(".st-key-graph svg g.node text", has_text="probe · Linear")
    expect(node).to_be_visible(timeout=WAIT_MS)  # the preview draws the open block with the new name
    # the other blocks stay folded there, one box each, as in the stack
    expect(page.locator(".st-key-graph svg g.node text", has_text="26 · Sequential")).to_be_visible()
    expect(page.locator(".st-key-graph svg g.node text", has_text="28 · Sequential")).to_be_visible()
    no_errors(page)
