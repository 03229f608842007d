"""Weights files: .params from every example move to and from the chapter's hand-written PyTorch, and every
unsafe, corrupt or mismatched file is refused with the keys named and the network untouched."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import pytest
import torch
from torch import nn

import builder
from builder import ParamsError, build, check_params, example_input, load_example, load_params, read_params, save_params
from builder import params as P

from .chapter import HAND_WRITTEN as CHAPTER


def digits_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def linear_regression() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 1))


def tied_moons() -> nn.Module:
    shared = nn.Linear(16, 16)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(16, 2))


# The truth: the chapter's networks, and the other examples written by hand the same way.
HAND_WRITTEN = {**CHAPTER, "digits_cnn": digits_cnn, "linear_regression": linear_regression, "tied_moons": tied_moons}


def snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def assert_unchanged(net: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = net.state_dict()
    assert after.keys() == before.keys()
    for k, v in before.items():
        assert torch.equal(after[k], v), f"{k} changed"


def to_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def hand_written(name: str, x: torch.Tensor) -> nn.Module:
    net = HAND_WRITTEN[name]()
    with torch.no_grad():
        net(x)  # the chapter's dry run: materializes lazy layers
    return net


@pytest.fixture
def tied() -> nn.Module:
    return build(load_example("tied"), seed=0)


# -- to and from hand-written PyTorch ------------------------------------------------------------------------


@pytest.mark.parametrize("name", builder.example_names(heavy=False))
def test_params_load_into_the_chapters_code_and_back(name: str) -> None:
    assert name in HAND_WRITTEN, f"write {name} by hand in HAND_WRITTEN: it is the truth this test compares with"
    design = load_example(name)
    x = example_input(design)
    ours = build(design, seed=0).eval()
    data = save_params(ours)
    assert data == to_bytes(ours.state_dict())  # exactly torch.save(net.state_dict())

    theirs = hand_written(name, x).eval()
    theirs.load_state_dict(torch.load(io.BytesIO(data), weights_only=True))  # as the chapter loads mlp.params
    with torch.no_grad():
        assert torch.equal(theirs(x), ours(x))

    # and back: hand-written weights (changed a little) into a fresh build
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.5)
    fresh = build(design, seed=1).eval()
    report = load_params(fresh, to_bytes(theirs.state_dict()))
    assert report.loaded and report.ok and not report.converted
    assert set(report.matched) == set(theirs.state_dict())
    with torch.no_grad():
        assert torch.equal(fresh(x), theirs(x))


def test_save_params_writes_the_file_too(tmp_path, tied) -> None:
    path = tmp_path / "tied.params"
    data = save_params(tied, path)
    assert path.read_bytes() == data
    stream = io.BytesIO()
    save_params(tied, stream)
    assert stream.getvalue() == data
    assert load_params(build(load_example("tied"), seed=3), path).loaded


def test_cpu_copies_keep_tied_positions_one_tensor(tied) -> None:
    state = torch.load(io.BytesIO(save_params(tied, cpu=True)), weights_only=True)
    assert state["2.weight"].data_ptr() == state["4.weight"].data_ptr()


def test_a_shared_weight_holding_nan_still_loads_into_itself(tied) -> None:
    with torch.no_grad():
        tied[2].weight[0, 0] = float("nan")
    assert load_params(build(load_example("tied"), seed=1), save_params(tied)).loaded


# -- refused files -------------------------------------------------------------------------------------------


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


class Custom:
    def __init__(self) -> None:
        self.weight = torch.zeros(8, 4)


MARKER = "/tmp/blockwork-test-params-pwned"


def malicious_files(good: bytes) -> dict[str, bytes]:
    legacy = io.BytesIO()
    pickle.dump({"0.weight": Exploit()}, legacy)
    return {
        "os.system in torch.save": to_bytes({"0.weight": Exploit()}),
        "os.system in a plain pickle": legacy.getvalue(),
        "a custom class": to_bytes({"0.weight": Custom()}),
        "a custom class at the top": to_bytes(Custom()),
    }


@pytest.mark.parametrize(
    "case", ["os.system in torch.save", "os.system in a plain pickle", "a custom class", "a custom class at the top"]
)
def test_unsafe_pickles_are_refused_without_running(case: str, tied) -> None:
    if os.path.exists(MARKER):
        os.remove(MARKER)
    data = malicious_files(save_params(tied))[case]
    before = snapshot(tied)
    with pytest.raises(ParamsError, match="refused|not a .params file") as e:
        load_params(tied, data)
    assert not os.path.exists(MARKER), "the pickle ran code"
    assert "Traceback" not in str(e.value)
    assert_unchanged(tied, before)


def test_refusal_names_what_was_refused(tied) -> None:
    with pytest.raises(ParamsError, match="posix.system|os.system|nt.system"):
        read_params(to_bytes({"0.weight": Exploit()}))
    with pytest.raises(ParamsError, match="Custom"):
        read_params(to_bytes({"0.weight": Custom()}))


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.99])
def test_truncated_files_are_refused(cut: float, tied) -> None:
    data = save_params(tied)
    before = snapshot(tied)
    with pytest.raises(ParamsError, match="not a readable .params file|truncated"):
        load_params(tied, data[: int(len(data) * cut)])
    assert_unchanged(tied, before)


def _legacy() -> bytes:
    buffer = io.BytesIO()
    torch.save({"0.weight": torch.zeros(8, 4)}, buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


LEGACY = _legacy()  # PyTorch's pre-1.6 format: storage sizes are declared, then allocated before reading


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"not a torch file at all" * 10, "not a .params file: torch.save writes a zip archive"),
        (b"PK\x03\x04" + b"\0" * 100, "not a readable .params file"),
        (LEGACY, "pre-1.6 format"),
        (to_bytes([torch.zeros(2)]), "holds a list, not a state_dict"),
        (to_bytes(torch.zeros(2)), "holds a Tensor, not a state_dict"),
        (to_bytes(42), "holds a int, not a state_dict"),
        (to_bytes({"0.weight": [1.0, 2.0]}), "0.weight: holds a list, not a tensor"),
        (to_bytes({3: torch.zeros(2)}), "key 3 that is not a string"),
        (to_bytes({"0.weight": torch.zeros(8, 4).to_sparse()}), "0.weight: holds a torch.sparse_coo tensor"),
    ],
)
def test_files_that_are_not_state_dicts_are_refused(data: bytes, message: str, tied) -> None:
    before = snapshot(tied)
    with pytest.raises(ParamsError, match=message):
        load_params(tied, data)
    assert_unchanged(tied, before)


def test_compressed_zips_are_refused_before_torch_reads_them(tied) -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\0" * 10_000_000)  # 10 MB of zeros packs into a few KB
    with pytest.raises(ParamsError, match="compressed zip"):
        load_params(tied, bomb.getvalue())
    with pytest.raises(ParamsError, match="bundle"):
        load_params(tied, builder.bundle(load_example("tied"), tied))


def test_a_path_that_cannot_be_read(tmp_path, tied) -> None:
    with pytest.raises(ParamsError, match="cannot read"):
        load_params(tied, tmp_path / "missing.params")


def test_oversized_uploads_are_refused_before_reading(tmp_path, tied) -> None:
    """The app passes its upload limit (max_mb) for a browser's upload: a file over it is refused unread."""
    with pytest.raises(ParamsError, match="over the limit of 1 MB"):
        read_params(b"\0" * (2 * 2**20), max_mb=1)
    path = tmp_path / "big.params"
    path.write_bytes(b"PK\x03\x04" + b"\0" * (2 * 2**20))
    with pytest.raises(ParamsError, match="over the limit of 1 MB"):
        load_params(tied, path, max_mb=1)
    with open(path, "rb") as f:
        with pytest.raises(ParamsError, match="over the limit of 1 MB"):
            read_params(f, max_mb=1)
        assert f.tell() == 2**20 + 1  # read no further than the limit and one byte


