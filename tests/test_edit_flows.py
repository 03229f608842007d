"""builder.edit's flow operations (residual, branches, shortcut, merge, branch add/remove/reorder, moving a
layer between branches), checked against hand-written PyTorch: keys and outputs of the built network."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import builder
from builder import Design, DesignError, build, dry_run, edit, forms
from builder.build import dry_run_until_fault
from builder.design import Block, Layer, child_key
from builder.flow import Branches, Call, Op

from . import chapter, sequence_models


def chain() -> Design:
    """conv1 → bn1 → relu → conv2 → bn2 (named as d2l's Residual), then a ReLU, on (2, 3, 6, 6)."""
    return Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [2, 3, 6, 6]},
            "layers": [
                {
                    "type": "Conv2d",
                    "name": "conv1",
                    "in_channels": 3,
                    "out_channels": 3,
                    "kernel_size": 3,
                    "padding": 1,
                },
                {"type": "BatchNorm2d", "name": "bn1", "num_features": 3},
                {"type": "ReLU", "name": "relu"},
                {
                    "type": "Conv2d",
                    "name": "conv2",
                    "in_channels": 3,
                    "out_channels": 3,
                    "kernel_size": 3,
                    "padding": 1,
                },
                {"type": "BatchNorm2d", "name": "bn2", "num_features": 3},
                {"type": "ReLU"},
            ],
        }
    )


class Residual(nn.Module):  # d2l 8.6's Residual with an nn.ReLU child instead of F.relu, out = Y + X
    def __init__(self, use_1x1conv: bool = False, out: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(3)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(3, out, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(out)
        self.conv3 = nn.Conv2d(3, out, kernel_size=1) if use_1x1conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return y + (self.conv3(x) if self.conv3 is not None else x)


def same_as(design: Design, truth: nn.Module) -> None:
    net = build(design).eval()
    truth.eval()
    assert list(net.state_dict()) == list(truth.state_dict())
    truth.load_state_dict(net.state_dict(), strict=True)
    x = torch.randn(design.input_shape)
    torch.testing.assert_close(net(x), truth(x))


def test_residual_wraps_the_selection_with_the_books_keys_and_forward() -> None:
    d = edit.residual(chain(), [(0,), (1,), (2,), (3,), (4,)], name="blk")
    block = d.layers[0]
    assert isinstance(block, Block) and block.class_name == "Residual" and len(d.layers) == 2
    assert block.flow == (
        Branches(((Call("conv1"), Call("bn1"), Call("relu"), Call("conv2"), Call("bn2")), ()), "add"),
    )
    same_as(d, nn.Sequential(OrderedDict([("blk", Residual()), ("1", nn.ReLU())])))


def test_a_shortcut_in_the_empty_branch_is_the_books_1x1_conv() -> None:
    d = edit.residual(chain(), [(0,), (1,), (2,), (3,), (4,)])
    d = edit.set_args(d, (0, 3), {"in_channels": 3, "out_channels": 5, "kernel_size": 3, "padding": 1})
    d = edit.set_args(d, (0, 4), {"num_features": 5})
    with pytest.raises(DesignError, match=r"add: branch 0 gives \(2, 5, 6, 6\), branch 1 \(identity\) gives"):
        dry_run(d)  # a skip whose shape differs is named by branch
    conv3 = Layer("Conv2d", {"in_channels": 3, "out_channels": 5, "kernel_size": 1}, name="conv3")
    d = edit.add_to_branch(d, (0,), 0, 1, conv3)
    assert [n.name for n in d.layers[0].layers] == ["conv1", "bn1", "relu", "conv2", "bn2", "conv3"]  # type: ignore[union-attr]
    same_as(d, nn.Sequential(Residual(use_1x1conv=True, out=5), nn.ReLU()))


def test_branches_cat_then_merge_branch_order_and_removal() -> None:
    d = Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [2, 4]},
            "layers": [
                {"type": "Linear", "in_features": 4, "out_features": 2},
                {"type": "Linear", "in_features": 4, "out_features": 3},
                {"type": "Linear", "in_features": 4, "out_features": 5},
            ],
        }
    )
    d = edit.branch_out(d, [(0,), (1,), (2,)], merge="cat", dim=1)
    assert dry_run(d).output_shape == (2, 10)
    net = build(d)
    x = torch.randn(2, 4)
    w = [(net[0].get_submodule(str(i)).weight, net[0].get_submodule(str(i)).bias) for i in range(3)]
    expect = torch.cat([F.linear(x, *w[2]), F.linear(x, *w[0]), F.linear(x, *w[1])], dim=1)
    moved = edit.move_branch(d, (0,), 0, 2, -2)
    torch.testing.assert_close(_with_weights(moved, net)(x), expect)
    with pytest.raises(DesignError, match="branch 0 is already the first"):
        edit.move_branch(d, (0,), 0, 0, -1)
    # removing branch 0 drops its child; the unnamed children behind it are re-keyed, the calls follow
    less = edit.remove_branch(d, (0,), 0, 0)
    assert [c.args["out_features"] for c in less.layers[0].layers] == [3, 5]  # type: ignore[union-attr]
    assert dry_run(less).output_shape == (2, 8)
    assert list(build(less).state_dict()) == ["0.0.weight", "0.0.bias", "0.1.weight", "0.1.bias"]
    with pytest.raises(DesignError, match=r"block .0. cat dim=0: branch 0 gives \(2, 2\), branch 1 gives \(2, 3\)"):
        dry_run(edit.set_merge(d, (0,), 0, "cat", 0))
    with pytest.raises(DesignError, match=r"add: branch 0 gives \(2, 2\), branch 1 gives \(2, 3\)"):
        dry_run(edit.set_merge(d, (0,), 0, "add"))


