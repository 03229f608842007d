"""build() and dry_run(): every layer type, shape errors named by layer, budgets refused on meta."""

from __future__ import annotations

import resource
import time
import tracemalloc

import pytest
import torch
from torch import nn

from builder import REGISTRY, Design, DesignError, build, dry_run, example_input, load_example
from builder.layers import CenteredLayer, MyLinear

# For each type: an input shape that fits its registry example arguments.
INPUTS = {
    "Linear": (2, 20),
    "LazyLinear": (2, 20),
    "MyLinear": (2, 20),
    "CenteredLayer": (2, 5),
    "Identity": (2, 5),
    "Conv1d": (2, 1, 16),
    "LazyConv1d": (2, 3, 16),
    "Conv2d": (2, 1, 8, 8),
    "LazyConv2d": (2, 3, 8, 8),
    "ConvTranspose2d": (2, 1, 8, 8),
    "LazyConvTranspose2d": (2, 3, 8, 8),
    "MaxPool1d": (2, 3, 16),
    "AvgPool1d": (2, 3, 16),
    "MaxPool2d": (2, 3, 8, 8),
    "AvgPool2d": (2, 3, 8, 8),
    "AdaptiveAvgPool2d": (2, 3, 8, 8),
    "BatchNorm1d": (4, 8),
    "LazyBatchNorm1d": (4, 6),
    "BatchNorm2d": (4, 8, 5, 5),
    "LazyBatchNorm2d": (4, 6, 5, 5),
    "LayerNorm": (2, 8),
    "Dropout": (2, 5),
    "Flatten": (2, 3, 4),
    "Unflatten": (2, 784),
    "Embedding": (2, 7),
    "ReLU": (2, 5),
    "LeakyReLU": (2, 5),
    "GELU": (2, 5),
    "SiLU": (2, 5),
    "Sigmoid": (2, 5),
    "Tanh": (2, 5),
    "Softmax": (2, 5),
    "LogSoftmax": (2, 5),
    # issue 14
    "AdaptiveAvgPool1d": (2, 3, 16),
    "AdaptiveMaxPool1d": (2, 3, 16),
    "AdaptiveMaxPool2d": (2, 3, 8, 8),
    "Dropout1d": (2, 3, 16),
    "Dropout2d": (2, 3, 8, 8),
    "Dropout3d": (2, 3, 4, 4, 4),
    "GroupNorm": (2, 8, 5, 5),
    "Upsample": (2, 3, 4, 4),
    "RNN": (3, 5, 32),
    "LSTM": (3, 5, 32),
    "GRU": (3, 5, 32),
    "MultiheadAttention": (3, 5, 32),
    "TransformerEncoderLayer": (3, 5, 32),
    "TransformerEncoder": (3, 5, 32),
}
# Arguments beyond the required ones' examples, where those alone do not make a working layer.
EXTRA = {"Upsample": {"scale_factor": 2}}


def one_layer(kind: str, **args) -> Design:
    lt = REGISTRY[kind]
    spec = {a.name: a.example for a in lt.args if a.required}
    spec.update(EXTRA.get(kind, {}))
    spec.update(args)
    return Design.from_dict(
        {
            "format": 1,
            "input": {"shape": list(INPUTS[kind]), "dtype": "int64" if kind == "Embedding" else "float32"},
            "layers": [{"type": kind, **spec}],
        }
    )


def test_every_type_has_an_input_here() -> None:
    assert set(INPUTS) == set(REGISTRY)


def test_the_issue_asks_for_these_types() -> None:
    asked = [
        "Linear",
        "Conv1d",
        "Conv2d",
        "ConvTranspose2d",
        "MaxPool1d",
        "MaxPool2d",
        "AvgPool1d",
        "AvgPool2d",
        "AdaptiveAvgPool2d",
        "BatchNorm1d",
        "BatchNorm2d",
        "LayerNorm",
        "Dropout",
        "Flatten",
        "Unflatten",
        "Embedding",
        "Identity",
        "ReLU",
        "LeakyReLU",
        "GELU",
        "SiLU",
        "Sigmoid",
        "Tanh",
        "Softmax",
        "LogSoftmax",
        "MyLinear",
        "CenteredLayer",
    ]
    lazy = [name for name in dir(nn) if name.startswith("Lazy") and name.removeprefix("Lazy") in asked]
    assert set(asked) | set(lazy) <= set(REGISTRY)
    assert sorted(lazy) == [
        "LazyBatchNorm1d",
        "LazyBatchNorm2d",
        "LazyConv1d",
        "LazyConv2d",
        "LazyConvTranspose2d",
        "LazyLinear",
    ]