def test_a_notebook_loads_files_over_the_upload_limit(monkeypatch, tmp_path) -> None:
    """BLOCKWORK_MAX_UPLOAD_MB caps what a browser sends, not what a notebook loads from its own disk: a file
    over it loads (path, bytes or binary file), with every other check of an untrusted file still made."""
    monkeypatch.setenv("BLOCKWORK_MAX_UPLOAD_MB", "1")
    net = nn.Sequential(nn.Linear(1024, 512))  # 2 MB of weights
    path = tmp_path / "big.params"
    save_params(net, path)
    assert path.stat().st_size > 2 * 2**20
    clone = nn.Sequential(nn.Linear(1024, 512))
    assert load_params(clone, path).loaded
    assert torch.equal(clone[0].weight, net[0].weight)
    assert load_params(clone, path.read_bytes()).loaded
    with open(path, "rb") as f:
        assert load_params(clone, f).loaded
    evil = tmp_path / "evil.params"

    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch /tmp/blockwork-notebook-pwned",))

    torch.save({"0.weight": Exploit(), "pad": torch.zeros(2**19)}, evil)  # over 1 MB too
    with pytest.raises(ParamsError, match="refused.*posix.system"):
        load_params(clone, evil)
    assert not os.path.exists("/tmp/blockwork-notebook-pwned")


