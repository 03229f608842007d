"""Training a network on a Dataset: a plain PyTorch loop with a history, a progress callback and a stop.

    from builder.training import TrainConfig, train
    history = train(net, make_dataset("moons"), TrainConfig(optimizer="adam", lr=0.01, epochs=30, seed=0))
    history.last.val_acc                         # 0.97...

The network is trained in place, where it lives (its parameters' device): the session's module *is* the
trained model, so saving it (`save_params`) saves the trained weights. The loss follows the task:
cross-entropy on class scores (N, C) for classification — or on scores per token (N, T, C) against targets
(N, T) for token data such as `delayed copy`, over the last dimension, with accuracy counted per token — and
mean squared error for regression. Token data (int64 ids) trains a network that starts with an Embedding.

`Trainer` is the same loop one epoch at a time, so a page can train in short slices across reruns and stay
responsive; `Trainer.stop()` (or a callback returning True) ends the run between two batches, keeping the
weights reached so far. With the same seed, starting weights and data, two runs give identical weights:
the split, the shuffling and any dropout draw from the run's own random state, not the global one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Literal

import pandas as pd
import torch
from torch import nn

from .build import build
from .data import DataError, Dataset, check_output_shape, check_vocabulary
from .design import Design
from .errors import DesignError
from .params import check_params

OPTIMIZERS = ("sgd", "adam")
EVAL_BATCH = 4096  # samples per forward pass when evaluating (no gradients, so big batches are cheap)


class TrainingError(ValueError):
    """A training setting out of range, or a network whose output does not fit the task. `field` names
    the setting at fault when there is one."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Validated on construction (TrainingError naming the field)."""

    optimizer: Literal["sgd", "adam"] = "adam"  # Adam forgives a rough learning rate; SGD is the chapter's
    lr: float = 0.01  # Adam's usual 1e-3 is slow for tiny nets and a few dozen epochs
    batch_size: int = 32  # small batches: many updates per epoch on small data sets
    epochs: int = 20
    weight_decay: float = 0.0  # L2 penalty, as torch.optim's weight_decay
    momentum: float = 0.0  # SGD only; 0 is plain minibatch SGD as in the book
    val_fraction: float = 0.2  # held out before training, never trained on
    seed: int = 0  # the split, the shuffling and dropout

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise TrainingError(
                f"optimizer: must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}", "optimizer"
            )
        _number(self, "lr", low=0, high=10, open_low=True)
        _whole(self, "batch_size", 1, 1_000_000)
        _whole(self, "epochs", 1, 100_000)
        _number(self, "weight_decay", low=0, high=10)
        _number(self, "momentum", low=0, high=1, open_high=True)
        _number(self, "val_fraction", low=0, high=0.9)
        _whole(self, "seed", 0, 2**63 - 1)


def _whole(config: TrainConfig, name: str, low: int, high: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TrainingError(f"{name}: must be a whole number from {low:,} to {high:,}, got {value!r}", name)


def _number(
    config: TrainConfig, name: str, low: float, high: float, open_low: bool = False, open_high: bool = False
) -> None:
    value = getattr(config, name)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and (value < high if open_high else value <= high)
    if not ok:
        span = f"{'above' if open_low else 'from'} {low:g} {'and below' if open_high else 'to'} {high:g}"
        raise TrainingError(f"{name}: must be a number {span}, got {value!r}", name)


@dataclass(frozen=True)
class EpochStats:
    """One epoch. Train figures are averaged over the epoch's batches (the weights moved during it);
    validation figures are for the weights at its end. Accuracies are None for regression."""

    epoch: int  # 1-based
    train_loss: float
    val_loss: float | None
    train_acc: float | None
    val_acc: float | None
    steps: int  # optimizer steps taken in this epoch
    seconds: float
    complete: bool = True  # False when the run was stopped part-way through this epoch


@dataclass
class TrainingHistory:
    """Everything a run did, epoch by epoch."""

    task: str
    config: TrainConfig
    data: str  # the data set's name
    epochs: list[EpochStats] = field(default_factory=list)
    stopped: bool = False  # ended before its planned epochs: a stop request, or a problem
    problem: str | None = None  # why the run ended early when it was not asked to (a failed step, a NaN loss)

    @property
    def last(self) -> EpochStats | None:
        return self.epochs[-1] if self.epochs else None

    @property
    def steps(self) -> int:
        return sum(e.steps for e in self.epochs)

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.epochs)

    def frame(self, max_points: int | None = None) -> pd.DataFrame:
        """One row per epoch, the columns of EpochStats.

        With `max_points`, at most that many rows, for drawing: a live figure then costs the same after 20
        epochs or 20 000. Kept: the first and last epoch, evenly spaced epochs between, and in each span
        between two of them the epochs where a loss or accuracy is lowest and highest (a spike is not lost).
        """
        rows = self.epochs
        if max_points is not None and len(rows) > max_points:
            rows = [rows[i] for i in _thin(rows, max(max_points, 4))]
        return pd.DataFrame([asdict(e) for e in rows], columns=[f.name for f in fields(EpochStats)])


