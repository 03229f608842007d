"""The Gradients page's per-shared-layer view: each use's gradient beside their sum and .grad (tables and
heatmaps), and heatmaps of the other small weight matrices. Figures are `builder.figures`'."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

import builder
import ui
from builder import figures
from builder.codegen import file_stem
from builder.gradients import check_code
from ui import downloads

if TYPE_CHECKING:
    from torch import nn


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
                    column_config={
                        c: st.column_config.NumberColumn(format="%.5f") for c in table.columns[1:] if c != "why 0"
                    },
                )
                if any(sg.zero_notes):
                    st.caption(
                        "A use showing 0.00000 sends no gradient to that entry; “why 0” says which ReLU cut it off "
                        "(a unit that is off for every sample is called dead)."
                    )
            with right:
                st.metric(
                    "largest |sum − .grad|",
                    f"{sg.max_abs_diff:.2g}",
                    help="The largest absolute difference between the sum of the uses' gradients and "
                    ".grad from an ordinary backward. Zero, or a few units of float rounding.",
                )
                if sg.agrees:
                    st.success("sum = .grad", icon=":material/check_circle:")
                else:
                    st.warning("sum ≠ .grad", icon=":material/warning:")
            fig = figures.heatmaps_figure(sg, colors.get(layer, (None,))[0])
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
    drawn = [(n, figures.matrix_figure(g, f"{n} {tuple(g.shape)}")) for n, g in result.grads.items() if n not in result]
    small = [(n, f) for n, f in drawn if f is not None][:6]
    if not small:
        return
    st.subheader("Gradients of the small weight matrices", divider="gray")
    st.caption(
        ".grad of each weight matrix small enough to show cell by cell (a convolution's (out, in, k, k) "
        "kernel as out × in·k·k); red positive, blue negative."
    )
    cols = st.columns(min(3, len(small)))
    for i, (name, fig) in enumerate(small):
        with cols[i % len(cols)]:
            st.plotly_chart(fig, key=f"grad_matrix_{css_key(name)}", width="stretch")


def check_in_pytorch(
    design: builder.Design, net: nn.Module, result: builder.TiedGradients, choice: tuple[str, int, str, bool]
) -> None:
    """The page's numbers again in plain PyTorch: a script (builder.gradients.check_code) and the session's
    weights it loads, both downloadable; it prints the loss and each table row below."""
    source, seed, loss_kind, train = choice
    stem = file_stem(design)
    code = check_code(design, result, source, seed, loss_kind, train, f"{stem}.params")
    with st.expander("Check it in plain PyTorch: the same numbers"):
        st.caption(
            f"Save both files in one folder and run `python check_{stem}.py`: it rebuilds the network, loads "
            f"this session's weights, draws the same batch and loss, unties each shared layer and prints the "
            f"numbers of the tables below."
        )
        c = st.columns(2)
        with c[0]:
            downloads.weights_button(net, design, key="grad_check_params", width="stretch")
        c[1].download_button(
            f"Script · check_{stem}.py",
            code,
            file_name=f"check_{stem}.py",
            mime="text/x-python",
            key="grad_check_code",
            on_click="ignore",
            icon=":material/code:",
            width="stretch",
        )
        st.code(code, language="python")
