"""builder.edit's flow operations (residual, branches, shortcut, merge, branch add/remove/reorder, moving a
layer between branches), checked against hand-written PyTorch: keys and outputs of the built network."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from builder import Design, DesignError, build, dry_run, edit
from builder.design import Block, Layer
from builder.flow import Branches, Call


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
        (lambda d: edit.residual(edit.residual(d, [(0,), (1,)]), [(0, 0)]), "is a flow block"),
    ],
)
def test_impossible_flow_edits_are_refused_naming_what(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DesignError, match=message):
        make(chain())


def test_removing_the_only_branch_is_refused() -> None:
    d = edit.branch_out(chain(), [(0,)], merge="add", dim=None)
    with pytest.raises(DesignError, match="only branch"):
        edit.remove_branch(d, (0,), 0, 0)
