"""from_code: the chapter's snippets and the "Beyond chains" classes read from text (never run) into designs
equal to the hand-written modules; everything it cannot or must not read refused with line and column."""

from __future__ import annotations

import os
import re

import pytest
import torch

from builder import DesignError, build, from_code
from builder.importing import code
from builder.importing.tree import flows_supported

from .importing import assert_same_network
from .snippets import CHAPTER, FIXED_HIDDEN, FLOWS, OUTSIDE, PRELUDE, run

needs_flows = pytest.mark.skipif(not flows_supported(), reason="flow blocks (design format 2) not landed yet")


@pytest.mark.parametrize("name", list(CHAPTER))
def test_every_chapter_snippet_comes_in(name: str) -> None:
    design = from_code(PRELUDE + CHAPTER[name])
    reference, x = run(CHAPTER[name], call=False)
    assert_same_network(design, reference, x)
    assert "never run" in design.description


@needs_flows
@pytest.mark.parametrize("name", list(FLOWS))
def test_every_beyond_chains_class_comes_in(name: str) -> None:
    design = from_code(PRELUDE + FLOWS[name])
    reference, x = run(FLOWS[name], call=False)
    assert_same_network(design, reference, x)


@needs_flows
@pytest.mark.parametrize("name", list(OUTSIDE))
def test_networks_written_elsewhere_come_in(name: str) -> None:
    design = from_code(PRELUDE + OUTSIDE[name])
    reference, x = run(OUTSIDE[name], call=False)
    assert_same_network(design, reference, x)


def test_an_in_place_layer_on_a_tensor_used_again_is_refused() -> None:
    source = """
class T(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 4)
        self.act = nn.ReLU(inplace=True)
    def forward(self, x):
        y = self.l(x)
        z = self.act(y)
        return y + z
net = T()
"""
    with pytest.raises(DesignError, match=r"line 9, column 13: act \(inplace=True\) changes a tensor that is used"):
        from_code(source)


def test_snippets_come_in_without_their_imports() -> None:
    """The book's cells rely on imports made earlier in the notebook; nn, F and torch are known anyway."""
    assert from_code(CHAPTER["mlp_class"]) == from_code(PRELUDE + CHAPTER["mlp_class"])


def test_the_tied_network_has_one_shared_layer_named_as_in_the_source() -> None:
    design = from_code(CHAPTER["tied"])
    assert list(design.shared) == ["shared"]
    net = build(design)
    assert net[2] is net[4]


def test_the_input_comes_from_the_source_or_the_first_layer() -> None:
    assert from_code("net = nn.Sequential(nn.Linear(20, 256), nn.ReLU())").input_shape == (2, 20)
    design = from_code("net = nn.Sequential(nn.Conv2d(3, 8, 3))")
    assert design.input_shape == (2, 3, 32, 32)
    assert "no input in the source" in design.description
    design = from_code("net = nn.Sequential(nn.Embedding(10, 4))\nX = torch.randint(0, 10, (3, 5))\nnet(X)")
    assert (design.input_shape, design.input_dtype) == ((3, 5), "int64")


def test_sequential_forms() -> None:
    source = """
from collections import OrderedDict
def block(i):
    return nn.Sequential(OrderedDict([(f'lin{i}', nn.Linear(4, 4)), ('act', nn.ReLU())]))
net = nn.Sequential()
for i in range(3):
    net.add_module(f'stage{i}', block(i))
net.append(nn.Linear(4, 2))
layers = [nn.Linear(2, 2) for _ in range(2)]
net.add_module('tail', nn.Sequential(*layers))
X = torch.rand(2, 4)
"""
    design = from_code(source)
    net = build(design)
    assert list(net.state_dict())[:2] == ["stage0.lin0.weight", "stage0.lin0.bias"]
    assert "3.weight" in net.state_dict() and "tail.1.weight" in net.state_dict()
    assert net(torch.rand(2, 4)).shape == (2, 2)


def test_helper_functions_returning_blocks_and_a_class_used_twice_is_shared() -> None:
    source = """
def conv_block(num_channels):
    return nn.Sequential(nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(num_channels, kernel_size=3, padding=1))
shared = conv_block(4)
net = nn.Sequential(nn.LazyConv2d(4, 1), shared, shared, nn.Flatten(), nn.LazyLinear(2))
X = torch.rand(2, 3, 8, 8)
"""
    design = from_code(source)
    reference, x = run(source, call=False)
    net = assert_same_network(design, reference, x)
    assert net[1] is net[2]


def test_a_class_without_an_instance_is_made_with_its_defaults() -> None:
    source = CHAPTER["mlp_class"].split("net = MLP()")[0]
    design = from_code(source)
    assert design.name == "MLP"
    with pytest.raises(DesignError, match=r"class Residual needs arguments \(num_channels\)"):
        from_code(FLOWS["residual"].split("net = ")[0])


# -- refused, with line and column, and nothing runs ----------------------------------------------------------

MARKER = "/tmp/blockwork-from-code-pwned"

