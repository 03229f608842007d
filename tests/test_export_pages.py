"""The Weights and Train pages' ways out (AppTest): .safetensors down and up, the ONNX export (and its message
where the exporter is absent or fails), the torchrun training bundle."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load, save
from streamlit.testing.v1 import AppTest

import builder
from builder import OnnxError, TrainConfig, build, load_example, training_bundle
from builder.data import make_dataset
from builder.safetensors_io import recorded_ties
from ui import state

from .chapter import tied as hand_written_tied
from .conftest import download_bytes, open_page

pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True")


def weights_page(app: AppTest, example: str = "tied") -> AppTest:
    app.session_state[state.DESIGN.name] = load_example(example)
    return open_page(app, "weights")


def net_of(at: AppTest) -> torch.nn.Module:
    return at.session_state[state.NET.name].module


def no_errors(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def test_the_safetensors_download_loads_strictly_into_hand_written_pytorch(app: AppTest, downloads) -> None:
    at = weights_page(app)
    no_errors(at)
    data = download_bytes(at, downloads, "Weights · tied.safetensors")
    theirs = hand_written_tied()
    theirs.load_state_dict(load(data), strict=True)
    ours = net_of(at)
    for k, v in ours.state_dict().items():
        assert torch.equal(theirs.state_dict()[k], v), k
    assert recorded_ties(data) == [["2.weight", "4.weight"], ["2.bias", "4.bias"]]


def test_uploading_a_safetensors_file_loads_it(app: AppTest) -> None:
    at = weights_page(app)
    other = build(load_example("tied"), seed=11)
    data = builder.save_safetensors(other)
    at.file_uploader(key=state.UPLOAD.name).set_value(("other.safetensors", data, "application/octet-stream")).run()
    no_errors(at)
    assert any("Loaded 8 tensors from other.safetensors" in s.value for s in at.success), at.success
    net = net_of(at)
    assert net[2] is net[4]
    for k, v in other.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff" * 8 + b"{}", "over the format's limit"),
        (save({"0.weight": torch.zeros(8, 4)}), "missing 0.bias"),
        (save({k: torch.zeros(2) for k in ["a", "b"]})[:-3], "truncated"),
    ],
)
def test_a_bad_safetensors_file_is_refused_and_changes_nothing(app: AppTest, data: bytes, message: str) -> None:
    at = weights_page(app)
    before = {k: v.clone() for k, v in net_of(at).state_dict().items()}
    at.file_uploader(key=state.UPLOAD.name).set_value(("bad.safetensors", data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    for k, v in net_of(at).state_dict().items():
        assert torch.equal(before[k], v), k


def test_the_onnx_export_runs_in_onnxruntime_and_goes_stale_when_the_weights_change(app: AppTest, downloads) -> None:
    at = weights_page(app)
    assert not [b for b in at.get("download_button") if b.proto.label.startswith("ONNX")]
    at.button(key="export_onnx").click().run()
    no_errors(at)
    data = download_bytes(at, downloads, "ONNX · tied.onnx")
    net = net_of(at).eval()
    x = torch.randn(5, 4)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (got,) = session.run(["output"], {"input": x.numpy()})
    with torch.no_grad():
        assert float(np.abs(got - net(x).numpy()).max()) <= 1e-5

    with torch.no_grad():
        net[2].weight.add_(1.0)  # an edit (as the Parameters page or training does): the file no longer matches
    at.run()
    assert not [b for b in at.get("download_button") if b.proto.label.startswith("ONNX")]
    assert at.button(key="export_onnx").label == "Export to ONNX"


def test_an_export_failure_names_the_layer(app: AppTest, monkeypatch) -> None:
    def fail(net, x, f=None):
        raise OnnxError("ONNX has no translation for layer 2 (Linear): No ONNX function found", "2")

    monkeypatch.setattr(builder, "to_onnx", fail)
    at = weights_page(app)
    at.button(key="export_onnx").click().run()
    assert not at.exception, at.exception
    assert any("layer 2 (Linear)" in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="export_onnx").label == "Try the ONNX export again"


def test_without_the_onnx_packages_the_page_says_how_to_add_them(app: AppTest, monkeypatch) -> None:
    monkeypatch.setattr(builder, "onnx_missing", lambda: ["onnx", "onnxscript"])
    at = weights_page(app)
    no_errors(at)
    assert any("pip install -r requirements-onnx.txt" in i.value for i in at.info), [i.value for i in at.info]
    assert not [b for b in at.button if b.key == "export_onnx"]


def test_the_train_page_offers_the_training_bundle_of_its_data_and_settings(app: AppTest, downloads) -> None:
    at = open_page(app, "train")
    at.selectbox(key="train_source").select("moons").run()
    at.button(key="train_use_example").click().run()
    at.number_input(key=state.train_field("epochs").name).set_value(7).run()
    no_errors(at)
    data = download_bytes(at, downloads, "Training script · tied_moons_train.zip")
    n_key, noise_key = state.train_data_size("moons")
    moons = make_dataset("moons", n=at.session_state[n_key.name], noise=at.session_state[noise_key.name])
    want = training_bundle(load_example("tied_moons"), moons, TrainConfig())  # the same data and code
    with zipfile.ZipFile(io.BytesIO(data)) as got, zipfile.ZipFile(io.BytesIO(want)) as expected:
        assert got.namelist() == expected.namelist()
        assert got.read("tied_moons_train/data.py") == expected.read("tied_moons_train/data.py")
        assert got.read("tied_moons_train/model.py") == expected.read("tied_moons_train/model.py")
        train = got.read("tied_moons_train/train.py").decode()
        design = json.loads(got.read("tied_moons_train/tied_moons.json"))
    assert "epochs: int = 7" in train  # the page's settings
    assert design["name"] == "tied_moons"
