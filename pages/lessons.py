"""Lessons: the chapter (d2l, Builders' Guide) step by step. Each step loads a preset, points at the page that
shows the idea, and lets the class try it on the session's network. The steps are data (builder.lessons)."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

import builder
import ui
from builder import DesignError, ParamsError, lessons, params
from builder.lessons import LESSONS, Step

STEP = "lesson_step"  # index of the step shown
DONE = "lesson_done"  # (step key, id of the network, result) of the last "try it" action
PAGE_TITLES = {
    "pages/design.py": "Design",
    "pages/inspect.py": "Inspect",
    "pages/weights.py": "Weights",
    "pages/parameters.py": "Parameters",
    "pages/gradients.py": "Gradients",
    "pages/train.py": "Train",
}


def go(index: int) -> None:
    """Show step `index` and load its preset (the design before is one Undo away on the Design page)."""
    index = max(0, min(index, len(LESSONS) - 1))
    st.session_state[STEP] = index
    st.session_state.lesson_pick = index
    st.session_state.pop(DONE, None)
    ui.set_design(builder.load_example(LESSONS[index].preset))


def picked() -> None:
    go(st.session_state.lesson_pick)


def load_preset() -> None:
    go(st.session_state[STEP])


def done(key: str, net_id: int, result: object) -> None:
    st.session_state[DONE] = (key, net_id, result)


def result(key: str, net_id: int) -> object | None:
    held = st.session_state.get(DONE)
    return held[2] if held is not None and held[0] == key and held[1] == net_id else None


# -- what the class tries, one function per step key --------------------------------------------------------


def try_sequential(net: torch.nn.Module, design: builder.Design) -> None:
    y = lessons.forward(net, design)
    st.markdown(f"`X = torch.rand{tuple(design.input_shape)}` → `net(X).shape` = **{tuple(y.shape)}**")
    st.markdown("Its children — `net[i]` is one module of the chain:")
    st.dataframe(lessons.children(net), key="lesson_children", hide_index=True, width="stretch")
    with st.expander("print(net)"):
        st.code(str(net), language=None)


def try_blocks(net: torch.nn.Module, design: builder.Design) -> None:
    st.markdown("Named children are attributes (`net.hidden`), and their names start the parameters' keys:")
    left, right = st.columns(2)
    with left:
        st.dataframe(lessons.children(net), key="lesson_children", hide_index=True, width="stretch")
    with right:
        st.dataframe(lessons.named_parameters(net), key="lesson_named", hide_index=True, width="stretch")
    with st.expander("The block as PyTorch code (to_code)"):
        st.code(builder.to_code(design), language="python")


def try_access(net: torch.nn.Module, design: builder.Design) -> None:
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
    state = net.state_dict()
    st.markdown(f"`net[{layer}].state_dict()`" if layer.isdigit() else f"`net.{layer}.state_dict()`")
    st.dataframe(
        pd.DataFrame([{"key": k.rpartition(".")[2], "shape": str(tuple(state[k].shape))} for k in layers[layer]]),
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
    grad = net.get_parameter(weight).grad if weight in dict(net.named_parameters()) else None
    c = st.columns([3, 2], vertical_alignment="center")
    c[0].markdown(
        f"`{weight}.grad` is **{'None' if grad is None else 'a tensor of shape ' + str(tuple(grad.shape))}**"
        + (" — no backward pass yet." if grad is None else " — filled by the backward pass.")
    )
    if c[1].button("Run a backward pass", key="lesson_backward", icon=":material/functions:"):
        try:
            params.example_gradients(net, builder.example_input(design, builder.devices.device_of(net)))
        except (RuntimeError, ValueError) as e:
            st.error(f"The backward pass failed: {e}", icon=":material/error:")
        else:
            st.rerun()
    with st.expander("Every parameter: net.named_parameters()"):
        st.dataframe(lessons.named_parameters(net), key="lesson_named", hide_index=True, width="stretch")


def try_init(net: torch.nn.Module, design: builder.Design) -> None:
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
    st.caption(
        "This changes the session's weights only. To make an initialization part of the design (kept, "
        "exported in the code), use the Parameters page."
    )


def try_tied(net: torch.nn.Module, design: builder.Design) -> None:
    if "2.weight" not in net.state_dict():
        st.info("This network has no net[2].weight; load the preset (tied).", icon=":material/info:")
        return
    positions = lessons.tied_positions(net)
    st.markdown(
        f"`net[2].weight` is held at: **{', '.join(positions)}**"
        + (" — one tensor, two positions." if len(positions) > 1 else " — only there: not tied.")
    )
    c = st.columns([2, 3, 2], vertical_alignment="bottom")
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


def try_lazy(net: torch.nn.Module, design: builder.Design) -> None:
    try:
        table = builder.lazy_parameters(design)
    except DesignError as e:
        ui.show_error(e)
        return
    if table.empty:
        st.info("This design has no lazy layers; load the preset (lazy_mlp).", icon=":material/info:")
        return
    st.markdown("Before the first forward pass the lazy weights have no shape; after it, torch has inferred it:")
    st.dataframe(table, key="lesson_lazy", hide_index=True, width="stretch")


def try_custom(net: torch.nn.Module, design: builder.Design) -> None:
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


def try_save_load(net: torch.nn.Module, design: builder.Design) -> None:
    st.markdown(
        "Save the session's weights, build a clone from the design, load them into it, and compare "
        "their outputs on the same X:"
    )
    if st.button("Save, load into a clone, compare", key="lesson_save_load", type="primary", icon=":material/save:"):
        try:
            done("save_load", id(net), lessons.save_load(design, net))
        except (ParamsError, DesignError, RuntimeError) as e:
            st.error(f"Saving and loading failed: {e}", icon=":material/error:")
    outcome = result("save_load", id(net))
    if outcome is None:
        return
    st.markdown(f"`torch.save(net.state_dict())`: {outcome.nbytes:,} bytes, keys {', '.join(outcome.keys)}")
    rows = min(outcome.y.shape[0], 2)
    same = (outcome.y_clone == outcome.y).reshape(outcome.y.shape[0], -1)[:rows, :10]
    st.markdown(f"`Y_clone == Y` (first {rows} rows, up to 10 columns):")
    st.dataframe(pd.DataFrame(same.numpy()), key="lesson_same", width="stretch")
    if outcome.equal:
        st.success(
            "**Y_clone == Y** everywhere: the clone computes exactly what the network computes.",
            icon=":material/check_circle:",
        )
    else:
        st.error("Y_clone differs from Y.", icon=":material/error:")


def try_devices(net: torch.nn.Module, design: builder.Design) -> None:
    report = lessons.device_report(net, design)
    st.dataframe(
        pd.DataFrame(
            [
                {"expression": "devices on this machine", "value": ", ".join(report.devices)},
                {"expression": "try_gpu()", "value": report.gpu},
                {"expression": "try_gpu(10)", "value": report.missing},
                {"expression": "net[0].weight.device", "value": report.network},
                {"expression": "net(X).device", "value": report.output},
            ]
        ),
        key="lesson_devices",
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "Change **Device** in the sidebar: the session's network moves there with its weights, as "
        "`net.to(device)` does. Without a GPU, try_gpu() falls back to the CPU."
    )


TRY = {
    "sequential": try_sequential,
    "blocks": try_blocks,
    "access": try_access,
    "init": try_init,
    "tied": try_tied,
    "lazy": try_lazy,
    "custom": try_custom,
    "save_load": try_save_load,
    "devices": try_devices,
}


# -- the page -------------------------------------------------------------------------------------------------


def header(index: int) -> None:
    c = st.columns([1, 5, 1], vertical_alignment="bottom")
    c[0].button(
        "Previous",
        key="lesson_prev",
        icon=":material/arrow_back:",
        on_click=go,
        args=(index - 1,),
        disabled=index == 0,
        width="stretch",
    )
    c[1].selectbox(
        "Step",
        range(len(LESSONS)),
        key="lesson_pick",
        on_change=picked,
        format_func=lambda i: f"{i + 1} · {LESSONS[i].title} ({LESSONS[i].section})",
        label_visibility="collapsed",
    )
    c[2].button(
        "Next",
        key="lesson_next",
        icon=":material/arrow_forward:",
        on_click=go,
        args=(index + 1,),
        disabled=index == len(LESSONS) - 1,
        width="stretch",
        type="primary",
    )
    st.progress((index + 1) / len(LESSONS), text=f"Step {index + 1} of {len(LESSONS)}")


def body(step: Step) -> bool:
    """The idea, the chapter's code, the preset and where to look; True when the preset is the session's."""
    current = ui.design()
    preset = builder.load_example(step.preset)
    loaded = current == preset
    left, right = st.columns([2, 1], gap="medium")
    with left:
        st.markdown(step.idea)
        st.markdown("**The chapter's code**")
        st.code(step.code, language="python", wrap_lines=True)
    with right, st.container(border=True, key="lesson_preset"):
        st.markdown(f"**Preset: `{step.preset}`**")
        st.markdown(preset.description)
        if loaded:
            st.success("Loaded as the session's design.", icon=":material/check_circle:")
        else:
            st.button(
                f"Load {step.preset}",
                key="lesson_load",
                type="primary",
                icon=":material/download:",
                on_click=load_preset,
                help="Replaces the session's design (Undo on the Design page brings yours back).",
            )
        st.markdown(f"**Look at it:** {step.look}")
        st.page_link(step.page, label=f"Open {PAGE_TITLES.get(step.page, step.page)}", icon=":material/arrow_outward:")
    return loaded


st.title("Lessons")
st.caption(
    "The chapter *Builders' Guide* (Dive into Deep Learning, chapter 6), one idea per step. Each step "
    "loads a preset, points at the page that shows it, and lets you try it here on the session's network."
)
index = st.session_state.setdefault(STEP, 0)
st.session_state.lesson_pick = index  # the step list shows the step, also after a visit to another page
step = LESSONS[index]
header(index)
st.header(f"{step.section} · {step.title}")
loaded = body(step)

st.subheader("Try it")
with st.container(border=True, key="lesson_try"):
    if not loaded:
        st.info(
            f"This works on the session's network; load the preset `{step.preset}` to follow the chapter.",
            icon=":material/info:",
        )
    net = ui.net()
    if net is not None:
        try:
            TRY[step.key](net, ui.design())
        except (DesignError, ParamsError) as e:
            ui.show_error(e)
