"""The Design page's stack at scale (AppTest): blocks folded by default, unfolding, pages of rows, one editor
open at a time, moving a row to a position far away. Issue 16, item 1."""

from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

from builder import Design, build, load_example, stack_view
from builder.design import Block
from ui import state

from .conftest import open_page

PAGE = stack_view.PAGE_SIZE


def ok(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    return at


def click(at: AppTest, key: str) -> AppTest:
    return ok(at.button(key=key).click().run())


def draft(at: AppTest) -> Design:
    return at.session_state[state.DESIGN_HISTORY.name].present


def rows(at: AppTest) -> list[str]:
    """The row ids drawn, in order ("0", "3_1", …)."""
    return [b.key.removeprefix("edit_") for b in at.button if b.key and b.key.startswith("edit_")]


def blocks_of(n_blocks: int, size: int) -> Design:
    """n_blocks blocks of `size` layers each: Linear(8, 8), ReLU, Linear(8, 8), …"""
    inner = [
        {"type": "Linear", "in_features": 8, "out_features": 8} if i % 2 == 0 else {"type": "ReLU"} for i in range(size)
    ]
    return Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [2, 8]},
            "layers": [{"type": "Sequential", "layers": inner} for _ in range(n_blocks)],
        }
    )


def chain(n: int) -> Design:
    layers = [
        {"type": "Linear", "in_features": 8, "out_features": 8} if i % 2 == 0 else {"type": "ReLU"} for i in range(n)
    ]
    return Design.from_dict({"format": 2, "input": {"shape": [2, 8]}, "layers": layers})


def page_with(app: AppTest, design: Design) -> AppTest:
    app.session_state[state.DESIGN.name] = design
    return ok(open_page(app, "design"))


def test_blocks_are_folded_rows_with_their_layers_parameters_and_shape(app: AppTest) -> None:
    d = load_example("resnet18")
    at = page_with(app, d)
    assert rows(at) == [str(i) for i in range(len(d.layers))]  # one row per top-level node
    net = build(d)
    for i, node in enumerate(d.layers):
        if not isinstance(node, Block):
            continue
        key = node.name or str(i)
        label = next(m.value for m in at.markdown if f"**{key} · " in m.value)
        held = sum(p.numel() for p in net.get_submodule(key).parameters())  # counted by torch, not by us
        assert f"{held:,} parameters" in label
        assert f"{len(node.layers)} layers" in label or f"{stack_view.layer_count(node)} in all" in label
        with torch.no_grad():
            shape = tuple(net[: i + 1](torch.zeros(d.input_shape)).shape)
        assert label.endswith(" `(" + ", ".join(map(str, shape)) + ")`")  # its output shape, computed by torch


def test_unfold_shows_the_layers_inside_and_fold_hides_them_again(app: AppTest) -> None:
    at = page_with(app, blocks_of(3, 4))
    assert rows(at) == ["0", "1", "2"]
    at = click(at, "fold_1")
    assert rows(at) == ["0", "1", "1_0", "1_1", "1_2", "1_3", "2"]
    assert at.session_state[state.DESIGN_UNFOLDED.name] == frozenset({(1,)})
    at = click(at, "edit_1_2")  # an editor open inside the block
    at = click(at, "fold_1")  # folding closes it with the block
    assert rows(at) == ["0", "1", "2"]
    assert at.session_state[state.DESIGN_EDITING.name] is None


def test_one_editor_is_open_at_a_time(app: AppTest) -> None:
    at = page_with(app, chain(6))
    at = click(at, "edit_1")
    assert at.session_state[state.DESIGN_EDITING.name] == (1,)
    at = click(at, "edit_4")  # opening another closes the first
    assert at.session_state[state.DESIGN_EDITING.name] == (4,)
    assert len([b for b in at.button if b.key == "apply"]) == 1
    assert [b.key for b in at.button if b.key and b.key.startswith("del_")] == ["del_4"]
    at = click(at, "edit_4")  # its pencil again closes it
    assert at.session_state[state.DESIGN_EDITING.name] is None
    assert not [b for b in at.button if b.key == "apply"]


