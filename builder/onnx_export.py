"""A network as an ONNX file: what Netron opens and onnxruntime (phones, browsers, servers) runs.

    data = to_onnx(net, example_input(design), "net.onnx")     # bytes, also written to the path

torch's own exporter (`torch.onnx.export(..., dynamo=True)`; the legacy TorchScript path fails on
TransformerEncoderLayer) traces the network in eval mode (dropout off, batch norm on its running statistics),
the first dimension of the input — the batch — left dynamic. The file is self-contained: the weights are
embedded as initializers (a shared layer's once), not written beside it as external data.

The exporter needs the optional packages in requirements-onnx.txt (onnx, onnxscript; onnxruntime to run the
file); `onnx_missing()` says which are absent. A network the exporter cannot handle raises OnnxError naming the
layer at fault (its module path and type), never the exporter's multi-page report.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from typing import IO

import torch
from torch import nn
from torch.nn.parameter import is_lazy

NEEDED = ("onnx", "onnxscript")  # what torch.onnx.export(dynamo=True) imports
RUNTIME = "onnxruntime"  # runs the file; not needed to write it
INSTALL = "pip install -r requirements-onnx.txt"
_LOCK = threading.Lock()  # torch.export's tracing state is process-wide: one export at a time


class OnnxError(ValueError):
    """The network cannot be exported to ONNX (or the exporter is not installed). `layer` is the module path of
    the layer at fault ("1.1"), when one is known."""

    def __init__(self, message: str, layer: str | None = None) -> None:
        super().__init__(message)
        self.layer = layer


def onnx_missing() -> list[str]:
    """The optional packages that writing an ONNX file needs and this environment lacks (empty: all there)."""
    return [name for name in NEEDED if importlib.util.find_spec(name) is None]


def to_onnx(net: nn.Module, example_input: torch.Tensor, f: str | os.PathLike[str] | IO[bytes] | None = None) -> bytes:
    """Export `net` to ONNX; return the file's bytes (also written to `f` when given).

    `example_input` is one batch as the network takes it, e.g. `builder.example_input(design)`, (N, ...); its
    first dimension becomes the dynamic batch dimension (any N ≥ 1 runs). The graph's input is named "input",
    its output "output". The network is left as it was (train/eval mode of every module, weights, device).

    Raises OnnxError naming the layer when the exporter cannot handle it, or naming the missing packages.
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"to_onnx expects a torch.nn.Module, got {type(net).__name__}")
    if not isinstance(example_input, torch.Tensor) or example_input.dim() == 0:
        raise OnnxError("the example input must be a tensor whose first dimension is the batch")
    missing = onnx_missing()
    if missing:
        plural = "s" * (len(missing) > 1)
        raise OnnxError(f"ONNX export needs the optional package{plural} {', '.join(missing)}: {INSTALL}")
    lazy = [k for k, t in net.state_dict(keep_vars=True).items() if is_lazy(t)]
    if lazy:
        raise OnnxError(
            f"the network still has uninitialized lazy tensors ({', '.join(lazy[:3])}); run a forward pass "
            f"(or builder.build) first so their shapes are known"
        )
    params = [p for p in net.parameters()] + [b for b in net.buffers()]
    device = params[0].device if params else torch.device("cpu")
    x = example_input.to(device)
    if x.shape[0] == 1:  # torch.export specializes a dimension of size 1: trace with two samples
        x = torch.cat([x, x])
    with _LOCK, _eval_mode(net), _quiet():
        program = _export(net, x)
        data = _convert(net, program, x)
    if f is not None:
        if isinstance(f, str | os.PathLike):
            with open(f, "wb") as out:
                out.write(data)
        else:
            f.write(data)
    return data


def _export(net: nn.Module, x: torch.Tensor) -> torch.export.ExportedProgram:
    """Step 1: trace the network with torch.export (non-strict: it runs the modules' Python forward)."""
    batch = torch.export.Dim("batch")
    try:
        with torch.no_grad():
            return torch.export.export(net, (x,), dynamic_shapes=({0: batch},), strict=False)
    except Exception as e:  # noqa: BLE001 — any tracing failure is reported by layer, not as a traceback
        layer = _failing_module(net, e)
        summary = _summary(e)
        if "batch" in summary and ("specialized" in summary or "Constraints violated" in summary):
            raise OnnxError(
                f"the network fixes the batch size{_at(net, layer)}, so it cannot be exported with a dynamic batch "
                f"dimension: {summary}",
                layer,
            ) from None
        raise OnnxError(f"the ONNX exporter cannot trace{_at(net, layer)}: {summary}", layer) from None


def _convert(net: nn.Module, program: torch.export.ExportedProgram, x: torch.Tensor) -> bytes:
    """Step 2: translate the traced program into ONNX operators; serialize with the weights embedded."""
    try:
        onnx_program = torch.onnx.export(
            program, (x,), dynamo=True, input_names=["input"], output_names=["output"], verbose=False
        )
        assert onnx_program is not None
        data: bytes = onnx_program.model_proto.SerializeToString()  # one message, the weights inside
        return data
    except Exception as e:  # noqa: BLE001
        layer = _failing_node_module(e)
        raise OnnxError(f"ONNX has no translation{_at(net, layer)}: {_summary(e)}", layer) from None


def _at(net: nn.Module, layer: str | None) -> str:
    """ " for layer 1.1 (Bessel)" — the module path as state_dict keys spell it, and its type."""
    if layer is None:
        return ""
    try:
        kind = type(net.get_submodule(layer)).__name__ if layer else type(net).__name__
    except AttributeError:
        kind = "?"
    return f" for layer {layer or '(the whole network)'} ({kind})"


def _chain(e: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _failing_module(net: nn.Module, e: BaseException) -> str | None:
    """The innermost module of `net` whose forward was running when tracing failed (from the tracebacks)."""
    names = {id(m): name for name, m in net.named_modules(remove_duplicate=False) if name}
    found = None
    for err in _chain(e):
        tb = err.__traceback__
        while tb is not None:
            owner = tb.tb_frame.f_locals.get("self")
            if tb.tb_frame.f_code.co_name == "forward" and id(owner) in names:
                found = names[id(owner)]
            tb = tb.tb_next
    return found


def _failing_node_module(e: BaseException) -> str | None:
    """The module whose operation had no ONNX translation: the graph node being translated carries it."""
    found = None
    for err in _chain(e):
        tb = err.__traceback__
        while tb is not None:
            node = tb.tb_frame.f_locals.get("node")
            if isinstance(node, torch.fx.Node):
                stack = node.meta.get("nn_module_stack") or {}
                if stack:
                    found = list(stack.values())[-1][0]
            tb = tb.tb_next
    return found


def _summary(e: BaseException) -> str:
    """The root cause in one line: the exporter's own message is a page of advice around it."""
    root = list(_chain(e))[-1]
    text = str(root).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(root).__name__)
    line = line.replace("\x1b[96m", "").replace("\x1b[0m", "")
    return line if len(line) <= 300 else line[:297] + "..."


@contextlib.contextmanager
def _eval_mode(net: nn.Module) -> Iterator[None]:
    """Eval mode for the export (dropout off, batch norm on running statistics); every module's own mode back
    afterwards."""
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter logs warnings that are not the user's concern (optional torchvision operators, internal
    deprecations); the error raised here says what matters. Loggers and warning filters are restored after."""
    names = ("torch", "torch.onnx", "torch.export", "torch.fx.experimental.symbolic_shapes", "torch._dynamo")
    loggers = [(logger, logger.level) for logger in map(logging.getLogger, names)]
    for logger, _ in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for logger, level in loggers:
            logger.setLevel(level)
