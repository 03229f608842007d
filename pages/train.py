"""Train: the session's network on built-in or uploaded data — live curves, Stop, the trained weights.

Training runs in short slices (SLICE_SECONDS of work per rerun) inside a fragment that reruns itself every
REFRESH_SECONDS while a run is active. No rerun holds the session for long, so the Stop button answers at
once, the curves grow as it learns, and no session keeps a server thread busy for minutes. The run (a
builder.training.Trainer: optimizer, history, data split) lives in st.session_state; the network it
trains is the session's own (ui.net()), trained in place, so the Weights page saves the trained weights.
"""

from __future__ import annotations

import contextlib

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

import builder
import ui
from builder import DesignError
from builder.codegen import file_stem
from builder.data import (
    BUILTINS,
    DataError,
    Dataset,
    check_input_shape,
    check_output_shape,
    dataset_from_table,
    make_dataset,
    read_csv_table,
)
from builder.training import TrainConfig, Trainer, TrainingError, TrainingHistory, decision_grid, reset_weights

SLICE_SECONDS = 0.3  # training per rerun: short, so a click is answered at once
REFRESH_SECONDS = 0.5  # how often a running fragment reruns (and the curves redraw)
UPLOAD = "upload"
# An example design that fits each built-in set, offered when the session's design does not.
SUGGESTED = {
    "moons": "tied_moons",
    "circles": "tied_moons",
    "spirals": "tied_moons",
    "xor": "tied_moons",
    "linear regression": "linear_regression",
    "digits": "digits_cnn",
}
# Per set, settings that train it well in a few seconds (the chapter's SGD for the regression).
GOOD_SETTINGS = {"linear regression": {"optimizer": "sgd", "lr": 0.03, "batch_size": 10, "epochs": 5}}
PALETTE = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"]


# -- widgets whose values outlive a visit to another page ------------------------------------------------
# Streamlit forgets the state of widgets that are not drawn (another page), so each widget starts from the
# session's last choice, kept in st.session_state.train_settings. It is passed as the widget's own value=
# (not written into the widget's state): a widget the browser draws late, off screen at first, then starts
# from it too, instead of from its minimum.


def kept(key: str, default: object, options: list | None = None) -> object:
    """The value widget `key` starts from: the session's last choice, or `default`."""
    value = st.session_state.setdefault("train_settings", {}).get(key, default)
    if options is not None and value not in options:
        value = default
    if options is not None and key in st.session_state and st.session_state[key] not in options:
        st.session_state[key] = value  # the options changed (another CSV file)
    return value


def remember(*keys: str) -> None:
    settings = st.session_state.setdefault("train_settings", {})
    for key in keys:
        settings[key] = st.session_state.get(key)


# -- data ------------------------------------------------------------------------------------------------


def keep_upload() -> None:
    """Read an uploaded CSV once, into this session only (a user's data never goes in a shared cache)."""
    file = st.session_state.get("train_csv_upload")
    if file is None:
        st.session_state.pop("train_csv", None)
        return
    try:
        st.session_state.train_csv = (file.name, read_csv_table(file.getvalue()))
    except DataError as e:
        st.session_state.train_csv = (file.name, e)


def apply_good_settings(source: str | None = None) -> None:
    """A built-in set with settings of its own (the chapter's SGD for the regression) sets them on choosing."""
    settings = st.session_state.setdefault("train_settings", {})
    for key, value in GOOD_SETTINGS.get(source or st.session_state.train_source, {}).items():
        settings[f"train_{key}"] = value
        if f"train_{key}" in st.session_state:
            st.session_state[f"train_{key}"] = value


def fitting_source(design: builder.Design, output_shape: tuple[int, ...]) -> str:
    """The first built-in set the design can train on as it is (moons when none fits)."""
    for name in BUILTINS:
        sample = make_dataset(name, n=20)
        try:
            check_input_shape(design.input_shape, sample, design.input_dtype)
            check_output_shape(output_shape, sample)
        except DataError:
            continue
        return name
    return "moons"


