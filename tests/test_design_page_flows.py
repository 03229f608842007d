"""The Design page (AppTest) makes flows by clicking: a residual block from selected rows, a shortcut in its skip,
parallel branches, the merge and its dim, branches added / reordered / removed, a layer moved out of a branch;
a shape error names the branch under the block's row; the flow examples show their rows."""

from __future__ import annotations

import json

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch.nn import functional as F

from builder import Design, build, dry_run, load_example
from builder.design import Block, Layer
from builder.flow import Branches, Call, Op
from ui import state

from . import sequence_models
from .test_design_page import click, draft, ok, start_empty
from .test_edit_flows import InceptionWithout4, LastState, same_both_ways


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
    # the shortcut through the add-a-step form: the same argument form as the Add panel, the skip picked first
    assert at.selectbox(key="flow_where_0").value == "0_1_0"
    ok(at.selectbox(key="flow_kind_0").select("Linear").run())
    at.text_input(key="flow_arg_0_in_features").input("4")  # (the draft does not build: no size to pre-fill)
    at.number_input(key="flow_arg_0_out_features").set_value(6)
    at.text_input(key="flow_name_0").input("conv3")
    click(at, "add_step_0")
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
    ok(at.selectbox(key="flow_merge_0_0").select("add").run())
    click(at, "set_merge_0_0")
    step = draft(at).layers[0].flow[0]  # type: ignore[union-attr]
    assert (step.merge, step.dim) == ("add", None)
    assert any("block '0' add: branch 0 gives (2, 2), branch 1 gives (2, 3)" in e.value for e in at.error)
    assert at.session_state[state.DESIGN.name] == built  # the last design that built
    ok(at.selectbox(key="flow_merge_0_0").select("cat").run())
    at.number_input(key="flow_dim_0_0").set_value(0)
    click(at, "set_merge_0_0")
    assert any("cat dim=0: branch 0 gives (2, 2), branch 1 gives (2, 3)" in e.value for e in at.error)
    click(at, "undo")
    click(at, "undo")
    assert draft(at) == built


def test_add_move_and_remove_branches_and_move_a_layer_out(app: AppTest) -> None:
    at = use(app, lins(2, 3), [2, 4])
    select(at, "0", "1")
    click(at, "branches")
    click(at, "add_branch_0_0")  # an identity: (2, 4) more channels
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
    ok(at.selectbox(key="flow_merge_0_0").select("add").run())
    click(at, "set_merge_0_0")  # x + Linear(x): (2, 4) + (2, 2) does not fit (a draft)
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


def add_named(at: AppTest, choice: str, name: str, **args: int | bool | None) -> AppTest:
    """The add panel: a type, its arguments (numbers, text boxes, check boxes) and a name, then Add."""
    ok(at.selectbox(key="add_type").select(choice).run())
    texts, checks = {w.key for w in at.text_input}, {w.key for w in at.checkbox}
    for arg, value in args.items():
        if f"new_{arg}" in texts:
            at.text_input(key=f"new_{arg}").input("" if value is None else str(value))
        elif f"new_{arg}" in checks:
            at.checkbox(key=f"new_{arg}").check() if value else at.checkbox(key=f"new_{arg}").uncheck()
        else:
            at.number_input(key=f"new_{arg}").set_value(value)
    at.text_input(key="new_name").input(name)
    return click(at, "add")


def test_lstmlm_built_from_empty_by_clicking_equals_the_hand_written_one(app: AppTest) -> None:
    at = start_empty(app)
    ok(at.text_input(key="input_shape").input("2, 35").run())
    ok(at.selectbox(key="input_dtype").select("int64").run())
    add_named(at, "Embedding", "embedding", num_embeddings=28, embedding_dim=32)
    ok(at.selectbox(key="add_type").select("LSTM").run())
    assert at.number_input(key="new_input_size").value == 32  # what arrives: (2, 35, 32)
    add_named(at, "LSTM", "rnn", hidden_size=64, batch_first=True)
    assert draft(at).flow == (Call("embedding"), Call("rnn", "output"))  # the stack became a chain flow
    assert any("The network now runs as a flow: rnn gives its sequence output" in i.value for i in at.info)
    assert any("Flow of the network · Net: embedding → rnn[output]" in e.label for e in at.expander)
    add_named(at, "Linear", "linear", out_features=28)  # in_features pre-filled: the LSTM's 64
    d = draft(at)
    assert d.flow == (Call("embedding"), Call("rnn", "output"), Call("linear"))
    assert at.session_state[state.DESIGN.name] == d and not at.error  # it builds: the session follows
    same_both_ways(d, sequence_models.LSTMLM())
    # the output in the LSTM's own editor: h, the last hidden state
    click(at, "edit_1")
    ok(at.selectbox(key="flow_outrow_top_1").select("h").run())
    assert draft(at).flow == (Call("embedding"), Call("rnn", "h"), Call("linear"))
    same_both_ways(draft(at), LastState())
    # ... and back to the sequence output in the network's flow panel (a call's row there)
    ok(at.selectbox(key="flow_out_top_1").select("output").run())
    assert draft(at).flow == d.flow
    ok(at.text_input(key="flow_class_top").input("LSTMLM").run())
    assert draft(at).cls == "LSTMLM" and build(draft(at))._get_name() == "LSTMLM"


