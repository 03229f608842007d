"""Design: build the session's network by clicking — add, edit, move, group, share, undo; or edit its JSON.

The page edits a draft (the present of an undo history, builder.UndoHistory). Every edit is one of
builder.edit's pure functions; the draft is dry-run at once and the layer at fault is highlighted. The
session's design (what the other pages show) follows the draft whenever the draft builds, so an edit
that breaks the network never loses the last design that worked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

import builder
import ui
from builder import Design, DesignError, DryRun, UndoHistory, addressing, edit, forms
from builder.design import DTYPES, Block, Layer, Node, Use
from builder.diagram import brief
from builder.registry import CATEGORIES, REGISTRY, Arg

HISTORY = "design_history"  # UndoHistory of drafts; its present may not build (then the fault is shown)
SYNCED = "design_synced"  # the session design this page last saw; a change made elsewhere becomes an edit
EDITING = "design_editing"  # path of the row whose editor is open, or None
REFUSED = "design_refused"  # message of the last edit that was refused
JSON_ERROR = "design_json_error"
CONFIRM_CLEAR = "design_confirm_clear"
USE = "shared:"  # prefix of the add list's entries that insert another use of a shared layer
# Widgets that show the draft: forgotten after every edit so they show the new draft.
_WIDGET_PREFIXES = ("sel_", "arg_", "new_")
_WIDGETS = ("name", "share_name", "shared_name", "json", "input_shape", "input_dtype", "group_name", "add_where")


# -- session: the history of drafts --------------------------------------------------------------------


def history() -> UndoHistory:
    """The session's undo history; a design set on another page (an example picked) is recorded as an edit."""
    h: UndoHistory | None = st.session_state.get(HISTORY)
    current = ui.design()
    if h is None:
        h = UndoHistory(current)
    elif st.session_state.get(SYNCED) is not current:
        h = h.push(current)
    st.session_state[HISTORY] = h
    st.session_state[SYNCED] = current
    return h


def commit(h: UndoHistory) -> None:
    """Make `h` the history; the session's design follows its present when that builds."""
    st.session_state[HISTORY] = h
    draft = h.present
    if draft.layers:
        try:
            ui.dry_run(draft)
        except DesignError:
            pass  # kept as a draft, fault highlighted; the session keeps the last design that built
        else:
            ui.set_design(draft)
            st.session_state[SYNCED] = draft
    for key in list(st.session_state):
        if isinstance(key, str) and (key.startswith(_WIDGET_PREFIXES) or key in _WIDGETS):
            del st.session_state[key]
    st.session_state[EDITING] = None
    st.session_state.pop(JSON_ERROR, None)
    st.session_state[CONFIRM_CLEAR] = False


def refuse(e: DesignError) -> None:
    st.session_state[REFUSED] = e


def apply(op: Callable[..., Design], *args: Any, **kwargs: Any) -> None:
    """Callback: apply one of builder.edit's operations to the draft; a refused edit changes nothing."""
    h = history()
    try:
        new = op(h.present, *args, **kwargs)
    except DesignError as e:
        refuse(e)
        return
    commit(h.push(new))


# -- callbacks that read widgets -----------------------------------------------------------------------


def read_args(type_name: str, prefix: str) -> dict[str, Any]:
    """The values of an argument form (see arg_inputs) as a layer's arguments."""
    out: dict[str, Any] = {}
    lazy = forms.lazy_arg(type_name)
    for arg in REGISTRY[forms.form_type(type_name)].args:
        value = st.session_state.get(prefix + arg.name)
        if _widget(arg, lazy) == "text":
            value = forms.parse_value(arg, value or "")
        out[arg.name] = value
    return out


def add_layer() -> None:
    choice, where = st.session_state["add_type"], addressing.parse_path(st.session_state["add_where"])
    name = (st.session_state.get("new_name") or "").strip() or None

    def op(d: Design) -> Design:
        if choice.startswith(USE):
            return edit.use_shared(d, where, choice.removeprefix(USE), name)
        layer = forms.make_layer(choice, read_args(choice, "new_"), name, where=addressing.format_path(where))
        return edit.insert(d, where, layer)

    apply(op)


