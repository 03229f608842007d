"""A design as plain PyTorch source: what a person would write by hand for the same network.

`to_code(design)` writes a script that imports only torch (and `sys` from the standard library):

- blocks whose children have names become a class in the chapter's style (``__init__`` declares the layers,
  ``forward`` chains them); blocks without names are an ``nn.Sequential``;
- a shared layer is created once and the same instance placed at each of its positions (tied weights);
- lazy layers stay ``nn.Lazy*`` and a dry run on a zero input materializes them, as in the chapter (6.4);
- the chapter's custom layers (MyLinear, CenteredLayer) are written out when used;
- the design's initialization and seed are reproduced by an ``initialize(model)`` that runs the same
  functions, in the same order, as `builder.build`;
- ``make_model()`` returns the network; run as a script it loads a `.params` path given on the command line
  and prints the model.

The generated model's `state_dict()` keys, shapes and (under the design's seed) values equal those of
`build(design)`, so a `.params` file moves between the two.
"""

from __future__ import annotations

import inspect
import io
import json
import keyword
import textwrap
import zipfile
from collections.abc import Iterator
from typing import Any

from torch import nn

from . import init_methods, init_spec
from .design import Block, Design, Layer, Node, Use
from .errors import DesignError
from .init import plan as init_plan
from .registry import REGISTRY
from .reset import NOT_BY_RESET_PARAMETERS, reset_like_construction

_INDENT = "    "
_WIDTH = 110
# Unnamed activations inside a class are called functionally, as the chapter's MLP calls F.relu.
_FUNCTIONAL = {"ReLU": "F.relu", "Sigmoid": "torch.sigmoid", "Tanh": "torch.tanh", "SiLU": "F.silu"}
# Size arguments written positionally when they lead torch's signature: nn.Linear(20, 256), nn.Conv2d(1, 6, ...).
_POSITIONAL = {
    "in_features",
    "out_features",
    "in_channels",
    "out_channels",
    "in_units",
    "units",
    "num_features",
    "num_embeddings",
    "embedding_dim",
    "input_size",
    "hidden_size",
    "num_layers",
    "embed_dim",
    "num_heads",
    "d_model",
    "nhead",
    "dim_feedforward",
    "encoder_layer",
    "num_groups",
    "num_channels",
}
_TAKEN = {
    "torch",
    "nn",
    "F",
    "sys",
    "model",
    "self",
    "X",
    "make_model",
    "initialize",
    "INPUT_SHAPE",
    "SEED",
    "MyLinear",
    "CenteredLayer",
    "path",
    "state",
    "seed",
    "m",
}

_MY_LINEAR = '''class MyLinear(nn.Module):
    """The chapter's custom layer (6.5): relu(X @ weight + bias), weight of shape (in_units, units)."""

    def __init__(self, in_units, units):
        super().__init__()
        self.in_units = in_units
        self.units = units
        self.weight = nn.Parameter(torch.empty(in_units, units))
        self.bias = nn.Parameter(torch.empty(units))
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.normal_(self.weight)
        nn.init.normal_(self.bias)

    def forward(self, X):
        return F.relu(torch.matmul(X, self.weight) + self.bias)

    def extra_repr(self):
        return f"in_units={self.in_units}, units={self.units}"
'''

_CENTERED = '''class CenteredLayer(nn.Module):
    """The chapter's custom layer without parameters (6.5): X - X.mean()."""

    def forward(self, X):
        return X - X.mean()
'''


def to_code(design: Design) -> str:
    """Plain PyTorch source that rebuilds `design`'s network (see the module docstring)."""
    if not isinstance(design, Design):
        raise TypeError(f"to_code expects a Design, got {type(design).__name__}")
    if design.has_flow:  # until the flow writer lands (#14): never code whose forward differs from the network
        raise DesignError("exporting code for a design with flows (skips, branches) is not supported yet")
    return _Writer(design).write()


