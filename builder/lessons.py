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

from . import chapter_code
from .build import build, example_input
from .design import Design
from .devices import available_devices, device_of, try_all_gpus, try_gpu
from .errors import DesignError, ParamsError
from .examples import example_names, load_example
from .init import initialize, with_init, with_init_everywhere
from .layers import CenteredLayer
from .limits import limits
from .params import Tensors, load_params, read_tensors, save_params, save_tensors, set_value, tied_keys
from .pysource import source_of

# -- presets -------------------------------------------------------------------------------------------------

GROUPS = {  # gallery sections, in order; examples not named here are shown under "More"
    "The chapter": ("sequential_mlp", "custom_mlp", "nested", "rgnet", "tied", "lazy_mlp", "my_linear", "gpu_linear"),
    "Classics": ("lenet", "alexnet", "vgg_block", "vgg11", "nin", "mlp_dropout_bn"),
    "Beyond chains": ("resnet18", "inception", "densenet_block", "lstm_lm", "transformer_encoder"),
    "Ready to train": ("linear_regression", "tied_moons", "digits_cnn"),
}
TITLES = {
    "lstm_lm": "LSTM language model",
    "transformer_encoder": "Tiny Transformer classifier",
    "sequential_mlp": "MLP with nn.Sequential",
    "custom_mlp": "The MLP block",
    "nested": "Nested blocks",
    "tied": "Tied parameters",
    "lazy_mlp": "Lazy MLP",
    "my_linear": "Custom layers (MyLinear)",
    "gpu_linear": "One LazyLinear for the GPU section",
    "lenet": "LeNet-5",
    "vgg_block": "VGG blocks",
    "alexnet": "AlexNet (46.8 M parameters)",
    "vgg11": "VGG-11 (128.8 M parameters)",
    "nin": "Network in network (NiN)",
    "mlp_dropout_bn": "MLP with dropout and batch norm",
    "linear_regression": "Linear regression",
    "tied_moons": "Tied MLP for 2-D points",
    "digits_cnn": "Digits CNN",
    "rgnet": "rgnet: blocks named 'block 0' …",
    "resnet18": "ResNet-18 (residual blocks)",
    "inception": "Inception block (parallel branches)",
    "densenet_block": "DenseNet's dense block",
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


def _source(*objects: object) -> str:
    """The source of the chapter's blocks as builder.chapter_code holds them: what the page shows is what runs."""
    return "\n\n".join(source_of(o).rstrip() for o in objects)


@dataclass(frozen=True)
class Step:
    """One section of the chapter: the idea, the preset that shows it, the page to look at and what to try."""

    key: str  # what the page's "try it" part shows (one function below per key)
    section: str  # the chapter's section number
    title: str
    preset: str  # the example loaded for this step
    page: str  # the key of the page that shows the idea, e.g. "inspect" (the app maps keys to files)
    look: str  # what to look at there
    idea: str  # markdown: the idea in a few sentences
    code: str  # the chapter's code for it


LESSONS: tuple[Step, ...] = (
    Step(
        "sequential",
        "6.1",
        "Modules and nn.Sequential",
        "sequential_mlp",
        "inspect",
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
        "weights",
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
        "my_sequential",
        "6.1.3",
        "Your own Sequential",
        "sequential_mlp",
        "inspect",
        "the state_dict keys: 0.weight, 0.bias, 2.weight, … — the same as nn.Sequential's",
        "`nn.Sequential` is a small class. `MySequential` registers each argument as a child named by its "
        "position (`add_module(str(idx), module)`) and runs the children in order in `forward`. Because the "
        "children get the same names, the parameters get the same keys, and the same modules compute the same "
        "outputs: below, the network of this step wrapped both ways.",
        _source(chapter_code.MySequential) + "\n\n"
        "net = MySequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))\n"
        "net(X).shape",
    ),
    Step(
        "fixed_hidden",
        "6.1.4",
        "Code in forward: FixedHiddenMLP and the chimera",
        "sequential_mlp",
        "design",
        "what a design holds (layers, blocks, shared layers) and what needs code",
        "`forward` is ordinary Python. `FixedHiddenMLP` multiplies by a constant random weight that is not a "
        "parameter (never trained), adds 1, applies **the same** Linear twice and halves X in a `while` loop "
        "until its absolute sum is at most 1: a loop whose count depends on the data. The chimera nests it "
        "with other blocks. Below, the chapter's own code runs on this session's input.",
        _source(chapter_code.FixedHiddenMLP, chapter_code.NestMLP)
        + "\n\nchimera = nn.Sequential(NestMLP(), nn.LazyLinear(20), FixedHiddenMLP())\n"
        "X = torch.rand(2, 20)\n"
        "FixedHiddenMLP()(X), chimera(X)",
    ),
    Step(
        "access",
        "6.2.1",
        "Parameter access",
        "sequential_mlp",
        "parameters",
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
        "rgnet",
        "6.2.2",
        "Parameters of nested blocks",
        "rgnet",
        "inspect",
        "the graph: four blocks named 'block 0' … 'block 3' inside the first block",
        "Blocks nest, and `add_module` names a child with any string — `f'block {i}'` has a space. "
        "`print(rgnet)` shows the tree; `rgnet[0][1][0]` indexes into it by position: the second block's "
        "first layer. Its state_dict key is `0.block 1.0.bias`.",
        "def block1():\n"
        "    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(),\n"
        "                         nn.LazyLinear(4), nn.ReLU())\n\n"
        "def block2():\n"
        "    net = nn.Sequential()\n"
        "    for i in range(4):\n"
        "        # Nested here\n"
        "        net.add_module(f'block {i}', block1())\n"
        "    return net\n\n"
        "rgnet = nn.Sequential(block2(), nn.LazyLinear(1))\n"
        "rgnet(X)\n"
        "print(rgnet)\n"
        "rgnet[0][1][0].bias.data",
    ),
    Step(
        "init",
        "6.3",
        "Parameter initialization",
        "sequential_mlp",
        "parameters",
        "Initialization: choose a method, apply it, see the histogram",
        "PyTorch initializes each layer by a default rule. `net.apply(fn)` runs `fn` on every module, so one "
        "function can set all weights: from a normal distribution, to a constant, with Xavier's rule or the "
        "chapter's own `my_init`. Pick one and look at `net[0].weight` before and after.",
        "def init_normal(module):\n"
        "    if type(module) == nn.Linear:\n"
        "        nn.init.normal_(module.weight, mean=0, std=0.01)\n"
        "        nn.init.zeros_(module.bias)\n\n"
        "net.apply(init_normal)\n"
        "net[0].weight.data[0], net[0].bias.data[0]\n\n"
        "def init_xavier(module):\n"
        "    if type(module) == nn.Linear:\n"
        "        nn.init.xavier_uniform_(module.weight)  # the bias is left as it was\n\n"
        "def init_42(module):\n"
        "    if type(module) == nn.Linear:\n"
        "        nn.init.constant_(module.weight, 42)\n\n"
        "net[0].apply(init_xavier)\n"
        "net[2].apply(init_42)\n\n"
        "net[0].weight.data[:] += 1  # setting parameters directly\n"
        "net[0].weight.data[0, 0] = 42\n"
        "net[0].weight.data[0]",
    ),
    Step(
        "tied",
        "6.2.3",
        "Tied parameters",
        "tied",
        "gradients",
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
        "inspect",
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
        "design",
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
        "tensor_io",
        "6.6.1",
        "Saving and loading tensors",
        "custom_mlp",
        "lessons",
        "the three files below: a tensor, a list of tensors, a dict of tensors",
        "`torch.save` writes any tensor, and lists and dicts of them, to a file; `torch.load` reads them back "
        "as they were. Download the three files, upload one back: it is read as safely as a weights file "
        "(`weights_only=True`: tensors only, nothing in the file is run).",
        "x = torch.arange(4)\n"
        "torch.save(x, 'x-file')\n"
        "x2 = torch.load('x-file')\n\n"
        "y = torch.zeros(4)\n"
        "torch.save([x, y], 'x-files')\n"
        "x2, y2 = torch.load('x-files')\n\n"
        "mydict = {'x': x, 'y': y}\n"
        "torch.save(mydict, 'mydict')\n"
        "mydict2 = torch.load('mydict')",
    ),
    Step(
        "save_load",
        "6.6",
        "Saving and loading",
        "custom_mlp",
        "weights",
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
        "gpu_linear",
        "parameters",
        "the device column; the Device selector in the sidebar moves the network",
        "Tensors and networks live on a device: the CPU or a GPU. `try_gpu()` picks the first GPU when there is "
        "one, else the CPU. Computing needs the inputs on the network's device; `net.to(device)` moves its "
        "parameters there.",
        "def try_gpu(i=0):\n"
        "    if torch.cuda.device_count() >= i + 1:\n"
        "        return torch.device(f'cuda:{i}')\n"
        "    return torch.device('cpu')\n\n"
        "def try_all_gpus():\n"
        "    return [torch.device(f'cuda:{i}') for i in range(torch.cuda.device_count())]\n\n"
        "try_gpu(), try_gpu(10), try_all_gpus()\n"
        "X = torch.ones(2, 3, device=try_gpu())\n"
        "net = nn.Sequential(nn.LazyLinear(1))\n"
        "net = net.to(device=try_gpu())\n"
        "net(X)",
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


ALL_LAYERS = "*"  # in INIT_CHOICES: every layer (the design's default, reaching layers with their own setting)
INIT_CHOICES: dict[str, dict[str, dict[str, Any]]] = {  # the chapter's initializations: design path -> spec
    "normal(0, 0.01), bias 0 — net.apply(init_normal)": {ALL_LAYERS: {"method": "normal", "mean": 0.0, "std": 0.01}},
    "constant 1, bias 0 — net.apply(init_constant)": {ALL_LAYERS: {"method": "constant", "value": 1.0}},
    "Xavier on net[0], 42 on net[2] — biases kept": {
        "layers[0]": {"method": "xavier_uniform", "bias": "default"},
        "layers[2]": {"method": "constant", "value": 42.0, "bias": "default"},
    },
    "Xavier uniform, bias kept — net.apply(init_xavier)": {ALL_LAYERS: {"method": "xavier_uniform", "bias": "default"}},
    "my_init: U(-10, 10), |w| < 5 set to 0, bias kept": {ALL_LAYERS: {"method": "my_init", "bias": "default"}},
    "PyTorch's default": {ALL_LAYERS: {"method": "default"}},
}


def apply_init(net: nn.Module, design: Design, choice: str) -> None:
    """The chapter's `net.apply(init)` (or `net[0].apply(...)`, `net[2].apply(...)`) for one of INIT_CHOICES,
    on the session's network (the design is not changed). "All layers" reaches every layer, also those with
    their own setting in the design; a per-layer choice starts from PyTorch's default elsewhere."""
    if choice not in INIT_CHOICES:
        raise DesignError(f"unknown initialization {choice!r}; choose one of {', '.join(INIT_CHOICES)}")
    specs = INIT_CHOICES[choice]
    chosen = with_init_everywhere(design, specs.get(ALL_LAYERS))
    for path, spec in specs.items():
        if path != ALL_LAYERS:
            chosen = with_init(chosen, path, spec)
    initialize(net, chosen)


DIRECT_SETTING = {  # the chapter's direct setting (6.3.2), one action each, on net[0].weight
    "net[0].weight.data[:] += 1": "add_one",
    "net[0].weight.data[0, 0] = 42": "set_42",
}


def set_directly(net: nn.Module, code: str, key: str = "0.weight") -> list[float]:
    """Run one of DIRECT_SETTING's lines on the session's network (`key` is the tensor `net[0].weight` names);
    return row 0 afterwards, as the chapter's `net[0].weight.data[0]` shows it. A tied tensor changes at every
    position, since it is one tensor."""
    if code not in DIRECT_SETTING:
        raise DesignError(f"unknown action {code!r}; choose one of {', '.join(DIRECT_SETTING)}")
    state = net.state_dict(keep_vars=True)
    if key not in state or state[key].dim() != 2:
        raise ParamsError(f"{key}: this network has no weight matrix there (the chapter's net[0] is a Linear)")
    if DIRECT_SETTING[code] == "add_one":
        with torch.no_grad():
            state[key][:] += 1
    else:
        set_value(net, key, (0, 0), 42.0)
    return [round(float(v), 6) for v in state[key].detach()[0].cpu()]


def grad_shape(net: nn.Module, key: str) -> tuple[int, ...] | None:
    """The shape of parameter `key`'s .grad, or None before a backward pass (or for a buffer)."""
    grad = dict(net.named_parameters())[key].grad if key in dict(net.named_parameters()) else None
    return None if grad is None else tuple(grad.shape)


def printed(net: nn.Module) -> str:
    """`print(net)`: the module tree as PyTorch writes it."""
    return repr(net)


def indexed(net: nn.Module, *positions: int) -> nn.Module:
    """`net[i][j]...`: children by position, whatever their names (`rgnet[0][1][0]`)."""
    module = net
    for i in positions:
        children = list(module.children())
        if not 0 <= i < len(children):
            raise DesignError(f"position {i} is out of range: {type(module).__name__} has {len(children)} children")
        module = children[i]
    return module


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

    def agreement(self, rows: int = 2, columns: int = 10) -> pd.DataFrame:
        """`Y_clone == Y` for the first rows and columns (outputs flattened per sample), as booleans."""
        same = (self.y_clone == self.y).reshape(self.y.shape[0], -1)[:rows, :columns]
        return pd.DataFrame(same.numpy())


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


def tensor_files() -> dict[str, bytes]:
    """The chapter's three files (6.6.1), by its names: x = torch.arange(4) as 'x-file', [x, y] with
    y = torch.zeros(4) as 'x-files', and {'x': x, 'y': y} as 'mydict' (torch.save bytes)."""
    x, y = torch.arange(4), torch.zeros(4)
    return {"x-file": save_tensors(x), "x-files": save_tensors([x, y]), "mydict": save_tensors({"x": x, "y": y})}


def read_tensor_file(data: bytes) -> tuple[Tensors, str]:
    """An uploaded tensor file read back (`read_tensors`: as safe as a .params upload), and what it holds, as
    `torch.load` would print it: "a tensor: tensor([0, 1, 2, 3])", "a list of 2 tensors: ...", "a dict: ..."."""
    obj = read_tensors(data, max_mb=limits().max_upload_mb)  # a browser's upload: the upload limit applies

    def short(t: torch.Tensor) -> str:
        text = " ".join(repr(t).split())
        return text if len(text) <= 80 else text[:77] + "..."

    if isinstance(obj, torch.Tensor):
        return obj, f"a tensor: {short(obj)}"
    if isinstance(obj, list):
        return obj, f"a list of {len(obj)} tensors: [" + ", ".join(short(t) for t in obj[:8]) + "]"
    return obj, f"a dict of {len(obj)} tensors: {{" + ", ".join(
        f"{k!r}: {short(t)}" for k, t in list(obj.items())[:8]
    ) + "}"


@dataclass(frozen=True)
class DeviceReport:
    devices: list[str]  # every device this machine offers, e.g. ["cpu", "cuda:0"]
    gpu: str  # try_gpu()
    missing: str  # try_gpu(10): the CPU, unless there are 11 GPUs
    all_gpus: list[str]  # try_all_gpus(): every GPU, [] when none was found
    network: str  # where the network's parameters are
    output: str  # where net(X) lands with X on the network's device
    x: str  # what X is: "torch.ones(2, 3)" as the chapter, else the design's example input
    y: torch.Tensor  # net(X), on the CPU


def device_report(net: nn.Module, design: Design) -> DeviceReport:
    """The chapter's device checks on this machine and this network: `X = torch.ones(2, 3)` on the network's
    device when the design takes that shape (the chapter's; the step's preset does), else its example input."""
    device = device_of(net)
    if tuple(design.input_shape) == (2, 3) and design.input_dtype == "float32":
        x, what = torch.ones(2, 3, device=device), "torch.ones(2, 3)"
    else:
        x, what = _input(design, net), f"the example input {tuple(design.input_shape)}"
    with torch.no_grad():
        y = net(x)
    return DeviceReport(
        [d.id for d in available_devices()],
        try_gpu(),
        try_gpu(10),
        try_all_gpus(),
        device,
        str(y.device),
        what,
        y.detach().cpu(),
    )


# -- code a design cannot hold (6.1) -----------------------------------------------------------------------


@dataclass(frozen=True)
class SequentialCheck:
    """The step's network wrapped in the chapter's MySequential and in nn.Sequential: same keys, same output."""

    keys: list[str]  # nn.Sequential(*children).state_dict() keys
    my_keys: list[str]  # MySequential(*children).state_dict() keys
    y: torch.Tensor  # nn.Sequential's output on X
    my_y: torch.Tensor  # MySequential's output on X
    equal: bool  # same keys and torch.equal outputs


def my_sequential(net: nn.Module, design: Design) -> SequentialCheck:
    """`MySequential(*net's children)` beside `nn.Sequential(*the same children)` on the design's example input."""
    children = list(net.children())
    if not children:
        raise DesignError("this network has no layers to chain")
    theirs, mine = nn.Sequential(*children), chapter_code.MySequential(*children)
    x = _input(design, net)
    with torch.no_grad():
        was = net.training
        try:
            net.eval()
            y, my_y = theirs(x).detach().cpu(), mine(x).detach().cpu()
        finally:
            net.train(was)
    keys, my_keys = list(theirs.state_dict()), list(mine.state_dict())
    return SequentialCheck(keys, my_keys, y, my_y, keys == my_keys and bool(torch.equal(y, my_y)))


CAN_AND_CANNOT = (
    "**A design can hold** layers and their arguments, nested blocks with names, one layer used at several "
    "places (a shared layer — `self.linear` applied twice is exactly that) and lazy sizes. **It cannot hold** "
    "a constant tensor that is not a parameter (`rand_weight`), arithmetic on it (`X @ W + 1`), or a `while` "
    "loop whose number of turns depends on the data: those are Python in `forward`, so they stay code. The "
    "exported code of a design is the place to add them."
)


@dataclass(frozen=True)
class CodeRun:
    """The chapter's FixedHiddenMLP and chimera run on an input: what came in and what came out."""

    x: str  # what X was
    fixed: float  # FixedHiddenMLP()(X): a single number (X.sum() after the loop)
    chimera: float  # chimera(X)
    halvings: int  # turns of FixedHiddenMLP's while loop on X


def fixed_hidden(design: Design, seed: int = 0) -> CodeRun:
    """Run the chapter's `FixedHiddenMLP()(X)` and `chimera(X)` (builder.chapter_code, the shown source) on the
    session's example input when it has the 20 features they take, else on the chapter's `torch.rand(2, 20)`;
    seeded (the global random state is restored), so a class sees the same numbers."""
    shape = tuple(design.input_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if len(shape) == 2 and shape[1] == 20 and design.input_dtype == "float32":
            x, what = example_input(design), f"this design's example input {shape}"
        else:
            x, what = torch.rand(2, 20), f"torch.rand(2, 20) (this design takes {shape}; the blocks take 20 features)"
        with torch.no_grad():
            fixed = chapter_code.FixedHiddenMLP()
            out = fixed(x)
            chimera = chapter_code.chimera()(x)
            inner = fixed.linear(torch.relu(fixed.linear(x) @ fixed.rand_weight + 1))
    halvings = 0
    total = float(inner.abs().sum())
    while total > 1:
        total /= 2
        halvings += 1
    return CodeRun(what, float(out), float(chimera), halvings)