def apply_edit(path: addressing.Path) -> None:
    def op(d: Design) -> Design:
        node = addressing.node_at(d, path)
        if isinstance(node, Layer):
            d = edit.set_args(d, path, read_args(node.type, "arg_"))
        elif isinstance(node, Use) and isinstance(d.shared[node.shared], Layer):
            d = edit.set_args(d, path, read_args(d.shared[node.shared].type, "arg_"))
        return edit.rename(d, path, st.session_state.get("name"))

    apply(op)


def set_input() -> None:
    def op(d: Design) -> Design:
        return edit.set_input(d, forms.parse_shape(st.session_state["input_shape"]), st.session_state["input_dtype"])

    apply(op)


def share(path: addressing.Path) -> None:
    apply(edit.share, path, (st.session_state.get("share_name") or "").strip())


def rename_shared(old: str) -> None:
    apply(edit.rename_shared, old, (st.session_state.get("shared_name") or "").strip())


def group_selected() -> None:
    chosen = [p for p, _ in addressing.paths(history().present) if st.session_state.get(f"sel_{_k(p)}")]
    apply(edit.group, chosen, (st.session_state.get("group_name") or "").strip() or None)


def apply_json() -> None:
    try:
        new = Design.from_json(st.session_state["json"])
    except DesignError as e:
        st.session_state[JSON_ERROR] = e
        return
    commit(history().push(new))


def undo() -> None:
    apply_history(UndoHistory.undo)


def redo() -> None:
    apply_history(UndoHistory.redo)


def apply_history(step: Callable[[UndoHistory], UndoHistory]) -> None:
    try:
        commit(step(history()))
    except DesignError as e:
        refuse(e)


def load_example() -> None:
    apply(lambda _: builder.load_example(st.session_state["start"]))


def open_editor(path: addressing.Path | None) -> None:
    for key in list(st.session_state):
        if isinstance(key, str) and (key.startswith("arg_") or key in ("name", "share_name", "shared_name")):
            del st.session_state[key]
    st.session_state[EDITING] = path


def reset_new() -> None:
    for key in list(st.session_state):
        if isinstance(key, str) and key.startswith("new_"):
            del st.session_state[key]


# -- rendering -----------------------------------------------------------------------------------------


def seed(key: str, value: Any) -> str:
    """Give the widget `key` its value through the session when it has none (first shown, or forgotten
    after an edit). Passing `value=` instead would not reach a browser that already shows the widget."""
    if key not in st.session_state:
        st.session_state[key] = value
    return key


def _k(path: addressing.Path) -> str:
    return "_".join(map(str, path))


