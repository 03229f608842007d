"""The chapter's examples a design alone does not show (issue 13), as lesson data, each against the book's own
code run by hand: MySequential, FixedHiddenMLP and the chimera, direct setting, per-layer init, tensor files,
try_all_gpus and step 9's X = torch.ones(2, 3)."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from builder import ParamsError, build, lessons, load_example
from builder.devices import try_all_gpus
from builder.params import read_tensors, save_tensors


def test_my_sequential_equals_nn_sequential() -> None:
    design = load_example("sequential_mlp")
    net = build(design, seed=0)
    check = lessons.my_sequential(net, design)
    truth = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))  # the chapter's net, by hand
    truth.load_state_dict(net.state_dict())
    assert check.my_keys == check.keys == list(truth.state_dict())
    with torch.no_grad():
        assert torch.equal(check.my_y, truth(builder_input(design)))
    assert check.equal and torch.equal(check.y, check.my_y)


def builder_input(design):
    from builder import example_input

    return example_input(design)


class BookFixedHiddenMLP(nn.Module):  # d2l 6.1.4, typed in by hand (the truth)
    def __init__(self):
        super().__init__()
        self.rand_weight = torch.rand((20, 20))
        self.linear = nn.LazyLinear(20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight + 1)
        X = self.linear(X)
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()


class BookNestMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(32), nn.ReLU())
        self.linear = nn.LazyLinear(16)

    def forward(self, X):
        return self.linear(self.net(X))


def test_fixed_hidden_mlp_and_the_chimera_run_as_the_books_code_on_the_sessions_input() -> None:
    design = load_example("sequential_mlp")  # input (2, 20): the session's example input is used
    run = lessons.fixed_hidden(design, seed=4)
    torch.manual_seed(4)
    x = builder_input(design)
    with torch.no_grad():
        fixed = BookFixedHiddenMLP()(x)
        chimera = nn.Sequential(BookNestMLP(), nn.LazyLinear(20), BookFixedHiddenMLP())(x)
    assert run.fixed == float(fixed) and run.chimera == float(chimera)
    assert "example input (2, 20)" in run.x and run.halvings >= 0
    other = lessons.fixed_hidden(load_example("tied"), seed=4)  # input (2, 4): the chapter's torch.rand(2, 20)
    torch.manual_seed(4)
    x = torch.rand(2, 20)
    with torch.no_grad():
        assert other.fixed == float(BookFixedHiddenMLP()(x))
    assert "torch.rand(2, 20)" in other.x and "(2, 4)" in other.x
    step_text = lessons.CAN_AND_CANNOT
    assert "cannot hold" in step_text and "while" in step_text and "shared layer" in step_text


def test_direct_setting_is_one_action_each_as_the_chapter() -> None:
    design = load_example("sequential_mlp")
    net = build(design, seed=0)
    truth = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
    truth.load_state_dict(net.state_dict())
    truth[0].weight.data[:] += 1
    row = lessons.set_directly(net, "net[0].weight.data[:] += 1")
    assert torch.equal(net[0].weight, truth[0].weight)
    assert row == [round(float(v), 6) for v in truth[0].weight.detach()[0]]
    truth[0].weight.data[0, 0] = 42
    row = lessons.set_directly(net, "net[0].weight.data[0, 0] = 42")
    assert torch.equal(net[0].weight, truth[0].weight) and row[0] == 42.0
    with pytest.raises(ValueError, match="unknown action"):
        lessons.set_directly(net, "os.system('x')")


def test_xavier_on_the_first_layer_and_42_on_the_third_is_one_choice() -> None:
    design = load_example("sequential_mlp")
    net = build(design, seed=0)
    before = net[0].bias.detach().clone(), net[2].bias.detach().clone()
    lessons.apply_init(net, design, "Xavier on net[0], 42 on net[2] — biases kept")
    bound = (6 / (20 + 256)) ** 0.5
    assert float(net[0].weight.abs().max()) <= bound and bool((net[2].weight == 42).all())
    # the biases are PyTorch's (reset), not zeros: the chapter's init_xavier and init_42 leave them alone
    assert not bool((net[0].bias == 0).all()) and not bool((net[2].bias == 0).all())
    assert not torch.equal(net[0].bias, before[0])  # a fresh reset, as the other choices


def test_for_all_layers_in_the_lesson_reaches_layers_with_their_own_setting() -> None:
    from builder.init import with_init

    design = with_init(load_example("sequential_mlp"), "layers[0]", {"method": "zeros"})
    net = build(design, seed=0)
    lessons.apply_init(net, design, "constant 1, bias 0 — net.apply(init_constant)")
    assert bool((net[0].weight == 1).all()) and bool((net[2].weight == 1).all())


def test_the_chapters_tensor_files_round_trip_and_are_read_safely() -> None:
    files = lessons.tensor_files()
    assert list(files) == ["x-file", "x-files", "mydict"]
    x, y = torch.arange(4), torch.zeros(4)
    for name, data in files.items():  # what plain torch.load gives is the truth
        truth = torch.load(io.BytesIO(data), weights_only=True)
        obj, text = lessons.read_tensor_file(data)
        if name == "x-file":
            assert torch.equal(obj, x) and torch.equal(truth, x) and text == "a tensor: tensor([0, 1, 2, 3])"
        elif name == "x-files":
            assert [torch.equal(a, b) for a, b in zip(obj, [x, y], strict=True)] == [True, True]
            assert text.startswith("a list of 2 tensors")
        else:
            assert list(obj) == ["x", "y"] and torch.equal(obj["y"], y) and text.startswith("a dict of 2 tensors")
    buf = io.BytesIO()
    torch.save((x, y), buf)  # a tuple reads back as a list
    assert isinstance(read_tensors(buf.getvalue()), list)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo owned",))


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: pickle.dumps(Evil()), "not a tensor file"),  # a bare pickle: refused before torch reads it
        (lambda: _torch_save({"x": Evil()}), "refused"),
        (lambda: _torch_save({"x": 3}), "holds a int, not a tensor"),
        (lambda: _torch_save("text"), "holds a str"),
        (lambda: _torch_save({1: torch.zeros(1)}), "not a string"),
        (lambda: _compressed(), "compressed zip"),
        (lambda: b"", "empty"),
    ],
)
def test_a_tensor_upload_is_checked_like_a_params_upload(make, words: str) -> None:
    with pytest.raises(ParamsError, match=words):
        read_tensors(make())


def _torch_save(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _compressed() -> bytes:
    data = save_tensors(torch.zeros(100))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    return out.getvalue()


def test_save_tensors_refuses_what_is_not_tensors() -> None:
    with pytest.raises(ParamsError, match="not a tensor"):
        save_tensors([torch.zeros(1), "x"])  # type: ignore[list-item]


def test_step_9_runs_x_ones_2_3_on_its_preset_and_lists_all_gpus() -> None:
    step = lessons.step("devices")
    design = load_example(step.preset)
    assert tuple(design.input_shape) == (2, 3)
    assert "X = torch.ones(2, 3, device=try_gpu())" in step.code and "try_all_gpus()" in step.code
    net = build(design, seed=0)
    report = lessons.device_report(net, design)
    truth = nn.Sequential(nn.Linear(3, 1))  # the chapter's LazyLinear(1) after X = torch.ones(2, 3)
    truth.load_state_dict(net.state_dict())
    with torch.no_grad():
        assert torch.equal(report.y, truth(torch.ones(2, 3)))
    assert report.x == "torch.ones(2, 3)"
    expected = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    assert report.all_gpus == try_all_gpus() == expected
