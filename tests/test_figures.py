"""builder.figures: every figure of the app from real data (a short training run, a gradient, a weight),
checked by its traces — what is drawn, in which order, on which axes."""

from __future__ import annotations

import numpy as np
import torch

from builder import build, figures, load_example
from builder.data import make_dataset
from builder.training import TrainConfig, Trainer, decision_grid


def short_run(data_name: str, design: str, epochs: int = 3) -> Trainer:
    data = make_dataset(data_name, n=120)
    run = Trainer(build(load_example(design), seed=0), data, TrainConfig(epochs=epochs, val_fraction=0.25))
    run.run()
    return run


def test_curves_of_a_classification_run_draw_loss_and_accuracy_for_train_and_validation() -> None:
    run = short_run("moons", "tied_moons")
    fig = figures.curves(run.history)
    assert [(t.name, t.xaxis) for t in fig.data] == [
        ("train", "x"),
        ("validation", "x"),
        ("train", "x2"),
        ("validation", "x2"),
    ]
    frame = run.history.frame()
    assert list(fig.data[0].x) == [1, 2, 3] and list(fig.data[1].y) == frame["val_loss"].tolist()
    assert list(fig.data[3].y) == frame["val_acc"].tolist()
    assert fig.layout.yaxis2.tickformat == ".0%"  # accuracy as a percentage
    assert [a.text for a in fig.layout.annotations] == ["Loss (cross-entropy)", "Accuracy"]


def test_curves_of_a_regression_run_draw_the_loss_only() -> None:
    run = short_run("linear regression", "linear_regression", epochs=2)
    fig = figures.curves(run.history)
    assert {t.xaxis for t in fig.data} == {"x"} and [a.text for a in fig.layout.annotations] == [
        "Loss (mean squared error)"
    ]


def test_scatter_and_boundary_draw_every_point_once_per_class_over_the_predicted_classes() -> None:
    run = short_run("moons", "tied_moons", epochs=1)
    data = run.data
    points = figures.scatter(data, title="moons")
    assert [t.name for t in points.data] == list(data.classes)
    assert sum(len(t.x) for t in points.data) == len(data) and points.layout.title.text == "moons"
    grid = decision_grid(run.net, data, steps=20)
    fig = figures.boundary(grid, data)
    heat, *classes = fig.data
    assert heat.type == "heatmap" and np.asarray(heat.z).shape == (20, 20)
    assert np.array_equal(np.asarray(heat.z), grid.labels.numpy()) and heat.zmax == data.num_classes - 1
    assert [t.name for t in classes] == list(data.classes)


def test_histogram_counts_every_value_of_the_tensor() -> None:
    weight = build(load_example("lenet"), seed=0).state_dict()["3.weight"]
    fig = figures.histogram(weight, "3.weight")
    (bars,) = fig.data
    assert bars.type == "histogram" and len(bars.x) == weight.numel() == 2400
    assert np.allclose(np.sort(bars.x), np.sort(weight.reshape(-1).numpy()))
    assert fig.layout.title.text == "3.weight: 2,400 values"


def test_matrix_figure_draws_a_small_matrix_centred_on_zero_and_refuses_a_large_one() -> None:
    m = torch.tensor([[1.0, -3.0], [0.5, 2.0]])
    fig = figures.matrix_figure(m, "w")
    assert np.array_equal(np.asarray(fig.data[0].z), m.numpy()) and (fig.data[0].zmin, fig.data[0].zmax) == (-3, 3)
    kernel = torch.ones(4, 2, 3, 3)  # (out, in, k, k) as out × in·k·k
    assert np.asarray(figures.matrix_figure(kernel, "k").data[0].z).shape == (4, 18)
    assert figures.matrix_figure(torch.ones(200, 3), "big") is None
    assert figures.matrix_figure(torch.ones(5), "vector") is None


def _history(epochs: int, falling: bool = False):
    from builder.training import EpochStats, TrainingHistory

    h = TrainingHistory(task="classification", config=TrainConfig(), data="moons")
    for i in range(epochs):
        loss = 10.0 ** (-4 * i / max(epochs - 1, 1)) if falling else 0.5 + 0.1 * np.sin(i)
        h.epochs.append(EpochStats(i + 1, loss, loss, 0.6, 0.7, 10, 0.01))
    return h


def test_the_curves_cost_the_same_at_any_number_of_epochs() -> None:
    """Issue 13, defect 5: the live figure is redrawn twice a second; its size must not grow with the run."""
    small, large = figures.curves(_history(400)).to_json(), figures.curves(_history(40_000)).to_json()
    assert len(large) < 1.2 * len(small)
    points = figures.curves(_history(40_000)).data[0].x
    assert len(points) <= figures.CURVE_POINTS and points[0] == 1 and points[-1] == 40_000


def test_a_log_loss_axis_is_labelled_by_decades() -> None:
    """Issue 13, defect 9: "5, 2, 0.1, 5, 2, 0.01" and "100µ" became one plain label per decade."""
    fig = figures.curves(_history(50, falling=True))
    axis = fig.layout.yaxis
    assert axis.type == "log" and axis.dtick == 1 and axis.tickformat == "~g"