def test_a_long_stack_is_paged_and_the_pager_moves_through_it(app: AppTest) -> None:
    at = page_with(app, chain(300))
    assert rows(at) == [str(i) for i in range(PAGE)]
    pager = at.selectbox(key=state.DESIGN_PAGE.name)
    assert pager.format_func(0) == f"1–{PAGE} of 300" and len(pager.options) == -(-300 // PAGE)
    assert at.button(key="page_prev").disabled
    assert at.button(key="page_next_end").label == "Next rows"  # under the rows too
    at = click(at, "page_next_end")
    assert rows(at) == [str(i) for i in range(PAGE, 2 * PAGE)]
    assert any(c.value == f"rows {PAGE + 1}–{2 * PAGE} of 300" for c in at.caption)
    at = ok(at.selectbox(key=state.DESIGN_PAGE.name).select(len(pager.options) - 1).run())
    assert rows(at) == [str(i) for i in range((len(pager.options) - 1) * PAGE, 300)]
    assert at.button(key="page_next").disabled


def test_move_to_a_position_far_away_follows_the_row_to_its_page(app: AppTest) -> None:
    d = chain(300)
    at = page_with(app, d)
    at = click(at, "edit_2")
    at.number_input(key=state.MOVE_TO.name).set_value(281)
    at = click(at, "move_go")
    layers = draft(at).layers
    assert layers[280] == d.layers[2] and layers[2] == d.layers[3] and len(layers) == 300
    assert at.session_state[state.DESIGN_EDITING.name] == (280,)  # still open on the moved row…
    assert "280" in rows(at) and at.session_state[state.DESIGN_PAGE.name] == 280 // PAGE  # …on its page
    at = click(at, "up_280")
    assert draft(at).layers[279] == d.layers[2]
    assert at.session_state[state.DESIGN_EDITING.name] == (279,)


def test_an_edit_inside_a_folded_block_of_a_big_design(app: AppTest) -> None:
    d = blocks_of(30, 10)  # 300 layers in 30 blocks
    at = page_with(app, d)
    assert rows(at) == [str(i) for i in range(PAGE)]
    at = click(at, "page_next")
    at = click(at, "fold_27")
    at = click(at, "edit_27_4")  # a Linear(8, 8) in block 27
    at.checkbox(key="arg_bias").uncheck()
    at.text_input(key=state.NODE_NAME.name).input("probe")
    at = click(at, "apply")
    edited = draft(at).layers[27].layers[4]
    assert edited.args.get("bias") is False and edited.name == "probe"
    assert any("**probe · Linear**" in m.value for m in at.markdown)  # its row says so
    assert at.session_state[state.DESIGN_PAGE.name] == 1 and "27_4" in rows(at)  # still where it was
    assert build(draft(at))[27].probe.bias is None


def test_deleting_a_row_keeps_the_open_blocks_open(app: AppTest) -> None:
    at = page_with(app, blocks_of(4, 2))
    at = click(at, "fold_2")
    at = click(at, "edit_0")
    at = click(at, "del_0")
    assert rows(at) == ["0", "1", "1_0", "1_1", "2"]  # the block that was 2 is 1 now, still open


@pytest.mark.parametrize("where", ["layers[1].layers[0]"])
def test_adding_inside_a_folded_block_unfolds_it(app: AppTest, where: str) -> None:
    at = page_with(app, blocks_of(3, 2))
    ok(at.selectbox(key="add_type").select("ReLU").run())
    ok(at.selectbox(key="add_where").select(where).run())
    at = click(at, "add")
    assert draft(at).layers[1].layers[0].type == "ReLU"
    assert "1_0" in rows(at)


def opened(at: AppTest) -> frozenset[tuple[int, ...]]:
    return at.session_state[state.DESIGN_UNFOLDED.name]


def test_open_blocks_follow_undo_and_redo(app: AppTest) -> None:
    at = page_with(app, blocks_of(4, 2))
    click(at, "fold_2")
    click(at, "edit_0")
    click(at, "del_0")  # block 2 is now block 1, still open
    assert opened(at) == {(1,)} and rows(at)[:3] == ["0", "1", "1_0"]
    click(at, "undo")  # the design as it was: block 2 open again, not the block now at 1
    assert opened(at) == {(2,)}
    assert rows(at) == ["0", "1", "2", "2_0", "2_1", "3"]
    click(at, "redo")
    assert opened(at) == {(1,)}


def test_open_blocks_follow_group_and_ungroup(app: AppTest) -> None:
    at = page_with(app, blocks_of(4, 2))
    click(at, "fold_3")
    at.checkbox(key=f"{state.SELECT_PREFIX}0").check()
    at.checkbox(key=f"{state.SELECT_PREFIX}1").check()
    click(ok(at.run()), "group")  # blocks 0 and 1 into one: block 3 is now block 2, still open
    assert draft(at).layers[2] == blocks_of(4, 2).layers[3]
    assert (2,) in opened(at) and (3,) not in opened(at)
    assert "2_0" in rows(at)
    click(at, "edit_0")
    click(at, "ungroup")  # and back: block 2 is block 3 again
    assert (3,) in opened(at) and (2,) not in opened(at)
    assert rows(at)[-3:] == ["3", "3_0", "3_1"]


def test_open_blocks_move_up_when_a_flow_step_removes_a_layer(app: AppTest) -> None:
    lin = {"type": "Linear", "in_features": 8, "out_features": 8}
    d = Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [2, 8]},
            "layers": [lin, {"type": "Sequential", "layers": [lin]}, {"type": "Sequential", "layers": [lin, lin]}],
            "flow": ["0", "1", "2"],  # the network's own chain flow: removing a call removes its layer
        }
    )
    at = page_with(app, d)
    click(at, "fold_2")
    click(at, "step_del_top_0")  # Linear 0 goes with its only call: the two-layer block is now block 1
    assert len(draft(at).layers) == 2 and draft(at).layers[1] == d.layers[2]
    assert opened(at) == {(1,)}
    assert rows(at) == ["0", "1", "1_0", "1_1"]


def test_ungroup_of_a_row_gone_meanwhile_is_refused_not_a_traceback(app: AppTest) -> None:
    at = page_with(app, blocks_of(3, 2))
    click(at, "edit_2")
    at.button(key="ungroup")  # drawn for block 2; before it is clicked, the design loses that block
    h = at.session_state[state.DESIGN_HISTORY.name]
    at.session_state[state.DESIGN_HISTORY.name] = h.push(blocks_of(2, 2))
    at.session_state[state.DESIGN.name] = blocks_of(2, 2)
    at.button(key="ungroup").click().run()
    assert not at.exception, at.exception
    assert any("Not done" in e.value for e in at.error), [e.value for e in at.error]
    assert draft(at) == blocks_of(2, 2)
