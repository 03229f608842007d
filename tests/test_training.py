"""Training: the tied MLP learns moons, its .params work in hand-written PyTorch, stop keeps weights, seeds
reproduce. Small data and few epochs: each test takes a fraction of a second."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from builder import build, load_example, save_params
from builder.data import DataError, make_dataset
from builder.training import (
    TrainConfig,
    Trainer,
    TrainingError,
    _Epoch,
    accuracy,
    decision_grid,
    predict,
    reset_weights,
    train,
)

MOONS = TrainConfig(optimizer="adam", lr=0.01, batch_size=32, epochs=25, seed=0)


def hand_written_tied_moons() -> nn.Sequential:
    """The truth: the chapter's tied MLP written by hand, one nn.Linear object at two positions."""
    shared = nn.Linear(16, 16)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(16, 2))


def state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_tied_mlp_learns_moons_and_its_params_work_in_hand_written_pytorch() -> None:
    data = make_dataset("moons", n=500, noise=0.15, seed=0)
    net = build(load_example("tied_moons"), seed=0)
    trainer = Trainer(net, data, MOONS)
    history = trainer.run()
    assert history.last.val_acc >= 0.95, history.frame()
    assert net[2] is net[4]  # still one shared layer after training

    truth = hand_written_tied_moons()
    truth.load_state_dict(torch.load(io.BytesIO(save_params(net)), weights_only=True), strict=True)
    assert truth[2] is truth[4] and torch.equal(truth[2].weight, net[2].weight)
    truth.eval()
    with torch.no_grad():
        predicted = truth(trainer.X_val).argmax(1)
    hand_acc = (predicted == trainer.y_val).float().mean().item()
    assert hand_acc == pytest.approx(history.last.val_acc, abs=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(truth(data.X), predict(net, data.X))
    assert accuracy(net, data) >= 0.95


def test_tied_layer_gets_one_update_per_step_from_both_uses() -> None:
    """The optimizer holds the shared weight once (net.parameters() deduplicates), as in hand-written code."""
    net = build(load_example("tied_moons"), seed=0)
    trainer = Trainer(net, make_dataset("moons", n=64), TrainConfig(epochs=1))
    held = [p for group in trainer.optimizer.param_groups for p in group["params"]]
    assert len(held) == len(list(net.parameters())) == 6
    assert sum(p is net[2].weight for p in held) == 1


def test_stop_from_the_callback_keeps_the_weights_so_far() -> None:
    net = build(load_example("tied_moons"), seed=0)
    start = state(net)
    seen: dict[str, dict[str, torch.Tensor]] = {}

    def stop_after_three(stats, history) -> bool:
        seen["at_stop"] = state(net)
        return stats.epoch == 3

    history = train(net, make_dataset("moons", n=200), TrainConfig(epochs=50, seed=0), stop_after_three)
    assert history.stopped and len(history.epochs) == 3
    assert_same_state(state(net), seen["at_stop"])  # no step after the stop
    assert any(not torch.equal(state(net)[k], start[k]) for k in start)  # and the training so far is kept


def test_stop_during_an_epoch_ends_after_the_current_batch() -> None:
    net = build(load_example("tied_moons"), seed=0)
    trainer = Trainer(net, make_dataset("moons", n=320), TrainConfig(epochs=5, batch_size=32, seed=0))
    calls = []

    def count(module, args, output) -> None:
        calls.append(1)
        if len(calls) == 4:
            trainer.stop()

    handle = net.register_forward_hook(count)
    try:
        trainer.run()
    finally:
        handle.remove()
    assert trainer.done and trainer.history.stopped
    last = trainer.history.last
    assert last.epoch == 1 and not last.complete and last.steps == 4
    with pytest.raises(TrainingError, match="this run is over"):
        trainer.run_epoch()


def test_same_seed_same_weights_even_in_slices_and_with_dropout() -> None:
    def net() -> nn.Module:
        torch.manual_seed(3)
        return nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 2))

    data = make_dataset("circles", n=200)
    config = TrainConfig(epochs=4, seed=7)
    a = net()
    whole = train(a, data, config)

    b = net()
    sliced = Trainer(b, data, config)
    while not sliced.done:
        torch.rand(5)  # other sessions drawing from the global RNG between slices
        sliced.run(max_seconds=0)  # one step per call: slices end inside epochs
    assert_same_state(state(a), state(b))
    assert [e.train_loss for e in whole.epochs] == [e.train_loss for e in sliced.history.epochs]

    c = net()
    train(c, data, TrainConfig(epochs=4, seed=8))
    assert any(not torch.equal(state(a)[k], state(c)[k]) for k in state(a))


