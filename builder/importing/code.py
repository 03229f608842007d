"""`from_code`: pasted PyTorch source → a design, by reading its syntax tree. Nothing in it is ever run.

The source is parsed with `ast.parse` (no exec, eval, compile or import of it) and a small interpreter walks
the parts that describe a network: `nn.Sequential(...)` expressions (nested, an OrderedDict, `add_module` in a
loop over a literal range, f-string names such as f'block {i}'), layers assigned to names (one object used at
two places is one shared layer), `nn.Lazy*`, functions that return blocks (the book's `block1()`), and
`class X(nn.Module)` definitions: `__init__` gives the children, `forward` is read symbolically into a flow
(F.relu, `+`, torch.cat, `.mean(dim)`, `out, _ = self.rnn(x)`, …). The interpreter knows only literals,
PyTorch's layer constructors and the operations a flow expresses; anything else is a DesignError with the line
and column and the reason. Module-level statements it does not need (prints, training loops) are skipped —
never run — but calls that could do harm if run (os.system, eval, open, __import__, …), lambdas and dunder
attribute tricks are refused wherever they appear, so a paste with them is never half-read.
"""

from __future__ import annotations

import ast
import inspect
import math
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..design import Design
from ..errors import DesignError
from ..limits import limits
from ..pysource import parse
from ..registry import REGISTRY, ArgError, check_args
from .flowgraph import ACTIVATIONS, MERGES, T, default_output, self_attention, to_steps, torch_class, tuple_outputs
from .tree import Branchy, Leaf, Node, to_design

_MAX_STEPS = 200_000  # expressions evaluated: a paste is read in well under this
_MAX_CALL_DEPTH = 40  # nested calls of the source's own functions and classes
_MAX_INT = 2**62  # literal arithmetic stays far from anything that could take memory or time

# Names whose use is refused anywhere in the source: running them would execute or reach outside the paste.
_FORBIDDEN_CALLS = {
    "eval": "eval runs text as code",
    "exec": "exec runs text as code",
    "compile": "compile turns text into code",
    "__import__": "__import__ imports modules at run time",
    "open": "open reads or writes files",
    "getattr": "getattr reaches attributes by computed names (an attribute trick)",
    "setattr": "setattr sets attributes by computed names (an attribute trick)",
    "delattr": "delattr removes attributes by computed names (an attribute trick)",
    "globals": "globals exposes the interpreter's state",
    "locals": "locals exposes the interpreter's state",
    "vars": "vars exposes objects' attributes (an attribute trick)",
    "breakpoint": "breakpoint starts a debugger",
    "input": "input reads from the console",
    "exit": "exit stops the interpreter",
    "quit": "quit stops the interpreter",
}
_FORBIDDEN_MODULES = {
    "os", "sys", "subprocess", "shutil", "socket", "importlib", "pathlib", "ctypes", "pickle", "builtins",
    "marshal", "shelve", "signal", "threading", "multiprocessing", "urllib", "requests", "http", "io", "tempfile",
    "glob", "runpy", "code", "inspect", "gc", "types",
}  # fmt: skip
_ALLOWED_DUNDERS = {"__init__"}

_DEFAULT_ALIASES = {
    "torch": "torch",
    "nn": "torch.nn",
    "F": "torch.nn.functional",
    "OrderedDict": "collections.OrderedDict",
    "collections": "collections",
    "math": "math",
}
_TENSOR_MAKERS = {"rand", "randn", "zeros", "ones", "empty", "randint", "full"}


def from_code(source: str, *, name: str | None = None) -> Design:
    """Read PyTorch source text into a design, without running any of it.

    The network is the module the source calls on an input (`net(X)`), else the last module assigned at
    module level, else an instance of the last class defined (when it takes no arguments). The input shape
    comes from `X = torch.rand(2, 20)` (or randn, zeros, randint…) when the source makes one, else from the
    first layer's size. Raises DesignError with line and column for anything it cannot read or refuses.
    """
    return code_lines(source, name=name)[0]


def code_lines(source: str, *, name: str | None = None) -> tuple[Design, dict[str, int]]:
    """`from_code`'s design and, for each layer, the line of the source that makes it, by module key
    ({"2": 4}: the layer whose keys start with "2." is `nn.Linear(...)` on line 4), so a message about a layer
    can point at the code. Raises as `from_code`."""
    if not isinstance(source, str):
        raise DesignError(f"from_code expects the source as text (str), got {type(source).__name__}")
    cap = limits().max_design_chars
    if len(source) > cap:
        raise DesignError(
            f"the source is {len(source):,} characters, over the limit of {cap:,} (BLOCKWORK_MAX_DESIGN_CHARS); "
            f"nothing was read"
        )
    tree = _parse(source)
    _refuse_dangerous(tree)
    reader = _Reader(tree, name)
    design: Design = reader.design()
    return design, reader.lines


# -- parsing and the safety scan ------------------------------------------------------------------------------


def _parse(source: str) -> ast.Module:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings of the paste: errors are reported, warnings are not ours
            return parse(source)  # ast.parse, one thread at a time (builder.pysource)
    except SyntaxError as e:
        where = f"line {e.lineno}, column {e.offset}" if e.lineno else "somewhere"
        raise DesignError(f"{where}: the source is not valid Python: {e.msg}") from None
    except (ValueError, RecursionError, MemoryError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError | MemoryError) else str(e)
        raise DesignError(f"the source cannot be read: {reason}") from None


def _at(node: ast.AST) -> str:
    return f"line {getattr(node, 'lineno', '?')}, column {getattr(node, 'col_offset', -1) + 1}"


def _refused(node: ast.AST, reason: str) -> DesignError:
    return DesignError(f"{_at(node)}: {reason}; refused, nothing was run")


def _refuse_dangerous(tree: ast.Module) -> None:
    """Refuse, wherever they appear, the constructs that could do harm if the paste were run."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in _FORBIDDEN_CALLS:
            raise _refused(node, f"{node.id}: {_FORBIDDEN_CALLS[node.id]}")
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _FORBIDDEN_MODULES:
            raise _refused(node, f"from {node.module} import …: the {node.module} module reaches outside the network")
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("__") and node.attr.endswith("__") and node.attr not in _ALLOWED_DUNDERS:
                raise _refused(node, f".{node.attr}: reaching into Python's internals (an attribute trick)")
            if isinstance(node.value, ast.Name) and node.value.id in _FORBIDDEN_MODULES:
                raise _refused(
                    node, f"{node.value.id}.{node.attr}: the {node.value.id} module reaches outside the network"
                )
        if isinstance(node, ast.Lambda):
            raise _refused(node, "a lambda: Blockwork reads layers and operations, not functions made on the fly")
        if isinstance(node, ast.Name) and node.id.startswith("__") and node.id.endswith("__") and node.id != "__name__":
            raise _refused(node, f"{node.id}: reaching into Python's internals")


# -- values of the interpreter --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Path:
    """A dotted name of a library object: torch.nn.Linear, torch.nn.functional.relu, collections.OrderedDict."""

    path: str


@dataclass(eq=False)
class _Seq:
    """An nn.Sequential or nn.ModuleList being assembled: children by key in registration order."""

    kind: str  # "Sequential" | "ModuleList"
    children: list[tuple[str, Any]] = field(default_factory=list)
    label: str | None = None

    def add(self, key: str, module: Any, node: ast.AST) -> None:
        _check_child_name(key, node)
        for i, (k, _) in enumerate(self.children):
            if k == key:  # add_module with a taken name replaces the child (torch's behaviour)
                self.children[i] = (key, module)
                return
        self.children.append((key, module))


@dataclass(eq=False)
class _Layer:
    """A registry layer made by nn.<Type>(...): arguments already checked against the registry."""

    type: str
    args: dict[str, Any]
    label: str | None = None
    inplace: bool = False  # nn.ReLU(inplace=True): the design computes out of place; forward checks it may
    line: int | None = None  # the source line of its constructor call


@dataclass(eq=False)
class _Param:
    """nn.Parameter(torch.randn(a, b)): only its shape matters (the chapter's MyLinear)."""

    shape: tuple[int, ...]


@dataclass(frozen=True)
class _TensorSpec:
    """torch.rand(2, 20) and friends: a shape and dtype (the example input, or a parameter's start)."""

    shape: tuple[int, ...]
    dtype: str


@dataclass(eq=False)
class _Class:
    node: ast.ClassDef
    base: _Class | None  # a user class it derives from (None: nn.Module)

    def method(self, name: str) -> ast.FunctionDef | None:
        for stmt in self.node.body:
            if isinstance(stmt, ast.FunctionDef) and stmt.name == name:
                return stmt
        return self.base.method(name) if self.base is not None else None


@dataclass(eq=False)
class _Instance:
    """An instance of a class of the source: its children (registered modules) and plain attributes."""

    cls: _Class
    children: list[tuple[str, Any]] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, _Param] = field(default_factory=dict)
    label: str | None = None

    @property
    def name(self) -> str:
        return self.cls.node.name


