"""Lessons: the chapter (d2l, Builders' Guide) step by step. Each step loads a preset, points at the page that
shows the idea, and lets the class try it on the session's network. The steps are data (builder.lessons);
the "try it" parts are `ui.lesson_steps`'."""

from __future__ import annotations

import streamlit as st

import builder
import ui
from builder import DesignError, ParamsError
from builder.lessons import LESSONS, Step
from ui import lesson_steps, navigation, state


def go(index: int) -> None:
    """Show step `index` and load its preset (the design before is one Undo away on the Design page)."""
    index = max(0, min(index, len(LESSONS) - 1))
    state.LESSON_STEP.set(index)
    state.LESSON_PICK.set(index)
    state.LESSON_RESULT.pop()
    ui.set_design(builder.load_example(LESSONS[index].preset))


def picked() -> None:
    go(state.LESSON_PICK())


def load_preset() -> None:
    go(state.LESSON_STEP())


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
        key=state.LESSON_PICK.name,
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
    preset = builder.load_example(step.preset)
    loaded = ui.design() == preset
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
        navigation.page_link(step.page)
    return loaded


def main() -> None:
    st.title("Lessons")
    ui.show_last_built()  # when the Design page's draft does not build
    st.caption(
        "The chapter *Builders' Guide* (Dive into Deep Learning, chapter 6), one idea per step. Each step "
        "loads a preset, points at the page that shows it, and lets you try it here on the session's network."
    )
    index = state.LESSON_STEP.setdefault(lambda: 0)
    state.LESSON_PICK.set(index)  # the step list shows the step, also after a visit to another page
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
                lesson_steps.TRY[step.key](net, ui.design())
            except (DesignError, ParamsError) as e:
                ui.show_error(e)


main()