def _widget(arg: Arg, lazy: str | None) -> str:
    if arg.name == lazy:
        return "text"
    return {"int": "number", "float": "number", "bool": "check", "choice": "select"}.get(arg.kind, "text")


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def arg_inputs(type_name: str, values: dict[str, Any], prefix: str) -> None:
    """One input per argument of `type_name`'s form, pre-filled with `values`; two to a row."""
    base = REGISTRY[forms.form_type(type_name)]
    lazy = forms.lazy_arg(type_name)
    if not base.args:
        st.caption(f"{base.name} has no arguments.")
        return
    cols = st.columns(2)
    for i, arg in enumerate(base.args):
        box, key, value = cols[i % 2], prefix + arg.name, values.get(arg.name)
        help_ = arg.help or None
        kind = _widget(arg, lazy)
        if arg.name == lazy:  # a text box: a number box that starts filled cannot be emptied
            st_help = (
                f"{arg.help}. Leave empty to make the layer lazy ({base.lazy}): torch infers "
                f"{arg.name} from the first input."
            )
            box.text_input(
                arg.name,
                key=seed(key, forms.format_value(value)),
                help=st_help,
                placeholder="empty: lazy, torch infers it",
            )
        elif kind == "number":
            step = 1 if arg.kind == "int" else 0.01
            lo = None if arg.min is None else (int(arg.min) if arg.kind == "int" else float(arg.min))
            hi = None if arg.max is None else (int(arg.max) if arg.kind == "int" else float(arg.max))
            extra = {"value": None, "placeholder": "empty: default"} if arg.optional else {}  # may be emptied
            box.number_input(
                arg.name,
                min_value=lo,
                max_value=hi,
                step=step,
                key=seed(key, value),
                help=help_,
                format=None if arg.kind == "int" else "%g",
                **extra,
            )
        elif kind == "check":
            box.checkbox(arg.name, key=seed(key, bool(value)), help=help_)
        elif kind == "select":
            box.selectbox(arg.name, arg.choices, key=seed(key, value), help=help_)
        else:
            hint = {
                "int1": "a number",
                "int2": "a number or two, e.g. 3 or 3, 5",
                "ints": "sizes, e.g. 8 or 4, 8",
                "padding1": "a number, same or valid",
                "padding2": "a number or two, same or valid",
            }[arg.kind]
            box.text_input(
                arg.name,
                key=seed(key, forms.format_value(value)),
                help=f"{help_ or ''} ({hint})",
                placeholder="empty: default" if arg.optional else None,
            )


def row_label(node: Node, key: str, depth: int, draft: Design, run: Any) -> str:
    title = key.rpartition(".")[2]
    indent = "&emsp;" * (2 * depth) + ("↳ " if depth else "")
    inferred = dict(run.inferred) if run is not None else None
    if isinstance(node, Block):
        return f"{indent}**{title} · Sequential** &nbsp; {len(node.layers)} layers"
    if isinstance(node, Use):
        spec = draft.shared[node.shared]
        badge = f":violet-badge[:material/link: shared '{node.shared}']"
        if isinstance(spec, Block):
            return f"{indent}**{title} · Sequential** ({len(spec.layers)} layers) {badge}"
        text = f"{indent}**{title} · {spec.type}** {brief(spec, inferred)} {badge}"
        return text + (" :orange-badge[lazy]" if REGISTRY[spec.type].is_lazy else "")
    text = f"{indent}**{title} · {node.type}** {brief(node, inferred)}"
    if REGISTRY[node.type].is_lazy:
        got = ", ".join(f"{k}={v}" for k, v in (inferred or {}).items())
        text += " :orange-badge[lazy" + (f": {got} inferred" if got else "") + "]"
    return text