def _with_weights(design: Design, source: nn.Module) -> nn.Module:
    net = build(design)
    net.load_state_dict(source.state_dict())  # same children, same keys: only the order of the branches moved
    return net


def test_add_branch_identity_and_with_a_layer_and_move_a_layer_out_and_between() -> None:
    d = Design.from_dict(
        {"format": 2, "input": {"shape": [2, 4]}, "layers": [{"type": "Linear", "in_features": 4, "out_features": 4}]}
    )
    d = edit.residual(d, [(0,)])
    d = edit.add_branch(d, (0,), 0)  # a second identity
    assert len(d.layers[0].flow[0].branches) == 3  # type: ignore[union-attr]
    d = edit.add_branch(d, (0,), 0, Layer("Tanh"))
    net = build(d)
    x = torch.randn(2, 4)
    lin = net[0].get_submodule("0")
    torch.testing.assert_close(net(x), lin(x) + x + x + torch.tanh(x))
    out = edit.move_call(d, (0,), 0, 3, 0, None)  # Tanh now runs after the add
    torch.testing.assert_close(_with_weights(out, net)(x), torch.tanh(lin(x) + x + x + x))
    into = edit.move_call(d, (0,), 0, 3, 0, 0)  # Tanh to the end of branch 0
    torch.testing.assert_close(_with_weights(into, net)(x), torch.tanh(lin(x)) + x + x + x)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: edit.residual(d, []), "select the layers"),
        (lambda d: edit.residual(d, [(0,), (2,)]), "next to each other"),
        (lambda d: edit.branch_out(d, [(0,), (1,)], merge="max"), "unknown merge 'max'"),
        (lambda d: edit.branch_out(d, [(0,), (1,)], merge="cat", dim=None), "cat needs a dim"),
        (lambda d: edit.set_merge(edit.residual(d, [(0,)]), (0,), 0, "stack"), "stack needs a dim"),
        (lambda d: edit.add_branch(d, (0,), 0), "has no branches: it is not a block"),
        (lambda d: edit.remove_branch(edit.residual(d, [(0,)]), (0,), 0, 5), "no branch 5"),
    ],
)
def test_impossible_flow_edits_are_refused_naming_what(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DesignError, match=message):
        make(chain())


def test_removing_the_only_branch_is_refused() -> None:
    d = edit.branch_out(chain(), [(0,)], merge="add", dim=None)
    with pytest.raises(DesignError, match="only branch"):
        edit.remove_branch(d, (0,), 0, 0)


# -- the flows follow the stack's edits; a tuple layer makes a chain flow; steps; the top level's flow ----------


def dry_design(shape: list[int], dtype: str = "float32") -> Design:
    return Design.from_dict({"format": 2, "input": {"shape": shape, "dtype": dtype}, "layers": [{"type": "Identity"}]})


