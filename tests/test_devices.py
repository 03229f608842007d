"""Devices: what is listed, the chapter's try_gpu default, moving a network (weights kept) and falling back to the
CPU; and the sidebar's selector in AppTest, with the CUDA listing mocked (no GPU on the test machines)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from streamlit.testing.v1 import AppTest

from builder import build, devices, load_example, summary
from builder.devices import DeviceInfo, Moved
from ui import state

from .conftest import ROOT, open_page

FAKE_GPU = DeviceInfo("cuda:0", "cuda:0 — NVIDIA H100 80GB HBM3 (79.1 GB)")


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch reports two CUDA devices (as on a GPU machine); nothing can really be put on them."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(
        torch.cuda,
        "get_device_properties",
        lambda i: SimpleNamespace(name=f"NVIDIA H100 #{i}", total_memory=80 * 2**30),
    )


def test_this_machine_lists_the_cpu_first() -> None:
    found = devices.available_devices()
    assert found[0] == DeviceInfo("cpu", "CPU")
    if not torch.cuda.is_available():
        assert devices.default_device() == "cpu" and devices.try_gpu() == "cpu"


def test_cuda_devices_are_listed_with_name_and_memory(fake_cuda) -> None:
    found = devices.available_devices()
    assert [d.id for d in found][:3] == ["cpu", "cuda:0", "cuda:1"]
    assert found[1].label == "cuda:0 — NVIDIA H100 #0 (80.0 GB)"
    assert devices.default_device() == "cuda:0"  # the chapter's try_gpu()
    assert devices.try_gpu(1) == "cuda:1" and devices.try_gpu(2) == "cpu"


def test_a_broken_cuda_device_is_listed_as_unavailable(monkeypatch, fake_cuda) -> None:
    def broken(i):
        raise RuntimeError("CUDA error: device-side assert")

    monkeypatch.setattr(torch.cuda, "get_device_properties", broken)
    assert "unavailable (CUDA error: device-side assert)" in devices.available_devices()[1].label


def test_moving_to_the_cpu_it_is_on_does_nothing() -> None:
    net = build(load_example("tied"))
    assert devices.move(net, "cpu") == Moved("cpu")
    assert devices.device_of(net) == "cpu"


@pytest.mark.parametrize("target", ["cuda:7", "meta", "nonsense"])
def test_a_device_that_is_not_listed_falls_back_to_the_cpu(target: str) -> None:
    net = build(load_example("tied"), seed=0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    moved = devices.move(net, target)
    assert moved.failed and moved.device == "cpu" and f"{target} is not available" in moved.note
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]) and v.device.type == "cpu"
    assert devices.probe(target).startswith(f"{target} is not available")


def test_a_listed_device_that_fails_falls_back_with_the_reason(monkeypatch) -> None:
    monkeypatch.setattr(devices, "available_devices", lambda: [DeviceInfo("cpu", "CPU"), FAKE_GPU])
    net = build(load_example("tied"), seed=0)
    weight = net[2].weight
    before = weight.detach().clone()
    moved = devices.move(net, "cuda:0")
    if torch.cuda.is_available():
        pytest.skip("a real GPU is here")
    assert moved.failed and moved.device == "cpu" and moved.note.startswith("could not move the network to cuda:0")
    assert net[2].weight is weight and net[4].weight is weight and torch.equal(weight, before)
    assert devices.probe("cuda:0").startswith("could not use cuda:0")
    assert devices.probe("cpu") is None


def test_the_parameter_table_shows_each_tensors_device() -> None:
    table = summary(build(load_example("tied")))
    assert set(table["device"]) == {"cpu"}


# -- the sidebar selector (AppTest) -------------------------------------------------------------------------


@pytest.fixture
def listed_gpu(monkeypatch):
    monkeypatch.setattr(devices, "available_devices", lambda: [DeviceInfo("cpu", "CPU"), FAKE_GPU])


def main_script(at: AppTest) -> AppTest:
    """Run app.py itself again: AppTest's switch_page runs only the page script, so the sidebar (drawn by
    app.py) is there only on the main script's runs."""
    at.switch_page("app.py").run()
    assert not at.exception, at.exception
    return at


