"""Issue 14's layer types held against torch built by hand: recurrent, attention, and the rest.

Tuple-returning layers (RNN, LSTM, GRU, MultiheadAttention) are called from flows; here they are checked
through the registry's own construction and `call`, as the flow interpreter uses them.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
import torch
from torch import nn

from builder import REGISTRY, Design, DesignError, build, dry_run, forms
from builder.registry import call, call_code, check_args, check_input
from builder.reset import reset_like_construction
from builder.schema import json_schema

ISSUE_14 = [
    "AdaptiveAvgPool1d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "GroupNorm",
    "Upsample",
    "TransformerEncoderLayer",
    "TransformerEncoder",
]
ENCODER = {
    "type": "TransformerEncoder",
    "num_layers": 2,
    "enable_nested_tensor": False,
    "encoder_layer": {
        "type": "TransformerEncoderLayer",
        "d_model": 32,
        "nhead": 4,
        "dim_feedforward": 64,
        "batch_first": True,
    },
}


def design(layer: dict, shape: list[int], name: str | None = None) -> Design:
    return Design.from_dict({"format": 1, "input": {"shape": shape}, "layers": [{**layer, "name": name or "m"}]})


def registry_module(kind: str, device: str = "meta", **given) -> nn.Module:
    """A layer as build makes it: constructed from the registry (on meta), then storage and torch's init."""
    lt = REGISTRY[kind]
    with torch.device(device):
        return lt.module(**check_args(lt, given, kind))


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].shape == sb[key].shape, key
        assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize(
    ("kind", "given", "shape"),
    [
        ("AdaptiveAvgPool1d", {"output_size": 4}, [2, 3, 16]),
        ("AdaptiveMaxPool1d", {"output_size": 5}, [2, 3, 16]),
        ("AdaptiveMaxPool2d", {"output_size": [2, 3]}, [2, 3, 8, 8]),
        ("Dropout1d", {"p": 0.2}, [2, 3, 16]),
        ("Dropout2d", {}, [2, 3, 8, 8]),
        ("Dropout3d", {"p": 0.1}, [2, 3, 4, 4, 4]),
        ("GroupNorm", {"num_groups": 3, "num_channels": 6, "affine": False}, [2, 6, 5]),
        ("GroupNorm", {"num_groups": 2, "num_channels": 8, "bias": False, "eps": 1e-3}, [2, 8, 4, 4]),
        ("Upsample", {"scale_factor": 2, "mode": "bilinear", "align_corners": True}, [2, 3, 4, 5]),
        ("Upsample", {"size": [7, 9]}, [2, 3, 4, 5]),
        ("Upsample", {"scale_factor": [2, 3], "mode": "nearest-exact"}, [2, 3, 4, 5]),
        ("Upsample", {"size": 10, "mode": "linear"}, [2, 3, 4]),
        ("TransformerEncoderLayer", {"d_model": 16, "nhead": 2}, [3, 5, 16]),
        (
            "TransformerEncoderLayer",
            {
                "d_model": 16,
                "nhead": 4,
                "dim_feedforward": 24,
                "dropout": 0.0,
                "activation": "gelu",
                "layer_norm_eps": 1e-6,
                "batch_first": True,
                "norm_first": True,
                "bias": False,
            },
            [3, 5, 16],
        ),
        (
            "TransformerEncoder",
            {
                "encoder_layer": {"type": "TransformerEncoderLayer", "d_model": 16, "nhead": 2, "batch_first": True},
                "num_layers": 3,
                "norm": {"type": "LayerNorm", "normalized_shape": 16},
                "mask_check": False,
            },
            [3, 5, 16],
        ),
    ],
)
def test_seeded_build_equals_the_torch_class_under_the_same_seed(kind, given, shape) -> None:
    """Same keys, same weights under torch.manual_seed (the encoder's layers start as copies of one, as torch
    makes them), strict loads both ways and the same outputs in eval mode."""
    d = design({"type": kind, **given}, shape)
    net = build(d, seed=7)
    torch.manual_seed(7)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}
    if kind == "TransformerEncoder":
        layer = nn.TransformerEncoderLayer(**{k: v for k, v in given["encoder_layer"].items() if k != "type"})
        norm = nn.LayerNorm(16)
        kwargs.update(encoder_layer=layer, norm=norm)
    theirs = nn.Sequential()
    theirs.add_module("m", getattr(nn, kind)(**kwargs))
    assert_same_state(net, theirs)
    net.load_state_dict(theirs.state_dict(), strict=True)
    theirs.load_state_dict(net.state_dict(), strict=True)
    net.eval(), theirs.eval()
    x = torch.randn(shape)
    with torch.no_grad():
        torch.testing.assert_close(net(x), theirs(x))
        assert tuple(net(x).shape) == dry_run(d).output_shape


