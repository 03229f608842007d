"""The layer types a design may use, as data: one entry per type.

Type names are torch.nn class names and argument names are their constructor's, so `{"type": "Linear",
"in_features": 20, "out_features": 256}` means `nn.Linear(in_features=20, out_features=256)`. Each argument
records its kind, range and torch's default; `check_args` validates a layer's arguments from this table
alone, and `check_input` explains a shape mismatch in the layer's own terms before torch does.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .layers import CenteredLayer, MyLinear

REQUIRED: Any = object()  # marks an argument without a default

# Kinds of argument value, as JSON carries them:
#   int, float, bool         plain values (bool is never accepted as an int)
#   int1 / int2              an int, or a list of 1 / 2 ints (kernel_size=3 or [3, 5])
#   padding1 / padding2      int1 / int2, or "same" / "valid" (convolutions)
#   ints                     an int or a list of ints (LayerNorm's normalized_shape)
#   floats                   a number or a list of numbers (Upsample's scale_factor)
#   choice                   one of `choices`
#   layer                    a nested layer, {"type": <one of `layer_types`>, <its arguments>...}, that the
#                            constructor takes as a module (TransformerEncoder's encoder_layer and norm)
# Any kind may be `optional` (null allowed), e.g. a pool's stride, whose default None means kernel_size.
KINDS = ("int", "float", "bool", "int1", "int2", "padding1", "padding2", "ints", "floats", "choice", "layer")

SIZE_MAX = 2**31 - 1  # keeps products of sizes far from int64 overflow; budgets refuse big designs anyway


@dataclass(frozen=True)
class Arg:
    name: str
    kind: str
    default: Any = REQUIRED
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False  # null is a valid value
    example: Any = None  # what an editor pre-fills (a required argument, or an optional one torch needs given)
    help: str = ""
    layer_types: tuple[str, ...] = ()  # kind "layer": the registry types the nested layer may be
    divides: str | None = None  # the argument this one must divide (num_heads divides embed_dim)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class LayerType:
    name: str
    module: Callable[..., nn.Module]
    category: str
    args: tuple[Arg, ...] = ()
    doc: str = ""
    # Lazy types: the argument torch infers from the first input (e.g. LazyLinear -> "in_features").
    infers: str | None = None
    # The eager type a lazy one stands for (LazyLinear -> Linear), and back.
    eager: str | None = None
    lazy: str | None = None
    # How the input must look: accepted ranks, and which axis must equal which argument.
    ranks: tuple[int, ...] = ()
    feature_axis: int | None = None
    feature_arg: str | None = None
    # Short form for diagrams: a format string over the arguments, e.g. "{in_features} → {out_features}".
    brief: str = ""
    # Layers whose forward returns a tuple (RNN: (output, h_n); LSTM: (output, (h_n, c_n))): each output a flow
    # may take, by name, as the index path into the result; `call` takes `default_output` unless told.
    # Empty: forward returns one tensor.
    outputs: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    default_output: str | None = None
    # Called as self-attention, m(x, x, x), instead of m(x) (MultiheadAttention).
    self_attention: bool = False
    # Checks between arguments that torch would make with an assert or not at all: (message, argument at
    # fault) or None. E.g. embed_dim must divide by num_heads.
    check: Callable[[Mapping[str, Any]], tuple[str, str] | None] | None = None
    # What an input of the wrong rank means, said for this layer (e.g. "(batch, sequence, features)").
    layout: Callable[[Mapping[str, Any]], str] | None = None
    arg_index: Mapping[str, Arg] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arg_index", {a.name: a for a in self.args})

    @property
    def is_lazy(self) -> bool:
        return self.infers is not None

    @property
    def returns_tuple(self) -> bool:
        return bool(self.outputs)


def _size(name: str, default: Any = REQUIRED, example: Any = None, help: str = "") -> Arg:
    return Arg(name, "int", default, min=1, max=SIZE_MAX, example=example, help=help)


_BIAS = Arg("bias", "bool", True, help="learn an additive bias")
# Editors start sequence layers batch-first: a design's input is (batch, ...), e.g. (2, 35) ids → (2, 35, 32).
_BATCH_FIRST_HELP = "input and output are (batch, sequence, features); torch's default false is (sequence, batch, …)"


def _conv_args(n: int, lazy: bool, transpose: bool = False) -> tuple[Arg, ...]:
    """Constructor arguments of Conv{n}d / ConvTranspose{n}d, in torch's order (in_channels omitted when lazy)."""
    ints = f"int{n}"
    head = [] if lazy else [_size("in_channels", example=1, help="channels of the input")]
    head.append(_size("out_channels", example=8, help="channels of the output"))
    head.append(Arg("kernel_size", ints, REQUIRED, min=1, max=SIZE_MAX, example=3))
    head.append(Arg("stride", ints, 1, min=1, max=SIZE_MAX))
    if transpose:
        return (
            *head,
            Arg("padding", ints, 0, min=0, max=SIZE_MAX),
            Arg("output_padding", ints, 0, min=0, max=SIZE_MAX),
            Arg("groups", "int", 1, min=1, max=SIZE_MAX),
            _BIAS,
            Arg("dilation", ints, 1, min=1, max=SIZE_MAX),
        )
    return (
        *head,
        Arg("padding", f"padding{n}", 0, min=0, max=SIZE_MAX),
        Arg("dilation", ints, 1, min=1, max=SIZE_MAX),
        Arg("groups", "int", 1, min=1, max=SIZE_MAX),
        _BIAS,
        Arg("padding_mode", "choice", "zeros", choices=("zeros", "reflect", "replicate", "circular")),
    )