def _thin(epochs: list[EpochStats], max_points: int) -> list[int]:
    """Indices of at most `max_points` epochs, in order: per bucket of consecutive epochs, its first and the
    extremes of each curve (min-max decimation), with the last epoch always kept."""
    series = ("train_loss", "val_loss", "train_acc", "val_acc")
    present = [name for name in series if any(getattr(e, name) is not None for e in epochs)]
    per_bucket = 1 + 2 * len(present)  # the bucket's first epoch, then a min and a max per curve
    buckets = max(1, (max_points - 1) // per_bucket)
    n = len(epochs)
    keep: set[int] = {n - 1}
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        if lo >= hi:
            continue
        keep.add(lo)
        for name in present:
            values = [(getattr(epochs[i], name), i) for i in range(lo, hi) if getattr(epochs[i], name) is not None]
            finite = [(v, i) for v, i in values if math.isfinite(v)]
            if finite:
                keep.add(min(finite)[1])
                keep.add(max(finite)[1])
    return sorted(keep)


Callback = Callable[[EpochStats, TrainingHistory], bool | None]


@dataclass
class _Epoch:
    """An epoch under way: its shuffled order, how far it got, and what its steps gave so far."""

    order: torch.Tensor  # (n_train,) sample indices, on the device
    seen: int = 0  # samples trained on
    losses: list[torch.Tensor] = field(default_factory=list)  # one 0-d tensor per step, on the device
    predicted: list[torch.Tensor] = field(default_factory=list)  # classes predicted per batch (training accuracy)
    seconds: float = 0.0


class Trainer:
    """One training run of `net` on `data`, advanced an epoch at a time.

    Checks everything before the first step: settings, that the data's samples fit the network and that its
    output fits the task (class scores (N, C) with C = the number of classes, or (N, k) values).
    """

    def __init__(self, net: nn.Module, data: Dataset, config: TrainConfig | None = None) -> None:
        config = config or TrainConfig()
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        params = list(net.parameters())
        if not params:
            raise TrainingError("the network has no parameters to train")
        self.net, self.data, self.config = net, data, config
        self.device = params[0].device
        n = len(data)
        n_val = round(n * config.val_fraction)
        if config.val_fraction > 0:
            n_val = max(n_val, 1)
        if n - n_val < 1:
            raise TrainingError(
                f"val_fraction: {config.val_fraction:g} of {n} samples leaves none to train on", "val_fraction"
            )
        split = torch.Generator().manual_seed(config.seed)
        order = torch.randperm(n, generator=split)
        val, tr = order[:n_val], order[n_val:]
        self.X_train, self.y_train = data.X[tr].to(self.device), data.y[tr].to(self.device)
        self.X_val, self.y_val = data.X[val].to(self.device), data.y[val].to(self.device)
        self.classify = data.task == "classification"
        self.loss_fn: nn.Module = nn.CrossEntropyLoss() if self.classify else nn.MSELoss()
        self._check_output()
        if config.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
            )
        else:
            self.optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
        # The run's own random streams: shuffling (a CPU generator) and whatever the network draws (dropout),
        # kept apart from the global RNG so that slicing the run across reruns does not change it.
        self._shuffle = torch.Generator().manual_seed(config.seed + 1)
        with torch.random.fork_rng(devices=self._cuda()):
            torch.manual_seed(config.seed + 2)
            self._rng = self._rng_state()
        self.history = TrainingHistory(task=data.task, config=config, data=data.name)
        self._stop = False
        self._partial: _Epoch | None = None  # the epoch under way when a slice ended inside it
        # the epoch a stop cut short, for `resume`, and whether it is in the history (as incomplete): an epoch
        # stopped before its first batch is not, but its shuffled order is already drawn and must be kept
        self._cut: _Epoch | None = None
        self._cut_recorded = False

    # -- state -----------------------------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        """Epochs done so far."""
        return len(self.history.epochs)

    @property
    def done(self) -> bool:
        """No more training: the planned epochs are done, or the run was stopped (and the epoch under way, if
        any, recorded — `run` or `run_epoch` does that after a stop)."""
        return (self.history.stopped and self._partial is None) or self.epoch >= self.config.epochs

    @property
    def progress(self) -> float:
        """Fraction of the planned epochs done, 0 to 1, counting the epoch under way (a stopped run stays where
        it stopped)."""
        under_way = self._partial.seen / len(self.X_train) if self._partial is not None else 0.0
        return min(1.0, (self.epoch + under_way) / self.config.epochs)

    @property
    def steps(self) -> int:
        """Optimizer steps taken so far, counting the epoch under way."""
        return self.history.steps + (len(self._partial.losses) if self._partial is not None else 0)

    def stop(self) -> None:
        """End the run after the current batch (safe from another thread); the weights reached stay. An epoch
        left under way by a slice is recorded (as incomplete) by the next `run` call."""
        self._stop = True
        self.history.stopped = True

    def abandon(self) -> None:
        """End the run now, dropping the record of an epoch under way: for when its network was replaced or
        moved under it, and nothing more can be computed with the run's tensors."""
        self.stop()
        self._partial = None
        self._cut, self._cut_recorded = None, False

    @property
    def resumable(self) -> bool:
        """Whether `resume` can go on: the run was stopped on request before its planned epochs."""
        finished = self.epoch - (1 if self._cut_recorded else 0)  # complete epochs
        return self.history.stopped and self.history.problem is None and finished < self.config.epochs

    def resume(self) -> None:
        """Go on with a stopped run as if it had not been stopped: the epoch a stop cut short continues from the
        batch where it stopped (its incomplete record is taken back and completed), with the same shuffled
        order, optimizer state and random streams. The history keeps every epoch before it, so the curves go
        on where they were; a run stopped and resumed ends with the weights an uninterrupted run reaches.
        """
        if not self.resumable:
            why = (
                f"it ended with a problem ({self.history.problem})"
                if self.history.problem
                else ("it was not stopped" if not self.history.stopped else "its planned epochs are done")
            )
            raise TrainingError(f"this run cannot be continued: {why}; start a new one")
        if self._cut is not None:
            if self._cut_recorded:
                self.history.epochs.pop()  # the cut epoch's incomplete record: the epoch goes on
            self._partial, self._cut, self._cut_recorded = self._cut, None, False
        self._stop = False
        self.history.stopped = False

    # -- running ---------------------------------------------------------------------------------------

    def run(
        self,
        callback: Callback | None = None,
        max_seconds: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> TrainingHistory:
        """Train until the planned epochs are done, a stop is asked, or `max_seconds` have passed.

        `callback(stats, history)` is called after every epoch; returning True asks to stop. With
        `max_seconds`, returns after the first optimizer step that ends past it — part-way through an epoch if
        need be (the run is not stopped: call again and it goes on where it was) — for training in slices.
        The seconds are `clock`'s: wall time by default; `time.thread_time` counts only this thread's work, so
        a slice holds as much training on a busy server (a class training at once) as on a quiet one.
        """
        deadline = None if max_seconds is None else clock() + max_seconds
        while not self.done:
            stats = self.run_epoch(deadline, clock)
            if stats is None:  # the deadline fell inside the epoch
                break
            if callback is not None and callback(stats, self.history):
                self.stop()
            if deadline is not None and clock() >= deadline:
                break
        return self.history

    def run_epoch(
        self, deadline: float | None = None, clock: Callable[[], float] = time.perf_counter
    ) -> EpochStats | None:
        """One pass over the training split in shuffled minibatches, then a validation pass.

        With `deadline` (a `clock()` value; wall time by default), returns None once a step ends past it before
        the epoch is over; the next call goes on with the same epoch, so slicing a run does not change it.
        """
        if self.done:
            raise TrainingError("this run is over; start a new one to train more")
        if self._partial is None:
            self._partial = _Epoch(torch.randperm(len(self.X_train), generator=self._shuffle).to(self.device))
        ep = self._partial
        start = time.perf_counter()
        net, opt, loss_fn = self.net, self.optimizer, self.loss_fn
        bs = self.config.batch_size
        n = len(self.X_train)
        was_training = net.training
        try:
            with torch.random.fork_rng(devices=self._cuda()):
                self._set_rng_state(self._rng)
                net.train()
                while ep.seen < n and not self._stop:
                    idx = ep.order[ep.seen : ep.seen + bs]
                    xb, yb = self.X_train[idx], self.y_train[idx]
                    opt.zero_grad(set_to_none=True)
                    try:
                        out = net(xb)
                        loss = loss_fn(self._scores(out), self._targets(yb))
                        loss.backward()
                        opt.step()
                    except (RuntimeError, ValueError) as e:  # e.g. BatchNorm on a batch of 1, GPU out of memory
                        self._fail(
                            f"epoch {self.epoch + 1}, batch {ep.seen // bs + 1} ({len(idx)} samples) "
                            f"failed: {str(e).strip().splitlines()[0]}"
                        )
                    ep.losses.append(loss.detach())  # kept on the device: no sync per step
                    if self.classify:
                        ep.predicted.append(out.detach().argmax(-1))  # (B,) or (B, T) per token
                    ep.seen += len(idx)
                    if deadline is not None and clock() >= deadline:
                        break
                self._rng = self._rng_state()
        finally:
            net.train(was_training)
            ep.seconds += time.perf_counter() - start
        if ep.seen < n and not self._stop:
            return None
        self._partial = None
        steps = len(ep.losses)
        if ep.seen < n:  # cut short by a stop: kept, so that `resume` can finish it
            self._cut, self._cut_recorded = ep, steps > 0
        if steps == 0:  # stopped before the first batch of this epoch
            return self.history.epochs[-1] if self.history.epochs else self._empty()
        sizes = torch.tensor([min(bs, n - i * bs) for i in range(steps)], dtype=torch.float32, device=self.device)
        train_loss = float((torch.stack(ep.losses) * sizes).sum() / ep.seen)
        train_acc = None
        if self.classify:
            predicted = torch.cat(ep.predicted)
            train_acc = float((predicted == self.y_train[ep.order[: ep.seen]]).float().mean())
        val_start = time.perf_counter()
        val_loss, val_acc = self.evaluate(self.X_val, self.y_val) if len(self.X_val) else (None, None)
        seconds = ep.seconds + time.perf_counter() - val_start
        stats = EpochStats(self.epoch + 1, train_loss, val_loss, train_acc, val_acc, steps, seconds, ep.seen == n)
        self.history.epochs.append(stats)
        if not math.isfinite(train_loss):
            self._fail(
                f"the training loss became {train_loss} in epoch {stats.epoch}; the weights diverged. "
                f"Try a smaller learning rate, then start again from fresh weights"
            )
        return stats

    def _fail(self, problem: str) -> None:
        """End the run with `problem` (kept in the history) and raise it as a TrainingError."""
        self.history.problem = problem
        self.abandon()
        raise TrainingError(problem)

    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float | None]:
        """Mean loss and accuracy (None for regression) of the network as it is now, in eval mode."""
        out = predict(self.net, X)
        loss = float(self.loss_fn(self._scores(out), self._targets(y)))
        acc = float((out.argmax(-1) == y).float().mean()) if self.classify else None  # per token for (N, T)
        return loss, acc

    # -- checks and helpers ------------------------------------------------------------------------------

    def _check_output(self) -> None:
        data = self.data
        want = torch.int64 if data.tokens else torch.float32
        if self.X_train.dtype != want:
            kind = "int64 token ids" if data.tokens else "float32 features"
            raise DataError(f"the data '{data.name}' must hold {kind}, not {self.X_train.dtype}")
        check_vocabulary(self.net, data)
        try:
            out = predict(self.net, self.X_train[:2])
        except (RuntimeError, ValueError, IndexError, TypeError) as e:
            raise DataError(
                f"the network cannot take samples of '{data.name}' (shape {data.sample_shape}): "
                f"{str(e).strip().splitlines()[0]}"
            ) from None
        check_output_shape(tuple(out.shape), data)

    def _scores(self, out: torch.Tensor) -> torch.Tensor:
        """The network's output as the loss takes it: scores (N, C) — per token (N, T, C) flattened to
        (N·T, C) — or values (N, k)."""
        if self.data.per_token:
            return out.reshape(-1, out.shape[-1])
        return out.unsqueeze(1) if not self.classify and out.ndim == 1 else out

    def _targets(self, y: torch.Tensor) -> torch.Tensor:
        return y.reshape(-1) if self.data.per_token else y  # (N, T) -> (N·T,), beside _scores

    def _cuda(self) -> list[torch.device]:
        return [self.device] if self.device.type == "cuda" else []

    def _rng_state(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    def _set_rng_state(self, state: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1], self.device)

    def _empty(self) -> EpochStats:
        return EpochStats(0, math.nan, None, None, None, 0, 0.0, False)