REFUSED = {
    "os.system": ("import os\nos.system('touch " + MARKER + "')\nnet = nn.Sequential(nn.Linear(2, 2))", 2, 1, "os"),
    "from os import": ("from os import system\nnet = nn.Sequential(nn.Linear(2, 2))", 1, 1, "os module"),
    "__import__": ("net = __import__('torch').nn.Sequential()", 1, 7, "__import__"),
    "eval": ("net = eval('nn.Sequential(nn.Linear(2, 2))')", 1, 7, "eval runs text as code"),
    "exec in a class": (
        "class A(nn.Module):\n    def __init__(self):\n        exec('import os')\n",
        3,
        9,
        "exec runs text as code",
    ),
    "open": ("with open('" + MARKER + "', 'w') as f:\n    f.write('x')", 1, 6, "open reads or writes files"),
    "lambda": ("act = lambda x: x\nnet = nn.Sequential(nn.Linear(2, 2))", 1, 7, "a lambda"),
    "dunder attribute": ("net = nn.Sequential.__subclasses__()", 1, 7, "attribute trick"),
    "getattr": ("net = nn.Sequential(getattr(nn, 'Linear')(2, 2))", 1, 21, "getattr"),
    "subprocess": ("import subprocess\nsubprocess.run(['touch', '" + MARKER + "'])", 2, 1, "subprocess"),
    "pathlib": ("from pathlib import Path\nPath('" + MARKER + "').touch()", 1, 1, "pathlib"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_dangerous_code_is_refused_at_its_line_and_nothing_runs(case: str) -> None:
    source, line, column, reason = REFUSED[case]
    if os.path.exists(MARKER):
        os.remove(MARKER)
    with pytest.raises(DesignError) as e:
        from_code(source)
    message = str(e.value)
    assert message.startswith(f"line {line}, column {column}:"), message
    assert reason in message
    assert "nothing was run" in message
    assert not os.path.exists(MARKER)


def test_a_side_effect_in_ignored_code_never_happens(tmp_path) -> None:
    """torch.save is harmless to refuse, so it is just skipped: the network is read, the file never written."""
    target = tmp_path / "written.params"
    source = f"net = nn.Sequential(nn.Linear(2, 2))\ntorch.save(net.state_dict(), {str(target)!r})\n"
    design = from_code(source)
    assert build(design)(torch.rand(2, 2)).shape == (2, 2)
    assert not target.exists()


CANNOT_READ = {
    "syntax error": ("net = nn.Sequential(nn.Linear(2, 2)", "line 1, column 20: the source is not valid Python"),
    "while in forward": (
        FIXED_HIDDEN.replace("X @ self.rand_weight + 1", "X"),
        "line 17, column 9: a while loop: data-dependent control flow",
    ),
    "matrix product in forward": (FIXED_HIDDEN, "line 12, column 20: a tensor @ a tensor made outside forward"),
    "comprehension over data": (
        "net = nn.Sequential(*[nn.Linear(4, 4) for _ in torch.rand(3)])",
        "a comprehension over data the source does not spell out",
    ),
    "if on a tensor": (
        "class A(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.l = nn.Linear(2, 2)\n"
        "    def forward(self, x):\n        if x.mean(dim=1) > 0:\n            x = self.l(x)\n"
        "        return x\nnet = A()",
        "line 6, column 12: a comparison of tensor values: data-dependent control flow",
    ),
    "unknown layer type": ("net = nn.Sequential(nn.Linera(2, 2))", "nn.Linera is not a layer type Blockwork has"),
    "bad layer argument": (
        "net = nn.Sequential(nn.Linear(2, 0))",
        "nn.Linear(out_features=…): must be at least 1, got 0",
    ),
    "custom parameter": (
        "class Scale(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.s = nn.Parameter(torch.ones(3))\n    def forward(self, x):\n        return x\n"
        "net = nn.Sequential(Scale())",
        "holds its own parameter 's'",
    ),
    "huge range": ("net = nn.Sequential(*[nn.ReLU() for _ in range(10**9)])", "more than a design's"),
    "no network": ("x = 1", "found no network"),
    "recursion": ("def f(n):\n    return f(n + 1)\nnet = f(0)", "calls nest more than"),
}


@pytest.mark.parametrize("case", list(CANNOT_READ))
def test_what_cannot_be_read_is_a_clear_error(case: str) -> None:
    source, words = CANNOT_READ[case]
    with pytest.raises(DesignError) as e:
        from_code(source)
    assert words in str(e.value)
    if case not in ("no network",):
        assert re.match(r"line \d+, column \d+: ", str(e.value)), str(e.value)


def test_ten_megabytes_of_text_are_refused_before_parsing(monkeypatch) -> None:
    source = "x = 1\n" * (10 * 2**20 // 6)

    def parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed")

    monkeypatch.setattr(code.ast, "parse", parse)
    with pytest.raises(DesignError, match="over the limit"):
        from_code(source)
    with pytest.raises(DesignError, match="as text"):
        from_code(b"net = 1")  # type: ignore[arg-type]


def test_code_lines_point_each_layer_at_the_line_that_makes_it() -> None:
    from builder.importing import code_lines

    source = PRELUDE + (
        "shared = nn.Linear(8, 8)\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(),\n"
        "                                  shared, shared)\n"
        "        self.head = nn.Linear(8, 1)\n"
        "    def forward(self, x):\n"
        "        return self.head(self.body(x))\n"
        "net = Net()\n"
    )
    first = len(PRELUDE.splitlines()) + 1  # the line of `shared = ...`
    design, lines = code_lines(source)
    assert design == from_code(source)
    keys = {key for _, key, _ in design.walk()}
    assert lines == {
        "body.0": first + 4,
        "body.1": first + 4,
        "body.2": first,  # one shared layer: the line that made it, at both of its uses
        "body.3": first,
        "head": first + 6,
    }, lines
    assert set(lines) <= keys
