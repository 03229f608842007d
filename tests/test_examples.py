"""Every shipped example against the chapter's hand-written PyTorch: same keys, shapes, tying and outputs."""

from __future__ import annotations

import dataclasses
import io

import pytest
import torch
from torch import nn

from builder import build, example_input, example_names, load_example, save_params

from .chapter import HAND_WRITTEN


def hand_written(name: str, x: torch.Tensor) -> nn.Module:
    net = HAND_WRITTEN[name]()
    with torch.no_grad():
        net(x)  # the chapter's dry run: materializes lazy layers
    return net


def test_every_chapter_example_is_shipped() -> None:
    assert {"sequential_mlp", "custom_mlp", "tied", "lazy_mlp", "my_linear", "nested"} <= set(example_names())
    assert set(HAND_WRITTEN) <= set(example_names())


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_state_dict_keys_and_shapes_match_hand_written(name: str) -> None:
    design = load_example(name)
    x = example_input(design)
    ours, theirs = build(design), hand_written(name, x)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [t.shape for t in ours.state_dict().values()] == [t.shape for t in theirs.state_dict().values()]
    assert ours(x).shape == theirs(x).shape


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_params_move_both_ways_with_equal_outputs(name: str) -> None:
    design = load_example(name)
    x = example_input(design)
    ours, theirs = build(design, seed=1), hand_written(name, x)
    for src, dst in ((ours, theirs), (theirs, ours)):
        buffer = io.BytesIO(save_params(src))
        dst.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
        src.eval(), dst.eval()
        with torch.no_grad():
            torch.testing.assert_close(dst(x), src(x))
    theirs.load_state_dict(build(design, seed=2).state_dict())  # fresh weights, to catch a stale copy
    buffer = io.BytesIO()
    torch.save(theirs.state_dict(), buffer)  # a .params file written by hand-written code
    buffer.seek(0)
    ours.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x))


def test_tied_layer_is_one_module_at_both_positions() -> None:
    net = build(load_example("tied"))
    assert net[2] is net[4]
    assert net[2].weight is net[4].weight
    net[2].weight.data[0, 0] = 100  # the chapter's demonstration
    assert net[4].weight[0, 0] == 100
    # the chapter's claim: the gradient of the shared layer is the sum over both uses (checked in detail later)
    assert len(list(net.parameters())) == 6  # 0.w, 0.b, shared w, b, 6.w, 6.b — once each


def test_seeded_build_equals_hand_written_construction_under_the_same_seed() -> None:
    design = load_example("sequential_mlp")
    torch.manual_seed(7)
    theirs = HAND_WRITTEN["sequential_mlp"]()
    ours = build(design, seed=7)
    for (k, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)


def test_lazy_layers_are_torch_lazy_modules_materialized() -> None:
    net = build(load_example("nested"))
    assert net[0].net[0].weight.shape == (64, 20)
    assert net[0].linear.weight.shape == (16, 32)
    assert net[1].weight.shape == (20, 16)
    assert all(not isinstance(p, nn.UninitializedParameter) for p in net.parameters())
    assert type(net[1]) is nn.Linear  # torch turns a materialized LazyLinear into a Linear


def test_my_linear_passes_gradients_to_its_parameters() -> None:
    design = load_example("my_linear")
    net = build(design, seed=0)
    net(example_input(design) + 1).sum().backward()
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0


def test_matching_example_is_the_unchanged_example_only() -> None:
    from builder.design import Layer
    from builder.examples import matching_example

    for name in ("lenet", "sequential_mlp"):
        design = load_example(name)
        assert matching_example(design) == name
        assert matching_example(load_example(name)) == name  # asked again (the example is read once)
        first = design.layers[0]
        assert isinstance(first, Layer)
        edited = dataclasses.replace(design, layers=(dataclasses.replace(first, name="renamed"), *design.layers[1:]))
        assert matching_example(edited) is None  # an edited example keeps its name, not the match
        first.args["padding"] = 7  # type: ignore[index]  # the loaded copy changed in place: its own, not the kept one
        assert matching_example(design) is None and matching_example(load_example(name)) == name