def train(
    net: nn.Module, data: Dataset, config: TrainConfig | None = None, callback: Callback | None = None
) -> TrainingHistory:
    """Train `net` in place on `data` (see the module docstring); returns the run's history."""
    return Trainer(net, data, config).run(callback)


def predict(net: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """The network's outputs for `X` (moved to the network's device), in eval mode and without gradients;
    the network's train/eval mode is restored afterwards."""
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            parts = [net(X[i : i + EVAL_BATCH].to(device)) for i in range(0, len(X), EVAL_BATCH)]
    finally:
        net.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, device=device)


def accuracy(net: nn.Module, data: Dataset) -> float:
    """Fraction of `data` the network classifies right (argmax of its class scores)."""
    if data.task != "classification":
        raise TrainingError(f"accuracy needs classification data; '{data.name}' is {data.task}")
    out = predict(net, data.X)
    return float((out.argmax(-1).cpu() == data.y).float().mean())  # per token for per-token data


@dataclass(frozen=True)
class Grid:
    """Class predictions over a rectangle of the plane, for drawing a decision boundary."""

    xs: torch.Tensor  # (steps,) first coordinate
    ys: torch.Tensor  # (steps,) second coordinate
    labels: torch.Tensor  # (steps, steps) predicted class, row = ys, column = xs
    confidence: torch.Tensor  # (steps, steps) softmax probability of the predicted class


