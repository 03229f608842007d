"""The chapter's own blocks that are code rather than a design (d2l 6.1): `MySequential`, `FixedHiddenMLP`,
`NestMLP` and the chimera, written as the book writes them.

The Lessons page shows their source (`inspect.getsource`, so what is shown is what runs) and runs them on
the session's data. `FixedHiddenMLP` is what a design cannot hold: a constant random weight that is not a
parameter, arithmetic on it (`X @ W + 1`) and a `while` loop whose count depends on the data.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MySequential(nn.Module):
    def __init__(self, *args):
        super().__init__()
        for idx, module in enumerate(args):
            self.add_module(str(idx), module)

    def forward(self, X):
        # Because _modules is an ordered dict, the children run in the order they were added
        for module in self.children():
            X = module(X)
        return X


class FixedHiddenMLP(nn.Module):
    def __init__(self):
        super().__init__()
        # Random weight parameters that will not compute gradients and
        # therefore keep constant during training
        self.rand_weight = torch.rand((20, 20))
        self.linear = nn.LazyLinear(20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight + 1)
        # Reuse the fully connected layer. This is equivalent to sharing
        # parameters with two fully connected layers
        X = self.linear(X)
        # Control flow
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()


class NestMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(32), nn.ReLU())
        self.linear = nn.LazyLinear(16)

    def forward(self, X):
        return self.linear(self.net(X))


def chimera() -> nn.Sequential:
    return nn.Sequential(NestMLP(), nn.LazyLinear(20), FixedHiddenMLP())
