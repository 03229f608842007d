"""Weights as `.params` files (exactly `torch.save(net.state_dict())`) or `.safetensors` files, read back with
every check first.

Files come from browsers, so loading is defensive: `torch.load(weights_only=True)` (no arbitrary
unpickling) or a checked safetensors header (see safetensors_io), then the content must be a mapping of names
to tensors whose keys, shapes and tied positions fit the network — all checked before a single weight changes.
A failed load raises ParamsError and leaves the network exactly as it was.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import pandas as pd
import torch
from torch import nn
from torch.nn.parameter import is_lazy

from .errors import ParamsError
from .safetensors_io import is_safetensors, read_safetensors, safetensors_bytes


def save_params(net: nn.Module, f: str | os.PathLike[str] | IO[bytes] | None = None, *, cpu: bool = False) -> bytes:
    """Write `net.state_dict()` as torch.save does; return the bytes (also written to `f` when given).

    Tensors are saved from wherever they live, so the bytes are exactly `torch.save(net.state_dict(), f)`;
    `load_params` and torch.load(map_location=...) move them. `cpu=True` saves CPU copies instead (a file
    from a GPU session that plain `torch.load(path)` reads on a machine without one); tied positions still
    share one tensor in the file.
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"save_params expects a torch.nn.Module, got {type(net).__name__}")
    state = net.state_dict()
    if cpu and any(t.device.type != "cpu" for t in state.values()):
        copies: dict[int, torch.Tensor] = {}  # by identity: a tied tensor is copied once and stays tied
        moved = type(state)((k, copies.setdefault(id(t), t.cpu())) for k, t in state.items())
        moved._metadata = getattr(state, "_metadata", None)  # type: ignore[attr-defined]  # load_state_dict reads it
        state = moved
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return _write(buffer.getvalue(), f)


def save_safetensors(net: nn.Module, f: str | os.PathLike[str] | IO[bytes] | None = None) -> bytes:
    """Write `net.state_dict()` as a `.safetensors` file; return the bytes (also written to `f` when given).

    Every key holds its own copy of its tensor, so `net.load_state_dict(safetensors.torch.load_file(path))`
    works strictly in hand-written PyTorch; the groups of tied keys are recorded in the metadata
    (`"blockwork.tied"`). `load_params` reads it back, and also reads `safetensors.torch.save_model`'s files
    (one key per tied tensor plus aliases). See builder/safetensors_io.py.
    """
    return _write(safetensors_bytes(net), f)


def weights_version(net: nn.Module) -> tuple[tuple[int, int], ...]:
    """A stamp that changes whenever a tensor of `net` is changed in place (an optimizer step, a load, an edit,
    batch-norm statistics) or replaced: (address, version counter) of each state_dict entry. A file made from
    the weights (an ONNX export) is stale when the stamp has moved; no value is read to tell."""
    return tuple((t.data_ptr(), t._version) for t in net.state_dict(keep_vars=True).values())


def _write(data: bytes, f: str | os.PathLike[str] | IO[bytes] | None) -> bytes:
    if f is not None:
        if isinstance(f, str | os.PathLike):
            with open(f, "wb") as out:
                out.write(data)
        else:
            f.write(data)
    return data


