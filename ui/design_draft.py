"""The Design page's draft: an undo history of designs (builder.UndoHistory) and the callbacks that edit it.

Every edit is one of builder.edit's pure functions applied to the draft (`apply`); the draft is dry-run at once
and, when it builds, becomes the session's design (what the other pages show), so an edit that breaks the
network never loses the last design that worked. A refused edit changes nothing and is flashed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

import builder
import ui
from builder import Design, DesignError, UndoHistory, addressing, edit, forms, stack_view
from builder.design import Block, Layer, Node, Use
from ui import arg_form, state

USE = "shared:"  # prefix of the add list's entries that insert another use of a shared layer
# Widgets that show the draft: forgotten after every edit so they show the new draft.
_WIDGET_PREFIXES = (state.SELECT_PREFIX, state.ARG_PREFIX, state.NEW_PREFIX, state.FLOW_PREFIX)
_WIDGETS = tuple(
    k.name
    for k in (
        state.NODE_NAME,
        state.SHARE_NAME,
        state.SHARED_NAME,
        state.DESIGN_JSON,
        state.INPUT_SHAPE,
        state.INPUT_DTYPE,
        state.GROUP_NAME,
        state.ADD_WHERE,
        state.MOVE_TO,
    )
)


def history() -> UndoHistory:
    """The session's undo history; a design set on another page (an example picked) is recorded as an edit."""
    h: UndoHistory | None = state.DESIGN_HISTORY.get()
    current = ui.design()
    if h is None:
        h = UndoHistory(current)
    elif state.DESIGN_SYNCED.get() is not current:
        h = h.push(current)
    state.DESIGN_HISTORY.set(h)
    state.DESIGN_SYNCED.set(current)
    return h


def commit(h: UndoHistory) -> None:
    """Make `h` the history; the session's design follows its present when that builds. Undo and redo bring
    back the blocks that were open when that design was left (an edit's callback moves them itself)."""
    _keep_folds(state.DESIGN_HISTORY.get(), h)
    state.DESIGN_HISTORY.set(h)
    draft = h.present
    if draft.layers:
        try:
            ui.dry_run(draft)
        except DesignError:
            pass  # kept as a draft, fault highlighted; the session keeps the last design that built
        else:
            ui.set_design(draft)
            state.DESIGN_SYNCED.set(draft)
    state.forget_widgets(_WIDGET_PREFIXES, _WIDGETS)
    state.DESIGN_EDITING.set(None)
    state.DESIGN_JSON_ERROR.pop()
    state.DESIGN_CONFIRM_CLEAR.set(False)


def _keep_folds(old: UndoHistory | None, new: UndoHistory) -> None:
    folds = dict(state.DESIGN_FOLDS.get() or {})
    if old is not None:
        folds[id(old.present)] = state.DESIGN_UNFOLDED.get() or frozenset()
    back = folds.get(id(new.present))
    if back is not None and (old is None or new.present is not old.present):
        state.DESIGN_UNFOLDED.set(back)
    alive = {id(d) for d in (*new.past, new.present, *new.future)}  # ids of designs gone may be reused
    state.DESIGN_FOLDS.set({k: v for k, v in folds.items() if k in alive})


def refuse(e: DesignError) -> None:
    """Say why an edit was not done (toasted too: seen even when the page is scrolled down)."""
    ui.flash(f"Not done: {e}", "error", icon=":material/block:", toast=True)


def apply(op: Callable[..., Design], *args: Any, **kwargs: Any) -> bool:
    """Callback: apply one of builder.edit's operations to the draft; a refused edit changes nothing.
    Returns whether it was done."""
    h = history()
    try:
        new = op(h.present, *args, **kwargs)
    except DesignError as e:
        refuse(e)
        return False
    commit(h.push(new))
    return True


# -- the stack's rows: folding, moving (the open blocks and the open row follow the nodes) -----------------


def toggle_fold(path: addressing.Path) -> None:
    opened = set(state.DESIGN_UNFOLDED.get() or ())
    opened.symmetric_difference_update({path})
    if path not in opened:  # folding closes the blocks inside it too, and an editor open in it
        opened = {p for p in opened if p[: len(path)] != path}
        editing = state.DESIGN_EDITING.get()
        if editing is not None and editing[: len(path)] == path and editing != path:
            open_editor(None)
    state.DESIGN_UNFOLDED.set(frozenset(opened))


