"""Issue 13, defect 3: a design that does not fit, applied from the JSON tab, became the current draft with its
error hidden on another tab, and the other pages silently showed the previous design. Now the JSON tab says
what is wrong, and every page that shows the session's design says when it is the last design that built
(`ui.last_built`), with a link to the Design page."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from builder import load_example
from ui import state

from .conftest import open_page

# Linear(20, 256) -> Linear(100, 10): valid JSON, but the second layer expects 100 features and gets 256.
MISFIT = json.dumps(
    {
        "format": 2,
        "name": "misfit",
        "input": {"shape": [2, 20]},
        "layers": [
            {"type": "Linear", "in_features": 20, "out_features": 256},
            {"type": "Linear", "in_features": 100, "out_features": 10},
        ],
    }
)
BANNER = "This page shows the last design that built"
# Every page that shows the session's design (the Design page shows the draft itself).
PAGES = ["inspect", "parameters", "weights", "gradients", "train", "lessons", "library"]


def ok(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    return at


def apply_misfit(at: AppTest) -> AppTest:
    at.text_area(key=state.DESIGN_JSON.name).input(MISFIT)
    return ok(at.button(key="json_apply").click().run())


def banner(at: AppTest) -> list[str]:
    return [w.value for w in at.warning if BANNER in w.value]


def test_the_json_tab_says_why_the_applied_design_does_not_build(app: AppTest) -> None:
    before = app.session_state[state.DESIGN.name]
    at = apply_misfit(app)
    assert at.session_state[state.DESIGN_HISTORY.name].present.name == "misfit"  # the draft holds the edit
    assert at.session_state[state.DESIGN.name] == before  # the session keeps the design that built
    json_tab = at.tabs[1]
    assert json_tab.label == "JSON"
    said = [e.value for e in json_tab.error]
    assert any("layers[1]" in e and "expects 100 input features, gets 256" in e for e in said), said


@pytest.mark.parametrize("page", PAGES)
def test_every_page_says_it_shows_the_last_design_that_built(app: AppTest, page: str) -> None:
    at = open_page(apply_misfit(app), page)
    said = banner(at)
    assert len(said) == 1, [w.value for w in at.warning]
    assert "the Design page's draft does not build" in said[0]
    assert "layers[1]" in said[0] and "expects 100 input features, gets 256" in said[0]
    assert "sequential_mlp" in said[0]  # which design the page shows
    links = [link for link in at.get("page_link") if link.proto.page == "design"]
    assert links, "no link to the Design page"


def test_no_banner_once_the_draft_builds_again_or_another_design_is_chosen(app: AppTest) -> None:
    at = open_page(apply_misfit(app), "inspect")
    assert banner(at)
    open_page(at, "design")
    ok(at.button(key="undo").click().run())
    assert not banner(open_page(at, "inspect"))  # the draft is the session's design again
    open_page(at, "design")
    apply_misfit(at)
    assert banner(open_page(at, "weights"))
    open_page(at, "inspect")
    ok(at.selectbox(key=state.EXAMPLE.name).select("tied").run())  # a design chosen elsewhere replaces the draft
    assert at.session_state[state.DESIGN.name] == load_example("tied") and not banner(at)
    assert not banner(open_page(at, "weights"))


def test_an_emptied_draft_is_said_too(app: AppTest) -> None:
    ok(app.button(key="clear").click().run())
    ok(app.button(key="clear_yes").click().run())
    said = banner(open_page(app, "parameters"))
    assert said and "empty" in said[0]


def test_no_banner_when_the_draft_is_the_design(app: AppTest) -> None:
    for page in PAGES:
        assert not banner(open_page(app, page)), page
