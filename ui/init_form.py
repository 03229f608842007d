"""The Parameters page's initialization section (d2l 6.3): the plan per layer, the form that sets an init
spec in the design (method, its options, bias, seed), and re-initializing the session's weights."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

import builder
import ui
from builder import DesignError, init_spec
from builder import init as inits

if TYPE_CHECKING:
    from torch import nn

ALL = "*"  # the design's default (a string: None in a selectbox reads as "nothing chosen")


def plan_table(current: builder.Design, kinds: dict[str, str], shared_at: dict[str, str]) -> list[tuple[str, str]]:
    """The table of which layer gets which init; returns the eligible (design path, module key) pairs."""
    planned = {k: spec for k, _, spec in inits.plan(current)}
    targets = inits.eligible(current)
    first_use: dict[str, str] = {}  # shared layer name -> the module key where net.modules() meets it
    for k, name in shared_at.items():
        first_use.setdefault(name, k)

    def plan_key(label: str) -> str:
        """A layer's key in the plan; a shared definition ("shared 'name'") is planned at its first use."""
        if label.startswith("shared '"):
            return first_use.get(label.removeprefix("shared '").removesuffix("'"), label)
        return label

    if targets:
        rows = [
            {
                "layer": k,
                "type": kinds.get(f"{plan_key(k)}.weight", ""),
                "init": init_spec.describe(planned.get(plan_key(k))),
            }
            for _, k in targets
        ]
        st.dataframe(rows, key="init_table", hide_index=True)
    return targets


def method_form(box: Any) -> dict[str, Any]:
    """The method (in `box`, a column), its options and the bias choice (a row below), as an init spec."""
    method = box.selectbox(
        "Method", list(init_spec.METHODS), key="init_method", format_func=lambda m: init_spec.METHODS[m].label
    )
    spec: dict[str, Any] = {"method": method}
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
    return spec


def init_section(current: builder.Design, net: nn.Module, kinds: dict[str, str], shared_at: dict[str, str]) -> None:
    st.subheader("Initialization")
    st.caption(
        "Part of the design: the design's default applies to every layer with a weight matrix or kernel; a "
        "layer's own choice wins. Biases are zeroed unless kept. A seed makes the weights reproducible, and the "
        "exported code reproduces them."
    )
    targets = plan_table(current, kinds, shared_at)
    options = [ALL, *(p for p, _ in targets)]
    labels = {ALL: "all layers (the design's default)", **{p: f"{k}  ({p})" for p, k in targets}}
    c1, c2 = st.columns(2)
    target = c1.selectbox("Apply to", options, key="init_target", format_func=labels.get)
    spec = method_form(c2)
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
            ui.flash(f"Initialization set for {labels[target]}: {init_spec.describe(spec)}.")
            st.rerun()
    if s4.button(
        "Re-initialize",
        key="reinit",
        icon=":material/refresh:",
        help="Fills the session's weights again as the design says (same seed: the same weights).",
    ):
        builder.initialize(net, current)
        again = f" with seed {current.seed}: the same weights as before a change." if current.seed is not None else ""
        ui.flash("Re-initialized" + (again or " at random."))
        st.rerun()
    ui.show_flashes()