def _norm_args(lazy: bool) -> tuple[Arg, ...]:
    head = () if lazy else (_size("num_features", example=8, help="channels (features) of the input"),)
    return (
        *head,
        Arg("eps", "float", 1e-5, min=0, help="added to the variance for stability"),
        Arg("momentum", "float", 0.1, min=0, max=1, optional=True, help="running-average rate"),
        Arg("affine", "bool", True, help="learn a scale and shift"),
        Arg("track_running_stats", "bool", True, help="keep running mean and variance"),
    )


def _pool_args(n: int, avg: bool) -> tuple[Arg, ...]:
    ints = f"int{n}"
    head = (
        Arg("kernel_size", ints, REQUIRED, min=1, max=SIZE_MAX, example=2),
        Arg("stride", ints, None, min=1, max=SIZE_MAX, optional=True, help="default: kernel_size"),
        Arg("padding", ints, 0, min=0, max=SIZE_MAX),
    )
    if avg:
        return (*head, Arg("ceil_mode", "bool", False), Arg("count_include_pad", "bool", True))
    return (*head, Arg("dilation", ints, 1, min=1, max=SIZE_MAX), Arg("ceil_mode", "bool", False))


def _recurrent_args(kind: str) -> tuple[Arg, ...]:
    """Constructor arguments of nn.RNN / nn.LSTM / nn.GRU, in the order torch documents them."""
    args = [
        _size("input_size", example=32, help="features of each time step of the input"),
        _size("hidden_size", example=64, help="features of the hidden state"),
        Arg("num_layers", "int", 1, min=1, max=1024, help="recurrent layers stacked on each other"),
    ]
    if kind == "RNN":
        args.append(Arg("nonlinearity", "choice", "tanh", choices=("tanh", "relu")))
    args += [
        Arg("bias", "bool", True, help="learn the biases b_ih and b_hh"),
        Arg("batch_first", "bool", False, example=True, help=_BATCH_FIRST_HELP),
        Arg("dropout", "float", 0.0, min=0, max=1, help="dropout on the outputs of each layer but the last"),
        Arg("bidirectional", "bool", False, help="also run the sequence backwards; output features double"),
    ]
    if kind == "LSTM":
        args.append(
            Arg("proj_size", "int", 0, min=0, max=SIZE_MAX, help="project the hidden state to this size (0: off)")
        )
    return tuple(args)


def _sequence_layout(kwargs: Mapping[str, Any]) -> str:
    return "(batch, sequence, features)" if kwargs.get("batch_first") else "(sequence, batch, features)"


def _check_lstm(kwargs: Mapping[str, Any]) -> tuple[str, str] | None:
    if kwargs["proj_size"] >= kwargs["hidden_size"]:
        return f"proj_size ({kwargs['proj_size']}) must be smaller than hidden_size ({kwargs['hidden_size']})", (
            "proj_size"
        )
    return None


def _check_attention(kwargs: Mapping[str, Any]) -> tuple[str, str] | None:
    for arg in ("kdim", "vdim"):
        if kwargs[arg] not in (None, kwargs["embed_dim"]):
            return (
                f"{arg} must be null or embed_dim ({kwargs['embed_dim']}): Blockwork calls MultiheadAttention as "
                f"self-attention, m(x, x, x), so keys and values have the input's embed_dim features",
                arg,
            )
    return None


def _nested(spec: Mapping[str, Any] | None) -> nn.Module | None:
    """The module a nested layer spec (kind "layer", already checked) describes, e.g. an encoder layer."""
    if spec is None:
        return None
    lt = REGISTRY[spec["type"]]
    return lt.module(**check_args(lt, {k: v for k, v in spec.items() if k != "type"}, spec["type"]))