def stack(draft: Design, runs: dict[str, Any], fault: DesignError | None) -> None:
    """One row per node: select box, label, output shape and the row's actions; the editor under its row."""
    at_fault = set(addressing.locate(draft, fault.path)) if fault is not None else set()
    editing = st.session_state.get(EDITING)
    walked = list(draft.walk())
    for (path, node), (dpath, key, _) in zip(addressing.paths(draft), walked, strict=True):
        k, run = _k(path), runs.get(dpath)
        siblings = len(addressing.node_at(draft, path[:-1]).layers) if len(path) > 1 else len(draft.layers)
        # wide: one line; narrow: the label on one line, the shape and the actions together on the next
        with st.container(key=f"row_{k}", horizontal=True, vertical_alignment="center", gap="small"):
            st.checkbox(
                "select",
                key=seed(f"sel_{k}", False),
                label_visibility="collapsed",
                width="content",
                help="Select layers next to each other to group them into a block",
            )
            st.markdown(row_label(node, key, len(path) - 1, draft, run), width="stretch")
            with st.container(horizontal=True, vertical_alignment="center", gap="small", wrap=False, width="content"):
                if path in at_fault:
                    st.markdown(":red[**✗ does not fit**]", width="content")
                elif run is not None:
                    st.markdown(f"`{_shape(run.output_shape)}`", width="content")
                st.button(
                    ":material/edit:",
                    key=f"edit_{k}",
                    help="Edit arguments and name",
                    on_click=open_editor,
                    args=(None if editing == path else path,),
                    type="primary" if editing == path else "tertiary",
                )
                st.button(
                    ":material/arrow_upward:",
                    key=f"up_{k}",
                    help="Move up",
                    disabled=path[-1] == 0,
                    on_click=apply,
                    args=(edit.move, path, -1),
                    type="tertiary",
                )
                st.button(
                    ":material/arrow_downward:",
                    key=f"down_{k}",
                    help="Move down",
                    type="tertiary",
                    disabled=path[-1] == siblings - 1,
                    on_click=apply,
                    args=(edit.move, path, 1),
                )
                st.button(
                    ":material/content_copy:",
                    key=f"dup_{k}",
                    help="Duplicate (a shared use: another use)",
                    on_click=apply,
                    args=(edit.duplicate, path),
                    type="tertiary",
                )
                st.button(
                    ":material/delete:",
                    key=f"del_{k}",
                    help="Delete",
                    type="tertiary",
                    on_click=apply,
                    args=(edit.delete, path),
                )
        if path in at_fault and fault is not None:
            st.error(str(fault), icon=":material/error:")
        if editing == path:
            editor(draft, path, node)


def editor(draft: Design, path: addressing.Path, node: Node) -> None:
    """The open row's editor: its arguments (a use: the shared layer's, for every use), name, and the
    actions that only make sense for one node (share, unshare, ungroup)."""
    where = addressing.format_path(path)
    with st.container(border=True, key="editor"):
        spec = draft.shared[node.shared] if isinstance(node, Use) else node
        with st.form("edit_form", border=False):
            if isinstance(node, Use):
                n = len(addressing.uses(draft, node.shared))
                st.markdown(
                    f"**{where}** uses shared layer **'{node.shared}'** — changing its arguments "
                    f"changes all {n} uses (one set of weights)."
                )
            else:
                st.markdown(f"**{where}** · {'Sequential block' if isinstance(node, Block) else node.type}")
            if isinstance(spec, Layer):
                arg_inputs(spec.type, forms.form_values(spec), "arg_")
            st.text_input(
                "Name",
                key=seed("name", node.name or ""),
                placeholder="empty: indexed by position",
                help="Its key in the module and in state_dict (e.g. 'net' gives net.0.weight); empty: its position.",
            )
            st.form_submit_button(
                "Apply", key="apply", type="primary", icon=":material/check:", on_click=apply_edit, args=(path,)
            )
        with st.container(horizontal=True, vertical_alignment="bottom"):
            if isinstance(node, Use):
                st.text_input(
                    "Shared layer name",
                    key=seed("shared_name", node.shared),
                    width=200,
                    help="The shared layer's own name, used by all its uses (not a state_dict key).",
                )
                st.button(
                    "Rename",
                    key="rename_shared",
                    icon=":material/edit_note:",
                    on_click=rename_shared,
                    args=(node.shared,),
                )
                st.button(
                    "Unshare this use",
                    key="unshare",
                    icon=":material/link_off:",
                    on_click=apply,
                    args=(edit.unshare, path),
                    help="This position gets its own copy (own weights); the other uses stay shared.",
                )
                st.button(
                    "Delete all uses",
                    key="delete_shared",
                    icon=":material/delete_sweep:",
                    on_click=apply,
                    args=(edit.delete_shared, node.shared),
                    kwargs={"with_uses": True},
                    help=f"Removes shared layer '{node.shared}' and every position that uses it.",
                )
            else:
                st.text_input(
                    "Shared layer name",
                    key=seed("share_name", edit.suggest_name(draft)),
                    width=220,
                    help="Mark as shared: this position becomes the first use; add more uses "
                    "from 'Add a layer'. Every use is the same module (tied weights).",
                )
                st.button("Mark as shared", key="share", icon=":material/link:", on_click=share, args=(path,))
                if isinstance(node, Block):
                    st.button(
                        "Ungroup",
                        key="ungroup",
                        icon=":material/unfold_less:",
                        on_click=apply,
                        args=(edit.ungroup, path),
                    )
        st.button("Close", key="close", type="tertiary", on_click=open_editor, args=(None,))