def decision_grid(net: nn.Module, data: Dataset, steps: int = 120, margin: float = 0.25) -> Grid:
    """The network's predicted class at every point of a grid covering 2-D `data` (plus a margin)."""
    if not data.is_2d or data.task != "classification":
        raise DataError(
            f"a decision boundary needs 2-D classification data; '{data.name}' has samples of "
            f"shape {data.sample_shape} ({data.task})"
        )
    low, high = data.X.min(0).values, data.X.max(0).values
    pad = (high - low) * margin
    xs = torch.linspace(float(low[0] - pad[0]), float(high[0] + pad[0]), steps)
    ys = torch.linspace(float(low[1] - pad[1]), float(high[1] + pad[1]), steps)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    probs = torch.softmax(predict(net, points).float(), 1).cpu()
    conf, labels = probs.max(1)
    return Grid(xs, ys, labels.reshape(steps, steps), conf.reshape(steps, steps))


def reset_weights(net: nn.Module, design: Design, seed: int | None = None) -> None:
    """Give `net` (built from `design`) fresh initial weights in place, reproducible with `seed`.

    The module objects stay the same (shared layers stay shared), so whoever holds `net` sees the new
    weights; the values are those `build(design, seed=seed)` starts from.
    """
    device = next(net.parameters()).device
    fresh = build(design, device=device, seed=seed)
    report = check_params(net, fresh.state_dict())
    if not report.ok:
        raise DesignError("the network was not built from this design; rebuild it first")
    with torch.no_grad():
        net.load_state_dict(fresh.state_dict())
