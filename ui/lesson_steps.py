"""The Lessons page's "try it" parts: one function per step key (builder.lessons.LESSONS), each on the
session's network. What a try gave (values before an init, the tie demo, the save/load check) is kept in
`state.LESSON_RESULT` for the network it ran on, so it stays on screen across reruns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

import builder
import ui
from builder import DesignError, ParamsError, lessons, params
from ui import lazy_view, state

if TYPE_CHECKING:
    from torch import nn


def done(key: str, net_id: int, result: object) -> None:
    state.LESSON_RESULT.set((key, net_id, result))


def result(key: str, net_id: int) -> Any:
    held = state.LESSON_RESULT.get()
    return held[2] if held is not None and held[0] == key and held[1] == net_id else None


def try_sequential(net: nn.Module, design: builder.Design) -> None:
    y = lessons.forward(net, design)
    st.markdown(f"`X = torch.rand{tuple(design.input_shape)}` → `net(X).shape` = **{tuple(y.shape)}**")
    st.markdown("Its children — `net[i]` is one module of the chain:")
    st.dataframe(lessons.children(net), key="lesson_children", hide_index=True, width="stretch")
    with st.expander("print(net)"):
        st.code(str(net), language=None)


def try_blocks(net: nn.Module, design: builder.Design) -> None:
    st.markdown("Named children are attributes (`net.hidden`), and their names start the parameters' keys:")
    left, right = st.columns(2)
    with left:
        st.dataframe(lessons.children(net), key="lesson_children", hide_index=True, width="stretch")
    with right:
        st.dataframe(lessons.named_parameters(net), key="lesson_named", hide_index=True, width="stretch")
    with st.expander("The block as PyTorch code (to_code)"):
        st.code(builder.to_code(design), language="python")


def try_access(net: nn.Module, design: builder.Design) -> None:
    layers = {k: v for k, v in params.layer_keys(net).items() if k}
    if not layers:
        st.info("This network has no parameters; load the preset.")
        return
    names = list(layers)
    layer = st.selectbox(
        "Layer",
        names,
        key="lesson_layer",
        index=min(1, len(names) - 1),
        format_func=lambda k: f"net[{k}]" if k.isdigit() else f"net.{k}",
    )
    tensors = net.state_dict()
    st.markdown(f"`net[{layer}].state_dict()`" if layer.isdigit() else f"`net.{layer}.state_dict()`")
    st.dataframe(
        pd.DataFrame([{"key": k.rpartition(".")[2], "shape": str(tuple(tensors[k].shape))} for k in layers[layer]]),
        key="lesson_state",
        hide_index=True,
        width="stretch",
    )
    st.markdown("Their first values (`.data`):")
    st.dataframe(
        lessons.values_frame({k: lessons.first_values(net, k, 6) for k in layers[layer]}),
        key="lesson_state_values",
        width="stretch",
    )
    weight = next((k for k in layers[layer] if k.endswith("weight")), layers[layer][0])
    grad = lessons.grad_shape(net, weight)
    c = st.columns([3, 2], vertical_alignment="center")
    c[0].markdown(
        f"`{weight}.grad` is **{'None' if grad is None else 'a tensor of shape ' + str(grad)}**"
        + (" — no backward pass yet." if grad is None else " — filled by the backward pass.")
    )
    if c[1].button("Run a backward pass", key="lesson_backward", icon=":material/functions:"):
        try:
            params.example_gradients(net, builder.example_input(design, builder.devices.device_of(net)))
        except (RuntimeError, ValueError) as e:
            ui.show_error(e, "The backward pass failed")
        else:
            st.rerun()
    with st.expander("Every parameter: net.named_parameters()"):
        st.dataframe(lessons.named_parameters(net), key="lesson_named", hide_index=True, width="stretch")


def try_init(net: nn.Module, design: builder.Design) -> None:
    weight = next((k for k, _ in net.named_parameters() if k.endswith("weight")), None)
    if weight is None:
        st.info("This network has no weights; load the preset.")
        return
    bias = weight.removesuffix("weight") + "bias"
    c = st.columns([3, 1], vertical_alignment="bottom")
    choice = c[0].selectbox("Initialization", list(lessons.INIT_CHOICES), key="lesson_init_choice")
    keys = [k for k in (weight, bias) if k in net.state_dict()]

    def values() -> dict[str, list[float]]:
        return {k: lessons.first_values(net, k, 6) for k in keys}

    if c[1].button(
        "net.apply(init)", key="lesson_init_apply", type="primary", icon=":material/play_arrow:", width="stretch"
    ):
        before = values()
        lessons.apply_init(net, design, choice)
        done("init", id(net), (choice, before))
    rows = {f"{k} now": v for k, v in values().items()}
    held = result("init", id(net))
    if held is not None:
        rows = {label: v for k, v in values().items() for label, v in ((f"{k} before", held[1][k]), (f"{k} now", v))}
        st.success(
            f"Applied “{held[0]}” to every Linear layer of the session's network.", icon=":material/check_circle:"
        )
    st.markdown("The first values of the first layer's weight and bias:")
    st.dataframe(lessons.values_frame(rows), key="lesson_init_values", width="stretch")
    st.markdown("**Setting parameters directly**, one line each, on `net[0].weight`:")
    d = st.columns(len(lessons.DIRECT_SETTING))
    for col, (code, key) in zip(d, lessons.DIRECT_SETTING.items(), strict=True):
        if col.button(code, key=f"lesson_direct_{key}", icon=":material/edit:", width="stretch"):
            try:
                done("direct", id(net), (code, lessons.set_directly(net, code)))
            except (ParamsError, DesignError) as e:
                ui.show_error(e)
    direct = result("direct", id(net))
    if direct is not None:
        st.success(f"`{direct[0]}` ran; `net[0].weight.data[0]` is now:", icon=":material/check_circle:")
        st.dataframe(lessons.values_frame({"net[0].weight.data[0]": direct[1][:8]}), key="lesson_direct_values")
    st.caption(
        "This changes the session's weights only. To make an initialization part of the design (kept, "
        "exported in the code), use the Parameters page."
    )


def try_tied(net: nn.Module, design: builder.Design) -> None:
    if "2.weight" not in net.state_dict():
        st.info("This network has no net[2].weight; load the preset (tied).", icon=":material/info:")
        return
    positions = lessons.tied_positions(net)
    st.markdown(
        f"`net[2].weight` is held at: **{', '.join(positions)}**"
        + (" — one tensor, two positions." if len(positions) > 1 else " — only there: not tied.")
    )
    c = st.columns([3, 2, 2], vertical_alignment="bottom")  # the label "net[2].weight.data[0, 0] =" on one line
    value = c[0].number_input("net[2].weight.data[0, 0] =", value=100.0, key="lesson_tie_value")
    if c[1].button("Set it", key="lesson_tie_set", type="primary", icon=":material/edit:"):
        try:
            demo = lessons.tie_demo(net, float(value))
        except ParamsError as e:
            ui.show_error(e)
        else:
            done("tied", id(net), demo)
    demo = result("tied", id(net))
    if demo is not None:
        st.markdown("Row 0 of the weight at each position (`net[2].weight.data[0]`, `net[4].weight.data[0]`):")
        st.dataframe(demo.rows, key="lesson_tie_rows", width="stretch")
        if demo.same_object:
            st.success(
                f"`net[2] is net[4]` → **True**: {', '.join(demo.keys)} changed together — they are the same "
                f"module. On the Gradients page, its .grad is the sum of both uses.",
                icon=":material/link:",
            )
        else:
            st.warning(
                "Only one position changed: this network has no tied layer at net[2].", icon=":material/link_off:"
            )


def try_lazy(net: nn.Module, design: builder.Design) -> None:
    try:
        table = builder.lazy_parameters(design)
    except DesignError as e:
        ui.show_error(e)
        return
    if table.empty:
        st.info("This design has no lazy layers; load the preset (lazy_mlp).", icon=":material/info:")
        return
    st.markdown("Before the first forward pass the lazy weights have no shape; after it, torch has inferred it:")
    lazy_view.lazy_table(table, key="lesson_lazy")


def try_custom(net: nn.Module, design: builder.Design) -> None:
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**CenteredLayer** — `layer(torch.tensor([...]))`")
        text = st.text_input("Numbers", value="1, 2, 3, 4, 5", key="lesson_centered")
        try:
            y, mean = lessons.centered(lessons.parse_numbers(text))
        except DesignError as e:
            ui.show_error(e)
        else:
            st.markdown(f"Y = `{y}`  \nY.mean() = **{mean:.3g}** (zero, up to rounding)")
    with right:
        st.markdown("**MyLinear** — its own parameters, in `state_dict()`:")
        st.dataframe(lessons.named_parameters(net), key="lesson_named", hide_index=True, width="stretch")
        y = lessons.forward(net, design)
        st.markdown(f"`net(X).shape` = **{tuple(y.shape)}**")


def try_save_load(net: nn.Module, design: builder.Design) -> None:
    st.markdown(
        "Save the session's weights, build a clone from the design, load them into it, and compare "
        "their outputs on the same X:"
    )
    if st.button("Save, load into a clone, compare", key="lesson_save_load", type="primary", icon=":material/save:"):
        try:
            done("save_load", id(net), lessons.save_load(design, net))
        except (ParamsError, DesignError, RuntimeError) as e:
            ui.show_error(e, "Saving and loading failed")
    outcome = result("save_load", id(net))
    if outcome is None:
        return
    st.markdown(f"`torch.save(net.state_dict())`: {outcome.nbytes:,} bytes, keys {', '.join(outcome.keys)}")
    same = outcome.agreement(rows=2, columns=10)
    st.markdown(f"`Y_clone == Y` (first {len(same)} rows, up to 10 columns):")
    st.dataframe(same, key="lesson_same", width="stretch")
    if outcome.equal:
        st.success(
            "**Y_clone == Y** everywhere: the clone computes exactly what the network computes.",
            icon=":material/check_circle:",
        )
    else:
        st.error("Y_clone differs from Y.", icon=":material/error:")


def try_devices(net: nn.Module, design: builder.Design) -> None:
    report = lessons.device_report(net, design)
    st.dataframe(
        pd.DataFrame(
            [
                {"expression": "devices on this machine", "value": ", ".join(report.devices)},
                {"expression": "try_gpu()", "value": report.gpu},
                {"expression": "try_gpu(10)", "value": report.missing},
                {"expression": "try_all_gpus()", "value": str(report.all_gpus)},
                {"expression": "X", "value": report.x},
                {"expression": "net[0].weight.device", "value": report.network},
                {"expression": "net(X).device", "value": report.output},
                {"expression": "net(X)", "value": " ".join(repr(report.y).split())},
            ]
        ),
        key="lesson_devices",
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "Change **Device** in the sidebar: the session's network moves there with its weights, as "
        "`net.to(device)` does. "
        + (
            "No GPU was found on this machine: try_gpu() falls back to the CPU and try_all_gpus() is empty."
            if not report.all_gpus
            else f"This machine has {len(report.all_gpus)} GPU(s)."
        )
    )


def try_my_sequential(net: nn.Module, design: builder.Design) -> None:
    try:
        check = lessons.my_sequential(net, design)
    except DesignError as e:
        ui.show_error(e)
        return
    st.markdown(
        f"The step's layers wrapped in `nn.Sequential` and in `MySequential`: keys "
        f"{', '.join(f'`{k}`' for k in check.my_keys)}."
    )
    rows = pd.DataFrame(
        {"nn.Sequential": check.y[0, :8].tolist(), "MySequential": check.my_y[0, :8].tolist()},
        index=[f"net(X)[0, {j}]" for j in range(min(8, check.y.shape[-1]))],
    ).T
    st.dataframe(rows, key="lesson_my_sequential", width="stretch")
    if check.equal:
        st.success("Same keys, same outputs: MySequential is nn.Sequential.", icon=":material/check_circle:")
    else:
        st.error("MySequential differs from nn.Sequential here.", icon=":material/error:")


def try_fixed_hidden(net: nn.Module, design: builder.Design) -> None:
    if st.button("Run the chapter's code", key="lesson_fixed_run", type="primary", icon=":material/play_arrow:"):
        done("fixed_hidden", id(net), lessons.fixed_hidden(design))
    run = result("fixed_hidden", id(net))
    if run is not None:
        st.markdown(
            f"On X = {run.x}: `FixedHiddenMLP()(X)` = **{run.fixed:.6g}** (the while loop halved X "
            f"{run.halvings} times), `chimera(X)` = **{run.chimera:.6g}**."
        )
    st.info(lessons.CAN_AND_CANNOT, icon=":material/info:")


def try_tensor_io(net: nn.Module, design: builder.Design) -> None:
    files = lessons.tensor_files()
    st.markdown("The chapter's three files (`x = torch.arange(4)`, `y = torch.zeros(4)`):")
    cols = st.columns(len(files))
    for col, (name, data) in zip(cols, files.items(), strict=True):
        col.download_button(
            name,
            data,
            file_name=name,
            mime="application/octet-stream",
            key=f"lesson_tensor_{name.replace('-', '_')}",
            on_click="ignore",
            icon=":material/download:",
            width="stretch",
        )
    upload = st.file_uploader(
        "Load one back (torch.load, weights_only=True: tensors only, nothing in the file runs)",
        key="lesson_tensor_upload",
    )
    if upload is not None:
        try:
            _, text = lessons.read_tensor_file(upload.getvalue())
        except ParamsError as e:
            ui.show_error(e)
        else:
            st.success(f"{upload.name} holds {text}", icon=":material/check_circle:")


def try_rgnet(net: nn.Module, design: builder.Design) -> None:
    st.markdown("`print(rgnet)`:")
    st.code(lessons.printed(net), language="text")
    try:
        layer = lessons.indexed(net, 0, 1, 0)
    except DesignError as e:
        ui.show_error(e)
        return
    bias = getattr(layer, "bias", None)
    if bias is not None:
        st.markdown("`rgnet[0][1][0].bias.data`:")
        st.code(" ".join(repr(bias.data).split()), language="text")


TRY = {
    "sequential": try_sequential,
    "blocks": try_blocks,
    "my_sequential": try_my_sequential,
    "fixed_hidden": try_fixed_hidden,
    "tensor_io": try_tensor_io,
    "access": try_access,
    "rgnet": try_rgnet,
    "init": try_init,
    "tied": try_tied,
    "lazy": try_lazy,
    "custom": try_custom,
    "save_load": try_save_load,
    "devices": try_devices,
}
