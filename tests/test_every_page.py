"""Every example opens on every page without an exception or an error box (AppTest).

The pages are thin views of one design; a new kind of design (flows, recurrent layers) must reach all of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder import example_names
from ui.navigation import PAGES

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", example_names())
def test_every_example_opens_on_every_page(name: str) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.selectbox(key="start").select(name).run()
    at.button(key="load").click().run()
    assert not at.exception, at.exception
    for key, page in PAGES.items():
        at.switch_page(page.file).run()
        assert not at.exception, (key, at.exception)
        assert not at.error, (key, [e.value for e in at.error])
