"""The Design page (AppTest) makes flows by clicking: a residual block from selected rows, a shortcut in its skip,
parallel branches, the merge and its dim, branches added / reordered / removed, a layer moved out of a branch;
a shape error names the branch under the block's row; the flow examples show their rows."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from builder import Design, dry_run
from builder.design import Block, Layer
from builder.flow import Branches, Call
from ui import state

from .test_design_page import click, draft, ok


def use(at: AppTest, layers: list[dict[str, object]], shape: list[int]) -> AppTest:
    """Put a design in through the JSON view (as a user pasting it)."""
    text = json.dumps({"format": 2, "input": {"shape": shape}, "layers": layers})
    ok(at.text_area(key="json").input(text).run())
    return click(at, "json_apply")


def select(at: AppTest, *rows: str) -> AppTest:
    for r in rows:
        at.checkbox(key=f"{state.SELECT_PREFIX}{r}").check()
    return ok(at.run())


def lins(*outs: int) -> list[dict[str, object]]:
    return [{"type": "Linear", "in_features": 4, "out_features": o} for o in outs]


def test_residual_from_selected_rows_shows_its_flow_and_the_skip_in_the_preview(app: AppTest) -> None:
    at = use(app, [{"type": "Linear", "name": "lin", "in_features": 4, "out_features": 4}, {"type": "ReLU"}], [2, 4])
    select(at, "0", "1")
    click(at, "residual")
    block = draft(at).layers[0]
    assert isinstance(block, Block) and block.class_name == "Residual"
    assert block.flow == (Branches(((Call("lin"), Call("1")), ()), "add"),)
    assert at.session_state[state.DESIGN.name] == draft(at)  # it builds: the session follows
    assert any("0 · Residual" in m.value and "[lin → 1 | skip] +" in m.value for m in at.markdown)
    assert any("identity (skip)" in m.value for m in at.markdown)  # its editor opened with the branches
    dot = at.get("graphviz_chart")[0].proto.spec
    assert "merge" in dot and "skip" in dot and "dashed" in dot


def test_a_shortcut_added_to_the_skip_branch(app: AppTest) -> None:
    at = use(app, lins(6), [2, 4])
    select(at, "0")
    click(at, "residual")  # (2, 6) + (2, 4): does not build, the error names the branch under the row
    assert any("branch 0 gives (2, 6), branch 1 (identity) gives (2, 4)" in e.value for e in at.error)
    assert at.session_state[state.DESIGN.name] != draft(at)  # the session keeps the last design that built
    at.text_input(key="flow_layer_0").input('{"type": "Linear", "in_features": 4, "out_features": 6, "name": "conv3"}')
    assert at.selectbox(key="flow_pick_0").value == 1  # the empty branch is picked first
    click(at, "add_to_branch_0")
    block = draft(at).layers[0]
    assert isinstance(block, Block) and block.layers[-1] == Layer(
        "Linear", {"in_features": 4, "out_features": 6}, "conv3"
    )
    assert dry_run(draft(at)).output_shape == (2, 6) and not at.error
    assert at.session_state[state.DESIGN.name] == draft(at)


def test_branches_merge_dim_and_a_merge_error_naming_the_branches(app: AppTest) -> None:
    at = use(app, lins(2, 3), [2, 4])
    select(at, "0", "1")
    click(at, "branches")
    assert dry_run(draft(at)).output_shape == (2, 5)
    built = draft(at)
    ok(at.selectbox(key="flow_merge_0").select("add").run())
    click(at, "set_merge_0")
    step = draft(at).layers[0].flow[0]  # type: ignore[union-attr]
    assert (step.merge, step.dim) == ("add", None)
    assert any("block '0' add: branch 0 gives (2, 2), branch 1 gives (2, 3)" in e.value for e in at.error)
    assert at.session_state[state.DESIGN.name] == built  # the last design that built
    ok(at.selectbox(key="flow_merge_0").select("cat").run())
    at.number_input(key="flow_dim_0").set_value(0)
    click(at, "set_merge_0")
    assert any("cat dim=0: branch 0 gives (2, 2), branch 1 gives (2, 3)" in e.value for e in at.error)
    click(at, "undo")
    click(at, "undo")
    assert draft(at) == built


def test_add_move_and_remove_branches_and_move_a_layer_out(app: AppTest) -> None:
    at = use(app, lins(2, 3), [2, 4])
    select(at, "0", "1")
    click(at, "branches")
    click(at, "add_branch_0")  # an identity: (2, 4) more channels
    assert dry_run(draft(at)).output_shape == (2, 9)
    click(at, "branch_right_0_0_0")
    lanes = draft(at).layers[0].flow[0].branches  # type: ignore[union-attr]
    assert lanes == ((Call("1"),), (Call("0"),), ())
    assert at.button(key="branch_left_0_0_0").disabled and at.button(key="branch_right_0_0_2").disabled
    click(at, "branch_del_0_0_0")  # removes Linear(4, 3) with its branch
    block = draft(at).layers[0]
    assert isinstance(block, Block) and [c.args["out_features"] for c in block.layers] == [2]  # type: ignore[union-attr]
    click(at, "to_next_0_0_0_0")  # the Linear to the (identity) branch 1: branch 0 is now the skip
    assert draft(at).layers[0].flow[0].branches == ((), (Call("0"),))  # type: ignore[union-attr]
    ok(at.selectbox(key="flow_merge_0").select("add").run())
    click(at, "set_merge_0")  # x + Linear(x): (2, 4) + (2, 2) does not fit (a draft)
    click(at, "out_0_0_1_0")  # the Linear out of the branches, after the merge: Linear(x + x)
    assert draft(at).layers[0].flow == (Branches(((), ()), "add"), Call("0"))  # type: ignore[union-attr]
    assert dry_run(draft(at)).output_shape == (2, 2) and not at.exception


def test_a_refused_flow_edit_says_why(app: AppTest) -> None:
    at = use(app, lins(4, 4, 4), [2, 4])
    select(at, "0", "2")
    click(at, "residual")
    assert any("next to each other" in str(t.value) for t in [*at.error, *at.toast])
    assert all(not isinstance(n, Block) for n in draft(at).layers)


@pytest.mark.parametrize("name", ["resnet18", "inception", "densenet_block"])
def test_flow_examples_show_their_rows(app: AppTest, name: str) -> None:
    ok(app.selectbox(key="start").select(name).run())
    at = click(app, "load")
    assert draft(at) == Design.from_dict(json.loads((__import__("builder").load_example(name)).to_json()))
    assert not at.error and not at.exception
    if name == "resnet18":
        assert not any("0 · Residual" in m.value for m in at.markdown)  # stages are folded: one row each
        click(at, "fold_1")
        click(at, "fold_2")  # b2 and b3 unfolded: their residual blocks are rows
        assert any("0 · Residual" in m.value and "| skip] +" in m.value for m in at.markdown)
        assert any("0 · Residual" in m.value and "| conv3] +" in m.value for m in at.markdown)
        click(at, "edit_1_0")  # b2.0's editor shows its branches
        assert any("identity (skip)" in m.value for m in at.markdown)
