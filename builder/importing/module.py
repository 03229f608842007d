"""`from_module`: a live nn.Module (a notebook's network) → a design with exactly its state_dict keys.

The module tree is read as it is registered (children by name, so `'block 0'` stays `'block 0'`); layers
Blockwork has become layers with the constructor arguments read back from the module; every other module's
`forward` is traced with torch.fx, one module at a time, with its children as leaves, so its flow refers to
its own children (`conv1`, `net.0`) as FLOW-SPEC asks. Tracing runs no layer: nothing is computed,
materialized or moved, and it works on a copy whose tensors live on the meta device, so the module passed in
is left exactly as it was. The same module object at several places is one shared layer; a module called
twice in a forward is a flow calling that child twice. What a design cannot express is a DesignError naming
the module path and the operation.
"""

from __future__ import annotations

import copy
import operator
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, cast

import torch
import torch.fx as fx
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import is_lazy

from ..design import Design
from ..errors import DesignError
from ..layers import CenteredLayer, MyLinear
from ..registry import REGISTRY, ArgError, check_args
from .flowgraph import ACTIVATIONS, T, default_output, self_attention, to_steps, torch_class, tuple_outputs
from .tree import Branchy, Leaf, Node, to_design

_DTYPES = {torch.float32: "float32", torch.int64: "int64"}


