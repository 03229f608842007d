"""Design: build the session's network by clicking — add, edit, move, group, share, undo; or edit its JSON.

The page edits a draft, the present of an undo history (`ui.design_draft`: history and the edit callbacks).
Layout only here: the stack of rows (folded blocks, pages) and the open editor are `ui.layer_row`'s, the
argument form `ui.arg_form`'s, the toolbar, input, group, add and preview panels `ui.design_panels`'.
"""

from __future__ import annotations

import streamlit as st

import ui
from builder import DesignError, DryRun, addressing, stack_view
from ui import design_draft, design_panels, flow_panel, import_panel, layer_row, state, theme

# A row's label takes the room its buttons leave; its last code span (the output shape) sits at its right end;
# its buttons show their icon, their label is only their accessible name (as ui.theme.icon_button's).
_CSS = f"""<style>
.stHorizontalBlock[class*="st-key-row_"] > .stElementContainer:nth-child(2) {{
  flex: 1 1 9rem !important; min-width: 9rem;
}}
[class*="st-key-row_"] .stButton button [data-testid="stMarkdownContainer"] {{
  {theme.SIGHT_ONLY_HIDDEN}
}}
[class*="st-key-row_"] [data-testid="stMarkdownContainer"] p > code:last-child {{
  float: right; margin-left: 0.5rem; white-space: nowrap;
}}
/* A narrow window (1280 px at 150 % zoom is 853 CSS px; the sidebar open leaves ~540 for the page): Undo and Redo
   show their icons only (their words stay their accessible names), so the toolbar keeps to one line. */
@media (max-width: 1000px) {{
  .st-key-toolbar :is(.st-key-undo, .st-key-redo) button [data-testid="stMarkdownContainer"] {{
    {theme.SIGHT_ONLY_HIDDEN}
  }}
}}
</style>"""


def main() -> None:
    st.html(_CSS)
    st.title("Design")
    workspace()


@st.fragment
def workspace() -> None:
    """Everything the design's edits change. A fragment: a click in it reruns only this, not the app around
    it (navigation, sidebar), and the stack draws one page of rows, so an edit costs the same at 5 or 500
    layers (docs/performance.md, UI rerun)."""
    h = design_draft.history()
    draft = h.present
    design_panels.toolbar(h)
    # A refused edit ("Not done: ..."), an import: in a container that is there with or without them, so the
    # tabs below keep their place in the page and the browser keeps the tab the person is on.
    with st.container(key="design_flashes"):
        ui.show_flashes()
    run: DryRun | None = None
    fault: DesignError | None = None
    if draft.layers:
        try:
            run = ui.dry_run(draft)
        except DesignError as e:
            fault = e
    runs = {r.path: r for r in run.layers} if run is not None else {}
    left, right = st.columns([3, 2], gap="large")
    with left:
        tab_stack, tab_json, tab_import = st.tabs(["Layers", "JSON", "Import"])
        with tab_stack:
            design_panels.input_row(draft)
            if fault is not None:
                if addressing.locate(draft, fault.path):
                    st.warning(
                        "The design does not build: fix the highlighted layer (or Undo). The other pages "
                        "keep the last design that built.",
                        icon=":material/warning:",
                    )
                else:
                    ui.show_error(fault)
            shown: list[stack_view.StackRow] = []
            opened: list[str] = []
            if draft.layers:
                flow_panel.top_panel(draft)  # the network's own flow (Inception's branches, LSTMLM's chain)
                shown, opened = layer_row.stack(draft, runs, fault)
            design_panels.group_row(draft)
            design_panels.add_panel(draft, run, shown)
        with tab_json:
            st.text_area(
                "Design JSON",
                key=state.DESIGN_JSON.name
                if state.DESIGN_JSON.present()
                else state.seed(state.DESIGN_JSON.name, draft.to_json()),
                height=420,
                help="Edit and apply; an invalid design is refused with the field at fault.",
            )
            st.button("Apply JSON", key="json_apply", icon=":material/check:", on_click=design_draft.apply_json)
            if (err := state.DESIGN_JSON_ERROR.get()) is not None:
                ui.show_error(err)  # not applied: the draft is unchanged
            elif fault is not None:  # applied (here or on another tab), but the sizes do not fit
                ui.show_error(fault, "The design does not build (the other pages keep the last design that built)")
        with tab_import:
            import_panel.tab()
    with right:
        near = stack_view.near(shown, state.DESIGN_EDITING.get() or state.DESIGN_NEAR.get())
        design_panels.preview(draft, run, near, opened)


main()
