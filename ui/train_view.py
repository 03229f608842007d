"""The Train page's right column: starting a run, the live run (a fragment that trains a slice per rerun),
its curves, boundary and linear fit, the trained weights' download, and the table of the session's runs.

Training runs in short slices (SLICE_SECONDS of work per rerun): the page's run trains one (`advance`, before
it draws the Train button), then a fragment that reruns itself every REFRESH_SECONDS trains the next ones while
the run is active. No rerun holds the session for long, so the Stop button answers at once, the curves grow as
it learns, and no session keeps a server thread busy for minutes. A finished run is drawn by the page's run, not
in the fragment, once: a run that ends in the page's first slice (a short one) costs one page run and one drawing
of its figures. The run (a
builder.training.Trainer) lives in `state.TRAIN_RUN`; the network it trains is the session's own (ui.net()),
trained in place, so the Weights page saves the trained weights.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import builder
import ui
from builder import DesignError, devices, figures, train_advice
from builder.data import DataError, Dataset
from builder.training import TrainConfig, Trainer, TrainingError, decision_grid, reset_weights
from ui import downloads, state

# Training per rerun at least, in CPU seconds of the session's thread. A live redraw costs the server ~0.1 s and
# the browser 0.3-0.5 s (Plotly redraws the curves and the boundary; more without a GPU): a second of training per
# redraw keeps drawing well below the training it shows, and Stop is still answered within about a second. A
# short run (the tied-moons preset: ~0.5 s) ends in the first slice, drawn once (issue 13, defect 5).
SLICE_SECONDS = 1.0
REFRESH_SECONDS = 0.5  # how often a running fragment reruns (and the curves redraw), at most
# Drawing must cost less than the training it shows: each slice trains at least TRAIN_PER_DRAW times as long
# as the last redraw took. Both are CPU seconds of the session's thread (time.thread_time), not wall time: on a
# busy server (a class pressing Train at once) a slice then holds as much training as on a quiet one, and a run
# is redrawn as many times, instead of more often the slower the server gets.
TRAIN_PER_DRAW = 3.0
CPU_CLOCK = time.thread_time
# Streamlit fades out every element of a rerun that has not been drawn again yet (an opacity transition per
# element). A live run reruns twice a second, and its start and end rerun the whole page: in a browser without a
# GPU those fades cost more CPU than the charts (about 1 s of renderer and GPU process time per tied-moons run on
# a 2-core machine, issue 13 defect 5), and they made the page flicker. Not on the Train page: the progress bar
# says that it runs.
NO_FADE_CSS = """<style>
[data-testid="stElementContainer"] { transition: none !important; }
[data-testid="stElementContainer"][data-stale="true"] { opacity: 1 !important; }
</style>"""
STOP_HELP = "End the run after the current batch, keeping the weights reached so far."
LIVE_GRID_STEPS = 50  # decision boundary while training (50² points); the finished run's is drawn at 150²


def start(design: builder.Design, data: Dataset, config: TrainConfig) -> bool:
    """Start a run on the session's network; False (and the reason shown) when it cannot start."""
    net = ui.net()
    if net is None:
        return False
    try:
        if state.TRAIN_FRESH():
            reset_weights(net, design, seed=config.seed)
        state.TRAIN_RUN.set(Trainer(net, data, config))
    except (DataError, TrainingError, DesignError) as e:
        ui.show_error(e)
        return False
    return True


def stop() -> None:
    run = state.TRAIN_RUN.get()
    if run is not None and not run.done:
        run.stop()


def slice_seconds() -> float:
    """How long the next slice trains: SLICE_SECONDS, or TRAIN_PER_DRAW times the last redraw if longer."""
    return max(SLICE_SECONDS, TRAIN_PER_DRAW * (state.TRAIN_DRAW_SECONDS.get() or 0.0))


def busy() -> bool:
    run = state.TRAIN_RUN.get()
    return run is not None and not run.done


def percent(fraction: float) -> str:
    """94.3 %, but 100 % rather than "100.0%", which a metric column cuts to "100…." at 1280 px."""
    return "100%" if fraction >= 0.9995 else f"{fraction:.1%}"


@dataclass(frozen=True)
class RunFigures:
    """What a run's page shows beside its numbers: curves, decision boundary (2-D classification), linear fit."""

    curves: go.Figure | None
    boundary: go.Figure | None
    fit: pd.DataFrame | None


def run_figures(run: Trainer) -> RunFigures:
    last = run.history.last
    boundary = None
    if run.data.is_2d and run.data.task == "classification":
        grid = decision_grid(run.net, run.data, steps=150 if run.done else LIVE_GRID_STEPS)
        boundary = figures.boundary(grid, run.data)
    return RunFigures(
        figures.curves(run.history) if last is not None else None, boundary, train_advice.linear_fit(run.net, run.data)
    )


