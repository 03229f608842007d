"""Limits live in one place (builder.limits), are changed by environment variables, and say which one."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from builder import Design, DesignError, build, dry_run, example_input, limits
from builder.limits import _DEFAULTS

from .chapter import _vgg_block
from .conftest import ROOT


def test_every_limit_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in _DEFAULTS:
        assert f"`{name}`" in readme, name


def test_environment_overrides_and_bad_values(monkeypatch) -> None:
    monkeypatch.setenv("BLOCKWORK_MAX_LAYERS", "1_000")
    assert limits().max_layers == 1000
    monkeypatch.setenv("BLOCKWORK_MAX_LAYERS", "many")
    with pytest.raises(ValueError, match="BLOCKWORK_MAX_LAYERS must be a whole number, got 'many'"):
        limits()
    monkeypatch.setenv("BLOCKWORK_MAX_LAYERS", "0")
    with pytest.raises(ValueError, match="must be positive"):
        limits()


def _vgg11_reference() -> nn.Module:
    """d2l 8.2's VGG(arch=((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))).net, as the book writes it."""
    arch = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
    return nn.Sequential(
        *(_vgg_block(n, c) for n, c in arch),
        nn.Flatten(),
        nn.LazyLinear(4096),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.LazyLinear(4096),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.LazyLinear(10),
    )


def _vgg11_design() -> Design:
    def block(n: int, c: int) -> dict[str, Any]:
        convs = [[{"type": "LazyConv2d", "out_channels": c, "kernel_size": 3, "padding": 1}, {"type": "ReLU"}]] * n
        return {"type": "Sequential", "layers": [*sum(convs, []), {"type": "MaxPool2d", "kernel_size": 2, "stride": 2}]}

    head = [
        {"type": "LazyLinear", "out_features": 4096},
        {"type": "ReLU"},
        {"type": "Dropout", "p": 0.5},
    ]
    arch = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
    return Design.from_dict(
        {
            "format": 2,
            "name": "vgg11",
            "input": {"shape": [1, 1, 224, 224]},
            "layers": [
                *(block(n, c) for n, c in arch),
                {"type": "Flatten"},
                *head,
                *head,
                {"type": "LazyLinear", "out_features": 10},
            ],
        }
    )


def test_vgg11_opens_at_the_default_limits(monkeypatch) -> None:
    """The chapter-8 network the old 50 M budget refused: VGG-11 at 224 x 224 (128.8 M parameters) dry-runs and
    builds at the default limits, equal to the book's code (keys, strict load both ways, outputs)."""
    for name in _DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    design = _vgg11_design()
    run = dry_run(design)
    assert run.parameters == 128_806_154 and run.output_shape == (1, 10)
    x = example_input(design)
    ours, theirs = build(design, seed=0).eval(), _vgg11_reference()
    with torch.no_grad():
        theirs(x)  # the book's dry run materializes the lazy layers
    theirs.eval()
    assert [(k, t.shape) for k, t in ours.state_dict().items()] == [
        (k, t.shape) for k, t in theirs.state_dict().items()
    ]
    with torch.no_grad():
        theirs.load_state_dict(ours.state_dict(), strict=True)
        torch.testing.assert_close(theirs(x), ours(x))
        theirs.apply(lambda m: m.reset_parameters() if isinstance(m, nn.Linear) else None)  # other weights
        ours.load_state_dict(theirs.state_dict(), strict=True)
        torch.testing.assert_close(ours(x), theirs(x))
    monkeypatch.setenv("BLOCKWORK_MAX_PARAMS", "50000000")  # the old default: refused on meta, naming the head
    with pytest.raises(
        DesignError, match=r"128,806,154 parameters, over the budget of 50,000,000.*layers\[6\] LazyLinear"
    ):
        dry_run(design)
