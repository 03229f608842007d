"""Inspect: the session's network — graph, output shapes, parameter table and totals."""

import pandas as pd
import streamlit as st

import builder
import ui
from builder import DesignError

st.title("Inspect")


def pick_example() -> None:
    ui.set_design(builder.load_example(st.session_state.example))


names = builder.example_names()
current = ui.design()
st.selectbox("Example design", names, key="example", on_change=pick_example,
             index=names.index(current.name) if current.name in names else None,
             placeholder="your own design", help="Load one of the chapter's networks (replaces the session's design).")
if current.description:
    st.caption(current.description)

try:
    run = ui.dry_run(current)
except DesignError as e:
    ui.show_error(e)
    with st.container(key="graph"):
        st.graphviz_chart(builder.graph(current))  # the layer at fault is drawn in red
    st.stop()

net = ui.net()
if net is None:
    st.stop()
totals = builder.totals(net)

cols = st.columns(4)
cols[0].metric("Layers", sum(r.type != "Sequential" for r in run.layers))
cols[1].metric("Parameters", f"{totals.unique:,}", help="Unique parameters: what the network holds and trains.")
cols[2].metric("Counted per use", f"{totals.per_use:,}",
               help="Summed over every state_dict position: a shared layer counts once per use.")
cols[3].metric("Output shape", str(run.output_shape))
if totals.tied:
    st.info(f"{builder.table.TIED_NOTE} Here: {totals.unique:,} held, {totals.per_use:,} counted per use.",
            icon=":material/link:")

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("Graph")
    with st.container(key="graph"):
        st.graphviz_chart(builder.graph(current, run))
with right:
    st.subheader("Output shapes")
    shapes = pd.DataFrame([{
        "layer": "  " * r.depth + r.key,
        "type": r.type,
        "output": str(r.output_shape),
        "parameters": r.parameters,
        "note": ", ".join(filter(None, [f"shared '{r.shared}'" if r.shared else "",
                                        *(f"{k}={v} inferred" for k, v in r.inferred.items())])),
    } for r in run.layers])
    st.dataframe(shapes, key="shapes", hide_index=True, width="stretch")

st.subheader("Parameters")
table = builder.summary(net)
st.dataframe(table, key="params", hide_index=True, width="stretch")
