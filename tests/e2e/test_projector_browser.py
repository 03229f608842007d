"""The app on a projector and to a screen reader (issue 13, defect 9), in Chromium.

A projector at 1280×800 with the browser at 150 % zoom shows 853×533 CSS pixels (a small laptop screen the
same): the Lessons step's action must be on the first screen and its Previous / Next buttons whole; inline code
must be readable; and every button must have a name a screen reader can say ("Move up", not "arrow_upward").
"""

from __future__ import annotations

import contextlib
import re

import pytest
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

import builder
from builder import share as share_links
from builder.lessons import LESSONS
from ui.navigation import PAGES

from .conftest import WAIT_MS, no_errors, wait_idle

PROJECTOR = {"width": 853, "height": 533}  # 1280×800 at 150 %


def button_names(page: Page) -> list[str | None]:
    """The accessible name of every button in the page's main part (None: a button without one)."""
    snapshot = page.get_by_test_id("stMain").aria_snapshot()
    names: list[str | None] = []
    for m in re.finditer(r'^\s*- button(?: "((?:[^"\\]|\\.)*)")?', snapshot, re.M):
        names.append(m.group(1))
    return names


def icon_words(page: Page) -> set[str]:
    """The ligature words of the Material icons drawn in the main part ("arrow_upward", "edit", ...)."""
    return {t.strip() for t in page.get_by_test_id("stMain").locator("[translate='no']").all_text_contents()}


def assert_buttons_named(page: Page, where: str) -> int:
    names, icons = button_names(page), icon_words(page)
    assert names, f"{where}: no buttons found"
    unnamed = [n for n in names if not n or n.endswith(" icon") or n in icons]
    assert not unnamed, f"{where}: buttons a screen reader cannot name: {unnamed}"
    return len(names)


def open_design(page: Page, url: str, example: str) -> None:
    page.goto(f"{url}/?{share_links.PARAM}={share_links.encode(builder.load_example(example))}")
    wait_idle(page)
    expect(page.locator(".st-key-row_0")).to_be_visible(timeout=WAIT_MS)


def test_every_button_has_a_name_a_screen_reader_can_say(page: Page, app_url: str) -> None:
    page.goto(app_url)
    wait_idle(page)
    counted = 0
    for key, info in PAGES.items():
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=info.title, exact=True).click()
        wait_idle(page)
        expect(page.get_by_role("heading", name=info.title, level=1)).to_be_visible(timeout=WAIT_MS)
        wait_idle(page)
        counted += assert_buttons_named(page, key)
    # the Design page's icon buttons: rows (edit, fold a block), and a flow's steps and branches (inception)
    open_design(page, app_url, "inception")
    expect(page.get_by_role("button", name="Edit").first).to_be_visible(timeout=WAIT_MS)
    page.get_by_test_id("stExpander").filter(has_text="Flow of the network").locator("summary").click()
    expect(page.get_by_role("button", name="Move this branch right").first).to_be_visible(timeout=WAIT_MS)
    counted += assert_buttons_named(page, "design: inception, its flow open")
    page.locator("[class*='st-key-edit_']").first.get_by_role("button").click()
    wait_idle(page)
    counted += assert_buttons_named(page, "design: inception, a row open")
    open_design(page, app_url, "resnet18")
    expect(page.get_by_role("button", name=re.compile(r"^(Unfold|Fold) block$")).first).to_be_visible(timeout=WAIT_MS)
    counted += assert_buttons_named(page, "design: resnet18")
    assert counted > 20
    no_errors(page)


@pytest.fixture
def projector(browser: Browser) -> Page:
    """A page as a projector at 1280×800, 150 % zoom, shows it."""
    context = browser.new_context(viewport=PROJECTOR, device_scale_factor=1.5)
    page = context.new_page()
    yield page
    context.close()


def whole(page: Page, key: str) -> None:
    """The button `.st-key-<key>` is on the first screen and its label is not cut ("P." for "Previous")."""
    button = page.locator(f".st-key-{key} button")
    expect(button).to_be_in_viewport(ratio=1.0)
    label = button.locator("[data-testid='stMarkdownContainer']")
    cut = label.evaluate(
        "e => e.scrollWidth > e.clientWidth + 1 || e.querySelector('p').scrollWidth > e.clientWidth + 1"
    )
    assert not cut, f"{key}: its label is cut to {label.inner_text()!r}"


# The width a text takes in an element's font, and the room the element gives it (its content box).
_TEXT_ROOM = """(e, text) => {
  const s = getComputedStyle(e), c = document.createElement("canvas").getContext("2d");
  c.font = s.font;
  return [c.measureText(text).width, e.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight)];
}"""


def readable_step(page: Page, start: str) -> None:
    """The step list shows at least `start` ("8/13 · Tied"): the step's number and its title's first word, not
    "Step 8 c…" (at 853 px beside the sidebar it once had ~90 px)."""
    box = page.locator(".st-key-lesson_pick input")
    value = box.input_value()
    assert value.startswith(start), (value, start)
    need, room = box.evaluate(_TEXT_ROOM, start)
    assert need <= room, f"the step list shows {room:.0f} px of {value!r}; {start!r} needs {need:.0f}"


