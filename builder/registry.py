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
#   choice                   one of `choices`
# Any kind may be `optional` (null allowed), e.g. a pool's stride, whose default None means kernel_size.
KINDS = ("int", "float", "bool", "int1", "int2", "padding1", "padding2", "ints", "choice")

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
    example: Any = None  # what an editor pre-fills for a required argument
    help: str = ""

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
    arg_index: Mapping[str, Arg] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arg_index", {a.name: a for a in self.args})

    @property
    def is_lazy(self) -> bool:
        return self.infers is not None


def _size(name: str, default: Any = REQUIRED, example: Any = None, help: str = "") -> Arg:
    return Arg(name, "int", default, min=1, max=SIZE_MAX, example=example, help=help)


_BIAS = Arg("bias", "bool", True, help="learn an additive bias")


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
    t.append(
        LayerType(
            "AdaptiveAvgPool2d",
            nn.AdaptiveAvgPool2d,
            "Pooling",
            (Arg("output_size", "int2", REQUIRED, min=1, max=SIZE_MAX, example=1),),
            doc="average pooling to a fixed output size",
            ranks=(3, 4),
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
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(lt.category for lt in REGISTRY.values()))


class ArgError(ValueError):
    """A bad layer argument; `arg` names it (None when the fault is not one argument)."""

    def __init__(self, message: str, arg: str | None = None) -> None:
        super().__init__(message)
        self.arg = arg


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
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{where}: must be a number, got {value!r}")
        _check_number(arg, value, where)
        return float(value)
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
    raise AssertionError(f"unknown argument kind {kind!r}")


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
    return kwargs


def unknown_type(name: object) -> str:
    """Why `name` is not a layer type, with the closest known names ("did you mean 'Linear'?") when there are
    any, else the full list."""
    if isinstance(name, str) and name:
        by_lower = {t.lower(): t for t in (*REGISTRY, BLOCK_TYPE)}
        if name.lower() in by_lower:  # only the case is wrong: "relu" -> "ReLU"
            close = [by_lower[name.lower()]]
        else:
            close = [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.75)]
        if close:
            return f"unknown layer type {name!r}; did you mean {' or '.join(map(repr, close))}?"
    return f"unknown layer type {name!r}; known types: {BLOCK_TYPE}, {', '.join(sorted(REGISTRY))}"


def check_input(lt: LayerType, kwargs: Mapping[str, Any], shape: tuple[int, ...]) -> str | None:
    """Explain, in the layer's own terms, why an input of `shape` does not fit; None when it looks fine.

    torch has the last word (the dry run); this only turns the common mismatches into plain sentences.
    """
    if lt.ranks and len(shape) not in lt.ranks:
        ranks = " or ".join(f"{r}-D" for r in lt.ranks)
        return f"expects a {ranks} input, gets shape {tuple(shape)}"
    if lt.feature_axis is not None and lt.feature_arg:
        if len(shape) < abs(lt.feature_axis) + (1 if lt.feature_axis >= 0 else 0):
            return f"expects at least {abs(lt.feature_axis)} dimensions, gets shape {tuple(shape)}"
        expected, got = kwargs[lt.feature_arg], shape[lt.feature_axis]
        if expected != got:
            what = {
                "in_features": "input features",
                "in_units": "input features",
                "in_channels": "input channels",
                "num_features": "features (channels)",
            }[lt.feature_arg]
            return f"expects {expected} {what}, gets {got} (input shape {tuple(shape)})"
    return None
