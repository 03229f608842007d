"""The app's look, in one place: the CSS every page gets (app.py calls `apply()` on every run), and the icon-only
button, whose name a screen reader says.

Sizes are for a projector too: 1280×800 at 150 % zoom is a viewport of 853×533 CSS pixels (issue 13, defect 9).
Streamlit's own `.streamlit/config.toml` [theme] holds the colours.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

# A container keyed with this prefix holds one icon button (`icon_button`); the CSS hides that button's label
# from sight only, so the label stays its accessible name.
ICON_BUTTON_KEY = "icon_button_"
# The declarations that hide an element from sight only (a screen reader still says it); for pages' own CSS.
SIGHT_ONLY_HIDDEN = (
    "position: absolute !important; width: 1px !important; height: 1px !important; overflow: hidden !important; "
    "clip-path: inset(50%) !important; white-space: nowrap !important;"
)

CSS = f"""<style>
/* Inline code (`net[0].weight`) at nearly the size of the text around it: Streamlit draws it at 0.75em, which in
   a caption is ~10 px, unreadable on a projector. */
:not(pre) > code {{
  font-size: 0.92em !important;
}}
/* An icon button's label: its accessible name, read out by screen readers, hidden from sight (the icon shows). */
[class*="st-key-{ICON_BUTTON_KEY}"] button [data-testid="stMarkdownContainer"] {{
  {SIGHT_ONLY_HIDDEN}
}}
/* A chart's toolbar (its fullscreen button) floats over the top right of the chart, where a caption above it
   ends: the dry run's two graphs keep that strip free. */
:is(.st-key-graph_before, .st-key-graph_after) {{
  padding-top: 3rem;
}}
/* Short screens (a projector at 150 %: 533 px high): less empty space above the page's title. */
@media (max-height: 700px) {{
  [data-testid="stMainBlockContainer"] {{
    padding-top: 3.5rem !important;
  }}
  h1 {{
    padding-top: 0.5rem !important;
  }}
}}
</style>"""


def apply() -> None:
    """Add the app's CSS to the page (a style-only st.html: it takes no room)."""
    st.html(CSS)


def icon_button(name: str, icon: str, *, key: str, help: str | None = None, **kwargs: Any) -> bool:
    """A button that shows only `icon` (":material/arrow_upward:"); `name` ("Move up") is what a screen reader
    says and the tooltip, unless `help` says more. Other arguments are st.button's. True when clicked."""
    with st.container(key=ICON_BUTTON_KEY + key, width="content"):
        return st.button(name, key=key, icon=icon, help=help or name, **kwargs)