def load(at: AppTest, name: str) -> AppTest:
    ok(at.selectbox(key="start").select(name).run())
    return at


def add_step(at: AppTest, holder: str, kind: str, where: str, **args: str | int) -> AppTest:
    """The add-a-step form of the flow panel `holder` ("top", or a block's row id): `kind` "op:mean" or a layer
    type, `where` a place ("1": step 1 of the chain, "0_1_0": the start of branch 1 of step 0)."""
    ok(at.selectbox(key=f"flow_kind_{holder}").select(kind).run())
    ok(at.selectbox(key=f"flow_where_{holder}").select(where).run())
    texts = {w.key for w in at.text_input}
    for arg, value in args.items():
        key = f"flow_arg_{holder}_{arg}"
        if key in texts:
            at.text_input(key=key).input(str(value))
        else:
            at.number_input(key=key).set_value(value)
    return click(at, f"add_step_{holder}")


def test_the_networks_own_flow_edited_inception_less_a_branch_plus_a_mean(app: AppTest) -> None:
    at = load(app, "inception")
    assert any(e.label.startswith("Flow of the network · Inception: [b1_1 → relu |") for e in at.expander)
    assert at.selectbox(key="flow_merge_top_0").value == "cat"
    click(at, "branch_del_top_0_3")  # the max-pool branch, with its two layers
    assert [n.name for n in draft(at).layers] == ["b1_1", "b2_1", "b2_2", "b3_1", "b3_2"]
    assert [o for o in at.selectbox(key="flow_where_top").options][:2] == ["at the end", "at the start"]
    add_step(at, "top", "op:mean", "1", dim="1")
    same_both_ways(draft(at), InceptionWithout4())
    assert at.session_state[state.DESIGN.name] == draft(at) and not at.error
    click(at, "step_up_top_1")  # the mean before the branches: (1, 28, 28) is read as one unbatched image
    assert any(
        "(Inception) cat dim=1: branch 0 gives (64, 28, 28), branch 1 gives (128, 28, 28)" in e.value for e in at.error
    )
    assert at.session_state[state.DESIGN.name] != draft(at)  # the session keeps the last design that built
    click(at, "step_del_top_0")  # the mean goes: the draft builds again
    assert draft(at).flow == dry_flow_less_b4()
    assert not at.error


def dry_flow_less_b4() -> tuple[object, ...]:
    from builder import edit, load_example

    return edit.remove_branch(load_example("inception"), (), 0, 3).flow  # type: ignore[return-value]


def test_ops_added_into_a_residual_blocks_skip_moved_and_removed(app: AppTest) -> None:
    at = use(app, [{"type": "Linear", "name": "lin", "in_features": 4, "out_features": 4}], [2, 4])
    select(at, "0")
    click(at, "residual")
    assert at.selectbox(key="flow_where_0").value == "0_1_0"  # the skip: where a shortcut goes
    add_step(at, "0", "op:tanh", "0_1_0")
    add_step(at, "0", "op:relu", "0_1_1")
    block = draft(at).layers[0]
    assert isinstance(block, Block) and block.flow == (Branches(((Call("lin"),), (Op("tanh"), Op("relu"))), "add"),)
    net = build(draft(at))
    x = torch.randn(2, 4)
    torch.testing.assert_close(net(x), net[0].lin(x) + F.relu(torch.tanh(x)))
    click(at, "step_up_0_0_1_1")  # relu before tanh
    assert draft(at).layers[0].flow[0].branches[1] == (Op("relu"), Op("tanh"))  # type: ignore[union-attr]
    click(at, "step_del_0_0_1_0")
    assert draft(at).layers[0].flow[0].branches[1] == (Op("tanh"),)  # type: ignore[union-attr]
    # a layer added to the chain after the merge through the argument form: its size pre-filled (2, 4)
    ok(at.selectbox(key="flow_kind_0").select("Linear").run())
    ok(at.selectbox(key="flow_where_0").select("1").run())
    assert at.text_input(key="flow_arg_0_in_features").value == "4"
    at.number_input(key="flow_arg_0_out_features").set_value(3)
    click(at, "add_step_0")
    assert draft(at).layers[0].flow[1] == Call("1") and dry_run(draft(at)).output_shape == (2, 3)  # type: ignore[union-attr]