def from_module(module: nn.Module, example_input: torch.Tensor, *, name: str | None = None) -> Design:
    """Read a module into a design whose network has `module.state_dict()`'s keys, loads it strictly and gives
    the same outputs in eval mode on `example_input` (its shape and dtype become the design's input).

    The module is not changed: not called, not materialized (lazy layers stay lazy, and become lazy layers of
    the design), not moved. Raises DesignError naming the module path and the operation for what a design
    cannot hold: data-dependent control flow, a module of a kind Blockwork does not know, its own parameters,
    an in-place operation on a tensor used again.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"from_module expects a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(example_input, torch.Tensor):
        raise TypeError(f"from_module expects the example input as a tensor, got {type(example_input).__name__}")
    dtype = _DTYPES.get(example_input.dtype)
    if dtype is None:
        raise DesignError(f"the example input is {example_input.dtype}; a design's input is float32 or int64")
    shadow = _meta_copy(module)
    reader = _ModuleReader()
    top = reader.node(shadow, "")
    if isinstance(top, Leaf):
        raise DesignError(
            f"the module is a single {top.type}; a design's top is a block, so its keys would gain a '0.' "
            f"(pass nn.Sequential(module) to read it)"
        )
    cls = type(module).__name__
    design = to_design(
        top,
        name=name or cls,
        input_shape=tuple(example_input.shape),
        input_dtype=dtype,
        description=f"Read from a {cls} module (torch.fx, nothing run).",
    )
    _check_design(design, module, reader.layers)
    return design


_EMPTY_CONTAINERS = (dict, OrderedDict, set, list)


def _meta_copy(module: nn.Module) -> nn.Module:
    """A deep copy whose parameters and buffers are meta tensors (no memory, nothing shared with `module`),
    so tracing cannot touch the caller's module. Identity is kept: a shared layer stays one object."""
    memo: dict[int, Any] = {}
    for m in module.modules():  # a module's empty hook tables: deepcopy makes each through __reduce_ex__ (slow)
        for value in m.__dict__.values():
            if type(value) in _EMPTY_CONTAINERS and not value:
                memo[id(value)] = type(value)()
    for t in list(module.parameters()) + list(module.buffers()):
        if id(t) in memo:
            continue
        if isinstance(t, nn.UninitializedParameter):  # a lazy layer's: no shape yet, and no data to copy
            memo[id(t)] = nn.UninitializedParameter(requires_grad=t.requires_grad)
        elif isinstance(t, nn.UninitializedBuffer):
            memo[id(t)] = nn.UninitializedBuffer()
        else:
            meta = torch.empty_like(t, device="meta")
            memo[id(t)] = nn.Parameter(meta, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else meta
    try:
        return copy.deepcopy(module, memo)
    except Exception as e:  # noqa: BLE001 — a module deepcopy refuses (hooks holding locks…): say which
        raise DesignError(f"the module cannot be copied to read it without changing it: {e}") from None


def _check_design(design: Design, module: nn.Module, layers: list[tuple[str, nn.Module, Leaf]]) -> None:
    """The design's network, constructed on meta by Blockwork's own build path, must have the module's
    state_dict: the same keys in the same order, each tensor of the same shape (lazy where it is lazy). So the
    arguments read back from every layer are checked, not trusted, in one construction of the network. When
    it disagrees, each layer is rebuilt on its own from its arguments to name the one at fault (`layers`: each
    layer read, with its module path), then the keys are compared."""
    from ..lazy import instantiate

    want = _tensor_shapes(module)
    try:
        got: list[tuple[str, tuple[int, ...] | None]] | None = _tensor_shapes(instantiate(design))
        failed: DesignError | None = None
    except DesignError as e:  # a layer that cannot be rebuilt from its arguments, a budget: named below
        got, failed = None, e
    if got == want:
        return
    for path, m, leaf in layers:
        _check_same_tensors(REGISTRY[leaf.type], leaf.args, m, path)
    if got is None:
        assert failed is not None
        raise failed
    want_keys, got_keys = [k for k, _ in want], [k for k, _ in got]
    missing = [k for k in want_keys if k not in got_keys][:4]
    extra = [k for k in got_keys if k not in want_keys][:4]
    raise DesignError(
        f"the design read from the module does not have its keys (missing {missing}, unexpected {extra}); "
        f"this is a fault of from_module"
    )


def _tensor_shapes(net: nn.Module) -> list[tuple[str, tuple[int, ...] | None]]:
    """Each state_dict key with its tensor's shape (None for a lazy layer's uninitialized tensor)."""
    return [(k, None if _lazy(t) else tuple(t.shape)) for k, t in net.state_dict(keep_vars=True).items()]


# -- modules -----------------------------------------------------------------------------------------------------


class _ModuleReader:
    def __init__(self) -> None:
        self.memo: dict[int, Node] = {}
        self.layers: list[tuple[str, nn.Module, Leaf]] = []  # registry layers read, for _check_design

    def node(self, m: nn.Module, path: str) -> Node:
        if id(m) in self.memo:
            return self.memo[id(m)]
        leaf = _as_layer(m, path)
        if leaf is not None:
            self.memo[id(m)] = leaf
            if leaf.type not in _CHAPTER_TYPES:  # the chapter's own classes are read from their tensors
                self.layers.append((path, m, leaf))
            return leaf
        where = path or "the top module"
        own = [n for n, _ in m.named_parameters(recurse=False)] + [n for n, _ in m.named_buffers(recurse=False)]
        if own:
            raise DesignError(
                f"{where} ({type(m).__name__}): holds its own tensor {own[0]!r}; a design holds Blockwork's "
                f"layers, not new kinds of layer",
                path or None,
            )
        block = Branchy(label=path.rsplit(".", 1)[-1] or None)
        self.memo[id(m)] = block
        # m._modules, not named_children(): that skips a child met before, and a shared layer sits at each key
        children = [(k, c) for k, c in m._modules.items() if c is not None]
        block.children = [(k, self.node(c, f"{path}.{k}" if path else k)) for k, c in children]
        if type(m) is nn.Sequential:
            for key, child in block.children:
                if isinstance(child, Leaf) and tuple_outputs(child.type) is not None:
                    raise DesignError(
                        f"{path + '.' if path else ''}{key} ({child.type}) returns a tuple, which an nn.Sequential "
                        f"passes on whole; a design calls it in a flow",
                        f"{path}.{key}" if path else key,
                    )
            return block
        if isinstance(m, nn.ModuleList | nn.ModuleDict):
            return block  # a container: its parent's forward calls its children ("layers.0")
        block.cls = type(m).__name__
        block.flow = _Trace(m, path).flow()
        return block


def _as_layer(m: nn.Module, path: str) -> Leaf | None:
    """The registry layer this module is, with its constructor arguments read back; None for containers
    and modules whose forward is to be traced."""
    kind = type(m).__name__
    if type(m) in (MyLinear, CenteredLayer) or (kind in _CHAPTER_TYPES and _chapter_like(m)):
        if kind == "MyLinear":
            shape = dict(m.named_parameters(recurse=False))["weight"].shape
            return Leaf("MyLinear", {"in_units": shape[0], "units": shape[1]})
        return Leaf("CenteredLayer", {})
    lt = REGISTRY.get(kind)
    if lt is None or type(m) is not torch_class(kind):
        if isinstance(m, LazyModuleMixin) or (type(m).__module__.startswith("torch.nn") and not _container(m)):
            raise DesignError(f"{path or 'the top module'} ({kind}): Blockwork has no {kind} layer", path or None)
        return None
    if isinstance(m, LazyModuleMixin) and not m.has_uninitialized_params():
        raise DesignError(f"{path} ({kind}): a lazy layer in the middle of materializing", path)
    args: dict[str, Any] = {}
    for arg in lt.args:
        value = _read_arg(m, arg.name)
        if value is _MISSING:
            continue
        value = _json(value)
        if value != (list(arg.default) if isinstance(arg.default, tuple) else arg.default):
            args[arg.name] = value
    try:
        check_args(lt, args, path or kind)
    except ArgError as e:
        raise DesignError(f"{path} ({kind}): {e}", path or None) from None
    return Leaf(kind, args)  # its arguments are checked against its tensors by _check_design


_CHAPTER_TYPES = ("MyLinear", "CenteredLayer")


def _chapter_like(m: nn.Module) -> bool:
    """A module named like one of the chapter's custom layers with the same tensors (the book's own class)."""
    if list(m.children()):
        return False
    tensors = dict(m.named_parameters(recurse=False))
    if type(m).__name__ == "CenteredLayer":
        return not tensors and not list(m.buffers())
    w, b = tensors.get("weight"), tensors.get("bias")
    if set(tensors) != {"weight", "bias"} or w is None or b is None:
        return False
    return w.dim() == 2 and tuple(b.shape) == (w.shape[1],)


def _container(m: nn.Module) -> bool:
    return isinstance(m, nn.Sequential | nn.ModuleList | nn.ModuleDict)


_MISSING = object()


def _read_arg(m: nn.Module, name: str) -> Any:
    if isinstance(m, nn.MultiheadAttention):
        special = {
            "bias": lambda: m.in_proj_bias is not None,
            "add_bias_kv": lambda: m.bias_k is not None,
        }
        if name in special:
            return special[name]()
    if isinstance(m, nn.TransformerEncoderLayer):
        return _encoder_layer_arg(m, name)
    if isinstance(m, nn.TransformerEncoder):
        if name == "encoder_layer":
            return _encoder_layer_spec(m.layers[0])
        if name == "num_layers":
            return len(m.layers)
        if name == "norm":
            return None if m.norm is None else _as_layer(m.norm, "norm")
    if isinstance(m, nn.RNNBase) and name == "bias":
        return bool(m.bias)
    if name == "bias" and hasattr(m, "bias") and isinstance(m.bias, torch.Tensor | type(None)):
        return m.bias is not None
    if name in ("dim",) and isinstance(m, nn.Softmax | nn.LogSoftmax):
        return m.dim
    return getattr(m, name, _MISSING)


def _encoder_layer_arg(m: nn.TransformerEncoderLayer, name: str) -> Any:
    values: dict[str, Callable[[], Any]] = {
        "d_model": lambda: m.self_attn.embed_dim,
        "nhead": lambda: m.self_attn.num_heads,
        "dim_feedforward": lambda: m.linear1.out_features,
        "dropout": lambda: m.dropout.p,
        "layer_norm_eps": lambda: m.norm1.eps,
        "batch_first": lambda: m.self_attn.batch_first,
        "norm_first": lambda: m.norm_first,
        "bias": lambda: m.linear1.bias is not None,
        "activation": lambda: _activation_name(m.activation),
    }
    return values[name]() if name in values else getattr(m, name, _MISSING)


def _encoder_layer_spec(m: nn.Module) -> dict[str, Any]:
    leaf = _as_layer(m, "layers.0")
    assert leaf is not None
    return {"type": leaf.type, **leaf.args}


def _activation_name(fn: Any) -> Any:
    for name in ("relu", "gelu"):
        if fn is getattr(F, name) or type(fn).__name__.lower() == name:
            return name
    return fn


def _json(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, Leaf):
        return {"type": value.type, **value.args}
    if isinstance(value, torch.Size):
        return list(value)
    return value


def _check_same_tensors(lt: Any, args: Mapping[str, Any], m: nn.Module, path: str) -> None:
    """The layer the design will build must have the module's tensors (names and shapes): reading back the
    arguments is checked, not trusted."""
    with torch.device("meta"):
        try:
            made = lt.module(**check_args(lt, args, path))
        except (TypeError, ValueError, RuntimeError) as e:
            raise DesignError(f"{path} ({lt.name}): cannot be rebuilt from its arguments: {e}", path or None) from None
    ours = {k: tuple(t.shape) if not _lazy(t) else None for k, t in made.state_dict(keep_vars=True).items()}
    theirs = {k: tuple(t.shape) if not _lazy(t) else None for k, t in m.state_dict(keep_vars=True).items()}
    if ours != theirs:
        raise DesignError(
            f"{path or 'the top module'} ({lt.name}): its tensors {theirs} differ from those of a {lt.name} "
            f"made from its arguments {ours}",
            path or None,
        )


def _lazy(t: torch.Tensor) -> bool:
    return bool(is_lazy(t))


# -- forward, traced ------------------------------------------------------------------------------------------------


class _LeafTracer(fx.Tracer):
    """Traces one module's forward; every submodule is a leaf (a call of a child, not traced into).

    Without fx's autowrap of `math`: wrapping its ~55 functions around every trace cost ~0.4 ms a module, and a
    flow cannot hold math.sqrt(x.size(-1)) either way (it fails as a Python function given a traced value)."""

    def __init__(self) -> None:
        super().__init__(autowrap_modules=cast("tuple[ModuleType]", ()))  # typed as a 1-tuple in torch

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name != ""


_FUNCTIONS: dict[Any, str] = {}
for _name in ACTIVATIONS:
    for _owner in (F, torch):
        if hasattr(_owner, _name):
            _FUNCTIONS[getattr(_owner, _name)] = _name
_CATS = {torch.cat: "cat", torch.concat: "cat", torch.stack: "stack"}
if hasattr(torch, "concatenate"):
    _CATS[torch.concatenate] = "cat"
_ARITH = {operator.add: "add", operator.iadd: "add", torch.add: "add", operator.mul: "mul", operator.imul: "mul"}
_ARITH[torch.mul] = "mul"
_SHAPE_FUNCTIONS = {torch.flatten: "flatten", torch.mean: "mean", torch.sum: "sum", torch.reshape: "reshape"}
_SHAPE_FUNCTIONS |= {torch.permute: "permute", torch.transpose: "transpose"}
_SHAPE_FUNCTIONS |= {torch.unsqueeze: "unsqueeze", torch.squeeze: "squeeze"}


class _Batch:
    """x.size(0) / x.shape[0]: the batch size, known when the network runs (reshape's first size)."""


class _Trace:
    def __init__(self, m: nn.Module, path: str) -> None:
        self.m = m
        self.path = path
        self.where = f"{path or 'the top module'} ({type(m).__name__})"

    def fail(self, reason: str) -> DesignError:
        return DesignError(f"{self.where}: {reason}", self.path or None)

    def flow(self) -> list[Any]:
        try:
            graph = _LeafTracer().trace(self.m)
        except fx.proxy.TraceError as e:
            raise self.fail(
                f"data-dependent control flow in forward ({_first(e)}); a flow runs the same steps for every input"
            ) from None
        except DesignError:
            raise
        except Exception as e:  # noqa: BLE001 — whatever forward does under tracing that fx cannot follow
            if isinstance(e, TypeError) and "Proxy" in str(e):  # math.sqrt(x.size(-1)), int(x.sum()), ...
                raise self.fail(
                    f"forward gives a value computed from its input to a Python function ({_first(e)}); "
                    f"a flow runs tensor operations only"
                ) from None
            raise self.fail(f"forward cannot be traced: {type(e).__name__}: {_first(e)}") from None
        values: dict[fx.Node, Any] = {}
        x: T | None = None
        result: Any = None
        for node in graph.nodes:
            if node.op == "placeholder":
                if x is None:
                    x = T("input")
                    values[node] = x
                elif node.args == ():  # a second input without a default
                    raise self.fail(f"forward takes a second input {node.target!r}; a flow has one")
                else:
                    values[node] = node.args[0]
            elif node.op == "output":
                result = values[node.args[0]] if isinstance(node.args[0], fx.Node) else node.args[0]
            elif node.op == "get_attr":
                raise self.fail(f"forward uses the tensor self.{node.target} directly (not through a layer)")
            else:
                self.check_in_place(node)
                values[node] = self.operation(node, values)
        assert x is not None
        if isinstance(result, _Tuple) or not isinstance(result, T):
            raise self.fail("forward does not return one tensor made from its input")
        return to_steps(result, x, self.fail)

    def check_in_place(self, node: fx.Node) -> None:
        """An in-place operation changes its input for every other user of it: refused when there is one."""
        in_place = node.kwargs.get("inplace") is True or (
            node.op == "call_method" and str(node.target).endswith("_") and not str(node.target).startswith("_")
        )
        if node.op == "call_module":
            in_place = getattr(self.m.get_submodule(str(node.target)), "inplace", False) is True
        if not in_place or not node.args or not isinstance(node.args[0], fx.Node):
            return
        source = node.args[0]
        others = [u for u in source.users if u is not node]
        if others or source.op == "placeholder":
            raise self.fail(
                f"{_describe(node)} changes its input in place, and that tensor is used again"
                + (" (forward's own input)" if source.op == "placeholder" else f" by {_describe(others[0])}")
                + "; the design computes it out of place, which would change the result"
            )

    def arg(self, value: Any, values: dict[fx.Node, Any]) -> Any:
        if isinstance(value, fx.Node):
            return values[value]
        if isinstance(value, tuple | list):
            return type(value)(self.arg(v, values) for v in value)
        return value

    def operation(self, node: fx.Node, values: dict[fx.Node, Any]) -> Any:
        args = [self.arg(a, values) for a in node.args]
        kwargs = {k: self.arg(v, values) for k, v in node.kwargs.items() if k != "inplace"}
        if node.op == "call_module":
            return self.call_module(str(node.target), args, kwargs)
        if node.op == "call_function":
            return self.call_function(node, node.target, args, kwargs)
        if node.op == "call_method":
            return self.method(node, str(node.target), args, kwargs)
        raise self.fail(f"{node.op} {node.target} is not read")

    def call_module(self, key: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        child = self.m.get_submodule(key)
        kind = type(child).__name__
        if self_attention(kind):
            if len(args) != 3 or not (args[0] is args[1] is args[2]) or set(kwargs) - {"need_weights"}:
                raise self.fail(f"{key} ({kind}) is read only as self-attention, {key}(x, x, x)")
        elif len(args) != 1 or kwargs:
            raise self.fail(f"{key} is called with more than one input; a flow passes one tensor")
        x = self.tensor(args[0], f"the input of {key}")
        outputs = tuple_outputs(kind)
        if outputs is None:
            return T("step", x, key)

        def element(spec: Any) -> Any:
            if isinstance(spec, tuple):
                return _Tuple(tuple(element(s) for s in spec))
            return T("step", x, key if spec == default_output(kind) else {"call": key, "output": spec})

        return _Tuple(tuple(element(s) for s in outputs))

    def call_function(self, node: fx.Node, fn: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if fn is operator.getitem:
            return self.getitem(args[0], args[1])
        if fn in _FUNCTIONS:
            return self.activation(_FUNCTIONS[fn], args, kwargs)
        if fn in _CATS:
            parts = args[0] if args else kwargs.pop("tensors", None)
            dim = args[1] if len(args) > 1 else kwargs.pop("dim", 0)
            if not isinstance(parts, tuple | list) or not all(isinstance(p, T) for p in parts) or kwargs:
                raise self.fail(f"{_describe(node)} of something other than tensors made in forward")
            return T("merge", parts=tuple(parts), merge=_CATS[fn], dim=dim)
        if fn in _ARITH:
            if len(args) != 2 or kwargs or not all(isinstance(a, T) for a in args):
                raise self.fail(f"{_describe(node)} with a constant; a flow joins two tensors made in forward")
            merge = _ARITH[fn]
            joined: list[T] = []
            for p in args:
                joined += list(p.parts) if p.kind == "merge" and p.merge == merge else [p]
            return T("merge", parts=tuple(joined), merge=merge)
        if fn in _SHAPE_FUNCTIONS:
            return self.method(node, _SHAPE_FUNCTIONS[fn], args, kwargs)
        if fn is getattr and len(args) == 2 and args[1] == "shape":
            return _Shape(args[0])
        raise self.fail(f"{_describe(node)} is not an operation a flow can express")

    def method(self, node: fx.Node, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if not args:
            raise self.fail(f"{_describe(node)} without a tensor")
        if name == "size" and len(args) == 2 and args[1] == 0 and not kwargs:
            return _Batch()
        x = self.tensor(args[0], _describe(node))
        rest = args[1:]
        if name.rstrip("_") in ACTIVATIONS:
            return self.activation(name.rstrip("_"), [x, *rest], kwargs)
        if name == "flatten":
            return T("step", x, {"op": "flatten", **_named(("start_dim", "end_dim"), rest, kwargs, self.fail)})
        if name in ("view", "reshape"):
            shape = list(rest[0]) if len(rest) == 1 and isinstance(rest[0], tuple | list) else list(rest)
            return self.reshape(x, shape)
        if name == "permute":
            dims = list(rest[0]) if len(rest) == 1 and isinstance(rest[0], tuple | list) else list(rest)
            return T("step", x, {"op": "permute", "dims": dims})
        if name == "transpose":
            return T("step", x, {"op": "transpose", **_named(("dim0", "dim1"), rest, kwargs, self.fail)})
        if name in ("mean", "sum"):
            params = _named(("dim", "keepdim"), rest, kwargs, self.fail)  # no dim: over every element
            dim = params.get("dim")
            if isinstance(dim, tuple | list):
                params["dim"] = list(dim)
            elif not isinstance(dim, int | None):
                raise self.fail(f"{_describe(node)}: read only over literal dims")
            return T("step", x, {"op": name, **params})
        if name in ("unsqueeze", "squeeze"):
            params = _named(("dim",), rest, kwargs, self.fail)
            if not isinstance(params.get("dim"), int):
                raise self.fail(f"{_describe(node)}: read only with a literal dim")
            return T("step", x, {"op": name, **params})
        if name == "contiguous":
            return x
        raise self.fail(f"{_describe(node)} is not an operation a flow can express")

    def activation(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> T:
        x = self.tensor(args[0], name)
        params = _named(ACTIVATIONS[name], args[1:], kwargs, self.fail)
        if name in ("softmax", "log_softmax") and not isinstance(params.get("dim"), int):
            raise self.fail(f"{name} without a literal dim")
        params = {k: v for k, v in params.items() if v is not None and k != "_stacklevel"}
        return T("step", x, {"op": name, **params})

    def reshape(self, x: T, shape: list[Any]) -> T:
        if shape and isinstance(shape[0], _Batch):
            rest = shape[1:]
            if rest == [-1]:
                return T("step", x, {"op": "flatten", "start_dim": 1})
            shape = [-1, *rest]
        if not all(isinstance(s, int) for s in shape):
            raise self.fail("reshape with sizes computed from the input (other than the batch first)")
        return T("step", x, {"op": "reshape", "shape": shape})

    def getitem(self, owner: Any, index: Any) -> Any:
        if isinstance(owner, _Tuple):
            if not isinstance(index, int) or not -len(owner.items) <= index < len(owner.items):
                raise self.fail(f"item {index!r} of a tuple of {len(owner.items)}")
            return owner.items[index]
        if isinstance(owner, _Shape):
            if index == 0:
                return _Batch()
            raise self.fail("a size other than the batch (x.shape[0]) is read from the input")
        x = self.tensor(owner, "indexing")
        parts = index if isinstance(index, tuple) else (index,)
        chosen = [(d, p) for d, p in enumerate(parts) if p != slice(None)]
        if len(chosen) == 1 and isinstance(chosen[0][1], int) and Ellipsis not in parts:
            dim, i = chosen[0]
            return T("step", x, {"op": "select", "dim": dim, "index": i})
        raise self.fail(f"indexing {index!r}: read only as one position of one dim, e.g. x[:, -1]")

    def tensor(self, value: Any, what: str) -> T:
        if isinstance(value, T):
            return value
        raise self.fail(f"{what}: expected a tensor made in forward, got {type(value).__name__}")


class _Tuple:
    def __init__(self, items: tuple[Any, ...]) -> None:
        self.items = items


class _Shape:
    def __init__(self, of: Any) -> None:
        self.of = of


def _named(
    names: tuple[str, ...], args: list[Any], kwargs: dict[str, Any], fail: Callable[[str], Exception]
) -> dict[str, Any]:
    if len(args) > len(names):
        raise fail(f"too many arguments ({len(args)}; read: {', '.join(names)})")
    out = dict(zip(names, args, strict=False))
    for k, v in kwargs.items():
        if k not in names and k != "_stacklevel":
            raise fail(f"the argument {k!r} is not read")
        out[k] = v
    return out


def _describe(node: fx.Node) -> str:
    target = node.target
    name = getattr(target, "__name__", str(target))
    module = getattr(target, "__module__", "") or ""
    if node.op == "call_method":
        return f".{name}()"
    if node.op == "call_module":
        return f"self.{target}"
    prefix = "F." if "functional" in module else ("torch." if module.startswith("torch") else "")
    return f"{prefix}{name}"


def _first(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]
