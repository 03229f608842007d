"""Flow designs on every library surface: parameter table and totals, initialization, tied gradients of a shared
layer inside branches, training, the library. Hand-written PyTorch is the truth throughout."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from builder import Design, build, example_input, load_example, save_params, summary, tied_gradients, totals
from builder.data import make_dataset
from builder.gradients import make_loss
from builder.store import Store
from builder.training import TrainConfig, Trainer, accuracy, predict

from .chapter import HAND_WRITTEN


def hand_written(name: str) -> nn.Module:
    net = HAND_WRITTEN[name]()
    with torch.no_grad():
        net(example_input(load_example(name)))  # the chapter's dry run materializes the lazy layers
    return net


@pytest.mark.parametrize("name", ["resnet18", "inception", "densenet_block"])
def test_parameter_table_and_totals_are_the_hand_written_networks(name: str) -> None:
    ours, theirs = build(load_example(name)), hand_written(name)
    table = summary(ours)
    assert list(table["key"]) == list(theirs.state_dict())
    assert list(table["shape"]) == [str(tuple(t.shape)) for t in theirs.state_dict().values()]
    assert totals(ours).unique == sum(p.numel() for p in theirs.parameters())
    assert totals(ours).buffers == sum(b.numel() for b in theirs.buffers())
    assert not totals(ours).tied


def test_resnet18_classes_in_the_table_are_the_books() -> None:
    table = summary(build(load_example("resnet18"))).set_index("key")
    assert table.loc["b3.0.conv3.weight", "type"] == "Conv2d"
    assert table.loc["b3.0.conv3.weight", "layer"] == "b3.0.conv3"
    assert totals(build(load_example("resnet18"))).unique == 11_178_378  # d2l 8.6's ResNet-18 on 1 channel


def test_an_init_on_a_flow_block_reaches_its_children_as_net_apply_does() -> None:
    design = Design.from_dict(
        {**load_example("inception").to_dict(), "seed": 5, "init": {"method": "xavier_uniform", "bias": "zeros"}}
    )
    ours = build(design)
    theirs = hand_written("inception")

    def init_xavier(m: nn.Module) -> None:  # the chapter's way: net.apply(init_xavier)
        if type(m) is nn.Conv2d:
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    torch.manual_seed(5)
    for m in theirs.modules():  # PyTorch's defaults first, in the same (construction) order
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    theirs.apply(init_xavier)
    for (key, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=key)


def test_a_shared_layer_inside_branches_splits_its_gradient_per_use_exactly() -> None:
    design = Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [3, 4]},
            "shared": {"s": {"type": "Linear", "in_features": 4, "out_features": 4}},
            "layers": [
                {"shared": "s", "name": "left"},
                {"shared": "s", "name": "right"},
                {"type": "Linear", "in_features": 8, "out_features": 2, "name": "head"},
            ],
            "flow": [
                {"branches": [["right", {"op": "tanh"}], ["left", {"op": "relu"}, "left"]], "merge": "cat", "dim": 1},
                "head",
            ],
        }
    )
    net = build(design, seed=0)
    x = torch.randn(3, 4)
    loss = make_loss("mse", (3, 2), seed=1)
    result = tied_gradients(net, x, loss)

    # By hand: three untied copies of the shared layer, one per call, in the order the flow calls them.
    s = net.left
    copies = [nn.Linear(4, 4) for _ in range(3)]
    for c in copies:
        c.load_state_dict(s.state_dict())
    head = net.head
    out = head(torch.cat((torch.tanh(copies[0](x)), copies[2](F.relu(copies[1](x)))), dim=1))
    loss(out).backward()
    sg = result["left.weight"]
    assert sg.keys == ("left.weight", "right.weight")
    assert sg.where == ("right", "left", "left")  # the calls, in forward order, at their keys
    for use, c in zip(sg.uses, copies, strict=True):
        torch.testing.assert_close(use, c.weight.grad)
    torch.testing.assert_close(sg.total, sg.grad)
    assert sg.max_abs_diff < 1e-6


def test_a_residual_mlp_trains_and_its_params_work_in_hand_written_pytorch() -> None:
    class ResidualMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(2, 16)
            self.hidden = nn.Linear(16, 16)
            self.out = nn.Linear(16, 2)

        def forward(self, X):
            X = F.relu(self.inp(X))
            return self.out(F.relu(self.hidden(X) + X))

    design = Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [8, 2]},
            "class": "ResidualMLP",
            "layers": [
                {"type": "Linear", "in_features": 2, "out_features": 16, "name": "inp"},
                {"type": "Linear", "in_features": 16, "out_features": 16, "name": "hidden"},
                {"type": "Linear", "in_features": 16, "out_features": 2, "name": "out"},
            ],
            "flow": [
                "inp",
                {"op": "relu"},
                {"branches": [["hidden"], []], "merge": "add"},
                {"op": "relu"},
                "out",
            ],
        }
    )
    data = make_dataset("moons", n=400, noise=0.15, seed=0)
    net = build(design, seed=0)
    trainer = Trainer(net, data, TrainConfig(optimizer="adam", lr=0.01, batch_size=32, epochs=25, seed=0))
    history = trainer.run()
    assert history.last.val_acc >= 0.95, history.frame()
    truth = ResidualMLP()
    truth.load_state_dict(torch.load(io.BytesIO(save_params(net)), weights_only=True), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(truth.eval()(data.X), predict(net, data.X))
    assert accuracy(net, data) >= 0.95


def test_the_library_keeps_flow_designs_and_their_versions(tmp_path) -> None:
    store = Store(tmp_path / "lib.sqlite3")
    store.save("my resnet", load_example("resnet18"))
    store.save("my resnet", load_example("densenet_block"))
    assert store.load("my resnet", 1).to_dict() == {**load_example("resnet18").to_dict(), "name": "my resnet"}
    assert store.load("my resnet").flow == load_example("densenet_block").flow
    name, _ = store.import_json(store.export_json("my resnet", 1), name="again")
    assert list(build(store.load(name)).state_dict()) == list(hand_written("resnet18").state_dict())
