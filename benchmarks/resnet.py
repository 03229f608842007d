"""d2l's ResNet-18 (8.6) written by hand, as a notebook user has it: the module `from_module` reads."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Residual(nn.Module):
    def __init__(self, num_channels: int, use_1x1conv: bool = False, strides: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides) if use_1x1conv else None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Sequential(
                nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
                nn.LazyBatchNorm2d(),
                nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
        )
        for i, (n, c) in enumerate(((2, 64), (2, 128), (2, 256), (2, 512))):
            first = [j == 0 and i > 0 for j in range(n)]
            blk = [Residual(c, use_1x1conv=f, strides=2 if f else 1) for f in first]
            self.net.add_module(f"b{i + 2}", nn.Sequential(*blk))
        self.net.add_module(
            "last", nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes))
        )

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.net(X)


def resnet18(x: torch.Tensor) -> nn.Module:
    """ResNet-18 materialized by a forward pass on x (as after the chapter's dry run), in eval mode."""
    net = ResNet18()
    with torch.no_grad():
        net(x)
    return net.eval()
