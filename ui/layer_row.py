"""The Design page's stack: a page of rows (select box, label, output shape, fold toggle, edit pencil; a block
is one row until unfolded) and, under the open row, its editor (move, duplicate, delete; arguments, name;
share / unshare / ungroup). builder.stack_view decides which rows there are and how they are paged."""

from __future__ import annotations

from typing import Any

import streamlit as st

from builder import Design, DesignError, addressing, edit, forms, stack_view
from builder.design import Block, Layer, Node, Use
from builder.diagram import brief
from builder.registry import REGISTRY
from ui import arg_form, design_draft, flow_panel, state, theme


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


def row_text(row: stack_view.StackRow, draft: Design, run: Any) -> str:
    """A row's label; a folded block's also says what it holds: all its layers (nested ones too) and parameters."""
    text = row_label(row.node, row.key, row.depth, draft, run)
    if isinstance(row.node, Block) and row.folded:
        n, own = stack_view.layer_count(row.node), len(row.node.layers)
        held = [f"{n} in all"] if n != own or row.node.flow is not None else []
        if run is not None:
            held.append(f"{run.parameters:,} parameters")
        if held:
            text += " :gray[· " + " · ".join(held) + "]"
    return text


def stack(
    draft: Design, runs: dict[str, Any], fault: DesignError | None
) -> tuple[list[stack_view.StackRow], list[str]]:
    """The stack, one page of rows at a time: select box, label, output shape, fold toggle (a block) and the
    edit pencil; the open row's editor under its row. Blocks are folded unless opened; the rows that hold the
    open row or the layer at fault are opened for it. Returns the rows on the page and the module keys of the
    blocks drawn open (the open row's too, when it is a block): what the preview draws one by one."""
    at_fault = set(addressing.locate(draft, fault.path)) if fault is not None else set()
    editing = state.DESIGN_EDITING.get()
    opened = set(state.DESIGN_UNFOLDED.get() or ())
    for p in [*at_fault, *([editing] if editing else [])]:
        opened.update(stack_view.ancestors(p))
    drawn = stack_view.rows(draft, opened)
    page = pager(drawn, editing)
    shown = drawn[page * stack_view.PAGE_SIZE : (page + 1) * stack_view.PAGE_SIZE]
    for row in shown:
        path, k, run = row.path, design_draft.row_id(row.path), runs.get(row.dpath)
        # one line: select box, label (its output shape at the right end), fold toggle, pencil
        with st.container(key=f"row_{k}", horizontal=True, vertical_alignment="center", gap="small"):
            st.checkbox(
                "select",
                key=state.seed(state.SELECT_PREFIX + k, False),
                label_visibility="collapsed",
                width="content",
                help="Select layers next to each other to group them into a block",
            )
            text = row_text(row, draft, run)
            if path in at_fault:
                text += " &nbsp; :red[**✗ does not fit**]"
            elif run is not None:  # the last code span: drawn at the row's right end (the page's CSS)
                text += f" `{shape_text(run.output_shape)}`"
            st.markdown(text, width="stretch")
            # Icon buttons whose label is their accessible name, hidden from sight by the page's CSS (a row's
            # buttons; theme.icon_button's own container would add an element per button: the page's cost)
            if isinstance(row.node, Block):
                st.button(
                    "Unfold block" if row.folded else "Fold block",
                    icon=":material/unfold_more:" if row.folded else ":material/unfold_less:",
                    key=f"fold_{k}",
                    help="Show the layers inside" if row.folded else "Fold: one row for the whole block",
                    on_click=design_draft.toggle_fold,
                    args=(path,),
                    type="tertiary",
                )
            st.button(
                "Edit",
                icon=":material/edit:",
                key=f"edit_{k}",
                help="Open: edit, move, duplicate, share (tie weights) or delete",
                on_click=design_draft.open_editor,
                args=(None if editing == path else path,),
                type="primary" if editing == path else "tertiary",
            )
        if path in at_fault and fault is not None:
            st.error(str(fault), icon=":material/error:")
        if editing == path:
            editor(draft, path, row.node)
    if len(drawn) > stack_view.PAGE_SIZE:
        pager_end(len(drawn))
    opened = [r.key for r in drawn if isinstance(r.node, Block) and (not r.folded or r.path == editing)]
    return shown, opened


