"""What every page shares: the session's design, its built network, the device, and error display.

Pages stay thin: they read the session through these helpers, call builder, and render. The user's network
lives in st.session_state (one per browser session), never in a global cache. Only pure functions of a
design's JSON are cached across sessions.
"""

from __future__ import annotations

import streamlit as st
from torch import nn

import builder
from builder import Design, DesignError, DryRun
from builder.devices import available_devices, default_device

DEFAULT_EXAMPLE = "sequential_mlp"


def init_session() -> None:
    """Give a new browser session its defaults: an example design on the default device."""
    if "design" not in st.session_state:
        st.session_state.design = builder.load_example(DEFAULT_EXAMPLE)
    if "device" not in st.session_state:
        st.session_state.device = default_device()


def design() -> Design:
    return st.session_state.design


def set_design(new: Design) -> None:
    """Make `new` the session's design; the network is rebuilt from it when next asked for."""
    st.session_state.design = new
    st.session_state.pop("net", None)


@st.cache_data(max_entries=256, show_spinner=False)
def _dry_run(design_json: str) -> DryRun:
    return builder.dry_run(Design.from_json(design_json))


def dry_run(d: Design) -> DryRun:
    """The design's dry run (meta device), cached by its JSON: a pure function, safe to share."""
    return _dry_run(d.to_json())


def net() -> nn.Module | None:
    """The session's network for its design and device, built on first use; None (and an error shown) if
    the design does not build."""
    key = (design().to_json(), st.session_state.device)
    held = st.session_state.get("net")
    if held is not None and held[0] == key:
        return held[1]
    try:
        module = builder.build(design(), device=st.session_state.device)
    except DesignError as e:
        show_error(e)
        return None
    st.session_state.net = (key, module)
    return module


def show_error(e: Exception) -> None:
    """Show one of builder's errors as a person reads it (no traceback)."""
    where = getattr(e, "path", None)
    st.error(f"**{where}** — {e}" if where and where not in str(e) else str(e), icon=":material/error:")


def sidebar() -> None:
    """The device selector, on every page."""
    devices = available_devices()
    ids = [d.id for d in devices]
    labels = {d.id: d.label for d in devices}
    if st.session_state.device not in ids:
        st.session_state.device = "cpu"

    def pick() -> None:
        st.session_state.device = st.session_state.device_select

    # The widget has its own key: a widget's key is dropped when a page does not draw it, the session's
    # device must survive that.
    st.sidebar.selectbox("Device", ids, key="device_select", index=ids.index(st.session_state.device),
                         format_func=labels.get, on_change=pick,
                         help="Where the session's network lives and runs (the chapter's try_gpu() picks the "
                              "first GPU when there is one).")