def example_input(design: Design) -> torch.Tensor:
    if design.input_dtype == "int64":
        return torch.randint(0, 28, design.input_shape)
    return torch.randn(design.input_shape)


def same_both_ways(design: Design, truth: nn.Module) -> None:
    """The hand-written `truth` and the built design: the same keys in the same order, strict loads both ways,
    equal outputs (eval mode)."""
    x = example_input(design)
    truth.eval()
    with torch.no_grad():
        truth(x)  # materializes the lazy layers of the reference
    net = build(design).eval()
    assert list(net.state_dict()) == list(truth.state_dict())
    truth.load_state_dict(net.state_dict(), strict=True)
    torch.testing.assert_close(net(x), truth(x))
    for p in truth.parameters():
        p.data.normal_()
    net.load_state_dict(truth.state_dict(), strict=True)
    torch.testing.assert_close(net(x), truth(x))


def test_lstmlm_from_empty_by_inserting_its_layers() -> None:
    d = edit.clear(dry_design([2, 35], "int64"))
    d = edit.insert(d, (0,), Layer("Embedding", {"num_embeddings": 28, "embedding_dim": 32}, "embedding"))
    assert d.flow is None  # a plain stack still
    before = d
    d = edit.insert(d, (1,), Layer("LSTM", {"input_size": 32, "hidden_size": 64, "batch_first": True}, "rnn"))
    assert d.flow == (Call("embedding"), Call("rnn", "output"))  # the stack became a chain flow, keys unchanged
    note = edit.became_flow(before, d, ())
    assert note is not None and note.startswith("the network now runs as a flow: rnn gives its sequence output")
    assert "'h' or 'c'" not in note and "h or c" in note
    assert edit.became_flow(d, d, ()) is None
    d = edit.insert(d, (2,), Layer("Linear", {"in_features": 64, "out_features": 28}, "linear"))
    assert d.flow == (Call("embedding"), Call("rnn", "output"), Call("linear"))
    assert dry_run(d).output_shape == (2, 35, 28)
    same_both_ways(d, sequence_models.LSTMLM())
    # the state instead of the sequence output: h of the last step, (1, 2, 64) -> (1, 2, 28)
    h = edit.set_output(d, (), (1,), "h")
    assert h.flow == (Call("embedding"), Call("rnn", "h"), Call("linear"))
    same_both_ways(h, LastState())
    with pytest.raises(DesignError, match="LSTM has no output 'x'; its outputs: output, h, c"):
        edit.set_output(d, (), (1,), "x")
    with pytest.raises(DesignError, match=r"flow\[0\]: is not a call of a layer|returns one tensor"):
        edit.set_output(edit.add_step(d, (), (0,), Op("relu")), (), (0,), "h")


class LastState(sequence_models.LSTMLM):
    def forward(self, X: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.rnn(self.embedding(X))
        return self.linear(h)


class NestedLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 6), nn.GRU(6, 5, batch_first=True), nn.Linear(5, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.net[1](self.net[0](x))
        return self.net[2](y)


def test_a_gru_inserted_into_a_nested_sequential_makes_that_block_a_chain_flow() -> None:
    d = Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [2, 7, 4]},
            "layers": [
                {
                    "type": "Sequential",
                    "name": "net",
                    "layers": [
                        {"type": "Linear", "in_features": 4, "out_features": 6},
                        {"type": "Linear", "in_features": 5, "out_features": 3},
                    ],
                }
            ],
        }
    )
    gru = edit.insert(d, (0, 1), Layer("GRU", {"input_size": 6, "hidden_size": 5, "batch_first": True}))
    block = gru.layers[0]
    assert isinstance(block, Block) and gru.flow is None
    assert block.flow == (Call("0"), Call("1", "output"), Call("2"))  # the Linear behind it moved to key 2
    assert edit.became_flow(d, gru, (0,)) == (
        "block layers[0] now runs as a flow: 1 gives its sequence output ('output'; choose state or h in its editor)"
    )
    same_both_ways(gru, NestedLSTM())


def _example(name: str) -> Design:
    return builder.load_example(name)


class InceptionWithout4(chapter.Inception):
    """The book's Inception with its fourth branch (the max-pool path) taken out, and its output averaged over
    the channels (an op added to the top level's flow after the merge)."""

    def __init__(self) -> None:
        super().__init__(64, (96, 128), (16, 32), 32)
        del self.b4_1, self.b4_2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        return torch.cat((b1, b2, b3), dim=1).mean(dim=1)


