"""The parameter table of a network: one row per state_dict entry, tied tensors marked."""

from __future__ import annotations

import threading
import weakref
from dataclasses import asdict, dataclass
from typing import Any, TypeAlias

import pandas as pd
import torch
from torch import nn
from torch.nn.parameter import is_lazy

from .build import DryRun
from .registry import built_type

_Signature: TypeAlias = tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, ...]]]

COLUMNS = ["key", "layer", "type", "kind", "shape", "count", "dtype", "device", "requires_grad", "tied_with"]

TIED_NOTE = (
    "A shared layer is one module used at several positions. state_dict lists its tensors under every "
    "position, so counting per use adds them once per use; the network holds each of them only once."
)


@dataclass(frozen=True)
class Totals:
    """Parameter totals. They differ only when a tensor is tied to several positions."""

    unique: int  # what the network holds and an optimizer updates (nn.Module.parameters())
    per_use: int  # summed over every state_dict position, so a layer used twice counts twice
    buffers: int  # non-learned state such as BatchNorm's running mean (unique)

    @property
    def tied(self) -> bool:
        return self.per_use != self.unique


def totals(net: nn.Module) -> Totals:
    """Count parameters once per tensor and once per use. Lazy (uninitialized) tensors count 0."""
    return _State(net).totals()


def summary(net: nn.Module) -> pd.DataFrame:
    """One row per state_dict entry of `net` (parameters and buffers), in state_dict order.

    Columns: key, layer (module path), type (the module's class), kind (parameter / buffer / extra state), shape, count
    (None while lazy), dtype, device, requires_grad, tied_with (the other keys holding the very same tensor,
    as a shared layer's do). The network is only read: mode, device and gradients are left as they are.
    Totals are in ``df.attrs["totals"]`` (a dict of `totals`) with the explanation in ``df.attrs["note"]``.
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"summary expects a torch.nn.Module, got {type(net).__name__}")
    state = _State(net)
    # The frame is a function of the network's signature (its keys, modules' classes, and each tensor's
    # identity, class, shape, dtype, device and requires_grad: see _State.signature), read afresh on every
    # call. A pandas frame costs ~10x reading it, so the last frame made for this network is reused while the
    # signature is equal (an edit, a load that changes a shape or dtype, .to(), requires_grad_ all change it;
    # weight values are not shown). A shallow copy is handed out: pandas copies on write, so changes to it
    # never reach the kept one.
    signature = state.signature()
    with _FRAMES_LOCK:
        last = _FRAMES.get(net)  # (modules hash by identity: torch's own named_modules needs it)
    if last is not None and last[0] == signature:
        return last[1].copy(deep=False)
    df = pd.DataFrame(_columns(state), columns=COLUMNS)
    df["count"] = df["count"].astype("Int64")
    df.attrs["totals"] = asdict(state.totals())  # plain data, so the frame still serializes (Arrow, JSON)
    df.attrs["note"] = TIED_NOTE
    with _FRAMES_LOCK:
        _FRAMES[net] = (signature, df)
    return df.copy(deep=False)


# The last frame `summary` made for each live network and its signature (weakly held: it goes with the network).
_FRAMES: weakref.WeakKeyDictionary[nn.Module, tuple[_Signature, pd.DataFrame]] = weakref.WeakKeyDictionary()
_FRAMES_LOCK = threading.Lock()


def forget_summaries() -> None:
    """Forget the frames `summary` keeps (the next summary of every network is made from scratch)."""
    with _FRAMES_LOCK:
        _FRAMES.clear()


def _columns(state: _State) -> dict[str, list[Any]]:
    """The table's columns as lists, in state_dict order."""
    keys_of: dict[int, list[str]] = {}
    for key, tensor, _ in state.entries:
        keys_of.setdefault(id(tensor), []).append(key)
    # A tied tensor's description is computed once, at its first key.
    described: dict[int, tuple[str, int | None, str, str, bool]] = {}
    columns: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for key, tensor, module in state.entries:
        d = described.get(id(tensor))
        if d is None and not isinstance(tensor, torch.Tensor):  # a module's extra state (get_extra_state)
            d = described[id(tensor)] = ("", None, "", "", False)
        elif d is None:
            lazy = is_lazy(tensor)
            d = described[id(tensor)] = (
                "uninitialized" if lazy else str(tuple(tensor.shape)),
                None if lazy else tensor.numel(),
                str(tensor.dtype).removeprefix("torch."),
                str(tensor.device),
                bool(tensor.requires_grad),
            )
        columns["key"].append(key)
        columns["layer"].append(key.rpartition(".")[0])
        columns["type"].append(type(module).__name__)
        columns["kind"].append("parameter" if id(tensor) in state.params else "buffer" if d[2] else "extra state")
        columns["shape"].append(d[0])
        columns["count"].append(d[1])
        columns["dtype"].append(d[2])
        columns["device"].append(d[3])
        columns["requires_grad"].append(d[4])
        keys = keys_of[id(tensor)]
        columns["tied_with"].append(_others(keys, key) if len(keys) > 1 else "")
    return columns