@dataclass(frozen=True)
class _Function:
    node: ast.FunctionDef


@dataclass(frozen=True)
class _Bound:
    """A method looked up on a value: `net.add_module`, `x.mean`, `layers.append`."""

    owner: Any
    name: str


class _Super:
    """super() inside __init__: only super().__init__() is read (and does nothing)."""


# -- the reader ----------------------------------------------------------------------------------------------


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Reader:
    def __init__(self, tree: ast.Module, name: str | None) -> None:
        self.tree = tree
        self.name = name
        self.steps = 0
        self.depth = 0
        self.aliases = dict(_DEFAULT_ALIASES)
        self.globals: dict[str, Any] = {}
        self.candidates: list[tuple[str, Any]] = []  # (how it was found, module) at module level, in order
        self.called: list[tuple[Any, Any]] = []  # (module, input) of `net(X)` at module level
        self.skipped: list[str] = []  # module-level statements not read, with the reason
        self.input_spec: tuple[_TensorSpec, str] | None = None
        self.made_at: dict[int, int] = {}  # id(Leaf) -> the source line that made its layer
        self.lines: dict[str, int] = {}  # module key -> that line (see code_lines)

    # -- module level ---------------------------------------------------------------------------------

    def design(self) -> Any:
        for stmt in self.tree.body:
            self.module_statement(stmt)
        net, how = self.network()
        top = self.convert(net, net_label="net")
        shape, dtype, where = self.input_shape(net, top)
        what = f"Read from pasted code (never run): {how}, input {tuple(shape)}{where}."
        if self.skipped:
            what += " Not read: " + "; ".join(self.skipped[:8]) + ("; …" if len(self.skipped) > 8 else "") + "."
        if isinstance(top, Leaf):
            top = Branchy(children=[("0", top)])
            what += " The single layer is wrapped in nn.Sequential (its keys start with '0.')."
        self.lines = {k: self.made_at[id(n)] for k, n in top.walk() if isinstance(n, Leaf) and id(n) in self.made_at}
        name = self.name or (net.name if isinstance(net, _Instance) else getattr(net, "label", None))
        return to_design(top, name=name or "imported", input_shape=shape, input_dtype=dtype, description=what)

    def module_statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            self.imports(stmt)
        elif isinstance(stmt, ast.ClassDef):
            self.globals[stmt.name] = self.class_def(stmt)
        elif isinstance(stmt, ast.FunctionDef):
            self.globals[stmt.name] = _Function(stmt)
        elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.Expr | ast.For | ast.AugAssign | ast.If):
            if self.relevant(stmt):  # network-making statements are read strictly: their errors are the user's
                self.statement(stmt, self.globals, None)
                self.note_candidates(stmt)
            else:
                try:
                    self.statement(stmt, self.globals, None)
                    self.note_candidates(stmt)
                except DesignError as e:
                    if not isinstance(stmt, ast.Expr):  # prints and looks at results: nothing to report
                        self.skipped.append(f"line {stmt.lineno} ({str(e).split(': ', 1)[-1][:80]})")
        elif not isinstance(stmt, ast.Pass):
            self.skipped.append(f"line {stmt.lineno} ({type(stmt).__name__.lower()} statement)")

    def relevant(self, stmt: ast.stmt) -> bool:
        """A statement that makes or changes a network: it mentions nn.*, a class or function of the source,
        or a module already made."""
        for node in ast.walk(stmt):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and self.aliases.get(node.value.id, "").startswith("torch.nn")
                and node.attr[:1].isupper()
            ):
                return True
            if isinstance(node, ast.Name) and isinstance(self.globals.get(node.id), _Class | _Function):
                return True
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_module":
                return True
        return False

    def note_candidates(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    value = self.globals.get(target.id)
                    if _is_module(value):
                        self.candidates.append((f"`{target.id}` (line {stmt.lineno})", value))
                    elif isinstance(value, _TensorSpec):
                        self.input_spec = (value, f" from `{target.id}` (line {stmt.lineno})")
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            pass  # net(X) is noted by the call itself

    def imports(self, stmt: ast.Import | ast.ImportFrom) -> None:
        """Only the names: `import torch.nn as nn` makes `nn` mean torch.nn. Nothing is imported."""
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    self.aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    self.aliases[top] = top
        else:
            module = stmt.module or ""
            for alias in stmt.names:
                self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}" if module else alias.name

    def class_def(self, node: ast.ClassDef) -> _Class:
        base: _Class | None = None
        for b in node.bases:
            value = self.expr(b, self.globals, None)
            if isinstance(value, _Class):
                base = value
            elif not (isinstance(value, _Path) and value.path == "torch.nn.Module"):
                raise _error(b, f"class {node.name}: only subclasses of nn.Module (or of the source's own modules)")
        if not node.bases:
            raise _error(node, f"class {node.name}: not a subclass of nn.Module")
        return _Class(node, base)

    def network(self) -> tuple[Any, str]:
        if self.called:
            module, x = self.called[-1]
            if isinstance(x, _TensorSpec):
                self.input_spec = (x, " from the input it is called on")
            label = getattr(module, "label", None)
            return module, f"`{label}`" if label else "the module called on the input"
        if self.candidates:
            how, module = self.candidates[-1]
            return module, how
        classes = [v for v in self.globals.values() if isinstance(v, _Class)]
        if classes:
            cls = classes[-1]
            init = cls.method("__init__")
            if init is not None:
                required = [a.arg for a in init.args.args[1 : len(init.args.args) - len(init.args.defaults)]]
                if required:
                    raise _error(
                        cls.node,
                        f"class {cls.node.name} needs arguments ({', '.join(required)}); add a line that makes "
                        f"the network, e.g. net = {cls.node.name}(...)",
                    )
            return self.instantiate(cls, [], {}, cls.node), f"class {cls.node.name}"
        raise DesignError(
            "found no network in the source: write an nn.Sequential(...) expression, assign one (net = ...), or "
            "define a class X(nn.Module)"
        )

    def input_shape(self, net: Any, top: Node) -> tuple[tuple[int, ...], str, str]:
        if self.input_spec is not None:
            spec, where = self.input_spec
            if not spec.shape:
                raise DesignError("the input tensor has no dimensions; a network takes a batch")
            return spec.shape, spec.dtype, where
        return _first_input(top)

    # -- statements -------------------------------------------------------------------------------------

    def block(self, body: list[ast.stmt], env: dict[str, Any], fwd: _Forward | None) -> None:
        for stmt in body:
            self.statement(stmt, env, fwd)

    def statement(self, stmt: ast.stmt, env: dict[str, Any], fwd: _Forward | None) -> None:
        self.tick(stmt)
        if isinstance(stmt, ast.Assign):
            value = self.expr(stmt.value, env, fwd)
            for target in stmt.targets:
                self.assign(target, value, env, fwd)
        elif isinstance(stmt, ast.AnnAssign):
            if stmt.value is not None:
                self.assign(stmt.target, self.expr(stmt.value, env, fwd), env, fwd)
        elif isinstance(stmt, ast.AugAssign):
            current = self.expr(_load(stmt.target), env, fwd)
            value = self.binop(stmt.op, current, self.expr(stmt.value, env, fwd), stmt, fwd)
            self.assign(stmt.target, value, env, fwd)
        elif isinstance(stmt, ast.Expr):
            if isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                return  # a docstring
            self.expr(stmt.value, env, fwd)
        elif isinstance(stmt, ast.Return):
            raise _Return(self.expr(stmt.value, env, fwd) if stmt.value is not None else None)
        elif isinstance(stmt, ast.If):
            test = self.expr(stmt.test, env, fwd)
            if isinstance(test, T):
                raise _error(stmt, "an if on a tensor's value: data-dependent control flow, which a flow cannot hold")
            self.block(stmt.body if _truthy(test) else stmt.orelse, env, fwd)
        elif isinstance(stmt, ast.For):
            self.for_loop(stmt, env, fwd)
        elif isinstance(stmt, ast.While):
            raise _error(stmt, "a while loop: data-dependent control flow, which a design cannot hold")
        elif isinstance(stmt, ast.Pass | ast.Assert):
            return
        elif isinstance(stmt, ast.Break):
            raise _Break
        elif isinstance(stmt, ast.Continue):
            raise _Continue
        else:
            raise _error(stmt, f"a {type(stmt).__name__.lower()} statement is not something a design is read from")

    def for_loop(self, stmt: ast.For, env: dict[str, Any], fwd: _Forward | None) -> None:
        if stmt.orelse:
            raise _error(stmt, "for … else is not read")
        items = self.iterate(stmt.iter, env, fwd, "a for loop")
        for item in items:
            self.assign(stmt.target, item, env, fwd)
            try:
                self.block(stmt.body, env, fwd)
            except _Break:
                break
            except _Continue:
                continue

    def iterate(self, node: ast.expr, env: dict[str, Any], fwd: _Forward | None, what: str) -> list[Any]:
        value = self.expr(node, env, fwd)
        if isinstance(value, _Seq | _Instance) or _is_module_list(value):
            return [m for _, m in _children(value)]
        if isinstance(value, list | tuple | range | dict):
            items = list(value)
            if len(items) > limits().max_layers:
                raise _error(
                    node, f"{what} of {len(items):,} rounds, more than a design's {limits().max_layers:,} layers"
                )
            return items
        if isinstance(value, T):
            raise _error(node, f"{what} over a tensor: data-dependent control flow, which a design cannot hold")
        raise _error(
            node,
            f"{what} over data the source does not spell out (Blockwork reads loops over literal "
            f"ranges, tuples and lists, and over a block's children)",
        )

    def assign(self, target: ast.expr, value: Any, env: dict[str, Any], fwd: _Forward | None) -> None:
        if isinstance(target, ast.Name):
            env[target.id] = value
            if _is_module(value) and getattr(value, "label", None) is None:
                value.label = target.id
            return
        if isinstance(target, ast.Tuple | ast.List):
            items = value.items if isinstance(value, _TupleT) else value
            if not isinstance(items, tuple | list) or len(items) != len(target.elts):
                raise _error(target, "unpacking does not match the value's length")
            for t, v in zip(target.elts, items, strict=True):
                self.assign(t, v, env, fwd)
            return
        if isinstance(target, ast.Attribute):
            owner = self.expr(target.value, env, fwd)
            if isinstance(owner, _Instance) and fwd is None:
                self.set_attribute(owner, target.attr, value, target)
                return
            raise _error(target, "setting attributes is read only on self in __init__")
        if isinstance(target, ast.Subscript):
            owner = self.expr(target.value, env, fwd)
            key = self.expr(target.slice, env, fwd)
            if isinstance(owner, list | dict) and not isinstance(key, slice):
                try:
                    owner[key] = value
                except (IndexError, TypeError, KeyError):
                    raise _error(target, f"cannot set item {key!r}") from None
                return
            raise _error(target, "setting items is read only on plain lists and dicts")
        raise _error(target, f"cannot assign to a {type(target).__name__}")

    def set_attribute(self, owner: _Instance, attr: str, value: Any, node: ast.AST) -> None:
        if isinstance(value, _Param):
            owner.params[attr] = value
            return
        owner.children = [(k, m) for k, m in owner.children if k != attr]
        owner.attrs.pop(attr, None)
        if _is_module(value):
            owner.children.append((attr, value))
        else:
            owner.attrs[attr] = value

    # -- expressions --------------------------------------------------------------------------------------

    def tick(self, node: ast.AST) -> None:
        self.steps += 1
        if self.steps > _MAX_STEPS:
            raise _error(node, f"reading the source took more than {_MAX_STEPS:,} steps; refused")

    def expr(self, node: ast.expr, env: dict[str, Any], fwd: _Forward | None) -> Any:
        self.tick(node)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bytes | complex) or node.value is Ellipsis:
                raise _error(node, f"a {type(node.value).__name__} constant is not read")
            return node.value
        if isinstance(node, ast.Name):
            return self.name_value(node, env)
        if isinstance(node, ast.Attribute):
            return self.attribute(node, env, fwd)
        if isinstance(node, ast.Call):
            return self.call(node, env, fwd)
        if isinstance(node, ast.Tuple):
            return tuple(self.items(node.elts, env, fwd))
        if isinstance(node, ast.List):
            return self.items(node.elts, env, fwd)
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise _error(node, "** in a dict literal is not read")
            keys = [k for k in node.keys if k is not None]
            return {self.expr(k, env, fwd): self.expr(v, env, fwd) for k, v in zip(keys, node.values, strict=True)}
        if isinstance(node, ast.JoinedStr):
            return self.fstring(node, env, fwd)
        if isinstance(node, ast.BinOp):
            return self.binop(node.op, self.expr(node.left, env, fwd), self.expr(node.right, env, fwd), node, fwd)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, self.expr(node.operand, env, fwd))
        if isinstance(node, ast.BoolOp):
            return self.boolop(node, env, fwd)
        if isinstance(node, ast.Compare):
            return self.compare(node, env, fwd)
        if isinstance(node, ast.IfExp):
            test = self.expr(node.test, env, fwd)
            if isinstance(test, T):
                raise _error(node, "a choice on a tensor's value: data-dependent control flow")
            return self.expr(node.body if _truthy(test) else node.orelse, env, fwd)
        if isinstance(node, ast.Subscript):
            return self.subscript(node, env, fwd)
        if isinstance(node, ast.Slice):
            parts = [self.expr(p, env, fwd) if p is not None else None for p in (node.lower, node.upper, node.step)]
            if any(p is not None and not isinstance(p, int) for p in parts):
                raise _error(node, "slices take whole numbers")
            return slice(*parts)
        if isinstance(node, ast.ListComp | ast.GeneratorExp | ast.SetComp):
            return self.comprehension(node, env, fwd)
        if isinstance(node, ast.Starred):
            raise _error(node, "* is read only in a call's arguments")
        raise _error(node, f"a {type(node).__name__} expression is not something a design is read from")

    def items(self, elts: list[ast.expr], env: dict[str, Any], fwd: _Forward | None) -> list[Any]:
        out: list[Any] = []
        for e in elts:
            if isinstance(e, ast.Starred):
                out += self.iterate(e.value, env, fwd, "*")
            else:
                out.append(self.expr(e, env, fwd))
        return out

    def name_value(self, node: ast.Name, env: dict[str, Any]) -> Any:
        if node.id in env:
            return env[node.id]
        if node.id in self.globals:
            return self.globals[node.id]
        if node.id in self.aliases:
            return _Path(self.aliases[node.id])
        if node.id in _BUILTINS:
            return _Path(f"builtins.{node.id}")
        raise _error(node, f"{node.id} is not defined in the source (or not something Blockwork reads)")

    def attribute(self, node: ast.Attribute, env: dict[str, Any], fwd: _Forward | None) -> Any:
        owner = self.expr(node.value, env, fwd)
        if isinstance(owner, _Path):
            return _Path(f"{owner.path}.{node.attr}")
        if isinstance(owner, _Instance):
            for key, child in owner.children:
                if key == node.attr:
                    return child
            if node.attr in owner.attrs:
                return owner.attrs[node.attr]
            if node.attr in owner.params:
                raise _error(node, f"{owner.name}.{node.attr} is a parameter of a class Blockwork does not know")
            if owner.cls.method(node.attr) is not None or node.attr in ("add_module", "register_module", "children"):
                return _Bound(owner, node.attr)
            raise _error(node, f"{owner.name} has no attribute {node.attr!r} (set in __init__)")
        if isinstance(owner, T | _TupleT | _Output):
            if node.attr == "shape":
                return _ShapeOf(owner)
            return _Bound(owner, node.attr)
        if isinstance(owner, _Seq | _Layer | list | dict | _ShapeOf):
            return _Bound(owner, node.attr)
        if isinstance(owner, _Super):
            return _Bound(owner, node.attr)
        raise _error(node, f".{node.attr} of {_describe(owner)} is not read")

    def fstring(self, node: ast.JoinedStr, env: dict[str, Any], fwd: _Forward | None) -> str:
        out = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                out.append(str(part.value))
            elif isinstance(part, ast.FormattedValue):
                if part.format_spec is not None or part.conversion not in (-1, None):
                    raise _error(part, "f-string formats are not read")
                value = self.expr(part.value, env, fwd)
                if not isinstance(value, int | str | float | bool):
                    raise _error(part, f"an f-string of {_describe(value)}")
                out.append(str(value))
        return "".join(out)

    def binop(self, op: ast.operator, a: Any, b: Any, node: ast.AST, fwd: _Forward | None) -> Any:
        if _tensorish(a) or _tensorish(b):
            if fwd is None:
                raise _error(node, "tensor arithmetic outside forward")
            return fwd.arithmetic(op, a, b, node)
        if isinstance(a, str) and isinstance(b, str) and isinstance(op, ast.Add):
            return a + b
        if isinstance(a, list | tuple) and isinstance(b, list | tuple) and isinstance(op, ast.Add):
            if type(a) is not type(b):
                raise _error(node, "adding a list and a tuple")
            return [*a, *b] if isinstance(a, list) else (*a, *b)
        if isinstance(a, list | tuple) and isinstance(b, int) and isinstance(op, ast.Mult):
            if len(a) * b > limits().max_layers:
                raise _error(node, "a list repeated into more items than a design's layers")
            return a * b
        if not (_number(a) and _number(b)):
            raise _error(node, f"{_describe(a)} {_OPS.get(type(op), '?')} {_describe(b)} is not read")
        try:
            if isinstance(op, ast.Pow):
                if abs(b) > 64:
                    raise _error(node, "a power with an exponent over 64")
                result = a**b
            else:
                fn = _ARITHMETIC.get(type(op))
                if fn is None:
                    raise _error(node, f"the operator {_OPS.get(type(op), type(op).__name__)} is not read")
                result = fn(a, b)
        except ZeroDivisionError:
            raise _error(node, "division by zero") from None
        if isinstance(result, int) and abs(result) > _MAX_INT:
            raise _error(node, "a number too large for a layer size")
        if isinstance(result, float) and not math.isfinite(result):
            raise _error(node, "a number that is not finite")
        return result

    def unary(self, node: ast.UnaryOp, value: Any) -> Any:
        if isinstance(node.op, ast.Not):
            if isinstance(value, T):
                raise _error(node, "not on a tensor: data-dependent control flow")
            return not _truthy(value)
        if not _number(value):
            raise _error(node, f"a sign on {_describe(value)}")
        return -value if isinstance(node.op, ast.USub) else (+value if isinstance(node.op, ast.UAdd) else ~value)

    def boolop(self, node: ast.BoolOp, env: dict[str, Any], fwd: _Forward | None) -> Any:
        result: Any = None
        for v in node.values:
            result = self.expr(v, env, fwd)
            if isinstance(result, T):
                raise _error(node, "and/or on a tensor: data-dependent control flow")
            if isinstance(node.op, ast.And) and not _truthy(result):
                return result
            if isinstance(node.op, ast.Or) and _truthy(result):
                return result
        return result

    def compare(self, node: ast.Compare, env: dict[str, Any], fwd: _Forward | None) -> bool:
        left = self.expr(node.left, env, fwd)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.expr(right_node, env, fwd)
            if isinstance(left, T) or isinstance(right, T):
                raise _error(node, "a comparison of tensor values: data-dependent control flow")
            if isinstance(op, ast.Is | ast.IsNot):
                ok = (left is right) if isinstance(op, ast.Is) else (left is not right)
            else:
                if not all(isinstance(v, int | float | str | bool | tuple | type(None)) for v in (left, right)):
                    raise _error(node, f"comparing {_describe(left)} with {_describe(right)}")
                try:
                    ok = _COMPARE[type(op)](left, right)
                except TypeError:
                    raise _error(node, f"comparing {_describe(left)} with {_describe(right)}") from None
            if not ok:
                return False
            left = right
        return True

    def subscript(self, node: ast.Subscript, env: dict[str, Any], fwd: _Forward | None) -> Any:
        owner = self.expr(node.value, env, fwd)
        if isinstance(owner, T | _TupleT | _Output):
            assert fwd is not None
            return fwd.index(owner, node.slice, env, node)
        key = self.expr(node.slice, env, fwd)
        if isinstance(owner, _ShapeOf):
            return _Size(owner.of, key) if isinstance(key, int) else _error_raise(node, "a slice of a shape")
        if isinstance(owner, _Seq):
            if isinstance(key, int):
                try:
                    return owner.children[key][1]
                except IndexError:
                    raise _error(node, f"index {key} is outside the block's {len(owner.children)} children") from None
            raise _error(node, "slicing a block makes a new one in PyTorch; write the layers out instead")
        if isinstance(owner, list | tuple | dict | str | range):
            try:
                return owner[key]
            except (IndexError, KeyError, TypeError):
                raise _error(node, f"{_describe(owner)} has no item {key!r}") from None
        raise _error(node, f"indexing {_describe(owner)} is not read")

    def comprehension(
        self, node: ast.ListComp | ast.GeneratorExp | ast.SetComp, env: dict[str, Any], fwd: _Forward | None
    ) -> list[Any]:
        out: list[Any] = []

        def loop(i: int, scope: dict[str, Any]) -> None:
            if i == len(node.generators):
                out.append(self.expr(node.elt, scope, fwd))
                return
            gen = node.generators[i]
            if gen.is_async:
                raise _error(node, "async comprehensions are not read")
            for item in self.iterate(gen.iter, scope, fwd, "a comprehension"):
                inner = dict(scope)
                self.assign(gen.target, item, inner, fwd)
                if all(_truthy(self.expr(c, inner, fwd)) for c in gen.ifs):
                    loop(i + 1, inner)

        loop(0, dict(env))
        return out

    # -- calls ------------------------------------------------------------------------------------------

    def call(self, node: ast.Call, env: dict[str, Any], fwd: _Forward | None) -> Any:
        fn = self.expr(node.func, env, fwd)
        args = self.items(node.args, env, fwd)
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise _error(kw, "**kwargs in a call is not read")
            kwargs[kw.arg] = self.expr(kw.value, env, fwd)
        if fwd is not None:
            result = fwd.call(fn, args, kwargs, node)
            if result is not _NOT_FLOW:
                return result
        if isinstance(fn, _Path):
            return self.library_call(fn.path, args, kwargs, node)
        if isinstance(fn, _Class):
            return self.instantiate(fn, args, kwargs, node)
        if isinstance(fn, _Function):
            return self.call_function(fn.node, args, kwargs, node, None)
        if isinstance(fn, _Bound):
            return self.method(fn, args, kwargs, node, fwd)
        if _is_module(fn):
            if fwd is None and args and isinstance(args[0], _TensorSpec):
                self.called.append((fn, args[0]))
                return None
            raise _error(node, "calling a module outside forward")
        raise _error(node, f"calling {_describe(fn)} is not read")

    def library_call(self, path: str, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> Any:
        short = path.rsplit(".", 1)[-1]
        if path.startswith("builtins."):
            return self.builtin(short, args, kwargs, node)
        if path == "collections.OrderedDict":
            if kwargs:
                return OrderedDict(kwargs)
            if not args:
                return OrderedDict()
            pairs = args[0]
            if isinstance(pairs, dict):
                return OrderedDict(pairs)
            if not isinstance(pairs, list | tuple) or not all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
                raise _error(node, "OrderedDict takes a list of (name, module) pairs")
            return OrderedDict(pairs)
        if path in ("torch.nn.Parameter", "torch.nn.parameter.Parameter"):
            return self.parameter(args, node)
        if path.startswith("torch.nn.") and path.count(".") == 2:
            return self.layer(short, args, kwargs, node)
        if path.startswith("torch.") and path.count(".") == 1 and short in _TENSOR_MAKERS:
            return _tensor_spec(short, args, kwargs, node)
        raise _error(node, f"{path} is not a PyTorch layer or operation Blockwork reads")

    def builtin(self, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> Any:
        if kwargs and name not in ("enumerate", "sum"):
            raise _error(node, f"{name}() with keywords is not read")
        try:
            if name == "range":
                if not all(isinstance(a, int) and not isinstance(a, bool) for a in args) or not 1 <= len(args) <= 3:
                    raise _error(node, "range() takes literal whole numbers")
                r = range(*args)
                if len(r) > limits().max_layers:
                    raise _error(
                        node, f"range of {len(r):,} rounds, more than a design's {limits().max_layers:,} layers"
                    )
                return r
            if name == "len":
                (value,) = args
                return len(_children(value)) if _is_module(value) else len(value)
            if name in ("enumerate", "zip", "reversed", "sorted"):
                seqs = [list(a) if not _is_module(a) else [m for _, m in _children(a)] for a in args]
                return list(_ITERATORS[name](*seqs, **kwargs))
            if name in ("tuple", "list"):
                items = (
                    []
                    if not args
                    else (list(args[0]) if not _is_module(args[0]) else [m for _, m in _children(args[0])])
                )
                return tuple(items) if name == "tuple" else items
            if name in ("int", "float", "str", "bool", "abs", "min", "max", "sum", "round", "divmod"):
                if not all(isinstance(a, int | float | str | bool | list | tuple | range) for a in args):
                    raise _error(node, f"{name}() of {_describe(args[0]) if args else 'nothing'}")
                return _BUILTINS[name](*args, **kwargs)
            if name in ("print", "isinstance", "type", "hasattr", "super"):
                if name == "super":
                    return _Super()
                raise _error(node, f"{name}() is not read")
        except DesignError:
            raise
        except (TypeError, ValueError) as e:
            raise _error(node, f"{name}(): {e}") from None
        raise _error(node, f"{name}() is not read")

    def layer(self, type_name: str, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> Any:
        if type_name == "Sequential":
            seq = _Seq("Sequential")
            if len(args) == 1 and isinstance(args[0], OrderedDict | dict):
                for key, module in args[0].items():
                    if not isinstance(key, str) or not _is_module(module):
                        raise _error(node, "nn.Sequential(OrderedDict(...)) takes (name, module) pairs")
                    seq.add(key, module, node)
                return seq
            for i, module in enumerate(args):
                if not _is_module(module):
                    raise _error(node, f"nn.Sequential's argument {i} is {_describe(module)}, not a layer")
                seq.children.append((str(i), module))
            if kwargs:
                raise _error(node, "nn.Sequential takes no keyword arguments")
            return seq
        if type_name == "ModuleList":
            seq = _Seq("ModuleList")
            for i, module in enumerate(list(args[0]) if args else []):
                if not _is_module(module):
                    raise _error(node, f"nn.ModuleList's item {i} is {_describe(module)}, not a layer")
                seq.children.append((str(i), module))
            return seq
        lt = REGISTRY.get(type_name)
        if lt is None:
            raise _error(node, f"nn.{type_name} is not a layer type Blockwork has{_did_you_mean(type_name)}")
        given = _bind(lt, args, kwargs, node)
        inplace = given.pop("inplace", False) is True and "inplace" not in lt.arg_index
        try:
            check_args(lt, given, "")
        except ArgError as e:  # "<path>.out_features (Linear): must be at least 1, got 0"
            reason = str(e).split(": ", 1)[-1]
            raise _error(
                node, f"nn.{type_name}({e.arg}=…): {reason}" if e.arg else f"nn.{type_name}: {reason}"
            ) from None
        return _Layer(type_name, given, inplace=inplace, line=getattr(node, "lineno", None))

    def parameter(self, args: list[Any], node: ast.Call) -> _Param:
        if len(args) != 1 or not isinstance(args[0], _TensorSpec):
            raise _error(node, "nn.Parameter of something other than torch.randn(...)/zeros(...) is not read")
        return _Param(args[0].shape)

    def method(self, fn: _Bound, args: list[Any], kwargs: dict[str, Any], node: ast.Call, fwd: _Forward | None) -> Any:
        owner, name = fn.owner, fn.name
        if isinstance(owner, _Super):
            if name == "__init__":
                return None
            raise _error(node, f"super().{name} is not read")
        if isinstance(owner, _Seq | _Instance) and name in ("add_module", "register_module"):
            if len(args) != 2 or not isinstance(args[0], str) or not _is_module(args[1]):
                raise _error(node, f"{name} takes a name (text) and a layer")
            if isinstance(owner, _Seq):
                owner.add(args[0], args[1], node)
            else:
                _check_child_name(args[0], node)
                self.set_attribute(owner, args[0], args[1], node)
            return None
        if isinstance(owner, _Seq) and name == "append":
            if len(args) != 1 or not _is_module(args[0]):
                raise _error(node, "append takes one layer")
            owner.children.append((str(len(owner.children)), args[0]))
            return owner
        if isinstance(owner, _Instance):
            method = owner.cls.method(name)
            if method is not None and name not in ("forward", "__init__"):
                return self.call_function(method, [owner, *args], kwargs, node, fwd)
        if isinstance(owner, list) and name in ("append", "extend", "insert"):
            if name == "append":
                owner.append(args[0])
            elif name == "extend":
                owner.extend(list(args[0]))
            else:
                owner.insert(args[0], args[1])
            if len(owner) > limits().max_layers:
                raise _error(node, f"a list of more than {limits().max_layers:,} items")
            return None
        if isinstance(owner, dict) and name in ("items", "keys", "values"):
            return list(getattr(owner, name)())
        raise _error(node, f".{name}() of {_describe(owner)} is not read")

    def call_function(
        self, fn: ast.FunctionDef, args: list[Any], kwargs: dict[str, Any], node: ast.AST, fwd: _Forward | None
    ) -> Any:
        if fn.decorator_list:
            raise _error(fn, f"{fn.name}: decorated functions are not read")
        self.depth += 1
        if self.depth > _MAX_CALL_DEPTH:
            raise _error(node, f"calls nest more than {_MAX_CALL_DEPTH} deep (recursion?)")
        try:
            env = _bind_arguments(fn, args, kwargs, node, self, fwd)
            try:
                self.block(fn.body, env, fwd)
            except _Return as r:
                return r.value
            return None
        finally:
            self.depth -= 1

    def instantiate(self, cls: _Class, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> Any:
        inst = _Instance(cls)
        init = cls.method("__init__")
        if init is not None:
            self.call_function(init, [inst, *args], kwargs, node, None)
        elif args or kwargs:
            raise _error(node, f"{cls.node.name} takes no arguments")
        custom = REGISTRY.get(cls.node.name)
        if custom is not None and custom.category == "Custom":
            return self.custom_layer(inst, node)
        if inst.params:
            first = next(iter(inst.params))
            raise _error(
                node,
                f"class {inst.name} holds its own parameter {first!r}; a design holds Blockwork's layers "
                f"(among them the chapter's MyLinear), not new kinds of layer",
            )
        if cls.method("forward") is None:
            raise _error(cls.node, f"class {inst.name} has no forward")
        return inst

    def custom_layer(self, inst: _Instance, node: ast.AST) -> _Layer:
        """The chapter's MyLinear / CenteredLayer, recognised by name and checked by their parameters."""
        name = inst.name
        if name == "MyLinear":
            w, b = inst.params.get("weight"), inst.params.get("bias")
            if w is None or b is None or len(w.shape) != 2 or b.shape != (w.shape[1],) or inst.children:
                raise _error(
                    node, "a class named MyLinear that is not the chapter's (weight (in, units), bias (units,))"
                )
            return _Layer("MyLinear", {"in_units": w.shape[0], "units": w.shape[1]})
        if inst.params or inst.children:
            raise _error(node, f"a class named {name} that is not the chapter's (it holds tensors)")
        return _Layer(name, {})

    # -- conversion to the design tree ------------------------------------------------------------------

    def convert(self, value: Any, net_label: str | None = None) -> Node:
        memo: dict[int, Node] = {}

        def node(v: Any) -> Node:
            if id(v) in memo:
                return memo[id(v)]
            if isinstance(v, _Layer):
                out: Node = Leaf(v.type, _json_args(v.args), label=v.label)
                if v.line is not None:
                    self.made_at[id(out)] = v.line
            elif isinstance(v, _Seq):
                out = Branchy(label=v.label)
                memo[id(v)] = out
                out.children = [(k, node(m)) for k, m in v.children]
            elif isinstance(v, _Instance):
                out = Branchy(label=v.label, cls=v.name)
                memo[id(v)] = out
                out.children = [(k, node(m)) for k, m in v.children]
                out.flow = _Forward(self, v).flow()
            else:
                raise DesignError(f"{_describe(v)} is not a layer")
            memo[id(v)] = out
            return out

        return node(value)


# -- forward, read symbolically ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TupleT:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class _ShapeOf:
    of: Any


@dataclass(frozen=True)
class _Size:
    """x.shape[i] / x.size(i): a size known only when the network runs (used in reshape: the batch)."""

    of: Any
    dim: int


_NOT_FLOW = object()


class _Forward:
    """Reads an instance's forward on a symbolic input: every child call and operation becomes a step."""

    def __init__(self, reader: _Reader, inst: _Instance) -> None:
        self.reader = reader
        self.inst = inst
        self.keys: dict[int, str] = {}
        self.in_place: list[tuple[T, ast.AST]] = []
        for key, child in _walk_children(inst):
            self.keys.setdefault(id(child), key)

    def flow(self) -> list[Any]:
        forward = self.inst.cls.method("forward")
        assert forward is not None
        positional = forward.args.args[1:]
        if not positional:
            raise _error(forward, f"{self.inst.name}.forward takes no input")
        required = len(positional) - len(forward.args.defaults)
        if required > 1 or forward.args.vararg or forward.args.kwonlyargs:
            raise _error(forward, f"{self.inst.name}.forward takes more than one input; a flow has one")
        x = T("input")
        result = self.reader.call_function(forward, [self.inst, x], {}, forward, self)
        if isinstance(result, _TupleT):
            raise _error(forward, f"{self.inst.name}.forward returns a tuple; a flow gives one tensor")
        if not isinstance(result, T):
            raise _error(forward, f"{self.inst.name}.forward does not return a tensor made from its input")
        self.check_in_place(result)
        return to_steps(result, x, lambda reason: _error(forward, reason))

    def check_in_place(self, result: T) -> None:
        """A layer made with inplace=True changes its input: fine when nothing else uses that tensor (the design
        computes it out of place, with the same result), refused when something does."""
        users: dict[int, int] = {}
        seen: set[int] = set()
        stack = [result]
        while stack:
            t = stack.pop()
            if id(t) in seen:
                continue
            seen.add(id(t))
            for source in (t.parent, *t.parts) if t.parent is not None else t.parts:
                users[id(source)] = users.get(id(source), 0) + 1
                stack.append(source)
        for out, node in self.in_place:
            if out.parent is not None and users.get(id(out.parent), 0) > 1:
                raise _error(
                    node,
                    f"{out.step} (inplace=True) changes a tensor that is used again; the design computes it "
                    f"out of place, which would change the result",
                )

    # -- calls in forward ----------------------------------------------------------------------------

    def call(self, fn: Any, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> Any:
        if _is_module(fn):
            return self.call_module(fn, args, kwargs, node)
        if isinstance(fn, _Path) and fn.path.startswith("torch."):
            return self.library(fn.path, args, kwargs, node)
        if isinstance(fn, _Bound) and isinstance(fn.owner, T | _TupleT | _Output):
            return self.tensor_method(fn.owner, fn.name, args, kwargs, node)
        if isinstance(fn, _Bound) and isinstance(fn.owner, _Instance) and fn.name == "children":
            return [m for _, m in fn.owner.children]
        return _NOT_FLOW

    def call_module(self, module: Any, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> Any:
        key = self.keys.get(id(module))
        if key is None:
            raise _error(node, f"forward calls {_describe(module)}, which is not a child of {self.inst.name}")
        if not args or not _tensorish(args[0]):
            raise _error(node, f"{key} is called on {_describe(args[0]) if args else 'nothing'}, not a tensor")
        args = [self.value(a, node) if _tensorish(a) else a for a in args]
        kind = module.type if isinstance(module, _Layer) else None
        outputs = tuple_outputs(kind or "")
        if kind is not None and self_attention(kind):
            if len(args) != 3 or not (args[0] is args[1] is args[2]):
                raise _error(node, f"{key}: {kind} is read only as self-attention, {key}(x, x, x)")
            if set(kwargs) - {"need_weights"}:
                raise _error(node, f"{key}: {sorted(set(kwargs) - {'need_weights'})[0]}= is not read")
        elif len(args) != 1 or kwargs:
            raise _error(node, f"{key} is called with more than one input; a flow passes one tensor")
        x = args[0]
        if outputs is None:
            out = T("step", x, key)
            if isinstance(module, _Layer) and module.inplace:
                self.in_place.append((out, node))
            return out

        def element(spec: Any) -> Any:
            if isinstance(spec, tuple):
                return _TupleT(tuple(element(s) for s in spec))
            return _Output(x, key, spec, spec == default_output(kind or ""))

        return _TupleT(tuple(element(s) for s in outputs))

    def library(self, path: str, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> Any:
        short = path.rsplit(".", 1)[-1]
        if path.startswith(("torch.nn.functional.", "torch.")) and short in ACTIVATIONS:
            return self.activation(short, args, kwargs, node)
        if path in ("torch.cat", "torch.concat", "torch.concatenate", "torch.stack"):
            parts = args[0] if args else kwargs.pop("tensors", None)
            dim = args[1] if len(args) > 1 else kwargs.pop("dim", 0)
            if not isinstance(parts, list | tuple) or not parts or not all(_tensorish(p) for p in parts):
                raise _error(node, f"{short} takes a tuple of tensors made in forward")
            if not isinstance(dim, int) or set(kwargs) - {"dim"}:
                raise _error(node, f"{short}: dim must be a literal whole number")
            return T("merge", parts=tuple(self.value(p, node) for p in parts), merge=MERGES[short], dim=dim)
        if path in ("torch.add", "torch.mul"):
            if len(args) != 2 or kwargs:
                raise _error(node, f"{short} takes two tensors")
            return self.arithmetic(ast.Add() if short == "add" else ast.Mult(), args[0], args[1], node)
        if path in (
            "torch.flatten",
            "torch.mean",
            "torch.sum",
            "torch.reshape",
            "torch.permute",
            "torch.transpose",
            "torch.unsqueeze",
            "torch.squeeze",
        ):
            if not args:
                raise _error(node, f"{short} needs a tensor")
            return self.tensor_method(args[0], short, args[1:], kwargs, node)
        raise _error(node, f"{path} is not an operation a flow can express")

    def activation(self, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> T:
        if not args or not _tensorish(args[0]):
            raise _error(node, f"{name} needs a tensor made in forward")
        allowed = ACTIVATIONS[name]
        extra = dict(zip(allowed, args[1:], strict=False))
        if len(args) - 1 > len(allowed):
            raise _error(node, f"{name}: too many arguments")
        kwargs = {k: v for k, v in kwargs.items() if k != "inplace" or v is False}
        unknown = set(kwargs) - set(allowed)
        if unknown:
            raise _error(node, f"{name}: the argument {sorted(unknown)[0]!r} is not read (inplace=True is refused)")
        extra.update(kwargs)
        if name in ("softmax", "log_softmax") and "dim" not in extra:
            raise _error(node, f"{name} needs dim= (PyTorch's implicit choice is deprecated)")
        for k, v in extra.items():
            if not _number(v) and not (k == "approximate" and v in ("none", "tanh")):
                raise _error(node, f"{name}: {k} must be a literal number")
        return T("step", self.value(args[0], node), {"op": name, **extra})

    def tensor_method(self, x: Any, name: str, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> Any:
        x = self.value(x, node)
        if name in ACTIVATIONS:
            return self.activation(name, [x, *args], kwargs, node)
        if name in ("size",):
            if len(args) == 1 and isinstance(args[0], int):
                return _Size(x, args[0])
            raise _error(node, "size() is read only with a dim, as x.size(0)")
        if name == "flatten":
            params = _named(("start_dim", "end_dim"), args, kwargs, node, "flatten")
            return T("step", x, {"op": "flatten", **params})
        if name in ("reshape", "view"):
            shape = list(args[0]) if len(args) == 1 and isinstance(args[0], list | tuple) else list(args)
            if kwargs:
                raise _error(node, f"{name} takes the shape only")
            return self.reshape(x, shape, node)
        if name == "permute":
            dims = list(args[0]) if len(args) == 1 and isinstance(args[0], list | tuple) else list(args)
            if not dims or not all(isinstance(d, int) for d in dims):
                raise _error(node, "permute takes literal dims")
            return T("step", x, {"op": "permute", "dims": dims})
        if name == "transpose":
            params = _named(("dim0", "dim1"), args, kwargs, node, "transpose")
            if set(params) != {"dim0", "dim1"}:
                raise _error(node, "transpose takes two dims")
            return T("step", x, {"op": "transpose", **params})
        if name in ("mean", "sum"):
            params = _named(("dim", "keepdim"), args, kwargs, node, name)  # no dim: over every element
            if isinstance(params.get("dim"), tuple):
                params["dim"] = list(params["dim"])
            return T("step", x, {"op": name, **params})
        if name in ("unsqueeze", "squeeze"):
            params = _named(("dim",), args, kwargs, node, name)
            if "dim" not in params:
                raise _error(node, f"{name}() without a dim is not read; give the dim")
            return T("step", x, {"op": name, **params})
        if name == "contiguous":
            return x
        raise _error(node, f".{name}() is not an operation a flow can express")

    def reshape(self, x: T, shape: list[Any], node: ast.AST) -> T:
        sizes = [s for s in shape if isinstance(s, _Size)]
        if sizes and (len(sizes) > 1 or not isinstance(shape[0], _Size) or shape[0].dim != 0):
            raise _error(node, "reshape is read with literal sizes and at most the batch size (x.shape[0]) first")
        if sizes:
            rest = shape[1:]
            if rest == [-1]:
                return T("step", x, {"op": "flatten", "start_dim": 1})
            if -1 in rest:
                raise _error(node, "reshape with the batch size and -1 elsewhere is not read")
            shape = [-1, *rest]
        if not all(isinstance(s, int) for s in shape):
            raise _error(node, "reshape takes literal sizes")
        return T("step", x, {"op": "reshape", "shape": shape})

    def index(self, owner: Any, slice_node: ast.expr, env: dict[str, Any], node: ast.AST) -> Any:
        if isinstance(owner, _TupleT):
            i = self.reader.expr(slice_node, env, self)
            if not isinstance(i, int):
                raise _error(node, "a tuple's item by a literal index")
            try:
                return owner.items[i]
            except IndexError:
                raise _error(node, f"the tuple has {len(owner.items)} items, not item {i}") from None
        key = self.reader.expr(slice_node, env, self)
        parts = key if isinstance(key, tuple) else (key,)
        chosen = [(d, p) for d, p in enumerate(parts) if p != slice(None)]
        if len(chosen) == 1 and isinstance(chosen[0][1], int) and Ellipsis not in parts:
            dim, index = chosen[0]
            return T("step", self.value(owner, node), {"op": "select", "dim": dim, "index": index})
        raise _error(node, "indexing a tensor is read only as picking one position of one dim, e.g. x[:, -1]")

    def arithmetic(self, op: ast.operator, a: Any, b: Any, node: ast.AST) -> T:
        merge = {ast.Add: "add", ast.Mult: "mul"}.get(type(op))
        if merge is None or not (_tensorish(a) and _tensorish(b)):
            what = _OPS.get(type(op), type(op).__name__)
            raise _error(
                node,
                f"{_describe(a)} {what} {_describe(b)}: a flow joins tensors only by + and * of two "
                f"branches (and torch.cat/stack)",
            )
        a, b = self.value(a, node), self.value(b, node)
        parts: list[T] = []
        for p in (a, b):  # x + y + z: one merge of three
            parts += list(p.parts) if p.kind == "merge" and p.merge == merge and p not in parts else [p]
        return T("merge", parts=tuple(parts), merge=merge)

    def value(self, v: Any, node: ast.AST) -> T:
        if isinstance(v, _Output):
            step: Any = v.key if v.default else {"call": v.key, "output": v.output}
            return T("step", v.x, step)
        if isinstance(v, T):
            return v
        raise _error(node, f"{_describe(v)} where a tensor made in forward is needed")


@dataclass(frozen=True)
class _Output:
    """One element of a tuple-returning layer's result (out of `out, _ = self.rnn(x)`)."""

    x: T
    key: str
    output: str
    default: bool  # the layer's default output: the step is just the child's key


# -- small helpers ---------------------------------------------------------------------------------------------


def _error(node: ast.AST, reason: str) -> DesignError:
    return DesignError(f"{_at(node)}: {reason}")


def _error_raise(node: ast.AST, reason: str) -> Any:
    raise _error(node, reason)


def _tensorish(value: Any) -> bool:
    return isinstance(value, T | _Output)


def _is_module(value: Any) -> bool:
    return isinstance(value, _Layer | _Seq | _Instance)


def _is_module_list(value: Any) -> bool:
    return isinstance(value, _Seq) and value.kind == "ModuleList"


def _children(value: Any) -> list[tuple[str, Any]]:
    return list(value.children) if isinstance(value, _Seq | _Instance) else []


def _walk_children(inst: _Instance, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, child in inst.children if isinstance(inst, _Instance) else inst.children:
        yield prefix + key, child
        if isinstance(child, _Seq | _Instance):
            yield from _walk_children(child, prefix + key + ".")  # type: ignore[arg-type]


def _check_child_name(key: str, node: ast.AST) -> None:
    if not key or "." in key:
        raise _error(node, f"a child's name must be non-empty text without '.', got {key!r}")


def _truthy(value: Any) -> bool:
    if _is_module(value):
        return True
    if isinstance(value, int | float | str | bool | list | tuple | dict | range | type(None)):
        return bool(value)
    raise DesignError(f"the truth of {_describe(value)} is not known before the network runs")


def _number(v: Any) -> bool:
    return isinstance(v, int | float)


def _describe(value: Any) -> str:
    if isinstance(value, _Layer):
        return f"nn.{value.type}"
    if isinstance(value, _Seq):
        return f"nn.{value.kind}"
    if isinstance(value, _Instance):
        return f"a {value.name}"
    if isinstance(value, T | _Output):
        return "a tensor"
    if isinstance(value, _TupleT):
        return "a tuple of tensors"
    if isinstance(value, _Path):
        return value.path
    if isinstance(value, _TensorSpec):
        return "a tensor made outside forward"
    if isinstance(value, _Bound):
        return f".{value.name}"
    if isinstance(value, _Size):
        return "a size known only when the network runs"
    if value is None:
        return "None"
    return type(value).__name__ if not isinstance(value, int | float | str) else repr(value)


def _did_you_mean(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(REGISTRY), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _bind(lt: Any, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> dict[str, Any]:
    """Positional and keyword arguments by torch's own constructor signature, as JSON-ready values; torch's
    defaults that the registry does not list (device=None, return_indices=False) are dropped."""
    names: list[str] = []
    defaults: dict[str, Any] = {}
    try:
        sig = inspect.signature(torch_class(lt.name) or lt.module)
        for p in sig.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                names = []
                break
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                names.append(p.name)
            if p.default is not p.empty:
                defaults[p.name] = p.default
    except (TypeError, ValueError):
        names = []
    if not names:
        names = [a.name for a in lt.args]
    if len(args) > len(names):
        raise _error(node, f"nn.{lt.name} takes at most {len(names)} positional arguments, got {len(args)}")
    given = dict(zip(names, args, strict=False))
    for k, v in kwargs.items():
        if k in given:
            raise _error(node, f"nn.{lt.name}: {k} is given twice")
        given[k] = v
    out: dict[str, Any] = {}
    for k, v in given.items():
        if k not in lt.arg_index and k in defaults and _same(v, defaults[k]):
            continue  # torch's default for an argument the registry does not carry: changes nothing
        out[k] = _json_value(v, node, f"nn.{lt.name}({k}=...)")
    return out


def _same(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and a == b or (a is None and b is None)
    except Exception:  # noqa: BLE001 — comparing arbitrary defaults (tensors, functions)
        return False


def _json_value(v: Any, node: ast.AST, where: str) -> Any:
    if isinstance(v, tuple | list):
        return [_json_value(x, node, where) for x in v]
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    if isinstance(v, _Layer):  # a nested layer spec (TransformerEncoder's encoder_layer)
        return {"type": v.type, **_json_args(v.args)}
    if isinstance(v, _Path) and v.path.startswith("torch.nn.functional."):
        return v.path.rsplit(".", 1)[-1]  # activation="gelu" and activation=F.gelu mean the same
    raise _error(node, f"{where}: {_describe(v)} is not a value a design holds")


def _json_args(args: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()}


def _named(names: tuple[str, ...], args: list[Any], kwargs: dict[str, Any], node: ast.AST, what: str) -> dict[str, Any]:
    if len(args) > len(names):
        raise _error(node, f"{what}: too many arguments")
    out = dict(zip(names, args, strict=False))
    for k, v in kwargs.items():
        if k not in names:
            raise _error(node, f"{what}: the argument {k!r} is not read")
        out[k] = v
    for k, v in out.items():
        if not (isinstance(v, int | bool) or (isinstance(v, list | tuple) and all(isinstance(i, int) for i in v))):
            raise _error(node, f"{what}: {k} must be literal")
    return out


def _tensor_spec(name: str, args: list[Any], kwargs: dict[str, Any], node: ast.AST) -> _TensorSpec:
    """torch.rand(2, 20) / torch.rand((2, 20)) / torch.randint(0, 28, (2, 35)) → shape and dtype."""
    dtype = "float32"
    if name == "randint":
        shape = args[-1] if args else kwargs.get("size")
        dtype = "int64"
    elif name == "full":
        shape = args[0] if args else kwargs.get("size")
    else:
        shape = args[0] if len(args) == 1 and isinstance(args[0], list | tuple) else args or kwargs.get("size")
    if not isinstance(shape, list | tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise _error(node, f"torch.{name} with a shape of literal sizes")
    if "dtype" in kwargs:
        d = kwargs["dtype"]
        if isinstance(d, _Path) and d.path in ("torch.long", "torch.int64"):
            dtype = "int64"
        elif not (isinstance(d, _Path) and d.path in ("torch.float", "torch.float32")):
            raise _error(node, f"torch.{name}: only float32 and int64 inputs are read")
    return _TensorSpec(tuple(shape), dtype)


def _bind_arguments(
    fn: ast.FunctionDef, args: list[Any], kwargs: dict[str, Any], node: ast.AST, reader: _Reader, fwd: _Forward | None
) -> dict[str, Any]:
    a = fn.args
    if a.posonlyargs or a.kwarg:
        raise _error(fn, f"{fn.name}: positional-only or **kwargs parameters are not read")
    params = [p.arg for p in a.args]
    env: dict[str, Any] = {}
    if len(args) > len(params) and a.vararg is None:
        raise _error(node, f"{fn.name} takes {len(params)} arguments, got {len(args)}")
    for p, v in zip(params, args, strict=False):
        env[p] = v
    if a.vararg is not None:
        env[a.vararg.arg] = tuple(args[len(params) :])
    for k, v in kwargs.items():
        if k not in params and k not in [p.arg for p in a.kwonlyargs]:
            raise _error(node, f"{fn.name} has no parameter {k!r}")
        if k in env:
            raise _error(node, f"{fn.name}: {k} is given twice")
        env[k] = v
    defaults = dict(zip(params[len(params) - len(a.defaults) :], a.defaults, strict=True))
    defaults |= {p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None}
    for p in params + [p.arg for p in a.kwonlyargs]:
        if p not in env:
            if p not in defaults:
                raise _error(node, f"{fn.name} needs the argument {p!r}")
            env[p] = reader.expr(defaults[p], reader.globals, None)
    return env


def _first_input(top: Node) -> tuple[tuple[int, ...], str, str]:
    """An input for the first layer when the source makes none: its size, batch 2 (as the chapter)."""
    leaf = top
    while isinstance(leaf, Branchy):
        if not leaf.children:
            raise DesignError("the network has no layers")
        leaf = leaf.children[0][1]
    args = leaf.args
    note = " (no input in the source: made to fit the first layer; change it if yours differs)"
    if leaf.type == "Embedding":
        return (2, 8), "int64", note
    if leaf.type in ("Linear", "Bilinear"):
        return (2, args["in_features"]), "float32", note
    if leaf.type == "MyLinear":
        return (2, args["in_units"]), "float32", note
    if leaf.type.startswith(("Conv", "ConvTranspose")) and "in_channels" in args:
        n = 2 if "2d" in leaf.type else (1 if "1d" in leaf.type else 3)
        return (2, args["in_channels"], *([32] * n)), "float32", note
    if leaf.type.startswith("BatchNorm") and "num_features" in args:
        return ((2, args["num_features"], 32, 32) if "2d" in leaf.type else (2, args["num_features"])), "float32", note
    if leaf.type in ("RNN", "GRU", "LSTM") and "input_size" in args:
        first = args.get("batch_first", False)
        return ((2, 8, args["input_size"]) if first else (8, 2, args["input_size"])), "float32", note
    if leaf.type == "LayerNorm":
        shape = args["normalized_shape"]
        return (2, *(shape if isinstance(shape, list) else [shape])), "float32", note
    if "2d" in leaf.type:
        return (2, 3, 32, 32), "float32", note
    return (2, 20), "float32", " (no input in the source and the first layer leaves it open: (2, 20) assumed)"


_BUILTINS: dict[str, Callable[..., Any]] = {
    "range": range,
    "len": len,
    "enumerate": enumerate,
    "zip": zip,
    "reversed": reversed,
    "sorted": sorted,
    "tuple": tuple,
    "list": list,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "abs": abs,
    "min": min,
    "max": max,
    "sum": sum,
    "round": round,
    "divmod": divmod,
    "print": print,
    "isinstance": isinstance,
    "super": super,
}
_ITERATORS: dict[str, Callable[..., Any]] = {"enumerate": enumerate, "zip": zip, "reversed": reversed, "sorted": sorted}
_ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
}
_OPS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def _load(target: ast.expr) -> ast.expr:
    """The same target read instead of written (for x += y)."""
    if isinstance(target, ast.Name):
        clone: ast.expr = ast.Name(id=target.id, ctx=ast.Load())
    elif isinstance(target, ast.Attribute):
        clone = ast.Attribute(value=target.value, attr=target.attr, ctx=ast.Load())
    elif isinstance(target, ast.Subscript):
        clone = ast.Subscript(value=target.value, slice=target.slice, ctx=ast.Load())
    else:
        raise _error(target, f"cannot update a {type(target).__name__}")
    return ast.copy_location(clone, target)