def test_the_top_level_flow_of_inception_edited_branch_removed_and_an_op_added() -> None:
    d = _example("inception")
    less = edit.remove_branch(d, (), 0, 3)  # the top level: path ()
    assert [child_key(n, i) for i, n in enumerate(less.layers)] == ["b1_1", "b2_1", "b2_2", "b3_1", "b3_2"]
    d2 = edit.add_step(less, (), (1,), edit_op("mean", {"dim": 1}))
    assert dry_run(d2).output_shape == (1, 28, 28)
    same_both_ways(d2, InceptionWithout4())
    # the same through deleting the branch's layers: the cat branch left without layers goes
    gone = edit.delete(edit.delete(d, (6,)), (5,))
    assert gone.flow == less.flow
    moved = edit.move_branch(d, (), 0, 3, -3)
    assert moved.flow[0].branches[0] == d.flow[0].branches[3]  # type: ignore[index, union-attr]
    assert edit.set_merge(d, (), 0, "stack", 0).flow[0].merge == "stack"  # type: ignore[index, union-attr]
    with pytest.raises(DesignError, match=r"flow\[1\] is not a branches step"):
        edit.add_branch(d, (), 1)


def edit_op(name: str, values: dict[str, object]) -> Op:
    return forms.make_op(name, values)


def test_ops_added_in_a_chain_and_inside_a_branch_moved_and_removed() -> None:
    d = Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [2, 3, 4]},
            "layers": [{"type": "Linear", "in_features": 4, "out_features": 4, "name": "fc"}],
        }
    )
    d = edit.add_step(d, (), (1,), edit_op("relu", {}))  # a plain stack becomes a chain flow first
    assert d.flow == (Call("fc"), Op("relu"))
    net = build(d)
    x = torch.randn(2, 3, 4)
    fc = net.fc
    d = edit.add_step(d, (), (0,), edit_op("transpose", {"dim0": 1, "dim1": 2}))
    d = edit.add_step(d, (), (3,), edit_op("select", {"dim": 1, "index": -1}))
    assert edit_op("mean", {"dim": None, "keepdim": False}) == Op("mean")  # defaults are not stored
    with pytest.raises(DesignError, match=r"Linear: expects 4 input features|in_features"):
        dry_run(d)  # (2, 4, 3) into Linear(4, …): the flow does not fit until the transpose moves
    d = edit.move_step(d, (), (0,), 1)  # fc first, then the transpose
    assert d.flow == (
        Call("fc"),
        Op("transpose", {"dim0": 1, "dim1": 2}),
        Op("relu"),
        Op("select", {"dim": 1, "index": -1}),
    )
    torch.testing.assert_close(_with_weights(d, net)(x), F.relu(fc(x).transpose(1, 2))[:, -1])
    d = edit.remove_step(d, (), (1,))
    torch.testing.assert_close(_with_weights(d, net)(x), F.relu(fc(x))[:, -1])
    with pytest.raises(DesignError, match=r"flow\[2\]: it is already the last step there"):
        edit.move_step(d, (), (2,), 1)
    # inside a branch: a skip connection whose identity branch gets a tanh
    r = edit.add_branch(edit.add_step(d, (), (3,), Branches(((), ()), "add")), (), 3)
    r = edit.add_step(r, (), (3, 1, 0), edit_op("tanh", {}))
    assert r.flow[3] == Branches(((), (Op("tanh"),), ()), "add")  # type: ignore[index]
    y = F.relu(fc(x))[:, -1]
    torch.testing.assert_close(_with_weights(r, net)(x), y + torch.tanh(y) + y)
    with pytest.raises(DesignError, match=r"flow\[3\]: has no branch 5"):
        edit.add_step(r, (), (3, 5, 0), Op("relu"))
    with pytest.raises(DesignError, match=r"flow\[3\].branches\[1\]\[4\]: that place has 1 steps"):
        edit.add_step(r, (), (3, 1, 4), Op("relu"))


