"""The Weights page in a real browser: download the .params, upload it back and see the report; upload a
malicious file, see the refusal, and download the very same weights again."""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from playwright.sync_api import Page, expect

from .conftest import WAIT_MS, no_errors, wait_idle

MARKER = "/tmp/blockwork-browser-pwned"


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def open_weights(page: Page, app_url: str) -> None:
    page.goto(app_url)
    wait_idle(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Weights").click()
    wait_idle(page)
    expect(page.get_by_role("heading", name="Weights", level=1)).to_be_visible(timeout=WAIT_MS)


def download(page: Page, key: str) -> bytes:
    with page.expect_download(timeout=WAIT_MS) as info:
        page.locator(f".st-key-{key} button").click()
    return Path(info.value.path()).read_bytes()


def upload(page: Page, name: str, data: bytes) -> None:
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data}]
    )
    page.wait_for_timeout(300)  # let the upload start the rerun
    wait_idle(page)


def test_download_upload_back_and_refuse_a_malicious_file(page: Page, app_url: str) -> None:
    if os.path.exists(MARKER):
        os.remove(MARKER)
    open_weights(page, app_url)
    data = download(page, "download_params")
    state = torch.load(io.BytesIO(data), weights_only=True)
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # the default example, sequential_mlp

    upload(page, "sequential_mlp.params", data)
    success = page.get_by_test_id("stAlertContentSuccess")
    expect(success).to_contain_text("Loaded 4 tensors from sequential_mlp.params", timeout=WAIT_MS)
    expect(success).to_contain_text("4 matched, 0 missing, 0 unexpected, 0 wrong shape")
    expect(page.get_by_text("Check of sequential_mlp.params against the network")).to_be_visible()
    no_errors(page)

    buffer = io.BytesIO()
    torch.save({"0.weight": Exploit()}, buffer)
    upload(page, "evil.params", buffer.getvalue())
    error = page.get_by_test_id("stAlertContentError")
    expect(error).to_contain_text("refused", timeout=WAIT_MS)
    expect(error).to_contain_text("posix.system")
    expect(page.get_by_text("The session's weights are unchanged.")).to_be_visible()
    assert not page.get_by_test_id("stException").all()
    assert not os.path.exists(MARKER), "the uploaded pickle ran code"
    assert download(page, "download_params") == data  # the weights are exactly as before
