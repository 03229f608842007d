"""The parameter table of a network: one row per state_dict entry, tied tensors marked."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd
import torch
from torch import nn
from torch.nn.parameter import is_lazy

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
    state = net.state_dict(keep_vars=True)
    params = {id(p) for p in net.parameters()}
    per_use = sum(_numel(t) for t in state.values() if id(t) in params)
    unique = sum(_numel(p) for p in net.parameters())
    buffers = sum(_numel(b) for b in net.buffers())
    return Totals(unique=unique, per_use=per_use, buffers=buffers)


def summary(net: nn.Module) -> pd.DataFrame:
    """One row per state_dict entry of `net` (parameters and buffers), in state_dict order.

    Columns: key, layer (module path), type (the module's class), kind (parameter / buffer), shape, count
    (None while lazy), dtype, device, requires_grad, tied_with (the other keys holding the very same tensor,
    as a shared layer's do). The network is only read: mode, device and gradients are left as they are.
    Totals are in ``df.attrs["totals"]`` (a dict of `totals`) with the explanation in ``df.attrs["note"]``.
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"summary expects a torch.nn.Module, got {type(net).__name__}")
    state = net.state_dict(keep_vars=True)  # keep_vars: the Parameter objects themselves, so identity is tying
    params = {id(p) for p in net.parameters()}
    keys_of: dict[int, list[str]] = {}
    for key, tensor in state.items():
        keys_of.setdefault(id(tensor), []).append(key)
    modules = dict(net.named_modules(remove_duplicate=False))
    rows = []
    for key, tensor in state.items():
        layer = key.rpartition(".")[0]
        module = modules.get(layer, net)
        lazy = is_lazy(tensor)
        rows.append(
            {
                "key": key,
                "layer": layer,
                "type": type(module).__name__,
                "kind": "parameter" if id(tensor) in params else "buffer",
                "shape": "uninitialized" if lazy else str(tuple(tensor.shape)),
                "count": None if lazy else tensor.numel(),
                "dtype": str(tensor.dtype).removeprefix("torch."),
                "device": str(tensor.device),
                "requires_grad": bool(tensor.requires_grad),
                "tied_with": _others(keys_of[id(tensor)], key),
            }
        )
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["count"] = df["count"].astype("Int64")
    df.attrs["totals"] = asdict(totals(net))  # plain data, so the frame still serializes (Arrow, JSON)
    df.attrs["note"] = TIED_NOTE
    return df


def _others(keys: list[str], key: str, shown: int = 6) -> str:
    """The keys tied to `key`; a layer shared hundreds of times lists the first few and a count."""
    if len(keys) == 1:
        return ""
    others = [k for k in keys[: shown + 1] if k != key][:shown]
    rest = len(keys) - 1 - len(others)
    return ", ".join(others) + (f" and {rest} more" if rest else "")


def _numel(t: torch.Tensor) -> int:
    return 0 if is_lazy(t) else t.numel()
