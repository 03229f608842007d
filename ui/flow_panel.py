"""Flows on the Design page: a flow block's flow (in its row's editor) and the network's own (a panel above the
stack). Each shows its steps with their controls, branches side by side with their merge, and a form that adds a
step — a parameter-free op, a layer (the same argument form as the Add panel) or a branches step — at a chosen
place. Every control applies one of builder.edit's flow operations; a holder is addressed by its path, the
network by (). A Sequential (block or network) shows the form too: adding a step makes it a chain flow.

Widget keys name the holder (`holder_id`: the row id, "top" for the network) and the step's place (`at_id`:
"1" for step 1 of the flow, "0_1_2" for step 2 of branch 1 of step 0), so two panels can show at once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import streamlit as st

from builder import Design, DesignError, addressing, edit, forms
from builder.build import dry_run_until_fault
from builder.design import Block, Node, child_key, layer_type
from builder.flow import MERGES, OPS, Branches, Call, Step, StepAt, flow_points, merge_label, step_text, steps_at
from builder.registry import CATEGORIES, REGISTRY
from ui import arg_form, design_draft, state, theme

# A branch step's menu button: its icon only (its label is hidden by ui.theme; the popover's chevron here too).
_CSS = f"""<style>
[class*="st-key-{theme.ICON_BUTTON_KEY}flowmenu_"] [data-testid="stPopoverButton"] div[aria-hidden="true"] {{
  display: none;
}}
</style>"""
OP = "op:"  # prefix of the step list's operations ("op:relu"); BRANCHES adds a branches step; else a layer type
BRANCHES = "branches"


def holder_id(path: addressing.Path) -> str:
    return design_draft.row_id(path) or "top"


def at_id(at: StepAt) -> str:
    return "_".join(map(str, at))


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


def top_panel(draft: Design) -> None:
    """The network's own flow, folded above the stack (Inception's branches, LSTMLM's chain); on a plain stack,
    the place to add an op (which makes the stack a chain flow)."""
    if not draft.layers:
        return
    top = edit.flow_holder(draft, ())
    if top.flow is not None:
        top = replace(top, cls=draft.class_name)  # the network's default class name is "Net", a block's "Block"
        label = f"Flow of the network · {top.class_name}: {short_flow_text(top)}"
    else:
        label = "Flow of the network: layers in order · add an op (F.relu, mean…)"
    with st.expander(label, icon=":material/account_tree:", key="top_flow"):
        panel(draft, (), top)


def panel(draft: Design, path: addressing.Path, block: Block) -> None:
    """The holder's flow: its class name, each step with its controls (branches side by side), the add form."""
    k = holder_id(path)
    st.html(_CSS)  # (a style only: it takes no room)
    if block.flow is None:
        st.caption(
            "Runs its layers in order (nn.Sequential). Adding a step here makes it a flow: its layers called in "
            "order, and your step where you put it."
        )
    else:
        with st.container(horizontal=True, vertical_alignment="bottom"):
            st.markdown(f"**Flow** &nbsp; `{flow_text(block)}`", width="stretch")
            st.text_input(
                "Class",
                key=state.seed(state.flow_key("class", k).name, block.class_name),
                on_change=set_class,
                args=(path,),
                width=150,
                help="The module's class name: its repr and the class the exported code writes (Enter applies)",
            )
        steps(draft, path, block, block.flow, ())
    adder(draft, path, block)


def steps(draft: Design, path: addressing.Path, block: Block, lane: tuple[Step, ...], prefix: StepAt) -> None:
    for j, s in enumerate(lane):
        at = (*prefix, j)
        if isinstance(s, Branches):
            branches_box(draft, path, block, s, at)
        else:
            step_row(draft, path, block, s, at, len(lane))


