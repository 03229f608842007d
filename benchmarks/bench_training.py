"""Steps per second: builder.training against a hand-written PyTorch training loop, same model and data.

    python -m benchmarks.bench_training            # full sizes, 41 alternating repeats per case
    python -m benchmarks.bench_training --quick    # small sizes, 2 repeats: checks that it runs
    python -m benchmarks.bench_training --device cuda --threads 4

The hand-written loop is what a careful engineer writes for the same job: the same split, Adam, shuffled
minibatches by index, and the same per-epoch record (train loss and accuracy accumulated on the device,
one validation pass) — so the ratio measures builder's overhead, not extra work. Both start from the same
weights each repeat; the two contenders alternate (benchmarks.timing.compare) and medians are compared.
Target: builder's steps per second ≥ 0.95 × the hand-written loop's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator

import torch
from torch import nn

from builder import build, load_example
from builder.data import Dataset, make_dataset
from builder.training import TrainConfig, Trainer

from .cases import Row
from .timing import compare

TARGET = 0.95


def hand_written_loop(net: nn.Module, data: Dataset, config: TrainConfig) -> int:
    """A plain PyTorch loop doing the work builder's Trainer does; returns the optimizer steps taken."""
    device = next(net.parameters()).device
    gen = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(data), generator=gen)
    n_val = round(len(data) * config.val_fraction)
    X_val, y_val = data.X[order[:n_val]].to(device), data.y[order[:n_val]].to(device)
    X, y = data.X[order[n_val:]].to(device), data.y[order[n_val:]].to(device)
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = 0
    for _ in range(config.epochs):
        net.train()
        perm = torch.randperm(len(X), generator=gen).to(device)
        total_loss = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        for i in range(0, len(X), config.batch_size):
            idx = perm[i : i + config.batch_size]
            xb, yb = X[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            out = net(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            total_loss += loss.detach() * len(idx)
            correct += (out.detach().argmax(1) == yb).sum()
            steps += 1
        net.eval()
        with torch.no_grad():
            val_out = net(X_val)
            record = (
                total_loss / len(X),
                correct / len(X),
                loss_fn(val_out, y_val),
                (val_out.argmax(1) == y_val).float().mean(),
            )
        [float(v) for v in record]  # one sync per epoch, as the history needs
    return steps


def _case(
    name: str, design: str, data: Dataset, config: TrainConfig, device: str, repeats: int
) -> tuple[float, float, float]:
    """(ours steps/s, theirs steps/s, ratio) for one model and data set."""
    net = build(load_example(design), device=device, seed=0)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    counted: dict[str, int] = {}

    def ours() -> None:
        net.load_state_dict(start)
        counted["ours"] = Trainer(net, data, config).run().steps

    def theirs() -> None:
        net.load_state_dict(start)
        counted["theirs"] = hand_written_loop(net, data, config)

    c = compare(_synced(ours, device), _synced(theirs, device), repeats=repeats, warmup=1)
    assert counted["ours"] == counted["theirs"], counted
    steps = counted["ours"]
    return steps / c.ours, steps / c.theirs, c.theirs / c.ours


def _synced(fn: Callable[[], None], device: str) -> Callable[[], None]:
    def run() -> None:
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return run


def cases(quick: bool) -> list[tuple[str, str, Dataset, TrainConfig]]:
    n_moons, n_digits, epochs = (200, 200, 1) if quick else (4000, 2000, 5)
    return [
        (
            "tied MLP 2→16→2, moons, batch 32",
            "tied_moons",
            make_dataset("moons", n=n_moons),
            TrainConfig(lr=0.01, batch_size=32, epochs=epochs),
        ),
        (
            "conv net, 8×8 digits, batch 64",
            "digits_cnn",
            make_dataset("digits", n=n_digits),
            TrainConfig(lr=0.01, batch_size=64, epochs=epochs),
        ),
    ]


def bench_training(quick: bool, device: str = "cpu") -> Iterator[Row]:
    """Rows in the form of benchmarks.cases (a case for benchmarks.run)."""
    for name, design, data, config in cases(quick):
        ours, theirs, ratio = _case(name, design, data, config, device, repeats=2 if quick else 41)
        yield Row(
            "training steps/s",
            f"{name} ({device})",
            f"{ours:,.0f} steps/s",
            f"{theirs:,.0f} steps/s",
            ratio,
            f"≥ {TARGET}",
            ratio >= TARGET,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and 2 repeats (checks that it runs)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:0, ...")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: these models are too small to gain from more, and on a "
        "shared machine extra threads only add noise)",
    )
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
        print(f"{'case':<45} {'builder':>14} {'hand-written':>14} {'ratio':>7}  target")
        ok = True
        for row in bench_training(args.quick, args.device):
            ok &= bool(row.met)
            print(
                f"{row.case:<45} {row.ours:>14} {row.theirs:>14} {row.ratio:>7.3f}  {row.target} "
                f"{'met' if row.met else 'NOT met'}"
            )
    finally:
        torch.set_num_threads(threads)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
