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
from collections.abc import Iterator, Mapping
from typing import Any

from torch import nn

from . import init_methods, init_spec
from .design import Block, Design, Layer, Node, Use, child_key, resolve
from .flow import OPS, Branches, Call, Flow, Op, fresh_output, op_kwargs
from .init import plan as init_plan
from .pysource import source_of
from .registry import REGISTRY, LayerType, call_code
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
        self.flow_classes: dict[tuple[str, str], str] = {}  # (base name, class body) -> class name
        self.parameters = self.find_parameters()

    def _all_nodes(self) -> Iterator[tuple[str, str, Node]]:
        yield from self.d.walk()
        for name, node in self.d.shared.items():
            yield f"shared.{name}", "", node
            if isinstance(node, Block):
                yield from _walk(node.layers)

    # -- expressions -------------------------------------------------------------------------------------

    def layer(self, node: Layer, names: Mapping[str, str] | None = None) -> str:
        """nn.Type(args) for a layer; `names` writes some arguments as a class's constructor parameters."""
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
            if names and arg.name in names:
                text = names[arg.name]
            elif arg.kind == "layer" and value is not None:  # a nested layer: its constructor call
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
        if node.flow is not None:
            return self.flow_class(node, path)
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
            if child.name is not None:
                init_lines.append(_register(child.name, self.expr(child, 2, f"{path}.{child.name}")))
                calls.append(_attribute("self", child.name))
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

    def flow_class(self, block: Block, path: str, top: bool = False) -> str:
        """Write the class of a block with a flow (the book's Residual, Inception…) and return the expression
        that makes one: its children declared in __init__ in order, its forward the flow written out as the
        book writes it. Blocks alike but for some layer arguments share one class that takes those arguments
        (ResNet's Residual(64), Residual(128)…); blocks whose classes would read the same share it too."""
        needed = sorted(self.uses(block))
        shape = self.parameters.get(id(block))
        names: dict[tuple[int, str], str] = shape[0] if shape else {}
        own = list(dict.fromkeys(names.values()))
        signature = "".join(f", {p}" for p in own) + "".join(f", {self.shared_var[n]}" for n in needed)
        init_lines = []
        for i, child in enumerate(block.layers):
            key = child_key(child, i)
            if isinstance(child, Layer):
                expr = self.layer(child, {a: p for (j, a), p in names.items() if j == i})
            else:
                expr = self.expr(child, 2, f"{path}.{key}")
            init_lines.append(_register(key, expr))
        assert block.flow is not None
        forward = _Forward(self, block).write()
        body = [
            f"    def __init__(self{signature}):",
            "        super().__init__()",
            *(f"        {line}" for line in init_lines),
            "",
            "    def forward(self, X):",
            *(f"        {line}" for line in forward),
        ]
        text = "\n".join(body)
        base = _camel(block.class_name)
        if (base, text) in self.flow_classes:
            name = self.flow_classes[(base, text)]
        else:
            name = self.class_name(base)
            self.flow_classes[(base, text)] = name
            where = path.strip(".")
            what = (
                "The whole network" if top else f"{block.class_name} (first at {where})" if where else block.class_name
            )
            doc = f'    """{what}: its layers are declared in __init__; forward runs them as the design\'s flow."""'
            self.classes.append("\n".join([f"class {name}(nn.Module):", doc, "", text]) + "\n")
        values = shape[1] if shape else {}
        args = [values[p] for p in own] if len(own) == 1 else [f"{p}={values[p]}" for p in own]
        args += [f"{self.shared_var[n]}={self.shared_var[n]}" for n in needed]
        return f"{name}({', '.join(args)})"

    def find_parameters(self) -> dict[int, tuple[dict[tuple[int, str], str], dict[str, str]]]:
        """Flow blocks alike but for some of their layers' arguments (same class name, flow, children and
        argument names): which arguments become constructor parameters of their shared class, and each block's
        values. By id of the block: {id: ({(child index, argument): parameter}, {parameter: value as code})}."""
        groups: dict[str, list[Block]] = {}
        for block in _flow_blocks(self.d):
            if not all(isinstance(c, Layer) for c in block.layers):
                continue
            children = [(child_key(c, i), c.type, tuple(c.args)) for i, c in enumerate(block.layers)]  # type: ignore[union-attr]
            nested = [
                _py(c.args[a])  # type: ignore[union-attr]
                for c in block.layers
                for a in c.args  # type: ignore[union-attr]
                if REGISTRY[c.type].arg_index[a].kind == "layer"  # type: ignore[union-attr]
            ]
            groups.setdefault(repr((block.class_name, block.flow, children, nested)), []).append(block)
        out: dict[int, tuple[dict[tuple[int, str], str], dict[str, str]]] = {}
        for blocks in groups.values():
            if len(blocks) < 2:
                continue
            first = blocks[0]
            vectors: dict[tuple[str, ...], list[tuple[int, str]]] = {}
            for i, child in enumerate(first.layers):
                assert isinstance(child, Layer)
                for a in child.args:
                    if REGISTRY[child.type].arg_index[a].kind == "layer":
                        continue
                    vector = tuple(_py(b.layers[i].args[a]) for b in blocks)  # type: ignore[union-attr]
                    if len(set(vector)) > 1:
                        vectors.setdefault(vector, []).append((i, a))
            if not vectors:
                continue
            arg_names = [a for places in vectors.values() for _, a in places]
            names: dict[tuple[int, str], str] = {}
            taken = set(_TAKEN) | set(self.shared_var.values()) | {"self", "X"}
            for places in vectors.values():
                i, a = places[0]
                same = all(p[1] == a for p in places) and arg_names.count(a) == len(places)
                base = a if same else f"{child_key(first.layers[i], i)}_{a}"
                name, n = base, 2
                while name in taken or keyword.iskeyword(name) or not name.isidentifier():
                    name, n = f"{base}_{n}" if base.isidentifier() else f"arg{n}", n + 1
                taken.add(name)
                for place in places:
                    names[place] = name
            for k, block in enumerate(blocks):
                values = {names[places[0]]: vector[k] for vector, places in vectors.items()}
                out[id(block)] = (names, values)
        return out

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
        if d.flow is not None:
            model_expr = self.flow_class(d.top, "", top=True)
        elif any(n.name is not None for n in d.layers):
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
                out += [source_of(fn), ""]
        for cls in self.classes:
            out += ["", cls]

        by_construction = bool(self.types & NOT_BY_RESET_PARAMETERS)
        if seeded and by_construction:
            out += ["", source_of(reset_like_construction)]
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


