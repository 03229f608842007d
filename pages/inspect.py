"""Inspect: the session's network — graph, output shapes, parameter table and totals."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

import builder
import ui
from builder import DesignError
from builder.examples import matching_example
from builder.table import shapes
from ui import graph_view, lazy_view, state

if TYPE_CHECKING:
    import pandas as pd


def pick_example() -> None:
    ui.set_design(builder.load_example(state.EXAMPLE()))


@st.cache_data(max_entries=64, show_spinner=False)
def lazy_table(design_json: str) -> pd.DataFrame:
    return builder.lazy_parameters(builder.Design.from_json(design_json))


def show_dry_run(design: builder.Design, run: builder.DryRun) -> None:
    """The network as constructed (lazy sizes pending) beside the network after torch's first forward pass."""
    with st.container(border=True, key="dry_run"):
        st.markdown(
            "**Lazy initialization.** A lazy layer (`nn.LazyLinear`, `nn.LazyConv2d`, …) is built without "
            "its input size: its weight is an `UninitializedParameter`. The first forward pass — the dry "
            "run — lets torch read the size off the input, allocate the weight and turn the layer into "
            "its ordinary class."
        )
        before, after = st.columns(2, gap="large")
        with before:
            st.markdown("#### Before the dry run")
            st.caption("As constructed: lazy layers (dashed) wait for their input size (?).")
            with st.container(key="graph_before"):
                st.graphviz_chart(builder.graph(design, inferred=False))
        with after:
            st.markdown("#### After the dry run")
            st.caption(f"One forward pass of the example input {run.input_shape}: torch inferred every size.")
            with st.container(key="graph_after"):
                st.graphviz_chart(builder.graph(design, run))
        lazy = lazy_table(design.to_json())
        if lazy.empty:
            st.info(
                "This design has no lazy layers: every size is written in the design, so the dry run only "
                "checks the shapes. The lazy_mlp and nested examples have lazy layers.",
                icon=":material/info:",
            )
        else:
            st.markdown(
                "**Parameters of the lazy layers**, before and after (real torch modules, read with `summary`):"
            )
            lazy_view.lazy_table(lazy, key="lazy_params")


def metrics(run: builder.DryRun) -> None:
    """The totals, read from the dry run (no network is built for them)."""
    cols = st.columns(4)
    cols[0].metric("Layers", sum(r.type != "Sequential" for r in run.layers))
    cols[1].metric("Parameters", f"{run.parameters:,}", help="Unique parameters: what the network holds and trains.")
    cols[2].metric(
        "Counted per use",
        f"{run.parameters_per_use:,}",
        help="Summed over every state_dict position: a shared layer counts once per use.",
    )
    cols[3].metric("Output shape", str(run.output_shape))
    if run.parameters_per_use != run.parameters:
        st.info(
            f"{builder.table.TIED_NOTE} Here: {run.parameters:,} held, {run.parameters_per_use:,} counted per use.",
            icon=":material/link:",
        )


def main() -> None:
    st.title("Inspect")
    ui.show_last_built()  # when the Design page's draft does not build
    names = builder.example_names()
    current = ui.design()
    st.selectbox(
        "Example design",
        names,
        key=state.EXAMPLE.name,
        on_change=pick_example,
        index=names.index(shown) if (shown := matching_example(current)) else None,  # the truth, not the name
        placeholder="your own design",
        help="Load one of the chapter's networks (replaces the session's design).",
    )
    if current.description:
        st.caption(current.description)
    try:
        run = ui.dry_run(current)
    except DesignError as e:
        ui.show_error(e)
        with st.container(key="graph"):
            st.graphviz_chart(builder.graph(current))  # the layer at fault is drawn in red
        return
    metrics(run)
    if st.toggle(
        "Show the dry run: before and after",
        key="inspect_dry_run",
        help="See the network as constructed, lazy sizes pending, beside the network after torch's first "
        "forward pass inferred them.",
    ):
        show_dry_run(current, run)
    # Only the open tab runs: the graph costs the same at 5 and 500 layers; the tables, and the network the
    # parameter table is read from, are made when asked for.
    graph_tab, shapes_tab, params_tab = st.tabs(
        ["Graph", "Output shapes", "Parameters"], key=state.INSPECT_TAB.name, on_change="rerun"
    )
    if graph_tab.open:
        with graph_tab:
            graph_view.show(current, run)  # full width: branches side by side need it
    if shapes_tab.open:
        with shapes_tab:
            narrow = st.column_config.TextColumn(width="small")
            st.dataframe(
                shapes(run),
                key="shapes",
                hide_index=True,
                width="stretch",
                column_config={
                    "layer": narrow,
                    "type": narrow,
                    "parameters": st.column_config.NumberColumn("params", width="small"),
                    "note": st.column_config.TextColumn(width="medium"),
                },
            )
    if params_tab.open:
        with params_tab:
            net = ui.net()
            if net is not None:
                st.dataframe(builder.summary(net), key="params", hide_index=True, width="stretch")


main()
