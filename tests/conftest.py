"""Shared fixtures: the repository root, AppTest sessions, the chapter's hand-written networks."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app() -> AppTest:
    """A fresh browser session of the whole app (app.py with st.navigation), already run once."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    """Switch a session to `pages/<page>.py` and run it; fails on any exception."""
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at