def test_deleting_the_shortcut_leaves_the_identity_skip_the_books_residual() -> None:
    d = edit.residual(chain(), [(0,), (1,), (2,), (3,), (4,)])
    conv3 = Layer("Conv2d", {"in_channels": 3, "out_channels": 3, "kernel_size": 1}, name="conv3")
    d = edit.add_to_branch(d, (0,), 0, 1, conv3)
    same_as(d, nn.Sequential(Residual(use_1x1conv=True), nn.ReLU()))
    d = edit.delete(d, (0, 5))  # conv3: its branch is the identity again (add), not removed
    assert d.layers[0].flow == (  # type: ignore[union-attr]
        Branches(((Call("conv1"), Call("bn1"), Call("relu"), Call("conv2"), Call("bn2")), ()), "add"),
    )
    same_as(d, nn.Sequential(Residual(), nn.ReLU()))
    d = edit.delete(d, (0, 2))  # the body's relu: gone from the body's chain
    assert d.layers[0].flow[0].branches[0] == (Call("conv1"), Call("bn1"), Call("conv2"), Call("bn2"))  # type: ignore[union-attr]


class DenseOne(nn.Module):
    """d2l 8.7's DenseBlock(1, 10): one conv block, concatenated with its input."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(chapter._conv_block(10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.net[0](x)), dim=1)


def test_deleting_a_grandchild_the_flow_calls_renames_the_calls_behind_it() -> None:
    d = _example("densenet_block")  # flow: [[] | net.0] cat, [[] | net.1] cat
    one = edit.delete(d, (0, 0))  # net.0 goes, net.1 becomes net.0: its call follows, the first cat step goes
    assert one.flow == (Branches(((), (Call("net.0"),)), "cat", 1),)
    same_both_ways(one, DenseOne())
    with pytest.raises(DesignError, match="only layer of block layers\\[0\\]"):
        edit.delete(one, (0, 0))


class Chain(nn.Module):
    """Three named Linears registered in the order b, a, c and run in that order, with a relu in between."""

    def __init__(self) -> None:
        super().__init__()
        self.b = nn.Linear(4, 4)
        self.a = nn.Linear(4, 4)
        self.c = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(F.relu(self.a(self.b(x))))


def three(names: bool) -> Design:
    lin = [{"type": "Linear", "in_features": 4, "out_features": o} for o in (4, 4, 2)]
    if names:
        for spec, n in zip(lin, "abc", strict=True):
            spec["name"] = n
    keys = list("abc") if names else ["0", "1", "2"]
    return Design.from_dict(
        {"format": 2, "input": {"shape": [2, 4]}, "layers": lin, "flow": [keys[0], keys[1], {"op": "relu"}, keys[2]]}
    )


def test_moving_a_child_in_a_chain_flow_reorders_its_call() -> None:
    d = edit.move(three(names=True), (1,), -1)
    assert [n.name for n in d.layers] == ["b", "a", "c"]
    assert d.flow == (Call("b"), Call("a"), Op("relu"), Call("c"))
    same_both_ways(d, Chain())
    # unnamed: the keys are positions; the calls follow the layers, then swap
    u = three(names=False)
    net = build(u)
    m = edit.move(u, (1,), -1)
    assert m.flow == u.flow  # "0" is now the layer that was "1": the text is the same, the order is not
    moved = build(m)
    moved.load_state_dict(
        {
            "0.weight": net.get_parameter("1.weight"),
            "0.bias": net.get_parameter("1.bias"),
            "1.weight": net.get_parameter("0.weight"),
            "1.bias": net.get_parameter("0.bias"),
            "2.weight": net.get_parameter("2.weight"),
            "2.bias": net.get_parameter("2.bias"),
        }
    )
    x = torch.randn(2, 4)
    l0, l1, l2 = (net.get_submodule(k) for k in "012")
    torch.testing.assert_close(moved(x), l2(F.relu(l0(l1(x)))))


def test_rename_insert_and_duplicate_keep_a_flows_calls() -> None:
    d = edit.rename(_example("densenet_block"), (0, 1), "last")  # a grandchild the top level's flow calls
    assert d.flow[1].branches[1] == (Call("net.last"),)  # type: ignore[index, union-attr]
    d = edit.insert(d, (0, 0), Layer("Identity"))  # an unnamed one before net.0: it becomes net.1
    assert d.flow[0].branches[1] == (Call("net.1"),)  # type: ignore[index, union-attr]
    assert dry_run(d).output_shape == (4, 23, 8, 8)
    t = edit.insert(three(names=True), (2,), Layer("Tanh", name="t"))  # after b: called right after b's call
    assert t.flow == (Call("a"), Call("b"), Call("t"), Op("relu"), Call("c"))
    first = edit.insert(three(names=True), (0,), Layer("Tanh", name="t"))  # first: right before a's call
    assert first.flow == (Call("t"), Call("a"), Call("b"), Op("relu"), Call("c"))
    dup = edit.duplicate(three(names=True), (1,))
    assert dup.flow == (Call("a"), Call("b"), Call("b_2"), Op("relu"), Call("c"))
    assert dry_run(dup).output_shape == (2, 2)


def test_removing_a_call_step_takes_its_only_child_and_refuses_a_blocks_last() -> None:
    d = three(names=True)
    less = edit.remove_step(d, (), (0,))
    assert [n.name for n in less.layers] == ["b", "c"] and less.flow == (Call("b"), Op("relu"), Call("c"))
    twice = edit.add_step(d, (), (4,), Call("c"))
    assert len(edit.remove_step(twice, (), (4,)).layers) == 3  # called elsewhere too: the child stays
    blk = edit.residual(chain(), [(0,)])
    with pytest.raises(DesignError, match=r"layers\[0\].flow\[0\].branches\[0\]\[0\]: 'conv1' is the only layer"):
        edit.remove_step(blk, (0,), (0, 0, 0))


def test_ungrouping_a_residual_block_keeps_its_skip_and_group_in_a_flow_calls_the_block() -> None:
    d = edit.residual(chain(), [(0,), (1,), (2,), (3,), (4,)], name="blk")
    d = edit.group(d, [(0,)], name="stage")  # stage = Sequential(blk), as ResNet's b2
    truth = nn.Sequential(OrderedDict([("stage", nn.Sequential(OrderedDict([("blk", Residual())]))), ("1", nn.ReLU())]))
    same_as(d, truth)
    u = edit.ungroup(d, (0, 0))  # the Residual's children into stage: stage becomes a flow with the skip
    stage = u.layers[0]
    assert isinstance(stage, Block) and [n.name for n in stage.layers] == ["conv1", "bn1", "relu", "conv2", "bn2"]
    assert stage.flow == (
        Branches(((Call("conv1"), Call("bn1"), Call("relu"), Call("conv2"), Call("bn2")), ()), "add"),
    )
    flat = Residual()
    same_as(u, nn.Sequential(OrderedDict([("stage", flat), ("1", nn.ReLU())])))
    # grouping children of a chain flow: the flow calls the new block once
    g = edit.group(_example("lstm_lm"), [(0,), (1,)], name="enc")
    enc = g.layers[0]
    assert isinstance(enc, Block) and enc.flow == (Call("embedding"), Call("rnn", "output"))  # an LSTM inside
    assert g.flow == (Call("enc"), Call("linear"))
    assert edit.ungroup(g, (0,)).flow == (Call("embedding"), Call("rnn", "output"), Call("linear"))
    assert dry_run(g).output_shape == (2, 35, 28)


def test_a_layer_inserted_at_the_networks_end_runs_at_its_end() -> None:
    for name in ("densenet_block", "inception"):  # the last child's calls sit in a branch: the new one does not
        d = _example(name)
        out = edit.insert(d, (len(d.layers),), Layer("ReLU", name="last"))
        assert out.flow == (*d.flow, Call("last")), name  # type: ignore[misc]
    blk = edit.residual(chain(), [(0,), (1,), (2,), (3,), (4,)])  # in a block: after the call of the one above
    out = edit.insert(blk, (0, 5), Layer("Tanh", name="t"))
    assert out.layers[0].flow[0].branches[0][-2:] == (Call("bn2"), Call("t"))  # type: ignore[union-attr]


def test_the_size_arriving_at_the_networks_end_and_in_a_flow() -> None:
    d = _example("densenet_block")  # its last child is called inside a branch: the end is the flow's output
    run = dry_run(d)
    assert forms.input_shape_at(d, (1,), run) == (4, 23, 8, 8)
    lm = _example("lstm_lm")
    run = dry_run(lm)
    assert forms.flow_input_shape(lm, (), (2,), run) == (2, 35, 64)  # after rnn: its sequence output
    assert forms.flow_input_shape(lm, (), (0,), run) == (2, 35)
    r = _example("resnet18")
    run = dry_run(r)
    assert forms.flow_input_shape(r, (2, 0), (0, 1, 0), run) == (1, 64, 24, 24)  # b3.0's skip: its input
    assert forms.flow_input_shape(r, (2, 0), (1,), run) == (1, 128, 12, 12)  # after the merge
    assert forms.flow_input_shape(r, (0,), (2,), run) == (1, 64, 48, 48)  # a Sequential: its children's runs
    assert forms.flow_input_shape(r, (2, 0), (1,), None) is None


class LinearStack(nn.Module):
    """LSTMLM whose Linear sits in a residual block: out = linear(y) + y (a 64 → 64 Linear)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(28, 32)
        self.rnn = nn.LSTM(32, 64, batch_first=True)
        self.res = nn.Module()
        self.res.linear = nn.Linear(64, 64)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(self.embedding(X))
        return self.res.linear(y) + y


