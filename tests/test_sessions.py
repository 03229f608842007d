"""Session isolation: two browser sessions never see each other's design, network or weights."""

from __future__ import annotations

import re

import torch
from streamlit.testing.v1 import AppTest

from builder import DryRun, dry_run, load_example
from builder.build import _RUNS
from ui import state

from .conftest import ROOT, open_page


def session() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    return at


def held_net(at: AppTest) -> torch.nn.Module:
    return at.session_state[state.NET.name].module


def test_two_sessions_edit_different_designs() -> None:
    a, b = session(), session()
    open_page(a, "inspect").selectbox(key="example").select("tied").run()
    open_page(b, "inspect").selectbox(key="example").select("lenet").run()
    assert a.session_state[state.DESIGN.name].name == "tied" and b.session_state[state.DESIGN.name].name == "lenet"
    assert {m.label: m.value for m in a.metric}["Parameters"] == "121"
    assert {m.label: m.value for m in b.metric}["Parameters"] == "61,706"
    a.run()
    b.run()
    assert a.session_state[state.DESIGN.name].name == "tied" and b.session_state[state.DESIGN.name].name == "lenet"


def test_same_design_in_two_sessions_gives_two_networks() -> None:
    a, b = session(), session()
    for at in (a, b):
        open_page(at, "inspect")
        at.session_state[state.INSPECT_TAB.name] = "Parameters"  # the tab whose table needs the built network
        at.selectbox(key="example").select("tied").run()
    net_a, net_b = held_net(a), held_net(b)
    assert net_a is not net_b
    with torch.no_grad():
        net_a[2].weight[0, 0] = 100.0  # one student edits a weight ...
    b.run()
    assert held_net(b)[2].weight[0, 0] != 100.0  # ... the other's network is not touched
    assert held_net(b) is net_b


def test_no_global_cache_holds_modules_or_data() -> None:
    sources = [
        ROOT / "app.py",
        *(ROOT / "ui").glob("*.py"),
        *(ROOT / "pages").glob("*.py"),
        *(ROOT / "builder").rglob("*.py"),
    ]
    for path in sources:
        text = path.read_text()
        assert "cache_resource" not in text, f"{path.name}: st.cache_resource is shared by every user"
        # cache_data only for pure functions of a design's JSON text, or of nothing (shipped data)
        for m in re.finditer(r"@st\.cache_data[^\n]*\ndef \w+\(([^)]*)\)", text):
            assert m[1] == "" or "json" in m[1], f"{path.name}: cache_data keyed by {m[1]!r}, not by JSON"
    # the library's one cache holds dry runs: shapes and counts, no tensors
    dry_run(load_example("tied"))
    assert _RUNS and all(isinstance(v, DryRun) for v in _RUNS.values())
