""".safetensors files: every example moves to hand-written PyTorch and back with its tie kept, save_model's
alias convention reads too, and every malformed file is refused by name with the network untouched."""

from __future__ import annotations

import io
import json
import resource
import struct

import pytest
import torch
from safetensors.torch import load, load_file, save, save_model
from torch import nn

import builder
from builder import ParamsError, build, example_input, load_example, load_params, read_params, save_safetensors
from builder.safetensors_io import MAX_HEADER_BYTES, TIED_KEY, read_header, recorded_ties

from .test_params import HAND_WRITTEN, assert_unchanged, hand_written, snapshot


def tied_groups(net: nn.Module) -> list[list[str]]:
    """The truth about ties: state_dict keys that are one Parameter object."""
    groups: dict[int, list[str]] = {}
    for key, t in net.state_dict(keep_vars=True).items():
        groups.setdefault(id(t), []).append(key)
    return [g for g in groups.values() if len(g) > 1]


def same_groups(a: list[list[str]], b: list[list[str]]) -> bool:
    return {frozenset(g) for g in a} == {frozenset(g) for g in b}


def file_of(header: dict, data: bytes = b"") -> bytes:
    """A safetensors file from a header (a JSON object, or raw bytes) and its data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.fixture
def tied() -> nn.Module:
    return build(load_example("tied"), seed=0)


# -- to and from hand-written PyTorch ------------------------------------------------------------------------


@pytest.mark.parametrize("name", builder.example_names(heavy=False))
def test_safetensors_load_strictly_into_hand_written_pytorch_and_back(name: str, tmp_path) -> None:
    assert name in HAND_WRITTEN, f"write {name} by hand in tests/test_params.py's HAND_WRITTEN: it is the truth"
    design = load_example(name)
    x = example_input(design)
    ours = build(design, seed=0).eval()
    path = tmp_path / f"{name}.safetensors"
    data = save_safetensors(ours, path)
    assert path.read_bytes() == data

    theirs = hand_written(name, x).eval()
    theirs.load_state_dict(load_file(path), strict=True)  # what a hand-written script does with the file
    with torch.no_grad():
        assert torch.equal(theirs(x), ours(x))
    assert recorded_ties(data) == tied_groups(ours) == tied_groups(theirs)  # the tie is in the file's metadata

    # and back: hand-written weights (changed a little) saved as safetensors do (ties as aliases) into a build
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.5)
    fresh = build(design, seed=1).eval()
    theirs_path = tmp_path / "theirs.safetensors"
    save_model(theirs, str(theirs_path))
    assert same_groups(recorded_ties(theirs_path.read_bytes()), tied_groups(theirs))  # as aliases, this time
    report = load_params(fresh, theirs_path)
    assert report.loaded and report.ok and not report.converted
    assert set(report.matched) == set(theirs.state_dict())
    assert tied_groups(fresh) == tied_groups(ours)  # the build's shared layer is still one module
    with torch.no_grad():
        assert torch.equal(fresh(x), theirs(x))


def test_each_tied_position_is_its_own_copy_in_the_file(tied) -> None:
    data = save_safetensors(tied)
    tensors = load(data)
    assert set(tensors) == set(tied.state_dict())
    assert torch.equal(tensors["2.weight"], tensors["4.weight"])
    _, metadata = read_header(data)
    assert json.loads(metadata[TIED_KEY]) == [["2.weight", "4.weight"], ["2.bias", "4.bias"]]
    assert metadata["format"] == "pt"
    # saving copies nothing of the network: it still holds one shared tensor, and its values are unchanged
    assert tied[2].weight is tied[4].weight
    fresh = build(load_example("tied"), seed=5)
    assert load_params(fresh, data).loaded
    assert fresh[2] is fresh[4]
    for k, v in tied.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_save_model_files_are_read_with_their_aliases(tied, tmp_path) -> None:
    path = tmp_path / "tied.safetensors"
    save_model(tied, str(path))
    data = path.read_bytes()
    assert set(load(data)) == {"0.weight", "0.bias", "2.weight", "2.bias", "6.weight", "6.bias"}  # 4.* aliased
    state = read_params(data)
    assert set(state) == set(tied.state_dict())
    assert recorded_ties(data) == [["2.bias", "4.bias"], ["2.weight", "4.weight"]]
    fresh = build(load_example("tied"), seed=9)
    assert load_params(fresh, data).ok
    assert torch.equal(fresh[4].weight, tied[2].weight)


def test_save_safetensors_writes_to_a_stream(tied) -> None:
    buffer = io.BytesIO()
    data = save_safetensors(tied, buffer)
    assert buffer.getvalue() == data
    assert load(data).keys() == tied.state_dict().keys()


def test_plain_safetensors_files_without_metadata_load(tied) -> None:
    state = {k: v.clone() for k, v in tied.state_dict().items()}
    fresh = build(load_example("tied"), seed=2)
    assert load_params(fresh, save(state)).ok
    assert torch.equal(fresh[2].weight, tied[2].weight)


def test_dtypes_other_than_float32_round_trip_and_are_reported() -> None:
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).to(torch.float64)
    data = save_safetensors(net)
    fresh = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))  # float32
    report = load_params(fresh, data)
    assert report.ok and ("0.weight", "float64", "float32") in report.converted
    assert load(data)["1.num_batches_tracked"].dtype == torch.int64


def test_a_lazy_network_is_refused_before_writing() -> None:
    with pytest.raises(ParamsError, match="uninitialized lazy"):
        save_safetensors(nn.Sequential(nn.LazyLinear(4)))
    with pytest.raises(TypeError):
        save_safetensors({"0.weight": torch.zeros(2)})  # type: ignore[arg-type]


def test_views_of_one_storage_are_written_as_copies() -> None:
    class Views(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.whole = nn.Parameter(torch.arange(12.0).reshape(3, 4))
            self.register_buffer("column", self.whole.detach()[:, 1])  # a non-contiguous view of the parameter

    net = Views()
    tensors = load(save_safetensors(net))
    assert torch.equal(tensors["column"], torch.tensor([1.0, 5.0, 9.0]))
    assert torch.equal(tensors["whole"], net.whole.detach())


# -- malformed files ----------------------------------------------------------------------------------------


GOOD_HEADER = {"0.weight": {"dtype": "F32", "shape": [8, 4], "data_offsets": [0, 128]}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (struct.pack("<Q", 2**40) + b"{}" + b"\0" * 100, "over the format's limit"),
        (struct.pack("<Q", MAX_HEADER_BYTES) + b"{" + b" " * 100, "declares 104,857,600 bytes but only 101 follow"),
        (file_of(b"{not json at all}"), "not valid JSON"),
        (file_of(b"{\xff\xfe}"), "not valid JSON"),
        (file_of(b"{" * 5000 + b"}" * 5000), "header"),  # deeply nested JSON
        (file_of(b'{"a": 1}'), "a: the header entry must hold exactly dtype, shape and data_offsets"),
        (file_of({"__metadata__": {"format": 3}}), "__metadata__ must map text to text"),
        (file_of({"0.weight": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, b"\0"), "F8_E4M3"),
        (file_of({"0.weight": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}}, b"\0"), "dtype Q4 is not"),
        (file_of({"0.weight": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4), "shape"),
        (file_of({"0.weight": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}, b"\0" * 4), "shape"),
        (file_of({"0.weight": {"dtype": "F32", "shape": [1] * 33, "data_offsets": [0, 4]}}, b"\0" * 4), "at most"),
        (file_of({"0.weight": {"dtype": "F32", "shape": [2], "data_offsets": [0, 9]}}, b"\0" * 8), "byte range"),
        (file_of({"0.weight": {"dtype": "F32", "shape": [2], "data_offsets": [4, 0]}}, b"\0" * 8), "byte range"),
        (file_of({"0.weight": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8), "needs 12 bytes"),
        # two entries over one byte range: safetensors itself refuses what the header checks let through
        (
            file_of(
                {
                    "0.weight": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                    "0.bias": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                },
                b"\0" * 8,
            ),
            "not a readable .safetensors file",
        ),
    ],
)
def test_malformed_headers_are_refused_by_name(data: bytes, message: str, tied) -> None:
    before = snapshot(tied)
    with pytest.raises(ParamsError, match=message):
        load_params(tied, data)
    assert_unchanged(tied, before)


def test_a_bomb_of_declared_shapes_is_refused_without_allocating(tied) -> None:
    """Shapes that would need terabytes, declared over a few bytes of data: refused from the header alone."""
    header = {f"k{i}": {"dtype": "F64", "shape": [10**6, 10**6, 10**6], "data_offsets": [0, 8]} for i in range(1000)}
    data = file_of(header, b"\0" * 8)
    before = snapshot(tied)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(
        ParamsError, match=r"k0: shape \(1000000, 1000000, 1000000\) of F64 needs 8,000,000,000,000,000,000 bytes"
    ):
        load_params(tied, data)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 100 * 1024  # KiB
    assert_unchanged(tied, before)


def test_a_zero_sized_shape_is_no_bomb(tied) -> None:
    """A huge dimension times zero is an empty tensor: read as such, then refused as a wrong shape."""
    state = {k: v.clone() for k, v in tied.state_dict().items()}
    data = bytearray(save(state))
    extra = file_of({"huge": {"dtype": "F32", "shape": [10**12, 0], "data_offsets": [0, 0]}})
    assert read_params(extra)["huge"].shape == (10**12, 0)
    before = snapshot(tied)
    with pytest.raises(ParamsError, match="unexpected huge"):
        load_params(tied, {**read_params(bytes(data)), **read_params(extra)})
    assert_unchanged(tied, before)


@pytest.mark.parametrize("cut", [0.0, 0.01, 0.3, 0.5, 0.9, 0.999])
def test_truncated_files_are_refused(cut: float, tied) -> None:
    data = save_safetensors(tied)
    before = snapshot(tied)
    with pytest.raises(ParamsError, match="safetensors|empty|not a .params file|truncated"):
        load_params(tied, data[: int(len(data) * cut)])
    assert_unchanged(tied, before)


def _edited(tied: nn.Module, edit) -> bytes:
    state = {k: v.detach().clone() for k, v in tied.state_dict().items()}
    edit(state)
    return save(state)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("6.bias"), "missing 6.bias"),
        (lambda s: s.update(extra=torch.zeros(1)), "unexpected extra"),
        (
            lambda s: s.update({"0.weight": torch.zeros(8, 5)}),
            r"wrong shape 0.weight \(network \(8, 4\), file \(8, 5\)\)",
        ),
        (lambda s: s.update({"0.weight": torch.zeros(8, 4, dtype=torch.int64)}), "0.weight: the file holds integer"),
        (lambda s: s.update({"0.bias": torch.zeros(8, dtype=torch.bool)}), "0.bias: the file holds boolean"),
        (lambda s: s["4.weight"].add_(1), "2.weight and 4.weight are one shared"),
    ],
)
def test_files_that_do_not_fit_are_refused_by_key(edit, message: str, tied) -> None:
    before = snapshot(tied)
    with pytest.raises(ParamsError, match=message):
        load_params(tied, _edited(tied, edit))
    assert_unchanged(tied, before)


def test_oversized_files_are_refused_before_reading(tied) -> None:
    big = save({"0.weight": torch.zeros(512, 1024)})  # 2 MB
    before = snapshot(tied)
    with pytest.raises(ParamsError, match="over the limit of 1 MB"):
        load_params(tied, big, max_mb=1)  # the app's upload limit, for a browser's upload
    assert_unchanged(tied, before)


def test_neither_format_names_both(tied) -> None:
    with pytest.raises(ParamsError, match="not a .params file.*Nor is it a .safetensors file"):
        load_params(tied, b"12345678[1, 2, 3]")