def test_residual_and_branches_inside_a_flow_wrap_the_calls_run_in_a_row() -> None:
    lm = edit.set_args(_example("lstm_lm"), (2,), {"in_features": 64, "out_features": 64})
    r = edit.residual(lm, [(2,)], name="res")  # the network's own flow: its call of linear becomes res
    assert r.flow == (Call("embedding"), Call("rnn"), Call("res"))
    same_both_ways(r, LinearStack())
    # inside a residual block's body: conv1 → bn1 wrapped in a residual of their own, called once
    d = edit.residual(chain(), [(0,), (1,), (2,), (3,), (4,)], name="blk")
    inner = edit.residual(d, [(0, 0), (0, 1)], name="first")
    blk = inner.layers[0]
    assert isinstance(blk, Block) and blk.flow[0].branches[0][:2] == (Call("first"), Call("relu"))  # type: ignore[index, union-attr]
    first = blk.layers[0]
    assert isinstance(first, Block) and first.flow == (Branches(((Call("conv1"), Call("bn1")), ()), "add"),)
    # the LSTM keeps the output the flow took
    h = edit.group(edit.set_output(_example("lstm_lm"), (), (1,), "h"), [(1,)], name="g")
    assert h.flow == (Call("embedding"), Call("g"), Call("linear")) and h.layers[1].flow == (Call("rnn", "h"),)  # type: ignore[union-attr]
    # layers a flow runs apart (Inception's b1_1 and b2_1 sit in two branches) cannot become one block
    with pytest.raises(DesignError, match=r"residual: the network's flow calls 'b1_1', 'b2_1' apart"):
        edit.residual(_example("inception"), [(0,), (1,)])
    with pytest.raises(DesignError, match=r"branches: the network's flow calls"):
        edit.branch_out(_example("inception"), [(1,), (2,)])


