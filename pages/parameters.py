"""Parameters: one layer's state_dict, values and gradient; edit a weight and watch tied positions follow;
choose how the weights are initialized (part of the design), re-initialize, and see a histogram."""

import plotly.express as px
import streamlit as st

import builder
import ui
from builder import DesignError, ParamsError, init_spec, params
from builder import init as inits

st.title("Parameters")
current = ui.design()
net = ui.net()
if net is None:
    st.stop()

layers = {k: v for k, v in params.layer_keys(net).items() if k}
table = builder.summary(net)
kinds = dict(zip(table["key"], table["type"], strict=True))
shared_at = {p.key: p.shared for p in ui.dry_run(current).layers if p.shared}


def layer_label(key: str) -> str:
    kind = kinds[layers[key][0]]
    return f"{key} · {kind}" + (f" (shared '{shared_at[key]}')" if key in shared_at else "")


# -- access (d2l 6.2) --------------------------------------------------------------------------------------
st.subheader("Parameter access")
if not layers:
    st.info("This network has no parameters.")
else:
    c1, c2 = st.columns(2)
    layer = c1.selectbox(
        "Layer",
        list(layers),
        key="param_layer",
        format_func=layer_label,
        help="A layer's tensors, as net[2].state_dict() shows them.",
    )
    key = c2.selectbox("Tensor", layers[layer], key="param_tensor")
    st.markdown(f"**`net.get_submodule('{layer}').state_dict()`**")
    rows = table[table["layer"] == layer][["key", "kind", "shape", "dtype", "device", "requires_grad", "tied_with"]]
    st.dataframe(rows, key="param_state", hide_index=True, width="stretch")
    tensor = net.state_dict(keep_vars=True)[key]
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown(
            f"**Values of `{key}`** — shape {tuple(tensor.shape)}, mean {tensor.float().mean():.4g}, "
            f"std {tensor.float().std() if tensor.numel() > 1 else 0:.4g}"
        )
        st.dataframe(params.tensor_frame(tensor), key="param_values", height=240, width="stretch")
    with right:
        grad = tensor.grad
        st.markdown(f"**Gradient of `{key}`** (`.grad`)")
        if grad is None:
            st.caption("No gradient yet: `.grad` is None until a backward pass.")
        else:
            st.dataframe(params.tensor_frame(grad), key="param_grad", height=240, width="stretch")
        if st.button(
            "Compute gradients on the example input",
            key="param_backward",
            icon=":material/functions:",
            help="Runs the example input forward, sums the outputs and calls backward(): every "
            "parameter's .grad holds d(sum)/d(parameter); a shared layer's sums its uses.",
        ):
            try:
                params.example_gradients(net, builder.example_input(current, st.session_state.net_device))
            except (RuntimeError, ValueError) as e:
                st.error(f"The backward pass failed: {e}", icon=":material/error:")
            else:
                st.rerun()

    # -- edit one value ----------------------------------------------------------------------------------------
    st.markdown("**Edit one value** — as the chapter's `net[2].weight.data[0, 0] = 100`")
    cols = st.columns([1] * max(tensor.dim(), 1) + [2, 2], vertical_alignment="bottom")
    index = []
    for d in range(tensor.dim()):
        index.append(
            cols[d].number_input(
                f"index {d}",
                min_value=0,
                max_value=max(tensor.shape[d] - 1, 0),
                value=0,
                step=1,
                key=f"edit_index_{key}_{d}",
            )
        )
    value = cols[-2].number_input("new value", value=100.0, key="edit_value")
    if cols[-1].button("Set", key="edit_set", icon=":material/edit:"):
        try:
            params.set_value(net, key, tuple(int(i) for i in index), value)
        except ParamsError as e:
            ui.show_error(e)
        else:
            st.session_state.edit_done = (id(net), key, tuple(int(i) for i in index))
            st.rerun()  # redraw the values above with the new one
    done = st.session_state.get("edit_done")
    if done is not None and done[0] == id(net) and done[1] in net.state_dict():
        _, where, idx = done
        positions = params.tied_keys(net, where)
        state = net.state_dict()
        if len(idx) == state[where].dim():
            shown = [{"key": k, f"value at {list(idx)}": float(state[k][idx])} for k in positions]
            st.dataframe(shown, key="edit_positions", hide_index=True)
        if len(positions) > 1:
            st.success(
                f"{where}{list(idx)} set: {', '.join(k for k in positions if k != where)} changed with it — "
                f"they are the same tensor (a shared layer).",
                icon=":material/link:",
            )
        else:
            st.success(f"{where}{list(idx)} set.", icon=":material/check_circle:")