def pager(drawn: list[stack_view.StackRow], editing: addressing.Path | None) -> int:
    """The page of rows to draw (drawing a picker when there are several): the page of the row to bring into
    view when there is one (an opened, moved or added row), else the one chosen."""
    size, n = stack_view.PAGE_SIZE, len(drawn)
    pages = stack_view.page_count(n)
    show = state.DESIGN_SHOW.pop()
    if show is not None and (p := stack_view.page_of(drawn, show)) is not None:
        state.DESIGN_PAGE.set(p)
    if not isinstance(state.DESIGN_PAGE.get(), int) or not 0 <= state.DESIGN_PAGE() < pages:
        state.DESIGN_PAGE.set(min(max(state.DESIGN_PAGE.get() or 0, 0), pages - 1))
    if pages == 1:
        return 0
    with st.container(horizontal=True, vertical_alignment="center", gap="small", key="pager"):
        page = state.DESIGN_PAGE()
        theme.icon_button(
            "Previous rows",
            ":material/chevron_left:",
            key="page_prev",
            help="Previous rows",
            disabled=page == 0,
            on_click=state.DESIGN_PAGE.set,
            args=(page - 1,),
        )
        st.selectbox(
            "Rows shown",
            range(pages),
            key=state.DESIGN_PAGE.name,
            format_func=lambda p: f"{p * size + 1}–{min(n, (p + 1) * size)} of {n}",  # fits beside ‹ › at 150 %
            label_visibility="collapsed",
            width=150,
            help=f"The stack is shown {size} rows at a time (folded blocks are one row each).",
        )
        theme.icon_button(
            "Next rows",
            ":material/chevron_right:",
            key="page_next",
            help="Next rows",
            disabled=page == pages - 1,
            on_click=state.DESIGN_PAGE.set,
            args=(page + 1,),
        )
    return state.DESIGN_PAGE()


def pager_end(n: int) -> None:
    """Under a page of rows (when there are several pages): where the rows are, and the next page at hand,
    without scrolling back up to the picker."""
    size, page, pages = stack_view.PAGE_SIZE, state.DESIGN_PAGE(), stack_view.page_count(n)
    with st.container(horizontal=True, vertical_alignment="center", gap="small", key="pager_end"):
        st.caption(f"rows {page * size + 1}–{min(n, (page + 1) * size)} of {n}", width="content")
        st.button(
            "Next rows",
            key="page_next_end",
            icon=":material/chevron_right:",
            disabled=page == pages - 1,
            on_click=state.DESIGN_PAGE.set,
            args=(page + 1,),
            type="tertiary",
        )


def row_actions(draft: Design, path: addressing.Path, node: Node) -> None:
    """The open row's moves and edits: up, down, to a position in its block, duplicate, delete."""
    k = design_draft.row_id(path)
    siblings = len(addressing.siblings_of(draft, path))
    i = path[-1]
    with st.container(horizontal=True, vertical_alignment="bottom", gap="small", key="open_actions"):
        st.button(
            "Up",
            key=f"up_{k}",
            icon=":material/arrow_upward:",
            help="Move up (towards the input)",
            disabled=i == 0,
            on_click=design_draft.move_row,
            args=(path, -1),
        )
        st.button(
            "Down",
            key=f"down_{k}",
            icon=":material/arrow_downward:",
            help="Move down (towards the output)",
            disabled=i == siblings - 1,
            on_click=design_draft.move_row,
            args=(path, 1),
        )
        where = "the stack" if len(path) == 1 else "its block"
        st.number_input(
            f"Position in {where} (1–{siblings})",
            min_value=1,
            max_value=max(siblings, 1),
            step=1,
            key=state.seed(state.MOVE_TO.name, i + 1),
            width=170,
        )
        st.button("Move", key="move_go", icon=":material/low_priority:", on_click=design_draft.move_to, args=(path,))
        dup_help = (  # what a copy of this row is: another use of the same weights, or new weights
            f"Duplicate: another use of shared '{node.shared}' (the same weights)"
            if isinstance(node, Use)
            else "Duplicate: a copy with its own weights, placed below; its input size follows what it receives "
            "there (a copy of Linear(4, 8) is Linear(8, 8))"
        )
        st.button(
            "Duplicate",
            key=f"dup_{k}",
            icon=":material/content_copy:",
            help=dup_help,
            on_click=design_draft.duplicate_row,
            args=(path,),
        )
        st.button(
            "Delete",
            key=f"del_{k}",
            icon=":material/delete:",
            help="Delete",
            on_click=design_draft.delete_row,
            args=(path,),
        )


def editor(draft: Design, path: addressing.Path, node: Node) -> None:
    """The open row's editor: its arguments (a use: the shared layer's, for every use), name, and the
    actions that only make sense for one node (share, unshare, ungroup)."""
    where = addressing.format_path(path)
    with st.container(border=True, key="editor"):
        row_actions(draft, path, node)
        share_row(draft, path, node)
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
        if isinstance(node, Block):  # its flow (a Sequential: where an op or a skip can be added)
            flow_panel.panel(draft, path, node)
        else:  # a tuple-returning layer a flow calls: which output it takes
            flow_panel.output_picker(draft, path)
        st.button("Close", key="close", type="tertiary", on_click=design_draft.open_editor, args=(None,))


def share_row(draft: Design, path: addressing.Path, node: Node) -> None:
    """The open row's weight sharing (at the editor's top, where it is seen): mark it shared under a name; a
    use: rename its shared layer, unshare it, delete all uses. A block: ungroup."""
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
                "Share weights",
                key="share",
                icon=":material/link:",
                on_click=design_draft.share,
                args=(path,),
                help="Tied weights: this position becomes the first use of the shared layer named here; use it "
                "again with Duplicate or 'Add a layer' (the same module, one set of weights, as the chapter's "
                "`shared = nn.Linear(8, 8)`).",
            )
            if isinstance(node, Block):
                st.button(
                    "Ungroup",
                    key="ungroup",
                    icon=":material/unfold_less:",
                    on_click=design_draft.ungroup_row,
                    args=(path,),
                )
