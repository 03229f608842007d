"""The chapter's networks written by hand in plain PyTorch (d2l, Builders' Guide): the truth tests compare with.

Each function returns a fresh network that still needs its dry run where it is lazy, exactly as the book.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def sequential_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(20, 256)
        self.out = nn.Linear(256, 10)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.hidden(X)))


def custom_mlp() -> nn.Module:
    return MLP()


def tied() -> nn.Module:
    shared = nn.Linear(8, 8)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1))


def lazy_mlp() -> nn.Module:
    return nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))


class MyLinear(nn.Module):
    """The book's layer, minus its `.data` slip (which would stop gradients)."""

    def __init__(self, in_units: int, units: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_units, units))
        self.bias = nn.Parameter(torch.randn(units))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return F.relu(torch.matmul(X, self.weight) + self.bias)


def my_linear() -> nn.Module:
    return nn.Sequential(MyLinear(64, 8), MyLinear(8, 1))


class NestMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(32), nn.ReLU())
        self.linear = nn.LazyLinear(16)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.linear(self.net(X))


def nested() -> nn.Module:
    return nn.Sequential(NestMLP(), nn.LazyLinear(20))


def lenet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2),
        nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5),
        nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.Sigmoid(),
        nn.Linear(120, 84),
        nn.Sigmoid(),
        nn.Linear(84, 10),
    )


def _vgg_block(num_convs: int, out_channels: int) -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers += [nn.LazyConv2d(out_channels, kernel_size=3, padding=1), nn.ReLU()]
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def vgg_block() -> nn.Module:
    return nn.Sequential(_vgg_block(2, 16), _vgg_block(2, 32), nn.Flatten(), nn.LazyLinear(10))


def mlp_dropout_bn() -> nn.Module:
    return nn.Sequential(
        nn.Linear(20, 256),
        nn.BatchNorm1d(256),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(256, 128),
        nn.BatchNorm1d(128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, 10),
    )


def gpu_linear() -> nn.Module:  # d2l 6.7.3: net = nn.Sequential(nn.LazyLinear(1)), X = torch.ones(2, 3)
    return nn.Sequential(nn.LazyLinear(1))


HAND_WRITTEN = {
    "sequential_mlp": sequential_mlp,
    "custom_mlp": custom_mlp,
    "tied": tied,
    "lazy_mlp": lazy_mlp,
    "my_linear": my_linear,
    "nested": nested,
    "lenet": lenet,
    "vgg_block": vgg_block,
}
HAND_WRITTEN["mlp_dropout_bn"] = mlp_dropout_bn
HAND_WRITTEN["gpu_linear"] = gpu_linear
