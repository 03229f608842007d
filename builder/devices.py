"""Which devices this machine offers, the chapter's default choice (try_gpu), and moving a network safely.

Nothing here moves a network unless asked: `move` is the one place that does, and it says what it did. A
device that is missing or fails leaves the network on the CPU with a message a person can act on.

The sessions of one server process share its cores: `use_thread_limit` caps torch's threads per computation,
and `training_slot` lets limits().training_slots sessions train at once while the others wait their turn.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .errors import first_line
from .limits import limits


@dataclass(frozen=True)
class DeviceInfo:
    id: str  # what torch.device takes: "cpu", "cuda:0", "mps"
    label: str  # what a person reads: "cuda:0 — NVIDIA H100 (79.1 GB)"


def available_devices() -> list[DeviceInfo]:
    """CPU, then each CUDA device with its name and memory, then MPS where present."""
    found = [DeviceInfo("cpu", "CPU")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            try:
                props = torch.cuda.get_device_properties(i)
                label = f"cuda:{i} — {props.name} ({props.total_memory / 2**30:.1f} GB)"
            except (RuntimeError, AssertionError) as e:  # a device that is listed but broken
                label = f"cuda:{i} — unavailable ({first_line(e, 200)})"
            found.append(DeviceInfo(f"cuda:{i}", label))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append(DeviceInfo("mps", "mps — Apple GPU"))
    return found


def try_gpu(i: int = 0) -> str:
    """The chapter's try_gpu(i): "cuda:i" if there are at least i + 1 GPUs, else "cpu"."""
    ids = [d.id for d in available_devices()]
    return f"cuda:{i}" if f"cuda:{i}" in ids else "cpu"


def try_all_gpus() -> list[str]:
    """The chapter's try_all_gpus(): every CUDA device ("cuda:0", "cuda:1", ...); [] when none was found."""
    return [d.id for d in available_devices() if d.id.startswith("cuda:")]


def default_device() -> str:
    """The chapter's try_gpu() (the first GPU if there is one, else the CPU), with MPS counted as a GPU."""
    devices = available_devices()
    return devices[1].id if len(devices) > 1 else "cpu"


def device_of(net: nn.Module) -> str:
    """Where a network's tensors live ("cpu", "cuda:0"); "cpu" for a network without any."""
    for t in (*net.parameters(), *net.buffers()):
        return str(t.device)
    return "cpu"


def probe(device: str) -> str | None:
    """Why `device` cannot hold tensors right now (a sentence), or None when it can: a tiny allocation there."""
    if device not in [d.id for d in available_devices()]:
        return f"{device} is not available on this machine"
    try:
        torch.empty(1, device=torch.device(device))
    except (RuntimeError, AssertionError, ValueError, TypeError) as e:
        return f"could not use {device} ({first_line(e, 200)})"
    return None


@dataclass(frozen=True)
class Moved:
    """The outcome of `move`: where the network is now, and a sentence about it (None when nothing moved)."""

    device: str
    note: str | None = None
    failed: bool = False  # the requested device could not be used; the network is on the CPU


def move(net: nn.Module, device: str) -> Moved:
    """Move `net` (weights and buffers, in place, keeping the same Parameter objects) to `device`.

    An unknown or unavailable device, or one that fails while moving (e.g. out of memory), leaves the whole
    network on the CPU and says why. Tied tensors stay tied: nn.Module.to moves each tensor once.
    """
    before = device_of(net)
    ids = [d.id for d in available_devices()]
    if device not in ids:
        net.to("cpu")
        return Moved(
            "cpu",
            f"{device} is not available on this machine (devices: {', '.join(ids)}); the network is on the CPU.",
            failed=True,
        )
    if device == before:
        return Moved(device)
    try:
        net.to(torch.device(device))
    except (RuntimeError, AssertionError, ValueError, TypeError) as e:
        net.to("cpu")  # a move can fail half-way: bring every tensor back
        return Moved(
            "cpu", f"could not move the network to {device} ({first_line(e, 200)}); it is on the CPU.", failed=True
        )
    return Moved(device, f"moved the network from {before} to {device}, weights kept.")


def use_thread_limit() -> None:
    """Let torch use at most `limits().torch_threads` threads per computation (a server's sessions share its
    cores). The app calls this on every run; torch's setting is per process."""
    if torch.get_num_threads() != limits().torch_threads:
        torch.set_num_threads(limits().torch_threads)


class TrainingTurns:
    """Turns at training for the sessions of one process: at most limits().training_slots hold one at a time,
    and the others get theirs in the order they asked (a class pressing Train together is served in turn, not
    all at once, switching between them at every operation). The limit is read at every request."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._busy = 0
        self._queue: deque[object] = deque()  # the waiting requests, first come first

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for a turn (first come, first served), hold it inside the `with`, give it back after."""
        me = object()
        with self._changed:
            self._queue.append(me)
            try:
                while self._queue[0] is not me or self._busy >= limits().training_slots:
                    self._changed.wait()
            finally:  # served, or interrupted while waiting: out of the queue either way
                self._queue.remove(me)
                self._changed.notify_all()
            self._busy += 1
        try:
            yield
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()

    @property
    def busy(self) -> int:
        """Turns held now."""
        return self._busy

    @property
    def waiting(self) -> int:
        """Requests waiting for a turn now."""
        return len(self._queue)


TRAINING = TrainingTurns()  # the process's turns: every session's training slices take one


def training_slot() -> contextlib.AbstractContextManager[None]:
    """A turn at training among this process's sessions (see TrainingTurns): hold it while training a slice."""
    return TRAINING.turn()