def _reindex(parent: addressing.Path, new_index: Callable[[int], int | None]) -> None:
    state.DESIGN_UNFOLDED.set(stack_view.reindexed(state.DESIGN_UNFOLDED.get() or (), parent, new_index))


def _move_open(where: Callable[[addressing.Path], addressing.Path | None]) -> None:
    state.DESIGN_UNFOLDED.set(stack_view.moved(state.DESIGN_UNFOLDED.get() or (), where))


def follow_removals(before: Design, path: addressing.Path) -> None:
    """After a flow edit of the holder at `path` that removed children (a step or a branch with the layers only
    it called): the open blocks after them move up with them."""
    try:
        old, new = edit.flow_holder(before, path), edit.flow_holder(history().present, path)
    except DesignError:
        return
    if len(new.layers) < len(old.layers):
        _reindex(path, stack_view.after_removals(old.layers, new.layers))


def ungroup_row(path: addressing.Path) -> None:
    """Replace the block at `path` by its children; the open blocks inside and after it follow."""
    try:
        node: Node | None = addressing.node_at(history().present, path)
    except DesignError:
        node = None  # a row that is gone: edit.ungroup says so
    if apply(edit.ungroup, path) and isinstance(node, Block):
        _move_open(stack_view.after_ungroup(path, len(node.layers)))


def move_row(path: addressing.Path, offset: int) -> None:
    """Move the node `offset` places in its block; its editor stays open on it, its page shown."""
    if apply(edit.move, path, offset):
        i, j = path[-1], path[-1] + offset
        _reindex(path[:-1], stack_view.after_move(i, j))
        open_editor((*path[:-1], j))


def move_to(path: addressing.Path) -> None:
    """Move the node to the position typed in its editor (1: first in its block)."""
    move_row(path, int(state.MOVE_TO.get() or path[-1] + 1) - 1 - path[-1])


def duplicate_row(path: addressing.Path) -> None:
    if apply(edit.duplicate, path):
        _reindex(path[:-1], stack_view.after_insert(path[-1] + 1))


def delete_row(path: addressing.Path) -> None:
    if apply(edit.delete, path):
        _reindex(path[:-1], stack_view.after_delete(path[-1]))


# -- callbacks that read widgets -----------------------------------------------------------------------


def add_layer() -> None:
    choice, where = state.ADD_TYPE(), addressing.parse_path(state.ADD_WHERE())
    name = (state.NEW_NAME.get() or "").strip() or None

    def op(d: Design) -> Design:
        if choice.startswith(USE):
            return edit.use_shared(d, where, choice.removeprefix(USE), name)
        layer = forms.make_layer(
            choice, arg_form.read_args(choice, state.NEW_PREFIX), name, where=addressing.format_path(where)
        )
        return edit.insert(d, where, layer)

    before = history().present
    if apply(op):
        _reindex(where[:-1], stack_view.after_insert(where[-1]))
        unfold(where)
        tell_flow(before, where[:-1])


def tell_flow(before: Design, path: addressing.Path) -> None:
    """After an edit: say so when it made the Sequential at `path` (() : the network) a flow (an LSTM added)."""
    note = edit.became_flow(before, history().present, path)
    if note:
        ui.flash(note[0].upper() + note[1:] + ".", "info", icon=":material/account_tree:")


def apply_edit(path: addressing.Path) -> None:
    def op(d: Design) -> Design:
        node = addressing.node_at(d, path)
        if isinstance(node, Layer):
            d = edit.set_args(d, path, arg_form.read_args(node.type, state.ARG_PREFIX))
        elif isinstance(node, Use) and isinstance(d.shared[node.shared], Layer):
            d = edit.set_args(d, path, arg_form.read_args(d.shared[node.shared].type, state.ARG_PREFIX))
        return edit.rename(d, path, state.NODE_NAME.get())

    if apply(op):
        state.DESIGN_NEAR.set(path)  # the editor closes; the preview stays on the row edited


def set_input() -> None:
    def op(d: Design) -> Design:
        return edit.set_input(d, forms.parse_shape(state.INPUT_SHAPE()), state.INPUT_DTYPE())

    apply(op)