def test_transformer_encoder_keys_are_torchs() -> None:
    net = build(design(ENCODER, [2, 16, 32], "encoder"))
    keys = list(net.state_dict())
    assert keys[0] == "encoder.layers.0.self_attn.in_proj_weight"
    assert "encoder.layers.1.norm2.bias" in keys and len(keys) == 24
    assert type(net.encoder) is nn.TransformerEncoder and not net.encoder.use_nested_tensor


RECURRENT = [
    ("RNN", {"input_size": 6, "hidden_size": 5}),
    ("RNN", {"input_size": 6, "hidden_size": 5, "nonlinearity": "relu", "num_layers": 2, "bias": False}),
    ("GRU", {"input_size": 6, "hidden_size": 5, "batch_first": True, "bidirectional": True}),
    ("GRU", {"input_size": 6, "hidden_size": 5, "num_layers": 3, "dropout": 0.5}),
    ("LSTM", {"input_size": 6, "hidden_size": 5, "batch_first": True}),
    ("LSTM", {"input_size": 6, "hidden_size": 5, "num_layers": 2, "bidirectional": True, "proj_size": 3}),
]


@pytest.mark.parametrize(("kind", "given"), RECURRENT)
def test_recurrent_layers_are_torchs(kind, given) -> None:
    """Keys (weight_ih_l0, ..._reverse, weight_hr_l0), init under a seed and every output `call` can take."""
    net = registry_module(kind, **given)
    net.to_empty(device="cpu")
    torch.manual_seed(3)
    reset_like_construction(net)
    torch.manual_seed(3)
    theirs = getattr(nn, kind)(**given)
    assert_same_state(net, theirs)
    assert "weight_ih_l0" in net.state_dict()
    if given.get("bidirectional"):
        assert "weight_hh_l0_reverse" in net.state_dict()
    net.eval(), theirs.eval()
    x = torch.randn(4, 7, 6)
    lt = REGISTRY[kind]
    out, state = theirs(x)
    torch.testing.assert_close(call(lt, net, x), out)
    torch.testing.assert_close(call(lt, net, x, "output"), out)
    if kind == "LSTM":
        torch.testing.assert_close(call(lt, net, x, "h"), state[0])
        torch.testing.assert_close(call(lt, net, x, "c"), state[1])
        with pytest.raises(ValueError, match="LSTM has no output 'state'"):  # a flow's value is one tensor
            call(lt, net, x, "state")
    else:
        torch.testing.assert_close(call(lt, net, x, "state"), state)
        torch.testing.assert_close(call(lt, net, x, "h"), state)
        with pytest.raises(ValueError, match=f"{kind} has no output 'c'"):
            call(lt, net, x, "c")


