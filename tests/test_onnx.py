"""ONNX export: every example runs in onnxruntime as in torch (max abs difference ≤ 1e-5) at any batch size,
from one self-contained file; a tied layer's weights are stored once; the network is left as it was; a layer the
exporter cannot handle is named. One export per example (the first ~3 s, then ~1 s each)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from torch import nn

import builder
from builder import build, example_input, load_example, to_onnx
from builder.onnx_export import INSTALL, OnnxError

TOLERANCE = 1e-5


def run(data: bytes, x: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (out,) = session.run(["output"], {"input": x.numpy()})
    return torch.from_numpy(np.asarray(out))


def max_diff(data: bytes, net: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        want = net(x)
    got = run(data, x)
    assert got.shape == want.shape and got.dtype == want.dtype
    return float((got - want).abs().max())


def initializers(data: bytes) -> list[np.ndarray]:
    model = onnx.load_from_string(data)
    return [numpy_helper.to_array(t) for t in model.graph.initializer]


@pytest.mark.parametrize("name", builder.example_names(heavy=False))
def test_every_example_runs_in_onnxruntime_as_in_torch(name: str, tmp_path) -> None:
    design = load_example(name)
    net = build(design, seed=0)  # lazy layers materialized by the build's dry run; train mode, as the session's
    x = example_input(design, seed=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    path = tmp_path / f"{name}.onnx"
    data = to_onnx(net, x, path)
    assert path.read_bytes() == data

    # the network is left as it was: train mode, weights and batch-norm statistics
    assert net.training and all(m.training for m in net.modules())
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k

    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    assert not any(t.external_data for t in model.graph.initializer)  # self-contained: weights embedded
    (batch,) = [d for d in model.graph.input[0].type.tensor_type.shape.dim[:1]]
    assert batch.dim_param and not batch.dim_value  # a named, dynamic batch dimension

    net.eval()  # the file is for inference: dropout off, batch norm on its running statistics
    assert max_diff(data, net, x) <= TOLERANCE
    other = torch.cat([x, x[:1]]) if len(x) > 1 else torch.cat([x, x, x])  # another batch size
    assert max_diff(data, net, other) <= TOLERANCE
    assert max_diff(data, net, x[:1]) <= TOLERANCE


def tied_parameters(net: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters that sit at more than one position of the network (a shared layer's)."""
    positions: dict[int, list[str]] = {}
    for name, _ in net.named_parameters(remove_duplicate=False):
        positions.setdefault(id(net.get_parameter(name)), []).append(name)
    return [(names[0], net.get_parameter(names[0])) for names in positions.values() if len(names) > 1]


TIED_EXAMPLES = [n for n in builder.example_names(heavy=False) if tied_parameters(build(load_example(n)))]


@pytest.mark.parametrize("name", TIED_EXAMPLES)
def test_shared_weights_are_stored_once(name: str) -> None:
    design = load_example(name)
    net = build(design, seed=0)
    stored = initializers(to_onnx(net, example_input(design)))
    for key, tensor in tied_parameters(net):
        value = tensor.detach().numpy()
        same = [a for a in stored if np.array_equal(a, value) or (a.ndim == 2 and np.array_equal(a.T, value))]
        assert len(same) == 1, f"{key}: stored {len(same)} times"


def test_the_chapters_tied_network_has_nothing_but_its_unique_weights() -> None:
    net = build(load_example("tied"), seed=0)
    stored = initializers(to_onnx(net, example_input(load_example("tied"))))
    # Linear(4, 8) + the shared Linear(8, 8) once + Linear(8, 1); the shared one used twice would add 72
    assert sum(a.size for a in stored) == 40 + 72 + 9 == sum(p.numel() for p in net.parameters())


def test_a_hand_written_lazy_network_exports_after_its_dry_run() -> None:
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(3))
    x = torch.randn(4, 5)
    with pytest.raises(OnnxError, match="uninitialized lazy"):
        to_onnx(net, x)
    with torch.no_grad():
        net(x)  # the chapter's dry run
    assert max_diff(to_onnx(net, x), net, torch.randn(7, 5)) <= TOLERANCE


class DataDependent(nn.Module):
    """Python control flow on a tensor's value: torch.export cannot trace it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.sum() > 0 else -x


class Bessel(nn.Module):
    """An operator without an ONNX translation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.special.bessel_j0(x)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (DataDependent(), r"cannot trace for layer 1\.1 \(DataDependent\): Could not guard on data-dependent"),
        (Bessel(), r"no translation for layer 1\.1 \(Bessel\): No ONNX function found for .*bessel_j0"),
    ],
)
def test_a_layer_the_exporter_cannot_handle_is_named(layer: nn.Module, message: str) -> None:
    net = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), layer))
    with pytest.raises(OnnxError, match=message) as info:
        to_onnx(net, torch.randn(2, 4))
    assert info.value.layer == "1.1"
    assert "\n" not in str(info.value) and len(str(info.value)) < 500  # one line, not the exporter's report
    assert net.training


def test_missing_packages_are_named_with_the_install_command(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    assert builder.onnx_missing() == ["onnxscript"]
    with pytest.raises(OnnxError, match=f"needs the optional package onnxscript: {INSTALL}"):
        to_onnx(nn.Linear(2, 2), torch.randn(2, 2))


def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        to_onnx("net", torch.randn(2, 2))  # type: ignore[arg-type]
    with pytest.raises(OnnxError, match="first dimension is the batch"):
        to_onnx(nn.Linear(2, 2), torch.tensor(1.0))


def test_the_weights_stamp_moves_with_every_change_and_only_then() -> None:
    """The Weights page offers an exported file only while builder.params.weights_version stays put."""
    from builder.params import set_value, weights_version

    net = build(load_example("mlp_dropout_bn"), seed=0)
    stamp = weights_version(net)
    assert weights_version(net) == stamp
    with torch.no_grad():
        net(torch.randn(4, 20))  # a forward in train mode updates batch-norm statistics in place
    moved = weights_version(net)
    assert moved != stamp
    set_value(net, "0.weight", (0, 0), 1.5)
    assert weights_version(net) != moved
    moved = weights_version(net)
    builder.load_params(net, build(load_example("mlp_dropout_bn"), seed=1).state_dict())
    assert weights_version(net) != moved
    net.eval()
    before = weights_version(net)
    with torch.no_grad():
        net(torch.randn(4, 20))  # eval mode reads, changes nothing
    assert weights_version(net) == before
