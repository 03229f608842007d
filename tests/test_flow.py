"""Flows (format 2): blocks with skips, branches, inline ops and repeated calls, checked against hand-written
PyTorch; every kind of bad flow refused before anything is allocated, naming block, branch and layer."""

from __future__ import annotations

import copy
import io
import pickle
import resource
import time
import tracemalloc

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from builder import Design, DesignError, build, dry_run, example_input, load_example
from builder.flow import OPS, FlowModule
from builder.registry import REGISTRY, Arg, LayerType


def design(layers: list, flow: list | None = None, shape=(2, 4), **top) -> Design:
    doc = {"format": 2, "name": "t", "input": {"shape": list(shape)}, "layers": layers, **top}
    if flow is not None:
        doc["flow"] = flow
    return Design.from_dict(doc)


def lin(i: int, o: int, name: str | None = None, **kw) -> dict:
    return {"type": "Linear", "in_features": i, "out_features": o, **({"name": name} if name else {}), **kw}


def same(ours: nn.Module, theirs: nn.Module, x: torch.Tensor) -> None:
    """Identical keys, strict loads both ways, equal eval outputs."""
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict(), strict=True)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x), rtol=0, atol=0)


# -- what flows build ---------------------------------------------------------------------------------------


def test_a_residual_block_is_the_books_class_with_its_keys_and_outputs() -> None:
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
            self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
            self.bn1, self.bn2 = nn.BatchNorm2d(3), nn.BatchNorm2d(3)

        def forward(self, X):
            Y = F.relu(self.bn1(self.conv1(X)))
            Y = self.bn2(self.conv2(Y))
            Y += X
            return F.relu(Y)

    conv = {"type": "Conv2d", "in_channels": 3, "out_channels": 3, "kernel_size": 3, "padding": 1}
    d = design(
        [
            {
                "type": "Module",
                "class": "Residual",
                "name": "block 0",
                "layers": [
                    {**conv, "name": "conv1"},
                    {**conv, "name": "conv2"},
                    {"type": "BatchNorm2d", "num_features": 3, "name": "bn1"},
                    {"type": "BatchNorm2d", "num_features": 3, "name": "bn2"},
                ],
                "flow": [
                    {"branches": [["conv1", "bn1", {"op": "relu"}, "conv2", "bn2"], []], "merge": "add"},
                    {"op": "relu"},
                ],
            },
        ],
        shape=(2, 3, 5, 5),
    )
    net = build(d, seed=0)
    theirs = nn.Sequential()
    theirs.add_module("block 0", Residual())
    same(net, theirs, torch.randn(2, 3, 5, 5))
    block = net.get_submodule("block 0")
    assert isinstance(block, FlowModule) and type(block).__name__ == "FlowModule"
    assert repr(block).startswith("Residual(\n  flow: (conv1 → bn1 → relu → conv2 → bn2 | x) + → relu")
    assert not list(block.parameters(recurse=False)) and not list(block.buffers(recurse=False))


def test_a_child_called_twice_uses_the_same_weights() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return self.lin(F.relu(self.lin(x)))

    d = design([lin(4, 4, "lin")], ["lin", {"op": "relu"}, "lin"], **{"class": "Twice"})
    net = build(d)
    assert repr(net).startswith("Twice(")
    same(net, Twice(), torch.randn(2, 4))
    run = dry_run(d)
    assert [(r.key, r.step) for r in run.layers] == [("lin", "flow[0]"), ("lin", "flow[2]")]
    assert run.by_key()["lin"].step == "flow[0]"  # its first call


