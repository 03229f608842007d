"""The ways out in a real browser: the .safetensors, .onnx and training-bundle downloads arrive, each the right
kind of file (read by safetensors, onnx + onnxruntime, zipfile); a .safetensors upload loads."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from playwright.sync_api import Page, expect
from safetensors.torch import load

from builder import save_safetensors
from builder.safetensors_io import read_header

from .conftest import WAIT_MS, no_errors, wait_idle
from .test_weights_browser import open_weights, upload


def download(page: Page, key: str) -> tuple[str, bytes]:
    with page.expect_download(timeout=WAIT_MS) as info:
        page.locator(f".st-key-{key} button").click()
    return info.value.suggested_filename, Path(info.value.path()).read_bytes()


def test_safetensors_and_onnx_downloads_arrive_and_are_what_they_say(page: Page, app_url: str) -> None:
    open_weights(page, app_url)
    name, data = download(page, "download_safetensors")
    assert name == "sequential_mlp.safetensors"
    tensors = load(data)  # safetensors itself reads it
    assert sorted(tensors) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert read_header(data)[1]["format"] == "pt"

    upload(page, "sequential_mlp.safetensors", data)  # and it goes back in
    expect(page.get_by_test_id("stAlertContentSuccess")).to_contain_text(
        "Loaded 4 tensors from sequential_mlp.safetensors", timeout=WAIT_MS
    )
    no_errors(page)

    page.locator(".st-key-export_onnx button").click()
    expect(page.locator(".st-key-download_onnx button")).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)
    name, data = download(page, "download_onnx")
    assert name == "sequential_mlp.onnx"
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (out,) = session.run(["output"], {"input": np.zeros((3, 20), dtype=np.float32)})
    assert out.shape == (3, 10)
    no_errors(page)


def test_a_safetensors_file_that_does_not_fit_is_refused(page: Page, app_url: str) -> None:
    from torch import nn

    open_weights(page, app_url)
    upload(page, "other.safetensors", save_safetensors(nn.Sequential(nn.Linear(3, 3))))
    error = page.get_by_test_id("stAlertContentError")
    expect(error).to_contain_text("does not fit this network", timeout=WAIT_MS)
    expect(page.get_by_text("The session's weights are unchanged.")).to_be_visible()
    assert not page.get_by_test_id("stException").all()


def test_the_training_bundle_download_is_a_zip_for_torchrun(page: Page, app_url: str) -> None:
    page.goto(app_url)
    wait_idle(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
    wait_idle(page)
    page.locator(".st-key-train_source").click()
    page.get_by_role("option", name="moons").click()
    wait_idle(page)
    page.get_by_role("button", name="Use example 'tied_moons'").click()
    expect(page.locator(".st-key-train_bundle button")).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)
    name, data = download(page, "train_bundle")
    assert name == "tied_moons_train.zip"
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        names = set(z.namelist())
        readme = z.read("tied_moons_train/README.md").decode()
    assert {f"tied_moons_train/{n}" for n in ["train.py", "model.py", "data.py", "README.md"]} <= names
    assert "torchrun --standalone --nproc_per_node=N train.py" in readme
    no_errors(page)
