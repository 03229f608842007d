"""Say when a page shows the last design that built rather than the Design page's draft.

The Design page edits a draft (`ui.design_draft`); a draft that does not build stays there, highlighted, and
the session keeps its last design that built (`ui.design()`), which every other page shows. Those pages call
`banner()` under their title so that a person who just broke the draft (e.g. by applying JSON whose sizes do
not fit) is not misled into reading the old network as the new one:

    This page shows the last design that built (sequential_mlp); the Design page's draft does not build:
    layers[1] Linear: expects 100 input features, gets 256 (input shape (2, 256)).   [Fix it on the Design page]
"""

from __future__ import annotations

import streamlit as st

from builder import DesignError
from ui import navigation, session, state
from ui.messages import ICONS, error_text

BANNER = "This page shows the last design that built"


def draft_fault() -> str | None:
    """Why the Design page's draft is not the session's design, when the draft was made from it and does not
    build ("it is empty" after Clear); None when the pages show the draft (or it was replaced by a design
    chosen elsewhere, which the Design page takes up as its next draft)."""
    history = state.DESIGN_HISTORY.get()
    current = state.DESIGN.get()
    if history is None or current is None or state.DESIGN_SYNCED.get() is not current:
        return None
    draft = history.present
    if draft is current or draft == current:
        return None
    if not draft.layers:
        return "it is empty"
    try:
        session.dry_run(draft)  # cached by the design's JSON: the Design page ran the same one
    except DesignError as e:
        return error_text(e)
    return None  # builds: the session takes it up on the Design page's next edit


def banner() -> None:
    """Under a page's title: the warning (with a link to the Design page) when the page shows the last
    design that built instead of the draft; nothing otherwise."""
    fault = draft_fault()
    if fault is None:
        return
    with st.container(key="last_built"):
        st.warning(
            f"{BANNER} (**{session.design().name}**); the Design page's draft does not build: {fault}",
            icon=ICONS["warning"],
        )
        navigation.page_link("design", "Fix it on the Design page")