def test_training_leaves_the_global_rng_and_the_mode_alone() -> None:
    net = build(load_example("tied_moons"), seed=0).eval()
    before = torch.get_rng_state()
    train(net, make_dataset("moons", n=64), TrainConfig(epochs=2))
    assert torch.equal(torch.get_rng_state(), before)
    assert not net.training


def test_regression_with_sgd_finds_the_chapters_w_and_b() -> None:
    net = build(load_example("linear_regression"), seed=0)
    history = train(
        net,
        make_dataset("linear regression", n=1000),
        TrainConfig(optimizer="sgd", lr=0.03, batch_size=10, epochs=3, seed=0),
    )
    assert history.task == "regression" and history.last.val_acc is None and history.last.val_loss < 1e-3
    torch.testing.assert_close(net[0].weight.detach(), torch.tensor([[2.0, -3.4]]), atol=0.02, rtol=0)
    torch.testing.assert_close(net[0].bias.detach(), torch.tensor([4.2]), atol=0.02, rtol=0)


def test_a_small_conv_net_learns_the_digits() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10)
    )
    history = train(net, make_dataset("digits", n=600), TrainConfig(epochs=8, lr=0.01, seed=0))
    assert history.last.val_acc >= 0.85, history.frame()


def test_history_frame_and_decision_grid() -> None:
    net = build(load_example("tied_moons"), seed=0)
    data = make_dataset("moons", n=100)
    history = train(net, data, TrainConfig(epochs=3, val_fraction=0.0))
    frame = history.frame()
    assert list(frame["epoch"]) == [1, 2, 3] and frame["val_loss"].isna().all()
    assert history.steps == 3 * 4
    grid = decision_grid(net, data, steps=30)
    assert grid.labels.shape == (30, 30) and set(grid.labels.unique().tolist()) <= {0, 1}
    assert ((grid.confidence >= 0.5) & (grid.confidence <= 1)).all()
    with pytest.raises(DataError, match="2-D classification"):
        decision_grid(net, make_dataset("linear regression", n=10))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"lr": 0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"epochs": True}, "epochs"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"momentum": 1.0}, "momentum"),
        ({"val_fraction": 0.95}, "val_fraction"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(TrainingError, match=f"^{field}: ") as e:
        TrainConfig(**kwargs)
    assert e.value.field == field


def test_a_network_that_does_not_fit_the_task_is_refused_before_training() -> None:
    moons = make_dataset("moons", n=50)
    tied = build(load_example("tied"), seed=0)  # 4 inputs, 1 output
    with pytest.raises(DataError, match=r"cannot take samples of 'moons' \(shape \(2,\)\)"):
        Trainer(tied, moons)
    one_output = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
    before = state(one_output)
    with pytest.raises(DataError, match=r"output is \(2, 1\).*make the last layer's output size 2"):
        Trainer(one_output, moons)
    assert_same_state(state(one_output), before)
    with pytest.raises(DataError, match="output size 1"):
        Trainer(nn.Linear(2, 3), make_dataset("linear regression", n=10))
    with pytest.raises(TrainingError, match="no parameters"):
        Trainer(nn.ReLU(), moons)


def test_reset_weights_reinitializes_in_place_as_a_seeded_build() -> None:
    design = load_example("tied_moons")
    net = build(design, seed=5)
    train(net, make_dataset("moons", n=64), TrainConfig(epochs=2))
    shared = net[2]
    reset_weights(net, design, seed=1)
    assert net[2] is shared and net[4] is shared
    assert_same_state(state(net), state(build(design, seed=1)))


def test_training_benchmark_runs_in_quick_mode(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import bench_training

    assert bench_training.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "tied MLP" in out and "conv net" in out and "ratio" in out


def test_a_failing_step_ends_the_run_with_a_clear_message() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    trainer = Trainer(net, make_dataset("moons", n=41), TrainConfig(batch_size=32, epochs=3))  # 33 train: 32 + 1
    with pytest.raises(TrainingError, match=r"epoch 1, batch 2 \(1 samples\) failed: Expected more than 1 value"):
        trainer.run()
    assert trainer.done and trainer.history.stopped and "batch 2" in trainer.history.problem
    assert net.training  # mode restored


def test_a_diverging_run_ends_with_advice() -> None:
    net = build(load_example("linear_regression"), seed=0)
    trainer = Trainer(
        net, make_dataset("linear regression", n=200), TrainConfig(optimizer="sgd", lr=10.0, batch_size=10, epochs=50)
    )
    with pytest.raises(TrainingError, match="diverged. Try a smaller learning rate"):
        trainer.run()
    assert trainer.history.stopped and trainer.epoch < 50


def test_a_slice_returns_on_time_and_the_run_goes_on() -> None:
    """Pages train in slices so that no rerun holds the server for long, even inside a long epoch."""
    import time

    data = make_dataset("moons", n=4000)
    trainer = Trainer(build(load_example("tied_moons"), seed=0), data, TrainConfig(batch_size=1, epochs=3))
    start = time.perf_counter()
    trainer.run(max_seconds=0.05)  # an epoch here is 3200 steps: the slice ends inside it
    assert time.perf_counter() - start < 2.0
    assert trainer.epoch == 0 and 0 < trainer.progress < 1 / 3 and trainer.steps >= 1 and not trainer.done
    before = trainer.steps
    trainer.run(max_seconds=0)  # at least one step per call
    assert trainer.steps == before + 1


def test_stop_between_slices_records_the_epoch_under_way() -> None:
    net = build(load_example("tied_moons"), seed=0)
    trainer = Trainer(net, make_dataset("moons", n=2000), TrainConfig(batch_size=1, epochs=3))
    trainer.run(max_seconds=0.02)
    steps = trainer.steps
    assert trainer.epoch == 0 and steps >= 1
    trainer.stop()
    assert not trainer.done  # the epoch under way is not recorded yet
    after_stop = state(net)
    trainer.run()
    assert trainer.done and trainer.history.stopped
    last = trainer.history.last
    assert last.epoch == 1 and not last.complete and last.steps == steps == trainer.steps
    assert_same_state(state(net), after_stop)  # recording it took no step


def _comparable(history) -> list[tuple]:
    """An epoch's figures without its wall-clock seconds."""
    return [(e.epoch, e.train_loss, e.val_loss, e.train_acc, e.val_acc, e.steps, e.complete) for e in history.epochs]


@pytest.mark.parametrize("stop_after_steps", [1, 7, 10, 23])  # inside epochs, at an epoch's end (10 steps each)
def test_a_stopped_run_continues_to_the_same_weights_and_history(stop_after_steps: int) -> None:
    """Issue 13, defect 6: Stop, then Continue gives what one uninterrupted run gives (same curves)."""

    def net() -> nn.Module:
        torch.manual_seed(3)
        return nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 2))

    data = make_dataset("moons", n=400)
    config = TrainConfig(epochs=4, batch_size=32, seed=5)  # 320 training samples: 10 steps per epoch
    a = net()
    whole = train(a, data, config)

    b = net()
    trainer = Trainer(b, data, config)
    while trainer.steps < stop_after_steps:
        trainer.run(max_seconds=0)  # one step per call
    trainer.stop()
    trainer.run()  # records the epoch the stop cut short
    assert trainer.done and trainer.history.stopped and trainer.resumable
    stopped_at = len(trainer.history.epochs)
    assert stopped_at == -(-stop_after_steps // 10)
    torch.rand(5)  # the global RNG moves on meanwhile (other sessions)
    trainer.resume()
    assert not trainer.done and not trainer.history.stopped
    trainer.run()
    assert trainer.done and not trainer.resumable
    assert_same_state(state(a), state(b))
    assert _comparable(trainer.history) == _comparable(whole)


def test_a_run_stopped_before_an_epochs_first_batch_continues_with_that_epochs_order() -> None:
    def net() -> nn.Module:
        torch.manual_seed(4)
        return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))

    data = make_dataset("moons", n=400)
    config = TrainConfig(epochs=3, seed=1)
    a = net()
    train(a, data, config)
    b = net()
    trainer = Trainer(b, data, config)
    trainer.run_epoch()
    # A stop from another thread (the page's Stop) landing after the second epoch's order is drawn, before its
    # first step: what run_epoch's first line does, then the stop.
    trainer._partial = _Epoch(torch.randperm(len(trainer.X_train), generator=trainer._shuffle))
    trainer.stop()
    trainer.run()
    assert len(trainer.history.epochs) == 1 and trainer.resumable
    trainer.resume()
    trainer.run()
    assert len(trainer.history.epochs) == 3
    assert_same_state(state(a), state(b))