def choose_data(design: builder.Design, output_shape: tuple[int, ...]) -> Dataset | None:
    sources = [*BUILTINS, UPLOAD]
    settings = st.session_state.setdefault("train_settings", {})
    if "train_source" not in settings:  # first visit: data the design fits
        settings["train_source"] = fitting_source(design, output_shape)
        apply_good_settings(settings["train_source"])
    st.selectbox(
        "Data",
        sources,
        key="train_source",
        index=sources.index(kept("train_source", "moons", sources)),
        on_change=apply_good_settings,
        format_func=lambda s: "Upload a CSV file…" if s == UPLOAD else s,
        help="Built-in sets are generated here (nothing is downloaded); a CSV file needs a header line.",
    )
    source = st.session_state.train_source
    remember("train_source")
    if source == UPLOAD:
        return csv_data()
    spec = BUILTINS[source]
    a, b = st.columns(2)
    n_key, noise_key = f"train_n_{source}", f"train_noise_{source}"
    a.number_input(
        "Samples",
        min_value=20,
        max_value=builder.limits().max_data_rows,
        step=100,
        key=n_key,
        value=kept(n_key, spec.default_n),
    )
    b.number_input(
        "Noise σ",
        min_value=0.0,
        max_value=2.0,
        step=0.05,
        format="%.2f",
        key=noise_key,
        value=kept(noise_key, spec.default_noise),
    )
    remember(n_key, noise_key)
    try:
        data = make_dataset(source, n=int(st.session_state[n_key]), noise=float(st.session_state[noise_key]))
    except DataError as e:
        ui.show_error(e)
        return None
    st.caption(spec.summary[:1].upper() + spec.summary[1:] + ".")
    return data


def csv_data() -> Dataset | None:
    st.file_uploader(
        "CSV file",
        type=["csv"],
        key="train_csv_upload",
        on_change=keep_upload,
        help=f"At most {builder.limits().max_data_rows:,} rows; the first line names the columns.",
    )
    held = st.session_state.get("train_csv")
    if held is None:
        st.info(
            "Upload a CSV file: a header line naming the columns, then one row per sample.",
            icon=":material/upload_file:",
        )
        return None
    name, table = held
    if isinstance(table, DataError):
        ui.show_error(table)
        return None
    columns = list(table.columns)
    st.caption(f"**{name}** — {len(table):,} rows, {len(columns)} columns")
    st.selectbox(
        "Target (what to predict)",
        columns,
        key="train_csv_target",
        index=columns.index(kept("train_csv_target", columns[-1], columns)),
    )
    target = st.session_state.train_csv_target
    others = [c for c in columns if c != target]
    features = kept("train_csv_features", others)
    if not isinstance(features, list) or any(c not in others for c in features):
        features = others
        st.session_state.train_settings.pop("train_csv_features", None)
        if "train_csv_features" in st.session_state:
            st.session_state.train_csv_features = others  # another target or file: every other column
    st.multiselect("Features (the network's inputs)", others, key="train_csv_features", default=features)
    tasks = ["auto", "classification", "regression"]
    st.radio(
        "Task",
        tasks,
        key="train_csv_task",
        index=tasks.index(kept("train_csv_task", "auto", tasks)),
        horizontal=True,
        help="auto: text labels, or whole numbers with few values, are classes; other numbers are regression.",
    )
    st.checkbox(
        "Standardize features (mean 0, std 1)",
        key="train_csv_standardize",
        value=kept("train_csv_standardize", True),
        help="Usually needed to train on raw columns. The trained network then expects inputs scaled the "
        "same way (the means and deviations are listed below).",
    )
    remember("train_csv_target", "train_csv_features", "train_csv_task", "train_csv_standardize")
    with st.expander("Preview"):
        st.dataframe(table.head(20), key="train_csv_preview", hide_index=True)
    try:
        data = dataset_from_table(
            table,
            target,
            st.session_state.train_csv_features,
            st.session_state.train_csv_task,
            st.session_state.train_csv_standardize,
            name=name,
        )
    except DataError as e:
        ui.show_error(e)
        return None
    st.caption(data.description + (f" · classes: {', '.join(data.classes[:12])}" if data.classes else ""))
    if data.info:
        st.caption(
            "Scaling: "
            + ", ".join(
                f"{f}: mean {data.info['mean'][f]:.4g}, std {data.info['std'][f]:.4g}" for f in data.feature_names[:10]
            )
        )
    return data


