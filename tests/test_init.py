"""Initialization as part of the design (d2l 6.3): the format, each method, precedence, seeds, and the
chapter's own code (`net.apply(init_normal)` after `torch.manual_seed`) as the truth."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import builder
from builder import Design, DesignError, build, init_spec, initialize, load_example
from builder import init as inits
from builder.examples import EXAMPLES_DIR

pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True")


def mlp(**extra) -> Design:
    return Design.from_dict(
        {
            "format": 1,
            "name": "mlp",
            "input": {"shape": [2, 20]},
            "layers": [
                {"type": "Linear", "in_features": 20, "out_features": 256},
                {"type": "ReLU"},
                {"type": "Linear", "in_features": 256, "out_features": 10},
            ],
            **extra,
        }
    )


# -- the format ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", builder.example_names(heavy=False))
def test_examples_load_unchanged_and_round_trip(name: str) -> None:
    design = load_example(name)
    assert design.init is None and design.seed is None
    assert design.to_dict() == json.loads((EXAMPLES_DIR / f"{name}.json").read_text())
    assert Design.from_json(design.to_json()) == design


def test_init_and_seed_round_trip_at_every_level() -> None:
    data = {
        "format": 1,
        "name": "all",
        "input": {"shape": [2, 4]},
        "shared": {"s": {"type": "Linear", "in_features": 8, "out_features": 8, "init": {"method": "zeros"}}},
        "layers": [
            {"type": "Linear", "in_features": 4, "out_features": 8, "init": {"method": "normal", "std": 0.1}},
            {
                "type": "Sequential",
                "init": {"method": "constant", "value": 2, "bias": "default"},
                "layers": [{"shared": "s"}],
            },
        ],
        "init": {"method": "kaiming_uniform", "nonlinearity": "tanh"},
        "seed": 42,
    }
    design = Design.from_dict(data)
    assert design.seed == 42 and design.init == {"method": "kaiming_uniform", "nonlinearity": "tanh"}
    assert design.layers[1].init == {"method": "constant", "value": 2.0, "bias": "default"}
    assert Design.from_json(design.to_json()) == design
    assert design.to_dict()["layers"][0]["init"] == {"method": "normal", "std": 0.1}
    assert Design.from_dict({**data, "init": "xavier_normal"}).init == {"method": "xavier_normal"}  # short form


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"init": {"method": "uniformish"}}, "init.method", "must be one of default, normal"),
        ({"init": {"method": ["normal"]}}, "init.method", "must be one of default, normal"),  # unhashable JSON
        ({"init": {"method": {}}}, "init.method", "must be one of default, normal"),
        ({"init": {"method": "normal", "std": 0}}, "init.std", "greater than 0"),
        ({"init": {"method": "normal", "std": "big"}}, "init.std", "must be a number"),
        ({"init": {"method": "zeros", "std": 1}}, "init.std", "has no option 'std'"),
        ({"init": {"method": "normal", "bias": "ones"}}, "init.bias", "'zeros' or 'default'"),
        ({"init": {"method": "kaiming_normal", "mode": "fan_mid"}}, "init.mode", "'fan_in', 'fan_out'"),
        ({"init": 3}, "init", "must be an object"),
        ({"seed": -1}, "seed", "whole number from 0"),
        ({"seed": True}, "seed", "whole number from 0"),
        ({"seed": 1.5}, "seed", "whole number from 0"),
    ],
)
def test_bad_design_level_init_and_seed(change: dict, path: str, message: str) -> None:
    with pytest.raises(DesignError, match=message) as e:
        mlp(**change)
    assert e.value.path == path


def test_bad_layer_level_init() -> None:
    base = mlp().to_dict()
    base["layers"][1]["init"] = "normal"
    with pytest.raises(DesignError, match="ReLU has no weight matrix or kernel") as e:
        Design.from_dict(base)
    assert e.value.path == "layers[1].init"
    tied = load_example("tied").to_dict()
    tied["layers"][2]["init"] = "zeros"
    with pytest.raises(DesignError, match="takes only 'shared' and 'name'"):
        Design.from_dict(tied)


# -- what each method does -----------------------------------------------------------------------------------


def first(design: Design) -> nn.Linear:
    return build(design, seed=0)[0]


def test_methods() -> None:
    layer = first(mlp(init={"method": "normal", "std": 0.01}))
    assert abs(float(layer.weight.std()) - 0.01) < 0.002 and torch.all(layer.bias == 0)
    layer = first(mlp(init={"method": "constant", "value": 1}))
    assert torch.all(layer.weight == 1) and torch.all(layer.bias == 0)
    layer = first(mlp(init="zeros"))
    assert torch.all(layer.weight == 0)
    layer = first(mlp(init="xavier_uniform"))
    bound = (6 / (20 + 256)) ** 0.5
    assert float(layer.weight.abs().max()) <= bound and float(layer.weight.abs().max()) > 0.9 * bound
    layer = first(mlp(init={"method": "kaiming_normal"}))
    assert abs(float(layer.weight.std()) - (2 / 20) ** 0.5) < 0.02
    layer = first(mlp(init="my_init"))
    w = layer.weight
    assert torch.all((w == 0) | (w.abs() >= 5)) and float(w.abs().max()) <= 10 and (w == 0).any()
    kept = first(mlp(init={"method": "zeros", "bias": "default"}))
    assert not torch.all(kept.bias == 0)
    assert torch.equal(first(mlp(init="default")).weight, first(mlp()).weight)


def test_precedence_layer_over_block_over_design_and_shared_from_its_own() -> None:
    design = Design.from_dict(
        {
            "format": 1,
            "name": "p",
            "input": {"shape": [2, 4]},
            "init": {"method": "constant", "value": 1},
            "shared": {"s": {"type": "Linear", "in_features": 4, "out_features": 4}},
            "layers": [
                {"type": "Linear", "in_features": 4, "out_features": 4},
                {
                    "type": "Sequential",
                    "init": {"method": "constant", "value": 2},
                    "layers": [
                        {"type": "Linear", "in_features": 4, "out_features": 4},
                        {
                            "type": "Linear",
                            "in_features": 4,
                            "out_features": 4,
                            "init": {"method": "constant", "value": 3},
                        },
                        {"type": "Linear", "in_features": 4, "out_features": 4, "init": "default"},
                        {"shared": "s"},
                    ],
                },
            ],
        }
    )
    net = build(design)
    assert torch.all(net[0].weight == 1)
    assert torch.all(net[1][0].weight == 2) and torch.all(net[1][1].weight == 3)
    assert not torch.all(net[1][2].weight == 2)  # "default" opts out of the block's choice
    assert torch.all(net[1][3].weight == 1)  # the shared layer: the design's default, not the block's
    assert [k for k, *_ in inits.plan(design)] == ["0", "1.0", "1.1", "1.3"]


# -- seeds and the chapter's own code -------------------------------------------------------------------------


def init_normal(m: nn.Module) -> None:  # the chapter's (d2l 6.3.1), verbatim but for `type(m) is`
    if type(m) is nn.Linear:
        nn.init.normal_(m.weight, mean=0, std=0.01)
        nn.init.zeros_(m.bias)


def init_constant(m: nn.Module) -> None:
    if type(m) is nn.Linear:
        nn.init.constant_(m.weight, 1)
        nn.init.zeros_(m.bias)


def init_xavier(m: nn.Module) -> None:  # leaves the bias as PyTorch set it
    if type(m) is nn.Linear:
        nn.init.xavier_uniform_(m.weight)


def init_42(m: nn.Module) -> None:  # leaves the bias too
    if type(m) is nn.Linear:
        nn.init.constant_(m.weight, 42)


def chapter_my_init(m: nn.Module) -> None:  # d2l 6.3.1.2, without its print
    if type(m) is nn.Linear:
        nn.init.uniform_(m.weight, -10, 10)
        m.weight.data *= m.weight.data.abs() >= 5


def chapter_mlp(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))


def assert_same(ours: nn.Module, truth: nn.Module) -> None:
    for k, v in truth.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v), k


@pytest.mark.parametrize(
    ("spec", "fn"),
    [
        ({"method": "normal"}, init_normal),
        ({"method": "constant", "value": 1}, init_constant),
        ({"method": "xavier_uniform"}, init_xavier),
        ({"method": "constant", "value": 42, "bias": "default"}, init_42),
        ({"method": "my_init"}, chapter_my_init),
    ],
)
def test_set_for_all_layers_equals_the_chapters_net_apply_under_the_same_seed(spec: dict, fn) -> None:
    """Issue 13, defect 2: biases zeroed beside normal and constant, left alone beside Xavier, 42 and my_init."""
    truth = chapter_mlp(5)
    truth.apply(fn)
    ours = build(inits.with_init(mlp(seed=5), None, spec))
    assert_same(ours, truth)


def test_xavier_on_the_first_layer_and_42_on_the_third_as_the_chapter() -> None:
    truth = chapter_mlp(5)
    truth[0].apply(init_xavier)
    truth[2].apply(init_42)
    design = inits.with_init(mlp(seed=5), "layers[0]", {"method": "xavier_uniform"})
    design = inits.with_init(design, "layers[2]", {"method": "constant", "value": 42, "bias": "default"})
    assert_same(build(design), truth)


def test_a_spec_from_json_without_bias_still_zeroes_it_as_format_1_did() -> None:
    truth = chapter_mlp(5)
    truth.apply(init_xavier)
    with torch.no_grad():
        for m in (truth[0], truth[2]):
            m.bias.zero_()
    assert_same(build(mlp(init="xavier_uniform", seed=5)), truth)


def test_for_all_layers_reaches_layers_with_their_own_setting_only_when_asked() -> None:
    """Issue 13, defect 2: a design-wide default does not reach a layer with its own init; `own_inits` says
    which ones, `with_init_everywhere` reaches them, `with_init(path, None)` returns one to the default."""
    own = inits.with_init(mlp(seed=1), "layers[0]", {"method": "xavier_uniform"})
    default_only = inits.with_init(own, None, {"method": "my_init"})
    assert inits.own_inits(default_only) == ["layers[0]"]
    table = {r.path: r for r in inits.init_table(default_only)}
    assert table["layers[0]"].source == "its own" and table["layers[0]"].applied.startswith("xavier_uniform")
    assert table["layers[2]"].source == "the design's default" and table["layers[2]"].applied.startswith("my_init")
    assert table["layers[2]"].own == "" and table["layers[0]"].own == table["layers[0]"].applied

    everywhere = inits.with_init_everywhere(own, {"method": "my_init"})
    assert inits.own_inits(everywhere) == []
    truth = chapter_mlp(1)
    truth.apply(chapter_my_init)
    assert_same(build(everywhere), truth)

    back = inits.with_init(default_only, "layers[0]", None)  # "use the design's default"
    assert back == everywhere
    assert {r.source for r in inits.init_table(mlp())} == {"nothing chosen: PyTorch's default"}


def test_own_inits_and_the_table_see_blocks_and_shared_layers() -> None:
    design = inits.with_init(load_example("nested"), "layers[0].layers[1]", {"method": "zeros"})
    design = inits.with_init(design, "layers[0]", {"method": "normal"})
    assert inits.own_inits(design) == ["layers[0]", "layers[0].layers[1]"]
    rows = {r.path: r for r in inits.init_table(design)}
    assert rows["layers[0].layers[0].layers[0]"].source == "block layers[0]"
    assert rows["layers[0].layers[1]"].source == "its own"
    assert rows["layers[1]"].source == "nothing chosen: PyTorch's default"
    tied = inits.with_init(load_example("tied"), "shared.shared", {"method": "zeros"})
    assert inits.own_inits(tied) == ["shared.shared"]
    assert {r.path: r.source for r in inits.init_table(tied)}["shared.shared"] == "its own"
    assert inits.own_inits(inits.with_init_everywhere(tied, None)) == []


def test_seed_reproducible_and_global_rng_untouched() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = build(mlp(seed=1)), build(mlp(seed=1)), build(mlp(seed=2))
    assert torch.equal(torch.rand(3), expected)
    assert torch.equal(a[0].weight, b[0].weight) and not torch.equal(a[0].weight, c[0].weight)
    assert torch.equal(build(mlp(), seed=1)[0].weight, a[0].weight)  # build's seed and the design's agree


def test_reinitialize_in_place() -> None:
    design = mlp(init="xavier_normal", seed=9)
    net = build(design)
    weight = net[0].weight
    expected = weight.detach().clone()
    with torch.no_grad():
        weight.fill_(7)
    initialize(net, design)
    assert net[0].weight is weight and torch.equal(weight, expected)  # the same Parameter, the same values
    unseeded = mlp(init="xavier_normal")
    before = net[0].weight.detach().clone()
    initialize(net, unseeded)
    assert not torch.equal(net[0].weight, before)


# -- editing a design's initialization ------------------------------------------------------------------------


def test_with_init_and_with_seed() -> None:
    design = load_example("nested")
    paths = [p for p, _ in inits.eligible(design)]
    assert paths == [
        "layers[0].layers[0].layers[0]",
        "layers[0].layers[0].layers[2]",
        "layers[0].layers[1]",
        "layers[1]",
    ]
    changed = inits.with_init(design, "layers[0].layers[1]", {"method": "zeros"})
    assert changed.layers[0].layers[1].init == {"method": "zeros", "bias": "zeros"}
    assert design.layers[0].layers[1].init is None
    assert torch.all(build(changed)[0].linear.weight == 0)
    everything = inits.with_seed(inits.with_init(design, None, {"method": "constant", "value": 0.5}), 3)
    assert everything.init == {"method": "constant", "value": 0.5, "bias": "zeros"} and everything.seed == 3
    assert Design.from_json(everything.to_json()) == everything
    removed = inits.with_init(changed, "layers[0].layers[1]", None)
    assert removed == design
    tied = inits.with_init(load_example("tied"), "shared.shared", {"method": "zeros"})
    assert torch.all(build(tied)[2].weight == 0)
    with pytest.raises(DesignError, match="no weight matrix"):
        inits.with_init(design, "layers[0].layers[0].layers[1]", {"method": "zeros"})
    with pytest.raises(DesignError, match="not a layer's path"):
        inits.with_init(design, "layers[x]", {"method": "zeros"})
    with pytest.raises(DesignError, match="no such layer"):
        inits.with_init(design, "layers[9]", {"method": "zeros"})
    with pytest.raises(DesignError, match="takes its init from the shared definition"):
        inits.with_init(load_example("tied"), "layers[2]", {"method": "zeros"})
    with pytest.raises(DesignError, match="seed"):
        inits.with_seed(design, -3)


def test_describe() -> None:
    assert init_spec.describe(None) == "PyTorch default"
    assert init_spec.describe({"method": "normal", "std": 0.01}) == "normal(std=0.01), bias zeros"
    assert init_spec.describe({"method": "my_init", "bias": "default"}) == "my_init(), bias kept"