def test_merges_against_torch() -> None:
    x = torch.randn(2, 4)
    children = [lin(4, 4, "a"), lin(4, 4, "b"), lin(4, 4, "c")]
    for merge, dim, expect in [
        ("cat", 0, lambda a, b, c: torch.cat((a, b, c), dim=0)),
        ("cat", -1, lambda a, b, c: torch.cat((a, b, c), dim=-1)),
        ("stack", 1, lambda a, b, c: torch.stack((a, b, c), dim=1)),
        ("add", None, lambda a, b, c: a + b + c),
        ("mul", None, lambda a, b, c: a * b * c),
        ("mean", None, lambda a, b, c: (a + b + c) / 3),
    ]:
        step = {"branches": [["a"], ["b"], ["c"]], "merge": merge, **({"dim": dim} if dim is not None else {})}
        net = build(design(children, [step]), seed=1)
        with torch.no_grad():
            want = expect(net.a(x), net.b(x), net.c(x))
            torch.testing.assert_close(net(x), want)
        assert dry_run(design(children, [step])).output_shape == tuple(want.shape)


OP_CASES = [
    ("relu", {}, F.relu, (2, 3, 4)),
    ("gelu", {"approximate": "tanh"}, lambda x: F.gelu(x, approximate="tanh"), (2, 3, 4)),
    ("sigmoid", {}, torch.sigmoid, (2, 3, 4)),
    ("tanh", {}, torch.tanh, (2, 3, 4)),
    ("silu", {}, F.silu, (2, 3, 4)),
    ("elu", {"alpha": 0.5}, lambda x: F.elu(x, 0.5), (2, 3, 4)),
    ("leaky_relu", {"negative_slope": 0.2}, lambda x: F.leaky_relu(x, 0.2), (2, 3, 4)),
    ("softmax", {"dim": -1}, lambda x: F.softmax(x, dim=-1), (2, 3, 4)),
    ("log_softmax", {"dim": 1}, lambda x: F.log_softmax(x, dim=1), (2, 3, 4)),
    ("flatten", {}, lambda x: x.flatten(), (2, 3, 4)),
    ("flatten", {"start_dim": 1}, lambda x: x.flatten(1), (2, 3, 4)),
    ("reshape", {"shape": [-1, 6, 2]}, lambda x: x.reshape(-1, 6, 2), (2, 3, 4)),
    ("view", {"shape": [2, 12]}, lambda x: x.view(2, 12), (2, 3, 4)),
    ("permute", {"dims": [0, 2, 1]}, lambda x: x.permute(0, 2, 1), (2, 3, 4)),
    ("transpose", {"dim0": 1, "dim1": 2}, lambda x: x.transpose(1, 2), (2, 3, 4)),
    ("unsqueeze", {"dim": 1}, lambda x: x.unsqueeze(1), (2, 3, 4)),
    ("squeeze", {"dim": 1}, lambda x: x.squeeze(1), (2, 1, 4)),
    ("mean", {"dim": 1}, lambda x: x.mean(dim=1), (2, 3, 4)),
    ("mean", {"dim": [1, 2], "keepdim": True}, lambda x: x.mean(dim=(1, 2), keepdim=True), (2, 3, 4)),
    ("mean", {}, lambda x: x.mean(), (2, 3, 4)),
    ("sum", {"dim": -1}, lambda x: x.sum(-1), (2, 3, 4)),
    ("select", {"dim": 1, "index": -1}, lambda x: x[:, -1], (2, 3, 4)),
]


@pytest.mark.parametrize(("op", "args", "torch_fn", "shape"), OP_CASES)
def test_every_op_is_the_torch_expression(op, args, torch_fn, shape) -> None:
    d = design([{"type": "Identity", "name": "id"}], ["id", {"op": op, **args}], shape=shape)
    x = example_input(d)
    net = build(d)
    assert net.state_dict() == {}  # ops add no keys
    torch.testing.assert_close(net(x), torch_fn(x), rtol=0, atol=0)
    assert dry_run(d).output_shape == tuple(torch_fn(x).shape)
    assert Design.from_json(d.to_json()) == d


def test_every_op_is_tested() -> None:
    assert {case[0] for case in OP_CASES} == set(OPS)


