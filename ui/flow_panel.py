"""A flow block on the Design page: its flow in one line (the stack's row) and, in the open row's editor, its
branches side by side with their merge, and the controls that edit them (builder.edit's flow operations)."""

from __future__ import annotations

import json

import streamlit as st

from builder import Design, DesignError, addressing, edit
from builder.design import Block, Node
from builder.flow import MERGES, Branches, Call, Op, Step, merge_label
from ui import design_draft, state

SHORTCUT = '{"type": "LazyConv2d", "out_channels": 64, "kernel_size": 1, "name": "conv3"}'  # the book's use_1x1conv


def step_text(step: Step) -> str:
    """ "conv1", "relu", "[conv1 → bn1 | skip] +" ."""
    if isinstance(step, Call):
        return step.target + (f"[{step.output}]" if step.output else "")
    if isinstance(step, Op):
        return step.op
    lanes = " | ".join(" → ".join(map(step_text, b)) or "skip" for b in step.branches)
    return f"[{lanes}] {merge_label(step.merge, step.dim)}"


def flow_text(block: Block) -> str:
    return " → ".join(map(step_text, block.flow or ()))


def short_flow_text(block: Block) -> str:
    """The flow for a row: a branch of more than two steps as its first and last ("[conv1 … bn2 | skip] +")."""

    def brief(step: Step) -> str:
        if not isinstance(step, Branches):
            return step_text(step)
        lanes = []
        for b in step.branches:
            parts = [brief(s) for s in b]
            lanes.append(" → ".join(parts) if len(parts) <= 2 else f"{parts[0]} … {parts[-1]}")
        return f"[{' | '.join(x or 'skip' for x in lanes)}] {merge_label(step.merge, step.dim)}"

    return " → ".join(map(brief, block.flow or ()))


def panel(draft: Design, path: addressing.Path, block: Block) -> None:
    """Each branches step of the block: one column per branch (its steps, reorder/remove, move a step out or to
    the next branch), the merge and its dim, add a branch (identity) or a layer to a branch (a shortcut)."""
    flow = block.flow or ()
    k = design_draft.row_id(path)
    st.markdown(f"**Flow** &nbsp; `{flow_text(block)}`")
    for i, step in enumerate(flow):
        if not isinstance(step, Branches):
            continue
        with st.container(border=True, key=f"flow_{k}_{i}"):
            n = len(step.branches)
            cols = st.columns(n)
            for b, (col, lane) in enumerate(zip(cols, step.branches, strict=True)):
                with col:
                    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
                        st.markdown(f"**branch {b}**" + (" · identity (skip)" if not lane else ""), width="content")
                        branch_buttons(path, k, i, b, n)
                    for j, s in enumerate(lane):
                        c = st.columns([3, 1, 1], vertical_alignment="center")
                        c[0].markdown(f"`{step_text(s)}`")
                        if n > 1:
                            c[1].button(
                                ":material/arrow_forward:",
                                key=f"to_next_{k}_{i}_{b}_{j}",
                                help=f"Move to the end of branch {(b + 1) % n}",
                                on_click=flow_edit,
                                args=(path, edit.move_call, i, b, j, (b + 1) % n),
                                type="tertiary",
                            )
                        c[2].button(
                            ":material/south:",
                            key=f"out_{k}_{i}_{b}_{j}",
                            help="Move out of the branches: run it after the merge",
                            on_click=flow_edit,
                            args=(path, edit.move_call, i, b, j, None),
                            type="tertiary",
                        )
            merge_controls(path, i, step)
            branch_adders(path, i, step)


def branch_buttons(path: addressing.Path, k: str, i: int, b: int, n: int) -> None:
    """Move branch `b` of step `i` left / right (cat joins in this order), or remove it."""
    for icon, key, helptext, offset, off in (
        (":material/arrow_back:", "left", "Move this branch left", -1, b == 0),
        (":material/arrow_forward:", "right", "Move this branch right", 1, b == n - 1),
    ):
        st.button(
            icon,
            key=f"branch_{key}_{k}_{i}_{b}",
            help=helptext,
            disabled=off,
            on_click=flow_edit,
            args=(path, edit.move_branch, i, b, offset),
            type="tertiary",
        )
    st.button(
        ":material/delete:",
        key=f"branch_del_{k}_{i}_{b}",
        help="Remove this branch (and the layers only it calls)",
        disabled=n == 1,
        on_click=flow_edit,
        args=(path, edit.remove_branch, i, b),
        type="tertiary",
    )


def merge_controls(path: addressing.Path, i: int, step: Branches) -> None:
    with st.container(horizontal=True, vertical_alignment="bottom"):
        names = list(MERGES)
        st.selectbox(
            "Merge",
            names,
            key=state.seed(state.flow_key("merge", i).name, step.merge),
            width=140,
            help="cat / stack join along a dim; add, mul and mean need equal shapes",
        )
        st.number_input(
            "dim",
            key=state.seed(state.flow_key("dim", i).name, step.dim if step.dim is not None else 1),
            step=1,
            width=110,
            disabled=not MERGES[state.flow_key("merge", i).get() or step.merge][1],
        )
        st.button("Set merge", key=f"set_merge_{i}", on_click=set_merge, args=(path, i), icon=":material/merge:")
        st.button(
            "Add branch",
            key=f"add_branch_{i}",
            on_click=flow_edit,
            args=(path, edit.add_branch, i),
            icon=":material/add:",
            help="A new empty branch: the identity (a skip connection)",
        )


def branch_adders(path: addressing.Path, i: int, step: Branches) -> None:
    empty = next((b for b, lane in enumerate(step.branches) if not lane), 0)
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.text_input(
            "Layer to add (JSON)",
            key=state.seed(state.flow_key("layer", i).name, SHORTCUT),
            help="A layer as the design JSON writes it; on a skip branch it is the shortcut (the book's 1x1 conv)",
        )
        st.selectbox(
            "to branch", list(range(len(step.branches))), index=empty, key=state.flow_key("pick", i).name, width=110
        )
        st.button(
            "Add to branch", key=f"add_to_branch_{i}", on_click=add_to_branch, args=(path, i), icon=":material/add:"
        )


# -- callbacks -------------------------------------------------------------------------------------------


def flow_edit(path: addressing.Path, op: object, *args: object) -> None:
    """Apply one of builder.edit's flow operations to the block at `path`; its editor stays open."""
    design_draft.apply(op, path, *args)  # type: ignore[arg-type]
    state.DESIGN_EDITING.set(path)


def set_merge(path: addressing.Path, i: int) -> None:
    merge = state.flow_key("merge", i).get() or "cat"
    dim = int(state.flow_key("dim", i).get() or 0) if MERGES[merge][1] else None
    flow_edit(path, edit.set_merge, i, merge, dim)


def add_to_branch(path: addressing.Path, i: int) -> None:
    try:
        node = read_layer(state.flow_key("layer", i).get() or "")
    except DesignError as e:
        design_draft.refuse(e)
        return
    flow_edit(path, edit.add_to_branch, i, int(state.flow_key("pick", i).get() or 0), node)


def read_layer(text: str) -> Node:
    """One layer from its design JSON, checked as a design reads it."""
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as e:
        raise DesignError(f"layer to add: not valid JSON ({e.msg} at column {e.colno})") from None
    one = Design.from_dict({"format": 2, "input": {"shape": [1]}, "layers": [spec]})
    return one.layers[0]
