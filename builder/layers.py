"""The custom layers of the chapter (d2l 6.5), as Blockwork ships them.

They are ordinary nn.Modules: their state_dict keys (`weight`, `bias`) and shapes are those of the chapter's
hand-written classes, so weights move between the two.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MyLinear(nn.Module):
    """A fully connected layer with ReLU built in: ``relu(X @ weight + bias)``.

    weight: (in_units, units) — transposed relative to nn.Linear, as in the chapter.
    bias:   (units,)
    Unlike the book's version, forward uses the parameters themselves, not ``.data``, so gradients flow.
    """

    def __init__(self, in_units: int, units: int) -> None:
        super().__init__()
        self.in_units = in_units
        self.units = units
        self.weight = nn.Parameter(torch.empty(in_units, units))
        self.bias = nn.Parameter(torch.empty(units))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The chapter draws both from a standard normal (torch.randn).
        nn.init.normal_(self.weight)
        nn.init.normal_(self.bias)

    def forward(self, X: torch.Tensor) -> torch.Tensor:  # (*, in_units) -> (*, units)
        return F.relu(torch.matmul(X, self.weight) + self.bias)

    def extra_repr(self) -> str:
        return f"in_units={self.in_units}, units={self.units}"


class CenteredLayer(nn.Module):
    """Subtracts the mean of the whole input: ``X - X.mean()``. No parameters."""

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return X - X.mean()
