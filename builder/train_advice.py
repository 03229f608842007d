"""What the Train page advises and reports, without Streamlit: which built-in set fits a design, which example
design fits a set, settings that train a set well, why a run cannot go on, and the tables of runs.

    fitting_source(design, output_shape)     # "moons": the first built-in set the design trains on as it is
    fit_problem(design, output_shape, data)  # None, or why the design does not fit the data (a DataError's text)
    settings_for("linear regression")        # the chapter's SGD settings, as TrainConfig field -> value
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import pandas as pd
from torch import nn

from .data import BUILTINS, DataError, Dataset, check_input_shape, check_output_shape, make_dataset
from .design import Design, Layer
from .training import TrainConfig, Trainer, TrainingHistory

# The settings the page starts from: TrainConfig's defaults, with more epochs so the curves have room to fall.
START = TrainConfig(epochs=30)
# An example design that fits each built-in set, offered when the session's design does not.
SUGGESTED_EXAMPLE = {
    "moons": "tied_moons",
    "circles": "tied_moons",
    "spirals": "tied_moons",
    "xor": "tied_moons",
    "linear regression": "linear_regression",
    "digits": "digits_cnn",
    "delayed copy": "lstm_lm",
    "majority": "transformer_encoder",
}
# Per set, settings that train it well in a few seconds (the chapter's SGD for the regression).
# The token sets' settings train the examples lstm_lm and transformer_encoder to ≥ 99 % and ≈ 95 % validation
# accuracy in about a second per epoch on one CPU thread (tests/test_sequence_examples.py).
GOOD_SETTINGS: dict[str, dict[str, Any]] = {
    "linear regression": {"optimizer": "sgd", "lr": 0.03, "batch_size": 10, "epochs": 5},
    "delayed copy": {"optimizer": "adam", "lr": 0.01, "batch_size": 32, "epochs": 8},
    "majority": {"optimizer": "adam", "lr": 0.01, "batch_size": 32, "epochs": 5},
}


def config_fields() -> list[str]:
    """TrainConfig's field names, in order: the settings a person chooses."""
    return [f.name for f in fields(TrainConfig)]


def settings_for(source: str) -> dict[str, Any]:
    """The TrainConfig fields (name -> value) that train the built-in set `source` well; {} for the defaults."""
    return dict(GOOD_SETTINGS.get(source, {}))


def fit_problem(design: Design, output_shape: Sequence[int], data: Dataset) -> str | None:
    """Why the design cannot train on `data` as it is (input or output shape), or None when it can."""
    try:
        check_input_shape(design.input_shape, data, design.input_dtype)
        check_output_shape(output_shape, data)
    except DataError as e:
        return str(e)
    return None


def fitting_source(design: Design, output_shape: Sequence[int]) -> str:
    """The first built-in set the design can train on as it is (moons when none fits)."""
    for name in BUILTINS:
        if fit_problem(design, output_shape, dataset_for(design, name, n=20)) is None:
            return name
    return "moons"


def dataset_for(
    design: Design, source: str, n: int | None = None, noise: float | None = None, seed: int = 0
) -> Dataset:
    """The built-in set `source`; a token set shaped for the design when it takes token ids: sequences as long
    as its input's and ids its first Embedding has rows for (an LSTM design on (4, 20) ids with Embedding(50, …)
    gets sequences of 20 ids below 50), else the set's own shape (the preset's). Raises DataError."""
    spec = BUILTINS.get(source)
    if spec is None or not spec.tokens or design.input_dtype != "int64" or len(design.input_shape) != 2:
        return make_dataset(source, n=n, noise=noise, seed=seed)
    embeddings = (n for _, _, n in design.walk() if isinstance(n, Layer) and n.type == "Embedding")
    vocab = next((int(e.args["num_embeddings"]) for e in embeddings), None)
    return make_dataset(source, n=n, noise=noise, seed=seed, length=design.input_shape[1], vocab=vocab)


def stale_reason(run: Trainer, session_net: nn.Module | None) -> str | None:
    """Why a run cannot go on: the session's network was rebuilt (new design) or moved to another device."""
    if session_net is not run.net:
        return "The design changed, so the run ended; its network is no longer the session's."
    if next(run.net.parameters()).device != run.device:
        return "The network moved to another device, so the run ended. Start a new run to train there."
    return None


def run_state(run: Trainer) -> str:
    """The progress bar's words: "training…", "done", "stopped during epoch 3", "ended after epoch 2"."""
    last = run.history.last
    if run.history.problem:
        return f"ended after epoch {run.epoch}"
    if run.history.stopped:
        return f"stopped {'after' if last is None or last.complete else 'during'} epoch {run.epoch}"
    return "done" if run.done else "training…"


def runs_table(runs: Sequence[TrainingHistory]) -> pd.DataFrame:
    """One row per run of the session, newest first."""
    rows = [
        {
            "run": i + 1,
            "data": h.data,
            "optimizer": h.config.optimizer,
            "lr": h.config.lr,
            "batch": h.config.batch_size,
            "epochs": f"{len(h.epochs)}/{h.config.epochs}",
            "stopped": h.stopped,
            "train loss": h.last.train_loss if h.last else None,
            "val loss": h.last.val_loss if h.last else None,
            "val acc": h.last.val_acc if h.last else None,
            "seconds": round(h.seconds, 2),
        }
        for i, h in enumerate(runs)
    ]
    return pd.DataFrame(rows[::-1])


def linear_fit(net: nn.Module, data: Dataset) -> pd.DataFrame | None:
    """For the chapter's regression and a single Linear layer: the learned w and b beside the true ones
    (None for any other network or data)."""
    params = dict(net.named_parameters())
    info = data.info
    if "true_w" not in info or len(params) != 2:
        return None
    w, b = (p.detach().cpu().reshape(-1).tolist() for p in params.values())
    if len(w) != len(info["true_w"]) or len(b) != 1:
        return None
    return pd.DataFrame(
        {
            "parameter": [f"w[{i}]" for i in range(len(w))] + ["b"],
            "learned": [*w, b[0]],
            "true": [*info["true_w"], info["true_b"]],
        }
    )
