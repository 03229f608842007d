"""The Design page's panels around the stack: the toolbar (undo, redo, examples, clear), the example input,
grouping, the add panel, and the preview (totals and graph)."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

import builder
from builder import Design, DryRun, UndoHistory, addressing, edit, forms, stack_view
from builder.build import dry_run_until_fault
from builder.design import DTYPES
from builder.diagram import fitting_depth, node_count
from builder.examples import matching_example
from builder.registry import CATEGORIES, REGISTRY
from ui import arg_form, design_draft, layer_row, state


def add_panel(draft: Design, run: DryRun | None, shown: Sequence[stack_view.StackRow] = ()) -> None:
    """Add a layer: a searchable type list (and uses of the shared layers), where, and its arguments. Where:
    the start, the end, and after (or first inside) each row `shown` on the stack's page — another page of
    the stack offers its own rows (a list of 500 places helps nobody)."""
    choices = [design_draft.USE + name for name in draft.shared]
    choices += sorted(REGISTRY, key=lambda t: (CATEGORIES.index(REGISTRY[t].category), t))
    if state.ADD_TYPE.get() not in choices:
        state.ADD_TYPE.set("Linear")

    def label(choice: str) -> str:
        if choice.startswith(design_draft.USE):
            return f"↺ another use of shared '{choice.removeprefix(design_draft.USE)}' (same weights)"
        lt = REGISTRY[choice]
        return choice if lt.category == choice else f"{choice} · {lt.category}"

    near = [(r.path, r.node, r.key) for r in shown] if len(shown) < sum(1 for _ in draft.walk()) else None
    spots = forms.insert_points(draft, near)
    with st.container(border=True, key="add_panel"):
        st.markdown("**Add a layer**")
        c = st.columns(2)
        choice = c[0].selectbox(
            "Layer type (type to search)",
            choices,
            key=state.ADD_TYPE.name,
            format_func=label,
            on_change=design_draft.reset_new,
        )
        if state.ADD_WHERE.get() not in spots:
            state.ADD_WHERE.set(next(iter(spots)))
        where = c[1].selectbox(
            "Where", list(spots), key=state.ADD_WHERE.name, format_func=spots.get, on_change=design_draft.reset_new
        )
        with st.form("add_form", border=False):
            if choice.startswith(design_draft.USE):
                st.caption(
                    "Inserts another use of the shared layer: the same module object, so the same "
                    "weights, at a second place in the network."
                )
            else:
                lazy = forms.lazy_arg(choice)
                if lazy:
                    st.caption(f"Leave **{lazy}** empty to make it lazy: torch infers it from the input.")
                seen = run if run is not None or not draft.layers else dry_run_until_fault(draft)
                before = forms.input_shape_at(draft, addressing.parse_path(where), seen)
                if run is None and draft.layers:  # the draft does not build: say where the input size comes from
                    arg_form.size_note(choice, before)
                arg_form.arg_inputs(choice, forms.new_values(choice, before), state.NEW_PREFIX)
            st.text_input(
                "Name (optional)", key=state.seed(state.NEW_NAME.name, ""), placeholder="empty: indexed by position"
            )
            st.form_submit_button(
                "Add", key="add", type="primary", icon=":material/add:", on_click=design_draft.add_layer
            )


YOUR_DESIGN = "— your own design —"  # the example picker's entry for a design that is no example


def toolbar(h: UndoHistory) -> None:
    with st.container(horizontal=True, vertical_alignment="bottom", gap="xsmall", key="toolbar"):
        st.button("Undo", key="undo", icon=":material/undo:", disabled=not h.can_undo, on_click=design_draft.undo)
        st.button("Redo", key="redo", icon=":material/redo:", disabled=not h.can_redo, on_click=design_draft.redo)
        names = builder.example_names()
        # the picker shows the truth: the example the design is, unchanged, else "your own design"
        state.START_EXAMPLE.set(matching_example(h.present) or YOUR_DESIGN)
        st.selectbox(
            "Example",
            [YOUR_DESIGN, *names],
            key=state.START_EXAMPLE.name,
            width=220,
            on_change=design_draft.load_example,  # choosing one loads it
            help="Choosing an example replaces the design with it (Undo brings yours back).",
        )
        st.button(
            "Load",
            key="load",
            icon=":material/refresh:",
            on_click=design_draft.load_example,
            disabled=state.START_EXAMPLE() == YOUR_DESIGN,
            help="Load the example again, as shipped (Undo brings yours back)",
        )
        st.button(
            "Clear",
            key="clear",
            icon=":material/delete_forever:",
            on_click=state.DESIGN_CONFIRM_CLEAR.set,
            args=(True,),
            help="Start from an empty design (asks first)",
        )
    if state.DESIGN_CONFIRM_CLEAR.get():
        with st.container(border=True, key="confirm_clear"):
            st.warning(
                "Discard every layer and start from an empty design? (Undo can bring it back.)",
                icon=":material/warning:",
            )
            a, b, _ = st.columns([1, 1, 3])
            a.button("Yes, clear", key="clear_yes", type="primary", on_click=design_draft.apply, args=(edit.clear,))
            b.button("Cancel", key="clear_no", on_click=state.DESIGN_CONFIRM_CLEAR.set, args=(False,))


def input_row(draft: Design) -> None:
    c = st.columns([1.7, 1], vertical_alignment="bottom")
    c[0].text_input(
        "Example input shape",
        key=state.seed(state.INPUT_SHAPE.name, ", ".join(map(str, draft.input_shape))),
        on_change=design_draft.set_input,
        help="Batch first, e.g. 2, 20 (2 samples of 20 features) or "
        "1, 1, 28, 28 for one grey 28×28 image. Press Enter to apply.",
    )
    c[1].selectbox(
        "Input dtype",
        DTYPES,
        key=state.seed(state.INPUT_DTYPE.name, draft.input_dtype),
        on_change=design_draft.set_input,
        help="int64 for Embedding's indices",
    )


def group_row(draft: Design) -> None:
    """Name box and the three ways to wrap the selected rows; they wrap onto a second line rather than cut
    their labels when the column is narrow (1280 px with the sidebar open, 150 % zoom)."""
    chosen = design_draft.selected(draft)
    with st.container(horizontal=True, vertical_alignment="bottom", gap="small", key="group_bar"):
        st.text_input(
            "Block name (optional)",
            key=state.seed(state.GROUP_NAME.name, ""),
            placeholder="empty: indexed by position",
            help="Group the selected layers (next to each other, same level) into a nested Sequential",
            width=220,
        )
        with st.container(horizontal=True, vertical_alignment="bottom", gap="small", width="content"):
            st.button(
                f"Group {len(chosen)} selected" if chosen else "Group selected",
                key="group",
                icon=":material/select_all:",
                disabled=not chosen,
                on_click=design_draft.group_selected,
            )
            st.button(
                "Residual",
                key="residual",
                icon=":material/add_circle:",
                disabled=not chosen,
                on_click=design_draft.wrap_selected,
                args=("residual",),
                help="Wrap the selected layers in a residual block: out = layers(x) + x (add a shortcut in its editor)",
            )
            st.button(
                "Branches",
                key="branches",
                icon=":material/call_split:",
                disabled=not chosen,
                on_click=design_draft.wrap_selected,
                args=("branches",),
                help="Run each selected layer as a parallel branch on the same input, joined by cat along dim 1 "
                "(choose the merge in the block's editor)",
            )


PREVIEW_NODES = 40  # a design whose graph has more nodes is drawn with its blocks folded, as the stack shows them
PREVIEW_CHAIN = 8  # a longer chain: its first and last 2 nodes, the rows around the open one, and boxes


def preview(draft: Design, run: DryRun | None, shown: Sequence[str] = (), opened: Sequence[str] = ()) -> None:
    """Totals and the graph. A big design's graph follows the stack: blocks folded unless unfolded there (or
    open in the editor), and a long chain drawn around the open row (`shown`: the keys of the rows around it;
    builder.graph's chain_limit and focus), so it stays readable and costs the same at 500 layers as at 20."""
    st.subheader("Preview")
    if not draft.layers:
        st.info("The design is empty: add a layer to start.", icon=":material/add:")
        return
    if run is not None:
        tied = run.parameters_per_use != run.parameters
        per_use = f" · **{run.parameters_per_use:,}** counted per use" if tied else ""
        shape = layer_row.shape_text(run.output_shape).replace(" ", "\u00a0")  # keep "(2, 1)" on one line
        st.markdown(
            f"**{run.parameters:,}** parameters{per_use} · output **{shape}**",
            help="Parameters: what the network holds (a shared layer once). Counted per use: summed over "
            "every state_dict position, a shared layer once per use.",
        )
    with st.container(key="graph"):
        depth = fitting_depth(draft, PREVIEW_NODES)
        big = node_count(draft, depth, opened) > PREVIEW_NODES  # a small graph is drawn whole
        chain = PREVIEW_CHAIN if big else None
        st.graphviz_chart(
            builder.graph(draft, run or True, depth=depth, expand=opened, chain_limit=chain, focus=[*shown, *opened])
        )
    st.caption("The Inspect page shows the full parameter table.")


# A row's label shrinks (its text wraps) before the row's actions move to a line of their own.
