"""The app's pages, named by key: key -> file, title and icon. app.py builds the navigation from this table
(pages cannot import app.py: it runs the app); other code links to a page by its key (`page_link("inspect")`),
never by its file or title. A new page is one line here and one file in pages/."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class PageInfo:
    file: str
    title: str
    icon: str


PAGES: dict[str, PageInfo] = {
    "design": PageInfo("pages/design.py", "Design", ":material/stacks:"),  # the start page
    "inspect": PageInfo("pages/inspect.py", "Inspect", ":material/account_tree:"),
    "weights": PageInfo("pages/weights.py", "Weights", ":material/save:"),
    "parameters": PageInfo("pages/parameters.py", "Parameters", ":material/tune:"),
    "gradients": PageInfo("pages/gradients.py", "Gradients", ":material/functions:"),
    "train": PageInfo("pages/train.py", "Train", ":material/model_training:"),
    "library": PageInfo("pages/library.py", "Library", ":material/collections_bookmark:"),
    "lessons": PageInfo("pages/lessons.py", "Lessons", ":material/school:"),
}
START = "design"


def page_link(key: str, label: str | None = None) -> None:
    """A link to the page `key` ("Open Inspect" unless `label` says otherwise)."""
    info = PAGES[key]
    st.page_link(info.file, label=label or f"Open {info.title}", icon=":material/arrow_outward:")