def new_session() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_selector_lists_devices_and_a_failing_default_falls_back_to_cpu(listed_gpu) -> None:
    at = new_session()  # try_gpu() picks cuda:0; it cannot hold tensors here, so the session runs on the CPU
    select = at.sidebar.selectbox(key="device_select")
    assert select.options == ["CPU", FAKE_GPU.label]
    assert at.session_state[state.DEVICE.name] == "cpu" and select.value == "cpu"
    warnings = [w.value for w in at.sidebar.warning]
    assert any("could not use cuda:0" in w and "runs on the CPU" in w for w in warnings), warnings


def test_choosing_a_failing_device_keeps_the_weights_on_the_cpu(listed_gpu) -> None:
    at = new_session()
    open_page(at, "weights")
    net = at.session_state[state.NET.name].module
    before = {k: v.clone() for k, v in net.state_dict().items()}
    main_script(at)
    at.sidebar.selectbox(key="device_select").select("cuda:0").run()
    assert not at.exception
    assert at.session_state[state.DEVICE.name] == "cpu" and at.sidebar.selectbox(key="device_select").value == "cpu"
    assert any("could not use cuda:0" in w.value for w in at.sidebar.warning)
    assert at.session_state[state.NET.name].module is net  # the same module: not rebuilt
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


def test_choosing_a_device_moves_the_existing_network(monkeypatch, listed_gpu) -> None:
    calls = []

    def fake_move(net, device):  # stands in for a GPU: records the move instead of doing it
        calls.append((net, device))
        return Moved(device, f"moved the network from cpu to {device}, weights kept.")

    monkeypatch.setattr(devices, "probe", lambda device: None)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state[state.DEVICE.name] = "cpu"
    at.run()
    open_page(at, "parameters")
    net = at.session_state[state.NET.name].module
    monkeypatch.setattr(devices, "move", fake_move)
    main_script(at)
    at.sidebar.selectbox(key="device_select").select("cuda:0").run()
    assert not at.exception
    assert calls == [(net, "cuda:0")]  # moved with .to() once, not rebuilt
    assert at.session_state[state.NET.name].module is net and at.session_state[state.NET.name].device == "cuda:0"
    assert any("moved the network from cpu to cuda:0" in i.value for i in at.sidebar.info)
    open_page(at, "weights")  # another page: no second move
    assert len(calls) == 1 and at.session_state[state.DEVICE.name] == "cuda:0"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_real_gpu_train_a_step_and_round_trip_params() -> None:
    """The issue's GPU check: move an example to CUDA, train one step, save the .params there, load it on the
    CPU and back onto the GPU, with equal outputs everywhere."""
    from builder import example_input, load_params, save_params

    design = load_example("tied")
    net = build(design, seed=0)
    moved = devices.move(net, "cuda:0")
    assert not moved.failed and devices.device_of(net) == "cuda:0"
    x = example_input(design, device="cuda:0")
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    before = net[2].weight.detach().clone()
    net(x).pow(2).sum().backward()
    opt.step()
    assert not torch.equal(net[2].weight, before) and net[2].weight is net[4].weight
    data = save_params(net)  # tensors saved from the GPU
    on_cpu = build(design, seed=1)
    assert load_params(on_cpu, data).loaded and devices.device_of(on_cpu) == "cpu"
    back = build(design, seed=2)
    devices.move(back, "cuda:0")
    assert load_params(back, save_params(on_cpu)).loaded and devices.device_of(back) == "cuda:0"
    with torch.no_grad():
        y = net(x)
        assert torch.allclose(on_cpu(x.cpu()), y.cpu(), atol=1e-5) and torch.allclose(back(x), y, atol=1e-6)
