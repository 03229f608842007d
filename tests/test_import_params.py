"""A bare .params file: its outline (tree, shapes, dtypes, ties) and a guessed design that strict-loads it.

The files are written by hand-written PyTorch (the truth) and by every shipped example; the guess must build
and load each of them strictly, as `torch.load` + `load_state_dict(strict=True)` in plain PyTorch does.
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict

import pytest
import torch
from torch import nn

from builder import (
    DesignError,
    ParamsError,
    build,
    example_input,
    example_names,
    guess_design,
    load_example,
    load_params,
    outline_params,
    save_params,
)
from builder.importing.tree import flows_supported
from builder.layers import MyLinear

from .test_params import HAND_WRITTEN, MARKER, hand_written, malicious_files, to_bytes


def file_of(net: nn.Module) -> bytes:
    """What plain PyTorch writes: torch.save(net.state_dict())."""
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return buffer.getvalue()


def ties_of(net: nn.Module) -> set[tuple[str, ...]]:
    """The truth about ties: state_dict keys holding the very same tensor object in the live network."""
    groups: dict[int, list[str]] = {}
    for key, t in net.state_dict(keep_vars=True).items():
        groups.setdefault(id(t), []).append(key)
    return {tuple(keys) for keys in groups.values() if len(keys) > 1}


def assert_guess_loads(data: bytes, net: nn.Module | None = None) -> nn.Module:
    """The guessed design builds, has the file's keys in order, and loads the file strictly; with the original
    network given, the guess's tied positions are exactly the original's."""
    design = guess_design(outline_params(data))
    assert "guess" in design.description
    built = build(design)
    state = torch.load(io.BytesIO(data), weights_only=True)
    assert list(built.state_dict()) == list(state)
    built.load_state_dict(state, strict=True)
    assert load_params(built, data).ok
    if net is not None:
        assert ties_of(built) == ties_of(net)
    return built


@pytest.mark.parametrize("name", sorted(HAND_WRITTEN))
def test_hand_written_files_outline_with_their_ties_and_guess_a_design_that_loads(name: str) -> None:
    design = load_example(name)
    net = hand_written(name, example_input(design))
    data = file_of(net)
    outline = outline_params(data)
    assert [t.key for t in outline.tensors] == list(net.state_dict())
    assert {t.key: t.shape for t in outline.tensors} == {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert set(outline.ties) == ties_of(net)
    assert_guess_loads(data, net)


@pytest.mark.parametrize("name", example_names(heavy=False))
def test_every_example_file_outlines_and_guesses(name: str) -> None:
    net = build(load_example(name), seed=0)
    data = save_params(net)
    outline = outline_params(data)
    assert set(outline.ties) == ties_of(net)
    assert outline.count == sum(t.numel() for t in net.state_dict().values())
    assert_guess_loads(data, net)


def test_the_tied_network_shows_its_ties_and_guesses_one_shared_layer() -> None:
    net = HAND_WRITTEN["tied"]()
    outline = outline_params(file_of(net))
    assert set(outline.ties) == {("2.weight", "4.weight"), ("2.bias", "4.bias")}
    assert outline.tied_with("4.weight") == ("2.weight",)
    assert outline.unique_count == outline.count - 8 * 8 - 8
    table = outline.table()
    assert list(table.columns) == ["key", "shape", "dtype", "count", "tied with"]
    assert table.set_index("key").loc["2.weight", "tied with"] == "4.weight"
    assert table.set_index("key").loc["0.bias", "shape"] == "(8,)"
    assert "= 2.weight" in outline.tree_text()
    design = guess_design(outline)
    assert design.to_dict()["shared"] == {"shared": {"type": "Linear", "in_features": 8, "out_features": 8}}
    assert [layer.get("shared") for layer in design.to_dict()["layers"]] == [None, None, "shared", None, "shared"] + [
        None
    ] * 2
    built = build(design)
    assert built[2] is built[4]


def test_the_tree_follows_the_dots() -> None:
    outline = outline_params(file_of(hand_written("nested", torch.rand(2, 20))))
    root = outline.root
    assert [c.name for c in root.children] == ["0", "1"]
    assert [c.name for c in root.children[0].children] == ["net", "linear"]
    assert [c.path for c in root.children[0].children[0].children] == ["0.net.0", "0.net.2"]
    assert root.children[0].count == 20 * 64 + 64 + 64 * 32 + 32 + 32 * 16 + 16
    assert [t.name for t in root.children[1].tensors] == ["weight", "bias"]


def test_a_state_dict_in_memory_outlines_too() -> None:
    net = HAND_WRITTEN["tied"]()
    assert set(outline_params(net.state_dict()).ties) == ties_of(net)


def test_dtypes_are_the_files() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    outline = outline_params(file_of(net))
    assert {t.key: t.dtype for t in outline.tensors} == {
        "0.weight": "float64",
        "0.bias": "float64",
        "1.weight": "float64",
        "1.bias": "float64",
        "1.running_mean": "float64",
        "1.running_var": "float64",
        "1.num_batches_tracked": "int64",
    }
    assert_guess_loads(file_of(net))


# -- guessing the layer types ---------------------------------------------------------------------------------


class Net(nn.Module):
    """A module with named children run in registration order (what a guess can follow)."""

    def __init__(self, **children: nn.Module) -> None:
        super().__init__()
        for name, child in children.items():
            self.add_module(name, child)


CASES = {
    "conv1d and batch norm": nn.Sequential(nn.Conv1d(3, 8, 5), nn.BatchNorm1d(8), nn.ReLU(), nn.Conv1d(8, 4, 3)),
    "conv2d, batch norm 2d, pooling to a Linear": nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 8, (3, 5)),
        nn.ReLU(),
        nn.Flatten(),
        nn.LazyLinear(10),
    ),
    "layer norm and a bias-free Linear": nn.Sequential(
        nn.Linear(6, 12), nn.LayerNorm(12), nn.Linear(12, 3, bias=False)
    ),
    "embedding then Linear": Net(embedding=nn.Embedding(100, 16), head=nn.Linear(16, 4)),
    "my linear": nn.Sequential(MyLinear(20, 8), MyLinear(8, 8)),
    "batch norm without affine": nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7, affine=False), nn.Linear(7, 2)),
    "a layer norm over two dimensions": nn.Sequential(nn.LayerNorm([4, 5]), nn.Flatten(), nn.Linear(20, 2)),
    "a transformer encoder": Net(
        embedding=nn.Embedding(100, 32),
        encoder=nn.TransformerEncoder(
            nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2, enable_nested_tensor=False
        ),
        head=nn.Linear(32, 2),
    ),
    "an OrderedDict of named blocks": nn.Sequential(
        OrderedDict(features=nn.Sequential(nn.Linear(4, 8), nn.ReLU()), classifier=nn.Linear(8, 2))
    ),
}


def materialized(net: nn.Module) -> nn.Module:
    if any(isinstance(p, nn.UninitializedParameter) for p in net.parameters()):
        with torch.no_grad():
            net(torch.rand(2, 3, 16, 16))
    return net


@pytest.mark.parametrize("case", list(CASES))
def test_layer_types_are_guessed_from_their_tensors(case: str) -> None:
    net = materialized(CASES[case])
    built = assert_guess_loads(file_of(net), net)
    theirs = {k: type(m).__name__ for k, m in net.named_modules() if any(True for _ in m.parameters(False))}
    theirs |= {k: type(m).__name__ for k, m in net.named_modules() if any(True for _ in m.buffers(False))}
    ours = {k: type(m).__name__ for k, m in built.named_modules() if k in theirs}
    assert ours == theirs


def test_an_embedding_guess_takes_token_ids() -> None:
    design = guess_design(outline_params(file_of(CASES["embedding then Linear"])))
    assert design.input_dtype == "int64"
    assert "could also be Linear(bias=False)" in design.description


def test_activations_and_ambiguities_are_stated() -> None:
    design = guess_design(outline_params(file_of(HAND_WRITTEN["sequential_mlp"]())))
    assert "activations" in design.description
    assert "ReLU at 1" in design.description
    conv = guess_design(outline_params(file_of(nn.Sequential(nn.Conv2d(1, 2, 3)))))
    assert "ConvTranspose2d" in conv.description
    square = guess_design(outline_params(file_of(nn.Sequential(nn.Linear(8, 8)))))
    assert "could also be MyLinear" in square.description


def test_layers_out_of_chain_order_are_noted() -> None:
    net = Net(a=nn.Linear(4, 8), b=nn.Linear(3, 2))
    design = guess_design(outline_params(file_of(net)))
    if flows_supported():
        assert "the top level: its layers form neither a chain nor branches" in design.description
    else:
        assert "b takes 3 but a gives 8" in design.description


def test_weights_tied_across_different_layers_are_noted() -> None:
    emb, out = nn.Embedding(10, 4), nn.Linear(4, 10)
    out.weight = emb.weight  # the language-model trick: input and output embeddings tied
    net = Net(emb=emb, out=out)
    data = file_of(net)
    outline = outline_params(data)
    assert outline.ties == (("emb.weight", "out.weight"),)
    design = guess_design(outline)
    assert "emb.weight, out.weight are one tensor in the file, but not of one shared layer" in design.description
    built = build(design)
    built.load_state_dict(torch.load(io.BytesIO(data), weights_only=True), strict=True)


def test_a_shared_block_is_guessed_as_one() -> None:
    block = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6))
    net = nn.Sequential(block, nn.ReLU(), block, nn.Linear(6, 1))
    built = assert_guess_loads(file_of(net), net)
    assert built[0] is built[2]
    design = guess_design(outline_params(file_of(net)))
    assert design.to_dict()["shared"]["shared"]["type"] == "Sequential"


def test_tensors_of_no_known_layer_are_refused_by_key() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))
            self.inner = nn.Linear(3, 3)

    with pytest.raises(DesignError, match="fit no Blockwork layer type") as e:
        guess_design(outline_params(file_of(nn.Sequential(nn.Linear(2, 3), Odd()))))
    assert "1" in str(e.value) and "scale" in str(e.value)
    with pytest.raises(DesignError, match="top module holds tensors"):
        guess_design(outline_params(file_of(MyLinear(3, 4))))
    with pytest.raises(DesignError, match="no tensors"):
        guess_design(outline_params(file_of(nn.Sequential(nn.ReLU()))))


# -- the same safety as load_params ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["os.system in torch.save", "os.system in a plain pickle", "a custom class"])
def test_malicious_files_are_refused_and_nothing_runs(case: str) -> None:
    if os.path.exists(MARKER):
        os.remove(MARKER)
    data = malicious_files(b"")[case]
    with pytest.raises(ParamsError, match="refused|not a .params file"):
        outline_params(data)
    assert not os.path.exists(MARKER), "the pickle ran code"


def test_corrupt_and_oversized_files_are_refused() -> None:
    data = file_of(HAND_WRITTEN["tied"]())
    with pytest.raises(ParamsError, match="not a readable .params file|truncated"):
        outline_params(data[: len(data) // 2])
    with pytest.raises(ParamsError, match="holds a list, not a state_dict"):
        outline_params(to_bytes([torch.zeros(2)]))
    with pytest.raises(ParamsError, match="over the limit of 1 MB"):
        outline_params(b"PK\x03\x04" + b"\0" * (2 * 2**20), max_mb=1)
    with pytest.raises(TypeError, match="ParamsOutline"):
        guess_design(data)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_recurrent_layers_are_read_from_torchs_own_keys(kind: str) -> None:
    layer = getattr(nn, kind)(6, 12, num_layers=2, bidirectional=True, batch_first=True)
    outline = outline_params(file_of(Net(rnn=layer, head=nn.Linear(24, 3))))
    if not flows_supported():  # the guess builds only once a flow can call a tuple-returning layer
        with pytest.raises(DesignError):
            build(guess_design(outline))
        return
    design = guess_design(outline)
    assert "batch_first=True assumed" in design.description
    assert_guess_loads(file_of(Net(rnn=layer, head=nn.Linear(24, 3))))


def test_a_file_against_a_design_layer_by_layer() -> None:
    from builder import diff_params, load_example

    tied = load_example("tied")
    same = diff_params(tied, outline_params(file_of(HAND_WRITTEN["tied"]())))
    assert same.fits and same.summary() == "8 matched, 0 missing, 0 unexpected, 0 wrong shape"
    other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 9), nn.ReLU(), nn.Linear(8, 8), nn.Linear(1, 1))
    diff = diff_params(tied, outline_params(file_of(other)))
    assert not diff.fits
    table = diff.table().set_index("key")
    assert table.loc["2.weight", "status"] == "wrong shape"
    assert (table.loc["2.weight", "design"], table.loc["2.weight", "file"]) == ("(8, 8)", "(9, 8)")
    assert table.loc["6.weight", "status"] == "missing" and table.loc["5.bias", "status"] == "unexpected"
    assert table.loc["4.weight", "status"] == "matched"
    layers = diff.layers().set_index("layer")
    assert layers.loc["2", "wrong shape"] == 2 and layers.loc["4", "matched"] == 2
    assert list(diff.table(problems_only=True)["status"]).count("matched") == 0
    lazy = diff_params(load_example("lazy_mlp"), outline_params(file_of(HAND_WRITTEN["sequential_mlp"]())))
    assert lazy.fits  # the lazy layers' sizes come from the dry run