def add_panel(draft: Design, run: DryRun | None) -> None:
    """Add a layer: a searchable type list (and uses of the shared layers), where, and its arguments."""
    choices = [USE + name for name in draft.shared]
    choices += sorted(REGISTRY, key=lambda t: (CATEGORIES.index(REGISTRY[t].category), t))
    if st.session_state.get("add_type") not in choices:
        st.session_state["add_type"] = "Linear"

    def label(choice: str) -> str:
        if choice.startswith(USE):
            return f"↺ another use of shared '{choice.removeprefix(USE)}' (same weights)"
        lt = REGISTRY[choice]
        return choice if lt.category == choice else f"{choice} · {lt.category}"

    spots = forms.insert_points(draft)
    with st.container(border=True, key="add_panel"):
        st.markdown("**Add a layer**")
        c = st.columns(2)
        choice = c[0].selectbox(
            "Layer type (type to search)", choices, key="add_type", format_func=label, on_change=reset_new
        )
        if st.session_state.get("add_where") not in spots:
            st.session_state["add_where"] = next(iter(spots))
        where = c[1].selectbox("Where", list(spots), key="add_where", format_func=spots.get, on_change=reset_new)
        with st.form("add_form", border=False):
            if choice.startswith(USE):
                st.caption(
                    "Inserts another use of the shared layer: the same module object, so the same "
                    "weights, at a second place in the network."
                )
            else:
                lazy = forms.lazy_arg(choice)
                if lazy:
                    st.caption(f"Leave **{lazy}** empty to make it lazy: torch infers it from the input.")
                before = forms.input_shape_at(draft, addressing.parse_path(where), run)
                arg_inputs(choice, forms.new_values(choice, before), "new_")
            st.text_input("Name (optional)", key=seed("new_name", ""), placeholder="empty: indexed by position")
            st.form_submit_button("Add", key="add", type="primary", icon=":material/add:", on_click=add_layer)


def toolbar(h: UndoHistory) -> None:
    with st.container(horizontal=True, vertical_alignment="bottom", key="toolbar"):
        st.button("Undo", key="undo", icon=":material/undo:", disabled=not h.can_undo, on_click=undo)
        st.button("Redo", key="redo", icon=":material/redo:", disabled=not h.can_redo, on_click=redo)
        names = builder.example_names()
        st.selectbox(
            "Start from an example", names, key="start", width=220, index=names.index("tied") if "tied" in names else 0
        )
        st.button(
            "Load",
            key="load",
            icon=":material/download:",
            on_click=load_example,
            help="Replace the design with the example (Undo brings yours back)",
        )
        st.button(
            "Clear",
            key="clear",
            icon=":material/delete_forever:",
            on_click=lambda: st.session_state.update({CONFIRM_CLEAR: True}),
            help="Start from an empty design (asks first)",
        )
    if st.session_state.get(CONFIRM_CLEAR):
        with st.container(border=True, key="confirm_clear"):
            st.warning(
                "Discard every layer and start from an empty design? (Undo can bring it back.)",
                icon=":material/warning:",
            )
            a, b, _ = st.columns([1, 1, 3])
            a.button("Yes, clear", key="clear_yes", type="primary", on_click=apply, args=(edit.clear,))
            b.button("Cancel", key="clear_no", on_click=lambda: st.session_state.update({CONFIRM_CLEAR: False}))