def share(path: addressing.Path) -> None:
    name = (state.SHARE_NAME.get() or "").strip()
    if apply(edit.share, path, name):
        ui.flash(
            f"{addressing.format_path(path)} is now shared layer '{name}'. To use the same weights again: "
            f"Duplicate its row, or pick “↺ another use of shared '{name}'” in Add a layer.",
            "info",
            icon=":material/link:",
        )


def rename_shared(old: str) -> None:
    apply(edit.rename_shared, old, (state.SHARED_NAME.get() or "").strip())


def group_selected() -> None:
    chosen = selected(history().present)
    if apply(edit.group, chosen, (state.GROUP_NAME.get() or "").strip() or None) and chosen:
        _follow_wrap(chosen)
        unfold((*min(chosen), 0))  # the new block is shown open: its layers are where they were


def _follow_wrap(chosen: list[addressing.Path]) -> None:
    """The open blocks after the siblings `chosen` were wrapped into one block where the first was."""
    _move_open(stack_view.after_group(chosen[0][:-1], min(chosen)[-1], max(chosen)[-1] + 1))


def unfold(path: addressing.Path) -> None:
    """Open the blocks that hold `path` and bring its row into view."""
    state.DESIGN_UNFOLDED.set(frozenset({*(state.DESIGN_UNFOLDED.get() or ()), *stack_view.ancestors(path)}))
    state.DESIGN_SHOW.set(path)


def wrap_selected(kind: str) -> None:
    """Wrap the selected rows in a residual block (body + identity skip, merged by +) or in parallel
    branches (one per selected row, joined by cat along dim 1); the merge is changed in the block's editor."""
    chosen = selected(history().present)
    name = (state.GROUP_NAME.get() or "").strip() or None
    wrap: tuple[Any, ...] = (
        (edit.residual, chosen, name) if kind == "residual" else (edit.branch_out, chosen, "cat", 1, name)
    )
    wrapped = apply(*wrap)
    if wrapped and chosen:
        _follow_wrap(chosen)
    if chosen and _is_flow(min(chosen)):
        state.DESIGN_EDITING.set(min(chosen))  # open the new block's editor: its branches and merge


def _is_flow(path: addressing.Path) -> bool:
    try:
        node = addressing.node_at(history().present, path)
    except DesignError:
        return False
    return isinstance(node, Block) and node.flow is not None


def apply_json() -> None:
    try:
        new = Design.from_json(state.DESIGN_JSON())
    except DesignError as e:
        state.DESIGN_JSON_ERROR.set(e)
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
    """The example chosen in the picker replaces the design (nothing when "your own design" is chosen)."""
    name = state.START_EXAMPLE()
    if name in builder.example_names():
        apply(lambda _: builder.load_example(name))


def open_editor(path: addressing.Path | None) -> None:
    """Open the editor of the row at `path` (None: close it); one editor is open at a time."""
    names = (state.NODE_NAME.name, state.SHARE_NAME.name, state.SHARED_NAME.name, state.MOVE_TO.name)
    state.forget_widgets((state.ARG_PREFIX,), names)
    state.DESIGN_EDITING.set(path)
    if path is not None:
        state.DESIGN_SHOW.set(path)
        state.DESIGN_NEAR.set(path)


def reset_new() -> None:
    state.forget_widgets((state.NEW_PREFIX,))


def row_id(path: addressing.Path) -> str:
    """A row's part of widget keys: (0, 2) -> "0_2"."""
    return "_".join(map(str, path))


def selected(draft: Design) -> list[addressing.Path]:
    """The rows whose select box is ticked, in stack order (read from the ticked boxes, not by visiting every
    node: a page shows 25 of 500)."""
    out = []
    for key, ticked in st.session_state.to_dict().items():
        if not (isinstance(key, str) and key.startswith(state.SELECT_PREFIX) and ticked):
            continue
        try:
            path = tuple(int(i) for i in key.removeprefix(state.SELECT_PREFIX).split("_"))
            addressing.node_at(draft, path)
        except (ValueError, DesignError):
            continue  # a box of a row that is gone
        out.append(path)
    return sorted(out)