def step_row(draft: Design, path: addressing.Path, block: Block, s: Step, at: StepAt, n: int) -> None:
    """One step: its text and its actions (see step_actions); in a branch, whose column is narrow, the actions
    (and a tuple-returning layer's output) sit in a menu."""
    k, a = holder_id(path), at_id(at)
    in_branch = len(at) > 1  # a narrow column: the step and its menu stay on one line
    with st.container(
        horizontal=True, vertical_alignment="center", gap="small", wrap=not in_branch, key=f"flowstep_{k}_{a}"
    ):
        st.markdown(f"`{step_text(s)}`", width="content")
        if in_branch:  # the menu's button shows its icon; its label is what a screen reader says (ui.theme)
            with (
                st.container(key=f"{theme.ICON_BUTTON_KEY}flowmenu_{k}_{a}", width="content"),
                st.popover("Move or remove this step", icon=":material/more_vert:", type="tertiary"),
            ):
                if isinstance(s, Call):
                    output_select(draft, path, block, s, at)
                step_actions(path, block, at, n, words=True)
        else:
            if isinstance(s, Call):
                output_select(draft, path, block, s, at, in_row=True)
            step_actions(path, block, at, n, words=False)


def step_actions(path: addressing.Path, block: Block, at: StepAt, n: int, words: bool) -> None:
    """Run it earlier / later in its chain or branch, remove it; in a branch (of any branches step, nested ones
    too) also: to the next branch, out of the branches (after the merge). Icons, or icons with `words`."""
    k, a = holder_id(path), at_id(at)
    actions: list[tuple[str, str, str, str, tuple[object, ...], bool]] = [
        (
            ":material/arrow_upward:",
            "Earlier",
            f"step_up_{k}_{a}",
            "Run it earlier",
            (edit.move_step, at, -1),
            at[-1] == 0,
        ),
        (
            ":material/arrow_downward:",
            "Later",
            f"step_down_{k}_{a}",
            "Run it later",
            (edit.move_step, at, 1),
            at[-1] == n - 1,
        ),
    ]
    if len(at) >= 3:  # step j of branch b of the branches step at `outer` (the holder's own, or a nested one)
        outer, b, j = at[:-2], at[-2], at[-1]
        lanes = len(_branches_at(block, outer).branches)
        if lanes > 1:
            to = (b + 1) % lanes
            actions.append(
                (
                    ":material/arrow_forward:",
                    f"To branch {to}",
                    f"to_next_{k}_{a}",
                    f"Move to the end of branch {to}",
                    (edit.move_call, outer, b, j, to),
                    False,
                )
            )
        actions.append(
            (
                ":material/south:",
                "After the merge",
                f"out_{k}_{a}",
                "Move out of the branches: run it after the merge",
                (edit.move_call, outer, b, j, None),
                False,
            )
        )
    actions.append(
        (
            ":material/close:",
            "Remove",
            f"step_del_{k}_{a}",
            "Remove this step (a layer's only call: the layer goes too)",
            (edit.remove_step, at),
            False,
        )
    )
    for icon, text, key, helptext, op, off in actions:
        common: dict[str, Any] = {"disabled": off, "on_click": flow_edit, "args": (path, *op), "type": "tertiary"}
        if words:
            st.button(text, icon=icon, key=key, help=helptext, **common)
        else:
            theme.icon_button(helptext, icon, key=key, **common)


def _branches_at(block: Block, at: StepAt) -> Branches:
    step = dict(steps_at(block.flow or ()))[at]
    assert isinstance(step, Branches)
    return step


def branches_box(draft: Design, path: addressing.Path, block: Block, step: Branches, at: StepAt) -> None:
    """A branches step: one column per branch (its steps, move left / right, remove), its merge and dim."""
    k, a = holder_id(path), at_id(at)
    n = len(step.branches)
    with st.container(border=True, key=f"flow_{k}_{a}"):
        for b, (col, lane) in enumerate(zip(st.columns(n), step.branches, strict=True)):
            with col:
                with st.container(horizontal=True, gap="small", vertical_alignment="center"):
                    st.markdown(f"**branch {b}**" + (" · identity (skip)" if not lane else ""), width="content")
                    branch_buttons(path, k, a, at, b, n)
                steps(draft, path, block, lane, (*at, b))
        merge_controls(path, k, a, at, step)


def branch_buttons(path: addressing.Path, k: str, a: str, at: StepAt, b: int, n: int) -> None:
    """Move branch `b` left / right (cat joins in this order), or remove it."""
    for icon, key, helptext, offset, off in (
        (":material/arrow_back:", "left", "Move this branch left", -1, b == 0),
        (":material/arrow_forward:", "right", "Move this branch right", 1, b == n - 1),
    ):
        theme.icon_button(
            helptext,
            icon,
            key=f"branch_{key}_{k}_{a}_{b}",
            help=helptext,
            disabled=off,
            on_click=flow_edit,
            args=(path, edit.move_branch, at, b, offset),
            type="tertiary",
        )
    theme.icon_button(
        "Remove this branch",
        ":material/delete:",
        key=f"branch_del_{k}_{a}_{b}",
        help="Remove this branch (and the layers only it calls)",
        disabled=n == 1,
        on_click=flow_edit,
        args=(path, edit.remove_branch, at, b),
        type="tertiary",
    )


