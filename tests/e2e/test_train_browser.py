"""The Train page in a real browser: a few epochs train, the curves are drawn; a long run stops on Stop."""

from __future__ import annotations

import re

import torch
from playwright.sync_api import Locator, Page, expect

from .conftest import WAIT_MS, no_errors, wait_idle


def open_train(page: Page, app_url: str) -> None:
    page.goto(app_url)
    wait_idle(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
    wait_idle(page)
    expect(page.get_by_role("heading", name="Train", level=1)).to_be_visible(timeout=WAIT_MS)


def set_number(page: Page, key: str, value: int) -> None:
    box = page.locator(f".st-key-{key} input")
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def stop_button(page: Page) -> Locator:
    # a button with help is drawn twice (one copy measures its width), so find it by its role
    return page.locator(".st-key-train_stop").get_by_role("button", name="Stop")


def download_button(page: Page) -> Locator:
    return page.locator(".st-key-train_download").get_by_role("button", name="Download trained weights (.params)")


def progress_text(page: Page) -> Locator:
    return page.get_by_test_id("stProgress")


def test_train_a_few_epochs_draws_the_curves_then_stop_a_long_run(page: Page, app_url: str) -> None:
    boundaries: list[int] = []  # sizes of the messages that carry a decision boundary figure
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived",
            lambda f: (
                boundaries.append(len(f))
                if b"Decision boundary" in (f if isinstance(f, bytes) else f.encode())
                else None
            ),
        ),
    )
    open_train(page, app_url)
    expect(page.locator(".st-key-train_start button")).to_be_visible(timeout=WAIT_MS)  # drawn after the fit check
    if page.locator(".st-key-train_use_example").count():  # the session's design takes other inputs
        page.locator(".st-key-train_use_example").get_by_role("button").click()
        wait_idle(page)
    expect(page.get_by_text("Design tied_moons")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(".st-key-train_preview .js-plotly-plot svg.main-svg").first).to_be_visible(timeout=WAIT_MS)

    set_number(page, "train_epochs", 5)
    boundaries.clear()
    page.locator(".st-key-train_start button").click()
    expect(progress_text(page)).to_contain_text("Epoch 5 of 5 — done", timeout=WAIT_MS)
    wait_idle(page)
    page.wait_for_timeout(1500)  # a live fragment would rerun by now
    # a run this short ends in the page's first slice: its figures come once (they came twice, the second time
    # from a fragment rerun the browser asked for before it heard that the run was over: issue 13, defect 5)
    assert len(boundaries) == 1, boundaries
    # and no element of the page fades while it reruns (an animation per element, costly without a GPU)
    transitions = page.locator("[data-testid='stElementContainer']").evaluate_all(
        "els => els.map(e => getComputedStyle(e).transitionProperty)"
    )
    assert set(transitions) <= {"none"}, set(transitions)
    curves = page.locator(".st-key-train_curves .js-plotly-plot")
    expect(curves.locator("svg.main-svg").first).to_be_visible(timeout=WAIT_MS)
    # loss and accuracy, train and validation: four drawn lines, each through the five epochs. (The validation
    # lines also show that the settings drawn off screen kept their values: a widget mounted late once started
    # from its minimum, a validation share of 0.)
    lines = curves.locator("g.scatterlayer g.trace path.js-line")
    expect(lines).to_have_count(4, timeout=WAIT_MS)
    assert all(len(d.split("L")) == 5 for d in (lines.nth(i).get_attribute("d") for i in range(4)))
    expect(page.locator(".st-key-train_boundary .js-plotly-plot g.hm image")).to_have_count(1, timeout=WAIT_MS)
    wait_idle(page)
    with page.expect_download(timeout=WAIT_MS) as download:
        download_button(page).click()
    assert download.value.suggested_filename == "tied_moons.params"
    state = torch.load(download.value.path(), weights_only=True)
    assert torch.equal(state["2.weight"], state["4.weight"]) and state["6.weight"].shape == (2, 16)
    no_errors(page)

    # a long run: the curves grow while it trains, and Stop ends it keeping the epochs done
    set_number(page, "train_epochs", 5000)
    page.locator(".st-key-train_start button").click()
    expect(progress_text(page)).to_contain_text("training…", timeout=WAIT_MS)
    expect(stop_button(page)).to_be_enabled(timeout=WAIT_MS)
    train_loss = curves.locator("g.scatterlayer g.trace path.js-line").first
    expect(train_loss).to_be_visible(timeout=WAIT_MS)
    drawn = len(train_loss.get_attribute("d").split("L"))
    for _ in range(60):  # the live fragment reruns itself twice a second; the curve grows while it trains
        page.wait_for_timeout(500)
        if len(train_loss.get_attribute("d").split("L")) > drawn:
            break
    else:
        raise AssertionError(f"the loss curve did not grow past {drawn} points in 30 s")
    stop_button(page).click()
    expect(progress_text(page)).to_contain_text(re.compile(r"stopped (after|during) epoch"), timeout=WAIT_MS)
    wait_idle(page)
    text = progress_text(page).inner_text()
    epochs_done = int(text.split("Epoch ")[1].split(" ")[0])
    assert 1 <= epochs_done < 5000, text
    page.wait_for_timeout(1500)
    assert progress_text(page).inner_text() == text  # nothing trains after Stop
    expect(download_button(page)).to_be_visible(timeout=WAIT_MS)
    no_errors(page)
