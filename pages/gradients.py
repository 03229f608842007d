"""Gradients: one forward and backward on the session's network, a shared layer's gradient split by use."""

from __future__ import annotations

import streamlit as st

import builder
import ui
from builder import DesignError, figures
from builder.diagram import shared_colors
from builder.gradients import BATCHES, is_finite
from ui import gradient_view

EXPLANATION = """
**One layer, several uses, one gradient.** A shared layer is *one* module placed at several positions — in
the chapter, `shared = nn.Linear(8, 8)` appears twice in the same `nn.Sequential`. It holds one weight
tensor, so during backward every use sends its own gradient into that same tensor, and PyTorch **adds them
up**: `.grad` = use 1 + use 2 + …

To show the parts of that sum, Blockwork runs the forward pass once more and gives each use a private copy
of the weights; autograd then reports the gradient of every copy separately. Below, each use stands beside
their sum and beside `.grad` from an ordinary backward: the last two agree up to float rounding.
Your network is not changed — its weights and gradients stay as they were.
"""

BATCH_LABELS = {"example": "example input (randn)", "random": "random (rand)"}
LOSS_LABELS = {
    "sum": "sum of the outputs (not a loss)",
    "mse": "MSE vs. random target",
    "cross_entropy": "cross-entropy vs. random labels",
}


def load_tied() -> None:
    ui.set_design(builder.load_example("tied"))


def controls() -> tuple[str, int, str, bool]:
    """The batch (example input or random data), seed, loss and train/eval mode."""
    cols = st.columns([3, 1, 3, 2], vertical_alignment="bottom")
    source = cols[0].radio(
        "Batch",
        list(BATCHES),
        format_func=BATCH_LABELS.get,
        key="grad_batch",
        horizontal=True,
        help="The dry run's example input (torch.randn with seed 0), or random data of the same shape: "
        "torch.rand, uniform in [0, 1) as the chapter's X, drawn with the seed.",
    )
    seed = cols[1].number_input(
        "Seed",
        min_value=0,
        max_value=2**31 - 1,
        value=0,
        step=1,
        key="grad_seed",
        help="Draws the random data, the random targets and any Dropout masks.",
    )
    loss_kind = cols[2].selectbox("Loss", list(LOSS_LABELS), format_func=LOSS_LABELS.get, key="grad_loss")
    train = cols[3].toggle(
        "Train mode",
        value=True,
        key="grad_train",
        help="On: as in training (Dropout active, BatchNorm uses the batch's statistics). "
        "Off: eval mode. The session's network keeps its own mode either way.",
    )
    return source, int(seed), loss_kind, train


def main() -> None:
    st.title("Gradients")
    ui.show_last_built()  # when the Design page's draft does not build
    with st.container(border=True, key="grad_explanation"):
        st.markdown(EXPLANATION)
        check = st.container()  # "check it in plain PyTorch", filled once the numbers below are computed
    design = ui.design()
    run = ui.dry_run_or_error(design)
    net = ui.net() if run is not None else None
    if run is None or net is None:
        return
    if not design.shared:
        st.info(
            "This design has no shared layers, so every parameter receives its gradient from a single place. "
            "Load the chapter's tied example to see a gradient split by use.",
            icon=":material/info:",
        )
        st.button("Load the tied example", key="grad_load_tied", on_click=load_tied, icon=":material/link:")
    source, seed, loss_kind, train = controls()
    try:
        x = builder.make_batch(design, source, seed)
        loss = builder.make_loss(loss_kind, run.output_shape, seed)
        with st.spinner("Running forward and backward…"):
            result = builder.tied_gradients(net, x, loss, train=train, seed=seed)
    except DesignError as e:
        ui.show_error(e)
        return
    with check:
        gradient_view.check_in_pytorch(design, net, result, (source, seed, loss_kind, train))
    m = st.columns(4)
    m[0].metric(loss.name, f"{result.loss:.5g}", help=loss.describe())
    m[1].metric("Batch", str(tuple(result.input_shape)))
    m[2].metric("Output", str(tuple(result.output_shape)))
    m[3].metric("Shared tensors", len(result), help="Parameters held once but used at several positions.")
    if not is_finite(result):
        st.warning(
            "The loss or a gradient is not a finite number (inf or NaN); the weights or the input are too "
            "large for float32.",
            icon=":material/warning:",
        )
    # parameter name -> its shared layer's name (the dry run knows which positions use which shared layer)
    positions = run.by_key()
    owner = {name: positions[name.rpartition(".")[0]].shared or "" for name in result}
    colors = shared_colors(design)
    bar_colors = {name: colors[owner[name]][0] for name in result if owner[name] in colors}
    st.subheader("Gradient norm of every parameter")
    st.caption("‖.grad‖ after one ordinary backward; a tied tensor appears once, in its shared layer's colour.")
    st.plotly_chart(figures.norms_figure(result, bar_colors), key="grad_norms", width="stretch")
    if result:
        gradient_view.show_shared(result, owner, colors, run)
    elif design.shared:
        st.info(
            "This design's shared layers hold no parameters, or each is used only once, so no gradient is split "
            "by use here.",
            icon=":material/info:",
        )
    gradient_view.show_other_matrices(result)


main()
