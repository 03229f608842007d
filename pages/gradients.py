"""Gradients: one forward and backward on the session's network, a shared layer's gradient split by use."""

import streamlit as st

import builder
import ui
from builder import DesignError
from builder.diagram import shared_colors
from builder.gradients import BATCHES, heatmaps_figure, is_finite, matrix_figure, norms_figure

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

PLAIN_PYTORCH = """\
import copy, torch
from torch import nn

shared = nn.Linear(8, 8)
net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1))
X = torch.rand(2, 4)
net(X).sum().backward()

# the same network untied: a second, separate layer holding the same values at position 4
untied = copy.deepcopy(net)
untied[4] = copy.deepcopy(untied[2])
untied.zero_grad()
untied(X).sum().backward()
use1, use2 = untied[2].weight.grad, untied[4].weight.grad
print(torch.allclose(use1 + use2, net[2].weight.grad))  # True: .grad is the sum of the uses
"""

BATCH_LABELS = {"example": "example input", "random": "random data"}
LOSS_LABELS = {
    "sum": "sum of the outputs",
    "mse": "MSE vs. random target",
    "cross_entropy": "cross-entropy vs. random labels",
}


def load_tied() -> None:
    ui.set_design(builder.load_example("tied"))


def css_key(name: str) -> str:
    return name.replace(".", "_")


def use_positions(run: builder.DryRun, layer: str) -> list[str]:
    """Where the shared layer `layer` is used: the outermost positions the dry run marks with it."""
    keys = [r.key for r in run.layers if r.shared == layer]
    return [k for k in keys if not any(k.startswith(outer + ".") for outer in keys)]


def show_shared(
    result: builder.TiedGradients, owner: dict[str, str], colors: dict[str, tuple[str, str]], run: builder.DryRun
) -> None:
    """Per shared layer: each of its parameters' contributions, their sum and .grad, then heatmaps."""
    by_layer: dict[str, list[str]] = {}
    for name in result:
        by_layer.setdefault(owner.get(name, name.rpartition(".")[0]), []).append(name)
    for layer, names in by_layer.items():
        first = result[names[0]]
        places = ", ".join(use_positions(run, layer) or first.where)
        spec = ui.design().shared.get(layer)
        kind = getattr(spec, "type", "Sequential") if spec is not None else "layer"
        st.subheader(f"Shared '{layer}' · {kind}, used {len(first)}× (at {places})", divider="gray")
        st.caption(
            "In each table, the entry where .grad is largest and the sum of all entries add up across the "
            "uses exactly as the gradients do; norms do not add (‖a + b‖ ≤ ‖a‖ + ‖b‖)."
        )
        for name in names:
            sg = result[name]
            left, right = st.columns([4, 1], vertical_alignment="center")
            with left:
                st.markdown(f"**`{name}`** {sg.shape} — tied keys: {', '.join(f'`{k}`' for k in sg.keys)}")
                table = sg.table()
                st.dataframe(
                    table,
                    key=f"grad_uses_{css_key(name)}",
                    hide_index=True,
                    width="stretch",
                    column_config={c: st.column_config.NumberColumn(format="%.5f") for c in table.columns[1:]},
                )
            with right:
                st.metric(
                    "largest |sum − .grad|",
                    f"{sg.max_abs_diff:.2g}",
                    help="The largest absolute difference between the sum of the uses' gradients and "
                    ".grad from an ordinary backward. Zero, or a few units of float rounding.",
                )
                scale = max(1.0, float(sg.grad.abs().max()))
                if sg.max_abs_diff <= 1e-5 * scale:
                    st.success("sum = .grad", icon=":material/check_circle:")
                else:
                    st.warning("sum ≠ .grad", icon=":material/warning:")
            fig = heatmaps_figure(sg, colors.get(layer, (None,))[0])
            if fig is not None:
                st.plotly_chart(fig, key=f"grad_heat_{css_key(name)}", width="stretch")
                st.caption(
                    "One cell per weight; red positive, blue negative, one colour scale for all panels. "
                    "Add the use panels cell by cell and you get the last two."
                )
            elif len(sg.shape) >= 2:
                st.caption(f"{sg.shape} is too large to draw cell by cell; the table compares the uses.")


def show_other_matrices(result: builder.TiedGradients) -> None:
    """Heatmaps of .grad for the small weight matrices that are not shared (a few, in forward order)."""
    figures = [
        (name, matrix_figure(g, f"{name} {tuple(g.shape)}")) for name, g in result.grads.items() if name not in result
    ]
    figures = [(n, f) for n, f in figures if f is not None][:6]
    if not figures:
        return
    st.subheader("Gradients of the small weight matrices", divider="gray")
    st.caption(
        ".grad of each weight matrix small enough to show cell by cell (a convolution's (out, in, k, k) "
        "kernel as out × in·k·k); red positive, blue negative."
    )
    cols = st.columns(min(3, len(figures)))
    for i, (name, fig) in enumerate(figures):
        with cols[i % len(cols)]:
            st.plotly_chart(fig, key=f"grad_matrix_{css_key(name)}", width="stretch")


st.title("Gradients")
with st.container(border=True, key="grad_explanation"):
    st.markdown(EXPLANATION)
    with st.expander("Check it in plain PyTorch"):
        st.code(PLAIN_PYTORCH, language="python")

design = ui.design()
try:
    run = ui.dry_run(design)
except DesignError as e:
    ui.show_error(e)
    st.stop()
net = ui.net()
if net is None:
    st.stop()

if not design.shared:
    st.info(
        "This design has no shared layers, so every parameter receives its gradient from a single place. "
        "Load the chapter's tied example to see a gradient split by use.",
        icon=":material/info:",
    )
    st.button("Load the tied example", key="grad_load_tied", on_click=load_tied, icon=":material/link:")

cols = st.columns([3, 1, 3, 2], vertical_alignment="bottom")
source = cols[0].radio(
    "Batch",
    list(BATCHES),
    format_func=BATCH_LABELS.get,
    key="grad_batch",
    horizontal=True,
    help="The dry run's example input, or random data of the same shape drawn with the seed.",
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

try:
    x = builder.make_batch(design, source, int(seed))
    loss = builder.make_loss(loss_kind, run.output_shape, int(seed))
    with st.spinner("Running forward and backward…"):
        result = builder.tied_gradients(net, x, loss, train=train, seed=int(seed))
except DesignError as e:
    ui.show_error(e)
    st.stop()

m = st.columns(4)
m[0].metric("Loss", f"{result.loss:.5g}", help=loss.describe())
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
st.plotly_chart(norms_figure(result, bar_colors), key="grad_norms", width="stretch")

if result:
    show_shared(result, owner, colors, run)
elif design.shared:
    st.info(
        "This design's shared layers hold no parameters, or each is used only once, so no gradient is split "
        "by use here.",
        icon=":material/info:",
    )
show_other_matrices(result)