def test_densenet_block_calls_grandchildren_and_records_every_step() -> None:
    d = load_example("densenet_block")
    run = dry_run(d)
    assert run.output_shape == (4, 23, 8, 8)
    merges = [s for s in run.steps if s.kind == "merge"]
    assert [(s.path, s.label, s.output_shape) for s in merges] == [
        ("flow[0]", "cat dim=1", (4, 13, 8, 8)),
        ("flow[1]", "cat dim=1", (4, 23, 8, 8)),
    ]
    branches = [(s.path, s.label, s.output_shape) for s in run.steps if s.kind == "branch"]
    assert branches[:2] == [
        ("flow[0].branches[0]", "branch 0 (identity)", (4, 3, 8, 8)),
        ("flow[0].branches[1]", "branch 1", (4, 10, 8, 8)),
    ]
    calls = {r.key: r for r in run.layers}
    assert calls["net.0"].type == "Sequential" and calls["net.0"].step == "flow[0].branches[1][0]"
    assert calls["net.1.2"].inferred == {"in_channels": 13} and calls["net.1.2"].path == "layers[0].layers[1].layers[2]"
    assert "net" not in calls  # the Sequential holding them is never called as a whole


def test_inception_records_every_branch_and_the_merge() -> None:
    run = dry_run(load_example("inception"))
    steps = run.by_step()
    assert steps[("", "flow[0]")].output_shape == (1, 256, 28, 28)
    assert [steps[("", f"flow[0].branches[{j}]")].output_shape[1] for j in range(4)] == [64, 128, 32, 32]
    assert steps[("", "flow[0].branches[3][0]")].label == "b4_1"
    assert run.by_key()["b3_2"].inferred == {"in_channels": 16}


def test_resnet18_dry_run_names_nested_flow_steps_by_block() -> None:
    run = dry_run(load_example("resnet18"))
    assert run.output_shape == (1, 10)
    skip = run.by_step()[("b3.0", "layers[2].layers[0].flow[0].branches[1]")]
    assert skip.label == "branch 1" and skip.output_shape == (1, 128, 12, 12)
    assert run.by_step()[("b2.1", "layers[1].layers[1].flow[0].branches[1]")].label == "branch 1 (identity)"
    assert run.by_key()["b3.0"].type == "Module" and run.by_key()["b3.0"].is_block


def test_a_flow_module_copies_and_pickles_with_its_own_children() -> None:
    d = design([lin(4, 3, "a"), lin(4, 3, "b")], [{"branches": [["a"], ["b"]], "merge": "add"}])
    net = build(d, seed=0)
    x = torch.randn(2, 4)
    twin = copy.deepcopy(net)
    with torch.no_grad():
        twin.a.weight.zero_()
        twin.a.bias.zero_()
        torch.testing.assert_close(twin(x), net.b(x))  # the copy calls its own children
    buffer = io.BytesIO()
    pickle.dump(net, buffer)
    again = pickle.loads(buffer.getvalue())
    torch.testing.assert_close(again(x), net(x))


def test_a_shared_layer_in_two_branches_is_one_module() -> None:
    d = design(
        [{"shared": "s", "name": "left"}, {"shared": "s", "name": "right"}, lin(8, 2, "head")],
        [{"branches": [["left", {"op": "relu"}], ["right", {"op": "tanh"}]], "merge": "cat", "dim": 1}, "head"],
        shared={"s": lin(4, 4)},
    )
    net = build(d)
    assert net.left is net.right
    assert list(net.state_dict()) == [
        "left.weight",
        "left.bias",
        "right.weight",
        "right.bias",
        "head.weight",
        "head.bias",
    ]
    x = torch.randn(2, 4)
    with torch.no_grad():
        want = net.head(torch.cat((F.relu(net.left(x)), torch.tanh(net.left(x))), dim=1))
    torch.testing.assert_close(net(x), want)


# -- tuple-returning layers ---------------------------------------------------------------------------------


@pytest.fixture
def lstm_type(monkeypatch) -> LayerType:
    """nn.LSTM as the registry marks a tuple-returning type (until the `layers` work ships it)."""
    if "LSTM" in REGISTRY and REGISTRY["LSTM"].outputs:
        return REGISTRY["LSTM"]
    size = lambda n: Arg(n, "int", min=1, max=1000)  # noqa: E731
    lt = LayerType(
        "LSTM",
        nn.LSTM,
        "Recurrent",
        (size("input_size"), size("hidden_size"), Arg("batch_first", "bool", False)),
        outputs={"output": (0,), "h": (1, 0), "c": (1, 1)},
    )
    monkeypatch.setitem(REGISTRY, "LSTM", lt)
    return lt