@dataclass(frozen=True)
class LoadReport:
    """What a load found, key by key. `ok` is True when every expected key was matched with no surprises."""

    matched: tuple[str, ...]
    missing: tuple[str, ...]  # in the network, not in the file
    unexpected: tuple[str, ...]  # in the file, not in the network
    wrong_shape: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]  # (key, network's, file's)
    converted: tuple[tuple[str, str, str], ...]  # (key, file dtype, network dtype)
    loaded: bool  # whether the weights were copied into the network

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong_shape)

    def summary(self) -> str:
        """One line: "6 matched, 1 missing, 0 unexpected, 0 wrong shape, 1 converted"."""
        return (
            f"{len(self.matched)} matched, {len(self.missing)} missing, {len(self.unexpected)} unexpected, "
            f"{len(self.wrong_shape)} wrong shape"
            + (f", {len(self.converted)} converted dtype" if self.converted else "")
        )

    def table(self) -> pd.DataFrame:
        """One row per key: key, status (matched / missing / unexpected / wrong shape), detail."""
        rows = [{"key": k, "status": "matched", "detail": ""} for k in self.matched]
        rows += [{"key": k, "status": "missing", "detail": "in the network, not in the file"} for k in self.missing]
        rows += [
            {"key": k, "status": "unexpected", "detail": "in the file, not in the network"} for k in self.unexpected
        ]
        rows += [
            {"key": k, "status": "wrong shape", "detail": f"network {want}, file {got}"}
            for k, want, got in self.wrong_shape
        ]
        for k, src, dst in self.converted:
            for row in rows:
                if row["key"] == k:
                    row["detail"] = f"converted {src} → {dst}"
        return pd.DataFrame(rows, columns=["key", "status", "detail"])


