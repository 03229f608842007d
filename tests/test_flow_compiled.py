"""A flow block's forward is its flow compiled once to straight-line Python (builder.flow.compile_forward), not
interpreted step by step. Held against hand-written PyTorch (outputs and gradients, train mode), against the
step-by-step walker, and on what a module meets: hooks, copies, pickling, torch.fx, any name add_module takes."""

from __future__ import annotations

import copy
import io
import linecache
import pickle

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from builder import Design, build, example_input, load_example
from builder import flow as flow_module
from builder.flow import FlowModule, PlainVisitor, compile_forward

from .chapter import HAND_WRITTEN

EXAMPLES = ("resnet18", "inception", "densenet_block", "lstm_lm", "transformer_encoder", "rgnet")


def pair(name: str) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    """(built, hand-written with the built one's weights, an input)."""
    design = load_example(name)
    x = example_input(design, seed=5)
    torch.manual_seed(0)
    theirs = HAND_WRITTEN[name]()
    if x.dtype == torch.int64:  # token ids: random ones below the embedding's size
        vocab = next(m for m in theirs.modules() if isinstance(m, nn.Embedding)).num_embeddings
        x = torch.randint(0, vocab, x.shape, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        theirs(x)  # the chapter's dry run: materializes lazy layers
    ours = build(design, seed=1)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    return ours, theirs, x


def step(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A training step's output and gradients (dropout draws the same masks: the same seed, the same op order)."""
    net.train()
    net.zero_grad(set_to_none=True)
    torch.manual_seed(7)
    y = net(x)
    y.square().mean().backward()
    return y.detach(), {k: p.grad for k, p in net.named_parameters() if p.grad is not None}


def assert_same_step(a: tuple[torch.Tensor, dict], b: tuple[torch.Tensor, dict]) -> None:
    torch.testing.assert_close(a[0], b[0])
    assert list(a[1]) == list(b[1]) and a[1]
    for key in a[1]:
        torch.testing.assert_close(a[1][key], b[1][key], msg=lambda m, key=key: f"{key}: {m}")


def no_walking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the step-by-step walker fail if forward uses it."""

    def walk(*args, **kwargs):
        raise AssertionError("forward walked the flow")

    monkeypatch.setattr(flow_module, "run", walk)


@pytest.mark.parametrize("name", EXAMPLES)
def test_compiled_forward_equals_hand_written_outputs_and_gradients(name: str, monkeypatch) -> None:
    ours, theirs, x = pair(name)
    assert any(isinstance(m, FlowModule) for m in ours.modules()) or name == "rgnet"
    no_walking(monkeypatch)
    assert_same_step(step(ours, x), step(theirs, x))
    ours.eval(), theirs.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", EXAMPLES[:5])
def test_compiled_forward_equals_the_walker(name: str) -> None:
    ours, _, x = pair(name)
    walker = copy.deepcopy(ours)
    for m in walker.modules():
        if isinstance(m, FlowModule):
            m._flow_visitor = PlainVisitor()  # forward walks the flow step by step
    assert_same_step(step(ours, x), step(walker, x))


def test_a_residual_block_is_written_as_straight_line_code() -> None:
    net = build(load_example("resnet18"))
    block = net.b3[0]
    fn = block._flow_forward
    source = "".join(linecache.getlines(fn.__code__.co_filename))
    assert source.startswith("def forward(self, x):\n") and "for " not in source and " if " not in source
    assert "conv1" not in source  # keys are constants, never source text
    assert fn is net.b4[0]._flow_forward  # blocks with equal flows share one function
    assert fn.__globals__["__builtins__"] == {}
    assert net.b2[0]._flow_forward is not fn  # a skip without conv3 is another program


class Odd(nn.Module):
    """Hand-written: children registered with add_module under names no attribute could have."""

    NAMES = ("block 0", "x", "self", "_c0", "b1", "del", "1 + 1", "a'b", 'q"r)', "\\n", "naïve λ", "return x")

    def __init__(self) -> None:
        super().__init__()
        for i, name in enumerate(self.NAMES):
            self.add_module(name, nn.Linear(4, 4) if i % 3 else nn.Sequential(nn.Linear(4, 4), nn.Tanh()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = dict(self.named_children())
        y = F.relu(m["block 0"](x))
        a = m["x"](y) + m["self"](y)  # a skip through two children
        b = torch.cat((m["_c0"][0](a), m["b1"](a)), dim=1).reshape(-1, 2, 4).mean(1) * m["del"](a)
        for name in self.NAMES[6:]:
            b = m[name](b)
        return b


def test_names_add_module_accepts_work(monkeypatch) -> None:
    layers = []
    for i, name in enumerate(Odd.NAMES):
        lin = {"type": "Linear", "in_features": 4, "out_features": 4}
        entry = {"type": "Sequential", "layers": [lin, {"type": "Tanh"}]} if i % 3 == 0 else lin
        layers.append({**entry, "name": name})
    flow = [
        "block 0",
        {"op": "relu"},
        {"branches": [["x"], ["self"]], "merge": "add"},
        {
            "branches": [
                [
                    {"branches": [["_c0.0"], ["b1"]], "merge": "cat", "dim": 1},
                    {"op": "reshape", "shape": [-1, 2, 4]},
                    {"op": "mean", "dim": 1},
                ],
                ["del"],
            ],
            "merge": "mul",
        },
        *Odd.NAMES[6:],
    ]
    d = Design.from_dict({"format": 2, "input": {"shape": [3, 4]}, "layers": layers, "flow": flow})
    ours, theirs = build(d, seed=2), Odd()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(3, 4)
    no_walking(monkeypatch)
    assert_same_step(step(ours, x), step(theirs, x))


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Linear(4, 4)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.shared(F.relu(self.shared(x)))  # one child called twice
        return self.head(torch.cat((self.shared(y), torch.tanh(self.shared(y))), dim=1))


def test_a_layer_called_several_times_sums_its_gradients_as_hand_written(monkeypatch) -> None:
    d = Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [3, 4]},
            "shared": {"s": {"type": "Linear", "in_features": 4, "out_features": 4}},
            "layers": [
                {"shared": "s", "name": "shared"},
                {"type": "Linear", "in_features": 8, "out_features": 2, "name": "head"},
            ],
            "flow": [
                "shared",
                {"op": "relu"},
                "shared",
                {"branches": [["shared"], ["shared", {"op": "tanh"}]], "merge": "cat", "dim": 1},
                "head",
            ],
        }
    )
    ours, theirs = build(d, seed=3), Tied()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    no_walking(monkeypatch)
    x = torch.randn(3, 4)
    assert_same_step(step(ours, x), step(theirs, x))


def test_forward_hooks_see_every_call_in_the_books_order(monkeypatch) -> None:
    ours, theirs, x = pair("resnet18")
    no_walking(monkeypatch)
    seen: dict[str, list[str]] = {"ours": [], "theirs": []}
    for who, net in (("ours", ours), ("theirs", theirs)):
        for key, m in net.named_modules():
            m.register_forward_pre_hook(lambda m, a, key=key, who=who: seen[who].append(key))
    with torch.no_grad():
        ours(x), theirs(x)
    assert seen["ours"] == seen["theirs"] and "b3.0.conv3" in seen["ours"]
    # a hook that replaces a child's output changes what the flow goes on with, as in hand-written code
    for net in (ours, theirs):
        net.b5[1].bn2.register_forward_hook(lambda m, a, y: torch.zeros_like(y))
        net.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


def test_a_replaced_child_is_the_one_called() -> None:
    net = build(load_example("inception"))
    x = example_input(load_example("inception"))
    with torch.no_grad():
        before = net(x)
        net.b1_1 = nn.Conv2d(192, 64, kernel_size=1)
        nn.init.zeros_(net.b1_1.weight), nn.init.zeros_(net.b1_1.bias)
        after = net(x)
    assert after[:, :64].abs().max() == 0 and torch.equal(after[:, 64:], before[:, 64:])


def test_copies_pickles_and_torch_save_keep_a_working_forward() -> None:
    ours, theirs, x = pair("resnet18")
    ours.eval(), theirs.eval()
    with torch.no_grad():
        want = theirs(x)
    twin = copy.deepcopy(ours)
    buffer = io.BytesIO()
    torch.save(ours, buffer)
    assert b"<blockwork flow" not in buffer.getvalue()  # the compiled code is not stored
    loaded = torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)
    again = pickle.loads(pickle.dumps(ours))
    for copied in (twin, loaded, again):
        assert repr(copied) == repr(ours) and list(copied.state_dict()) == list(ours.state_dict())
        assert copied.b3[0]._flow_forward is ours.b3[0]._flow_forward
        assert copied.b3[0].conv1 is not ours.b3[0].conv1
        with torch.no_grad():
            torch.testing.assert_close(copied(x), want, rtol=0, atol=0)


def test_no_new_keys_buffers_or_repr() -> None:
    ours, theirs, _ = pair("resnet18")
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [k for k, _ in ours.named_buffers()] == [k for k, _ in theirs.named_buffers()]
    assert repr(ours.b3[0]).splitlines()[0] == "Residual("
    assert "flow: (conv1 → bn1 → relu → conv2 → bn2 | conv3) + → relu" in repr(ours.b3[0])


@pytest.mark.parametrize("name", ["resnet18", "inception", "densenet_block"])
def test_torch_fx_traces_the_compiled_forward(name: str) -> None:
    ours, _, x = pair(name)
    ours.eval()
    traced = torch.fx.symbolic_trace(ours)
    assert any(n.op == "call_module" and n.target.endswith("conv1") for n in traced.graph.nodes) or name != "resnet18"
    with torch.no_grad():
        torch.testing.assert_close(traced(x), ours(x), rtol=0, atol=0)


def test_torch_export_strict_traces_the_compiled_forward() -> None:
    ours, _, x = pair("inception")
    ours.eval()
    exported = torch.export.export(ours, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), ours(x))


def test_bad_programs_are_refused_not_written() -> None:
    with pytest.raises(KeyError):
        compile_forward(((1, "no such op", {}),))
    with pytest.raises(ValueError, match="no argument"):
        compile_forward(((1, "relu", {"x); import os; (": 1}),))
    with pytest.raises(ValueError, match="child by its key"):
        compile_forward(((0, (), None, None),))


def aten_ops(net: nn.Module, x: torch.Tensor) -> list[str]:
    """The aten operations a training step runs, forward and backward, in order."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Record(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    net.zero_grad(set_to_none=True)
    with Record() as r:
        net(x).square().mean().backward()
    return r.ops


def test_resnet18_runs_the_books_operations_add_in_place_included() -> None:
    ours, theirs, x = pair("resnet18")
    mine, book = aten_ops(ours, x), aten_ops(theirs, x)
    assert mine == book
    walker = copy.deepcopy(ours)
    for m in walker.modules():
        if isinstance(m, FlowModule):
            m._flow_visitor = PlainVisitor()
    walked = aten_ops(walker, x)  # b0 + b1: a new tensor where the book adds in place
    assert walked.count("aten.add") == book.count("aten.add") + 8
    assert walked.count("aten.add_") == book.count("aten.add_") - 8


@pytest.mark.parametrize(
    ("last", "why"),
    [
        ([{"op": "relu"}], "relu's backward needs its output"),
        (["drop"], "dropout in eval mode returns its input itself"),
        (["inner"], "a block's output may be any tensor"),
    ],
)
def test_an_add_after_anything_but_a_layers_new_output_is_not_in_place(last: list, why: str) -> None:
    lin = {"type": "Linear", "in_features": 4, "out_features": 4}
    d = Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [3, 4]},
            "layers": [
                {**lin, "name": "a"},
                {"type": "Dropout", "p": 0.5, "name": "drop"},
                {"type": "Sequential", "name": "inner", "layers": [{"type": "Identity"}]},
            ],
            "flow": ["a", {"branches": [last, ["a"]], "merge": "add"}, {"op": "tanh"}],
        }
    )
    net = build(d, seed=0).eval()
    x = torch.randn(3, 4, requires_grad=True)
    y = net.a(x)
    want = torch.tanh((F.relu(y) if last[0] == {"op": "relu"} else y) + net.a(y))
    got = net(x)
    got.sum().backward()  # in place, it would fail: "modified by an inplace operation"
    torch.testing.assert_close(got, want, rtol=0, atol=0, msg=why)
