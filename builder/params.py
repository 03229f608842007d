"""Weights as `.params` files: exactly `torch.save(net.state_dict())`, read back with every check first.

Files come from browsers, so loading is defensive: `torch.load(weights_only=True)` (no arbitrary
unpickling), then the content must be a mapping of names to tensors whose keys, shapes and tied positions fit
the network — all checked before a single weight changes. A failed load raises ParamsError and leaves the
network exactly as it was.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import pandas as pd
import torch
from torch import nn

from .errors import ParamsError
from .limits import limits


def save_params(net: nn.Module, f: str | os.PathLike | IO[bytes] | None = None) -> bytes:
    """Write `net.state_dict()` as torch.save does; return the bytes (also written to `f` when given).

    Tensors are saved from wherever they live; `load_params` and torch.load(map_location=...) move them.
    """
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    data = buffer.getvalue()
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

    def table(self) -> pd.DataFrame:
        """One row per key: key, status (matched / missing / unexpected / wrong shape), detail."""
        rows = [{"key": k, "status": "matched", "detail": ""} for k in self.matched]
        rows += [{"key": k, "status": "missing", "detail": "in the network, not in the file"} for k in self.missing]
        rows += [{"key": k, "status": "unexpected", "detail": "in the file, not in the network"}
                 for k in self.unexpected]
        rows += [{"key": k, "status": "wrong shape", "detail": f"network {want}, file {got}"}
                 for k, want, got in self.wrong_shape]
        for k, src, dst in self.converted:
            for row in rows:
                if row["key"] == k:
                    row["detail"] = f"converted {src} → {dst}"
        return pd.DataFrame(rows, columns=["key", "status", "detail"])


def read_params(f: str | os.PathLike | bytes | IO[bytes]) -> dict[str, torch.Tensor]:
    """Safely read a `.params` file into a dict of CPU tensors. ParamsError on anything else."""
    data = _read_bytes(f)
    cap = limits().max_upload_mb * 1024 * 1024
    if len(data) > cap:
        raise ParamsError(f"the file is {len(data) / 2**20:.1f} MB, over the limit of "
                          f"{limits().max_upload_mb} MB (BLOCKWORK_MAX_UPLOAD_MB)")
    if not data:
        raise ParamsError("the file is empty")
    try:
        obj = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        reason = str(e).splitlines()[0] if "GLOBAL" not in str(e) else _forbidden(str(e))
        raise ParamsError(f"refused: the file holds something other than tensors ({reason}). Only "
                          f"state_dict files (torch.save(net.state_dict(), ...)) are read.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError, IndexError,
            TypeError, AttributeError, UnicodeDecodeError, OverflowError, MemoryError) as e:
        raise ParamsError(f"the file is not a readable .params file (truncated or corrupt?): "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")) from None
    if not isinstance(obj, Mapping):
        raise ParamsError(f"the file holds a {type(obj).__name__}, not a state_dict (a mapping of names to "
                          f"tensors). Save weights with torch.save(net.state_dict(), path).")
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise ParamsError(f"the file has a key {key!r} that is not a string; not a state_dict")
        if not isinstance(value, torch.Tensor):
            raise ParamsError(f"{key}: holds a {type(value).__name__}, not a tensor; not a state_dict")
        out[key] = value
    return out


def _forbidden(message: str) -> str:
    for line in message.splitlines():
        if "GLOBAL" in line:
            return line.strip().rstrip(".") + " is not allowed"
    return "a forbidden global"


def _read_bytes(f: Any) -> bytes:
    if isinstance(f, bytes | bytearray | memoryview):
        return bytes(f)
    if isinstance(f, str | os.PathLike):
        try:
            with open(f, "rb") as fh:
                return fh.read(limits().max_upload_mb * 1024 * 1024 + 1)
        except OSError as e:
            raise ParamsError(f"cannot read {os.fspath(f)!r}: {e.strerror}") from None
    if hasattr(f, "read"):
        data = f.read(limits().max_upload_mb * 1024 * 1024 + 1)
        if isinstance(data, bytes):
            return data
    raise ParamsError(f"expected bytes, a path or a binary file, got {type(f).__name__}")


def check_params(net: nn.Module, state: Mapping[str, torch.Tensor]) -> LoadReport:
    """Compare a state_dict with the network's, without changing anything."""
    own = net.state_dict(keep_vars=True)
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
            converted.append((key, str(got.dtype).removeprefix("torch."), str(tensor.dtype).removeprefix("torch.")))
    unexpected = [k for k in state if k not in own]
    return LoadReport(tuple(matched), tuple(missing), tuple(unexpected), tuple(wrong), tuple(converted), False)


def load_params(net: nn.Module, f: str | os.PathLike | bytes | IO[bytes], *, strict: bool = True) -> LoadReport:
    """Load a `.params` file into `net` after checking everything; return the report.

    strict=True (the default) needs every key of the network, no others, and matching shapes.
    strict=False loads the keys that match in name and shape and reports the rest (an explicit choice).
    Either way tied positions (a shared layer's keys) must hold equal values, dtype changes are reported
    (and refused when they would lose meaning, e.g. floats into integer buffers), and on any ParamsError
    the network is untouched.
    """
    state = read_params(f)
    report = check_params(net, state)
    if strict and not report.ok:
        parts = []
        if report.missing:
            parts.append("missing " + _keys(report.missing))
        if report.unexpected:
            parts.append("unexpected " + _keys(report.unexpected))
        if report.wrong_shape:
            parts.append("wrong shape " + "; ".join(f"{k} (network {w}, file {g})" for k, w, g in report.wrong_shape[:5]))
        raise ParamsError("the file does not fit this network: " + "; ".join(parts))
    if not report.matched:
        raise ParamsError("no key of the file fits this network; nothing was loaded")
    own = net.state_dict(keep_vars=True)
    for key in report.matched:
        src, dst = state[key], own[key]
        if src.is_complex() or src.is_floating_point() != dst.is_floating_point():
            kinds = ("complex" if src.is_complex() else "floating-point" if src.is_floating_point() else "integer",
                     "floating-point" if dst.is_floating_point() else "integer")
            raise ParamsError(f"{key}: the file holds {kinds[0]} values ({str(src.dtype).removeprefix('torch.')}) "
                              f"where the network keeps {kinds[1]} ones ({str(dst.dtype).removeprefix('torch.')})")
    # Tied positions hold one tensor: the file must agree with itself there.
    positions: dict[int, list[str]] = {}
    for key in report.matched:
        positions.setdefault(id(own[key]), []).append(key)
    for keys in positions.values():
        first = state[keys[0]]
        for other in keys[1:]:
            if not torch.equal(first.to(state[other].dtype), state[other]):
                raise ParamsError(f"{keys[0]} and {other} are the same shared tensor in this network, but the "
                                  f"file holds different values for them")
    with torch.no_grad():
        for key in report.matched:
            own[key].copy_(state[key])  # copy_ converts dtype and device
    return LoadReport(report.matched, report.missing, report.unexpected, report.wrong_shape, report.converted,
                      True)


def _keys(keys: tuple[str, ...], n: int = 6) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")