def test_an_op_on_a_plain_stack_makes_it_a_chain_flow_and_a_bad_argument_is_refused(app: AppTest) -> None:
    at = use(app, lins(6), [2, 4])
    assert any(e.label.startswith("Flow of the network: layers in order") for e in at.expander)
    add_step(at, "top", "op:select", "1", dim=1, index=9)  # (2, 6) has no column 9
    assert any("select" in e.value and "9" in e.value for e in at.error), [e.value for e in at.error]
    click(at, "undo")
    add_step(at, "top", "op:reshape", "1", shape="3, a")
    assert any("Not done" in t.value and "shape" in t.value for t in at.toast)
    assert draft(at).flow is None  # refused: nothing changed
    add_step(at, "top", "op:reshape", "1", shape="-1, 3")
    assert draft(at).flow == (Call("0"), Op("reshape", {"shape": (-1, 3)}))
    assert any("The network now runs as a flow" in i.value for i in at.info)
    assert dry_run(draft(at)).output_shape == (4, 3)


def test_row_edits_on_a_flow_blocks_children_rewrite_its_flow(app: AppTest) -> None:
    at = load(app, "resnet18")
    assert draft(at).layers[2].layers[0].flow[0].branches[1] == (Call("conv3"),)  # type: ignore[union-attr]
    for row in ("fold_2", "fold_2_0", "fold_1", "fold_1_0"):  # b3, b3.0, b2, b2.0 unfolded: their layers are rows
        click(at, row)
    click(at, "edit_2_0_2")  # b3.0's conv3, the 1×1 shortcut
    click(at, "del_2_0_2")  # deleted: the skip is the identity again (and the draft says (stride 2) it no longer fits)
    assert draft(at).layers[2].layers[0].flow[0].branches[1] == ()  # type: ignore[union-attr]
    assert any("block 'b3.0' add" in e.value and "branch 1 (identity)" in e.value for e in at.error)
    click(at, "undo")
    click(at, "edit_1_0_2")  # b2.0's bn1 (rows conv1, conv2, bn1, bn2; calls conv1, bn1, relu, conv2, bn2)
    click(at, "up_1_0_2")  # above conv2: the rows now agree with the calls, which stay
    block = draft(at).layers[1].layers[0]  # type: ignore[union-attr]
    assert [n.name for n in block.layers] == ["conv1", "bn1", "conv2", "bn2"]  # type: ignore[union-attr]
    assert block.flow == load_example("resnet18").layers[1].layers[0].flow  # type: ignore[union-attr]
    click(
        at, "down_1_0_1"
    )  # (its editor followed it)  # bn1 below conv2 again: calls in the rows' order swap (conv2 before bn1)
    body = draft(at).layers[1].layers[0].flow[0].branches[0]  # type: ignore[union-attr]
    assert body == (Call("conv1"), Call("conv2"), Op("relu"), Call("bn1"), Call("bn2"))


def test_a_sequential_blocks_editor_adds_a_skip_around_an_op_and_sets_its_merge(app: AppTest) -> None:
    at = use(app, [{"type": "Sequential", "name": "blk", "layers": lins(4)}], [2, 4])
    click(at, "edit_0")  # a Sequential's editor offers the add-a-step form too
    assert any("Runs its layers in order (nn.Sequential)" in c.value for c in at.caption)
    add_step(at, "0", "branches", "1")  # after its Linear: x + x (two identity branches)
    block = draft(at).layers[0]
    assert isinstance(block, Block) and block.flow == (Call("0"), Branches(((), ()), "add"))
    assert any("Block layers[0] now runs as a flow" in i.value for i in at.info)
    add_step(at, "0", "op:sigmoid", "1_1_0")  # branch 1: y + sigmoid(y)
    ok(at.selectbox(key="flow_merge_0_1").select("cat").run())
    at.number_input(key="flow_dim_0_1").set_value(1)
    click(at, "set_merge_0_1")
    block = draft(at).layers[0]
    assert block.flow == (Call("0"), Branches(((), (Op("sigmoid"),)), "cat", 1))  # type: ignore[union-attr]
    net = build(draft(at))
    x = torch.randn(2, 4)
    y = net.blk.get_submodule("0")(x)
    torch.testing.assert_close(net(x), torch.cat((y, torch.sigmoid(y)), dim=1))
    # a branches step inside a branch: its own merge controls, keyed by its place
    add_step(at, "0", "branches", "1_0_0")
    assert at.selectbox(key="flow_merge_0_1_0_0").value == "add"
    click(at, "add_branch_0_1_0_0")
    assert draft(at).layers[0].flow[1].branches[0] == (Branches(((), (), ()), "add"),)  # type: ignore[union-attr]
    nested = build(draft(at))
    nested.load_state_dict(net.state_dict())  # the same Linear: only the flow changed
    torch.testing.assert_close(nested(x), torch.cat((3 * y, torch.sigmoid(y)), dim=1))