@pytest.mark.parametrize(
    "given",
    [
        {"embed_dim": 16, "num_heads": 4},
        {"embed_dim": 16, "num_heads": 2, "batch_first": True, "bias": False},
        {"embed_dim": 16, "num_heads": 2, "add_bias_kv": True, "add_zero_attn": True, "kdim": 16, "vdim": 16},
    ],
)
def test_multihead_attention_is_self_attention_as_by_hand(given) -> None:
    net = registry_module("MultiheadAttention", **given)
    net.to_empty(device="cpu")
    torch.manual_seed(4)
    reset_like_construction(net)  # out_proj first, then in_proj: construction's order
    torch.manual_seed(4)
    theirs = nn.MultiheadAttention(**given)
    assert_same_state(net, theirs)
    assert "in_proj_weight" in net.state_dict() and "out_proj.weight" in net.state_dict()
    net.eval(), theirs.eval()
    x = torch.randn(5, 3, 16)
    lt = REGISTRY["MultiheadAttention"]
    out, weights = theirs(x, x, x)
    torch.testing.assert_close(call(lt, net, x), out)
    torch.testing.assert_close(call(lt, net, x, "weights"), weights)


def test_call_code_is_what_call_runs() -> None:
    assert call_code(REGISTRY["LSTM"], "self.rnn", "X") == "self.rnn(X)[0]"
    assert call_code(REGISTRY["LSTM"], "self.rnn", "X", "c") == "self.rnn(X)[1][1]"
    assert call_code(REGISTRY["GRU"], "self.rnn", "X", "state") == "self.rnn(X)[1]"
    assert call_code(REGISTRY["MultiheadAttention"], "self.attn", "Y") == "self.attn(Y, Y, Y)[0]"
    assert call_code(REGISTRY["TransformerEncoderLayer"], "self.enc", "X") == "self.enc(X)"
    with pytest.raises(ValueError, match="LSTM has no output 'weights' \\(its outputs: output, h, c\\)"):
        call_code(REGISTRY["LSTM"], "self.rnn", "X", "weights")


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU", "MultiheadAttention"])
def test_a_tuple_returning_layer_in_a_sequential_is_refused_by_name(kind) -> None:
    lt = REGISTRY[kind]
    given = {a.name: a.example for a in lt.args if a.required}
    with pytest.raises(DesignError) as info:
        dry_run(design({"type": kind, **given}, [2, 5, 32]))
    assert f"layers[0] {kind}: returns a tuple" in str(info.value) and "flow" in str(info.value)
    assert info.value.path == "layers[0]"


@pytest.mark.parametrize(
    ("kind", "given", "shape", "message"),
    [
        ("LSTM", {"input_size": 32, "hidden_size": 8}, (2, 32), "expects a 3-D input (sequence, batch, features)"),
        (
            "GRU",
            {"input_size": 32, "hidden_size": 8, "batch_first": True},
            (2, 32),
            "expects a 3-D input (batch, sequence, features), gets shape (2, 32)",
        ),
        ("RNN", {"input_size": 32, "hidden_size": 8}, (2, 5, 16), "expects 32 input features (input_size), gets 16"),
        ("MultiheadAttention", {"embed_dim": 8, "num_heads": 2}, (2, 5, 6), "expects 8 input features (embed_dim)"),
        ("TransformerEncoderLayer", {"d_model": 8, "nhead": 2}, (2, 5), "expects a 3-D input"),
        ("GroupNorm", {"num_groups": 2, "num_channels": 8}, (2, 6, 4), "expects 8 channels, gets 6"),
    ],
)
def test_check_input_explains_sequence_mismatches(kind, given, shape, message) -> None:
    lt = REGISTRY[kind]
    problem = check_input(lt, check_args(lt, given, kind), shape)
    assert problem is not None and message in problem


