"""What every page shares: the session's design, its built network, the device, and error display.

Pages stay thin: they read the session through these helpers, call builder, and render. The user's network
lives in st.session_state (one per browser session), never in a global cache. Only pure functions of a
design's JSON are cached across sessions.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
import torch
from streamlit.runtime.pages_manager import PagesManager
from torch import nn

import builder
from builder import Design, DesignError, DryRun, devices
from builder import share as share_links

DEFAULT_EXAMPLE = "sequential_mlp"

# A folder named pages/ beside app.py starts a fresh server (and every AppTest) in Streamlit's old multipage
# mode, which lasts until app.py first calls st.navigation: a first visitor who opens a deep link
# (/inspect?design=...) gets the page run without app.py. Such a page ends that mode (a private flag; streamlit
# is pinned) and reruns, so that app.py runs and routes the link as usual. (Rerunning during app.py's own first
# run instead would abort it and break its deferred downloads.)
torch.set_num_threads(builder.limits().torch_threads)  # the server's sessions share the cores (builder.limits)


def _require_app() -> None:
    """Rerun, through app.py, a page that was started without it (see above)."""
    if "design" not in st.session_state:
        PagesManager.uses_pages_directory = False
        st.rerun()


def init_session() -> None:
    """Give a new browser session its defaults: an example design on the default device."""
    if "design" not in st.session_state:
        st.session_state.design = builder.load_example(DEFAULT_EXAMPLE)
    if "device" not in st.session_state:
        st.session_state.device = devices.default_device()


def open_share_link() -> None:
    """Open the design a share link carries (?design=...), once per link and session, after validating it.
    Called by app.py once per run (pages that call init_session themselves must not show its error twice).

    A tampered, truncated or oversized link is reported (while the URL carries it) and the session keeps its
    design; it never raises.
    """
    token = st.query_params.get(share_links.PARAM)
    if token is None:
        return
    if st.session_state.get("share_token") != token:
        st.session_state.share_token = token
        try:
            shared = share_links.decode(token)
        except DesignError as e:
            st.session_state.share_error = str(e).rstrip(".")
        else:
            st.session_state.pop("share_error", None)
            set_design(shared)
            st.toast(f"Opened the shared design '{shared.name}'.", icon=":material/link:")
    if st.session_state.get("share_error"):
        st.error(
            f"This share link could not be opened: {st.session_state.share_error}. The session keeps its "
            f"design ({design().name}).",
            icon=":material/link_off:",
        )


def design() -> Design:
    _require_app()
    return st.session_state.design


def set_design(new: Design) -> None:
    """Make `new` the session's design; the network is rebuilt from it when next asked for."""
    st.session_state.design = new
    st.session_state.pop("net", None)


def dry_run(d: Design) -> DryRun:
    """The design's dry run (meta device). builder caches it by the design's JSON and the limits in force, so
    every page and session viewing the same design reuses one run (shapes and counts only, no tensors)."""
    return builder.dry_run(d)


def net() -> nn.Module | None:
    """The session's network for its design, on the session's device; None (and an error shown) if the design
    does not build.

    Built (on the CPU, then moved) when the design changes. A device change moves the existing network with
    .to(), so its weights (trained, uploaded, edited) are kept; the move is reported, never silent.
    """
    key = design().to_json()
    held = st.session_state.get("net")
    if held is not None and held[0] == key:
        if st.session_state.get("net_device") != st.session_state.device:
            _move(held[1], inline=True)
        return held[1]
    try:
        module = builder.build(design(), device="cpu")
    except DesignError as e:
        show_error(e)
        return None
    st.session_state.net = (key, module)
    st.session_state.net_device = "cpu"
    if st.session_state.device != "cpu":
        _move(module, inline=True, quiet=True)
    return module


def _move(module: nn.Module, inline: bool, quiet: bool = False) -> None:
    """Move the session's network to the session's device; fall back to the CPU with a message."""
    moved = devices.move(module, st.session_state.device)
    st.session_state.net_device = moved.device
    if moved.failed:
        st.session_state.device = moved.device  # the selector follows on the next run (see sidebar)
    if moved.note and not (quiet and not moved.failed):
        if inline:
            (st.warning if moved.failed else st.info)(moved.note, icon=":material/memory:")
        else:
            st.session_state.device_note = (moved.failed, moved.note)


# Downloads of weights: bytes made on every rerun for a small network, made on click for a big one. On-click
# (deferred) downloads spare memory, but under many concurrent sessions Streamlit 1.67 can drop a deferred file
# before its click arrives ("Deferred file ... not found", seen in tests/e2e/test_load.py), so small networks,
# the classroom case, get plain bytes.
EAGER_DOWNLOAD_BYTES = 8 * 2**20


def download_data(net: nn.Module, make: Callable[[], bytes]) -> bytes | Callable[[], bytes]:
    """`make()` now when the network's tensors are small, else `make` itself for st.download_button to call."""
    size = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    return make() if size <= EAGER_DOWNLOAD_BYTES else make


def show_error(e: Exception) -> None:
    """Show one of builder's errors as a person reads it (no traceback)."""
    where = getattr(e, "path", None)
    st.error(f"**{where}** — {e}" if where and where not in str(e) else str(e), icon=":material/error:")


def sidebar() -> None:
    """The device selector, on every page: CPU, each CUDA device (name, memory), MPS where present.

    Choosing a device moves the session's network there (weights kept) before the page runs; a device that is
    missing or fails leaves it on the CPU, and either way the sidebar says what happened.
    """
    found = devices.available_devices()
    ids = [d.id for d in found]
    labels = {d.id: d.label for d in found}
    if st.session_state.get("device_probed") != st.session_state.device or st.session_state.device not in ids:
        # once per choice (and whenever it vanished from the list): can it hold tensors?
        problem = None if st.session_state.device == "cpu" else devices.probe(st.session_state.device)
        if problem:
            st.session_state.device_note = (True, f"{problem}; the network runs on the CPU.")
            st.session_state.device = "cpu"
        st.session_state.device_probed = st.session_state.device
    held = st.session_state.get("net")
    if held is not None and st.session_state.get("net_device") != st.session_state.device:
        _move(held[1], inline=False)
    if st.session_state.get("device_select", st.session_state.device) != st.session_state.device:
        del st.session_state["device_select"]  # a fallback changed the device: the selector shows it

    def pick() -> None:
        st.session_state.device = st.session_state.device_select

    # The widget has its own key: a widget's key is dropped when a page does not draw it, the session's
    # device must survive that.
    st.sidebar.selectbox(
        "Device",
        ids,
        key="device_select",
        index=ids.index(st.session_state.device),
        format_func=labels.get,
        on_change=pick,
        help="Where the session's network lives and runs (the chapter's try_gpu() picks the "
        "first GPU when there is one).",
    )
    note = st.session_state.pop("device_note", None)
    if note is not None:
        failed, text = note
        (st.sidebar.warning if failed else st.sidebar.info)(text, icon=":material/memory:")