def merge_controls(path: addressing.Path, k: str, a: str, at: StepAt, step: Branches) -> None:
    merge_key, dim_key = state.flow_key("merge", k, a), state.flow_key("dim", k, a)
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.selectbox(
            "Merge",
            list(MERGES),
            key=state.seed(merge_key.name, step.merge),
            width=140,
            help="cat / stack join along a dim; add, mul and mean need equal shapes",
        )
        st.number_input(
            "dim",
            key=state.seed(dim_key.name, step.dim if step.dim is not None else 1),
            step=1,
            width=110,
            disabled=not MERGES[merge_key.get() or step.merge][1],
        )
        st.button("Set merge", key=f"set_merge_{k}_{a}", on_click=set_merge, args=(path, at), icon=":material/merge:")
        st.button(
            "Add branch",
            key=f"add_branch_{k}_{a}",
            on_click=flow_edit,
            args=(path, edit.add_branch, at),
            icon=":material/add:",
            help="A new empty branch: the identity (a skip connection); add layers or ops to it below",
        )


def output_select(
    draft: Design, path: addressing.Path, block: Block, call: Call, at: StepAt, in_row: bool = False
) -> None:
    """Which output a call of a tuple-returning layer takes (LSTM: the sequence output, h or c)."""
    found = None if "." in call.target else _child(block, call.target)
    lt = layer_type(found, draft.shared) if found is not None else None
    if lt is None or not lt.outputs:
        return
    outputs = list(lt.outputs)
    key = state.flow_key("out" + ("" if in_row else "row"), holder_id(path), at_id(at))
    st.selectbox(
        f"Output of {call.target} the flow takes",
        outputs,
        key=state.seed(key.name, call.output or lt.default_output or outputs[0]),
        format_func=lambda o: OUTPUT_WORDS.get(o, o),
        on_change=set_output,
        args=(path, at, key.name),
        width=180 if in_row else 260,
        label_visibility="collapsed" if in_row else "visible",
        help=f"{lt.name} returns a tuple ({', '.join(outputs)}); the flow hands one of them on",
    )


OUTPUT_WORDS = {"output": "output (the sequence)", "h": "h (last hidden state)", "c": "c (last cell state)"}


def output_picker(draft: Design, path: addressing.Path) -> None:
    """In a layer's editor: the output each call of it takes, when it returns a tuple and a flow calls it."""
    if len(path) < 1:
        return
    try:
        holder = edit.flow_holder(draft, path[:-1])
    except DesignError:
        return
    node = holder.layers[path[-1]]
    key = child_key(node, path[-1])
    for at, s in steps_at(holder.flow or ()):
        if isinstance(s, Call) and s.target == key:
            output_select(draft, path[:-1], holder, s, at)


def _child(block: Block, key: str) -> Node | None:
    return next((n for i, n in enumerate(block.layers) if child_key(n, i) == key), None)