def _flow_blocks(design: Design) -> Iterator[Block]:
    """Every block with a flow, in module order (the shared ones after)."""

    def visit(nodes: tuple[Node, ...]) -> Iterator[Block]:
        for node in nodes:
            if isinstance(node, Block):
                if node.flow is not None:
                    yield node
                yield from visit(node.layers)

    yield from visit(design.layers)
    yield from visit(tuple(n for n in design.shared.values()))


def _register(name: str, expr: str) -> str:
    """The __init__ line that registers a child: `self.conv1 = ...`, or add_module for a name Python cannot
    spell as an attribute (the book's "block 0", or an unnamed child's position)."""
    if name.isidentifier() and not keyword.iskeyword(name):
        return f"self.{name} = {expr}"
    why = "unnamed: keeps its position as its name" if name.isdigit() else "not a Python name"
    return f"self.add_module({_py(name)}, {expr})  # {why}"


def _attribute(owner: str, name: str) -> str:
    """How code reaches a child: `self.conv1`, or getattr(self, "block 0")."""
    if name.isidentifier() and not keyword.iskeyword(name):
        return f"{owner}.{name}"
    return f"getattr({owner}, {_py(name)})"


# Parameter-free functions after which the book starts a new line (`Y = F.relu(self.bn1(self.conv1(X)))`).
_ACTIVATIONS = {"relu", "gelu", "sigmoid", "tanh", "silu", "elu", "leaky_relu", "softmax", "log_softmax"}
_NESTED = 4  # calls nested in one expression at most: `F.relu(self.b2_2(F.relu(self.b2_1(x))))`