def read_params(f: str | os.PathLike[str] | bytes | IO[bytes], *, max_mb: int | None = None) -> dict[str, torch.Tensor]:
    """Safely read a `.params` or `.safetensors` file into a dict of CPU tensors. ParamsError on anything else.

    The format is told by the content, not the name. torch.load(weights_only=True) refuses pickles that would
    run code or build custom classes; what it does load must then be a mapping of string keys to ordinary
    (dense, CPU) tensors. A safetensors header is checked entry by entry before any tensor is read.
    max_mb: refuse a file over this many megabytes before reading more of it — the app passes its upload
    limit (BLOCKWORK_MAX_UPLOAD_MB) for a browser's upload; None (the default, for a notebook's own files):
    no size limit, every other check the same.
    """
    data = _read_bytes(f, max_mb)
    if is_safetensors(data):
        _check_size(data, max_mb)
        return read_safetensors(data)
    obj = _load_untrusted(data, ".params file", max_mb)
    if not isinstance(obj, Mapping):
        raise ParamsError(
            f"the file holds a {type(obj).__name__}, not a state_dict (a mapping of names to "
            f"tensors). Save weights with torch.save(net.state_dict(), path)."
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise ParamsError(f"the file has a key {_short(repr(key))} that is not a string; not a state_dict")
        if not isinstance(value, torch.Tensor):
            raise ParamsError(f"{_short(key)}: holds a {type(value).__name__}, not a tensor; not a state_dict")
        if value.layout != torch.strided or value.device.type != "cpu" or value.is_quantized:
            raise ParamsError(
                f"{_short(key)}: holds a {value.layout} tensor on {value.device.type} "
                f"({str(value.dtype).removeprefix('torch.')}); only ordinary dense tensors are read"
            )
        out[key] = value
    return out


Tensors = torch.Tensor | list[torch.Tensor] | dict[str, torch.Tensor]


def save_tensors(obj: Tensors) -> bytes:
    """`torch.save(obj, f)` of a tensor, a list of tensors or a dict of named tensors (d2l 6.6: `x`, `[x, y]`,
    `{'x': x, 'y': y}`), as bytes; `read_tensors` reads them back."""
    _check_tensors(obj, "save_tensors")
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def read_tensors(f: str | os.PathLike[str] | bytes | IO[bytes], *, max_mb: int | None = None) -> Tensors:
    """Safely read a file of plain tensors (what `torch.save(x)`, `torch.save([x, y])` or
    `torch.save({'x': x, 'y': y})` writes) with the same checks as a .params file: torch.save's uncompressed
    zip (within `max_mb` megabytes when given, as for `read_params`), `weights_only=True`, CPU. ParamsError on
    anything else (a list held as a tuple comes back as a list)."""
    obj = _load_untrusted(f, "tensor file", max_mb)
    if isinstance(obj, tuple):
        obj = list(obj)
    _check_tensors(obj, "the file")
    return obj  # type: ignore[return-value]  # checked above


def _check_tensors(obj: object, what: str) -> None:
    def dense(t: object, where: str) -> None:
        if not isinstance(t, torch.Tensor):
            raise ParamsError(f"{where}: holds a {type(t).__name__}, not a tensor")
        if t.layout != torch.strided or t.is_quantized:
            raise ParamsError(f"{where}: holds a {t.layout} tensor; only ordinary dense tensors are read")

    if isinstance(obj, torch.Tensor):
        dense(obj, what)
    elif isinstance(obj, list):
        for i, t in enumerate(obj):
            dense(t, f"{what}[{i}]")
    elif isinstance(obj, Mapping):
        for k, t in obj.items():
            if not isinstance(k, str):
                raise ParamsError(f"{what}: has a key {_short(repr(k))} that is not a string")
            dense(t, f"{what}[{_short(repr(k))}]")
    else:
        raise ParamsError(
            f"{what} holds a {type(obj).__name__}; a tensor file holds a tensor, a list of tensors or a dict "
            f"of named tensors"
        )


def _load_untrusted(f: str | os.PathLike[str] | bytes | IO[bytes], what: str, max_mb: int | None) -> object:
    """torch.load of bytes nobody vouched for, refused before anything is allocated or run unless it is
    torch.save's uncompressed zip (within max_mb megabytes when given); weights_only=True, onto the CPU. `what`
    names the file kind in messages (".params file", "tensor file"). An uncompressed zip's tensors fit in the
    file, so what is allocated is bounded by the file's own size."""
    data = _read_bytes(f, max_mb)
    _check_size(data, max_mb)
    _check_zip(data, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the error below says enough
            obj = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        refused = _forbidden(str(e))
        if refused is None:
            raise ParamsError(
                f"the file is not a readable {what} (truncated, corrupt, or not a plain pickle "
                "of tensors); nothing in it was run"
            ) from None
        raise ParamsError(
            f"refused: the file holds something other than tensors ({refused}). Only tensors, lists and "
            f"dicts of tensors (torch.save(net.state_dict(), ...)) are read; nothing in it was run."
        ) from None
    except Exception as e:  # noqa: BLE001 — untrusted bytes: whatever torch.load trips on means "corrupt"
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        first = first if len(first) <= 120 else first[:117] + "..."
        raise ParamsError(
            f"the file is not a readable {what} (truncated or corrupt?): {type(e).__name__}: {first}".rstrip(": ")
        ) from None
    return obj


def _check_size(data: bytes, max_mb: int | None) -> None:
    if max_mb is not None and len(data) > max_mb * 1024 * 1024:
        raise ParamsError(
            f"the file is {len(data) / 2**20:.1f} MB, over the limit of {max_mb} MB (BLOCKWORK_MAX_UPLOAD_MB)"
        )
    if not data:
        raise ParamsError("the file is empty")


def _check_zip(data: bytes, what: str = ".params file") -> None:
    """torch.save writes an uncompressed zip archive. Refuse anything else before torch reads it: a plain
    pickle or the legacy (pre-1.6) format declares storage sizes that torch allocates before reading (a tiny
    file could ask for gigabytes), and compressed entries unpack to sizes the file does not bound (a zip bomb)."""
    if not data.startswith(b"PK\x03\x04"):
        raise ParamsError(
            f"the file is not a {what}: torch.save writes a zip archive, and this is not one "
            "(a plain pickle, PyTorch's pre-1.6 format, truncated or something else); nothing in "
            "it was run"
            + (
                ". Nor is it a .safetensors file (8 bytes of length, then a JSON header)"
                if what == ".params file"
                else ""
            )
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            packed = [i.filename for i in z.infolist() if i.compress_type != zipfile.ZIP_STORED]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return  # torch.load says what is wrong with it
    if packed:
        raise ParamsError(
            f"the file is a compressed zip ({_short(packed[0])}); a {what} from torch.save is "
            f"not compressed. (A Blockwork bundle .zip holds the .params file inside.)"
        )


def _forbidden(message: str) -> str | None:
    """The unpickler's long message, cut to what was refused ("it refers to posix.system, ..."); None when it
    names nothing (garbage or a pickle using instructions a weights file never needs)."""
    found = re.search(r"GLOBAL ([\w.]+)", message)
    return f"it refers to {found.group(1)}, which a weights file may not" if found else None


def _read_bytes(f: Any, max_mb: int | None) -> bytes:
    """The file's bytes; with max_mb, at most one byte more than the limit (enough to refuse it)."""
    if isinstance(f, bytes | bytearray | memoryview):
        return bytes(f)
    size = -1 if max_mb is None else max_mb * 1024 * 1024 + 1
    if isinstance(f, str | os.PathLike):
        try:
            with open(f, "rb") as fh:
                return fh.read(size)
        except OSError as e:
            raise ParamsError(f"cannot read {os.fspath(f)!r}: {e.strerror}") from None
    if hasattr(f, "read"):
        data = f.read(size)
        if isinstance(data, bytes):
            return data
    raise ParamsError(f"expected bytes, a path or a binary file, got {type(f).__name__}")


def check_params(net: nn.Module, state: Mapping[str, torch.Tensor]) -> LoadReport:
    """Compare a state_dict with the network's key by key, without changing anything."""
    own = net.state_dict(keep_vars=True)
    lazy = [k for k, t in own.items() if is_lazy(t)]
    if lazy:
        raise ParamsError(
            f"the network still has uninitialized lazy tensors ({_keys(tuple(lazy))}); run a "
            f"forward pass (or builder.build) first so their shapes are known"
        )
    matched, missing, wrong, converted = [], [], [], []
    for key, tensor in own.items():
        if key not in state:
            missing.append(key)
            continue
        got = state[key]
        if tuple(got.shape) != tuple(tensor.shape):
            wrong.append((key, tuple(tensor.shape), tuple(got.shape)))
            continue
        matched.append(key)
        if got.dtype != tensor.dtype:
            converted.append((key, _dtype(got), _dtype(tensor)))
    unexpected = [k for k in state if k not in own]
    return LoadReport(tuple(matched), tuple(missing), tuple(unexpected), tuple(wrong), tuple(converted), False)


def load_params(
    net: nn.Module,
    f: str | os.PathLike[str] | bytes | IO[bytes] | Mapping[str, torch.Tensor],
    *,
    strict: bool = True,
    max_mb: int | None = None,
) -> LoadReport:
    """Load a `.params` or `.safetensors` file (or a state_dict read by `read_params`) into `net`; return the report.

    strict=True (the default) needs every key of the network, no others, and matching shapes.
    strict=False loads the keys that match in name and shape and reports the rest (an explicit choice).
    Either way tied positions (a shared layer's keys) must hold equal values, dtype changes are reported
    (and refused when they would lose meaning, e.g. floats into integer buffers), and every check runs before
    the first weight changes: on any ParamsError the network is untouched. The error's `report` attribute
    holds the key-by-key report when the file was readable. max_mb: as for `read_params` (the app passes its
    upload limit for a browser's upload; a notebook loading its own file has no size limit).
    """
    state = dict(f) if isinstance(f, Mapping) else read_params(f, max_mb=max_mb)
    report = check_params(net, state)
    if strict and not report.ok:
        parts = []
        if report.missing:
            parts.append("missing " + _keys(report.missing))
        if report.unexpected:
            parts.append("unexpected " + _keys(report.unexpected))
        if report.wrong_shape:
            parts.append(
                "wrong shape "
                + _keys(tuple(f"{k} (network {w}, file {g})" for k, w, g in report.wrong_shape), n=4, sep="; ")
            )
        raise _error(
            "the file does not fit this network: " + "; ".join(parts) + ". Nothing was loaded; a "
            "partial load (only the matching keys) is a separate, explicit choice.",
            report,
        )
    if not report.matched:
        raise _error("no key of the file fits this network; nothing was loaded", report)
    own = net.state_dict(keep_vars=True)
    for key in report.matched:
        src, dst = state[key], own[key]
        if (
            src.is_complex()
            or src.is_floating_point() != dst.is_floating_point()
            or (src.dtype == torch.bool) != (dst.dtype == torch.bool)
        ):
            raise _error(
                f"{key}: the file holds {_kind(src)} values ({_dtype(src)}) where the network keeps "
                f"{_kind(dst)} ones ({_dtype(dst)}); nothing was loaded",
                report,
            )
    # Tied positions hold one tensor: the file must agree with itself there.
    positions: dict[int, list[str]] = {}
    for key in report.matched:
        positions.setdefault(id(own[key]), []).append(key)
    for keys in positions.values():
        first = state[keys[0]]
        for other in keys[1:]:
            if not _same_values(first, state[other]):
                raise _error(
                    f"{keys[0]} and {other} are one shared (tied) tensor in this network, but the file "
                    f"holds different values for them; nothing was loaded",
                    report,
                )
    # Convert everything first (dtype, device), so a failure here (e.g. out of GPU memory) changes nothing.
    ready = {}
    try:
        for key in report.matched:
            ready[key] = state[key].to(dtype=own[key].dtype, device=own[key].device)
    except (RuntimeError, AssertionError) as e:
        raise _error(
            f"could not move the weights to {own[report.matched[0]].device}: {e}; nothing was loaded", report
        ) from None
    with torch.no_grad():
        for key, value in ready.items():
            own[key].copy_(value)
    return LoadReport(report.matched, report.missing, report.unexpected, report.wrong_shape, report.converted, True)


def _error(message: str, report: LoadReport) -> ParamsError:
    err = ParamsError(message)
    err.report = report  # type: ignore[attr-defined]  # the page shows it as a table
    return err


def _same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal element for element, NaN equal to NaN (a diverged shared weight still matches itself)."""
    if a.dtype != b.dtype:
        b = b.to(a.dtype)
    if a.is_floating_point():
        nan = a.isnan()
        return torch.equal(nan, b.isnan()) and torch.equal(a.masked_fill(nan, 0), b.masked_fill(nan, 0))
    return torch.equal(a, b)


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _kind(t: torch.Tensor) -> str:
    if t.is_complex():
        return "complex"
    if t.dtype == torch.bool:
        return "boolean"
    return "floating-point" if t.is_floating_point() else "integer"


def _short(key: str, n: int = 80) -> str:
    return key if len(key) <= n else key[: n - 3] + "..."


def _keys(keys: tuple[str, ...], n: int = 6, sep: str = ", ") -> str:
    shown = sep.join(_short(k, 160) for k in keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")


# -- parameter access (d2l 6.2): what the Parameters page reads and edits ------------------------------------


def layer_keys(net: nn.Module) -> dict[str, list[str]]:
    """Each layer (module key, "" for the top) that holds tensors → its state_dict keys, in state_dict order."""
    out: dict[str, list[str]] = {}
    for key in net.state_dict(keep_vars=True):
        out.setdefault(key.rpartition(".")[0], []).append(key)
    return out


def tied_keys(net: nn.Module, key: str) -> list[str]:
    """Every state_dict key holding the very same tensor as `key` (itself included): a shared layer's uses."""
    state = net.state_dict(keep_vars=True)
    if key not in state:
        raise ParamsError(f"{_short(key)}: no such key in the network")
    return [k for k, t in state.items() if t is state[key]]


def tensor_frame(t: torch.Tensor, max_rows: int = 100, max_cols: int = 32) -> pd.DataFrame:
    """A tensor's values as a table a person can read: rows × columns (higher dimensions flattened into the
    columns, a vector as one column), cut to max_rows × max_cols; row and column labels are the indices."""
    values = t.detach().to("cpu", torch.float64 if t.is_floating_point() else t.dtype)
    if values.dim() == 0:
        values = values.reshape(1, 1)
    elif values.dim() == 1:
        values = values.reshape(-1, 1)
    else:
        values = values.reshape(values.shape[0], -1)
    shown = values[:max_rows, :max_cols]
    return pd.DataFrame(shown.numpy(), columns=[str(c) for c in range(shown.shape[1])])


def set_value(net: nn.Module, key: str, index: tuple[int, ...], value: float) -> list[str]:
    """`net.<key>.data[index] = value`, as the chapter does (`net[2].weight.data[0, 0] = 100`).

    Returns every key holding that tensor: a shared layer's positions all change with it, since they are one
    tensor. ParamsError for an unknown key or an index out of range; nothing changes then.
    """
    keys = tied_keys(net, key)
    tensor = net.state_dict(keep_vars=True)[key]
    if len(index) != tensor.dim() or any(not 0 <= i < n for i, n in zip(index, tensor.shape, strict=False)):
        raise ParamsError(f"{_short(key)}: index {tuple(index)} is outside its shape {tuple(tensor.shape)}")
    if not tensor.is_floating_point() and float(value) != int(value):
        raise ParamsError(f"{_short(key)}: holds {_dtype(tensor)} values; {value} is not a whole number")
    with torch.no_grad():
        tensor[tuple(index)] = value
    return keys


def example_gradients(net: nn.Module, x: torch.Tensor) -> float:
    """Fill every parameter's .grad with d(sum of outputs)/d(parameter) on input `x`; return that sum.

    A shared layer's .grad is the sum over its uses, as autograd accumulates it. Earlier gradients are cleared
    first; the network's mode is left as it was, and so are its buffers (batch norm's running statistics): only
    the gradients change.
    """
    buffers = [(b, b.detach().clone()) for b in net.buffers()]
    net.zero_grad(set_to_none=True)
    try:
        y = net(x)
        loss = y.float().sum()
        loss.backward()
    finally:
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
    return float(loss.detach())


def values(net: nn.Module, key: str, limit: int = 200_000) -> torch.Tensor:
    """A tensor's values as a flat float CPU tensor (evenly subsampled to at most `limit`), for a histogram."""
    state = net.state_dict(keep_vars=True)
    if key not in state:
        raise ParamsError(f"{_short(key)}: no such key in the network")
    flat = state[key].detach().reshape(-1).to("cpu", torch.float64)
    if flat.numel() > limit:
        flat = flat[torch.linspace(0, flat.numel() - 1, limit).long()]
    return flat  # type: ignore[no-any-return]  # torch's indexing is typed Any


@dataclass(frozen=True)
class TensorView:
    """One state_dict entry as the Parameters page shows it: its statistics, values and gradient."""

    key: str
    shape: tuple[int, ...]
    mean: float
    std: float  # 0 for a single value
    values: pd.DataFrame  # see tensor_frame
    grad: pd.DataFrame | None  # None until a backward pass filled .grad


def tensor_view(net: nn.Module, key: str) -> TensorView:
    """The tensor `key` of `net` (a parameter or a buffer), with its .grad when it has one."""
    state = net.state_dict(keep_vars=True)
    if key not in state:
        raise ParamsError(f"{_short(key)}: no such key in the network")
    t = state[key].detach().float()
    grad = state[key].grad
    return TensorView(
        key,
        tuple(t.shape),
        float(t.mean()),
        float(t.std()) if t.numel() > 1 else 0.0,
        tensor_frame(state[key]),
        None if grad is None else tensor_frame(grad),
    )


def values_at(net: nn.Module, keys: list[str], index: tuple[int, ...]) -> list[dict[str, Any]]:
    """{key, value at index} for each of `keys` (e.g. the tied positions of an edited weight)."""
    state = net.state_dict()
    return [{"key": k, f"value at {list(index)}": float(state[k][index])} for k in keys]
