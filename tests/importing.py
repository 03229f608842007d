"""What every import must give: a design equal to the hand-written module in keys, ties, strict load, outputs."""

from __future__ import annotations

import torch
from torch import nn

from builder import Design, build
from builder.lazy import instantiate


def ties(net: nn.Module) -> set[tuple[str, ...]]:
    """state_dict keys holding one tensor object (a shared layer's positions)."""
    groups: dict[int, list[str]] = {}
    for key, t in net.state_dict(keep_vars=True).items():
        groups.setdefault(id(t), []).append(key)
    return {tuple(keys) for keys in groups.values() if len(keys) > 1}


def lazy_keys(net: nn.Module) -> set[str]:
    return {
        k for k, t in net.state_dict(keep_vars=True).items() if isinstance(t, nn.parameter.UninitializedTensorMixin)
    }


def assert_same_network(design: Design, reference: nn.Module, x: torch.Tensor) -> nn.Module:
    """The design, built, has the reference's keys (in order), ties and laziness; it loads the reference's
    state_dict strictly and gives its outputs in eval mode on x. `reference` is as constructed (not yet run)."""
    assert lazy_keys(instantiate(design)) == lazy_keys(reference), "lazy layers differ"
    assert tuple(design.input_shape) == tuple(x.shape)
    with torch.no_grad():
        reference(x)  # the chapter's dry run: materializes the reference's lazy layers
    built = build(design)
    assert list(built.state_dict()) == list(reference.state_dict())
    assert ties(built) == ties(reference)
    built.load_state_dict(reference.state_dict(), strict=True)
    built.eval(), reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(built(x), reference(x))
    return built