class _Forward:
    """A flow block's forward, as the book writes it: chains of calls nested a few deep, a new line after an
    activation; branches into variables (Y for a residual's main path, b1, b2… for Inception's), the merge as
    `Y += X` or `torch.cat((b1, b2), dim=1)`; `out, _ = self.rnn(X)` for a tuple-returning layer."""

    def __init__(self, writer: _Writer, block: Block) -> None:
        self.w = writer
        self.block = block
        self.lines: list[str] = []
        self.names: set[str] = {"X"}  # every variable used so far (a nested branch never reuses one)

    def write(self) -> list[str]:
        assert self.block.flow is not None
        result = self.chain(self.block.flow, "X", "X", frozenset())
        return [*self.lines, f"return {result}"]

    def fresh(self, base: str, avoid: frozenset[str]) -> str:
        name, n = base, 2
        while name in avoid or (name in self.names and name != base) or keyword.iskeyword(name):
            name, n = f"{base}_{n}", n + 1
        self.names.add(name)
        return name

    # -- one chain of steps -----------------------------------------------------------------------------

    def chain(self, flow: Flow, src: str, var: str, protected: frozenset[str]) -> str:
        """Write the steps of `flow` applied to the variable `src`; intermediate results go to `var` (never to a
        protected name). Returns the expression of the result (a variable or a call)."""
        cur = src
        simple: list[Call | Op] = []
        for step in flow:
            if isinstance(step, Branches):
                cur = self.flush(simple, cur, var, protected)
                simple = []
                cur = self.branches(step, cur, var, protected)
            else:
                simple.append(step)
        return self.flush(simple, cur, var, protected)

    def flush(self, steps: list[Call | Op], cur: str, var: str, protected: frozenset[str]) -> str:
        """Write a run of calls and operations in segments of at most _NESTED nested calls, each ending after an
        activation where one falls; every segment but the last assigned to `var`."""
        i = 0
        while i < len(steps):
            n = len(steps) - i
            if n > _NESTED:
                cut = max((k + 1 for k in range(1, _NESTED) if _is_activation(steps[i + k])), default=_NESTED)
            else:
                cut = n
            segment = steps[i : i + cut]
            i += cut
            for step in segment:
                cur = self.step(step, cur, var, protected)
            if i < len(steps) and not cur.isidentifier():
                cur = self.assign(var, cur, protected)
        return cur

    def assign(self, var: str, expr: str, protected: frozenset[str]) -> str:
        if var in protected:
            var = self.fresh(var, protected)
        self.names.add(var)
        self.lines.append(f"{var} = {expr}")
        return var

    def step(self, step: Call | Op, cur: str, var: str, protected: frozenset[str]) -> str:
        if isinstance(step, Op):
            code = _op_code(step, cur)
            self.w.functional_used |= "F." in code
            return code
        module = self.module(step.target)
        lt = self.layer_type(step.target)
        if lt is None or (not lt.outputs and not lt.self_attention):
            return f"{module}({cur})"
        if lt.self_attention and not cur.isidentifier():  # m(x, x, x): x once, in a variable
            cur = self.assign(var, cur, protected)
        name = step.output if step.output is not None else lt.default_output
        if lt.outputs and name is not None and tuple(lt.outputs[name]) == (0,):  # the book: out, _ = self.rnn(X)
            out = "out" if "out" not in protected and cur != "out" else var
            text = call_code(lt, module, cur, None)[: -len("[0]")]
            self.names.add(out)
            self.lines.append(f"{out}, _ = {text}")
            return out
        return call_code(lt, module, cur, step.output)

    def module(self, target: str) -> str:
        """self.conv1, self.net[0], getattr(self, "block 0")… for a child or grandchild key."""
        expr, nodes = "self", self.block.layers
        parent_is_sequential = False
        for part in target.split("."):
            found = next(((i, n) for i, n in enumerate(nodes) if child_key(n, i) == part), None)
            assert found is not None  # the design was checked
            node = found[1]
            expr = f"{expr}[{part}]" if parent_is_sequential and part.isdigit() else _attribute(expr, part)
            inner = self.w.d.shared.get(node.shared) if isinstance(node, Use) else node
            nodes = inner.layers if isinstance(inner, Block) else ()
            parent_is_sequential = isinstance(inner, Block) and inner.flow is None
            if parent_is_sequential and isinstance(inner, Block) and any(c.name is not None for c in inner.layers):
                parent_is_sequential = False  # written as a class: its children are attributes
        return expr

    def layer_type(self, target: str) -> LayerType | None:
        found = resolve(self.block.layers, target, self.w.d.shared)
        node = found[0] if found else None
        if isinstance(node, Use):
            node = self.w.d.shared[node.shared]
        return REGISTRY[node.type] if isinstance(node, Layer) else None

    def fresh_output(self, flow: Flow) -> bool:
        """Whether a branch ends in a layer whose output may be added to in place (`Y += X`)."""
        if not flow or not isinstance(flow[-1], Call):
            return False
        return fresh_output(self.layer_type(flow[-1].target))

    # -- branches and their merge -----------------------------------------------------------------------

    def branches(self, step: Branches, cur: str, var: str, protected: frozenset[str]) -> str:
        src = cur if cur.isidentifier() else self.assign(var, cur, protected)
        full = [j for j, b in enumerate(step.branches) if b]
        skip = len(full) < len(step.branches)
        inside = protected | {src}
        names: dict[int, str] = {}
        if len(full) == 1:
            names[full[0]] = self.fresh("Y", inside)
        else:
            two_add = step.merge in ("add", "mul") and len(full) == 2 and not skip and src not in protected
            for k, j in enumerate(full):
                if two_add:  # the book's residual with a 1×1 conv: Y = main(X); X = conv3(X); Y += X
                    names[j] = self.fresh("Y", inside) if k == 0 else src
                else:
                    names[j] = self.fresh(f"b{j + 1}", inside)
        results: dict[int, str] = {}
        done: set[str] = set()
        for j in full:
            name = names[j]
            guard = inside | done if name != src else protected | done
            expr = self.chain(step.branches[j], src, name, frozenset(guard - {name}))
            if expr != name:
                self.lines.append(f"{name} = {expr}")
            results[j] = name
            done.add(name)
        operands = [results.get(j, src) for j in range(len(step.branches))]
        if step.merge == "add" and len(operands) == 2 and operands[0] in done:
            first = full[0]
            if operands[0] != src and self.fresh_output(step.branches[first]):
                self.lines.append(f"{operands[0]} += {operands[1]}")  # the book's `Y += X`
                return operands[0]
        if step.merge in ("add", "mul"):
            return (" + " if step.merge == "add" else " * ").join(operands)
        items = ", ".join(operands) + ("," if len(operands) == 1 else "")
        if step.merge == "mean":
            return f"torch.stack(({items})).mean(0)"
        return f"torch.{step.merge}(({items}), dim={step.dim})"


