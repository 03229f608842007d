"""builder.stack_view: which rows the Design page draws (folding), how they are paged, and how the open blocks
follow the nodes when rows move, appear or go."""

from __future__ import annotations

from builder import Design, edit, load_example, stack_view
from builder.addressing import node_at, paths
from builder.design import Block
from builder.flow import Op
from builder.stack_view import after_delete, after_insert, after_move, page_count, page_of, reindexed, rows


def nested() -> Design:
    """[Linear, [Linear, [ReLU, Linear]], ReLU] — a block inside a block."""
    lin = {"type": "Linear", "in_features": 4, "out_features": 4}
    return Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [1, 4]},
            "layers": [
                lin,
                {
                    "type": "Sequential",
                    "name": "body",
                    "layers": [lin, {"type": "Sequential", "layers": [{"type": "ReLU"}, lin]}],
                },
                {"type": "ReLU"},
            ],
        }
    )


def test_folded_blocks_hide_their_children_and_unfolding_shows_one_level() -> None:
    d = nested()
    assert [r.path for r in rows(d, set())] == [(0,), (1,), (2,)]
    assert [(r.path, r.key, r.folded) for r in rows(d, {(1,)})] == [
        ((0,), "0", False),
        ((1,), "body", False),
        ((1, 0), "body.0", False),
        ((1, 1), "body.1", True),
        ((2,), "2", False),
    ]
    every = rows(d, {(1,), (1, 1)})
    assert [r.path for r in every] == [p for p, _ in paths(d)]  # all open: every node, in forward order
    assert [r.dpath for r in every] == [dp for dp, _, _ in d.walk()]
    assert [r.key for r in every] == [k for _, k, _ in d.walk()]
    assert [r.path for r in rows(d, {(1, 1)})] == [(0,), (1,), (2,)]  # an open block inside a folded one: hidden


def test_layer_count_counts_nested_nodes() -> None:
    block = nested().layers[1]
    assert isinstance(block, Block) and stack_view.layer_count(block) == 4  # Linear, block, ReLU, Linear
    resnet = load_example("resnet18")
    assert sum(1 for _ in paths(resnet)) == len(resnet.layers) + sum(
        stack_view.layer_count(n) for n in resnet.layers if isinstance(n, Block)
    )


def test_pages_and_the_page_of_a_row() -> None:
    assert page_count(0) == 1 and page_count(25, 25) == 1 and page_count(26, 25) == 2 and page_count(500, 25) == 20
    d = Design.from_dict({"format": 2, "input": {"shape": [1, 4]}, "layers": [{"type": "ReLU"}] * 60})
    drawn = rows(d, set())
    assert page_of(drawn, (0,), 25) == 0 and page_of(drawn, (25,), 25) == 1 and page_of(drawn, (59,), 25) == 2
    assert page_of(drawn, (60,), 25) is None
    folded = rows(nested(), set())
    assert page_of(folded, (1, 1, 0), 2) == 0  # hidden in a folded block: the block's row
    assert page_of(rows(nested(), {(1,)}), (1, 1, 0), 2) == 1  # the innermost folded block (1, 1)


def test_open_blocks_follow_moves_inserts_and_deletes() -> None:
    opened = {(1,), (1, 1), (3,), (4, 0)}
    assert reindexed(opened, (), after_move(1, 3)) == {(3,), (3, 1), (2,), (4, 0)}
    assert reindexed(opened, (), after_insert(2)) == {(1,), (1, 1), (4,), (5, 0)}
    assert reindexed(opened, (), after_delete(1)) == {(2,), (3, 0)}  # the deleted block's own are gone
    assert reindexed(opened, (1,), after_insert(0)) == {(1,), (1, 2), (3,), (4, 0)}  # inside a block only
    # the same as the edit does: the open block is the same block after the move
    d = nested()
    moved = edit.move(d, (1,), 1)
    assert moved.layers[2] == d.layers[1] and reindexed({(1,)}, (), after_move(1, 2)) == {(2,)}


def test_near_is_the_rows_around_the_open_one() -> None:
    d = Design.from_dict({"format": 2, "input": {"shape": [1, 4]}, "layers": [{"type": "ReLU"}] * 30})
    shown = rows(d, set())[10:20]  # a page
    assert stack_view.near(shown, (15,)) == ["13", "14", "15", "16", "17"]
    assert stack_view.near(shown, (10,)) == ["10", "11", "12", "13", "14"]  # at the page's top
    assert stack_view.near(shown, None) == stack_view.near(shown, (3,)) == ["10", "11", "12", "13", "14"]
    folded = rows(nested(), set())
    assert stack_view.near(folded, (1, 1, 0), k=0) == ["body"]  # hidden: its folded block stands for it


def distinct_blocks() -> Design:
    """Six top-level blocks, each told apart by its width, the third holding two blocks of its own."""

    def blk(width: int, inner: list[dict[str, object]] | None = None) -> dict[str, object]:
        lin = {"type": "Linear", "in_features": 4, "out_features": width}
        back = {"type": "Linear", "in_features": width, "out_features": 4}
        return {"type": "Sequential", "layers": [lin, back, *(inner or [])]}

    layers = [blk(5), blk(6), blk(7, [blk(11), blk(12)]), blk(8), blk(9), blk(10)]
    return Design.from_dict({"format": 2, "input": {"shape": [1, 4]}, "layers": layers})


def test_open_blocks_follow_group_and_ungroup_as_the_edits_move_the_nodes() -> None:
    d = distinct_blocks()
    opened = {(0,), (2,), (2, 2), (2, 3), (3,), (5,)}
    grouped = edit.group(d, [(2,), (3,)])  # blocks 2 and 3 wrapped into one block at 2
    now = stack_view.moved(opened, stack_view.after_group((), 2, 4))
    assert now == {(0,), (2, 0), (2, 0, 2), (2, 0, 3), (2, 1), (4,)}
    for p, q in [((0,), (0,)), ((2,), (2, 0)), ((2, 2), (2, 0, 2)), ((3,), (2, 1)), ((5,), (4,))]:
        assert node_at(grouped, q) == node_at(d, p)
    ungrouped = edit.ungroup(d, (2,))  # block 2's four children take its place
    now = stack_view.moved(opened, stack_view.after_ungroup((2,), 4))
    assert now == {(0,), (4,), (5,), (6,), (8,)}  # 2 itself is gone; its blocks 2.2 and 2.3 are now 4 and 5
    for p, q in [((0,), (0,)), ((2, 2), (4,)), ((2, 3), (5,)), ((3,), (6,)), ((5,), (8,))]:
        assert node_at(ungrouped, q) == node_at(d, p)


def test_open_blocks_follow_children_removed_with_a_flow_step() -> None:
    d = edit.add_step(distinct_blocks(), (), (6,), Op("relu"))  # the network is a chain flow now
    gone = edit.remove_step(d, (), (1,))  # the call of block 1: block 1 goes with it, the others re-keyed
    new_index = stack_view.after_removals(d.layers, gone.layers)
    assert [new_index(i) for i in range(6)] == [0, None, 1, 2, 3, 4]
    assert reindexed({(2,), (2, 2), (5,)}, (), new_index) == {(1,), (1, 2), (4,)}
    for p, q in [((2,), (1,)), ((2, 2), (1, 2)), ((5,), (4,))]:
        assert node_at(gone, q) == node_at(d, p)
