"""Training data: built-in sets generated on the spot (never downloaded) and CSV files from a browser.

Every set is a `Dataset`: features `X` of shape (N, *sample_shape) as float32, and targets `y` — class
indices of shape (N,) (int64) for classification, or values of shape (N, k) (float32) for regression.
Token sets (for Embedding → RNN / Transformer designs) hold `X` as int64 token ids of shape (N, T) below
`vocab_size`, and targets either one class per sequence, (N,), or one per token, (N, T).

    from builder.data import make_dataset, read_csv
    moons = make_dataset("moons", n=500, noise=0.15, seed=0)       # X (500, 2), y (500,) in {0, 1}
    table = read_csv_table(open("houses.csv", "rb").read())         # pandas, for choosing columns
    houses = dataset_from_table(table, target="price")              # DataError naming column and row

Built-in sets are pure functions of their arguments and a seed (a torch.Generator, not the global RNG), so
the same arguments always give the same tensors. CSV files come from browsers: sizes are capped (builder
limits) and every fault — empty file, unreadable text, a non-numeric feature, a missing value — raises
DataError naming the column and row, never a pandas traceback.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any, Literal

import pandas as pd
import torch
from torch import nn

from .limits import limits

FLOAT32_MAX = float(torch.finfo(torch.float32).max)  # features and targets become float32 tensors

Task = Literal["classification", "regression"]

MAX_CLASSES = 100  # a target with more distinct values than this is not treated as classes
AUTO_CLASSES = 20  # "auto" takes whole-number targets with at most this many values as classes


class DataError(ValueError):
    """Data that cannot be used: an unreadable file, a bad column, or data that does not fit the design.

    `column` and `row` (1-based data row, the header not counted) say where, when the fault has a place.
    """

    def __init__(self, message: str, column: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.row = row


@dataclass(frozen=True)
class Dataset:
    """Samples ready for training: `X` (N, *sample_shape) float32, or (N, T) int64 token ids when
    `vocab_size` is set; `y` (N,) int64 classes, (N, T) int64 classes per token, or (N, k) float32 values."""

    name: str
    X: torch.Tensor
    y: torch.Tensor
    task: Task
    classes: tuple[str, ...] = ()  # class names, index = label (classification only)
    feature_names: tuple[str, ...] = ()  # one per feature of a flat sample (empty for images)
    target_names: tuple[str, ...] = ()  # regression targets (one name per column of y)
    description: str = ""
    # Facts a teacher may want to show: the true weights of the synthetic regression, the feature
    # means and standard deviations a standardized CSV was scaled with, ...
    info: dict[str, Any] = field(default_factory=dict)
    vocab_size: int = 0  # token sets: X holds ids 0 .. vocab_size - 1 (int64); 0 for feature sets

    def __post_init__(self) -> None:
        if self.X.ndim < 2 or self.X.shape[0] != self.y.shape[0]:
            raise DataError(
                f"{self.name}: X {tuple(self.X.shape)} and y {tuple(self.y.shape)} must have the "
                f"same number of samples along the first axis"
            )
        if self.vocab_size and (self.X.dtype != torch.int64 or self.X.ndim != 2):
            raise DataError(
                f"{self.name}: a token set holds int64 ids of shape (N, T), got {self.X.dtype} {tuple(self.X.shape)}"
            )
        if self.per_token and self.y.shape != self.X.shape:
            raise DataError(
                f"{self.name}: per-token targets must have the shape of X {tuple(self.X.shape)}, "
                f"got {tuple(self.y.shape)}"
            )

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample: (2,) for 2-D points, (1, 8, 8) for the digits."""
        return tuple(self.X.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def tokens(self) -> bool:
        """X holds token ids (int64), for a design whose input dtype is int64 (an Embedding first)."""
        return self.vocab_size > 0

    @property
    def per_token(self) -> bool:
        """A class for every token, y (N, T): the network gives scores (N, T, C) and accuracy is per token."""
        return self.task == "classification" and self.y.ndim == 2

    @property
    def is_2d(self) -> bool:
        """Points in the plane: the decision boundary can be drawn."""
        return self.sample_shape == (2,)


# -- built-in sets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Builtin:
    """A built-in data set: how to make it and what a person reads about it."""

    name: str
    make: Callable[..., Dataset]
    task: Task
    summary: str
    default_n: int
    default_noise: float
    # Token sets: the sequence length and vocabulary they are made with unless told (those of the preset
    # that trains on them); a design's own length and vocabulary may be asked for instead.
    default_length: int = 0
    default_vocab: int = 0
    # What `noise` means for this set, and its largest value (token sets: a share of the targets, 0 to 1).
    noise_label: str = "Noise σ"
    noise_max: float = 2.0

    @property
    def tokens(self) -> bool:
        return self.default_vocab > 0


def synthetic_regression(
    n: int = 1000, noise: float = 0.01, seed: int = 0, w: Sequence[float] = (2.0, -3.4), b: float = 4.2
) -> Dataset:
    """The chapter's linear regression data: X ~ N(0, 1) of shape (n, len(w)), y = Xw + b + N(0, noise²).

    A single Linear(len(w), 1) can learn it exactly; after training its weight is close to `w` and its
    bias close to `b`.
    """
    n = _check_n(n)
    gen = torch.Generator().manual_seed(seed)
    true_w = torch.tensor(list(w), dtype=torch.float32)
    X = torch.randn(n, len(true_w), generator=gen)
    y = X @ true_w + b + noise * torch.randn(n, generator=gen)
    return Dataset(
        "linear regression",
        X,
        y.reshape(-1, 1),
        "regression",
        feature_names=tuple(f"x{i + 1}" for i in range(len(true_w))),
        target_names=("y",),
        description=f"y = Xw + b + noise, w = {list(w)}, b = {b}, noise σ = {noise}",
        info={"true_w": list(map(float, w)), "true_b": float(b)},
    )


def moons(n: int = 500, noise: float = 0.15, seed: int = 0) -> Dataset:
    """Two interleaving half circles (as scikit-learn's make_moons), labels 0 and 1, Gaussian noise."""
    n = _check_n(n)
    gen = torch.Generator().manual_seed(seed)
    n_outer = n // 2
    t = torch.linspace(0, math.pi, n_outer)
    u = torch.linspace(0, math.pi, n - n_outer)
    outer = torch.stack([torch.cos(t), torch.sin(t)], 1)
    inner = torch.stack([1 - torch.cos(u), 0.5 - torch.sin(u)], 1)
    X = torch.cat([outer, inner]) + noise * torch.randn(n, 2, generator=gen)
    y = torch.cat([torch.zeros(n_outer, dtype=torch.int64), torch.ones(n - n_outer, dtype=torch.int64)])
    return _shuffled("moons", X, y, gen, ("upper", "lower"), f"two interleaving half circles, noise σ = {noise}")


def circles(n: int = 500, noise: float = 0.08, seed: int = 0, factor: float = 0.5) -> Dataset:
    """A ring around a smaller ring (radius `factor`): not separable by any straight line."""
    n = _check_n(n)
    gen = torch.Generator().manual_seed(seed)
    n_outer = n // 2
    t = 2 * math.pi * torch.rand(n, generator=gen)
    radius = torch.cat([torch.ones(n_outer), torch.full((n - n_outer,), factor)])
    X = torch.stack([radius * torch.cos(t), radius * torch.sin(t)], 1) + noise * torch.randn(n, 2, generator=gen)
    y = torch.cat([torch.zeros(n_outer, dtype=torch.int64), torch.ones(n - n_outer, dtype=torch.int64)])
    return _shuffled("circles", X, y, gen, ("outer", "inner"), f"two concentric rings, noise σ = {noise}")


def spirals(n: int = 500, noise: float = 0.05, seed: int = 0, classes: int = 2, turns: float = 1.0) -> Dataset:
    """`classes` arms of a spiral winding `turns` times around the origin, one class per arm."""
    n = _check_n(n)
    if not 2 <= classes <= 10:
        raise DataError(f"spirals: classes must be 2 to 10, got {classes}")
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    r = torch.rand(n, generator=gen) * 0.95 + 0.05  # distance from the centre, 0.05 .. 1
    theta = r * turns * 2 * math.pi + labels * 2 * math.pi / classes
    X = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], 1) + noise * torch.randn(n, 2, generator=gen)
    return _shuffled(
        "spirals",
        X,
        labels,
        gen,
        tuple(f"arm {i}" for i in range(classes)),
        f"{classes} spiral arms, noise σ = {noise}",
    )


