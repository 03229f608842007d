"""from_module: the chapter's networks and the "Beyond chains" classes, as live modules, into designs equal to
them (keys, ties, laziness, strict load, outputs); the module passed in is left exactly as it was; what a
design cannot hold is a DesignError naming the module path and the operation."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from builder import DesignError, build, from_module
from builder.importing.tree import flows_supported

from .chapter import HAND_WRITTEN
from .importing import assert_same_network, ties
from .snippets import CHAPTER, FIXED_HIDDEN, FLOWS, OUTSIDE, run

needs_flows = pytest.mark.skipif(not flows_supported(), reason="flow blocks (design format 2) not landed yet")


def snapshot(m: nn.Module) -> dict[str, object]:
    """Everything from_module must leave alone: tensor objects and values, types, modes, hooks."""
    state = m.state_dict(keep_vars=True)
    return {
        "tensors": {k: (id(t), type(t), t.device, None if _lazy(t) else t.detach().clone()) for k, t in state.items()},
        "types": [(k, type(c)) for k, c in m.named_modules()],
        "training": [c.training for c in m.modules()],
        "hooks": [len(c._forward_hooks) + len(c._forward_pre_hooks) for c in m.modules()],
    }


def _lazy(t: torch.Tensor) -> bool:
    return isinstance(t, nn.parameter.UninitializedTensorMixin)


def assert_unchanged(m: nn.Module, before: dict[str, object]) -> None:
    after = snapshot(m)
    assert after["types"] == before["types"] and after["training"] == before["training"]
    assert after["hooks"] == before["hooks"]
    for key, (ident, kind, device, value) in before["tensors"].items():  # type: ignore[attr-defined]
        now = after["tensors"][key]  # type: ignore[index]
        assert now[:3] == (ident, kind, device), key
        assert (value is None and now[3] is None) or torch.equal(value, now[3]), key


def read(module: nn.Module, x: torch.Tensor):
    before = snapshot(module)
    design = from_module(module, x)
    assert_unchanged(module, before)
    return design


@pytest.mark.parametrize("name", list(CHAPTER))
def test_every_chapter_snippet_as_a_module(name: str) -> None:
    module, x = run(CHAPTER[name], call=False)
    assert_same_network(read(module, x), module, x)


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_every_hand_written_example_as_a_module(name: str) -> None:
    module = HAND_WRITTEN[name]()
    from builder import example_input, load_example

    x = example_input(load_example(name))
    assert_same_network(read(module, x), module, x)


@needs_flows
@pytest.mark.parametrize("name", list(FLOWS))
def test_every_beyond_chains_class_as_a_module(name: str) -> None:
    module, x = run(FLOWS[name], call=False)
    design = read(module, x)
    assert_same_network(design, module, x)


@needs_flows
@pytest.mark.parametrize("name", list(OUTSIDE))
def test_networks_written_elsewhere_as_modules(name: str) -> None:
    module, x = run(OUTSIDE[name], call=False)
    assert_same_network(read(module, x), module, x)


def test_a_materialized_module_reads_as_eager_layers_and_keeps_its_ties() -> None:
    module, x = run(CHAPTER["tied"], call=True)  # run once: lazy layers are Linear now
    design = read(module, x)
    assert "Lazy" not in design.to_json()
    net = assert_same_network(design, copy.deepcopy(module), x)
    assert net[2] is net[4] and ties(net) == ties(module)


def test_the_same_module_object_at_two_keys_is_one_shared_layer() -> None:
    class TwoNames(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = nn.Linear(4, 4)
            self.second = self.first  # registered under both names: keys first.* and second.*
            self.head = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.second(self.first(x)))

    module, x = TwoNames(), torch.rand(3, 4)
    if not flows_supported():
        pytest.skip("a class read into a flow block needs design format 2")
    net = assert_same_network(read(module, x), module, x)
    assert net.first is net.second


@needs_flows
def test_a_child_called_twice_is_one_layer_called_twice() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.l(F.relu(self.l(x)))

    module, x = Twice(), torch.rand(3, 4)
    design = read(module, x)
    assert design.to_dict()["flow"] == ["l", {"op": "relu"}, "l"]
    assert_same_network(design, module, x)


# -- what a design cannot hold ------------------------------------------------------------------------------------


class Trick(nn.Module):
    """relu_ changes y in place, and y is added afterwards: the result depends on the in-place change."""

    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.l(x)
        z = y.relu_()
        return y + z


class InPlaceOnInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l(F.relu(x, inplace=True))


class Scale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.s = nn.Parameter(torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.s


class SqrtScale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l(x) / math.sqrt(x.size(-1))


def tampered() -> nn.Module:
    """A Linear(4, 4) whose weight was swapped for a (3, 4) one: its arguments no longer give its tensors."""
    net = nn.Sequential(nn.ReLU(), nn.Linear(4, 4))
    net[1].weight = nn.Parameter(torch.rand(3, 4))
    return net


def fixed_hidden() -> nn.Module:
    module, _ = run(FIXED_HIDDEN, call=False)
    return module


CANNOT = {
    "the book's while loop": (fixed_hidden, "the top module (FixedHiddenMLP): data-dependent control flow"),
    "the while loop nested": (
        lambda: nn.Sequential(nn.LazyLinear(20), fixed_hidden()),
        "1 (FixedHiddenMLP): data-dependent control flow",
    ),
    "an unknown torch layer": (lambda: nn.Sequential(nn.Linear(4, 4), nn.Hardswish()), "1 (Hardswish)"),
    "its own parameter": (lambda: nn.Sequential(nn.Linear(4, 4), Scale()), "1 (Scale): holds its own tensor 's'"),
    "an in-place trick": (lambda: nn.Sequential(Trick()), "0 (Trick): .relu_() changes its input in place"),
    "in place on the input": (lambda: nn.Sequential(InPlaceOnInput()), "(forward's own input)"),
    "a single layer": (lambda: nn.Linear(4, 4), "a single Linear"),
    "math of the input's size": (
        lambda: nn.Sequential(SqrtScale()),
        "0 (SqrtScale): forward gives a value computed from its input to a Python function",
    ),
    "a layer whose arguments do not give its tensors": (
        tampered,
        "1 (Linear): its tensors {'weight': (3, 4), 'bias': (4,)} differ from those of a Linear made from its "
        "arguments {'weight': (4, 4), 'bias': (4,)}",
    ),
}


@pytest.mark.parametrize("case", list(CANNOT))
def test_what_a_design_cannot_hold_names_the_module_and_operation(case: str) -> None:
    make, words = CANNOT[case]
    module = make()
    before = snapshot(module)
    with pytest.raises(DesignError) as e:
        from_module(module, torch.rand(2, 4 if case != "the book's while loop" else 20))
    assert words in str(e.value), str(e.value)
    assert_unchanged(module, before)


def test_bad_arguments_are_type_errors() -> None:
    with pytest.raises(TypeError, match="torch.nn.Module"):
        from_module("net", torch.rand(2, 2))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tensor"):
        from_module(nn.Sequential(nn.Linear(2, 2)), [1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(DesignError, match="float16"):
        from_module(nn.Sequential(nn.Linear(2, 2)), torch.rand(2, 2).half())


def test_the_design_builds_on_its_own_without_the_module() -> None:
    module, x = run(CHAPTER["nest_mlp"], call=False)
    design = read(module, x)
    del module
    assert build(design)(x).shape == (2, 20)