def test_the_issue_14_types_and_their_lazy_twins() -> None:
    asked = [
        "RNN",
        "LSTM",
        "GRU",
        "MultiheadAttention",
        "TransformerEncoderLayer",
        "TransformerEncoder",
        "Dropout1d",
        "Dropout2d",
        "Dropout3d",
        "AdaptiveAvgPool1d",
        "AdaptiveMaxPool1d",
        "AdaptiveMaxPool2d",
        "GroupNorm",
        "Upsample",
    ]
    assert set(asked) <= set(REGISTRY)
    # torch 2.13 has no Lazy* twin of any of them; if a later torch adds one, the registry should follow
    assert [name for name in dir(nn) if name.startswith("Lazy") and name.removeprefix("Lazy") in asked] == []


def by_hand(kind: str, **kwargs) -> nn.Module:
    """The torch module a layer of `kind` is, constructed as a person would (nested layers as modules)."""
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    for key, value in kwargs.items():
        if isinstance(value, dict):
            kwargs[key] = by_hand(value["type"], **{k: v for k, v in value.items() if k != "type"})
    cls = {"MyLinear": MyLinear, "CenteredLayer": CenteredLayer}.get(kind) or getattr(nn, kind)
    return cls(**kwargs)


@pytest.mark.parametrize("kind", sorted(k for k, lt in REGISTRY.items() if not lt.returns_tuple))
def test_each_type_builds_like_the_torch_class(kind: str) -> None:
    design = one_layer(kind)
    x = example_input(design)
    net = build(design, seed=0)
    lt = REGISTRY[kind]
    kwargs = {a.name: a.example for a in lt.args if a.required} | EXTRA.get(kind, {})
    torch.manual_seed(0)
    theirs = nn.Sequential(by_hand(kind, **kwargs))
    with torch.no_grad():
        expected = theirs(x)
    assert list(net.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert net.state_dict()[key].shape == value.shape, key
    net.load_state_dict(theirs.state_dict())
    net.eval(), theirs.eval()
    with torch.no_grad():
        assert net(x).shape == expected.shape == dry_run(design).output_shape
        if kind != "Dropout":
            torch.testing.assert_close(net(x), theirs(x))


@pytest.mark.parametrize(
    ("kind", "args", "shape", "message"),
    [
        (
            "Linear",
            {"in_features": 20, "out_features": 256},
            (2, 30),
            "layers[0] Linear: expects 20 input features, gets 30",
        ),
        (
            "Conv2d",
            {"in_channels": 3, "out_channels": 8, "kernel_size": 3},
            (2, 1, 8, 8),
            "layers[0] Conv2d: expects 3 input channels, gets 1",
        ),
        (
            "Conv2d",
            {"in_channels": 3, "out_channels": 8, "kernel_size": 3},
            (2, 20),
            "layers[0] Conv2d: expects a 3-D or 4-D input, gets shape (2, 20)",
        ),
        ("BatchNorm1d", {"num_features": 4}, (2, 5), "layers[0] BatchNorm1d: expects 4 features (channels), gets 5"),
        ("MyLinear", {"in_units": 64, "units": 8}, (2, 20), "layers[0] MyLinear: expects 64 input features, gets 20"),
        (
            "Conv2d",
            {"in_channels": 1, "out_channels": 8, "kernel_size": 9},
            (2, 1, 4, 4),
            "layers[0] Conv2d: cannot take an input of shape (2, 1, 4, 4)",
        ),
        ("MaxPool2d", {"kernel_size": 4, "padding": 3}, (2, 1, 8, 8), "layers[0] MaxPool2d: cannot take"),
        ("Unflatten", {"dim": 1, "unflattened_size": [3, 3]}, (2, 10), "layers[0] Unflatten: cannot take"),
        ("LayerNorm", {"normalized_shape": [4]}, (2, 5), "layers[0] LayerNorm: cannot take"),
    ],
)
def test_inputs_that_do_not_fit_name_the_layer(kind, args, shape, message) -> None:
    design = Design.from_dict({"format": 1, "input": {"shape": list(shape)}, "layers": [{"type": kind, **args}]})
    for run in (dry_run, build):
        with pytest.raises(DesignError) as info:
            run(design)
        assert message in str(info.value)
        assert info.value.path == "layers[0]"


def test_mismatch_deep_in_a_block_points_at_that_layer() -> None:
    d = load_example("nested").to_dict()
    d["layers"][0]["layers"][0]["layers"][2] = {"type": "Linear", "in_features": 10, "out_features": 32}
    with pytest.raises(DesignError) as info:
        dry_run(Design.from_dict(d))
    assert info.value.path == "layers[0].layers[0].layers[2]"
    assert "expects 10 input features, gets 64" in str(info.value)


def test_second_use_of_a_shared_layer_that_no_longer_fits() -> None:
    d = load_example("tied").to_dict()
    d["layers"][3] = {"type": "Linear", "in_features": 8, "out_features": 5}
    with pytest.raises(DesignError) as info:
        build(Design.from_dict(d))
    assert info.value.path == "layers[4]"
    assert "(shared 'shared')" in str(info.value) and "expects 8 input features, gets 5" in str(info.value)


def test_inconsistent_arguments_are_caught_when_constructing() -> None:
    design = Design.from_dict(
        {
            "format": 1,
            "input": {"shape": [1, 4, 8, 8]},
            "layers": [{"type": "Conv2d", "in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 4}],
        }
    )
    with pytest.raises(DesignError, match=r"layers\[0\] Conv2d: out_channels must be divisible by groups"):
        build(design)


def test_embedding_needs_integer_input() -> None:
    design = Design.from_dict(
        {
            "format": 1,
            "input": {"shape": [2, 7]},
            "layers": [{"type": "Embedding", "num_embeddings": 10, "embedding_dim": 3}],
        }
    )
    with pytest.raises(DesignError, match="int64"):
        dry_run(design)


def test_dry_run_records_shapes_and_inferred_sizes() -> None:
    run = dry_run(load_example("nested"))
    by_key = run.by_key()
    assert by_key["0"].type == "Sequential" and by_key["0"].output_shape == (2, 16)
    assert by_key["0.net.0"].inferred == {"in_features": 20} and by_key["0.net.0"].lazy
    assert by_key["0.net.2"].inferred == {"in_features": 64}
    assert by_key["1"].output_shape == (2, 20)
    assert [r.key for r in run.layers] == ["0", "0.net", "0.net.0", "0.net.1", "0.net.2", "0.net.3", "0.linear", "1"]
    tied = dry_run(load_example("tied"))
    assert (tied.parameters, tied.parameters_per_use) == (121, 193)
    assert tied.by_key()["4"].shared == "shared"


def test_shared_block_inside_a_nested_block() -> None:
    design = Design.from_dict(
        {
            "format": 1,
            "input": {"shape": [2, 6]},
            "shared": {
                "pair": {
                    "type": "Sequential",
                    "layers": [{"type": "Linear", "in_features": 6, "out_features": 6}, {"type": "Tanh"}],
                }
            },
            "layers": [
                {"type": "Sequential", "name": "body", "layers": [{"shared": "pair"}, {"shared": "pair"}]},
                {"shared": "pair", "name": "last"},
            ],
        }
    )
    net = build(design, seed=0)
    assert net.body[0] is net.body[1] is net.last
    assert list(net.state_dict()) == [
        "body.0.0.weight",
        "body.0.0.bias",
        "body.1.0.weight",
        "body.1.0.bias",
        "last.0.weight",
        "last.0.bias",
    ]
    pair = nn.Sequential(nn.Linear(6, 6), nn.Tanh())
    pair.load_state_dict(net.last.state_dict())
    x = torch.randn(2, 6)
    torch.testing.assert_close(net(x), pair(pair(pair(x))))
    run = dry_run(design)
    assert [r.key for r in run.layers if r.shared == "pair"] == [
        "body.0",
        "body.0.0",
        "body.0.1",
        "body.1",
        "body.1.0",
        "body.1.1",
        "last",
        "last.0",
        "last.1",
    ]


def test_batchnorm_running_stats_are_fresh_after_build() -> None:
    # the meta dry run must not leave BatchNorm statistics behind (a hand-written dry run would)
    design = one_layer("LazyBatchNorm2d")
    for _ in range(2):  # the first build dry-runs on meta, the second on the CPU
        bn = build(design)[0]
        assert bn.num_features == 6
        assert torch.equal(bn.running_mean, torch.zeros(6)) and torch.equal(bn.running_var, torch.ones(6))
        assert bn.num_batches_tracked == 0


def huge(n: int = 10**6) -> Design:
    return Design.from_dict(
        {
            "format": 1,
            "input": {"shape": [1, n]},
            "layers": [
                {"type": "Linear", "in_features": n, "out_features": n},
                {"type": "ReLU"},
                {"type": "Linear", "in_features": n, "out_features": 10},
            ],
        }
    )


def test_a_trillion_parameter_design_is_refused_fast_without_memory() -> None:
    design = huge()
    dry_run(load_example("tied"))  # warm up torch's meta kernels
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(DesignError) as info:
        build(design)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert elapsed < 0.5, elapsed
    assert peak < 5 * 2**20, peak  # Python-side allocations
    assert rss_after - rss_before < 50 * 1024, (rss_before, rss_after)  # peak RSS in KiB: no 4 TB of floats
    message = str(info.value)
    assert "1,000,011,000,010 parameters" in message and "budget of 150,000,000" in message
    assert "Largest layers: layers[0] Linear: 1,000,001,000,000; layers[2] Linear: 10,000,010" in message
    assert "ReLU" not in message  # layers without parameters are not named


def test_instantiate_refuses_the_same_design_on_meta_naming_its_largest_layers() -> None:
    from builder.lazy import instantiate

    with pytest.raises(DesignError) as info:
        instantiate(huge())  # the network before its dry run (builder.lazy): the budget is checked there too
    message = str(info.value)
    assert "1,000,011,000,010 parameters" in message and "before any memory is allocated" in message
    assert "Largest layers: layers[0] Linear: 1,000,001,000,000; layers[2] Linear: 10,000,010" in message


def test_budget_counts_lazy_sizes_after_inference(monkeypatch) -> None:
    monkeypatch.setenv("BLOCKWORK_MAX_PARAMS", "5000")
    with pytest.raises(DesignError, match="after torch inferred the lazy sizes.*layers\\[0\\] LazyLinear: 5,376"):
        dry_run(load_example("lazy_mlp"))
    monkeypatch.setenv("BLOCKWORK_MAX_PARAMS", "8000")
    assert dry_run(load_example("lazy_mlp")).parameters == 7946


def test_shared_layer_counts_once_against_the_budget(monkeypatch) -> None:
    monkeypatch.setenv("BLOCKWORK_MAX_PARAMS", "150")  # 121 unique, 193 per use
    assert sum(p.numel() for p in build(load_example("tied")).parameters()) == 121
    monkeypatch.setenv("BLOCKWORK_MAX_PARAMS", "120")
    with pytest.raises(DesignError, match="121 parameters"):
        build(load_example("tied"))


def test_activation_limit() -> None:
    design = Design.from_dict(
        {
            "format": 1,
            "input": {"shape": [8, 3, 512, 512]},
            "layers": [{"type": "Conv2d", "in_channels": 3, "out_channels": 256, "kernel_size": 3, "padding": 1}],
        }
    )
    with pytest.raises(DesignError, match=r"layers\[0\] Conv2d: its output \(8, 256, 512, 512\) has 536,870,912"):
        dry_run(design)


def test_build_leaves_the_global_rng_alone_when_seeded() -> None:
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    build(load_example("lenet"), seed=11)
    torch.testing.assert_close(torch.rand(3), expected)


def test_build_rejects_non_designs() -> None:
    with pytest.raises(TypeError, match="expects a Design"):
        build({"layers": []})  # type: ignore[arg-type]


def test_dry_runs_are_cached_by_design_and_limits(monkeypatch) -> None:
    design = load_example("lenet")
    assert dry_run(design) is dry_run(Design.from_json(design.to_json()))
    monkeypatch.setenv("BLOCKWORK_MAX_ACTIVATION", "1000")  # a limit change is a different question
    with pytest.raises(DesignError, match="BLOCKWORK_MAX_ACTIVATION"):
        dry_run(design)


def test_first_and_later_builds_of_a_design_agree() -> None:
    """The first build dry-runs on meta; later ones (sizes known) materialize on the device: same network."""
    from builder.build import _RUNS

    design = Design.from_dict(
        {
            **load_example("vgg_block").to_dict(),
            "name": "agree",
            "seed": 5,
            "shared": {"s": {"type": "LazyLinear", "out_features": 10}},
            "layers": [*load_example("vgg_block").to_dict()["layers"], {"shared": "s"}],
        }
    )
    _RUNS.clear()
    torch.manual_seed(1)
    first = build(design)
    after_first = torch.rand(2)
    torch.manual_seed(1)
    later = build(design)  # the dry run is cached now
    assert torch.equal(torch.rand(2), after_first)  # neither path touches the caller's RNG under a seed
    assert [type(m) for m in first.modules()] == [type(m) for m in later.modules()]
    for (k, a), b in zip(first.state_dict().items(), later.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