def test_a_tuple_returning_child_passes_on_the_chosen_output(lstm_type) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(3, 5, batch_first=True)
            self.out = nn.Linear(5, 2)

        def forward(self, X):
            out, (h, c) = self.rnn(X)
            return self.out(out[:, -1]) + self.out(c[0])

    rnn = {"type": "LSTM", "input_size": 3, "hidden_size": 5, "batch_first": True, "name": "rnn"}
    flow = [
        {
            "branches": [
                ["rnn", {"op": "select", "dim": 1, "index": -1}, "out"],
                [{"call": "rnn", "output": "c"}, {"op": "select", "dim": 0, "index": 0}, "out"],
            ],
            "merge": "add",
        }
    ]
    d = design([rnn, lin(5, 2, "out")], flow, shape=(2, 7, 3))
    same(build(d, seed=0), Net(), torch.randn(2, 7, 3))
    run = dry_run(d)
    assert run.by_step()[("", "flow[0].branches[1][0]")].label == "rnn[c]"
    assert run.by_step()[("", "flow[0].branches[1][0]")].output_shape == (1, 2, 5)


def test_a_tuple_returning_layer_in_a_sequential_is_refused(lstm_type) -> None:
    rnn = {"type": "LSTM", "input_size": 3, "hidden_size": 5}
    with pytest.raises(DesignError, match=r"layers\[0\] LSTM: returns a tuple \(output, h, c\).*flow") as info:
        design([rnn, {"type": "ReLU"}], shape=(2, 7, 3))
    assert info.value.path == "layers[0]"
    with pytest.raises(DesignError) as info:
        design(
            [{"type": "Sequential", "layers": [{"type": "ReLU"}, {"shared": "r"}]}], shape=(2, 7, 3), shared={"r": rnn}
        )
    assert info.value.path == "layers[0].layers[1]"


# -- bad flows ------------------------------------------------------------------------------------------------


def block(layers: list, flow: list, name: str = "b3", **kw) -> dict:
    return {"type": "Module", "name": name, "layers": layers, "flow": flow, **kw}


def conv(c_in: int, c_out: int, name: str, **kw) -> dict:
    return {"type": "Conv2d", "in_channels": c_in, "out_channels": c_out, "kernel_size": 1, "name": name, **kw}


BAD_PARSE = [
    # (what, the block's flow, words, path)
    (
        "empty branch list",
        [{"branches": [], "merge": "cat", "dim": 1}],
        ["branches", "non-empty"],
        "layers[0].flow[0].branches",
    ),
    (
        "unknown merge",
        [{"branches": [["a"]], "merge": "concat", "dim": 1}],
        ["merge", "'concat'", "'cat'"],
        "layers[0].flow[0].merge",
    ),
    (  # JSON lists and objects are not hashable: they must be refused, not raise a TypeError
        "merge given as a list",
        [{"branches": [["a"]], "merge": ["cat"], "dim": 1}],
        ["merge", "['cat']"],
        "layers[0].flow[0].merge",
    ),
    ("merge given as an object", [{"branches": [["a"]], "merge": {}}], ["merge", "{}"], "layers[0].flow[0].merge"),
    ("cat without dim", [{"branches": [["a"]], "merge": "cat"}], ["cat needs the dim"], "layers[0].flow[0].dim"),
    (
        "add with dim",
        [{"branches": [["a"]], "merge": "add", "dim": 1}],
        ["add", "takes no dim"],
        "layers[0].flow[0].dim",
    ),
    ("unknown op", ["a", {"op": "relu6"}], ["unknown operation 'relu6'", "relu"], "layers[0].flow[1].op"),
    ("op argument", [{"op": "softmax", "axis": 1}], ["softmax has no argument 'axis'"], "layers[0].flow[0].axis"),
    ("op missing argument", [{"op": "softmax"}], ["softmax needs 'dim'"], "layers[0].flow[0].dim"),
    ("unknown child", ["a", "conv4"], ["no child 'conv4'", "'a'"], "layers[0].flow[1]"),
    (
        "unknown grandchild",
        [{"branches": [["a"], ["a.0"]], "merge": "add"}],
        ["no child 'a.0'"],
        "layers[0].flow[0].branches[1][0]",
    ),
    ("output of a plain layer", [{"call": "a", "output": "h"}], ["returns one tensor"], "layers[0].flow[0].output"),
    ("two kinds in one step", [{"op": "relu", "call": "a"}], ["exactly one of"], "layers[0].flow[0]"),
    ("a number as a step", [3], ["a step is"], "layers[0].flow[0]"),
    ("empty target", [""], ["must name a child"], "layers[0].flow[0]"),
]


