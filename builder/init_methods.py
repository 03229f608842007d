"""The initialization methods, written as d2l 6.3 writes them: plain functions of a module.

`to_code` copies these functions verbatim (`inspect.getsource`) into exported scripts, so they stay in the
chapter's form (`def my_init(m):`, no annotations; mypy is told so in pyproject.toml) and may use only torch.
Which spec names which function, and the checks of a spec, are `builder.init_spec`'s.
"""

from torch import nn


def init_normal(m, mean=0.0, std=0.01):
    nn.init.normal_(m.weight, mean=mean, std=std)


def init_constant(m, value=1.0):
    nn.init.constant_(m.weight, value)


def init_zeros(m):
    nn.init.zeros_(m.weight)


def init_xavier_uniform(m, gain=1.0):
    nn.init.xavier_uniform_(m.weight, gain=gain)


def init_xavier_normal(m, gain=1.0):
    nn.init.xavier_normal_(m.weight, gain=gain)


def init_kaiming_uniform(m, mode="fan_in", nonlinearity="relu"):
    nn.init.kaiming_uniform_(m.weight, mode=mode, nonlinearity=nonlinearity)


def init_kaiming_normal(m, mode="fan_in", nonlinearity="relu"):
    nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity=nonlinearity)


def my_init(m):
    # The chapter's custom initializer: U(-10, 10), then zero every weight with |w| < 5.
    nn.init.uniform_(m.weight, -10, 10)
    m.weight.data *= m.weight.data.abs() >= 5


def zero_bias(m):
    if getattr(m, "bias", None) is not None:
        nn.init.zeros_(m.bias)
