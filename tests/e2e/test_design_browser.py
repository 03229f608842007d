"""The Design page in a real browser: build the chapter's tied network by clicking, see its uses drawn."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import WAIT_MS, no_errors, wait_idle


def press(page: Page, key: str) -> None:
    """Click the button with `key` (a button with a tooltip is drawn twice; the first is the real one)."""
    page.locator(f".st-key-{key} button").first.click()


def rows(page: Page) -> int:
    return page.locator("[class*='st-key-row_']").count()


def pick(page: Page, key: str, option: str) -> None:
    """Choose `option` in the selectbox with `key`, searching as a person would."""
    page.locator(f".st-key-{key}").click()
    page.keyboard.type(option.split(" ")[0] if not option.startswith("↺") else "shared")
    page.get_by_role("option", name=option, exact=True).click()
    expect(page.locator(f".st-key-{key} input")).to_have_value(option, timeout=WAIT_MS)
    wait_idle(page)


def add(page: Page, option: str, **args: str) -> None:
    """Add a layer at the end; `args` fill its form (input sizes are pre-filled when they are known)."""
    before = rows(page)
    if page.locator(".st-key-add_type input").input_value() != option:
        pick(page, "add_type", option)
    for name, value in args.items():
        box = page.locator(f".st-key-new_{name} input")
        box.fill(value)
    press(page, "add")
    expect(page.locator(f".st-key-row_{before}")).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)


def test_build_the_tied_network_by_clicking_and_see_both_uses_in_the_graph(page: Page, app_url: str) -> None:
    page.goto(app_url)  # the Design page is the start page
    wait_idle(page)
    expect(page.locator(".st-key-row_0")).to_be_visible(timeout=WAIT_MS)

    press(page, "clear")
    press(page, "clear_yes")
    expect(page.locator(".st-key-row_0")).to_have_count(0, timeout=WAIT_MS)
    wait_idle(page)

    shape = page.locator(".st-key-input_shape input")
    shape.fill("2, 4")
    shape.press("Enter")
    expect(page.locator(".st-key-graph")).to_have_count(0)  # still empty: nothing drawn
    wait_idle(page)

    add(page, "Linear", in_features="4", out_features="8")
    add(page, "ReLU · Activation")
    add(page, "Linear", out_features="8")  # in_features pre-filled: the 8 it receives
    press(page, "edit_2")
    expect(page.locator(".st-key-share_name input")).to_be_visible(timeout=WAIT_MS)
    page.locator(".st-key-share_name input").fill("shared")
    press(page, "share")
    expect(page.locator(".st-key-row_2")).to_contain_text("shared 'shared'", timeout=WAIT_MS)
    wait_idle(page)
    add(page, "ReLU · Activation")
    add(page, "↺ another use of shared 'shared' (same weights)")
    add(page, "ReLU · Activation")
    add(page, "Linear", out_features="1")

    expect(page.locator(".st-key-row_6")).to_contain_text("8 → 1")
    expect(page.locator(".st-key-graph svg g.node text", has_text="6 · Linear")).to_be_visible(timeout=WAIT_MS)
    labels = page.locator(".st-key-graph svg g.node text").all_text_contents()
    assert labels.count("shared 'shared'") == 2, labels  # the one layer drawn at each of its uses
    assert "shared weights 'shared'" in labels and "used 2×" in labels
    assert page.locator(".st-key-graph svg g.edge title", has_text="weights_shared").count() == 2
    assert "→ (2, 1)" in labels
    expect(page.get_by_text("121", exact=False).first).to_be_visible()
    no_errors(page)

    # the JSON view holds the same network as the chapter's example
    page.get_by_role("tab", name="JSON").click()
    text = page.locator(".st-key-json textarea").input_value()
    assert '"shared": "shared"' in text and '"in_features": 4' in text


def test_widgets_show_the_design_after_undo_and_group(page: Page, app_url: str) -> None:
    """Boxes the browser already shows follow the design (not what was typed or ticked before the edit)."""
    page.goto(app_url)
    wait_idle(page)
    expect(page.locator(".st-key-row_2")).to_be_visible(timeout=WAIT_MS)
    shape = page.locator(".st-key-input_shape input")
    shape.fill("5, 20")
    shape.press("Enter")
    expect(page.locator(".st-key-row_2")).to_contain_text("(5, 10)", timeout=WAIT_MS)
    press(page, "undo")
    expect(page.locator(".st-key-row_2")).to_contain_text("(2, 10)", timeout=WAIT_MS)
    expect(shape).to_have_value("2, 20")

    page.locator(".st-key-sel_0 input").check(force=True)
    wait_idle(page)
    page.locator(".st-key-sel_1 input").check(force=True)
    wait_idle(page)
    press(page, "group")
    expect(page.locator(".st-key-row_0_1")).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)
    assert not page.locator(".st-key-sel_0 input").is_checked()  # the selection is not carried over
    expect(page.locator(".st-key-graph svg g.node text", has_text="0 · Linear")).to_be_visible(timeout=WAIT_MS)
    no_errors(page)