@pytest.mark.parametrize(("what", "flow", "words", "path"), BAD_PARSE, ids=[b[0] for b in BAD_PARSE])
def test_bad_flows_are_refused_when_read(what, flow, words, path) -> None:
    with pytest.raises(DesignError) as info:
        design([block([conv(3, 3, "a")], flow)], shape=(1, 3, 4, 4))
    for word in words:
        assert word in str(info.value), (what, str(info.value))
    assert info.value.path == path


@pytest.mark.parametrize(
    ("spec", "words", "path"),
    [
        ({"type": "Module", "layers": [{"type": "ReLU"}]}, ["needs a 'flow'"], "layers[0].flow"),
        (
            {"type": "Sequential", "layers": [{"type": "ReLU"}], "flow": []},
            ["'flow'", "type 'Module'"],
            "layers[0].flow",
        ),
        ({"type": "ReLU", "flow": []}, ["not a block"], "layers[0].flow"),
        (
            {"type": "Module", "class": "my class", "layers": [], "flow": [{"op": "relu"}]},
            ["class name"],
            "layers[0].class",
        ),
        ({"type": "Sequential", "class": "A", "layers": [{"type": "ReLU"}]}, ["'class'"], "layers[0].class"),
        (
            block([conv(3, 3, "a"), conv(3, 3, "a")], ["a"]),
            ["'a' is already used by layers[0].layers[0]"],
            "layers[0].layers[1].name",
        ),
        (block([conv(3, 3, "a.b")], ["a"]), ["'.'"], "layers[0].layers[0].name"),
    ],
)
def test_bad_flow_blocks_are_refused_when_read(spec, words, path) -> None:
    with pytest.raises(DesignError) as info:
        design([spec], shape=(1, 3, 4, 4))
    for word in words:
        assert word in str(info.value), str(info.value)
    assert info.value.path == path


def test_branches_that_cannot_merge_name_block_branches_and_shapes() -> None:
    layers = [
        conv(192, 64, "p1"),
        conv(192, 16, "p2"),
        conv(192, 16, "p3"),
        conv(192, 32, "p4", stride=2),
    ]
    flow = [{"branches": [["p1"], ["p2"], ["p3"], ["p4"]], "merge": "cat", "dim": 1}]
    d = design([block(layers, flow)], shape=(1, 192, 28, 28))
    with pytest.raises(DesignError) as info:
        build(d)
    assert str(info.value).startswith(
        "block 'b3' cat dim=1: branch 0 gives (1, 64, 28, 28), branch 3 gives (1, 32, 14, 14)"
    )
    assert info.value.path == "layers[0].flow[0]"


def test_a_skip_whose_shapes_differ_is_refused() -> None:
    d = design([block([conv(3, 8, "c")], [{"branches": [["c"], []], "merge": "add"}], name="0")], shape=(1, 3, 4, 4))
    with pytest.raises(DesignError) as info:
        dry_run(d)
    assert str(info.value).startswith(
        "block '0' add: branch 0 gives (1, 8, 4, 4), branch 1 (identity) gives (1, 3, 4, 4)"
    )
    assert info.value.path == "layers[0].flow[0]"


