"""The heavy chapter-8 presets (AlexNet, VGG-11 at the book's 224 x 224) against d2l's code: state_dict keys and
shapes, strict loads both ways with equal outputs, at the default limits. The lighter presets (NiN, ...) are in
tests/chapter.py's HAND_WRITTEN and go through every test of the examples."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from builder import build, dry_run, example_input, example_names, load_example
from builder.examples import HEAVY
from builder.limits import _DEFAULTS

from .chapter import HAND_WRITTEN, HEAVY_HAND_WRITTEN


def test_heavy_examples_are_offered_but_can_be_left_out() -> None:
    assert set(HEAVY_HAND_WRITTEN) == HEAVY
    assert set(example_names()) > HEAVY
    assert not HEAVY & set(example_names(heavy=False))
    assert set(example_names()) - set(example_names(heavy=False)) == HEAVY
    assert "nin" in HAND_WRITTEN and "nin" in example_names(heavy=False)


@pytest.mark.parametrize(("name", "parameters"), [("alexnet", 46_764_746), ("vgg11", 128_806_154)])
def test_heavy_examples_equal_the_books_code_at_the_default_limits(monkeypatch, name: str, parameters: int) -> None:
    for variable in _DEFAULTS:
        monkeypatch.delenv(variable, raising=False)
    design = load_example(name)
    run = dry_run(design)
    assert run.output_shape == (1, 10)
    x = example_input(design)
    ours, theirs = build(design, seed=0).eval(), HEAVY_HAND_WRITTEN[name]()
    with torch.no_grad():
        theirs(x)  # the book's dry run: materializes the lazy layers
    theirs.eval()
    assert sum(p.numel() for p in theirs.parameters()) == run.parameters == parameters
    assert [(k, t.shape) for k, t in ours.state_dict().items()] == [
        (k, t.shape) for k, t in theirs.state_dict().items()
    ]
    with torch.no_grad():
        theirs.load_state_dict(ours.state_dict(), strict=True)
        torch.testing.assert_close(theirs(x), ours(x))
        theirs.apply(lambda m: m.reset_parameters() if isinstance(m, nn.Linear | nn.Conv2d) else None)  # other weights
        ours.load_state_dict(theirs.state_dict(), strict=True)
        torch.testing.assert_close(ours(x), theirs(x))