def show_run(run: Trainer, drawn: RunFigures) -> None:
    cfg, last = run.config, run.history.last
    st.progress(run.progress, text=f"Epoch {run.epoch} of {cfg.epochs} — {train_advice.run_state(run)}")
    if run.history.problem:
        st.error(run.history.problem[:1].upper() + run.history.problem[1:], icon=":material/error:")
    elif not run.done:
        st.caption("Training goes on while this page is open; on another page it pauses, and resumes here.")
    if last is not None:
        cols = st.columns(4)
        cols[0].metric("Train loss", f"{last.train_loss:.4f}")
        held_out = "On the validation split: samples held out before training, never trained on."
        # short labels: "Validation accuracy" was cut to "Validation accu…" on a projector (1280 px at 150 %)
        cols[1].metric("Val. loss", "—" if last.val_loss is None else f"{last.val_loss:.4f}", help=held_out)
        per_token = (
            " Counted per token: every position's predicted token against its target." if run.data.per_token else ""
        )
        if last.val_acc is not None:
            cols[2].metric("Val. accuracy", percent(last.val_acc), help=held_out + per_token)
        elif last.train_acc is not None:
            cols[2].metric("Train acc.", percent(last.train_acc), help=per_token.strip() or None)
        rate = run.history.steps / max(run.history.seconds, 1e-9)
        cols[3].metric("Steps", f"{run.steps:,}", help=f"{rate:,.0f} optimizer steps per second")
    if drawn.curves is not None:
        with st.container(key="train_curves"):
            st.plotly_chart(drawn.curves, key="train_curves_chart")
    if drawn.boundary is not None:
        with st.container(key="train_boundary"):
            st.plotly_chart(drawn.boundary, key="train_boundary_chart")
    if drawn.fit is not None:
        st.dataframe(drawn.fit, key="train_linear_fit", hide_index=True)


def record(run: Trainer) -> None:
    runs = state.TRAIN_RUNS.setdefault(list)
    if not any(h is run.history for h in runs):
        runs.append(run.history)


def advance() -> None:
    """Train the shown run's next slice, if it is running: first, before the page draws anything that depends on
    whether it still runs (the Train button, the results). A run whose network is no longer the session's ends."""
    run = state.TRAIN_RUN.get()
    if run is None or run.done:
        return
    reason = train_advice.stale_reason(run, ui.net())
    if reason:
        run.abandon()
        ui.flash(reason, "warning", icon=":material/info:", about=id(run))  # while this run shows
    else:
        # a turn among the server's sessions (a class pressing Train at once trains in turn, not all at once);
        # the slice's seconds are this thread's CPU time, so waiting for the turn does not count
        with devices.training_slot(), contextlib.suppress(TrainingError):  # the problem stays in the history
            run.run(max_seconds=slice_seconds(), clock=CPU_CLOCK)
    if run.done:
        record(run)


def results(design: builder.Design, preview: Dataset | None) -> None:
    """The right column: the data before any run; the live run, redrawn by a fragment that trains a slice per
    rerun of its own; a finished run, drawn once by the page (no fragment: nothing reruns, and the fragment
    reruns the browser had asked for before it heard the run was over find nothing to run)."""
    run = state.TRAIN_RUN.get()
    if run is not None and not run.done:
        live_run()
        return
    # in a container, as the live fragment draws in one (a fragment is a container): the finished run replaces
    # the live one in place, rather than beside it until the page's run ends
    with st.container():
        if run is None:
            before_training(preview)
        else:
            finished(design, run)


def before_training(preview: Dataset | None) -> None:
    if preview is not None and preview.is_2d and preview.task == "classification":
        with st.container(key="train_preview"):
            st.plotly_chart(figures.scatter(preview, title=f"{preview.name}: the data"), key="train_preview_chart")
    st.info("Choose data and settings, then press **Train**.", icon=":material/model_training:")


def finished(design: builder.Design, run: Trainer) -> None:
    """A finished run (done, stopped or ended by a problem): its figures, Continue, the trained weights."""
    buttons = st.columns([1, 1.4, 2.6])
    buttons[0].button("Stop", key="train_stop", icon=":material/stop_circle:", disabled=True, help=STOP_HELP)
    if (
        run.resumable
        and run.net is ui.net()
        and buttons[1].button(
            "Continue",
            key="train_continue",
            icon=":material/play_arrow:",
            help="Go on with this run where it stopped: the same curves, optimizer and shuffling, as if it had "
            "not been stopped.",
        )
    ):
        run.resume()
        st.rerun()  # the whole page: the live fragment draws the run again while it goes on
    show_run(run, run_figures(run))
    ui.show_flashes(about=id(run))
    net = ui.net()
    if net is not None and run.net is net:
        downloads.weights_button(
            net,
            design,
            key="train_download",
            label="Download trained weights (.params)",
            type="primary",
            help="torch.save(net.state_dict()) of the trained network: load it in hand-written "
            "PyTorch with net.load_state_dict(torch.load(path, weights_only=True)).",
        )


def live_run() -> None:
    """The running run, redrawn every REFRESH_SECONDS by a fragment that trains the next slice first. Its first
    call is in the page's run, which has trained a slice already (`advance`). When the run ends, the whole page
    runs again and draws it finished."""
    fresh = [True]  # this page run's call: the page trained the slice

    @st.fragment(run_every=REFRESH_SECONDS)
    def live() -> None:
        if not fresh[0]:
            advance()
        fresh[0] = False
        run = state.TRAIN_RUN.get()
        if run is None or run.done:
            st.rerun()  # the whole page: it draws the finished run, and this fragment reruns no more
        st.columns([1, 1.4, 2.6])[0].button(
            "Stop", key="train_stop", icon=":material/stop_circle:", on_click=stop, help=STOP_HELP
        )
        drawing = CPU_CLOCK()
        show_run(run, run_figures(run))
        state.TRAIN_DRAW_SECONDS.set(CPU_CLOCK() - drawing)

    live()


def runs_table() -> None:
    runs = state.TRAIN_RUNS.get()
    if runs:
        st.subheader("Runs this session")
        st.dataframe(train_advice.runs_table(runs), key="train_runs_table", hide_index=True)
