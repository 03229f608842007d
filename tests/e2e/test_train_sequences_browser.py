"""The sequence presets train in a real browser: the LSTM language model on 'delayed copy' and the Tiny
Transformer on 'majority', each picked through the Train page's own suggestion."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import WAIT_MS, no_errors, wait_idle
from .test_train_browser import open_train, progress_text

pytestmark = pytest.mark.browser


def choose_data(page: Page, source: str) -> None:
    page.locator(".st-key-train_source").click()
    page.keyboard.type(source)
    page.get_by_role("option", name=source, exact=True).click()
    wait_idle(page)


@pytest.mark.parametrize(
    ("source", "example", "epochs", "target"),
    [("delayed copy", "lstm_lm", 8, 97.0), ("majority", "transformer_encoder", 5, 90.0)],
)
def test_a_sequence_preset_trains_in_the_browser(
    page: Page, app_url: str, source: str, example: str, epochs: int, target: float
) -> None:
    open_train(page, app_url)
    choose_data(page, source)
    page.locator(".st-key-train_use_example").get_by_role("button").click()
    wait_idle(page)
    expect(page.get_by_text(f"Design {example}")).to_be_visible(timeout=WAIT_MS)
    page.locator(".st-key-train_start button").click()
    expect(progress_text(page)).to_contain_text(f"Epoch {epochs} of {epochs} — done", timeout=4 * WAIT_MS)
    wait_idle(page)
    metric = page.get_by_test_id("stMetric").filter(has_text="accuracy").first
    value = float(re.search(r"([\d.]+)\s*%", metric.inner_text()).group(1))
    assert value >= target, metric.inner_text()
    no_errors(page)