def bundle(design: Design, net: nn.Module) -> bytes:
    """A zip of everything that rebuilds the session: <name>.json (the design), <name>.params (the weights,
    as CPU tensors) and <name>.py (the exported code), plus a README saying how they fit together."""
    from .params import save_params

    name = file_stem(design)
    readme = (
        f"{design.name}\n\n{design.description}\n\n"
        f"  {name}.json    the Blockwork design (open it in Blockwork)\n"
        f"  {name}.params  the weights: torch.save(net.state_dict()) with CPU tensors\n"
        f"  {name}.py      plain PyTorch that rebuilds the network\n\n"
        f"  python {name}.py {name}.params   # rebuilds the network, loads the weights, prints it\n"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{name}/{name}.json", design.to_json() + "\n")
        z.writestr(f"{name}/{name}.params", save_params(net, cpu=True))
        z.writestr(f"{name}/{name}.py", to_code(design))
        z.writestr(f"{name}/README.txt", readme)
    return buffer.getvalue()


def file_stem(design: Design | str) -> str:
    """A design's name (or any name) made safe for a file name ("my net!" -> "my_net_"); "design" when empty."""
    name = design if isinstance(design, str) else design.name
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return stem or "design"


def _camel(name: str) -> str:
    parts = [p for p in "".join(c if c.isalnum() else "_" for c in name).split("_") if p]
    text = "".join(p[:1].upper() + p[1:] for p in parts) or "Net"
    return "Net" + text if text[0].isdigit() else text


class _Writer:
    def __init__(self, design: Design) -> None:
        self.d = design
        self.classes: list[str] = []  # class definitions, inner ones first
        self.class_names: set[str] = set(_TAKEN)
        self.shared_var = {
            n: (n if n not in _TAKEN and not keyword.iskeyword(n) else f"{n}_layer") for n in design.shared
        }
        self.types = {n.type for _, _, n in self._all_nodes() if isinstance(n, Layer)}
        self.functional_used = False

    def _all_nodes(self) -> Iterator[tuple[str, str, Node]]:
        yield from self.d.walk()
        for name, node in self.d.shared.items():
            yield f"shared.{name}", "", node
            if isinstance(node, Block):
                yield from _walk(node.layers)

    # -- expressions -------------------------------------------------------------------------------------

    def layer(self, node: Layer) -> str:
        lt = REGISTRY[node.type]
        try:
            params = inspect.signature(lt.module).parameters.values()
            order = [p.name for p in params]
            if any(p.kind is p.VAR_POSITIONAL for p in params):  # nn.LSTM(*args): torch reads them in this order
                order = [a.name for a in lt.args]
        except (TypeError, ValueError):
            order = []
        parts, positional = [], True
        for i, arg in enumerate(lt.args):
            if arg.name not in node.args:
                positional = False
                continue
            value = node.args[arg.name]
            if arg.kind == "layer" and value is not None:  # a nested layer: its constructor call
                text = self.layer(Layer(value["type"], {k: v for k, v in value.items() if k != "type"}))
            else:
                text = _py(value)
            if positional and arg.name in _POSITIONAL and i < len(order) and order[i] == arg.name:
                parts.append(text)
            else:
                positional = False
                parts.append(f"{arg.name}={text}")
        prefix = "" if node.type in ("MyLinear", "CenteredLayer") else "nn."
        return f"{prefix}{node.type}({', '.join(parts)})"

    def expr(self, node: Node, indent: int, path: str) -> str:
        if isinstance(node, Use):
            return self.shared_var[node.shared]
        if isinstance(node, Layer):
            return self.layer(node)
        if any(child.name is not None for child in node.layers):
            cls = self.block_class(node, path)
            needed = sorted(self.uses(node))
            return f"{cls}({', '.join(f'{self.shared_var[n]}={self.shared_var[n]}' for n in needed)})"
        items = [self.expr(child, indent + 1, f"{path}.{i}") for i, child in enumerate(node.layers)]
        one_line = f"nn.Sequential({', '.join(items)})"
        if "\n" not in one_line and len(one_line) + 4 * indent <= _WIDTH:
            return one_line
        inner = _INDENT * (indent + 1)
        return "nn.Sequential(\n" + "".join(f"{inner}{item},\n" for item in items) + _INDENT * indent + ")"

    def uses(self, node: Node) -> set[str]:
        if isinstance(node, Use):
            return {node.shared}
        if isinstance(node, Block):
            return set().union(*(self.uses(c) for c in node.layers))
        return set()

    # -- classes -----------------------------------------------------------------------------------------

    def class_name(self, base: str) -> str:
        name, n = base, 2
        while name in self.class_names or keyword.iskeyword(name):
            name, n = f"{base}{n}", n + 1
        self.class_names.add(name)
        return name

    def block_class(self, block: Block, path: str, top: bool = False) -> str:
        """Write a class for a block with named children; return its name."""
        if top:
            base = _camel(self.d.name)
        elif path.startswith("shared.") and path.count(".") == 1:
            base = _camel(path.removeprefix("shared."))
        elif block.name is not None:
            base = _camel(block.name)
        else:
            base = "Block" + "_".join(path.strip(".").split(".")) if path.strip(".") else "Block"
        name = self.class_name(base)
        needed = sorted(self.uses(block))
        params = "".join(f", {self.shared_var[n]}" for n in needed)
        init_lines, calls = [], []
        for i, child in enumerate(block.layers):
            if child.name is not None and child.name.isidentifier() and not keyword.iskeyword(child.name):
                init_lines.append(f"self.{child.name} = {self.expr(child, 2, f'{path}.{child.name}')}")
                calls.append(f"self.{child.name}")
            elif child.name is not None:  # a name add_module accepts but Python cannot spell: the book's 'block 0'
                init_lines.append(f"self.add_module({child.name!r}, {self.expr(child, 2, f'{path}.{child.name}')})")
                calls.append(f"getattr(self, {child.name!r})")
            elif isinstance(child, Layer) and child.type in _FUNCTIONAL and not child.args:
                self.functional_used = True
                calls.append(_FUNCTIONAL[child.type])
            else:
                init_lines.append(
                    f'self.add_module("{i}", {self.expr(child, 2, f"{path}.{i}")})'
                    f"  # unnamed: keeps its position as its name"
                )
                calls.append(f'getattr(self, "{i}")')
        if len(calls) <= 3:
            body = "X"
            for call in calls:
                body = f"{call}({body})"
            forward = [f"return {body}"]
        else:
            forward = [f"X = {call}(X)" for call in calls] + ["return X"]
        where = path.strip(".")
        what = (
            "The whole network"
            if top
            else f"The block {block.name!r} (at {where})"
            if block.name
            else f"The block at {where}"
        )
        lines = [
            f"class {name}(nn.Module):",
            f'    """{what}: its layers are declared in __init__ and chained in forward."""',
            "",
            f"    def __init__(self{params}):",
            "        super().__init__()",
            *(f"        {line}" for line in init_lines),
            "",
            "    def forward(self, X):",
            *(f"        {line}" for line in forward),
        ]
        self.classes.append("\n".join(lines) + "\n")
        return name

    # -- the script --------------------------------------------------------------------------------------

    def write(self) -> str:
        d = self.d
        shared_lines = []
        for name, node in d.shared.items():
            var = self.shared_var[name]
            shared_lines.append(
                f"{var} = {self.expr(node, 1, f'shared.{name}')}  # one module at every use of "
                f"'{name}': its weights are tied"
            )
        if any(n.name is not None for n in d.layers):
            cls = self.block_class(Block(layers=d.layers), "", top=True)
            needed = sorted(set().union(*(self.uses(n) for n in d.layers)))
            model_expr = f"{cls}({', '.join(f'{self.shared_var[n]}={self.shared_var[n]}' for n in needed)})"
        else:
            model_expr = self.expr(Block(layers=d.layers), 1, "")
        lazy = any(REGISTRY[t].is_lazy for t in self.types)
        plan = init_plan(d)
        seeded = d.seed is not None or bool(plan)

        out = [_docstring(d), "import sys", "", "import torch", "from torch import nn"]
        if self.functional_used or "MyLinear" in self.types:
            out.append("from torch.nn import functional as F")
        out += ["", f"INPUT_SHAPE = {tuple(d.input_shape)!r}  # the design's example input (a batch)"]
        if seeded:
            why = "the same weights on every run" if d.seed is not None else "None: different weights on every run"
            out.append(f"SEED = {d.seed!r}  # {why}")
        out.append("")
        if "MyLinear" in self.types:
            out += ["", _MY_LINEAR]
        if "CenteredLayer" in self.types:
            out += ["", _CENTERED]
        if plan:
            fns = dict.fromkeys(init_spec.method_fn(spec["method"]) for _, _, spec in plan)
            if any(init_spec.bias_zeroed(spec) for _, _, spec in plan):
                fns[init_methods.zero_bias] = None
            out += ["", "# Initialization (d2l 6.3): each function fills one layer's weights.", ""]
            for fn in fns:
                out += [inspect.getsource(fn), ""]
        for cls in self.classes:
            out += ["", cls]

        by_construction = bool(self.types & NOT_BY_RESET_PARAMETERS)
        if seeded and by_construction:
            out += ["", inspect.getsource(reset_like_construction)]
        if seeded:
            out += ["", _initialize(plan, by_construction), ""]
        body = [*shared_lines, f"model = {model_expr}"]
        if lazy:
            dtype = (
                ", dtype=torch.long"
                if d.input_dtype == "int64"
                else (", dtype=torch.float64" if d.input_dtype == "float64" else "")
            )
            body += [
                "model.eval()  # the dry run must not touch batch-norm statistics",
                "with torch.no_grad():",
                f"    model(torch.zeros(INPUT_SHAPE{dtype}))  # materializes the Lazy* layers (d2l 6.4)",
                "model.train()",
            ]
        if seeded:
            body.append("initialize(model)")
        body.append("return model")
        out += [
            "",
            "def make_model():",
            f'    """The network of the design{_made(lazy, seeded)}."""',
            *(_INDENT + line for line in body),
            "",
        ]
        out += [
            "",
            'if __name__ == "__main__":',
            "    model = make_model()",
            "    if len(sys.argv) > 1:  # python this.py weights.params",
            '        state = torch.load(sys.argv[1], weights_only=True, map_location="cpu")',
            "        model.load_state_dict(state)",
            "    print(model)",
            "",
        ]
        text = "\n".join(out)
        while "\n\n\n\n" in text:
            text = text.replace("\n\n\n\n", "\n\n\n")
        return text


def _made(lazy: bool, seeded: bool) -> str:
    parts = (["its lazy layers materialized"] if lazy else []) + (["initialized as designed"] if seeded else [])
    return ", " + " and ".join(parts) if parts else ""


def _py(value: object) -> str:
    """Python source for an argument value, strings in double quotes like the rest of the file."""
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _walk(nodes: tuple[Node, ...]) -> Iterator[tuple[str, str, Node]]:
    for node in nodes:
        yield "", "", node
        if isinstance(node, Block):
            yield from _walk(node.layers)


def _docstring(d: Design) -> str:
    lines = [f'"""{d.name}: plain PyTorch, exported by Blockwork.', ""]
    if d.description:
        text = d.description.replace("\\", "\\\\").replace('"""', "'''")
        lines += [*textwrap.wrap(text, 88), ""]
    lines += [
        "Run it with a weights file to rebuild the network, load the weights and print it:",
        "",
        f"    python {file_stem(d)}.py {file_stem(d)}.params",
        '"""',
        "",
    ]
    return "\n".join(lines)


def _initialize(plan: list[tuple[str, str, dict[str, Any]]], by_construction: bool = False) -> str:
    lines = [
        "def initialize(model, seed=SEED):",
        '    """The design\'s initialization: PyTorch\'s default for every layer, then the chosen methods."""',
        "    if seed is not None:",
        "        torch.manual_seed(seed)",
    ]
    if by_construction:
        lines.append("    reset_like_construction(model)  # PyTorch's default, in construction order")
    else:
        lines += [
            "    for m in model.modules():  # PyTorch's default, in construction order",
            '        if hasattr(m, "reset_parameters"):',
            "            m.reset_parameters()",
        ]
    if plan:
        lines.append("    with torch.no_grad():")
        for key, kind, spec in plan:
            fn = init_spec.method_fn(spec["method"]).__name__
            kwargs = "".join(f", {k}={_py(v)}" for k, v in init_spec.kwargs_of(spec).items())
            lines.append(f'        {fn}(model.get_submodule("{key}"){kwargs})  # {kind}')
            if init_spec.bias_zeroed(spec):
                lines.append(f'        zero_bias(model.get_submodule("{key}"))')
    return "\n".join(lines)
