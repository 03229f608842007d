"""Every size limit Blockwork enforces, in one place.

Each limit has a default suited to a classroom server and an environment variable to change it. They are
read on every call (not at import), so a deployment or a test can change them without restarting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_DEFAULTS = {
    # Unique parameters of a built network, refused on the meta device first. 150 M float32 weights are 600 MB:
    # room for d2l's chapter-8 networks (VGG-11 at 224x224 has 128.8 M) on a laptop or a small class; a shared
    # classroom server sets its own (README "Limits": memory per session).
    "BLOCKWORK_MAX_PARAMS": 150_000_000,
    # Elements of any one tensor in the dry run (input or a layer's output): stops a huge conv output.
    "BLOCKWORK_MAX_ACTIVATION": 20_000_000,
    # Layers in a design, counting blocks and every use of a shared layer.
    "BLOCKWORK_MAX_LAYERS": 2_000,
    # How deeply blocks may nest.
    "BLOCKWORK_MAX_DEPTH": 20,
    # Characters of design JSON accepted from a browser or file.
    "BLOCKWORK_MAX_DESIGN_CHARS": 2_000_000,
    # Megabytes of a file a browser uploads (weights, data); also set in .streamlit/config.toml for the browser.
    # Files a notebook reads itself (builder.load_params(net, "file.params")) have no size limit.
    "BLOCKWORK_MAX_UPLOAD_MB": 200,
    # Rows (samples) of training data: an uploaded CSV or a generated built-in set.
    "BLOCKWORK_MAX_DATA_ROWS": 100_000,
    # Columns of an uploaded CSV.
    "BLOCKWORK_MAX_DATA_COLUMNS": 1_000,
    # torch threads per computation in the app: a server runs many sessions at once, and torch's default (one
    # thread per core for each) makes them fight; one each trained ~10x faster on a busy 2-core machine.
    "BLOCKWORK_TORCH_THREADS": 1,
    # Sessions of one app process training at once; the others wait their turn, first come first served (a
    # turn is a slice of about a second). A process runs its sessions under one interpreter lock: eight sessions
    # of a class training at once each took about twice the server CPU of one alone on a 2-core machine, in
    # switching between them. More processes, not more threads, use more cores (docs/deploy.md).
    "BLOCKWORK_TRAINING_SLOTS": 1,
}


@dataclass(frozen=True)
class Limits:
    max_params: int
    max_activation: int
    max_layers: int
    max_depth: int
    max_design_chars: int
    max_upload_mb: int
    max_data_rows: int = _DEFAULTS["BLOCKWORK_MAX_DATA_ROWS"]
    max_data_columns: int = _DEFAULTS["BLOCKWORK_MAX_DATA_COLUMNS"]
    torch_threads: int = _DEFAULTS["BLOCKWORK_TORCH_THREADS"]
    training_slots: int = _DEFAULTS["BLOCKWORK_TRAINING_SLOTS"]


def _read(name: str) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return _DEFAULTS[name]
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise ValueError(f"environment variable {name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"environment variable {name} must be positive, got {value}")
    return value


def limits() -> Limits:
    """The limits in force now (defaults overridden by environment variables)."""
    return Limits(
        max_params=_read("BLOCKWORK_MAX_PARAMS"),
        max_activation=_read("BLOCKWORK_MAX_ACTIVATION"),
        max_layers=_read("BLOCKWORK_MAX_LAYERS"),
        max_depth=_read("BLOCKWORK_MAX_DEPTH"),
        max_design_chars=_read("BLOCKWORK_MAX_DESIGN_CHARS"),
        max_upload_mb=_read("BLOCKWORK_MAX_UPLOAD_MB"),
        max_data_rows=_read("BLOCKWORK_MAX_DATA_ROWS"),
        max_data_columns=_read("BLOCKWORK_MAX_DATA_COLUMNS"),
        torch_threads=_read("BLOCKWORK_TORCH_THREADS"),
        training_slots=_read("BLOCKWORK_TRAINING_SLOTS"),
    )