def input_row(draft: Design) -> None:
    c = st.columns([1.7, 1], vertical_alignment="bottom")
    c[0].text_input(
        "Example input shape",
        key=seed("input_shape", ", ".join(map(str, draft.input_shape))),
        on_change=set_input,
        help="Batch first, e.g. 2, 20 (2 samples of 20 features) or "
        "1, 1, 28, 28 for one grey 28×28 image. Press Enter to apply.",
    )
    c[1].selectbox(
        "Input dtype",
        DTYPES,
        key=seed("input_dtype", draft.input_dtype),
        on_change=set_input,
        help="int64 for Embedding's indices",
    )


def group_row(draft: Design) -> None:
    chosen = [p for p, _ in addressing.paths(draft) if st.session_state.get(f"sel_{_k(p)}")]
    c = st.columns([2.2, 1.6], vertical_alignment="bottom")
    c[0].text_input(
        "Block name (optional)",
        key=seed("group_name", ""),
        placeholder="empty: indexed by position",
        help="Group the selected layers (next to each other, same level) into a nested Sequential",
    )
    c[1].button(
        f"Group {len(chosen)} selected" if chosen else "Group selected",
        key="group",
        icon=":material/select_all:",
        disabled=not chosen,
        on_click=group_selected,
        width="stretch",
    )


def preview(draft: Design, run: DryRun | None) -> None:
    st.subheader("Preview")
    if not draft.layers:
        st.info("The design is empty: add a layer to start.", icon=":material/add:")
        return
    if run is not None:
        tied = run.parameters_per_use != run.parameters
        per_use = f" · **{run.parameters_per_use:,}** counted per use" if tied else ""
        shape = _shape(run.output_shape).replace(" ", "\u00a0")  # keep "(2, 1)" on one line
        st.markdown(
            f"**{run.parameters:,}** parameters{per_use} · output **{shape}**",
            help="Parameters: what the network holds (a shared layer once). Counted per use: summed over "
            "every state_dict position, a shared layer once per use.",
        )
    with st.container(key="graph"):
        st.graphviz_chart(builder.graph(draft, run) if run is not None else builder.graph(draft))
    st.caption("The Inspect page shows the full parameter table.")


# A row's label shrinks (its text wraps) before the row's actions move to a line of their own.
_CSS = """<style>
.stHorizontalBlock[class*="st-key-row_"] > .stElementContainer:nth-child(2) {
  flex: 1 1 9rem !important; min-width: 9rem;
}
</style>"""


def main() -> None:
    h = history()
    draft = h.present
    st.html(_CSS)
    st.title("Design")
    toolbar(h)
    refused = st.session_state.pop(REFUSED, None)
    if refused is not None:
        st.error(f"Not done: {refused}", icon=":material/block:")
        st.toast(f"Not done: {refused}", icon=":material/block:")  # seen even when the page is scrolled down

    run: DryRun | None = None
    fault: DesignError | None = None
    if draft.layers:
        try:
            run = ui.dry_run(draft)
        except DesignError as e:
            fault = e
    runs = {r.path: r for r in run.layers} if run is not None else {}

    left, right = st.columns([3, 2], gap="large")
    with left:
        tab_stack, tab_json = st.tabs(["Layers", "JSON"])
        with tab_stack:
            input_row(draft)
            if fault is not None:
                if addressing.locate(draft, fault.path):
                    st.warning(
                        "The design does not build: fix the highlighted layer (or Undo). The other pages "
                        "keep the last design that built.",
                        icon=":material/warning:",
                    )
                else:
                    ui.show_error(fault)
            if draft.layers:
                stack(draft, runs, fault)
            group_row(draft)
            add_panel(draft, run)
        with tab_json:
            st.text_area(
                "Design JSON",
                key=seed("json", draft.to_json()),
                height=420,
                help="Edit and apply; an invalid design is refused with the field at fault.",
            )
            st.button("Apply JSON", key="json_apply", icon=":material/check:", on_click=apply_json)
            if (err := st.session_state.get(JSON_ERROR)) is not None:
                ui.show_error(err)
    with right:
        preview(draft, run)


main()
