"""The session's design, its built network and the device: what every page reads, through these functions.

The user's network lives in st.session_state (one per browser session, `state.NET`), never in a global
cache; only pure functions of a design's JSON are cached across sessions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

import builder
from builder import Design, DesignError, DryRun, devices
from builder import share as share_links
from ui import account, state
from ui.messages import show_error

if TYPE_CHECKING:
    from torch import nn

DEFAULT_EXAMPLE = "sequential_mlp"


# A folder named pages/ beside app.py starts a fresh server (and every AppTest) in Streamlit's old multipage
# mode, which lasts until app.py first calls st.navigation: a first visitor who opens a deep link
# (/inspect?design=...) gets the page run without app.py. Such a page ends that mode (a private flag; streamlit
# is pinned) and reruns, so that app.py runs and routes the link as usual. (Rerunning during app.py's own first
# run instead would abort it and break its deferred downloads.)
def _require_app() -> None:
    """Rerun, through app.py, a page that was started without it (see above)."""
    if not state.DESIGN.present():
        PagesManager.uses_pages_directory = False
        st.rerun()


def init_session() -> None:
    """Give a new browser session its defaults: an example design on the default device."""
    state.DESIGN.setdefault(lambda: builder.load_example(DEFAULT_EXAMPLE))
    state.DEVICE.setdefault(devices.default_device)


def open_share_link() -> None:
    """Open the design a share link carries (?design=...), once per link and session, after validating it.
    Called by app.py once per run.

    A tampered, truncated or oversized link is reported (while the URL carries it) and the session keeps its
    design; it never raises.
    """
    token = st.query_params.get(share_links.PARAM)
    if token is None:
        return
    if state.SHARE_TOKEN.get() != token:
        state.SHARE_TOKEN.set(token)
        try:
            shared = share_links.decode(token)
        except DesignError as e:
            state.SHARE_ERROR.set(str(e).rstrip("."))
        else:
            state.SHARE_ERROR.pop()
            set_design(shared)
            st.toast(f"Opened the shared design '{shared.name}'.", icon=":material/link:")
    if state.SHARE_ERROR.get():
        st.error(
            f"This share link could not be opened: {state.SHARE_ERROR()}. The session keeps its "
            f"design ({design().name}).",
            icon=":material/link_off:",
        )


def design() -> Design:
    _require_app()
    return state.DESIGN()


def set_design(new: Design) -> None:
    """Make `new` the session's design; the network is rebuilt from it when next asked for."""
    state.DESIGN.set(new)
    state.NET.pop()


def dry_run(d: Design) -> DryRun:
    """The design's dry run (meta device). builder caches it by the design's JSON and the limits in force, so
    every page and session viewing the same design reuses one run (shapes and counts only, no tensors)."""
    return builder.dry_run(d)


def dry_run_or_error(d: Design) -> DryRun | None:
    """The design's dry run, or None after showing why the design does not build."""
    try:
        return dry_run(d)
    except DesignError as e:
        show_error(e)
        return None


def net() -> nn.Module | None:
    """The session's network for its design, on the session's device; None (and an error shown) if the design
    does not build.

    Built (on the CPU, then moved) when the design changes. A device change moves the existing network with
    .to(), so its weights (trained, uploaded, edited) are kept; the move is reported, never silent.
    """
    key = design().to_json()
    held = state.NET.get()
    if held is not None and held.design_json == key:
        if held.device != state.DEVICE():
            _move(held, inline=True)
        return held.module
    try:
        module = builder.build(design(), device="cpu")
    except DesignError as e:
        show_error(e)
        return None
    held = state.HeldNet(key, module, "cpu")
    state.NET.set(held)
    if state.DEVICE() != "cpu":
        _move(held, inline=True, quiet=True)
    return module


def net_device() -> str:
    """Where the session's network is now (it may differ from the chosen device until it is built)."""
    held = state.NET.get()
    return held.device if held is not None else "cpu"


def _move(held: state.HeldNet, inline: bool, quiet: bool = False) -> tuple[bool, str] | None:
    """Move the session's network to the session's device; fall back to the CPU with a message (shown here
    when `inline`, else returned as (failed, text) for the sidebar)."""
    moved = devices.move(held.module, state.DEVICE())
    held.device = moved.device
    if moved.failed:
        state.DEVICE.set(moved.device)  # the selector follows on the next run (see sidebar)
    if moved.note and not (quiet and not moved.failed):
        if inline:
            (st.warning if moved.failed else st.info)(moved.note, icon=":material/memory:")
        else:
            return moved.failed, moved.note
    return None


def sidebar() -> None:
    """Sign in / out where the server has login (ui.account); the device selector, on every page: CPU, each
    CUDA device (name, memory), MPS where present.

    Choosing a device moves the session's network there (weights kept) before the page runs; a device that is
    missing or fails leaves it on the CPU, and either way the sidebar says what happened.
    """
    account.sidebar()
    found = devices.available_devices()
    ids = [d.id for d in found]
    labels = {d.id: d.label for d in found}
    note: tuple[bool, str] | None = None
    if state.DEVICE_PROBED.get() != state.DEVICE() or state.DEVICE() not in ids:
        # once per choice (and whenever it vanished from the list): can it hold tensors?
        problem = None if state.DEVICE() == "cpu" else devices.probe(state.DEVICE())
        if problem:
            note = (True, f"{problem}; the network runs on the CPU.")
            state.DEVICE.set("cpu")
        state.DEVICE_PROBED.set(state.DEVICE())
    held = state.NET.get()
    if held is not None and held.device != state.DEVICE():
        note = _move(held, inline=False) or note
    if state.DEVICE_SELECT.get(state.DEVICE()) != state.DEVICE():
        state.DEVICE_SELECT.pop()  # a fallback changed the device: the selector shows it

    def pick() -> None:
        state.DEVICE.set(state.DEVICE_SELECT())

    # The widget has its own key: a widget's key is dropped when a page does not draw it, the session's
    # device must survive that.
    st.sidebar.selectbox(
        "Device",
        ids,
        key=state.DEVICE_SELECT.name,
        index=ids.index(state.DEVICE()),
        format_func=labels.get,
        on_change=pick,
        help="Where the session's network lives and runs (the chapter's try_gpu() picks the "
        "first GPU when there is one).",
    )
    if len(ids) == 1:  # the chapter's try_gpu() falls back: say why there is nothing else to choose
        st.sidebar.caption("No GPU was found on this machine: the network runs on the CPU.")
    if note is not None:
        failed, text = note
        (st.sidebar.warning if failed else st.sidebar.info)(text, icon=":material/memory:")
