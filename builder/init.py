"""Initialization as part of the design (d2l 6.3): which method fills which layer's weights, and a seed.

A design may say how its weights start, for all layers or per layer:

    {"seed": 0, "init": {"method": "xavier_uniform"},
     "layers": [{"type": "Linear", "in_features": 20, "out_features": 256, "init": {"method": "normal", "std": 0.01}},
                ...]}

`init` on the design is the default for every layer with a weight matrix or kernel (Linear, convolutions,
MyLinear, Embedding); `init` on a block applies to the layers inside it; `init` on a layer wins. A shared
layer takes its `init` from its own definition (or the design's default), never from a block that uses it,
because it is one module wherever it sits. Biases are set to zero unless the spec says `"bias": "default"`.

Order matters for reproducibility: every layer is first reset by its own `reset_parameters` (PyTorch's
default) in `net.modules()` order, then the chosen methods run in the same order. The exported code
(`to_code`) copies the functions below verbatim and calls them in the same order, so under the same seed it
produces the same weights.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .errors import DesignError, json_kind

# -- the methods: plain functions of a module, copied verbatim into exported code --------------------------


def init_normal(m, mean=0.0, std=0.01):
    nn.init.normal_(m.weight, mean=mean, std=std)


def init_constant(m, value=1.0):
    nn.init.constant_(m.weight, value)


def init_zeros(m):
    nn.init.zeros_(m.weight)


def init_xavier_uniform(m, gain=1.0):
    nn.init.xavier_uniform_(m.weight, gain=gain)


def init_xavier_normal(m, gain=1.0):
    nn.init.xavier_normal_(m.weight, gain=gain)


def init_kaiming_uniform(m, mode="fan_in", nonlinearity="relu"):
    nn.init.kaiming_uniform_(m.weight, mode=mode, nonlinearity=nonlinearity)


def init_kaiming_normal(m, mode="fan_in", nonlinearity="relu"):
    nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity=nonlinearity)


def my_init(m):
    # The chapter's custom initializer: U(-10, 10), then zero every weight with |w| < 5.
    nn.init.uniform_(m.weight, -10, 10)
    m.weight.data *= m.weight.data.abs() >= 5


def zero_bias(m):
    if getattr(m, "bias", None) is not None:
        nn.init.zeros_(m.bias)


# -- what a spec may say ---------------------------------------------------------------------------------

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
    fn: Any  # the function above; None for "default"
    options: tuple[Option, ...] = ()


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
        Method("xavier_uniform", "Xavier uniform", init_xavier_uniform, (_GAIN,)),
        Method("xavier_normal", "Xavier normal", init_xavier_normal, (_GAIN,)),
        Method("kaiming_uniform", "Kaiming uniform", init_kaiming_uniform, _KAIMING),
        Method("kaiming_normal", "Kaiming normal", init_kaiming_normal, _KAIMING),
        Method("my_init", "the chapter's my_init: U(-10, 10), |w| < 5 zeroed", my_init),
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
    if method not in METHODS:
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


def kwargs_of(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The method's keyword arguments in a spec (method and bias removed)."""
    return {k: v for k, v in spec.items() if k not in ("method", "bias")}


def bias_zeroed(spec: Mapping[str, Any]) -> bool:
    return spec["method"] != "default" and spec.get("bias", "zeros") == "zeros"


def describe(spec: Mapping[str, Any] | None) -> str:
    """A short human form: "normal(std=0.01), bias zeros"."""
    if spec is None or spec["method"] == "default":
        return "PyTorch default"
    args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in kwargs_of(spec).items())
    return f"{spec['method']}({args})" + (", bias zeros" if bias_zeroed(spec) else "")


# -- which layer gets what ---------------------------------------------------------------------------------


def plan(design) -> list[tuple[str, str, dict[str, Any]]]:
    """(module key, layer type, spec) for every layer that gets a non-default method, in net.modules() order.

    A shared layer appears once, at its first use (where net.modules() meets it).
    """
    from .design import Block, Use, child_key  # design imports this module

    out: list[tuple[str, str, dict[str, Any]]] = []
    seen: set[str] = set()

    def visit(nodes, prefix: str, inherited) -> None:
        for i, node in enumerate(nodes):
            key = prefix + child_key(node, i)
            if isinstance(node, Use):
                if node.shared in seen:
                    continue
                seen.add(node.shared)
                node, own = design.shared[node.shared], design.init  # shared: its own, else the design's
            else:
                own = inherited
            spec = node.init if node.init is not None else own
            if isinstance(node, Block):
                visit(node.layers, key + ".", spec)
            elif spec is not None and spec["method"] != "default" and node.type in INIT_TYPES:
                out.append((key, node.type, dict(spec)))

    visit(design.layers, "", design.init)
    return out


