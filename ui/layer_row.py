"""The Design page's stack: one row per node (select box, label, output shape, actions) and, under the open
row, its editor (arguments, name, and share / unshare / ungroup)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from builder import Design, DesignError, addressing, edit, forms
from builder.design import Block, Layer, Node, Use
from builder.diagram import brief
from builder.registry import REGISTRY
from ui import arg_form, design_draft, flow_panel, state


def shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def row_label(node: Node, key: str, depth: int, draft: Design, run: Any) -> str:
    title = key.rpartition(".")[2]
    indent = "&emsp;" * (2 * depth) + ("↳ " if depth else "")
    inferred = dict(run.inferred) if run is not None else None
    if isinstance(node, Block):
        if node.flow is not None:
            return f"{indent}**{title} · {node.class_name}** &nbsp; `{flow_panel.short_flow_text(node)}`"
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
    editing = state.DESIGN_EDITING.get()
    walked = list(draft.walk())
    for (path, node), (dpath, key, _) in zip(addressing.paths(draft), walked, strict=True):
        k, run = design_draft.row_id(path), runs.get(dpath)
        siblings = len(addressing.node_at(draft, path[:-1]).layers) if len(path) > 1 else len(draft.layers)
        # wide: one line; narrow: the label on one line, the shape and the actions together on the next
        with st.container(key=f"row_{k}", horizontal=True, vertical_alignment="center", gap="small"):
            st.checkbox(
                "select",
                key=state.seed(state.SELECT_PREFIX + k, False),
                label_visibility="collapsed",
                width="content",
                help="Select layers next to each other to group them into a block",
            )
            st.markdown(row_label(node, key, len(path) - 1, draft, run), width="stretch")
            with st.container(horizontal=True, vertical_alignment="center", gap="small", wrap=False, width="content"):
                if path in at_fault:
                    st.markdown(":red[**✗ does not fit**]", width="content")
                elif run is not None:
                    st.markdown(f"`{shape_text(run.output_shape)}`", width="content")
                st.button(
                    ":material/edit:",
                    key=f"edit_{k}",
                    help="Edit arguments and name",
                    on_click=design_draft.open_editor,
                    args=(None if editing == path else path,),
                    type="primary" if editing == path else "tertiary",
                )
                edit_button(":material/arrow_upward:", f"up_{k}", "Move up", (edit.move, path, -1), path[-1] == 0)
                last = path[-1] == siblings - 1
                edit_button(":material/arrow_downward:", f"down_{k}", "Move down", (edit.move, path, 1), last)
                dup_help = (  # what a copy of this row is: another use of the same weights, or new weights
                    f"Duplicate: another use of shared '{node.shared}' (the same weights)"
                    if isinstance(node, Use)
                    else "Duplicate: a copy with its own weights, placed below"
                )
                edit_button(":material/content_copy:", f"dup_{k}", dup_help, (edit.duplicate, path))
                edit_button(":material/delete:", f"del_{k}", "Delete", (edit.delete, path))
        if path in at_fault and fault is not None:
            st.error(str(fault), icon=":material/error:")
        if editing == path:
            editor(draft, path, node)


def edit_button(icon: str, key: str, help: str, edit_args: tuple[Any, ...], disabled: bool = False) -> None:
    """A row's action: an icon button that applies one of builder.edit's operations (`edit_args`: the
    operation and its arguments after the design) to the draft."""
    st.button(icon, key=key, help=help, disabled=disabled, on_click=design_draft.apply, args=edit_args, type="tertiary")


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
                what = node.class_name + " block" if isinstance(node, Block) else node.type
                st.markdown(f"**{where}** · {what}")
            if isinstance(spec, Layer):
                arg_form.arg_inputs(spec.type, forms.form_values(spec), state.ARG_PREFIX)
            st.text_input(
                "Name",
                key=state.seed(state.NODE_NAME.name, node.name or ""),
                placeholder="empty: indexed by position",
                help="Its key in the module and in state_dict (e.g. 'net' gives net.0.weight); empty: its position.",
            )
            st.form_submit_button(
                "Apply",
                key="apply",
                type="primary",
                icon=":material/check:",
                on_click=design_draft.apply_edit,
                args=(path,),
            )
        if isinstance(node, Block) and node.flow is not None:
            flow_panel.panel(draft, path, node)
        with st.container(horizontal=True, vertical_alignment="bottom"):
            if isinstance(node, Use):
                st.text_input(
                    "Shared layer name",
                    key=state.seed(state.SHARED_NAME.name, node.shared),
                    width=200,
                    help="The shared layer's own name, used by all its uses (not a state_dict key).",
                )
                st.button(
                    "Rename",
                    key="rename_shared",
                    icon=":material/edit_note:",
                    on_click=design_draft.rename_shared,
                    args=(node.shared,),
                )
                st.button(
                    "Unshare this use",
                    key="unshare",
                    icon=":material/link_off:",
                    on_click=design_draft.apply,
                    args=(edit.unshare, path),
                    help="This position gets its own copy (own weights); the other uses stay shared.",
                )
                st.button(
                    "Delete all uses",
                    key="delete_shared",
                    icon=":material/delete_sweep:",
                    on_click=design_draft.apply,
                    args=(edit.delete_shared, node.shared),
                    kwargs={"with_uses": True},
                    help=f"Removes shared layer '{node.shared}' and every position that uses it.",
                )
            else:
                st.text_input(
                    "Shared layer name",
                    key=state.seed(state.SHARE_NAME.name, edit.suggest_name(draft)),
                    width=220,
                    help="Mark as shared: this position becomes the first use; add more uses "
                    "from 'Add a layer'. Every use is the same module (tied weights).",
                )
                st.button(
                    "Mark as shared", key="share", icon=":material/link:", on_click=design_draft.share, args=(path,)
                )
                if isinstance(node, Block):
                    st.button(
                        "Ungroup",
                        key="ungroup",
                        icon=":material/unfold_less:",
                        on_click=design_draft.apply,
                        args=(edit.ungroup, path),
                    )
        st.button("Close", key="close", type="tertiary", on_click=design_draft.open_editor, args=(None,))
