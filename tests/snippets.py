"""The chapter's code as a reader pastes it (d2l, Builders' Guide, PyTorch tab), and the "Beyond chains" classes.

Each snippet is plain PyTorch that defines `net` (the network) and `X` (an input). The tests run it — it is
ours, trusted — to get the hand-written module, the truth, and give the same text to `from_code`, which reads
it without running it. `FLOWS` needs flow blocks (design format 2).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

PRELUDE = """\
import torch
from torch import nn
from torch.nn import functional as F
"""

CHAPTER = {
    "sequential_mlp": """
net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))

X = torch.rand(2, 20)
net(X).shape
""",
    "mlp_class": """
class MLP(nn.Module):
    def __init__(self):
        # Call the constructor of the parent class nn.Module to perform
        # the necessary initialization
        super().__init__()
        self.hidden = nn.LazyLinear(256)
        self.out = nn.LazyLinear(10)

    # Define the forward propagation of the model, that is, how to return the
    # required model output based on the input X
    def forward(self, X):
        return self.out(F.relu(self.hidden(X)))

net = MLP()
X = torch.rand(2, 20)
net(X).shape
""",
    "my_sequential": """
class MySequential(nn.Module):
    def __init__(self, *args):
        super().__init__()
        for idx, module in enumerate(args):
            self.add_module(str(idx), module)

    def forward(self, X):
        for module in self.children():
            X = module(X)
        return X

net = MySequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
X = torch.rand(2, 20)
net(X).shape
""",
    "nest_mlp": """
class NestMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(),
                                 nn.LazyLinear(32), nn.ReLU())
        self.linear = nn.LazyLinear(16)

    def forward(self, X):
        return self.linear(self.net(X))

net = nn.Sequential(NestMLP(), nn.LazyLinear(20))
X = torch.rand(2, 20)
net(X)
""",
    "parameters": """
net = nn.Sequential(nn.LazyLinear(8),
                    nn.ReLU(),
                    nn.LazyLinear(1))

X = torch.rand(size=(2, 4))
net(X).shape
print(net[2].state_dict())
""",
    "tied": """
X = torch.rand(size=(2, 4))
# We need to give the shared layer a name so that we can refer to its
# parameters
shared = nn.LazyLinear(8)
net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(),
                    shared, nn.ReLU(),
                    shared, nn.ReLU(),
                    nn.LazyLinear(1))

net(X)
# Check whether the parameters are the same
print(net[2].weight.data[0] == net[4].weight.data[0])
net[2].weight.data[0, 0] = 100
# Make sure that they are actually the same object rather than just having the
# same value
print(net[2].weight.data[0] == net[4].weight.data[0])
""",
    "lazy": """
net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
net[0].weight

X = torch.rand(2, 20)
net(X)
net[0].weight.shape
""",
    "centered_layer": """
class CenteredLayer(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, X):
        return X - X.mean()

layer = CenteredLayer()
layer(torch.tensor([1.0, 2, 3, 4, 5]))
net = nn.Sequential(nn.LazyLinear(128), CenteredLayer())
X = torch.rand(4, 8)
Y = net(X)
Y.mean()
""",
    "my_linear": """
class MyLinear(nn.Module):
    def __init__(self, in_units, units):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(in_units, units))
        self.bias = nn.Parameter(torch.randn(units,))

    def forward(self, X):
        linear = torch.matmul(X, self.weight.data) + self.bias.data
        return F.relu(linear)

linear = MyLinear(5, 3)
linear.weight
net = nn.Sequential(MyLinear(64, 8), MyLinear(8, 1))
X = torch.rand(2, 64)
net(X)
""",
    "file_io_mlp": """
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.LazyLinear(256)
        self.output = nn.LazyLinear(10)

    def forward(self, x):
        return self.output(F.relu(self.hidden(x)))