def load_suggested(name: str) -> None:
    ui.set_design(builder.load_example(name))
    st.session_state.pop("train_run", None)


def check_fit(design: builder.Design, output_shape: tuple[int, ...], data: Dataset) -> bool:
    """Whether the design fits the data; if not, say why and offer an example design that does."""
    try:
        check_input_shape(design.input_shape, data, design.input_dtype)
        check_output_shape(output_shape, data)
    except DataError as e:
        text = str(e)
        st.warning(text[:1].upper() + text[1:], icon=":material/straighten:")  # guidance: offer a design that fits
        suggestion = SUGGESTED.get(data.name)
        if suggestion and suggestion != design.name:
            st.button(
                f"Use example '{suggestion}'",
                key="train_use_example",
                icon=":material/swap_horiz:",
                on_click=load_suggested,
                args=(suggestion,),
                width="stretch",
                help=f"Replace the session's design with the example '{suggestion}', which fits this data.",
            )
        return False
    return True


# -- settings and starting a run ---------------------------------------------------------------------------


def choose_settings() -> TrainConfig | None:
    a, b = st.columns(2)
    optimizers = ["adam", "sgd"]
    a.selectbox(
        "Optimizer",
        optimizers,
        key="train_optimizer",
        index=optimizers.index(kept("train_optimizer", "adam", optimizers)),
        format_func={"adam": "Adam", "sgd": "SGD"}.get,
    )
    b.number_input(
        "Learning rate",
        min_value=1e-5,
        max_value=10.0,
        step=0.001,
        format="%.4f",
        key="train_lr",
        value=kept("train_lr", 0.01),
    )
    a.number_input(
        "Batch size", min_value=1, max_value=100_000, step=8, key="train_batch_size", value=kept("train_batch_size", 32)
    )
    b.number_input("Epochs", min_value=1, max_value=10_000, step=10, key="train_epochs", value=kept("train_epochs", 30))
    a.number_input(
        "Weight decay",
        min_value=0.0,
        max_value=1.0,
        step=0.0001,
        format="%.4f",
        key="train_weight_decay",
        value=kept("train_weight_decay", 0.0),
        help="L2 penalty on the weights (torch.optim's).",
    )
    sgd = st.session_state.train_optimizer == "sgd"
    b.number_input(
        "Momentum",
        min_value=0.0,
        max_value=0.99,
        step=0.1,
        format="%.2f",
        disabled=not sgd,
        key="train_momentum",
        value=kept("train_momentum", 0.0),
        help="SGD only.",
    )
    a.slider(
        "Validation share",
        min_value=0.0,
        max_value=0.5,
        step=0.05,
        key="train_val_fraction",
        value=kept("train_val_fraction", 0.2),
        help="Held out before training and never trained on: the curves' validation line.",
    )
    b.number_input(
        "Seed",
        min_value=0,
        max_value=2**31 - 1,
        step=1,
        key="train_seed",
        value=kept("train_seed", 0),
        help="The split, the shuffling, dropout and (with fresh weights) the initial weights.",
    )
    st.checkbox(
        "Start from fresh weights",
        key="train_fresh",
        value=kept("train_fresh", True),
        help="Re-initialize the network with the seed before training (same seed, same run). Untick to "
        "train further from the current weights.",
    )
    keys = ["optimizer", "lr", "batch_size", "epochs", "weight_decay", "momentum", "val_fraction", "seed"]
    remember(*(f"train_{k}" for k in keys), "train_fresh")
    try:
        return TrainConfig(**{k: st.session_state[f"train_{k}"] for k in keys})
    except TrainingError as e:
        ui.show_error(e)
        return None


def start(design: builder.Design, data: Dataset, config: TrainConfig) -> bool:
    """Start a run on the session's network; False (and the reason shown) when it cannot start."""
    net = ui.net()
    if net is None:
        return False
    try:
        if st.session_state.train_fresh:
            reset_weights(net, design, seed=config.seed)
        st.session_state.train_run = Trainer(net, data, config)
    except (DataError, TrainingError, DesignError) as e:
        ui.show_error(e)
        return False
    return True