def _transformer_encoder(
    encoder_layer: Mapping[str, Any],
    num_layers: int,
    norm: Mapping[str, Any] | None = None,
    enable_nested_tensor: bool = True,
    mask_check: bool = True,
) -> nn.TransformerEncoder:
    """nn.TransformerEncoder from JSON: its encoder_layer (and norm) given as nested layer specs.

    As by hand, one encoder layer is constructed and torch copies it num_layers times (keys
    layers.0.self_attn.in_proj_weight, ...).
    """
    layer = _nested(encoder_layer)
    assert isinstance(layer, nn.TransformerEncoderLayer)  # the argument's layer_types say so
    return nn.TransformerEncoder(
        layer,
        num_layers,
        norm=_nested(norm),
        enable_nested_tensor=enable_nested_tensor,
        mask_check=mask_check,
    )


_CONV_BRIEF = "{in_channels} → {out_channels}, k{kernel_size}"
_POOL_BRIEF = "k{kernel_size}"


def _types() -> list[LayerType]:
    t: list[LayerType] = []
    # Linear layers
    t += [
        LayerType(
            "Linear",
            nn.Linear,
            "Linear",
            (
                _size("in_features", example=20, help="size of each input"),
                _size("out_features", example=256, help="size of each output"),
                _BIAS,
            ),
            doc="y = x Wᵀ + b",
            lazy="LazyLinear",
            ranks=(),
            feature_axis=-1,
            feature_arg="in_features",
            brief="{in_features} → {out_features}",
        ),
        LayerType(
            "LazyLinear",
            nn.LazyLinear,
            "Linear",
            (_size("out_features", example=256, help="size of each output"), _BIAS),
            doc="Linear whose in_features torch infers from the first input",
            infers="in_features",
            eager="Linear",
            brief="{in_features} → {out_features}",
        ),
        LayerType(
            "MyLinear",
            MyLinear,
            "Custom",
            (_size("in_units", example=20), _size("units", example=8)),
            doc="the chapter's custom layer: relu(X @ W + b), W of shape (in_units, units)",
            feature_axis=-1,
            feature_arg="in_units",
            brief="{in_units} → {units}, ReLU",
        ),
        LayerType(
            "CenteredLayer", CenteredLayer, "Custom", doc="the chapter's custom layer without parameters: X − X.mean()"
        ),
        LayerType("Identity", nn.Identity, "Shape", doc="returns its input unchanged"),
    ]
    # Convolutions
    for n in (1, 2):
        t += [
            LayerType(
                f"Conv{n}d",
                getattr(nn, f"Conv{n}d"),
                "Convolution",
                _conv_args(n, lazy=False),
                doc=f"{n}-D convolution",
                lazy=f"LazyConv{n}d",
                ranks=(n + 1, n + 2),
                feature_axis=-(n + 1),
                feature_arg="in_channels",
                brief=_CONV_BRIEF,
            ),
            LayerType(
                f"LazyConv{n}d",
                getattr(nn, f"LazyConv{n}d"),
                "Convolution",
                _conv_args(n, lazy=True),
                doc=f"Conv{n}d whose in_channels torch infers",
                infers="in_channels",
                eager=f"Conv{n}d",
                ranks=(n + 1, n + 2),
                brief=_CONV_BRIEF,
            ),
        ]
    t += [
        LayerType(
            "ConvTranspose2d",
            nn.ConvTranspose2d,
            "Convolution",
            _conv_args(2, False, transpose=True),
            doc="2-D transposed convolution (upsampling)",
            lazy="LazyConvTranspose2d",
            ranks=(3, 4),
            feature_axis=-3,
            feature_arg="in_channels",
            brief=_CONV_BRIEF,
        ),
        LayerType(
            "LazyConvTranspose2d",
            nn.LazyConvTranspose2d,
            "Convolution",
            _conv_args(2, True, transpose=True),
            doc="ConvTranspose2d whose in_channels torch infers",
            infers="in_channels",
            eager="ConvTranspose2d",
            ranks=(3, 4),
            brief=_CONV_BRIEF,
        ),
    ]
    # Pooling
    for n in (1, 2):
        t += [
            LayerType(
                f"MaxPool{n}d",
                getattr(nn, f"MaxPool{n}d"),
                "Pooling",
                _pool_args(n, avg=False),
                doc=f"{n}-D max pooling",
                ranks=(n + 1, n + 2),
                brief=_POOL_BRIEF,
            ),
            LayerType(
                f"AvgPool{n}d",
                getattr(nn, f"AvgPool{n}d"),
                "Pooling",
                _pool_args(n, avg=True),
                doc=f"{n}-D average pooling",
                ranks=(n + 1, n + 2),
                brief=_POOL_BRIEF,
            ),
        ]
    for n in (1, 2):
        for how in ("Avg", "Max"):
            t.append(
                LayerType(
                    f"Adaptive{how}Pool{n}d",
                    getattr(nn, f"Adaptive{how}Pool{n}d"),
                    "Pooling",
                    (Arg("output_size", f"int{n}", REQUIRED, min=1, max=SIZE_MAX, example=1),),
                    doc=f"{ {'Avg': 'average', 'Max': 'maximum'}[how] } pooling to a fixed output size",
                    ranks=(n + 1, n + 2),
                    brief="→ {output_size}",
                )
            )
    # Normalization
    for n, ranks in ((1, (2, 3)), (2, (4,))):
        t += [
            LayerType(
                f"BatchNorm{n}d",
                getattr(nn, f"BatchNorm{n}d"),
                "Normalization",
                _norm_args(False),
                doc="batch normalization",
                lazy=f"LazyBatchNorm{n}d",
                ranks=ranks,
                feature_axis=1,
                feature_arg="num_features",
                brief="{num_features}",
            ),
            LayerType(
                f"LazyBatchNorm{n}d",
                getattr(nn, f"LazyBatchNorm{n}d"),
                "Normalization",
                _norm_args(True),
                doc=f"BatchNorm{n}d whose num_features torch infers",
                infers="num_features",
                eager=f"BatchNorm{n}d",
                ranks=ranks,
                brief="{num_features}",
            ),
        ]
    t += [
        LayerType(
            "LayerNorm",
            nn.LayerNorm,
            "Normalization",
            (
                Arg(
                    "normalized_shape",
                    "ints",
                    REQUIRED,
                    min=1,
                    max=SIZE_MAX,
                    example=8,
                    help="the trailing dimensions to normalize",
                ),
                Arg("eps", "float", 1e-5, min=0),
                Arg("elementwise_affine", "bool", True),
                _BIAS,
            ),
            doc="layer normalization over the trailing dimensions",
            brief="{normalized_shape}",
        ),
        LayerType(
            "Dropout",
            nn.Dropout,
            "Regularization",
            (Arg("p", "float", 0.5, min=0, max=1, help="probability of zeroing an element"),),
            doc="zeroes elements at random while training",
            brief="p={p}",
        ),
        *(
            LayerType(
                f"Dropout{n}d",
                getattr(nn, f"Dropout{n}d"),
                "Regularization",
                (Arg("p", "float", 0.5, min=0, max=1, help="probability of zeroing a whole channel"),),
                doc=f"zeroes whole channels of a {n}-D feature map at random while training",
                ranks=(n + 1, n + 2),
                brief="p={p}",
            )
            for n in (1, 2, 3)
        ),
        LayerType(
            "GroupNorm",
            nn.GroupNorm,
            "Normalization",
            (
                Arg(
                    "num_groups",
                    "int",
                    REQUIRED,
                    min=1,
                    max=SIZE_MAX,
                    example=2,
                    divides="num_channels",
                    help="groups the channels are split into; must divide num_channels",
                ),
                _size("num_channels", example=8, help="channels of the input"),
                Arg("eps", "float", 1e-5, min=0, help="added to the variance for stability"),
                Arg("affine", "bool", True, help="learn a per-channel scale and shift"),
                _BIAS,
            ),
            doc="normalizes each group of channels of each example",
            feature_axis=1,
            feature_arg="num_channels",
            brief="{num_groups} groups of {num_channels}",
        ),
    ]
    # Shape
    t += [
        LayerType(
            "Flatten",
            nn.Flatten,
            "Shape",
            (Arg("start_dim", "int", 1, min=-64, max=64), Arg("end_dim", "int", -1, min=-64, max=64)),
            doc="flattens a range of dimensions into one",
        ),
        LayerType(
            "Unflatten",
            nn.Unflatten,
            "Shape",
            (
                Arg("dim", "int", REQUIRED, min=-64, max=64, example=1),
                Arg("unflattened_size", "ints", REQUIRED, min=1, max=SIZE_MAX, example=[1, 28, 28]),
            ),
            doc="splits one dimension into several",
            brief="{unflattened_size}",
        ),
        LayerType(
            "Embedding",
            nn.Embedding,
            "Linear",
            (
                _size("num_embeddings", example=100, help="vocabulary size"),
                _size("embedding_dim", example=16, help="size of each vector"),
                Arg("padding_idx", "int", None, min=-SIZE_MAX, max=SIZE_MAX, optional=True),
            ),
            doc="looks up a vector per integer index (input dtype int64)",
            brief="{num_embeddings} × {embedding_dim}",
        ),
    ]
    t.append(
        LayerType(
            "Upsample",
            nn.Upsample,
            "Shape",
            (
                Arg("size", "ints", None, min=1, max=SIZE_MAX, optional=True, help="output size (or scale_factor)"),
                Arg(
                    "scale_factor",
                    "floats",
                    None,
                    min=0,
                    max=1024,
                    optional=True,
                    example=2,  # an editor starts with it: Upsample needs size or scale_factor
                    help="multiplies each size",
                ),
                Arg(
                    "mode",
                    "choice",
                    "nearest",
                    choices=("nearest", "linear", "bilinear", "bicubic", "trilinear", "nearest-exact"),
                ),
                Arg("align_corners", "bool", None, optional=True, help="linear modes only"),
                Arg("recompute_scale_factor", "bool", None, optional=True),
            ),
            doc="enlarges the trailing (spatial) dimensions; give size or scale_factor (torch checks when it runs)",
            ranks=(3, 4, 5),
        )
    )
    # Recurrent: forward returns (output, state); a flow takes the output unless told otherwise.
    # A flow's value is one tensor, so LSTM's state (h_n, c_n) is taken as h or c.
    rnn_outputs = {"output": (0,), "state": (1,), "h": (1,)}
    for kind in ("RNN", "LSTM", "GRU"):
        t.append(
            LayerType(
                kind,
                getattr(nn, kind),
                "Recurrent",
                _recurrent_args(kind),
                doc={
                    "RNN": "Elman recurrent layer; returns (output, h_n)",
                    "LSTM": "long short-term memory; returns (output, (h_n, c_n))",
                    "GRU": "gated recurrent unit; returns (output, h_n)",
                }[kind],
                ranks=(3,),
                feature_axis=-1,
                feature_arg="input_size",
                brief="{input_size} → {hidden_size}",
                outputs={"output": (0,), "h": (1, 0), "c": (1, 1)} if kind == "LSTM" else rnn_outputs,
                default_output="output",
                check=_check_lstm if kind == "LSTM" else None,
                layout=_sequence_layout,
            )
        )
    # Attention
    t += [
        LayerType(
            "MultiheadAttention",
            nn.MultiheadAttention,
            "Attention",
            (
                _size("embed_dim", example=32, help="features of each position (split across the heads)"),
                Arg(
                    "num_heads",
                    "int",
                    REQUIRED,
                    min=1,
                    max=SIZE_MAX,
                    example=4,
                    divides="embed_dim",
                    help="attention heads; must divide embed_dim (each head gets embed_dim / num_heads)",
                ),
                Arg("dropout", "float", 0.0, min=0, max=1, help="dropout on the attention weights"),
                _BIAS,
                Arg("add_bias_kv", "bool", False, help="learn a bias added to keys and values"),
                Arg("add_zero_attn", "bool", False, help="add a batch of zeros to keys and values"),
                Arg("kdim", "int", None, min=1, max=SIZE_MAX, optional=True, help="key features (null: embed_dim)"),
                Arg("vdim", "int", None, min=1, max=SIZE_MAX, optional=True, help="value features (null: embed_dim)"),
                Arg("batch_first", "bool", False, example=True, help=_BATCH_FIRST_HELP),
            ),
            doc="multi-head self-attention, called m(x, x, x); returns (output, attention weights)",
            ranks=(3,),
            feature_axis=-1,
            feature_arg="embed_dim",
            brief="{embed_dim}, {num_heads} heads",
            outputs={"output": (0,), "weights": (1,)},
            default_output="output",
            self_attention=True,
            check=_check_attention,
            layout=_sequence_layout,
        ),
        LayerType(
            "TransformerEncoderLayer",
            nn.TransformerEncoderLayer,
            "Attention",
            (
                _size("d_model", example=32, help="features of each position"),
                Arg(
                    "nhead",
                    "int",
                    REQUIRED,
                    min=1,
                    max=SIZE_MAX,
                    example=4,
                    divides="d_model",
                    help="attention heads; must divide d_model (each head gets d_model / nhead)",
                ),
                _size("dim_feedforward", 2048, help="hidden size of the feed-forward network"),
                Arg("dropout", "float", 0.1, min=0, max=1),
                Arg("activation", "choice", "relu", choices=("relu", "gelu"), help="of the feed-forward network"),
                Arg("layer_norm_eps", "float", 1e-5, min=0),
                Arg("batch_first", "bool", False, example=True, help=_BATCH_FIRST_HELP),
                Arg("norm_first", "bool", False, help="layer norm before attention and feed-forward (pre-LN)"),
                _BIAS,
            ),
            doc="self-attention and a feed-forward network, each with a residual connection and layer norm",
            ranks=(3,),
            feature_axis=-1,
            feature_arg="d_model",
            brief="{d_model}, {nhead} heads",
            layout=_sequence_layout,
        ),
        LayerType(
            "TransformerEncoder",
            _transformer_encoder,
            "Attention",
            (
                Arg(
                    "encoder_layer",
                    "layer",
                    REQUIRED,
                    example={"type": "TransformerEncoderLayer", "d_model": 32, "nhead": 4, "batch_first": True},
                    layer_types=("TransformerEncoderLayer",),
                    help="the layer torch copies num_layers times",
                ),
                Arg("num_layers", "int", REQUIRED, min=1, max=1024, example=2, help="copies of encoder_layer"),
                Arg(
                    "norm",
                    "layer",
                    None,
                    optional=True,
                    layer_types=("LayerNorm",),
                    help="a layer norm after the last layer (null: none)",
                ),
                Arg("enable_nested_tensor", "bool", True, help="a faster path for padded batches at inference"),
                Arg("mask_check", "bool", True),
            ),
            doc="a stack of num_layers copies of one TransformerEncoderLayer",
            ranks=(3,),
            feature_axis=-1,
            feature_arg="encoder_layer.d_model",
            brief="{num_layers} layers",
            layout=lambda kwargs: _sequence_layout(kwargs["encoder_layer"]),
        ),
    ]
    # Activations
    t += [
        LayerType("ReLU", nn.ReLU, "Activation", doc="max(0, x)"),
        LayerType(
            "LeakyReLU",
            nn.LeakyReLU,
            "Activation",
            (Arg("negative_slope", "float", 0.01, min=0),),
            doc="max(0, x) + slope · min(0, x)",
        ),
        LayerType(
            "GELU",
            nn.GELU,
            "Activation",
            (Arg("approximate", "choice", "none", choices=("none", "tanh")),),
            doc="x · Φ(x)",
        ),
        LayerType("SiLU", nn.SiLU, "Activation", doc="x · σ(x)"),
        LayerType("Sigmoid", nn.Sigmoid, "Activation", doc="1 / (1 + e⁻ˣ)"),
        LayerType("Tanh", nn.Tanh, "Activation", doc="tanh(x)"),
        LayerType(
            "Softmax",
            nn.Softmax,
            "Activation",
            (Arg("dim", "int", REQUIRED, min=-64, max=64, example=-1),),
            doc="exp(x) / Σ exp(x)",
            brief="dim={dim}",
        ),
        LayerType(
            "LogSoftmax",
            nn.LogSoftmax,
            "Activation",
            (Arg("dim", "int", REQUIRED, min=-64, max=64, example=-1),),
            doc="log softmax",
            brief="dim={dim}",
        ),
    ]
    return t


