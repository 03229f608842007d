"""The Design page's body is one st.fragment (#16): a row edit reruns the fragment, not the app around it.

Seen on the wire, as the browser sees it: the click asks for a fragment run (its BackMsg names the fragment),
and what comes back draws nothing outside the page's main area: no navigation (app.py's st.navigation), no
sidebar (app.py's device selector). The page's first load, a full run, shows both — so the check can fail.
"""

from __future__ import annotations

from playwright.sync_api import Page, WebSocket, expect
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.RootContainer_pb2 import SIDEBAR

from .conftest import WAIT_MS, no_errors, wait_idle
from .test_design_browser import press


class Wire:
    """The messages between the browser and the server, decoded (Streamlit's protobufs)."""

    def __init__(self) -> None:
        self.sent: list[BackMsg] = []
        self.received: list[ForwardMsg] = []

    def watch(self, ws: WebSocket) -> None:
        ws.on("framesent", lambda payload: self._add(payload, BackMsg, self.sent))
        ws.on("framereceived", lambda payload: self._add(payload, ForwardMsg, self.received))

    @staticmethod
    def _add(payload: str | bytes, kind: type, into: list) -> None:
        if isinstance(payload, bytes):
            msg = kind()
            msg.ParseFromString(payload)
            into.append(msg)

    def clear(self) -> None:
        self.sent.clear()
        self.received.clear()

    def full_run_parts(self) -> list[str]:
        """What the received messages drew outside a fragment: navigation and sidebar deltas."""
        out = []
        for m in self.received:
            if m.HasField("navigation"):
                out.append("navigation")
            elif m.HasField("delta") and m.metadata.delta_path and m.metadata.delta_path[0] == SIDEBAR:
                out.append("sidebar")
        return out


def test_a_row_edit_reruns_only_the_design_fragment(page: Page, app_url: str) -> None:
    wire = Wire()
    page.on("websocket", wire.watch)
    page.goto(app_url)  # the Design page (sequential_mlp: Linear, ReLU, Linear)
    wait_idle(page)
    expect(page.locator(".st-key-row_2")).to_be_visible(timeout=WAIT_MS)
    assert {"navigation", "sidebar"} <= set(wire.full_run_parts())  # a full run: the check sees it

    press(page, "edit_2")
    wait_idle(page)
    expect(page.locator(".st-key-up_2")).to_be_visible(timeout=WAIT_MS)
    wire.clear()
    press(page, "up_2")  # the last Linear one place up: a row edit
    expect(page.locator(".st-key-row_1")).to_contain_text("Linear", timeout=WAIT_MS)
    wait_idle(page)

    reruns = [m.rerun_script for m in wire.sent if m.HasField("rerun_script")]
    assert reruns and all(r.fragment_id for r in reruns), reruns  # the click asked for its fragment only
    assert any(m.HasField("delta") for m in wire.received), "the fragment was drawn again"
    assert wire.full_run_parts() == [], wire.full_run_parts()  # nothing outside it was run again
    no_errors(page)