def adder(draft: Design, path: addressing.Path, block: Block) -> None:
    """Add a step: an op (F.relu, mean, flatten, reshape, permute, transpose, select, …), a branches step or a
    layer (a new child, called there), at a chosen place of the chain or a branch, with its arguments."""
    k = holder_id(path)
    flow = block.flow if block.flow is not None else tuple(Call(child_key(n, i)) for i, n in enumerate(block.layers))
    points = flow_points(flow)
    kinds = [OP + name for name in OPS] + [BRANCHES]
    kinds += sorted(REGISTRY, key=lambda t: (CATEGORIES.index(REGISTRY[t].category), t))
    kind_key, where_key = state.flow_key("kind", k), state.flow_key("where", k)
    if kind_key.get() not in kinds:
        kind_key.set(OP + "relu")
    options = [at_id(p) for p in points]
    if where_key.get() not in options:  # first shown: a residual block's skip (where a shortcut goes), else the end
        skips = [
            (*a, b, 0) for a, s in steps_at(flow) if isinstance(s, Branches) for b, x in enumerate(s.branches) if not x
        ]
        where_key.set(at_id(skips[0]) if skips else options[0])
    labels = {at_id(p): text for p, text in points.items()}
    prefix = state.flow_key("arg", k).name + "_"
    with st.container(border=True, key=f"flow_adder_{k}"):
        st.markdown("**Add a step**")
        c = st.columns(2)
        kind = c[0].selectbox(
            "Step (type to search)",
            kinds,
            key=kind_key.name,
            format_func=kind_label,
            on_change=state.forget_widgets,
            args=((prefix,),),
        )
        where = c[1].selectbox(
            "Where",
            options,
            key=where_key.name,
            format_func=labels.get,
            on_change=state.forget_widgets,
            args=((prefix,),),
        )
        at = tuple(int(x) for x in where.split("_"))
        with st.form(f"flow_add_form_{k}", border=False):
            if kind.startswith(OP):
                st.caption(OPS[kind.removeprefix(OP)].doc + " · adds no parameters")
                arg_form.op_inputs(kind.removeprefix(OP), forms.op_values(kind.removeprefix(OP)), prefix)
            elif kind == BRANCHES:
                st.caption("Two empty branches joined by + (x + x): add layers or ops to them, choose the merge.")
            else:
                shape = forms.flow_input_shape(draft, path, at, dry_run_until_fault(draft))
                arg_form.size_note(kind, shape)
                arg_form.arg_inputs(kind, forms.new_values(kind, shape), prefix)
                st.text_input(
                    "Name (optional)",
                    key=state.seed(state.flow_key("name", k).name, ""),
                    placeholder="empty: indexed by position",
                )
            st.form_submit_button(
                "Add step", key=f"add_step_{k}", type="primary", icon=":material/add:", on_click=add_step, args=(path,)
            )


def kind_label(kind: str) -> str:
    if kind.startswith(OP):
        name = kind.removeprefix(OP)
        return f"{name} · op"
    if kind == BRANCHES:
        return "branches · a skip or parallel paths"
    lt = REGISTRY[kind]
    return kind if lt.category == kind else f"{kind} · {lt.category}"


# -- callbacks -------------------------------------------------------------------------------------------


def flow_edit(path: addressing.Path, op: object, *args: object) -> None:
    """Apply one of builder.edit's flow operations to the holder at `path`; a block's editor stays open."""
    before = design_draft.history().present
    design_draft.apply(op, path, *args)  # type: ignore[arg-type]
    design_draft.follow_removals(before, path)  # a layer gone with its step: later open blocks move up
    design_draft.tell_flow(before, path)
    state.DESIGN_EDITING.set(path or None)


def set_merge(path: addressing.Path, at: StepAt) -> None:
    k, a = holder_id(path), at_id(at)
    merge = state.flow_key("merge", k, a).get() or "cat"
    dim = int(state.flow_key("dim", k, a).get() or 0) if MERGES[merge][1] else None
    flow_edit(path, edit.set_merge, at, merge, dim)


def set_output(path: addressing.Path, at: StepAt, key: str) -> None:
    flow_edit(path, edit.set_output, at, st.session_state.get(key))


def set_class(path: addressing.Path) -> None:
    flow_edit(path, edit.set_class, state.flow_key("class", holder_id(path)).get())


def add_step(path: addressing.Path) -> None:
    k = holder_id(path)
    kind = state.flow_key("kind", k).get() or OP + "relu"
    at = tuple(int(x) for x in (state.flow_key("where", k).get() or "0").split("_"))
    prefix = state.flow_key("arg", k).name + "_"
    where = f"{addressing.format_path(path)}.flow" if path else "flow"
    item: Node | Step
    try:
        if kind.startswith(OP):
            name = kind.removeprefix(OP)
            item = forms.make_op(name, arg_form.read_op_args(name, prefix), where=f"{where} {name}")
        elif kind == BRANCHES:
            item = Branches(((), ()), "add")
        else:
            name = (state.flow_key("name", k).get() or "").strip() or None
            item = forms.make_layer(kind, arg_form.read_args(kind, prefix), name, where=f"{where} new {kind}")
    except DesignError as e:
        design_draft.refuse(e)
        return
    flow_edit(path, edit.add_step, at, item)