def apply(net: nn.Module, design) -> None:
    """Run the design's chosen methods on an already reset network (no seeding here: see `initialize`)."""
    with torch.no_grad():
        for key, _, spec in plan(design):
            module = net.get_submodule(key)
            fn = METHODS[spec["method"]].fn
            fn(module, **kwargs_of(spec))
            if bias_zeroed(spec):
                zero_bias(module)


def initialize(net: nn.Module, design, seed: int | None = None) -> None:
    """Re-initialize `net` (built from `design`) in place: PyTorch's default for every layer, then the
    design's methods. `seed` (else the design's seed) makes it reproducible; the global RNG is restored."""
    from .build import _reset  # build imports this module

    seed = design.seed if seed is None else seed
    if seed is None:
        _reset(net)
        apply(net, design)
        return
    devices = sorted({t.device for t in net.parameters() if t.device.type == "cuda"}, key=str)
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        _reset(net)
        apply(net, design)


# -- editing a design's initialization ---------------------------------------------------------------------


def eligible(design) -> list[tuple[str, str]]:
    """(design path, module key) of every layer an init applies to, shared definitions as "shared.<name>"."""
    from .design import Layer

    out = [(p, k) for p, k, n in design.walk() if isinstance(n, Layer) and n.type in INIT_TYPES]
    out += [
        (f"shared.{name}", f"shared '{name}'")
        for name, n in design.shared.items()
        if isinstance(n, Layer) and n.type in INIT_TYPES
    ]
    return out


def with_init(design, path: str | None, spec: Mapping[str, Any] | None):
    """A copy of `design` with `spec` as the init at `path` (None: the design's default; a spec of None
    removes it). `path` is a design path such as "layers[2]", "layers[0].layers[1]" or "shared.name"."""
    spec = None if spec is None else check_init(dict(spec), "init")
    if path is None:
        return dataclasses.replace(design, init=spec)
    if path.startswith("shared."):
        name = path.removeprefix("shared.")
        if name not in design.shared:
            raise DesignError(f"{path}: no such shared layer", path)
        shared = dict(design.shared)
        shared[name] = _set_node_init(shared[name], spec, path)
        return dataclasses.replace(design, shared=shared)
    steps = _parse_path(path)
    return dataclasses.replace(design, layers=_set_in(design.layers, steps, spec, path))


def with_seed(design, seed: int | None):
    return dataclasses.replace(design, seed=check_seed(seed))


def _parse_path(path: str) -> list[int]:
    parts = path.split(".")
    steps = []
    for part in parts:
        if not (part.startswith("layers[") and part.endswith("]") and part[7:-1].isdigit()):
            raise DesignError(f"{path}: not a layer's path (like layers[0] or layers[1].layers[2])", path)
        steps.append(int(part[7:-1]))
    return steps


def _set_in(nodes, steps: list[int], spec, path: str):
    from .design import Block

    i = steps[0]
    if not 0 <= i < len(nodes):
        raise DesignError(f"{path}: no such layer", path)
    node = nodes[i]
    if len(steps) > 1:
        if not isinstance(node, Block):
            raise DesignError(f"{path}: no such layer", path)
        node = dataclasses.replace(node, layers=_set_in(node.layers, steps[1:], spec, path))
    else:
        node = _set_node_init(node, spec, path)
    return (*nodes[:i], node, *nodes[i + 1 :])


def _set_node_init(node, spec, path: str):
    from .design import Layer, Use

    if isinstance(node, Use):
        raise DesignError(
            f"{path}: a use of a shared layer takes its init from the shared definition (shared.{node.shared})", path
        )
    if isinstance(node, Layer) and spec is not None and node.type not in INIT_TYPES:
        raise DesignError(f"{path}: {node.type} has no weight matrix or kernel to initialize", path)
    return dataclasses.replace(node, init=spec)
