"""Every example opens on every page without an exception or an error box (AppTest).

The pages are thin views of one design; a new kind of design (flows, recurrent layers) must reach all of them.
The HEAVY examples (AlexNet, VGG-11 at 224 x 224: seconds and hundreds of MB each) open on the pages that show
a network; tests/test_chapter8.py holds them against the book's code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder import example_names
from builder.examples import HEAVY
from ui.navigation import PAGES

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", example_names(heavy=False))
def test_every_example_opens_on_every_page(name: str) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.selectbox(key="start").select(name).run()
    at.button(key="load").click().run()
    assert not at.exception, at.exception
    for key, page in PAGES.items():
        at.switch_page(page.file).run()
        assert not at.exception, (key, at.exception)
        assert not at.error, (key, [e.value for e in at.error])


# The pages a big network is opened on to see it: the stack, its shapes and graph, and its weights (downloads
# are made on click, so a 500 MB .params costs nothing until asked for).
HEAVY_PAGES = ("design", "inspect", "weights")


@pytest.mark.parametrize("name", sorted(HEAVY))
def test_heavy_examples_open_on_the_pages_that_show_them(name: str) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    at.selectbox(key="start").select(name).run()
    at.button(key="load").click().run()
    assert not at.exception, at.exception
    for key in HEAVY_PAGES:
        at.switch_page(PAGES[key].file).run()
        assert not at.exception, (key, at.exception)
        assert not at.error, (key, [e.value for e in at.error])