def test_runs_that_cannot_continue_say_why() -> None:
    data = make_dataset("moons", n=200)
    trainer = Trainer(build(load_example("tied_moons"), seed=0), data, TrainConfig(epochs=1))
    with pytest.raises(TrainingError, match="it was not stopped"):
        trainer.resume()
    trainer.run()
    with pytest.raises(TrainingError, match="it was not stopped"):
        trainer.resume()
    diverging = Trainer(build(load_example("tied_moons"), seed=0), data, TrainConfig(lr=10, optimizer="sgd"))
    with pytest.raises(TrainingError):
        diverging.run()
    assert not diverging.resumable
    with pytest.raises(TrainingError, match="ended with a problem"):
        diverging.resume()


def test_a_long_history_is_thinned_for_drawing_keeping_ends_and_spikes() -> None:
    """Issue 13, defect 5: the live figure's size (its cost) must not grow with the epochs drawn."""
    from builder.training import EpochStats, TrainingHistory

    history = TrainingHistory(task="classification", config=TrainConfig(), data="moons")
    for i in range(10_000):
        loss = 1.0 / (i + 1) + (5.0 if i == 6_543 else 0.0)  # one spike
        history.epochs.append(EpochStats(i + 1, loss, loss * 1.1, 0.5, 0.4 + (0.5 if i == 777 else 0.0), 10, 0.01))
    full = history.frame()
    assert len(full) == 10_000
    thin = history.frame(max_points=400)
    assert 40 <= len(thin) <= 400
    epochs = list(thin["epoch"])
    assert epochs == sorted(epochs) and epochs[0] == 1 and epochs[-1] == 10_000
    assert 6_544 in epochs and 778 in epochs  # the loss spike and the accuracy peak are drawn
    assert float(thin["train_loss"].min()) == float(full["train_loss"].min())
    short = TrainingHistory(task="regression", config=TrainConfig(), data="linear regression")
    short.epochs = history.epochs[:50]
    assert len(short.frame(max_points=400)) == 50  # nothing thinned when it fits


def test_a_slice_is_measured_on_the_clock_given() -> None:
    """The Train page slices on the session thread's CPU time (time.thread_time): a slice holds the same training
    however busy the server is. Here a clock that moves only with the work done: one unit per optimizer step."""
    trainer = Trainer(
        build(load_example("tied_moons"), seed=0), make_dataset("moons", n=2000), TrainConfig(batch_size=1)
    )
    work = lambda: float(trainer.steps)  # noqa: E731
    trainer.run(max_seconds=10, clock=work)
    assert trainer.steps == 10
    trainer.run(max_seconds=25, clock=work)
    assert trainer.steps == 35 and trainer.epoch == 0