@pytest.mark.parametrize(
    ("layer", "shape", "message"),
    [
        (
            {"type": "TransformerEncoderLayer", "d_model": 32, "nhead": 4, "batch_first": True},
            [2, 32],
            "layers[0] TransformerEncoderLayer: expects a 3-D input (batch, sequence, features), gets shape (2, 32)",
        ),
        (ENCODER, [2, 16, 24], "layers[0] TransformerEncoder: expects 32 input features (d_model), gets 24"),
        (ENCODER, [2, 16], "layers[0] TransformerEncoder: expects a 3-D input (batch, sequence, features)"),
        ({"type": "Upsample"}, [1, 2, 3], "layers[0] Upsample: cannot take an input of shape (1, 2, 3)"),
        ({"type": "Upsample", "scale_factor": 2}, [2, 3], "layers[0] Upsample: expects a 3-D or 4-D or 5-D input"),
        (
            {"type": "Upsample", "scale_factor": 2, "align_corners": True},
            [2, 3, 4],
            "layers[0] Upsample: cannot take",
        ),
        ({"type": "AdaptiveMaxPool2d", "output_size": 2}, [2, 8], "expects a 3-D or 4-D input, gets shape (2, 8)"),
        ({"type": "Dropout3d"}, [2, 3, 4], "layers[0] Dropout3d: expects a 4-D or 5-D input"),
    ],
)
def test_bad_inputs_name_the_layer_before_anything_is_allocated(layer, shape, message) -> None:
    d = Design.from_dict({"format": 1, "input": {"shape": shape}, "layers": [layer]})
    for run in (dry_run, build):
        with pytest.raises(DesignError) as info:
            run(d)
        assert message in str(info.value)
        assert info.value.path == "layers[0]"


@pytest.mark.parametrize(
    ("layer", "path", "message"),
    [
        (
            {"type": "TransformerEncoderLayer", "d_model": 30, "nhead": 4},
            "layers[0].nhead",
            "d_model (30) must be divisible by nhead (4)",
        ),
        (
            {"type": "MultiheadAttention", "embed_dim": 32, "num_heads": 5},
            "layers[0].num_heads",
            "embed_dim (32) must be divisible by num_heads (5)",
        ),
        (
            {"type": "MultiheadAttention", "embed_dim": 32, "num_heads": 4, "kdim": 16},
            "layers[0].kdim",
            "kdim must be null or embed_dim (32)",
        ),
        (
            {"type": "LSTM", "input_size": 4, "hidden_size": 8, "proj_size": 8},
            "layers[0].proj_size",
            "proj_size (8) must be smaller than hidden_size (8)",
        ),
        ({"type": "GRU", "input_size": 4, "hidden_size": 8, "proj_size": 2}, "layers[0].proj_size", "no argument"),
        ({"type": "RNN", "input_size": 4, "hidden_size": 8, "nonlinearity": "gelu"}, "layers[0].nonlinearity", ""),
        ({"type": "LSTM", "input_size": 4, "hidden_size": 8, "dropout": 1.5}, "layers[0].dropout", "at most 1"),
        (
            {"type": "GroupNorm", "num_groups": 3, "num_channels": 8},
            "layers[0].num_groups",
            "num_channels (8) must be divisible by num_groups (3)",
        ),
        ({"type": "Upsample", "scale_factor": [2, "x"]}, "layers[0].scale_factor", "[1]: must be a number, got 'x'"),
        (
            {**ENCODER, "encoder_layer": {"type": "Linear", "in_features": 2, "out_features": 2}},
            "layers[0].encoder_layer",
            "must be a TransformerEncoderLayer, got type 'Linear'",
        ),
        (
            {**ENCODER, "encoder_layer": {"type": "TransformerEncoderLayer", "d_model": 32}},
            "layers[0].encoder_layer",
            "TransformerEncoderLayer needs 'nhead'",
        ),
        (
            {**ENCODER, "encoder_layer": {**ENCODER["encoder_layer"], "name": "x"}},
            "layers[0].encoder_layer",
            "has no argument 'name'",
        ),
        ({**ENCODER, "encoder_layer": 3}, "layers[0].encoder_layer", "must be a layer like"),
        ({**ENCODER, "norm": {"type": "Dropout"}}, "layers[0].norm", "must be a LayerNorm"),
    ],
)
def test_bad_arguments_are_refused_when_reading(layer, path, message) -> None:
    doc = {"format": 1, "input": {"shape": [2, 5, 32]}, "layers": [layer]}
    with pytest.raises(DesignError) as info:
        Design.from_dict(doc)
    assert message in str(info.value) and info.value.path == path
    # the schema cannot compare arguments with each other (divisible, smaller than); the rest it refuses too
    if not any(word in message for word in ("divisible", "smaller than", "must be null or embed_dim")):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, json_schema())


