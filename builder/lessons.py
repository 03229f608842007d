"""The chapter as a walkthrough (d2l, Builders' Guide), and the presets gallery — as data, plus the small
computations each step lets a class try on its own network.

    for step in LESSONS: step.title, step.preset, step.page, step.code
    tie_demo(net, 100.0)                    # net[2].weight.data[0, 0] = 100; is net[4] the same?
    save_load(design, net)                  # the chapter's Y_clone == Y

The pages show this; nothing here imports streamlit, so a notebook can run the same steps.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from .build import build, example_input
from .design import Design
from .devices import available_devices, device_of, try_gpu
from .errors import DesignError, ParamsError
from .examples import example_names, load_example
from .init import initialize, with_init
from .layers import CenteredLayer
from .params import load_params, save_params, set_value, tied_keys

# -- presets -------------------------------------------------------------------------------------------------

GROUPS = {  # gallery sections, in order; examples not named here are shown under "More"
    "The chapter": ("sequential_mlp", "custom_mlp", "nested", "tied", "lazy_mlp", "my_linear"),
    "Classics": ("lenet", "vgg_block", "mlp_dropout_bn"),
    "Ready to train": ("linear_regression", "tied_moons", "digits_cnn"),
}
TITLES = {
    "sequential_mlp": "MLP with nn.Sequential",
    "custom_mlp": "The MLP block",
    "nested": "Nested blocks",
    "tied": "Tied parameters",
    "lazy_mlp": "Lazy MLP",
    "my_linear": "Custom layers (MyLinear)",
    "lenet": "LeNet-5",
    "vgg_block": "VGG blocks",
    "mlp_dropout_bn": "MLP with dropout and batch norm",
    "linear_regression": "Linear regression",
    "tied_moons": "Tied MLP for 2-D points",
    "digits_cnn": "Digits CNN",
}


@dataclass(frozen=True)
class Preset:
    """An example design as the gallery shows it."""

    name: str  # the example's file stem: load_example(name)
    title: str
    group: str
    description: str  # the example's own one-line explanation
    layers: int  # entries in its stack


def presets() -> list[Preset]:
    """Every shipped example, grouped (the chapter's first), with its title and one-line description."""
    names = example_names()
    order = [n for group in GROUPS.values() for n in group if n in names]
    order += [n for n in names if n not in order]
    group_of = {n: g for g, ns in GROUPS.items() for n in ns}
    out = []
    for name in order:
        design = load_example(name)
        out.append(
            Preset(
                name,
                TITLES.get(name, name.replace("_", " ").capitalize()),
                group_of.get(name, "More"),
                design.description,
                len(design.layers),
            )
        )
    return out


# -- the walkthrough -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One section of the chapter: the idea, the preset that shows it, the page to look at and what to try."""

    key: str  # what the page's "try it" part shows (one function below per key)
    section: str  # the chapter's section number
    title: str
    preset: str  # the example loaded for this step
    page: str  # the page that shows the idea, e.g. "pages/inspect.py"
    look: str  # what to look at there
    idea: str  # markdown: the idea in a few sentences
    code: str  # the chapter's code for it


LESSONS: tuple[Step, ...] = (
    Step(
        "sequential",
        "6.1",
        "Modules and nn.Sequential",
        "sequential_mlp",
        "pages/inspect.py",
        "the graph and the output shape of every layer",
        "A network is a **module** made of modules. `nn.Sequential` chains them: the output of one is the input "
        "of the next, and `net[i]` is its i-th child. Calling `net(X)` runs `forward`; a batch of 2 examples "
        "with 20 features goes in, 2 rows of 10 outputs come out.",
        "net = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))\n"
        "X = torch.rand(2, 20)\n"
        "net(X).shape  # torch.Size([2, 10])",
    ),
    Step(
        "blocks",
        "6.1.2",
        "Custom blocks",
        "custom_mlp",
        "pages/weights.py",
        "the exported code: a class with __init__ and forward",
        "A **block** is a class: `__init__` declares the layers (as named attributes), `forward` says how "
        "data flows through them. The names become the keys of the parameters: `hidden.weight`, `out.bias`. "
        "Blocks nest — the *nested* preset puts a whole MLP inside a Sequential.",
        "class MLP(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.hidden = nn.LazyLinear(256)\n"
        "        self.out = nn.LazyLinear(10)\n\n"
        "    def forward(self, X):\n"
        "        return self.out(F.relu(self.hidden(X)))",
    ),
    Step(
        "access",
        "6.2.1",
        "Parameter access",
        "sequential_mlp",
        "pages/parameters.py",
        "one layer's state_dict, its values and its gradient",
        "Every layer's parameters are reachable from the network: `net[2].state_dict()` lists its tensors, "
        "`net[2].bias.data` is the value, `net[2].weight.grad` the gradient (None before a backward pass). "
        "`named_parameters()` walks them all.",
        "net[2].state_dict()\n"
        "type(net[2].bias), net[2].bias.data\n"
        "net[2].weight.grad == None  # True: no backward pass yet\n"
        "[(name, param.shape) for name, param in net.named_parameters()]",
    ),
    Step(
        "init",
        "6.3",
        "Parameter initialization",
        "sequential_mlp",
        "pages/parameters.py",
        "Initialization: choose a method, apply it, see the histogram",
        "PyTorch initializes each layer by a default rule. `net.apply(fn)` runs `fn` on every module, so one "
        "function can set all weights: from a normal distribution, to a constant, with Xavier's rule or the "
        "chapter's own `my_init`. Pick one and look at `net[0].weight` before and after.",
        "def init_normal(module):\n"
        "    if type(module) == nn.Linear:\n"
        "        nn.init.normal_(module.weight, mean=0, std=0.01)\n"
        "        nn.init.zeros_(module.bias)\n\n"
        "net.apply(init_normal)\n"
        "net[0].weight.data[0], net[0].bias.data[0]",
    ),
    Step(
        "tied",
        "6.2.3",
        "Tied parameters",
        "tied",
        "pages/gradients.py",
        "each use's share of the gradient, and how they add up to .grad",
        "A layer used twice is **one** module at two positions: its parameters are tied. Change "
        "`net[2].weight` and `net[4].weight` changes too — it is the same tensor. Its gradient is the sum of "
        "the gradients of both uses.",
        "shared = nn.LazyLinear(8)\n"
        "net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.LazyLinear(1))\n"
        "net(X)\n"
        "net[2].weight.data[0, 0] = 100\n"
        "net[2].weight.data[0] == net[4].weight.data[0]  # all True",
    ),
    Step(
        "lazy",
        "6.4",
        "Lazy initialization",
        "lazy_mlp",
        "pages/inspect.py",
        "“Show the dry run”: the network before and after its first forward pass",
        "`nn.LazyLinear(256)` leaves out the input size. Its weight is an `UninitializedParameter` until the "
        "first input passes through; then torch reads the size off the input, allocates the weight and turns "
        "the layer into an ordinary `nn.Linear`.",
        "net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))\n"
        "net[0].weight  # <UninitializedParameter>\n"
        "X = torch.rand(2, 20)\n"
        "net(X)\n"
        "net[0].weight.shape  # torch.Size([256, 20])",
    ),
    Step(
        "custom",
        "6.5",
        "Custom layers",
        "my_linear",
        "pages/design.py",
        "the “Custom” layers in the Add list: MyLinear and CenteredLayer",
        "A layer is a module too. `CenteredLayer` has no parameters: it subtracts the mean. `MyLinear` declares "
        "its own `nn.Parameter`s, so they show up in `state_dict()` and get gradients like any built-in layer's.",
        "class CenteredLayer(nn.Module):\n"
        "    def forward(self, X):\n"
        "        return X - X.mean()\n\n"
        "class MyLinear(nn.Module):\n"
        "    def __init__(self, in_units, units):\n"
        "        super().__init__()\n"
        "        self.weight = nn.Parameter(torch.randn(in_units, units))\n"
        "        self.bias = nn.Parameter(torch.randn(units))\n\n"
        "    def forward(self, X):\n"
        "        return F.relu(torch.matmul(X, self.weight) + self.bias)",
    ),
    Step(
        "save_load",
        "6.6",
        "Saving and loading",
        "custom_mlp",
        "pages/weights.py",
        "download the weights (.params) and the code, upload weights back",
        "`torch.save(net.state_dict(), 'mlp.params')` writes the parameters, not the network: to load them, "
        "build the same architecture again and call `load_state_dict`. The clone computes exactly what the "
        "original computes.",
        "torch.save(net.state_dict(), 'mlp.params')\n"
        "clone = MLP()\n"
        "clone.load_state_dict(torch.load('mlp.params'))\n"
        "clone.eval()\n"
        "Y_clone = clone(X)\n"
        "Y_clone == Y  # all True",
    ),
    Step(
        "devices",
        "6.7",
        "GPUs",
        "sequential_mlp",
        "pages/parameters.py",
        "the device column; the Device selector in the sidebar moves the network",
        "Tensors and networks live on a device: the CPU or a GPU. `try_gpu()` picks the first GPU when there is "
        "one, else the CPU. Computing needs the inputs on the network's device; `net.to(device)` moves its "
        "parameters there.",
        "def try_gpu(i=0):\n"
        "    if torch.cuda.device_count() >= i + 1:\n"
        "        return torch.device(f'cuda:{i}')\n"
        "    return torch.device('cpu')\n\n"
        "X = torch.ones(2, 3, device=try_gpu())\n"
        "net = net.to(device=try_gpu())\n"
        "net(X).device",
    ),
)


def step(key: str) -> Step:
    """The lesson step with this key."""
    for s in LESSONS:
        if s.key == key:
            return s
    raise KeyError(f"no lesson step {key!r}; steps: {', '.join(s.key for s in LESSONS)}")


# -- what a class can try -----------------------------------------------------------------------------------


def _input(design: Design, net: nn.Module) -> torch.Tensor:
    return example_input(design, device_of(net))


def forward(net: nn.Module, design: Design) -> torch.Tensor:
    """`net(X)` on the design's example input (no gradient; the network's mode restored)."""
    was = net.training
    try:
        with torch.no_grad():
            out: torch.Tensor = net.eval()(_input(design, net))
            return out.detach().cpu()
    finally:
        net.train(was)


def children(net: nn.Module) -> pd.DataFrame:
    """The network's direct children as `net[i]` / `net.name` shows them."""
    rows = []
    for i, (name, child) in enumerate(net.named_children()):
        access = f"net[{i}]" if name.isdigit() else f"net.{name}"
        text = " ".join(line.strip() for line in repr(child).splitlines())  # a nested block on one line
        rows.append(
            {
                "access": access,
                "module": text if len(text) <= 120 else text[:117] + "...",
                "parameters": sum(p.numel() for p in child.parameters()),
            }
        )
    return pd.DataFrame(rows, columns=["access", "module", "parameters"])


def named_parameters(net: nn.Module) -> pd.DataFrame:
    """`[(name, param.shape) for name, param in net.named_parameters()]` as a table (tied ones once)."""
    return pd.DataFrame(
        [
            {"name": n, "shape": str(tuple(p.shape)), "requires_grad": p.requires_grad}
            for n, p in net.named_parameters()
        ],
        columns=["name", "shape", "requires_grad"],
    )


INIT_CHOICES: dict[str, dict[str, Any]] = {  # the chapter's initializations, as builder.init specs
    "normal(0, 0.01), bias 0": {"method": "normal", "mean": 0.0, "std": 0.01},
    "constant 1, bias 0": {"method": "constant", "value": 1.0},
    "Xavier uniform": {"method": "xavier_uniform"},
    "my_init: U(-10, 10), |w| < 5 set to 0": {"method": "my_init"},
    "PyTorch's default": {"method": "default"},
}


def apply_init(net: nn.Module, design: Design, choice: str) -> None:
    """`net.apply(init)` for one of INIT_CHOICES, on the session's network (the design is not changed)."""
    if choice not in INIT_CHOICES:
        raise DesignError(f"unknown initialization {choice!r}; choose one of {', '.join(INIT_CHOICES)}")
    initialize(net, with_init(design, None, INIT_CHOICES[choice]))


def first_values(net: nn.Module, key: str, n: int = 8) -> list[float]:
    """The first `n` values of tensor `key` (e.g. "0.weight": the values of its row 0)."""
    state = net.state_dict()
    if key not in state:
        raise ParamsError(f"{key}: no such tensor in the network")
    return [round(float(v), 6) for v in state[key].detach().reshape(-1)[:n].cpu()]


def values_frame(rows: dict[str, list[float]]) -> pd.DataFrame:
    """Rows of a few values each, as a table with one column per position ([0], [1], ...)."""
    width = max((len(v) for v in rows.values()), default=0)
    return pd.DataFrame(
        [v + [None] * (width - len(v)) for v in rows.values()],
        index=list(rows),
        columns=[f"[{j}]" for j in range(width)],
    )


@dataclass(frozen=True)
class TieDemo:
    """What the chapter prints after `net[2].weight.data[0, 0] = value`."""

    keys: list[str]  # every position holding the edited tensor, e.g. ["2.weight", "4.weight"]
    rows: pd.DataFrame  # row 0 of the weight at each position
    same_object: bool  # net[2] is net[4]


def tie_demo(net: nn.Module, value: float, key: str = "2.weight") -> TieDemo:
    """`net[2].weight.data[0, 0] = value`, then row 0 of the weight at every position that holds it."""
    keys = set_value(net, key, (0, 0), value)
    state = net.state_dict()
    n = min(state[key].shape[1], 8)
    rows = pd.DataFrame(
        {k: [round(float(v), 4) for v in state[k][0, :n].cpu()] for k in keys}, index=[f"[0, {j}]" for j in range(n)]
    ).T
    prefixes = [k.rpartition(".")[0] for k in keys]
    mods = [net.get_submodule(p) for p in prefixes]
    return TieDemo(keys, rows, len(mods) > 1 and all(m is mods[0] for m in mods))


def tied_positions(net: nn.Module, key: str = "2.weight") -> list[str]:
    """The positions sharing `key`'s tensor ([] when the network has no such key)."""
    return tied_keys(net, key) if key in net.state_dict() else []


def centered(values: list[float]) -> tuple[list[float], float]:
    """CenteredLayer()(torch.tensor(values)) and the mean of the result (zero, up to rounding)."""
    if not values:
        raise DesignError("give at least one number, e.g. 1, 2, 3, 4, 5")
    y = CenteredLayer()(torch.tensor(values, dtype=torch.float32))
    return [round(float(v), 6) for v in y], float(y.mean())


def parse_numbers(text: str, limit: int = 1000) -> list[float]:
    """ "1, 2, 3" → [1.0, 2.0, 3.0]; DesignError naming the item that is not a number."""
    items = [t for t in text.replace(";", ",").replace(" ", ",").split(",") if t.strip()]
    if len(items) > limit:
        raise DesignError(f"at most {limit} numbers, got {len(items)}")
    out = []
    for i, t in enumerate(items):
        try:
            out.append(float(t))
        except ValueError:
            raise DesignError(f"item {i + 1} ({t.strip()!r}) is not a number") from None
    return out


@dataclass(frozen=True)
class SaveLoad:
    """The chapter's save-and-load check: a clone built from the design, loaded with the saved bytes."""

    nbytes: int  # size of the .params bytes
    keys: list[str]
    y: torch.Tensor
    y_clone: torch.Tensor
    equal: bool  # bool((Y_clone == Y).all())


def save_load(design: Design, net: nn.Module) -> SaveLoad:
    """`torch.save(net.state_dict())`, a fresh clone of the design (other random weights), `load_state_dict`,
    then Y = net(X) and Y_clone = clone(X), both in eval mode, on the design's example input."""
    data = save_params(net, cpu=True)
    device = device_of(net)
    clone = build(design, device="cpu", seed=12345)  # its own weights, replaced by the loaded ones
    load_params(clone, io.BytesIO(data))
    clone.to(device)
    x = _input(design, net)
    was = net.training
    try:
        with torch.no_grad():
            y = net.eval()(x).detach().cpu()
            y_clone = clone.eval()(x).detach().cpu()
    finally:
        net.train(was)
    return SaveLoad(
        len(data), list(torch.load(io.BytesIO(data), weights_only=True)), y, y_clone, bool(torch.equal(y, y_clone))
    )


@dataclass(frozen=True)
class DeviceReport:
    devices: list[str]  # every device this machine offers, e.g. ["cpu", "cuda:0"]
    gpu: str  # try_gpu()
    missing: str  # try_gpu(10): the CPU, unless there are 11 GPUs
    network: str  # where the network's parameters are
    output: str  # where net(X) lands with X on the network's device


def device_report(net: nn.Module, design: Design) -> DeviceReport:
    """The chapter's device checks on this machine and this network."""
    with torch.no_grad():
        y = net(_input(design, net))
    return DeviceReport([d.id for d in available_devices()], try_gpu(), try_gpu(10), device_of(net), str(y.device))
