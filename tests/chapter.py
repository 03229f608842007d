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


# -- chapter 8 at the book's 224 x 224 (d2l 8.1-8.3) ----------------------------------------------------------


def _nin_block(out_channels: int, kernel_size: int, strides: int, padding: int) -> nn.Module:  # d2l 8.3
    return nn.Sequential(
        nn.LazyConv2d(out_channels, kernel_size, strides, padding),
        nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1),
        nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1),
        nn.ReLU(),
    )


def nin(num_classes: int = 10) -> nn.Module:  # d2l 8.3: NiN().net
    return nn.Sequential(
        _nin_block(96, kernel_size=11, strides=4, padding=0),
        nn.MaxPool2d(3, stride=2),
        _nin_block(256, kernel_size=5, strides=1, padding=2),
        nn.MaxPool2d(3, stride=2),
        _nin_block(384, kernel_size=3, strides=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(0.5),
        _nin_block(num_classes, kernel_size=3, strides=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
    )


def alexnet(num_classes: int = 10) -> nn.Module:  # d2l 8.1: AlexNet().net
    return nn.Sequential(
        nn.LazyConv2d(96, kernel_size=11, stride=4, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.LazyConv2d(256, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.LazyConv2d(384, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.LazyConv2d(384, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.LazyConv2d(256, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Flatten(),
        nn.LazyLinear(4096),
        nn.ReLU(),
        nn.Dropout(p=0.5),
        nn.LazyLinear(4096),
        nn.ReLU(),
        nn.Dropout(p=0.5),
        nn.LazyLinear(num_classes),
    )


def vgg11(
    num_classes: int = 10,
) -> nn.Module:  # d2l 8.2: VGG(arch=((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))).net
    arch = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
    conv_blks = [_vgg_block(num_convs, out_channels) for num_convs, out_channels in arch]
    return nn.Sequential(
        *conv_blks,
        nn.Flatten(),
        nn.LazyLinear(4096),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.LazyLinear(4096),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.LazyLinear(num_classes),
    )


HAND_WRITTEN["nin"] = nin
# Hundreds of MB each: held against the book in tests/test_chapter8.py, not in every test of HAND_WRITTEN.
HEAVY_HAND_WRITTEN = {"alexnet": alexnet, "vgg11": vgg11}


# -- beyond chains (d2l 6.2, 8.4, 8.6, 8.7): the references of the flow examples ----------------------------


def _block1() -> nn.Module:  # d2l 6.2
    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(4), nn.ReLU())


def _block2() -> nn.Module:
    net = nn.Sequential()
    for i in range(4):
        net.add_module(f"block {i}", _block1())  # names with spaces: the book's own
    return net


def rgnet() -> nn.Module:
    return nn.Sequential(_block2(), nn.LazyLinear(1))


class Residual(nn.Module):  # d2l 8.6
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


class ResNet18(nn.Module):  # d2l 8.6, arch ((2, 64), (2, 128), (2, 256), (2, 512))
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
            blk = [
                Residual(c, use_1x1conv=(j == 0 and i > 0), strides=2 if (j == 0 and i > 0) else 1) for j in range(n)
            ]
            self.net.add_module(f"b{i + 2}", nn.Sequential(*blk))
        self.net.add_module(
            "last", nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes))
        )

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.net(X)


def resnet18() -> nn.Module:
    return ResNet18().net  # the example's top level is the book's `net`, so keys are 0.0.weight, b2.0.conv1.weight…


class Inception(nn.Module):  # d2l 8.4
    def __init__(self, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int) -> None:
        super().__init__()
        self.b1_1 = nn.LazyConv2d(c1, kernel_size=1)
        self.b2_1 = nn.LazyConv2d(c2[0], kernel_size=1)
        self.b2_2 = nn.LazyConv2d(c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.LazyConv2d(c3[0], kernel_size=1)
        self.b3_2 = nn.LazyConv2d(c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.LazyConv2d(c4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


def inception() -> nn.Module:
    return Inception(64, (96, 128), (16, 32), 32)


def _conv_block(num_channels: int) -> nn.Module:  # d2l 8.7
    return nn.Sequential(nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(num_channels, kernel_size=3, padding=1))


class DenseBlock(nn.Module):  # d2l 8.7
    def __init__(self, num_convs: int, num_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(*(_conv_block(num_channels) for _ in range(num_convs)))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        for blk in self.net:
            Y = blk(X)
            X = torch.cat((X, Y), dim=1)  # each block's output concatenated with its input along the channels
        return X


def densenet_block() -> nn.Module:
    return DenseBlock(2, 10)


HAND_WRITTEN |= {"rgnet": rgnet, "resnet18": resnet18, "inception": inception, "densenet_block": densenet_block}


# -- sequences (issue 14): the references of lstm_lm and transformer_encoder, as the issue writes them -----------

from .sequence_models import LSTMLM, TinyTransformer  # noqa: E402  (kept beside their own tests)

HAND_WRITTEN |= {"lstm_lm": LSTMLM, "transformer_encoder": TinyTransformer}