def _is_activation(step: Call | Op) -> bool:
    return isinstance(step, Op) and step.op in _ACTIVATIONS


def _op_code(op: Op, x: str) -> str:
    """A parameter-free operation as forward writes it: F.relu(X), X.mean(dim=1), torch.flatten(X, 1)…"""
    args = op_kwargs(op)
    if op.op in ("mean", "sum"):
        dim = args["dim"]
        if dim is None:
            return f"{x}.{op.op}()"
        dims = tuple(dim) if isinstance(dim, (list, tuple)) else (dim,)
        text = f"dim={dims[0]}" if len(dims) == 1 else f"dim={dims!r}"
        return f"{x}.{op.op}({text}{', keepdim=True' if args['keepdim'] else ''})"
    if op.op == "flatten":
        end = "" if args["end_dim"] == -1 else f", {args['end_dim']}"
        return f"torch.flatten({x}, {args['start_dim']}{end})"
    spec = OPS[op.op]
    defaults = {a.name: a.default for a in spec.args}
    if all(args[k] == defaults[k] for k in args) and "(" in spec.code and all(not a.required for a in spec.args):
        head = spec.code.split("(", 1)[0]
        if head.startswith(("F.", "torch.")):  # F.gelu(X): torch's own defaults
            return f"{head}({x})"
    return spec.code.format(x=x, **{k: _py(list(v) if isinstance(v, tuple) else v) for k, v in args.items()})