def test_lessons_on_a_projector_every_step_shows_its_action_on_the_first_screen(projector: Page, app_url: str) -> None:
    page = projector
    page.goto(f"{app_url}/lessons")
    wait_idle(page)
    expect(page.get_by_role("heading", name="Lessons", level=1)).to_be_visible(timeout=WAIT_MS)
    for i, step in enumerate(LESSONS):
        expect(page.get_by_role("heading", name=f"{step.section} · {step.title}")).to_be_visible(timeout=WAIT_MS)
        wait_idle(page)
        whole(page, "lesson_prev")
        whole(page, "lesson_next")
        readable_step(page, f"{i + 1}/{len(LESSONS)} · {step.title.split()[0]}")
        expect(page.get_by_role("tab", name="Try it")).to_be_in_viewport(ratio=1.0)
        try_box = page.locator(".st-key-lesson_try")
        box = try_box.bounding_box()
        assert box is not None and box["y"] + 40 <= PROJECTOR["height"], f"step {i + 1}: Try it starts at {box}"
        preset = page.locator(".st-key-lesson_load button, .st-key-lesson_preset [data-testid='stMarkdownContainer']")
        expect(preset.first).to_be_in_viewport(ratio=1.0)
        if i < len(LESSONS) - 1:
            page.locator(".st-key-lesson_next button").click()
    no_errors(page)


def test_inline_code_is_nearly_as_large_as_the_text_around_it(projector: Page, app_url: str) -> None:
    """The Weights page's captions name files and calls in inline code: it was drawn at 0.75 of an already small
    caption (~10 px)."""
    page = projector
    page.goto(f"{app_url}/weights")
    wait_idle(page)
    code = page.get_by_test_id("stCaptionContainer").locator("code").first
    expect(code).to_be_visible(timeout=WAIT_MS)
    sizes = "e => [parseFloat(getComputedStyle(e).fontSize), parseFloat(getComputedStyle(e.parentElement).fontSize)]"
    with contextlib.suppress(PlaywrightTimeout):  # the app's CSS may reach the page a moment after the caption;
        # if it never makes the code large enough, the assertion below says what was measured
        page.wait_for_function(
            "([f, css]) => { const [size, around] = eval(f)(document.querySelector(css));"
            " return size >= 0.85 * around && size >= 12; }",
            arg=[sizes, "[data-testid='stCaptionContainer'] code"],
            timeout=10_000,
        )
    size, around = code.evaluate(sizes)
    assert size >= 0.85 * around and size >= 12, (size, around)


def test_design_toolbar_keeps_to_one_line_on_a_projector(projector: Page, app_url: str) -> None:
    """Undo, Redo, the example picker, Load and Clear: one line at 853 px beside the sidebar (Clear used to
    wrap onto a line of its own); Undo and Redo show their icons there, and keep their names."""
    page = projector
    open_design(page, app_url, "tied")
    keys = ("undo", "redo", "start", "load", "clear")
    wait_idle(page)
    with contextlib.suppress(PlaywrightTimeout):  # a loaded machine may take a while to settle the page
        page.wait_for_function(
            "keys => { const b = keys.map(k => document.querySelector('.st-key-' + k).getBoundingClientRect());"
            " return Math.max(...b.map(r => r.top)) < Math.min(...b.map(r => r.bottom)); }",
            arg=list(keys),
            timeout=30_000,
        )
    boxes = [page.locator(f".st-key-{k}").bounding_box() for k in keys]
    assert all(b is not None for b in boxes), boxes
    tops, bottoms = [b["y"] for b in boxes], [b["y"] + b["height"] for b in boxes]  # type: ignore[index]
    assert max(tops) < min(bottoms), boxes  # one line: every box spans a common height
    right = max(b["x"] + b["width"] for b in boxes)  # type: ignore[index]
    assert right <= PROJECTOR["width"], boxes
    for name in ("Undo", "Redo", "Load", "Clear"):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()


def test_dry_run_graphs_toolbar_leaves_their_captions_readable(projector: Page, app_url: str) -> None:
    """On Inspect's dry run, a graph's fullscreen button (shown on hover) used to cover the end of the caption
    above it at 150 %."""
    page = projector
    page.goto(f"{app_url}/inspect?{share_links.PARAM}={share_links.encode(builder.load_example('lazy_mlp'))}")
    wait_idle(page)
    page.get_by_text("Show the dry run", exact=False).click()
    wait_idle(page)
    for key in ("graph_before", "graph_after"):
        graph = page.locator(f".st-key-{key}")
        drawing = graph.locator("svg[width$='pt']")  # graphviz's drawing (the toolbar's icons are svg too)
        expect(drawing).to_be_visible(timeout=WAIT_MS)
        drawing.scroll_into_view_if_needed()
        drawing.hover()
        toolbar = graph.get_by_test_id("stElementToolbar")
        expect(toolbar.get_by_role("button").first).to_be_visible(timeout=WAIT_MS)
        said = "As constructed" if key == "graph_before" else "One forward pass"
        caption = page.locator(".st-key-dry_run").get_by_test_id("stCaptionContainer").filter(has_text=said)
        t, c = toolbar.bounding_box(), caption.bounding_box()
        assert t is not None and c is not None
        apart = t["y"] >= c["y"] + c["height"] or t["x"] >= c["x"] + c["width"] or t["x"] + t["width"] <= c["x"]
        assert apart, f"{key}: the toolbar {t} covers the caption {c}"
    no_errors(page)