def test_the_size_arriving_before_a_fault_is_known_and_after_it_is_not() -> None:
    """A design that does not build still tells the sizes arriving before its fault (the Add-a-step form fills
    them in); places after it are unknown. The sizes before the fault are those of the design that builds."""
    r = _example("resnet18")
    full = dry_run(r)
    # b5.1's conv2 with a 7×7 kernel and no padding cannot take the 3×3 map it receives: the fault is in branch 0
    broken = edit.set_args(r, (4, 1, 1), {"out_channels": 512, "kernel_size": 7})
    with pytest.raises(DesignError, match="b5.1' branch 0"):
        dry_run(broken)
    seen = dry_run_until_fault(broken)
    assert seen.output_shape == () and seen.layers  # what ran before the fault, no more
    assert dry_run_until_fault(r) == full  # a design that builds: its own dry run
    b51 = (4, 1)
    for holder, at in [((2, 0), (0, 1, 0)), ((2, 0), (1,)), (b51, (0, 0, 1)), (b51, (0, 0, 3)), (b51, (0, 1, 0))]:
        known = forms.flow_input_shape(broken, holder, at, seen)
        assert known is not None and known == forms.flow_input_shape(r, holder, at, full), (holder, at)
    assert forms.flow_input_shape(broken, b51, (0, 1, 0), seen) == (1, 512, 3, 3)  # the skip: the block's input
    assert forms.flow_input_shape(broken, b51, (0, 0, 4), seen) is None  # after conv2: never ran
    assert forms.flow_input_shape(broken, b51, (1,), seen) is None  # after the merge
    assert forms.flow_input_shape(broken, (5,), (1,), seen) is None  # the last stage, after the fault
