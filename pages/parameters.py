"""Parameters: one layer's state_dict, values and gradient; edit a weight and watch tied positions follow;
choose how the weights are initialized (part of the design, `ui.init_form`), re-initialize, see a histogram."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

import builder
import ui
from builder import ParamsError, figures, params
from ui import init_form, state

if TYPE_CHECKING:
    from torch import nn


def access(net: nn.Module, current: builder.Design, layers: dict[str, list[str]], label: object) -> None:
    """d2l 6.2: a layer's state_dict, one tensor's values and .grad, a backward pass on the example input."""
    c1, c2 = st.columns(2)
    layer = c1.selectbox(
        "Layer",
        list(layers),
        key="param_layer",
        format_func=label,
        help="A layer's tensors, as net[2].state_dict() shows them.",
    )
    key = c2.selectbox("Tensor", layers[layer], key="param_tensor")
    st.markdown(f"**`net.get_submodule('{layer}').state_dict()`**")
    table = builder.summary(net)
    rows = table[table["layer"] == layer][["key", "kind", "shape", "dtype", "device", "requires_grad", "tied_with"]]
    st.dataframe(rows, key="param_state", hide_index=True, width="stretch")
    view = params.tensor_view(net, key)
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown(f"**Values of `{key}`** — shape {view.shape}, mean {view.mean:.4g}, std {view.std:.4g}")
        st.dataframe(view.values, key="param_values", height=240, width="stretch")
    with right:
        st.markdown(f"**Gradient of `{key}`** (`.grad`)")
        if view.grad is None:
            st.caption("No gradient yet: `.grad` is None until a backward pass.")
        else:
            st.dataframe(view.grad, key="param_grad", height=240, width="stretch")
        if st.button(
            "Compute gradients on the example input",
            key="param_backward",
            icon=":material/functions:",
            help="Runs the example input forward, sums the outputs and calls backward(): every "
            "parameter's .grad holds d(sum)/d(parameter); a shared layer's sums its uses.",
        ):
            try:
                params.example_gradients(net, builder.example_input(current, ui.net_device()))
            except (RuntimeError, ValueError) as e:
                ui.show_error(e, "The backward pass failed")
            else:
                st.rerun()
    edit_value(net, key, view.shape)


def edit_value(net: nn.Module, key: str, shape: tuple[int, ...]) -> None:
    """The chapter's `net[2].weight.data[0, 0] = 100`, and every tied position that changed with it."""
    st.markdown("**Edit one value** — as the chapter's `net[2].weight.data[0, 0] = 100`")
    cols = st.columns([1] * max(len(shape), 1) + [2, 2], vertical_alignment="bottom")
    index = tuple(
        int(
            cols[d].number_input(
                f"index {d}", min_value=0, max_value=max(n - 1, 0), value=0, step=1, key=f"edit_index_{key}_{d}"
            )
        )
        for d, n in enumerate(shape)
    )
    value = cols[-2].number_input("new value", value=100.0, key="edit_value")
    if cols[-1].button("Set", key="edit_set", icon=":material/edit:"):
        try:
            params.set_value(net, key, index, value)
        except ParamsError as e:
            ui.show_error(e)
        else:
            state.PARAM_EDITED.set((id(net), key, index))
            st.rerun()  # redraw the values above with the new one
    edited = state.PARAM_EDITED.get()
    if edited is None or edited[0] != id(net) or edited[1] not in net.state_dict():
        return
    _, where, idx = edited
    positions = params.tied_keys(net, where)
    if len(idx) == len(net.state_dict()[where].shape):
        st.dataframe(params.values_at(net, positions, idx), key="edit_positions", hide_index=True)
    if len(positions) > 1:
        st.success(
            f"{where}{list(idx)} set: {', '.join(k for k in positions if k != where)} changed with it — "
            f"they are the same tensor (a shared layer).",
            icon=":material/link:",
        )
    else:
        st.success(f"{where}{list(idx)} set.", icon=":material/check_circle:")


def main() -> None:
    st.title("Parameters")
    ui.show_last_built()  # when the Design page's draft does not build
    current = ui.design()
    net = ui.net()
    if net is None:
        return
    layers = {k: v for k, v in params.layer_keys(net).items() if k}
    table = builder.summary(net)
    kinds = dict(zip(table["key"], table["type"], strict=True))
    shared_at = {p.key: p.shared for p in ui.dry_run(current).layers if p.shared}

    def label(key: str) -> str:
        kind = kinds[layers[key][0]]
        return f"{key} · {kind}" + (f" (shared '{shared_at[key]}')" if key in shared_at else "")

    st.subheader("Parameter access")
    if layers:
        access(net, current, layers, label)
    else:
        st.info("This network has no parameters.")
    init_form.init_section(current, net, kinds, shared_at)
    weights = [k for keys in layers.values() for k in keys if k.endswith("weight")]
    if weights:
        hist_key = st.selectbox("Histogram of", weights, key="hist_key")
        with st.container(key="histogram"):
            st.plotly_chart(figures.histogram(params.values(net, hist_key), hist_key), key="hist_chart")


main()
