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
