"""What an `init` spec in a design may say, and its checks: the methods' table, options, seed range.

A leaf module (torch's init functions and builder.errors only): `builder.design` checks specs while
reading a design without importing `builder.init`, which walks designs and runs the methods.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from .errors import DesignError, json_kind
from .init_methods import (
    init_constant,
    init_kaiming_normal,
    init_kaiming_uniform,
    init_normal,
    init_xavier_normal,
    init_xavier_uniform,
    init_zeros,
    my_init,
)

_NONLINEARITIES = ("relu", "leaky_relu", "linear", "sigmoid", "tanh", "selu")


@dataclasses.dataclass(frozen=True)
class Option:
    name: str
    kind: str  # "float" or "choice"
    default: Any
    min: float | None = None  # inclusive, or exclusive when `positive`
    positive: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    label: str  # what a person reads in a menu
    fn: Callable[..., None] | None  # one of builder.init_methods; None for "default"
    options: tuple[Option, ...] = ()
    # What the chapter (d2l 6.3) does with the bias beside this method: init_normal and init_constant zero
    # it; init_xavier, init_42 and my_init leave it as PyTorch set it. Editors fill it in (`with_bias`); a
    # spec read from JSON without "bias" still means zeros, as format 1 always did.
    bias: str = "zeros"


_GAIN = Option("gain", "float", 1.0, positive=True, help="scales the range (nn.init.calculate_gain)")
_KAIMING = (
    Option("mode", "choice", "fan_in", choices=("fan_in", "fan_out")),
    Option("nonlinearity", "choice", "relu", choices=_NONLINEARITIES),
)

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("default", "PyTorch default (reset_parameters)", None),
        Method(
            "normal",
            "normal(mean, σ)",
            init_normal,
            (Option("mean", "float", 0.0), Option("std", "float", 0.01, positive=True, help="σ")),
        ),
        Method("constant", "constant", init_constant, (Option("value", "float", 1.0),)),
        Method("zeros", "zeros", init_zeros),
        Method("xavier_uniform", "Xavier uniform", init_xavier_uniform, (_GAIN,), bias="default"),
        Method("xavier_normal", "Xavier normal", init_xavier_normal, (_GAIN,), bias="default"),
        Method("kaiming_uniform", "Kaiming uniform", init_kaiming_uniform, _KAIMING, bias="default"),
        Method("kaiming_normal", "Kaiming normal", init_kaiming_normal, _KAIMING, bias="default"),
        Method("my_init", "the chapter's my_init: U(-10, 10), |w| < 5 zeroed", my_init, bias="default"),
    )
}
BIAS_CHOICES = ("zeros", "default")
SEED_MAX = 2**63 - 1

# Layer types whose `weight` is a matrix or kernel, which the methods above fill.
INIT_TYPES = frozenset(
    {
        "Linear",
        "LazyLinear",
        "MyLinear",
        "Embedding",
        "Conv1d",
        "Conv2d",
        "LazyConv1d",
        "LazyConv2d",
        "ConvTranspose2d",
        "LazyConvTranspose2d",
    }
)


def check_init(raw: Any, where: str) -> dict[str, Any]:
    """Validate an `init` spec from JSON (where = its path, e.g. "layers[0].init"); return it as a dict.

    A bare string is short for {"method": <string>}. Only the keys given are kept (defaults stay implicit).
    """
    if isinstance(raw, str):
        raw = {"method": raw}
    if not isinstance(raw, dict):
        raise DesignError(
            f'{where}: must be an object like {{"method": "normal", "std": 0.01}}, got {json_kind(raw)}', where
        )
    method = raw.get("method")
    if not isinstance(method, str) or method not in METHODS:  # a JSON list or object is not hashable
        raise DesignError(f"{where}.method: must be one of {', '.join(METHODS)}, got {method!r}", f"{where}.method")
    spec = METHODS[method]
    allowed = {o.name: o for o in spec.options}
    out: dict[str, Any] = {"method": method}
    for key, value in raw.items():
        if key == "method":
            continue
        path = f"{where}.{key}"
        if key == "bias" and method != "default":
            if value not in BIAS_CHOICES:
                raise DesignError(f"{path}: must be 'zeros' or 'default' (keep PyTorch's), got {value!r}", path)
            out[key] = value
            continue
        opt = allowed.get(key)
        if opt is None:
            names = ", ".join([*allowed, *(["bias"] if method != "default" else [])]) or "none"
            raise DesignError(f"{where}: the method {method!r} has no option {key!r} (its options: {names})", path)
        if opt.kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise DesignError(f"{path}: must be a number, got {value!r}", path)
            if opt.positive and value <= 0:
                raise DesignError(f"{path}: must be greater than 0, got {value!r}", path)
            out[key] = float(value)
        else:
            if value not in opt.choices:
                raise DesignError(f"{path}: must be one of {', '.join(map(repr, opt.choices))}, got {value!r}", path)
            out[key] = value
    return out


def check_seed(raw: Any, where: str = "seed") -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= SEED_MAX:
        raise DesignError(f"{where}: must be a whole number from 0 to 2**63 - 1 (or left out), got {raw!r}", where)
    return raw


def method_fn(name: str) -> Callable[..., None]:
    """The function of a method other than "default" (whose function is each layer's reset_parameters)."""
    fn = METHODS[name].fn
    if fn is None:
        raise ValueError(f"the method {name!r} runs no function of its own (PyTorch's reset_parameters)")
    return fn


def kwargs_of(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The method's keyword arguments in a spec (method and bias removed)."""
    return {k: v for k, v in spec.items() if k not in ("method", "bias")}


def bias_zeroed(spec: Mapping[str, Any]) -> bool:
    return bool(spec["method"] != "default" and spec.get("bias", "zeros") == "zeros")


def with_bias(spec: Mapping[str, Any]) -> dict[str, Any]:
    """`spec` with its bias said: as given, else as the chapter does beside this method (`Method.bias`)."""
    out = dict(spec)
    if out["method"] != "default" and "bias" not in out:
        out["bias"] = METHODS[out["method"]].bias
    return out


def describe(spec: Mapping[str, Any] | None) -> str:
    """A short human form: "normal(std=0.01), bias zeros", "xavier_uniform(), bias kept"."""
    if spec is None or spec["method"] == "default":
        return "PyTorch default"
    args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in kwargs_of(spec).items())
    return f"{spec['method']}({args})" + (", bias zeros" if bias_zeroed(spec) else ", bias kept")