def test_nested_layers_read_back_and_pass_the_schema() -> None:
    layer = {**ENCODER, "norm": {"type": "LayerNorm", "normalized_shape": [32], "eps": 1e-6}}
    doc = {"format": 1, "input": {"shape": [2, 16, 32]}, "layers": [layer]}
    jsonschema.validate(doc, json_schema())
    d = Design.from_dict(doc)
    assert Design.from_json(d.to_json()) == d
    assert json.loads(d.to_json())["layers"][0]["norm"] == {"type": "LayerNorm", "normalized_shape": [32], "eps": 1e-6}
    assert list(build(d).state_dict())[-2:] == ["0.norm.weight", "0.norm.bias"]


# -- editors' forms ------------------------------------------------------------------------------------------


def test_new_sequence_layers_start_from_the_size_arriving_there() -> None:
    """torch has no Lazy LSTM / GroupNorm / Transformer layer: the Designer pre-fills their input size from the
    shape the dry run found, and starts them batch-first as Blockwork's inputs are (batch, ...)."""
    lstm = forms.new_values("LSTM", (2, 35, 32))
    assert lstm["input_size"] == 32 and lstm["batch_first"] is True and lstm["hidden_size"] == 64
    assert forms.make_layer("LSTM", lstm).args == {"input_size": 32, "hidden_size": 64, "batch_first": True}
    assert forms.new_values("MultiheadAttention", (2, 5, 24))["embed_dim"] == 24
    attention = forms.new_values("MultiheadAttention", (2, 5, 10))  # 4 heads cannot split 10 features: 2 can
    assert (attention["embed_dim"], attention["num_heads"]) == (10, 2)
    assert forms.new_values("GroupNorm", (2, 9, 4))["num_groups"] == 1
    assert forms.new_values("GroupNorm", (2, 6, 4, 4))["num_channels"] == 6
    encoder = forms.new_values("TransformerEncoder", (2, 16, 48))["encoder_layer"]
    assert encoder == {"type": "TransformerEncoderLayer", "d_model": 48, "nhead": 4, "batch_first": True}
    assert forms.new_values("LSTM")["input_size"] == 32  # no shape known: the registry's example
    layer = forms.make_layer("Upsample", forms.new_values("Upsample"))  # starts with a scale_factor torch needs
    assert layer.args == {"scale_factor": 2.0}
    assert dry_run(
        Design.from_dict(
            {"format": 1, "input": {"shape": [1, 1, 3, 3]}, "layers": [{"type": "Upsample", **layer.args}]}
        )
    ).output_shape == (1, 1, 6, 6)


def test_nested_layers_and_scale_factors_as_typed() -> None:
    nested = REGISTRY["TransformerEncoder"].arg_index["encoder_layer"]
    spec = {"type": "TransformerEncoderLayer", "d_model": 32, "nhead": 4, "batch_first": True}
    assert forms.parse_value(nested, forms.format_value(spec)) == spec
    with pytest.raises(DesignError, match='encoder_layer: type a layer as JSON, like {"type"'):
        forms.parse_value(nested, "{d_model: 32}")
    scale = REGISTRY["Upsample"].arg_index["scale_factor"]
    assert forms.parse_value(scale, "1.5, 2") == [1.5, 2.0] and forms.parse_value(scale, "2") == 2.0
    with pytest.raises(DesignError, match="scale_factor: type a number or a list like 2, 1.5"):
        forms.parse_value(scale, "big")
    with pytest.raises(DesignError, match="must be a TransformerEncoderLayer"):
        forms.make_layer("TransformerEncoder", {"encoder_layer": {"type": "Linear"}, "num_layers": 2})