class _State:
    """One pass over a network: the entries of net.state_dict(keep_vars=True) as (key, tensor, owning module)
    in its order, and the network's unique parameters and buffers (by identity: identity is tying).

    When no module customizes what it saves (state_dict hooks, its own state_dict or _save_to_state_dict,
    extra state), the modules' own parameter and persistent-buffer tables are read directly: the same entries,
    without state_dict's and parameters()'s per-module call overhead. Otherwise torch's own calls are used.
    """

    def __init__(self, net: nn.Module) -> None:
        named = list(net.named_modules(remove_duplicate=False))
        self.entries: list[tuple[str, torch.Tensor, nn.Module]] = []
        self.params: dict[int, torch.Tensor] = {}
        self.buffers: dict[int, torch.Tensor] = {}
        if not all(_plain(m) for _, m in named):
            modules = dict(named)
            state = net.state_dict(keep_vars=True)
            self.entries = [(k, t, modules.get(k.rpartition(".")[0], net)) for k, t in state.items()]
            self.params = {id(p): p for p in net.parameters()}
            self.buffers = {id(b): b for b in net.buffers()}
            return
        entries, params, buffers = self.entries, self.params, self.buffers
        for name, m in named:
            prefix = name + "." if name else ""
            for k, t in m._parameters.items():
                if t is not None:
                    entries.append((prefix + k, t, m))
                    params[id(t)] = t
            skip = m._non_persistent_buffers_set
            for k, t in m._buffers.items():
                if t is not None:
                    buffers[id(t)] = t
                    if k not in skip:
                        entries.append((prefix + k, t, m))

    def signature(self) -> _Signature:
        """Everything the table and the totals are made of, unformatted: equal signatures, equal tables.
        Identities are compared as ids: the tensors are alive while they are in the network."""
        return (
            [(k, type(m), _form(t)) for k, t, m in self.entries],
            [_form(p) for p in self.params.values()],
            [_form(b) for b in self.buffers.values()],
        )

    def totals(self) -> Totals:
        params = self.params
        per_use = sum(_numel(t) for _, t, _ in self.entries if id(t) in params)  # (extra state: not in params)
        unique = sum(_numel(p) for p in params.values())
        return Totals(unique=unique, per_use=per_use, buffers=sum(_numel(b) for b in self.buffers.values()))


_STATE = nn.Module.state_dict
_SAVE = nn.Module._save_to_state_dict
_EXTRA = nn.Module.get_extra_state


def _form(t: object) -> tuple[object, ...]:
    """A tensor's identity and what the table shows of it (a lazy one has no shape yet); another object's
    (a module's extra state) identity and class."""
    if not isinstance(t, torch.Tensor):
        return id(t), type(t)
    if is_lazy(t):
        return id(t), type(t), t.dtype, t.device, t.requires_grad
    return id(t), type(t), t.shape, t.dtype, t.device, t.requires_grad


def _plain(m: nn.Module) -> bool:
    """Whether state_dict would hold exactly the module's parameters and persistent buffers."""
    cls = type(m)
    return (
        cls.state_dict is _STATE
        and cls._save_to_state_dict is _SAVE
        and cls.get_extra_state is _EXTRA
        and not m._state_dict_hooks
        and not m._state_dict_pre_hooks
    )


def _others(keys: list[str], key: str, shown: int = 6) -> str:
    """The keys tied to `key`; a layer shared hundreds of times lists the first few and a count."""
    if len(keys) == 1:
        return ""
    others = [k for k in keys[: shown + 1] if k != key][:shown]
    rest = len(keys) - 1 - len(others)
    return ", ".join(others) + (f" and {rest} more" if rest else "")


def _numel(t: torch.Tensor) -> int:
    return 0 if is_lazy(t) else t.numel()


def shapes(run: DryRun) -> pd.DataFrame:
    """One row per node of a dry run: its key (indented by depth), type, output shape, parameters and notes
    (the shared layer it uses, the sizes torch inferred)."""
    rows = []
    for r in run.layers:
        notes = [f"shared '{r.shared}'" if r.shared else "", *(f"{k}={v} inferred" for k, v in r.inferred.items())]
        rows.append(
            {
                "layer": "  " * r.depth + r.key,
                "type": built_type(r.type, r.inferred),  # what torch built: Linear for a LazyLinear
                "output": str(r.output_shape),
                "parameters": r.parameters,
                "note": ", ".join(filter(None, notes)),
            }
        )
    return pd.DataFrame(rows, columns=["layer", "type", "output", "parameters", "note"])