REGISTRY: dict[str, LayerType] = {lt.name: lt for lt in _types()}
BLOCK_TYPE = "Sequential"  # the type name of a nested block
FLOW_TYPE = "Module"  # the type name of a block with a flow (builder.flow)
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(lt.category for lt in REGISTRY.values()))


class ArgError(ValueError):
    """A bad layer argument; `arg` names it (None when the fault is not one argument)."""

    def __init__(self, message: str, arg: str | None = None) -> None:
        super().__init__(message)
        self.arg = arg


def built_type(type_name: str, inferred: Mapping[str, int]) -> str:
    """The class torch holds at a position after the dry run: a Lazy* layer whose size was inferred has become
    its ordinary class (torch's `cls_to_become`: LazyLinear -> Linear); any other type is itself."""
    lt = REGISTRY.get(type_name)
    return lt.eager if lt is not None and lt.is_lazy and lt.eager and inferred else type_name


def _check_number(arg: Arg, value: Any, where: str) -> None:
    if arg.min is not None and value < arg.min:
        raise ValueError(f"{where}: must be at least {_fmt(arg.min)}, got {value!r}")
    if arg.max is not None and value > arg.max:
        raise ValueError(f"{where}: must be at most {_fmt(arg.max)}, got {value!r}")


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _int(arg: Arg, value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: must be a whole number, got {value!r}")
    _check_number(arg, value, where)
    return value


def _ints(arg: Arg, value: Any, where: str, length: int | None) -> int | tuple[int, ...]:
    if isinstance(value, list | tuple):
        if length is not None and len(value) != length:
            raise ValueError(f"{where}: must be a whole number or a list of {length}, got {value!r}")
        if not value:
            raise ValueError(f"{where}: must not be an empty list")
        if len(value) > 64:
            raise ValueError(f"{where}: at most 64 dimensions, got {len(value)}")
        return tuple(_int(arg, v, f"{where}[{i}]") for i, v in enumerate(value))
    return _int(arg, value, where)


def check_value(arg: Arg, value: Any, where: str) -> Any:
    """Validate one argument value from JSON; return it in the form torch takes (lists become tuples)."""
    if value is None:
        if arg.optional:
            return None
        raise ValueError(f"{where}: must not be null")
    kind = arg.kind
    if kind == "int":
        return _int(arg, value, where)
    if kind == "float":
        return _float(arg, value, where)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{where}: must be true or false, got {value!r}")
        return value
    if kind == "choice":
        if value not in arg.choices:
            raise ValueError(f"{where}: must be one of {', '.join(map(repr, arg.choices))}, got {value!r}")
        return value
    if kind in ("padding1", "padding2"):
        if isinstance(value, str):
            if value not in ("same", "valid"):
                raise ValueError(f"{where}: must be a whole number, a list, 'same' or 'valid', got {value!r}")
            return value
        return _ints(arg, value, where, int(kind[-1]))
    if kind in ("int1", "int2"):
        return _ints(arg, value, where, int(kind[-1]))
    if kind == "ints":
        return _ints(arg, value, where, None)
    if kind == "floats":
        if isinstance(value, list | tuple):
            if not 1 <= len(value) <= 64:
                raise ValueError(f"{where}: must be a number or a list of 1 to 64 numbers, got {value!r}")
            return tuple(_float(arg, v, f"{where}[{i}]") for i, v in enumerate(value))
        return _float(arg, value, where)
    if kind == "layer":
        return _layer_spec(arg, value, where)
    raise AssertionError(f"unknown argument kind {kind!r}")


def _float(arg: Arg, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: must be a number, got {value!r}")
    _check_number(arg, value, where)
    return float(value)


def _layer_spec(arg: Arg, value: Any, where: str) -> dict[str, Any]:
    """A nested layer, e.g. {"type": "TransformerEncoderLayer", "d_model": 32, "nhead": 4}, checked like a
    layer of the design; returned with its arguments as given, in canonical form."""
    kinds = " or ".join(arg.layer_types)
    if not isinstance(value, Mapping) or "type" not in value:
        raise ValueError(f'{where}: must be a layer like {{"type": "{arg.layer_types[0]}", ...}}, got {value!r}')
    if value["type"] not in arg.layer_types:
        raise ValueError(f"{where}: must be a {kinds}, got type {value['type']!r}")
    lt = REGISTRY[value["type"]]
    given = {k: v for k, v in value.items() if k != "type"}
    try:
        kwargs = check_args(lt, given, where.partition(" (")[0])  # "layers[0].encoder_layer.nhead: ..."
    except ArgError as e:
        raise ValueError(str(e)) from None
    return {"type": lt.name, **{k: kwargs[k] for k in given}}


def check_args(lt: LayerType, given: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate a layer's arguments; return all of them (defaults filled in) as keyword arguments for torch.

    `where` is the layer's path in the design ("layers[0]"). Each message starts with the path of the
    argument at fault and says the layer's type once: "layers[0].in_features (Linear): must be ...".
    """
    unknown = [k for k in given if k not in lt.arg_index]
    if unknown:
        names = ", ".join(a.name for a in lt.args) or "none"
        hint = ""
        if lt.infers == unknown[0]:
            hint = f"; {lt.name} infers {lt.infers} from its input (use {lt.eager} to give it)"
        raise ArgError(
            f"{where}.{unknown[0]}: {lt.name} has no argument {unknown[0]!r} (its arguments: {names}){hint}",
            unknown[0],
        )
    kwargs: dict[str, Any] = {}
    for arg in lt.args:
        if arg.name in given:
            try:
                kwargs[arg.name] = check_value(arg, given[arg.name], f"{where}.{arg.name} ({lt.name})")
            except ValueError as e:
                raise ArgError(str(e), arg.name) from None
        elif arg.required:
            hint = ""
            if lt.lazy and arg.name == lt.feature_arg:
                hint = f" (or use {lt.lazy} to let torch infer it)"
            raise ArgError(f"{where}.{arg.name}: {lt.name} needs {arg.name!r}{hint}", arg.name)
        else:
            kwargs[arg.name] = arg.default
    for arg in lt.args:
        if arg.divides and kwargs[arg.divides] % kwargs[arg.name]:
            total, parts = kwargs[arg.divides], kwargs[arg.name]
            raise ArgError(
                f"{where}.{arg.name} ({lt.name}): {arg.divides} ({total}) must be divisible by {arg.name} ({parts})",
                arg.name,
            )
    if lt.check is not None:
        found = lt.check(kwargs)
        if found:
            message, arg_name = found
            raise ArgError(f"{where}.{arg_name} ({lt.name}): {message}", arg_name)
    return kwargs


def unknown_type(name: object) -> str:
    """Why `name` is not a layer type, with the closest known names ("did you mean 'Linear'?") when there are
    any, else the full list."""
    if isinstance(name, str) and name:
        by_lower = {t.lower(): t for t in (*REGISTRY, BLOCK_TYPE, FLOW_TYPE)}
        if name.lower() in by_lower:  # only the case is wrong: "relu" -> "ReLU"
            close = [by_lower[name.lower()]]
        else:
            close = [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.75)]
        if close:
            return f"unknown layer type {name!r}; did you mean {' or '.join(map(repr, close))}?"
    return f"unknown layer type {name!r}; known types: {BLOCK_TYPE}, {FLOW_TYPE}, {', '.join(sorted(REGISTRY))}"


def check_input(lt: LayerType, kwargs: Mapping[str, Any], shape: tuple[int, ...]) -> str | None:
    """Explain, in the layer's own terms, why an input of `shape` does not fit; None when it looks fine.

    torch has the last word (the dry run); this only turns the common mismatches into plain sentences.
    """
    if lt.ranks and len(shape) not in lt.ranks:
        ranks = " or ".join(f"{r}-D" for r in lt.ranks)
        if lt.layout is None:
            return f"expects a {ranks} input, gets shape {tuple(shape)}"
        # torch would read a 2-D input as one unbatched sequence: almost always a missing batch dimension
        # (or a missing Embedding), so Blockwork asks for the batch dimension rather than guess.
        return f"expects a {ranks} input {lt.layout(kwargs)}, gets shape {tuple(shape)}"
    if lt.feature_axis is not None and lt.feature_arg:
        if len(shape) < abs(lt.feature_axis) + (1 if lt.feature_axis >= 0 else 0):
            return f"expects at least {abs(lt.feature_axis)} dimensions, gets shape {tuple(shape)}"
        expected, got = _feature(kwargs, lt.feature_arg), shape[lt.feature_axis]
        if expected != got:
            what = {
                "in_features": "input features",
                "in_units": "input features",
                "in_channels": "input channels",
                "num_features": "features (channels)",
                "num_channels": "channels",
                "input_size": "input features (input_size)",
                "embed_dim": "input features (embed_dim)",
                "d_model": "input features (d_model)",
            }[lt.feature_arg.rpartition(".")[2]]
            return f"expects {expected} {what}, gets {got} (input shape {tuple(shape)})"
    return None


def _feature(kwargs: Mapping[str, Any], arg: str) -> Any:
    """The argument a feature size is checked against; "encoder_layer.d_model" looks into a nested layer."""
    value: Any = kwargs
    for part in arg.split("."):
        value = value[part]
    return value


def call(lt: LayerType, module: nn.Module, x: Any, output: str | None = None) -> Any:
    """Run one layer on `x` as a hand-written forward would: m(x), or m(x, x, x) for self-attention; from a
    tuple-returning layer take `output` (default: its default_output), e.g. LSTM "output" is m(x)[0],
    "h" is m(x)[1][0]. The one place build, dry run and training call a layer."""
    result = module(x, x, x) if lt.self_attention else module(x)
    if not lt.outputs:
        if output is not None:
            raise ValueError(f"{lt.name} returns one tensor; it has no output {output!r}")
        return result
    for index in lt.outputs[_output_name(lt, output)]:
        result = result[index]
    return result


def call_code(lt: LayerType, module: str, x: str, output: str | None = None) -> str:
    """The Python expression `call` evaluates, e.g. call_code(LSTM, "self.rnn", "X") == "self.rnn(X)[0]"."""
    text = f"{module}({x}, {x}, {x})" if lt.self_attention else f"{module}({x})"
    if not lt.outputs:
        return text
    return text + "".join(f"[{i}]" for i in lt.outputs[_output_name(lt, output)])


def _output_name(lt: LayerType, output: str | None) -> str:
    name = output if output is not None else lt.default_output
    if name is None or name not in lt.outputs:
        raise ValueError(f"{lt.name} has no output {name!r} (its outputs: {', '.join(lt.outputs)})")
    return name