def mismatch(tied: nn.Module, edit) -> dict[str, torch.Tensor]:
    state = snapshot(tied)
    edit(state)
    return state


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda s: s.update({"0.weight": torch.zeros(8, 5)}), ["wrong shape", "0.weight", "(8, 4)", "(8, 5)"]),
        (lambda s: s.pop("6.bias"), ["missing", "6.bias"]),
        (lambda s: s.update({"7.weight": torch.zeros(1)}), ["unexpected", "7.weight"]),
        (lambda s: (s.pop("0.weight"), s.update({"extra": torch.zeros(1)})), ["missing 0.weight", "unexpected extra"]),
    ],
)
def test_mismatched_keys_and_shapes_are_refused_by_name(edit, named, tied) -> None:
    data = to_bytes(mismatch(tied, edit))
    for target in (tied, data):  # as a file, and as a state_dict already read
        before = snapshot(tied)
        with pytest.raises(ParamsError) as e:
            load_params(tied, data if target is data else read_params(data))
        for text in named:
            assert text in str(e.value)
        assert "partial load" in str(e.value)
        assert e.value.report.matched  # the page shows the report as a table
        assert_unchanged(tied, before)


def test_tied_positions_that_disagree_are_refused(tied) -> None:
    state = snapshot(tied)
    state["4.weight"] = state["4.weight"] + 1  # a separate tensor with other values
    before = snapshot(tied)
    with pytest.raises(ParamsError, match=r"2\.weight and 4\.weight are one shared \(tied\) tensor"):
        load_params(tied, to_bytes(state))
    assert_unchanged(tied, before)
    with pytest.raises(ParamsError, match="4.weight"):  # a partial load checks them too
        load_params(tied, to_bytes(state), strict=False)
    assert_unchanged(tied, before)


def test_integers_into_floating_point_weights_are_refused(tied) -> None:
    state = snapshot(tied)
    state["0.weight"] = torch.ones(8, 4, dtype=torch.int64)
    before = snapshot(tied)
    with pytest.raises(ParamsError, match="0.weight: the file holds integer values"):
        load_params(tied, to_bytes(state))
    assert_unchanged(tied, before)


def test_no_matching_key_loads_nothing_even_partially(tied) -> None:
    with pytest.raises(ParamsError, match="no key of the file fits"):
        load_params(tied, to_bytes({"other": torch.zeros(3)}), strict=False)


def test_a_lazy_network_must_be_materialized_first() -> None:
    net = nn.Sequential(nn.LazyLinear(3))
    with pytest.raises(ParamsError, match="uninitialized lazy"):
        load_params(net, to_bytes({"0.weight": torch.zeros(3, 2), "0.bias": torch.zeros(3)}))


# -- partial loads and conversions ---------------------------------------------------------------------------


