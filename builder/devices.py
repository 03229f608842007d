"""Which devices this machine offers, and the chapter's default choice (try_gpu)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DeviceInfo:
    id: str  # what torch.device takes: "cpu", "cuda:0", "mps"
    label: str  # what a person reads: "cuda:0 — NVIDIA H100 (80.0 GB)"


def available_devices() -> list[DeviceInfo]:
    """CPU, then each CUDA device with its name and memory, then MPS where present."""
    found = [DeviceInfo("cpu", "cpu")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            found.append(DeviceInfo(f"cuda:{i}", f"cuda:{i} — {props.name} ({props.total_memory / 2**30:.1f} GB)"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append(DeviceInfo("mps", "mps — Apple GPU"))
    return found


def default_device() -> str:
    """The chapter's try_gpu(): the first GPU if there is one, else the CPU."""
    devices = available_devices()
    return devices[1].id if len(devices) > 1 else "cpu"