# -- initialization (d2l 6.3) ------------------------------------------------------------------------------
st.subheader("Initialization")
st.caption(
    "Part of the design: the design's default applies to every layer with a weight matrix or kernel; a "
    "layer's own choice wins. Biases are zeroed unless kept. A seed makes the weights reproducible, and the "
    "exported code reproduces them."
)
planned = {k: spec for k, _, spec in inits.plan(current)}
targets = inits.eligible(current)
first_use = {}  # shared layer name -> the module key where net.modules() meets it (its plan key)
for k, name in shared_at.items():
    first_use.setdefault(name, k)


def plan_key(label: str) -> str:
    """A layer's key in the plan; a shared definition ("shared 'name'") is planned at its first use."""
    if label.startswith("shared '"):
        return first_use.get(label.removeprefix("shared '").removesuffix("'"), label)
    return label


if targets:
    st.dataframe(
        [
            {
                "layer": k,
                "type": kinds.get(f"{plan_key(k)}.weight", ""),
                "init": init_spec.describe(planned.get(plan_key(k))),
            }
            for _, k in targets
        ],
        key="init_table",
        hide_index=True,
    )

ALL = "*"  # the design's default (a string: None in a selectbox reads as "nothing chosen")
options = [ALL, *(p for p, _ in targets)]
labels = {ALL: "all layers (the design's default)", **{p: f"{k}  ({p})" for p, k in targets}}
c1, c2 = st.columns(2)
target = c1.selectbox("Apply to", options, key="init_target", format_func=labels.get)
method = c2.selectbox(
    "Method", list(init_spec.METHODS), key="init_method", format_func=lambda m: init_spec.METHODS[m].label
)
spec: dict = {"method": method}
opts = init_spec.METHODS[method].options
if opts or method != "default":
    ocols = st.columns(len(opts) + 1)
    for col, opt in zip(ocols, opts, strict=False):
        if opt.kind == "float":
            spec[opt.name] = col.number_input(
                opt.name, value=float(opt.default), key=f"init_{opt.name}", format="%g", help=opt.help or None
            )
        else:
            spec[opt.name] = col.selectbox(
                opt.name, opt.choices, key=f"init_{opt.name}", index=opt.choices.index(opt.default)
            )
    if method != "default":
        spec["bias"] = ocols[-1].selectbox(
            "bias",
            init_spec.BIAS_CHOICES,
            key="init_bias",
            format_func={"zeros": "zeros", "default": "PyTorch default"}.get,
        )
s1, s2, s3, s4 = st.columns([1, 1, 1, 1], vertical_alignment="bottom")
use_seed = s1.checkbox("Fixed seed", value=current.seed is not None, key="init_use_seed")
seed = s2.number_input(
    "seed",
    min_value=0,
    max_value=2**53 - 1,
    value=min(current.seed or 0, 2**53 - 1),
    step=1,
    key="init_seed",
    disabled=not use_seed,
)
if s3.button(
    "Apply to the design",
    key="init_apply",
    type="primary",
    icon=":material/check:",
    help="Changes the design: the network is rebuilt with fresh weights initialized this way.",
):
    try:
        new = inits.with_init(current, None if target == ALL else target, spec)
        new = inits.with_seed(new, int(seed) if use_seed else None)
    except DesignError as e:
        ui.show_error(e)
    else:
        ui.set_design(new)
        st.session_state.init_note = f"Initialization set for {labels[target]}: {init_spec.describe(spec)}."
        st.rerun()
if s4.button(
    "Re-initialize",
    key="reinit",
    icon=":material/refresh:",
    help="Fills the session's weights again as the design says (same seed: the same weights).",
):
    builder.initialize(net, current)
    st.session_state.init_note = "Re-initialized" + (
        f" with seed {current.seed}: the same weights as before a change."
        if current.seed is not None
        else " at random."
    )
    st.rerun()
note = st.session_state.pop("init_note", None)
if note:
    st.success(note, icon=":material/check_circle:")

# -- histogram ---------------------------------------------------------------------------------------------
weights = [k for keys in layers.values() for k in keys if k.endswith("weight")]
if weights:
    hist_key = st.selectbox("Histogram of", weights, key="hist_key")
    data = params.values(net, hist_key).numpy()
    fig = px.histogram(x=data, nbins=60, labels={"x": hist_key}, title=f"{hist_key}: {data.size:,} values")
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10}, showlegend=False, yaxis_title="count")
    with st.container(key="histogram"):
        st.plotly_chart(fig, key="hist_chart")