def test_partial_load_is_an_explicit_choice_and_reported(tied) -> None:
    state = snapshot(tied)
    state = {k: v + 1 for k, v in state.items()}
    state.pop("6.bias")
    state["0.weight"] = torch.zeros(8, 5)
    state["extra"] = torch.zeros(2)
    before = snapshot(tied)
    with pytest.raises(ParamsError):
        load_params(tied, to_bytes(state))
    report = load_params(tied, to_bytes(state), strict=False)
    assert report.loaded and not report.ok
    assert report.missing == ("6.bias",) and report.unexpected == ("extra",)
    assert [k for k, *_ in report.wrong_shape] == ["0.weight"]
    now = tied.state_dict()
    assert torch.equal(now["0.weight"], before["0.weight"]) and torch.equal(now["6.bias"], before["6.bias"])
    assert torch.equal(now["2.weight"], before["2.weight"] + 1)
    table = report.table()
    assert list(table.columns) == ["key", "status", "detail"]
    assert dict(zip(table["key"], table["status"], strict=True)) == {
        "0.bias": "matched",
        "2.weight": "matched",
        "2.bias": "matched",
        "4.weight": "matched",
        "4.bias": "matched",
        "6.weight": "matched",
        "6.bias": "missing",
        "extra": "unexpected",
        "0.weight": "wrong shape",
    }
    assert "5 matched" not in report.summary() and "1 missing" in report.summary()


def test_dtype_conversions_are_reported(tied) -> None:
    state = {k: v.double() + 1 for k, v in snapshot(tied).items()}
    report = load_params(tied, to_bytes(state))
    assert report.loaded and len(report.converted) == len(state)
    assert report.converted[0][1:] == ("float64", "float32")
    assert tied.state_dict()["0.weight"].dtype == torch.float32
    assert torch.equal(tied.state_dict()["0.weight"], state["0.weight"].float())
    table = report.table()
    assert (table["detail"] == "converted float64 → float32").all()
    assert "converted dtype" in report.summary()


def test_check_params_changes_nothing(tied) -> None:
    before = snapshot(tied)
    report = check_params(tied, {k: v + 1 for k, v in before.items()})
    assert report.ok and not report.loaded
    assert_unchanged(tied, before)


# -- parameter access (d2l 6.2) -------------------------------------------------------------------------------


def test_setting_one_value_changes_every_tied_position(tied) -> None:
    keys = P.set_value(tied, "2.weight", (0, 0), 100.0)
    assert keys == ["2.weight", "4.weight"]
    assert tied[2].weight.data[0, 0] == 100 and tied[4].weight.data[0, 0] == 100  # the chapter's check
    with pytest.raises(ParamsError, match="outside its shape"):
        P.set_value(tied, "2.weight", (8, 0), 1.0)
    with pytest.raises(ParamsError, match="no such key"):
        P.set_value(tied, "9.weight", (0, 0), 1.0)


def test_layer_keys_frame_and_gradients(tied) -> None:
    assert P.layer_keys(tied) == {
        "0": ["0.weight", "0.bias"],
        "2": ["2.weight", "2.bias"],
        "4": ["4.weight", "4.bias"],
        "6": ["6.weight", "6.bias"],
    }
    frame = P.tensor_frame(tied[0].weight)
    assert frame.shape == (8, 4) and frame.iloc[1, 2] == pytest.approx(float(tied[0].weight.detach()[1, 2]))
    assert P.tensor_frame(tied[0].bias).shape == (8, 1)
    P.example_gradients(tied, example_input(load_example("tied")))
    assert tied[2].weight.grad is not None and tied[2].weight.grad is tied[4].weight.grad
    assert P.values(tied, "0.weight").numel() == 32


def test_example_gradients_leave_batch_norm_statistics_alone() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    P.example_gradients(net, torch.randn(5, 3))
    assert net[0].weight.grad is not None
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_bundle_holds_design_weights_and_code(tied) -> None:
    design = load_example("tied")
    with zipfile.ZipFile(io.BytesIO(builder.bundle(design, tied))) as z:
        names = sorted(z.namelist())
        assert names == ["tied/README.txt", "tied/tied.json", "tied/tied.params", "tied/tied.py"]
        assert builder.Design.from_json(z.read("tied/tied.json")) == design
        assert z.read("tied/tied.params") == save_params(tied)
        assert z.read("tied/tied.py").decode() == builder.to_code(design)


def test_upload_limit_in_streamlit_config_matches_builder() -> None:
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == builder.limits().max_upload_mb