def test_residual_on_rows_of_the_networks_chain_flow(app: AppTest) -> None:
    at = load(app, "lstm_lm")
    select(at, "2")  # linear (64 → 28): y + linear(y) cannot add (2, 35, 28) to (2, 35, 64)
    click(at, "residual")
    assert draft(at).flow == (Call("embedding"), Call("rnn"), Call("2"))
    assert any(
        "block '2' add: branch 0 gives (2, 35, 28), branch 1 (identity) gives (2, 35, 64)" in e.value for e in at.error
    )
    click(at, "undo")
    select(at, "0", "2")  # not next to each other: refused, nothing changed
    click(at, "residual")
    assert any("next to each other" in str(t.value) for t in at.toast) and draft(at) == load_example("lstm_lm")


NESTED = {
    "format": 2,
    "input": {"shape": [2, 4]},
    "layers": [{"type": "Linear", "name": n, "in_features": 4, "out_features": 4} for n in ("a", "b", "c")],
    # x + c([a | b] +)(x): a branches step nested in branch 0 of the network's own branches step
    "flow": [{"branches": [[{"branches": [["a"], ["b"]], "merge": "add"}, "c"], []], "merge": "add"}],
}


def test_a_nested_branches_steps_layers_move_to_the_next_branch_and_after_its_merge(app: AppTest) -> None:
    ok(app.text_area(key="json").input(json.dumps(NESTED)).run())
    at = click(app, "json_apply")
    click(at, "to_next_top_0_0_0_0_0")  # a: from the inner branch 0 to the end of inner branch 1
    inner = Branches(((), (Call("b"), Call("a"))), "add")
    assert draft(at).flow == (Branches(((inner, Call("c")), ()), "add"),)
    click(at, "out_top_0_0_0_1_0")  # b: out of the inner branches, right after their merge
    inner = Branches(((), (Call("a"),)), "add")
    assert draft(at).flow == (Branches(((inner, Call("b"), Call("c")), ()), "add"),)
    assert not at.error
    net = build(draft(at))
    a, b, c = net.a, net.b, net.c  # type: ignore[union-attr]
    x = torch.randn(2, 4)
    with torch.no_grad():
        torch.testing.assert_close(net(x), x + c(b(x + a(x))))  # the forward a person would write


def test_add_a_step_fills_in_the_size_arriving_before_a_fault_and_says_when_it_is_unknown(app: AppTest) -> None:
    lin = {"type": "Linear", "in_features": 4, "out_features": 8}
    design = {
        "format": 2,
        "input": {"shape": [2, 4]},
        "layers": [{**lin, "name": "a"}, {"type": "Linear", "name": "bad", "in_features": 100, "out_features": 3}],
        "flow": ["a", {"op": "tanh"}, "bad"],  # bad expects 100 features and gets 8: the draft does not build
    }
    ok(app.text_area(key="json").input(json.dumps(design)).run())
    at = click(app, "json_apply")
    assert any("expects 100 input features, gets 8" in e.value for e in at.error)
    ok(at.selectbox(key="flow_kind_top").select("Linear").run())
    ok(at.selectbox(key="flow_where_top").select("2").run())  # after tanh, before the fault
    assert at.text_input(key="flow_arg_top_in_features").value == "8"
    assert any("filled in from the shape arriving here, (2, 8)" in c.value for c in at.caption)
    ok(at.selectbox(key="flow_where_top").select("3").run())  # after the layer at fault: nothing ran there
    assert any("The shape arriving here is not known" in c.value for c in at.caption)
    at.number_input(key="flow_arg_top_out_features").set_value(5)
    at.text_input(key="flow_arg_top_in_features").input("3")
    click(at, "add_step_top")  # a person who read the note sets the size: Linear(3, 5) after bad
    assert draft(at).flow[-1] == Call("2") and draft(at).layers[2].args["in_features"] == 3  # type: ignore[index,union-attr]
