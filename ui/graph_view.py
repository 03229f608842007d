"""The network's graph with its depth control: blocks deeper than the chosen depth are folded into one node
(their layers, parameters and output shape), any of them can be expanded, and "all" draws everything.

A design opens at the deepest depth that keeps the graph readable (builder.diagram.fitting_depth), so a
ResNet shows its stages and blocks first, and a 500-layer design of blocks does not draw 500 boxes; a long
flat chain is drawn as its ends and one box for the layers between (chain_limit).
"""

from __future__ import annotations

import streamlit as st

import builder
from builder.diagram import blocks, fitting_depth, node_count
from ui import state

ALL = "all"
CHAIN_LIMIT = 40  # a flat 500-layer chain is drawn as 10 + one box + 10 nodes (builder.graph's chain_limit)


def show(design: builder.Design, run: builder.DryRun) -> None:
    """Draw the graph of `design` (whose dry run is `run`) under its depth and expand controls."""
    found = blocks(design)
    depth: int | None = None
    expand: list[str] = []
    if found:
        depth, expand = _controls(design, found)
    chain = None if found and depth is None else CHAIN_LIMIT  # depth "all" chosen: every layer, as asked
    drawn = node_count(design, depth, expand, chain)
    chained = drawn < node_count(design, depth, expand)
    if depth is not None:
        st.caption(
            f"{drawn} nodes drawn. Blocks below depth {depth} are folded into one box with their layers, "
            "parameters and output shape; expand one above, or choose depth “all”."
        )
    if chained:
        st.caption(
            f"A chain longer than {CHAIN_LIMIT} layers is drawn as its first and last {CHAIN_LIMIT // 4}, and one "
            "box for the layers between them (their types, parameters and output shape); the Output shapes tab "
            "lists every layer."
        )
    with st.container(key="graph"):
        graph = builder.graph(design, run, depth=depth, expand=expand, chain_limit=chain, focus=expand)
        st.graphviz_chart(graph)


def _controls(design: builder.Design, found: list[tuple[str, int]]) -> tuple[int | None, list[str]]:
    levels = max(d for _, d in found) + 1  # depth levels + 1 draws every block open: that is "all"
    signature = "\n".join(f"{k}:{d}" for k, d in found)
    if state.GRAPH_FOR.get() != signature:  # another design: open it at its own readable depth
        state.GRAPH_FOR.set(signature)
        state.forget_widgets(names=(state.GRAPH_DEPTH.name, state.GRAPH_EXPAND.name))
    options: list[int | str] = [*range(1, levels + 1), ALL]
    state.seed(state.GRAPH_DEPTH.name, fitting_depth(design) or ALL)
    left, right = st.columns([2, 3], gap="medium")
    with left:
        choice = st.select_slider(
            "Graph depth",
            options,
            key=state.GRAPH_DEPTH.name,
            format_func=lambda v: "1 (top level)" if v == 1 else str(v),
            help="Like torchview's depth: layers and blocks down to this level are drawn; a block at the last "
            "level is one box with its totals. “all” draws every layer.",
        )
    depth = None if choice == ALL else int(choice)
    folded = [k for k, d in found if depth is not None and d + 1 >= depth]  # collapsed, or inside one
    chosen = [k for k in state.GRAPH_EXPAND.get() or [] if k in folded]
    if chosen != (state.GRAPH_EXPAND.get() or []):
        state.GRAPH_EXPAND.set(chosen)  # a block no longer folded at this depth
    with right:
        st.multiselect(
            "Expand blocks",
            folded,
            key=state.GRAPH_EXPAND.name,
            disabled=not folded,
            placeholder="folded blocks: pick one to draw it open" if folded else "every block is drawn open",
            help="Draw these blocks open (with the blocks around them), whatever the depth.",
        )
    return depth, chosen
