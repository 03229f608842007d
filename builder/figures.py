"""Every plotly figure of the app, as pure functions: data in, figure out (the caller renders it).

Gradients page: `norms_figure`, `heatmaps_figure`, `matrix_figure`; Train page: `curves`, `scatter`,
`boundary`; Parameters page: `histogram`. No Streamlit here; tests/test_figures.py checks each one's traces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .data import Dataset
from .gradients import SharedGradient, TiedGradients, as_matrix
from .training import Grid, TrainingHistory

_PLAIN = "#94a3b8"
_SHARED = "#e69f00"
PALETTE = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"]
MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


# -- Gradients ---------------------------------------------------------------------------------------------


def norms_figure(result: TiedGradients, colors: Mapping[str, str] | None = None) -> go.Figure:
    """A horizontal bar per trainable parameter, forward order top to bottom: the norm of its .grad.

    colors: a bar colour per parameter name (e.g. each shared layer's colour in the graph); shared
    parameters are otherwise orange and the rest grey.
    """
    table = result.norms()
    colors = colors or {}
    fill = [colors.get(n, _SHARED if n in result.shared else _PLAIN) for n in table["parameter"]]
    labels = [
        f"{n}  {s} · shared ×{u}" if u > 1 else f"{n}  {s}"
        for n, s, u in zip(table["parameter"], table["shape"], table["uses"], strict=True)
    ]
    fig = go.Figure(
        go.Bar(
            x=table["grad norm"],
            y=labels,
            orientation="h",
            marker_color=fill,
            text=[f"{v:.3g}" for v in table["grad norm"]],
            textposition="outside",
            hovertemplate="%{y}<br>‖grad‖ = %{x:.4g}<extra></extra>",
        )
    )
    fig.update_traces(textfont=dict(size=15), cliponaxis=False)
    fig.update_layout(
        height=max(220, 80 + 36 * len(table)),
        margin=dict(l=10, r=50, t=10, b=50),
        font=dict(size=15),
        bargap=0.3,
        showlegend=False,
    )
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=15))
    fig.update_xaxes(
        rangemode="tozero", tickfont=dict(size=14), title=dict(text="‖.grad‖ (L2 norm)", font=dict(size=15))
    )
    return fig


def heatmaps_figure(sg: SharedGradient, color: str | None = None) -> go.Figure | None:
    """Side by side heatmaps: each use's gradient, their sum and .grad, on one colour scale centred on 0.

    None when the parameter is not a small matrix (see as_matrix).
    """
    tensors = (*sg.uses, sg.total, sg.grad)
    mats = [m for m in map(as_matrix, tensors) if m is not None]
    if len(mats) != len(tensors):
        return None
    titles = [f"use {i + 1} · at {w}" if not w.startswith("use ") else w for i, w in enumerate(sg.where)]
    titles += ["sum of the uses", ".grad"]
    bound = max(float(m.abs().max()) for m in mats) or 1.0
    rows, cols = mats[0].shape
    fig = make_subplots(rows=1, cols=len(mats), subplot_titles=titles, horizontal_spacing=0.03)
    for i, m in enumerate(mats):
        fig.add_trace(
            go.Heatmap(
                z=m.tolist(), coloraxis="coloraxis", hovertemplate="row %{y}, col %{x}: %{z:.4g}<extra></extra>"
            ),
            row=1,
            col=i + 1,
        )
        fig.update_yaxes(
            autorange="reversed",
            showticklabels=i == 0,
            tickfont=dict(size=13),
            dtick=1 if rows <= 16 else None,
            row=1,
            col=i + 1,
        )
        fig.update_xaxes(showticklabels=False, row=1, col=i + 1)
    panel = 1100 / len(mats)  # about this many pixels wide per panel in a wide page
    height = min(450, max(110, panel * rows / cols))  # roughly square cells
    fig.update_layout(
        height=int(height + 70),
        margin=dict(l=10, r=10, t=40, b=10),
        font=dict(size=14),
        coloraxis=dict(
            colorscale="RdBu", reversescale=True, cmin=-bound, cmax=bound, colorbar=dict(title="grad", thickness=14)
        ),
    )
    for a in fig.layout.annotations:  # subplot titles
        a.font = dict(size=15)
    if color:
        for a in fig.layout.annotations[: len(sg.uses)]:
            a.font = dict(size=15, color=color)
    return fig


def matrix_figure(t: torch.Tensor, title: str) -> go.Figure | None:
    """One heatmap of a small gradient matrix (see as_matrix), centred on 0; None when it is not small."""
    m = as_matrix(t)
    if m is None:
        return None
    bound = float(m.abs().max()) or 1.0
    rows, cols = m.shape
    fig = go.Figure(
        go.Heatmap(
            z=m.tolist(),
            colorscale="RdBu",
            reversescale=True,
            zmin=-bound,
            zmax=bound,
            colorbar=dict(thickness=12),
            hovertemplate="row %{y}, col %{x}: %{z:.4g}<extra></extra>",
        )
    )
    height = int(min(420, max(130, 330 * rows / cols)) + 70)
    fig.update_layout(
        title=dict(text=title, font=dict(size=15)),
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        font=dict(size=13),
    )
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=13), dtick=1 if rows <= 16 else None)
    fig.update_xaxes(showticklabels=False)
    return fig


# -- Train ----------------------------------------------------------------------------------------------------


CURVE_POINTS = 300  # points per curve at most (min-max thinned), so a redraw does not grow with the epochs


def curves(history: TrainingHistory) -> go.Figure:
    """Loss (and accuracy) per epoch, train and validation: the figure that grows while it trains."""
    frame = history.frame(max_points=CURVE_POINTS)  # thinned: the figure costs the same at any length
    classify = history.task == "classification"
    metrics = ["loss", "acc"] if classify else ["loss"]
    titles = ["Loss (cross-entropy)" if classify else "Loss (mean squared error)", "Accuracy"]
    fig = make_subplots(rows=1, cols=len(metrics), horizontal_spacing=0.12, subplot_titles=titles[: len(metrics)])
    mode = "lines+markers" if len(frame) < 30 else "lines"
    for col, metric in enumerate(metrics, 1):
        for split, name, colour in (("train", "train", PALETTE[0]), ("val", "validation", PALETTE[1])):
            ys = frame[f"{split}_{metric}"]
            if ys.notna().any():
                fig.add_trace(
                    go.Scatter(
                        x=frame["epoch"].tolist(),
                        y=ys.tolist(),
                        mode=mode,
                        name=name,
                        line={"color": colour},
                        legendgroup=split,
                        showlegend=col == 1,
                    ),
                    row=1,
                    col=col,
                )
        fig.update_xaxes(title_text="epoch", row=1, col=col, dtick=1 if len(frame) <= 10 else None)
    losses = pd.concat([frame["train_loss"], frame["val_loss"]]).dropna()
    if len(losses) and losses.min() > 0 and losses.max() / losses.min() > 50:  # falls by orders of magnitude
        # one tick per decade, written plainly (1, 0.1, 0.01, 0.001, 1e-4): not "5, 2, 0.1, 5, 2" or "100µ"
        fig.update_yaxes(type="log", dtick=1, tickformat="~g", row=1, col=1)
    if classify:
        fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    fig.update_layout(height=320, margin=MARGIN, legend={"orientation": "h", "y": -0.25})
    return fig


def scatter(data: Dataset, fig: go.Figure | None = None, title: str | None = None) -> go.Figure:
    """A 2-D classification set's points, one colour per class (added to `fig` when given)."""
    fig = fig or go.Figure()
    for c, name in enumerate(data.classes):
        points = data.X[data.y == c]
        fig.add_trace(
            go.Scatter(
                x=points[:, 0].numpy(),  # numpy: plotly sends typed arrays, not lists to check and write one by one
                y=points[:, 1].numpy(),
                mode="markers",
                name=name,
                marker={"color": PALETTE[c % len(PALETTE)], "size": 6, "line": {"width": 0.5, "color": "white"}},
            )
        )
    fig.update_layout(
        height=380,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title=(data.feature_names or ("x1",))[0],
        yaxis_title=(data.feature_names or ("", "x2"))[1],
        legend={"orientation": "h", "y": -0.2},
    )
    if title:
        fig.update_layout(title={"text": title, "font": {"size": 14}})
    return fig


def boundary(grid: Grid, data: Dataset) -> go.Figure:
    """The predicted class over the plane (shaded, `grid` from training.decision_grid) under the points."""
    k = data.num_classes
    scale = (
        [[i / max(k - 1, 1), PALETTE[i % len(PALETTE)]] for i in range(k)]
        if k > 1
        else [[0, PALETTE[0]], [1, PALETTE[0]]]
    )
    fig = go.Figure(
        go.Heatmap(  # numpy, class indices as small integers: plotly sends typed arrays (~20x faster than lists)
            x=grid.xs.numpy(),
            y=grid.ys.numpy(),
            z=grid.labels.numpy().astype(np.uint8 if k <= 256 else np.int32),
            zmin=0,
            zmax=k - 1,
            colorscale=scale,
            opacity=0.3,
            showscale=False,
            hoverinfo="skip",
        )
    )
    return scatter(data, fig, title="Decision boundary (shaded: the predicted class)")


# -- Parameters -----------------------------------------------------------------------------------------------


def histogram(values: torch.Tensor | np.ndarray | Sequence[float], name: str) -> go.Figure:
    """The distribution of a tensor's values (e.g. a weight after initialization), 60 bins."""
    data = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values).reshape(-1)
    fig = go.Figure(go.Histogram(x=data, nbinsx=60, name=name))
    fig.update_layout(
        title={"text": f"{name}: {data.size:,} values"},
        height=320,
        margin=MARGIN,
        showlegend=False,
        xaxis_title=name,
        yaxis_title="count",
    )
    return fig