def xor(n: int = 500, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Points in [-1, 1]²; class 1 where x1·x2 > 0 (same signs), the classic problem no linear model solves."""
    n = _check_n(n)
    gen = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 2, generator=gen) * 2 - 1
    y = (X[:, 0] * X[:, 1] > 0).to(torch.int64)
    X = X + noise * torch.randn(n, 2, generator=gen)
    return _shuffled("xor", X, y, gen, ("different signs", "same signs"), f"XOR quadrants, noise σ = {noise}")


# 5 wide × 7 tall strokes of the ten digits; drawn into an 8×8 image at a random offset.
_GLYPHS = {
    0: ["01110", "10001", "10011", "10101", "11001", "10001", "01110"],
    1: ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
    2: ["01110", "10001", "00001", "00010", "00100", "01000", "11111"],
    3: ["11110", "00001", "00001", "01110", "00001", "00001", "11110"],
    4: ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
    5: ["11111", "10000", "11110", "00001", "00001", "10001", "01110"],
    6: ["00110", "01000", "10000", "11110", "10001", "10001", "01110"],
    7: ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
    8: ["01110", "10001", "10001", "01110", "10001", "10001", "01110"],
    9: ["01110", "10001", "10001", "01111", "00001", "00010", "01100"],
}


def digits(n: int = 1000, noise: float = 0.15, seed: int = 0) -> Dataset:
    """8×8 grayscale digits 0–9, shape (n, 1, 8, 8), values in [0, 1]: a small image set for conv nets.

    Each image is one of ten 5×7 glyphs placed at a random offset, with random stroke brightness, a few
    strokes dropped and Gaussian pixel noise — generated here, so nothing is downloaded.
    """
    n = _check_n(n)
    gen = torch.Generator().manual_seed(seed)
    glyphs = torch.tensor([[[int(c) for c in row] for row in _GLYPHS[d]] for d in range(10)], dtype=torch.float32)
    y = torch.arange(n) % 10
    X = torch.zeros(n, 8, 8)
    dx = torch.randint(0, 4, (n,), generator=gen)  # 8 - 5 + 1 horizontal offsets
    dy = torch.randint(0, 2, (n,), generator=gen)  # 8 - 7 + 1 vertical offsets
    brightness = 0.6 + 0.4 * torch.rand(n, 1, 1, generator=gen)
    keep = (torch.rand(n, 7, 5, generator=gen) > 0.08).float()  # drop a few strokes
    strokes = glyphs[y] * keep * brightness
    for top in range(2):
        for left in range(4):
            at = (dy == top) & (dx == left)
            X[at, top : top + 7, left : left + 5] = strokes[at]
    X = (X + noise * torch.randn(n, 8, 8, generator=gen)).clamp(0, 1)
    return _shuffled(
        "digits",
        X.unsqueeze(1),
        y,
        gen,
        tuple(str(d) for d in range(10)),
        f"8×8 digit images (1 channel), noise σ = {noise}",
    )


# -- token sequences ------------------------------------------------------------------------------------
# Small tasks over integer sequences, generated here from a seed: the recurrent and Transformer presets
# train on them in seconds. `noise` is the fraction of targets replaced by a random class (0: clean).


def delayed_copy(
    n: int = 1000, noise: float = 0.0, seed: int = 0, vocab: int = 28, length: int = 35, delay: int = 2
) -> Dataset:
    """Per token: repeat the token seen `delay` steps ago. X (n, length) ids in 1 .. vocab - 1, y (n, length)
    with y[:, t] = X[:, t - delay], and 0 ("nothing yet") for the first `delay` steps.

    A language-model-shaped task (scores (N, T, vocab) against targets (N, T)) that a causal model solves
    only by remembering: an LSTM learns it in a few epochs; a layer that sees one token at a time cannot.
    """
    n, vocab, length = _check_n(n), _check_tokens("delayed copy", vocab, 2), _check_length(length, n)
    if isinstance(delay, bool) or not isinstance(delay, int) or not 1 <= delay < length:
        raise DataError(
            f"delayed copy: delay must be a whole number from 1 to length - 1 ({length - 1}), got {delay!r}"
        )
    gen = torch.Generator().manual_seed(seed)
    X = torch.randint(1, vocab, (n, length), generator=gen)
    y = torch.zeros_like(X)
    y[:, delay:] = X[:, :-delay]
    y = _label_noise(y, noise, vocab, gen, "delayed copy")
    return Dataset(
        "delayed copy",
        X,
        y,
        "classification",
        classes=tuple(str(i) for i in range(vocab)),
        description=f"{n:,} sequences of {length} tokens (ids 1–{vocab - 1}); at every step predict the token "
        f"seen {delay} steps before (0 for the first {delay}); target noise {noise:g}",
        info={"delay": delay},
        vocab_size=vocab,
    )


def majority(n: int = 1000, noise: float = 0.0, seed: int = 0, vocab: int = 100, length: int = 16) -> Dataset:
    """Per sequence: are most tokens from the upper half of the vocabulary (ids ≥ vocab // 2)? X (n, length),
    y (n,) in {0: lower half, 1: upper half}, balanced, never a tie.

    Order does not matter (a bag of tokens), so a Transformer without position encoding, averaged over the
    positions, can learn it — as the TinyTransformer preset does.
    """
    n, vocab, length = _check_n(n), _check_tokens("majority", vocab, 2), _check_length(length, n)
    if length < 1:
        raise DataError("majority: length must be at least 1")
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=gen)
    # how many tokens come from the upper half: more than half for class 1, fewer for class 0 (never equal)
    above = torch.randint(length // 2 + 1, length + 1, (n,), generator=gen)
    below = torch.randint(0, (length + 1) // 2, (n,), generator=gen)
    upper_count = torch.where(y == 1, above, below)
    half = vocab // 2
    low = torch.randint(0, half, (n, length), generator=gen)
    high = torch.randint(half, vocab, (n, length), generator=gen)
    rank = torch.rand(n, length, generator=gen).argsort(1)  # a random permutation of positions per sequence
    X = torch.where(rank < upper_count[:, None], high, low)
    y = _label_noise(y, noise, 2, gen, "majority")
    return Dataset(
        "majority",
        X,
        y,
        "classification",
        classes=("lower half", "upper half"),
        description=f"{n:,} sequences of {length} tokens (ids 0–{vocab - 1}): do most come from the upper half "
        f"(≥ {half})? Label noise {noise:g}",
        vocab_size=vocab,
    )


def _check_tokens(name: str, vocab: Any, low: int) -> int:
    if isinstance(vocab, bool) or not isinstance(vocab, int) or not low <= vocab <= 1_000_000:
        raise DataError(f"{name}: vocab must be a whole number from {low} to 1,000,000, got {vocab!r}")
    return vocab


def _check_length(length: Any, n: int) -> int:
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= 4096:
        raise DataError(f"the sequence length must be a whole number from 1 to 4,096, got {length!r}")
    cap = limits().max_activation
    if n * length > cap:
        raise DataError(
            f"{n:,} sequences of {length} tokens are {n * length:,} tokens, over the limit of {cap:,} "
            f"(BLOCKWORK_MAX_ACTIVATION)"
        )
    return length


def _label_noise(y: torch.Tensor, noise: float, classes: int, gen: torch.Generator, name: str) -> torch.Tensor:
    """`y` with a `noise` fraction of its entries replaced by a random class."""
    if not 0 <= noise <= 1:
        raise DataError(f"{name}: noise is the fraction of targets replaced at random, 0 to 1; got {noise!r}")
    if noise == 0:
        return y
    flip = torch.rand(y.shape, generator=gen) < noise
    return torch.where(flip, torch.randint(0, classes, y.shape, generator=gen), y)


_TARGET_NOISE = "Noise (share of targets at random)"
BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in [
        Builtin("moons", moons, "classification", "two interleaving half circles (2-D, 2 classes)", 500, 0.15),
        Builtin("circles", circles, "classification", "a ring around a ring (2-D, 2 classes)", 500, 0.08),
        Builtin("spirals", spirals, "classification", "two spiral arms (2-D, 2 classes)", 500, 0.05),
        Builtin("xor", xor, "classification", "XOR quadrants (2-D, 2 classes)", 500, 0.1),
        Builtin(
            "linear regression",
            synthetic_regression,
            "regression",
            "the chapter's y = Xw + b + noise (2 features, 1 target)",
            1000,
            0.01,
        ),
        Builtin("digits", digits, "classification", "8×8 digit images for conv nets (1×8×8, 10 classes)", 1000, 0.15),
        Builtin(
            "delayed copy",
            delayed_copy,
            "classification",
            "token sequences; at every step, the token 2 steps back (per token, for recurrent models)",
            1000,
            0.0,
            default_length=35,
            default_vocab=28,
            noise_label=_TARGET_NOISE,
            noise_max=1.0,
        ),
        Builtin(
            "majority",
            majority,
            "classification",
            "token sequences; do most tokens come from the upper half? (per sequence, 2 classes)",
            1000,
            0.0,
            default_length=16,
            default_vocab=100,
            noise_label=_TARGET_NOISE,
            noise_max=1.0,
        ),
    ]
}


def builtin_names() -> list[str]:
    return list(BUILTINS)


def make_dataset(
    name: str,
    n: int | None = None,
    noise: float | None = None,
    seed: int = 0,
    *,
    length: int | None = None,
    vocab: int | None = None,
) -> Dataset:
    """The built-in set `name` with `n` samples (its default when None) and noise σ (idem); a token set
    with sequences of `length` tokens from a vocabulary of `vocab` ids (its defaults when None).

    Its `info["recipe"]` holds these arguments, so the set can be made again from them (a training bundle
    regenerates it by seed instead of shipping the tensors).
    """
    spec = BUILTINS.get(name)
    if spec is None:
        raise DataError(f"no built-in data set named {name!r}; built-in sets: {', '.join(BUILTINS)}")
    noise = spec.default_noise if noise is None else noise
    if not (isinstance(noise, int | float) and 0 <= noise <= 10) or isinstance(noise, bool):
        raise DataError(f"{name}: noise must be a number from 0 to 10, got {noise!r}")
    n = spec.default_n if n is None else n
    recipe: dict[str, Any] = {"name": name, "n": n, "noise": float(noise), "seed": seed}
    if not spec.tokens:
        if length is not None or vocab is not None:
            raise DataError(f"{name} is not a token set; it takes no sequence length or vocabulary")
        made = spec.make(n=n, noise=float(noise), seed=seed)
    else:
        length = spec.default_length if length is None else length
        vocab = spec.default_vocab if vocab is None else vocab
        made = spec.make(n=n, noise=float(noise), seed=seed, length=length, vocab=vocab)
        recipe |= {"length": length, "vocab": vocab}
    return replace(made, info={**made.info, "recipe": recipe})


def _check_n(n: Any) -> int:
    cap = limits().max_data_rows
    if isinstance(n, bool) or not isinstance(n, int) or n < 4:
        raise DataError(f"the number of samples must be a whole number of at least 4, got {n!r}")
    if n > cap:
        raise DataError(f"{n:,} samples is over the limit of {cap:,} (BLOCKWORK_MAX_DATA_ROWS)")
    return n


def _shuffled(
    name: str, X: torch.Tensor, y: torch.Tensor, gen: torch.Generator, classes: tuple[str, ...], description: str
) -> Dataset:
    order = torch.randperm(len(y), generator=gen)
    flat = X.ndim == 2
    return Dataset(
        name,
        X[order].contiguous(),
        y[order].contiguous(),
        "classification",
        classes=classes,
        feature_names=tuple(f"x{i + 1}" for i in range(X.shape[1])) if flat else (),
        description=description,
    )


# -- CSV files -----------------------------------------------------------------------------------------


def read_csv_table(source: bytes | str | IO[bytes]) -> pd.DataFrame:
    """Read CSV bytes (or a path, or a binary file) into a table, checking size, emptiness and columns.

    The header line names the columns. Raises DataError for an empty, unreadable or oversized file.
    """
    lim = limits()
    cap = lim.max_upload_mb * 1024 * 1024
    if isinstance(source, str):
        try:
            with open(source, "rb") as fh:
                data = fh.read(cap + 1)
        except OSError as e:
            raise DataError(f"cannot read {source!r}: {e.strerror}") from None
    elif isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif hasattr(source, "read"):
        data = source.read(cap + 1)
    else:
        raise DataError(f"expected CSV bytes, a path or a binary file, got {type(source).__name__}")
    if len(data) > cap:
        raise DataError(f"the file is over the limit of {lim.max_upload_mb} MB (BLOCKWORK_MAX_UPLOAD_MB)")
    if not data.strip():
        raise DataError("the file is empty: a CSV file needs a header line naming the columns and rows of data")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"the file is not UTF-8 text (byte {e.start}); save it as UTF-8 CSV") from None
    try:
        table = pd.read_csv(io.StringIO(text), nrows=lim.max_data_rows + 1, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError("the file has no columns: a CSV file needs a header line naming them") from None
    except (pd.errors.ParserError, ValueError, UnicodeError) as e:
        raise DataError(f"the file is not readable CSV: {_parser_problem(str(e))}") from None
    if table.shape[1] > lim.max_data_columns:
        raise DataError(
            f"the file has {table.shape[1]:,} columns, over the limit of {lim.max_data_columns:,} "
            f"(BLOCKWORK_MAX_DATA_COLUMNS)"
        )
    if len(table) > lim.max_data_rows:
        raise DataError(
            f"the file has more than {lim.max_data_rows:,} rows of data, over the limit (BLOCKWORK_MAX_DATA_ROWS)"
        )
    if len(table) == 0:
        raise DataError("the file has a header line but no rows of data")
    names = [str(c) for c in table.columns]
    if len(names) == 1 and (sep := next((c for c in _OTHER_SEPARATORS if c in names[0]), None)):
        raise DataError(
            f"the header line reads as one column ({names[0][:60]!r}): the values seem separated by "
            f"{_OTHER_SEPARATORS[sep]}, but a CSV file here is comma-separated; save it as CSV with commas"
        )
    unnamed = [i for i, c in enumerate(names) if c.startswith("Unnamed: ")]
    if unnamed:
        raise DataError(
            f"column {unnamed[0] + 1} has no name in the header line; give every column a name",
            column=names[unnamed[0]],
        )
    table.columns = names
    return table


_OTHER_SEPARATORS = {";": "';'", "\t": "tabs", "|": "'|'"}


def _parser_problem(message: str) -> str:
    """pandas' parser error as a person reads it: the line of the file at fault (1-based, the header is line
    1) and what is wrong with it."""
    text = message.strip().splitlines()[0] if message.strip() else "unknown problem"
    if m := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text):
        expected, line, saw = m.groups()
        return (
            f"line {line} has {saw} values, but the header line names {expected} columns (a value holding a comma "
            f'goes in double quotes: "1,5")'
        )
    if m := re.search(r"EOF inside string starting at row (\d+)", text):
        return f'a quote (") opened on line {int(m[1]) + 1} is never closed'
    return text.removeprefix("Error tokenizing data. C error: ")


def guess_task(column: pd.Series) -> Task:
    """Classification for text labels or whole numbers with few distinct values; regression otherwise."""
    values = column.dropna()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "classification"
    numbers = pd.to_numeric(values)
    whole = bool((numbers == numbers.round()).all())
    return "classification" if whole and numbers.nunique() <= AUTO_CLASSES else "regression"


def dataset_from_table(
    table: pd.DataFrame,
    target: str,
    features: Sequence[str] | None = None,
    task: Task | Literal["auto"] = "auto",
    standardize: bool = False,
    name: str = "uploaded CSV",
) -> Dataset:
    """Turn chosen columns of a table into a Dataset.

    Args:
        table: as read by `read_csv_table`.
        target: the column to predict.
        features: the input columns, in order (default: every other column). Each must be numeric and
            complete; the sample shape is (len(features),).
        task: "classification" (the target's distinct values become classes, sorted), "regression"
            (a numeric target), or "auto" (see `guess_task`).
        standardize: scale each feature to mean 0 and standard deviation 1; the means and deviations are
            kept in `info` (a network trained on them expects inputs scaled the same way).

    Raises DataError naming the column (and the 1-based data row) at fault.
    """
    columns = list(table.columns)
    if target not in columns:
        raise DataError(
            f"there is no column {target!r} to predict; columns: {', '.join(map(repr, columns))}", column=target
        )
    if features is None:
        features = [c for c in columns if c != target]
    features = list(features)
    if not features:
        raise DataError("choose at least one feature column (the network's inputs)")
    for f in features:
        if f not in columns:
            raise DataError(f"there is no feature column {f!r}; columns: {', '.join(map(repr, columns))}", column=f)
    if target in features:
        raise DataError(f"column {target!r} is the target; it cannot also be a feature", column=target)
    if len(set(features)) != len(features):
        raise DataError("a feature column is chosen twice")
    if len(table) < 4:
        raise DataError(f"the data has {len(table)} rows; at least 4 are needed to train and validate")
    for col in [*features, target]:
        _check_complete(table[col], col)
    X = torch.tensor(
        pd.concat([_numeric(table[f], f, "a feature") for f in features], axis=1).to_numpy(), dtype=torch.float32
    )
    if task == "auto":
        task = guess_task(table[target])
    info: dict[str, Any] = {"target": target}  # the column's name, for whoever writes the data out again
    if standardize:
        mean, std = X.mean(0), X.std(0)
        std = torch.where(std > 0, std, torch.ones_like(std))
        X = (X - mean) / std
        info |= {
            "mean": dict(zip(features, mean.tolist(), strict=True)),
            "std": dict(zip(features, std.tolist(), strict=True)),
        }
    if task == "classification":
        labels = table[target]
        values = sorted(labels.unique(), key=lambda v: (isinstance(v, str), v))
        if len(values) < 2:
            raise DataError(
                f"column {target!r} holds one value only ({values[0]!r}); classification needs at least 2 classes",
                column=target,
            )
        if len(values) > MAX_CLASSES:
            raise DataError(
                f"column {target!r} has {len(values):,} distinct values, too many classes (at most "
                f"{MAX_CLASSES}); choose regression for a numeric target",
                column=target,
            )
        index = {v: i for i, v in enumerate(values)}
        y = torch.tensor(labels.map(index).to_numpy(), dtype=torch.int64)
        classes = tuple(_label(v) for v in values)
        return Dataset(
            name,
            X,
            y,
            "classification",
            classes=classes,
            feature_names=tuple(features),
            description=f"{len(table):,} rows; predict {target!r} ({len(classes)} classes) from "
            f"{len(features)} feature{'s' * (len(features) != 1)}",
            info=info,
        )
    if task != "regression":
        raise DataError(f"task must be 'classification', 'regression' or 'auto', got {task!r}")
    y = torch.tensor(_numeric(table[target], target, "the target").to_numpy(), dtype=torch.float32).reshape(-1, 1)
    return Dataset(
        name,
        X,
        y,
        "regression",
        feature_names=tuple(features),
        target_names=(target,),
        description=f"{len(table):,} rows; predict {target!r} from {len(features)} feature{'s' * (len(features) != 1)}",
        info=info,
    )


def read_csv(
    source: bytes | str | IO[bytes],
    target: str,
    features: Sequence[str] | None = None,
    task: Task | Literal["auto"] = "auto",
    standardize: bool = False,
) -> Dataset:
    """`read_csv_table` then `dataset_from_table`: a CSV file straight to a Dataset."""
    return dataset_from_table(read_csv_table(source), target, features, task, standardize)


def _check_complete(column: pd.Series, name: str) -> None:
    missing = column.isna().to_numpy().nonzero()[0]
    if len(missing):
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(
            f"column {name!r} has a missing value in row {missing[0] + 1}{more}; fill it in or remove the row",
            column=name,
            row=int(missing[0]) + 1,
        )


def _numeric(column: pd.Series, name: str, role: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(column):
        return column.astype("float64")
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna().to_numpy().nonzero()[0]
    if len(bad):
        raise DataError(
            f"column {name!r} is not numeric: row {bad[0] + 1} holds {column.iloc[bad[0]]!r}. "
            f"{role.capitalize()} must be numbers"
            + (
                "; a column of labels can be the target of a classification"
                if role == "a feature"
                else "; choose classification to use its values as classes"
            ),
            column=name,
            row=int(bad[0]) + 1,
        )
    infinite = (~numbers.map(math.isfinite)).to_numpy().nonzero()[0]
    if len(infinite):
        raise DataError(
            f"column {name!r} holds an infinite value in row {infinite[0] + 1}", column=name, row=int(infinite[0]) + 1
        )
    huge = (numbers.abs() > FLOAT32_MAX).to_numpy().nonzero()[0]  # finite here, infinite once float32
    if len(huge):
        raise DataError(
            f"column {name!r} holds {column.iloc[huge[0]]!r} in row {huge[0] + 1}, too large for float32 "
            f"(at most about 3.4e38); rescale the column",
            column=name,
            row=int(huge[0]) + 1,
        )
    return numbers.astype("float64")


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- fitting a design ------------------------------------------------------------------------------------


def check_input_shape(input_shape: Sequence[int], data: Dataset, input_dtype: str = "float32") -> None:
    """Check that samples of `data` fit a design whose example input is `input_shape` = (batch, *sample).

    Raises DataError saying what the design takes and what the data holds, and what to change.
    """
    want = tuple(input_shape[1:])
    have = data.sample_shape
    if data.tokens and input_dtype != "int64":
        raise DataError(
            f"the data '{data.name}' holds token ids (int64, sequences of {have[0]}); the design takes "
            f"{input_dtype} inputs: start it with an Embedding and set its input dtype to int64"
        )
    if not data.tokens and input_dtype != "float32":
        raise DataError(
            f"the design takes {input_dtype} inputs (e.g. indices for an Embedding); the data "
            f"'{data.name}' holds float32 features"
        )
    if want == have:
        return
    design = f"({input_shape[0]}, {', '.join(map(str, want))})" if want else f"({input_shape[0]},)"
    fix = f"(N, {', '.join(map(str, have))})"
    if data.tokens and len(want) == 1:
        what = f"sequences of {want[0]} tokens, but '{data.name}' has sequences of {have[0]}"
    elif len(have) == 1 and len(want) == 1:
        what = f"{want[0]} features per sample, but '{data.name}' has {have[0]}"
        if data.feature_names:
            what += f" ({', '.join(data.feature_names[:8])}{', …' if len(data.feature_names) > 8 else ''})"
    else:
        what = f"samples of shape {want}, but '{data.name}' has samples of shape {have}"
    raise DataError(
        f"the design's example input is {design}: {what}. Set the design's input shape to {fix} or choose other data."
    )


def check_output_shape(output_shape: Sequence[int], data: Dataset) -> None:
    """Check that a network whose output is `output_shape` = (batch, ...) fits the task of `data`:
    one score per class, (batch, C), for classification; (batch, k) values (or (batch,) for k = 1) for
    regression. Raises DataError saying which output size to set."""
    batch, per_sample = output_shape[0], tuple(output_shape[1:])
    shown = f"({', '.join(map(str, output_shape))}{',' * (len(output_shape) == 1)})"
    if data.per_token:
        c, t = data.num_classes, data.y.shape[1]
        if per_sample != (t, c):
            raise DataError(
                f"the network's output is {shown} for a batch of {batch}; predicting one of {c} classes at "
                f"each of the {t} positions of '{data.name}' needs ({batch}, {t}, {c}), scores per token: "
                f"make the last layer's output size {c} and keep the sequence dimension"
            )
        return
    if data.task == "classification":
        c = data.num_classes
        if per_sample != (c,):
            raise DataError(
                f"the network's output is {shown} for a batch of {batch}; classifying '{data.name}' "
                f"into {c} classes needs ({batch}, {c}), one score per class: make the last layer's "
                f"output size {c}"
            )
        return
    k = data.y.shape[1] if data.y.ndim == 2 else 1
    if per_sample != (k,) and not (k == 1 and per_sample == ()):
        raise DataError(
            f"the network's output is {shown} for a batch of {batch}; predicting {k} value"
            f"{'s' * (k != 1)} per sample of '{data.name}' needs ({batch}, {k}): make the last "
            f"layer's output size {k}"
        )


def check_vocabulary(net: nn.Module, data: Dataset) -> None:
    """For token data: the network's first Embedding (where the ids go in) must have a row for every id.

    Raises DataError saying how many rows it has and how many the data needs; nothing to check for feature
    data or a network without an Embedding (the shape checks cover those).
    """
    if not data.tokens:
        return
    embedding = next((m for m in net.modules() if isinstance(m, nn.Embedding)), None)
    if embedding is not None and embedding.num_embeddings < data.vocab_size:
        raise DataError(
            f"the data '{data.name}' holds token ids 0 to {data.vocab_size - 1} (a vocabulary of "
            f"{data.vocab_size}); the network's Embedding has num_embeddings = {embedding.num_embeddings}: "
            f"make it at least {data.vocab_size}"
        )