def test_a_layer_that_does_not_fit_inside_a_branch_names_block_branch_and_layer() -> None:
    flow = [{"branches": [[], ["a", "b"]], "merge": "add"}]
    d = design([block([conv(3, 5, "a"), conv(4, 3, "b")], flow)], shape=(1, 3, 4, 4))
    with pytest.raises(DesignError) as info:
        dry_run(d)
    message = str(info.value)
    assert message.startswith("block 'b3' branch 1: layers[0].layers[1] Conv2d: expects 4 input channels, gets 5")
    assert info.value.path == "layers[0].flow[0].branches[1][1]"


def test_an_op_that_does_not_fit_is_named() -> None:
    d = design([block([conv(3, 3, "a")], ["a", {"op": "permute", "dims": [0, 1]}])], shape=(1, 3, 4, 4))
    with pytest.raises(DesignError, match=r"block 'b3': permute: cannot take an input of shape \(1, 3, 4, 4\)") as e:
        dry_run(d)
    assert e.value.path == "layers[0].flow[1]"


def test_a_lazy_layer_no_flow_calls_is_refused() -> None:
    d = design([{"type": "LazyLinear", "out_features": 3, "name": "unused"}, lin(4, 2, "used")], ["used"])
    with pytest.raises(DesignError, match="layers\\[0\\] LazyLinear: no flow ever calls it.*in_features") as info:
        build(d)
    assert info.value.path == "layers[0]"
    assert build(design([lin(4, 3, "unused"), lin(4, 2, "used")], ["used"])).unused.weight.shape == (3, 4)


def test_edits_that_break_a_flow_are_refused_at_build() -> None:
    import dataclasses

    d = load_example("inception")
    broken = dataclasses.replace(d, layers=d.layers[1:])  # what deleting a child in an editor gives
    with pytest.raises(DesignError, match="no child 'b1_1'") as info:
        build(broken)
    assert info.value.path == "flow[0].branches[0][0]"


def test_a_huge_branch_is_refused_before_memory_is_allocated() -> None:
    n = 100_000_000  # 800 M parameters in the branch: far over the default budget
    d = design([lin(4, n, "a"), lin(n, 4, "b"), lin(4, 4, "c")], [{"branches": [["a", "b"], ["c"]], "merge": "add"}])
    dry_run(load_example("tied"))  # warm up torch's meta kernels
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(DesignError, match="over the budget.*before any memory is allocated"):
        build(d)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 0.5 and peak < 5 * 2**20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 50 * 1024


def test_a_merge_over_the_activation_limit_is_refused(monkeypatch) -> None:
    d = design([lin(4, 4, "a")], [{"branches": [["a"], ["a"]], "merge": "stack", "dim": 0}])
    monkeypatch.setenv("BLOCKWORK_MAX_ACTIVATION", "10")
    with pytest.raises(DesignError, match="stack dim=0: its output \\(2, 2, 4\\) has 16 elements") as info:
        dry_run(d)
    assert info.value.path == "flow[0]"


# -- the format -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet18", "inception", "densenet_block", "rgnet"])
def test_flow_examples_round_trip(name: str) -> None:
    d = load_example(name)
    assert Design.from_json(d.to_json()) == d
    assert Design.from_json(d.to_json()).to_json() == d.to_json()


def test_the_books_names_with_spaces_are_keys() -> None:
    net = build(load_example("rgnet"))
    assert list(net.state_dict())[:2] == ["0.block 0.0.weight", "0.block 0.0.bias"]


def test_a_format_1_document_reads_as_before_and_is_written_as_format_2() -> None:
    d = Design.from_dict({"format": 1, "input": {"shape": [2, 4]}, "layers": [lin(4, 2)]})
    assert d.to_dict()["format"] == 2 and d.flow is None and not d.has_flow


def test_the_format_doc_lists_every_op_and_merge() -> None:
    from builder.flow import MERGES

    from .conftest import ROOT

    text = (ROOT / "docs" / "design-format.md").read_text()
    for name in [*OPS, *MERGES]:
        assert f"| `{name}` |" in text or f"| `{name}` (needs `dim`) |" in text, name