net = MLP()
X = torch.randn(size=(2, 20))
Y = net(X)
torch.save(net.state_dict(), 'mlp.params')
""",
}

# d2l 6.1's FixedHiddenMLP: a while loop on a tensor's value (data-dependent control flow) and a constant
# weight outside any layer — what a design cannot hold.
FIXED_HIDDEN = """
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

net = FixedHiddenMLP()
X = torch.rand(2, 20)
net(X)
"""

RESIDUAL = """
class Residual(nn.Module):
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides) if use_1x1conv else None
        self.bn1 = nn.LazyBatchNorm2d(); self.bn2 = nn.LazyBatchNorm2d()
    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3: X = self.conv3(X)
        Y += X
        return F.relu(Y)
"""

FLOWS = {
    "residual": RESIDUAL
    + """
net = Residual(3)
X = torch.rand(4, 3, 6, 6)
""",
    "residual_1x1": RESIDUAL
    + """
net = Residual(6, use_1x1conv=True, strides=2)
X = torch.rand(4, 3, 6, 6)
""",
    "resnet18": RESIDUAL
    + """
class ResNet18(nn.Module):                      # d2l 8.6, arch ((2, 64), (2, 128), (2, 256), (2, 512))
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(nn.Sequential(nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
                                               nn.LazyBatchNorm2d(), nn.ReLU(),
                                               nn.MaxPool2d(kernel_size=3, stride=2, padding=1)))
        for i, (n, c) in enumerate(((2, 64), (2, 128), (2, 256), (2, 512))):
            blk = [Residual(c, use_1x1conv=(j == 0 and i > 0), strides=2 if (j == 0 and i > 0) else 1)
                   for j in range(n)]
            self.net.add_module(f'b{i + 2}', nn.Sequential(*blk))
        self.net.add_module('last', nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                                                  nn.LazyLinear(num_classes)))
    def forward(self, X): return self.net(X)

net = ResNet18()
X = torch.rand(1, 1, 96, 96)
""",
    "inception": """
class Inception(nn.Module):                     # d2l 8.4
    def __init__(self, c1, c2, c3, c4):
        super().__init__()
        self.b1_1 = nn.LazyConv2d(c1, kernel_size=1)
        self.b2_1 = nn.LazyConv2d(c2[0], kernel_size=1); self.b2_2 = nn.LazyConv2d(c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.LazyConv2d(c3[0], kernel_size=1); self.b3_2 = nn.LazyConv2d(c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1); self.b4_2 = nn.LazyConv2d(c4, kernel_size=1)
    def forward(self, x):
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)

net = Inception(64, (96, 128), (16, 32), 32)
X = torch.rand(1, 192, 28, 28)
""",
    "dense_block": """
def conv_block(num_channels):
    return nn.Sequential(
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.LazyConv2d(num_channels, kernel_size=3, padding=1))

class DenseBlock(nn.Module):
    def __init__(self, num_convs, num_channels):
        super(DenseBlock, self).__init__()
        layer = []
        for i in range(num_convs):
            layer.append(conv_block(num_channels))
        self.net = nn.Sequential(*layer)

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            # Concatenate input and output of each block along the channels
            X = torch.cat((X, Y), dim=1)
        return X

net = DenseBlock(2, 10)
X = torch.randn(4, 3, 8, 8)
""",
    "rgnet": """
def block1():
    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(),
                         nn.LazyLinear(4), nn.ReLU())

def block2():
    net = nn.Sequential()
    for i in range(4):
        # Nested here
        net.add_module(f'block {i}', block1())
    return net

rgnet = nn.Sequential(block2(), nn.LazyLinear(1))
X = torch.rand(size=(2, 4))
rgnet(X)
net = rgnet
""",
    "lstm_lm": """
class LSTMLM(nn.Module):                        # input (2, 35) of token ids < 28
    def __init__(self, vocab_size=28, embed_size=32, num_hiddens=64):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.LSTM(embed_size, num_hiddens, batch_first=True)
        self.linear = nn.Linear(num_hiddens, vocab_size)
    def forward(self, X):
        out, _ = self.rnn(self.embedding(X))
        return self.linear(out)

