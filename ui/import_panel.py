"""The Design page's Import tab: bring existing PyTorch in — pasted code, a .py file (read, never run), a design
.json, or a bare .params file (its outline, a guessed design, and how it fits the session's design).

What comes in is shown first (description, graph); "Use this design" makes it the draft through the undo
history (`design_draft.commit`), so Undo brings the previous design back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

import builder
import ui
from builder import Design, DesignError, ParamsError, addressing
from builder.importing import code_lines
from ui import design_draft, state
from ui.messages import error_text

SOURCES = ("Paste code", "Upload a file")


@dataclass(frozen=True)
class FromCode:
    """A design read from code, with the line that makes each layer (module key -> line), for its messages."""

    design: Design
    lines: Mapping[str, int] = field(default_factory=dict)


_UPLOAD_TYPES = ["py", "json", "params", "pt", "pth"]


def tab() -> None:
    st.caption(
        "Paste PyTorch code (nn.Sequential, a class X(nn.Module), the book's snippets) or upload a .py, a design "
        ".json or a .params file. Code is read, never run."
    )
    source = st.radio("From", SOURCES, key=state.IMPORT_SOURCE.name, horizontal=True, label_visibility="collapsed")
    if source == SOURCES[0]:
        st.text_area(
            "PyTorch code",
            key=state.IMPORT_CODE.name,
            height=260,
            placeholder="shared = nn.Linear(8, 8)\nnet = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared, ...)",
        )
        st.button("Read the code", key="import_read", icon=":material/code:", on_click=read_code)
    else:
        upload = st.file_uploader(
            "A .py, design .json or .params file", type=_UPLOAD_TYPES, key=state.IMPORT_UPLOAD.name
        )
        if upload is not None and state.IMPORT_READ.get() != upload.file_id:
            state.IMPORT_READ.set(upload.file_id)  # each file is read once, not on every rerun
            state.IMPORT_RESULT.set((upload.name, read_file(upload.name, upload.getvalue())))
    result = state.IMPORT_RESULT.get()
    if result is None:
        return
    label, value = result
    if isinstance(value, Exception):
        ui.show_error(value, f"Could not read {label}")
    elif isinstance(value, FromCode):
        offer(value.design, label, lines=value.lines)
    elif isinstance(value, Design):
        offer(value, label)
    else:
        outline_view(value, label)


# -- reading (callbacks: they run before the page) -----------------------------------------------------------------


def read_code() -> None:
    text = state.IMPORT_CODE.get() or ""
    state.IMPORT_RESULT.set(("the code", _from_code(text)))


def read_file(name: str, data: bytes) -> Any:
    """What an uploaded file holds: a design (.py read as code: FromCode; .json: a Design), a (outline, guess)
    pair (.params), or the error saying why not."""
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix == "py":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            return DesignError(f"{name} is not UTF-8 text (byte {e.start})")
        return _from_code(text)
    if suffix == "json":
        try:
            return Design.from_json(data)
        except DesignError as e:
            return e
    try:
        outline = builder.outline_params(data, max_mb=builder.limits().max_upload_mb)  # a browser's upload
    except ParamsError as e:
        return e
    try:
        guess: Design | DesignError = builder.guess_design(outline, name=name.rsplit(".", 1)[0][:100] or "guessed")
    except DesignError as e:
        guess = e
    return outline, guess


def _from_code(text: str) -> FromCode | DesignError:
    if not text.strip():
        return DesignError("there is no code to read: paste some first")
    try:
        return FromCode(*code_lines(text))
    except DesignError as e:
        return e


def adopt(design: Design) -> None:
    """Callback: the imported design becomes the draft (one step of the undo history). One that does not build
    is said so: the other pages keep the last design that built, and Undo brings the previous draft back."""
    design_draft.commit(design_draft.history().push(design))
    fault = _fault(design)
    if fault is None:
        ui.flash(f"Imported {design.name!r}. Undo brings the previous design back.", icon=":material/download_done:")
    else:
        ui.flash(
            f"Imported {design.name!r}, which does not build: {error_text(fault)}. Fix the highlighted layer on "
            f"the Layers tab, or Undo to get your previous design back (the other pages keep the last design that "
            f"built).",
            "warning",
        )


def _fault(design: Design) -> DesignError | None:
    """Why `design` does not build (its dry run's error); None when it builds."""
    try:
        ui.dry_run(design)
    except DesignError as e:
        return e
    return None


# -- showing what came in ----------------------------------------------------------------------------------------------


def offer(design: Design, label: str, key: str = "import_use", lines: Mapping[str, int] | None = None) -> None:
    """The design read, with its graph, and the button that makes it the session's design. One that does not
    build says why, naming the layer (and, read from code, its line), and is used only when asked for."""
    with st.container(border=True, key=f"{key}_box"):
        st.markdown(f"**{design.name}** from {label}")
        if design.description:
            st.caption(design.description)
        try:
            run = ui.dry_run(design)
        except DesignError as fault:  # said here, where it was imported; the session's design is untouched
            line = _line_of(design, fault, lines or {})
            where = f" (the layer at fault is made on line {line} of {label})" if line else ""
            ui.show_error(fault, f"This design does not build{where}, so your design is unchanged")
            st.button(
                "Use it anyway, to fix it",
                key=key,
                icon=":material/build:",
                on_click=adopt,
                args=(design,),
                help="Makes it the draft, with the layer at fault highlighted on the Layers tab; Undo brings your "
                "design back. The other pages keep the last design that built.",
            )
            return
        st.markdown(f"**{run.parameters:,}** parameters · output **{run.output_shape}**")
        st.graphviz_chart(builder.graph(design, run))
        st.button(
            "Use this design",
            key=key,
            icon=":material/input:",
            type="primary",
            on_click=adopt,
            args=(design,),
            help="Replaces the draft; Undo brings the previous design back.",
        )


def _line_of(design: Design, fault: DesignError, lines: Mapping[str, int]) -> int | None:
    """The source line that makes the layer `fault` points at, when known."""
    at = addressing.locate(design, fault.path)
    spots = {addressing.format_path(p) for p in at}
    return next((lines[key] for path, key, _ in design.walk() if path in spots and key in lines), None)


def outline_view(value: tuple[builder.ParamsOutline, Design | DesignError], label: str) -> None:
    """A .params file: its tree and table, how it fits the session's design, and the guessed design."""
    outline, guess = value
    ties = f", {len(outline.ties)} tied group(s)" if outline.ties else ""
    st.markdown(
        f"**{label}**: {len(outline.tensors)} tensors, {outline.count:,} values ({outline.unique_count:,} stored){ties}"
    )
    tree, table, fit = st.tabs(["Tree", "Table", "Against the current design"])
    with tree:
        st.code(outline.tree_text(), language=None)
    with table:
        st.dataframe(outline.table(), hide_index=True, width="stretch", key="import_outline_table")
    with fit:
        current = ui.design()
        try:
            diff = builder.diff_params(current, outline)
        except DesignError as e:
            ui.show_error(e, "The current design does not build")
        else:
            if diff.fits:
                st.success(f"Fits {current.name!r}: {diff.summary()}. The Weights page loads it.")
            else:
                st.warning(f"Does not fit {current.name!r}: {diff.summary()}.", icon=":material/rule:")
            st.dataframe(diff.layers(), hide_index=True, width="stretch", key="import_diff_layers")
            problems = diff.table(problems_only=True)
            if len(problems):
                st.dataframe(problems, hide_index=True, width="stretch", key="import_diff_keys")
    st.markdown("**A design guessed from the file**")
    if isinstance(guess, Exception):
        ui.show_error(guess, "No design could be guessed")
    else:
        offer(guess, label, key="import_use_guess")
