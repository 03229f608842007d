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


# A narrow window (a projector at 150 %: 853 CSS px, ~540 beside the sidebar): a smaller title leaves the step
# list room to read "4/13 · Code in forward…" rather than "Step 4 c…".
_CSS = """<style>
@media (max-width: 1000px) {
  .st-key-lesson_nav h1 { font-size: 2rem !important; }
  .st-key-lesson_nav .stButton button { padding-left: 0.5rem; padding-right: 0.5rem; }
}
</style>"""


def header(index: int) -> None:
    """The page's title, then Previous, the step list and Next, on one line: the buttons keep their words (a
    projector at 150 % is 853 CSS pixels wide) and the list takes what is left; the step's title follows."""
    st.html(_CSS)
    with st.container(horizontal=True, vertical_alignment="center", gap="small", wrap=False, key="lesson_nav"):
        st.title(
            "Lessons",
            help="The chapter *Builders' Guide* (Dive into Deep Learning, chapter 6), one idea per step. Each step "
            "loads a preset, points at the page that shows it, and lets you try it here on the session's network.",
            width="content",
        )
        st.button(
            "Previous",
            key="lesson_prev",
            icon=":material/arrow_back:",
            on_click=go,
            args=(index - 1,),
            disabled=index == 0,
        )
        st.selectbox(
            "Step",
            range(len(LESSONS)),
            key=state.LESSON_PICK.name,
            on_change=picked,
            format_func=lambda i: f"{i + 1}/{len(LESSONS)} · {LESSONS[i].title} ({LESSONS[i].section})",
            label_visibility="collapsed",
            width="stretch",
        )
        st.button(
            "Next",
            key="lesson_next",
            icon=":material/arrow_forward:",
            on_click=go,
            args=(index + 1,),
            disabled=index == len(LESSONS) - 1,
            type="primary",
        )


def preset_bar(step: Step) -> bool:
    """One line under the idea: the step's preset, loaded or a button that loads it. True when the preset is the
    session's design."""
    preset = builder.load_example(step.preset)
    loaded = ui.design() == preset
    with st.container(horizontal=True, vertical_alignment="center", gap="small", key="lesson_preset"):
        if loaded:
            st.markdown(
                f":green-badge[:material/check_circle: Loaded] preset `{step.preset}`",
                help=preset.description,
                width="content",
            )
        else:
            st.button(
                f"Load {step.preset}",
                key="lesson_load",
                type="primary",
                icon=":material/download:",
                on_click=load_preset,
                help=f"{preset.description} Replaces the session's design (Undo on the Design page brings yours back).",
            )
    return loaded


def try_it(step: Step, loaded: bool) -> None:
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


def main() -> None:
    index = state.LESSON_STEP.setdefault(lambda: 0)
    state.LESSON_PICK.set(index)  # the step list shows the step, also after a visit to another page
    step = LESSONS[index]
    header(index)
    ui.show_last_built()  # when the Design page's draft does not build
    st.subheader(f"{step.section} · {step.title}")
    # The idea, then at once what to do with it (a projector at 150 % shows ~530 CSS pixels: the step's action
    # must be on the first screen); the chapter's code is one tab further.
    st.markdown(step.idea)
    loaded = preset_bar(step)
    tab_try, tab_code = st.tabs(["Try it", "The chapter's code"])
    with tab_try:
        try_it(step, loaded)
        with st.container(horizontal=True, vertical_alignment="center", gap="small", key="lesson_look"):
            st.markdown(f"**Then look at it** on {navigation.PAGES[step.page].title}: {step.look}", width="content")
            navigation.page_link(step.page)
    with tab_code:
        st.code(step.code, language="python", wrap_lines=True)


main()
