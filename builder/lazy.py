"""Lazy initialization made visible: a design's network before torch's first forward pass, and after it.

torch's Lazy* layers (nn.LazyLinear, nn.LazyConv2d, ...) hold an `UninitializedParameter` until the first
input arrives; that forward pass (Blockwork's dry run) infers the missing size, gives the parameter its shape
and turns the layer into its ordinary class (LazyLinear becomes Linear). `instantiate` returns the network in
the first state, `lazy_parameters` sets both states side by side, one row per tensor of a lazy layer.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from .build import _MetaBuilder, meta_network
from .design import Design
from .table import summary

LAZY_COLUMNS = ["key", "type before", "shape before", "type after", "shape after", "inferred"]


def instantiate(design: Design, device: str | torch.device = "meta") -> nn.Module:
    """The design's network as its constructors leave it, before any forward pass.

    Lazy layers still hold torch's UninitializedParameter (``summary`` shows "uninitialized"); the first
    forward pass on an input materializes them, as in the chapter. On `meta` (the default) nothing is
    allocated; on another device the eager layers get real weights from their constructors. The parameter
    budget is checked first, on meta. Raises DesignError for a design that cannot be constructed.
    """
    builder = _MetaBuilder(design)
    with torch.device("meta"):
        net = builder.block(design.top, "")
    builder.check_budget(net)
    if torch.device(device).type == "meta":
        return net
    with torch.device(device):
        return _MetaBuilder(design).block(design.top, "")


def lazy_parameters(design: Design) -> pd.DataFrame:
    """One row per tensor that is uninitialized before the dry run: its key, layer type and shape before
    ("uninitialized") and after (what torch inferred), and the inferred constructor argument.

    Both states are real torch modules on the meta device (no memory). Empty when the design has no lazy
    layers. Raises DesignError when the dry run rejects the design.
    """
    before = summary(instantiate(design))
    after_net, run = meta_network(design)
    after = summary(after_net).set_index("key")
    inferred = {r.key: ", ".join(f"{k}={v}" for k, v in r.inferred.items()) for r in run.layers}
    rows = []
    for _, row in before[before["shape"] == "uninitialized"].iterrows():
        key = row["key"]
        rows.append(
            {
                "key": key,
                "type before": row["type"],
                "shape before": row["shape"],
                "type after": after.at[key, "type"],
                "shape after": after.at[key, "shape"],
                "inferred": inferred.get(row["layer"], ""),
            }
        )
    return pd.DataFrame(rows, columns=LAZY_COLUMNS)
