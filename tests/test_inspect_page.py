"""AppTest: the Inspect page shows the session's design — totals, graph, shapes, parameter table."""

from __future__ import annotations

from builder import Design, load_example
from ui import state

from .conftest import open_page


def table(at, tab: str):
    """The table on the Inspect tab `tab` ("Output shapes" or "Parameters"): only the open tab is drawn."""
    at.session_state[state.INSPECT_TAB.name] = tab
    at.run()
    assert not at.exception and len(at.dataframe) == 1
    return at.dataframe[0].value


def test_default_session_shows_the_first_example(app) -> None:
    at = open_page(app, "inspect")
    assert at.selectbox(key="example").value == "sequential_mlp"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Parameters"] == "7,946" and metrics["Output shape"] == "(2, 10)"
    dot = at.get("graphviz_chart")[0].proto.spec
    assert "20 → 256" in dot
    assert not at.dataframe  # the graph tab is open: no table made (nor the network the parameters need)
    params = table(at, "Parameters")
    assert list(params["key"]) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert not at.error


def test_picking_tied_shows_both_totals_and_marks_tied_keys(app) -> None:
    at = open_page(app, "inspect")
    at.selectbox(key="example").select("tied").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Parameters"] == "121" and metrics["Counted per use"] == "193"
    assert "121 held, 193 counted per use" in at.info[0].value
    assert "shared weights 'shared'" in at.get("graphviz_chart")[0].proto.spec
    params = table(at, "Parameters").set_index("key")
    assert params.loc["2.weight", "tied_with"] == "4.weight"
    shapes = table(at, "Output shapes")
    assert shapes["note"].str.contains("shared 'shared'").sum() == 2


def test_lazy_sizes_are_shown_as_inferred(app) -> None:
    at = open_page(app, "inspect")
    at.selectbox(key="example").select("nested").run()
    shapes = table(at, "Output shapes")
    assert shapes["note"].str.contains("in_features=20 inferred").any()


def test_after_the_dry_run_graph_and_tables_name_what_torch_built(app) -> None:
    """Issue 13, defect 7: the graph said "LazyLinear" while the parameter table said "Linear"."""
    at = open_page(app, "inspect")
    at.selectbox(key="example").select("lazy_mlp").run()
    spec = at.get("graphviz_chart")[0].proto.spec
    assert "0 · Linear" in spec and "lazy: in_features=20 inferred" in spec and "LazyLinear" not in spec
    shapes, params = table(at, "Output shapes"), table(at, "Parameters")
    assert list(shapes["type"]) == ["Linear", "ReLU", "Linear"]  # as the parameter table says
    assert set(params["type"]) == {"Linear"}
    at.session_state[state.INSPECT_TAB.name] = "Graph"
    at.toggle(key="inspect_dry_run").set_value(True).run()
    before, after = (c.proto.spec for c in at.get("graphviz_chart")[:2])
    assert "0 · LazyLinear" in before and "size pending" in before  # as constructed
    assert "0 · Linear" in after and "lazy: in_features=20 inferred" in after


def test_a_design_that_does_not_build_shows_the_message_not_a_traceback(app) -> None:
    d = load_example("sequential_mlp").to_dict()
    d["layers"][2]["in_features"] = 30
    app.session_state[state.DESIGN.name] = Design.from_dict(d)
    at = open_page(app, "inspect")
    assert "layers[2] Linear: expects 30 input features, gets 256" in at.error[0].value
    assert "does not fit" in at.get("graphviz_chart")[0].proto.spec
    assert not at.exception


def test_over_budget_design_is_refused_on_the_page(app, monkeypatch) -> None:
    monkeypatch.setenv("BLOCKWORK_MAX_PARAMS", "1000")
    app.session_state[state.DESIGN.name] = load_example("lenet")
    at = open_page(app, "inspect")
    assert "over the budget of 1,000" in at.error[0].value
    assert not at.exception


def test_the_graph_depth_folds_blocks_and_a_block_can_be_expanded(app) -> None:
    at = open_page(app, "inspect")
    at.selectbox(key="example").select("nested").run()
    assert at.select_slider(key=state.GRAPH_DEPTH.name).value == "all"  # small: drawn whole at first
    assert "cluster_n_0_net" in at.get("graphviz_chart")[0].proto.spec
    at.select_slider(key=state.GRAPH_DEPTH.name).set_value(1).run()
    dot = at.get("graphviz_chart")[0].proto.spec
    assert "cluster" not in dot and "0 · Sequential\n5 layers in 1 block\n3,952 parameters\n→ (2, 16)" in dot
    expand = at.multiselect(key=state.GRAPH_EXPAND.name)
    assert expand.options == ["0", "0.net"]
    expand.select("0").run()
    dot = at.get("graphviz_chart")[0].proto.spec
    assert "subgraph cluster_n_0 {" in dot and "cluster_n_0_net" not in dot and "net · Sequential\n4 layers" in dot
    at.select_slider(key=state.GRAPH_DEPTH.name).set_value("all").run()
    assert at.multiselect(key=state.GRAPH_EXPAND.name).disabled and not at.exception


def test_a_500_layer_design_of_blocks_opens_folded_and_readable(app) -> None:
    block = {
        "type": "Sequential",
        "layers": [{"type": "Linear", "in_features": 8, "out_features": 8}, {"type": "ReLU"}] * 5,
    }
    app.session_state[state.DESIGN.name] = Design.from_dict(
        {"format": 1, "name": "deep", "input": {"shape": [2, 8]}, "layers": [block] * 50}
    )
    at = open_page(app, "inspect")
    assert at.select_slider(key=state.GRAPH_DEPTH.name).value == 1
    dot = at.get("graphviz_chart")[0].proto.spec
    # depth 1: 50 blocks, a chain longer than 40: the first and last 10 blocks and one box for the 30 between
    assert dot.count("shape=box3d") == 20 and "… 10 to 39: 30 layers (330 in all)" in dot
    assert any("21 nodes drawn" in c.value for c in at.caption)
    at.select_slider(key=state.GRAPH_DEPTH.name).set_value("all").run()
    assert at.get("graphviz_chart")[0].proto.spec.count("· Linear") == 250
    assert not at.exception