def stop() -> None:
    run = st.session_state.get("train_run")
    if run is not None and not run.done:
        run.stop()


# -- results -----------------------------------------------------------------------------------------------


def stale(run: Trainer) -> str | None:
    """Why a run cannot go on: the session's network was rebuilt (new design) or moved to another device."""
    if ui.net() is not run.net:
        return "The design changed, so the run ended; its network is no longer the session's."
    if next(run.net.parameters()).device != run.device:
        return "The network moved to another device, so the run ended. Start a new run to train there."
    return None


def curves(history: TrainingHistory) -> go.Figure:
    """Loss (and accuracy) per epoch, train and validation: the figure that grows while it trains."""
    frame = history.frame()
    classify = history.task == "classification"
    metrics = ["loss", "acc"] if classify else ["loss"]
    fig = make_subplots(
        rows=1,
        cols=len(metrics),
        horizontal_spacing=0.12,
        subplot_titles=["Loss (cross-entropy)" if classify else "Loss (mean squared error)", "Accuracy"][
            : len(metrics)
        ],
    )
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
        fig.update_yaxes(type="log", row=1, col=1)
    if classify:
        fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"orientation": "h", "y": -0.25})
    return fig


def scatter(data: Dataset, fig: go.Figure | None = None) -> go.Figure:
    fig = fig or go.Figure()
    for c, name in enumerate(data.classes):
        points = data.X[data.y == c]
        fig.add_trace(
            go.Scatter(
                x=points[:, 0].tolist(),
                y=points[:, 1].tolist(),
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
    return fig


def boundary(run: Trainer) -> go.Figure:
    grid = decision_grid(run.net, run.data, steps=150)
    k = run.data.num_classes
    scale = (
        [[i / max(k - 1, 1), PALETTE[i % len(PALETTE)]] for i in range(k)]
        if k > 1
        else [[0, PALETTE[0]], [1, PALETTE[0]]]
    )
    fig = go.Figure(
        go.Heatmap(
            x=grid.xs.tolist(),
            y=grid.ys.tolist(),
            z=grid.labels.tolist(),
            zmin=0,
            zmax=k - 1,
            colorscale=scale,
            opacity=0.3,
            showscale=False,
            hoverinfo="skip",
        )
    )
    fig = scatter(run.data, fig)
    fig.update_layout(title={"text": "Decision boundary (shaded: the predicted class)", "font": {"size": 14}})
    return fig


def linear_fit(run: Trainer) -> None:
    """For the chapter's regression and a single Linear layer: the learned w and b beside the true ones."""
    params = dict(run.net.named_parameters())
    info = run.data.info
    if "true_w" not in info or len(params) != 2:
        return
    w, b = (p.detach().cpu().reshape(-1).tolist() for p in params.values())
    if len(w) != len(info["true_w"]) or len(b) != 1:
        return
    st.dataframe(
        pd.DataFrame(
            {
                "parameter": [f"w[{i}]" for i in range(len(w))] + ["b"],
                "learned": [*w, b[0]],
                "true": [*info["true_w"], info["true_b"]],
            }
        ),
        key="train_linear_fit",
        hide_index=True,
    )


def show_run(run: Trainer) -> None:
    cfg, last = run.config, run.history.last
    if run.history.problem:
        state = f"ended after epoch {run.epoch}"
    elif run.history.stopped:
        state = f"stopped {'after' if last is None or last.complete else 'during'} epoch {run.epoch}"
    elif run.done:
        state = "done"
    else:
        state = "training…"
    st.progress(run.progress, text=f"Epoch {run.epoch} of {cfg.epochs} — {state}")
    if run.history.problem:
        st.error(run.history.problem[:1].upper() + run.history.problem[1:], icon=":material/error:")
    elif not run.done:
        st.caption("Training goes on while this page is open; on another page it pauses, and resumes here.")
    if last is not None:
        cols = st.columns(4)
        cols[0].metric("Train loss", f"{last.train_loss:.4f}")
        cols[1].metric("Validation loss", "—" if last.val_loss is None else f"{last.val_loss:.4f}")
        if last.val_acc is not None:
            cols[2].metric("Validation accuracy", f"{last.val_acc:.1%}")
        elif last.train_acc is not None:
            cols[2].metric("Train accuracy", f"{last.train_acc:.1%}")
        rate = run.history.steps / max(run.history.seconds, 1e-9)
        cols[3].metric("Steps", f"{run.steps:,}", help=f"{rate:,.0f} optimizer steps per second")
        with st.container(key="train_curves"):
            st.plotly_chart(curves(run.history), key="train_curves_chart")
    if run.data.is_2d and run.data.task == "classification":
        with st.container(key="train_boundary"):
            st.plotly_chart(boundary(run), key="train_boundary_chart")
    linear_fit(run)


def record(run: Trainer) -> None:
    runs = st.session_state.setdefault("train_runs", [])
    if not any(h is run.history for h in runs):
        runs.append(run.history)


def results(design: builder.Design, preview: Dataset | None) -> None:
    run = st.session_state.get("train_run")
    running = run is not None and not run.done

    @st.fragment(run_every=REFRESH_SECONDS if running else None)
    def live() -> None:
        run = st.session_state.get("train_run")
        if run is None:
            if preview is not None and preview.is_2d and preview.task == "classification":
                with st.container(key="train_preview"):
                    st.plotly_chart(
                        scatter(preview).update_layout(
                            title={"text": f"{preview.name}: the data", "font": {"size": 14}}
                        ),
                        key="train_preview_chart",
                    )
            st.info("Choose data and settings, then press **Train**.", icon=":material/model_training:")
            return
        if not run.done:
            reason = stale(run)
            if reason:
                run.abandon()
                st.session_state.train_note = reason
            else:
                with contextlib.suppress(TrainingError):  # the run ended; its history keeps the problem
                    run.run(max_seconds=SLICE_SECONDS)
        st.button(
            "Stop",
            key="train_stop",
            icon=":material/stop_circle:",
            on_click=stop,
            disabled=run.done,
            help="End the run after the current batch, keeping the weights reached so far.",
        )
        show_run(run)
        if run.done:
            record(run)
            if running:  # the run ended in this fragment rerun: redraw the page, without auto-reruns
                st.rerun()

    live()
    if run is not None and run.done:
        note = st.session_state.get("train_note")
        if note:
            st.warning(note, icon=":material/info:")
        net = ui.net()
        if net is not None and run.net is net:
            weights = ui.download_data(net, lambda: builder.save_params(net, cpu=True))
            st.download_button(
                "Download trained weights (.params)",
                data=weights,
                file_name=f"{file_stem(design)}.params",
                mime="application/octet-stream",
                key="train_download",
                icon=":material/download:",
                type="primary",
                help="torch.save(net.state_dict()) of the trained network: load it in hand-written "
                "PyTorch with net.load_state_dict(torch.load(path, weights_only=True)).",
            )


def history_table() -> None:
    runs = st.session_state.get("train_runs", [])
    if not runs:
        return
    st.subheader("Runs this session")
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
    st.dataframe(pd.DataFrame(rows[::-1]), key="train_runs_table", hide_index=True)


# -- the page ----------------------------------------------------------------------------------------------

st.title("Train")
design = ui.design()
try:
    dry = ui.dry_run(design)
except DesignError as e:
    ui.show_error(e)
    st.stop()
st.caption(
    f"Design **{design.name}**: input {design.input_shape} → output {dry.output_shape}, on "
    f"**{st.session_state.device}**. Training changes the session's weights in place."
)

left, right = st.columns([2, 3], gap="large")
with left:
    st.subheader("Data")
    data = choose_data(design, dry.output_shape)
    fits = data is not None and check_fit(design, dry.output_shape, data)
    st.subheader("Settings")
    config = choose_settings()
    current = st.session_state.get("train_run")
    busy = current is not None and not current.done
    if st.button(
        "Train",
        key="train_start",
        type="primary",
        icon=":material/play_arrow:",
        disabled=not fits or config is None or busy,
        width="stretch",
    ):
        st.session_state.pop("train_note", None)
        if start(design, data, config):
            st.rerun()  # draw the page again with the live fragment rerunning itself
with right:
    results(design, data)
history_table()