net = LSTMLM()
X = torch.randint(0, 28, (2, 35))
""",
    "tiny_transformer": """
class TinyTransformer(nn.Module):               # input (2, 16) of token ids < 100
    def __init__(self, vocab_size=100, d_model=32, nhead=4, dim_ff=64, num_layers=2, num_classes=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_ff, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, num_classes)
    def forward(self, X): return self.head(self.encoder(self.embedding(X)).mean(dim=1))

net = TinyTransformer()
X = torch.randint(0, 100, (2, 16))
""",
}


# Networks written the way other code bases write them (PyTorch's CIFAR-10 tutorial, torchvision's BasicBlock
# with an in-place ReLU and a downsample shortcut, a ModuleList looped over, a GRU's last step, self-attention
# with a residual and a norm): the importers are for the general case, not only the book's.
OUTSIDE = {
    "cifar_tutorial": """
class CifarNet(nn.Module):  # PyTorch's CIFAR-10 tutorial
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)

net = CifarNet()
X = torch.rand(2, 3, 32, 32)
""",
    "torchvision_basic_blocks": """
class BasicBlock(nn.Module):  # torchvision-style
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out

net = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, 2))
X = torch.rand(2, 8, 16, 16)
""",
    "module_list": """
class ListMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])
        self.head = nn.Linear(8, 2)
    def forward(self, x):
        for layer in self.layers:
            x = F.gelu(layer(x))
        return self.head(x)

net = ListMLP()
X = torch.rand(2, 8)
""",
    "gru_classifier": """
class GRUClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.gru = nn.GRU(16, 32, batch_first=True)
        self.fc = nn.Linear(32, 3)
    def forward(self, x):
        out, h = self.gru(self.emb(x))
        return self.fc(out[:, -1])

net = GRUClassifier()
X = torch.randint(0, 50, (2, 7))
""",
    "self_attention": """
class Attn(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.norm = nn.LayerNorm(16)
    def forward(self, x):
        y, _ = self.attn(x, x, x)
        return self.norm(x + y)

net = Attn()
X = torch.rand(2, 5, 16)
""",
    "tensor_ops": """
class Ops(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 6)
        self.b = nn.Linear(6, 6)
    def forward(self, x):
        y = F.gelu(self.a(x), approximate='tanh').unsqueeze(1)
        y = torch.squeeze(y, 1)
        z = F.elu(self.b(x), alpha=0.5)
        w = (y * z).view(x.shape[0], 2, 3).permute(0, 2, 1)
        return w.mean(dim=(1, 2), keepdim=True).flatten(1) + w.sum(-1).mean(-1, keepdim=True)

net = Ops()
X = torch.rand(4, 6)
""",
}


def run(snippet: str, *, call: bool = True) -> tuple[nn.Module, torch.Tensor]:
    """Run a snippet as plain PyTorch (the truth): its `net`, not yet called unless `call`, and its `X`.

    Module-level lines after the network is made (printing, calling it, saving) are left out when `call` is
    False, so a lazy network comes back uninitialized, as constructed.
    """
    namespace: dict[str, Any] = {}
    source = "\n".join(line for line in (PRELUDE + snippet).splitlines() if not line.startswith("torch.save"))
    if not call:
        source = "\n".join(line for line in source.splitlines() if not _uses_network(line))
    exec(compile(source, "<snippet>", "exec"), namespace)  # noqa: S102 — the test's own text, the truth
    return namespace["net"], namespace["X"]


def _uses_network(line: str) -> bool:
    text = line.strip()
    if text.startswith(("net(", "rgnet(", "print(", "Y = net", "Y.", "layer(", "linear.", "net[")):
        return True
    return text.startswith("net.") and not text.startswith("net.add_module")
