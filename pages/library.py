"""Library: the presets gallery, designs saved by name (every save a version; restore, rename, delete), import
and export of design JSON, and a share link that carries the session's design. The tabs and their actions are
`ui.library_tabs`'; the library itself is `builder.store`."""

from __future__ import annotations

import streamlit as st

import ui
from ui import library_tabs


def main() -> None:
    st.title("Library")
    ui.show_last_built()  # when the Design page's draft does not build
    current = ui.design()
    st.caption(
        f"The session's design: **{current.name}** · {len(current.layers)} layers. Load a preset, keep your "
        f"designs in the library, or share one by link."
    )
    ui.show_flashes()
    presets, saved, shared, imports = st.tabs(
        ["Presets", "Saved designs", "Share by link", "Import / export"], key="lib_tabs"
    )
    with presets:
        library_tabs.presets_tab(current)
    with saved:
        library_tabs.saved_tab(current)
    with shared:
        library_tabs.share_tab(current)
    with imports:
        library_tabs.import_tab(current)


main()
