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


def plan_table(current: builder.Design) -> list[tuple[str, str]]:
    """The table of what each layer gets and from where (its own setting, a block's, the design's default or
    nothing chosen); returns the eligible (design path, module key) pairs."""
    rows = inits.init_table(current)
    if rows:
        st.dataframe(
            [
                {"layer": r.key, "path": r.path, "type": r.type, "init": r.applied, "from": r.source, "own": r.own}
                for r in rows
            ],
            key="init_table",
            hide_index=True,
        )
    return [(r.path, r.key) for r in rows]


USE_DEFAULT = "use the design's default"  # a layer's choice: drop its own setting (with_init(path, None))


def method_form(box: Any, for_layer: bool) -> dict[str, Any] | None:
    """The method (in `box`, a column), its options and the bias choice (a row below), as an init spec; None
    for "use the design's default" (offered when the target is one layer)."""
    choices = [*([USE_DEFAULT] if for_layer else []), *init_spec.METHODS]
    method = box.selectbox(
        "Method",
        choices,
        key="init_method",
        format_func=lambda m: m if m == USE_DEFAULT else init_spec.METHODS[m].label,
    )
    if method == USE_DEFAULT:
        return None
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
                key=f"init_bias_{method}",  # per method: each starts from what the chapter does beside it
                index=init_spec.BIAS_CHOICES.index(init_spec.METHODS[method].bias),
                format_func={"zeros": "zeros", "default": "kept (PyTorch's)"}.get,
                help="The chapter zeroes the bias beside normal and constant, and leaves it alone beside Xavier, "
                "constant 42 and my_init.",
            )
    return spec


def init_note(target: str, label: str, new: builder.Design, own: list[str], replaced: bool) -> str:
    """What "Apply" did, precisely: which layers now get what, and which kept their own setting."""
    if target != ALL:
        row = next(r for r in inits.init_table(new) if r.path == target)
        return f"{label} now gets {row.applied} ({row.source})."
    what = init_spec.describe(new.init)
    if replaced and own:
        return f"Every layer now gets {what}; the own settings of {', '.join(own)} were removed."
    kept = [r for r in inits.init_table(new) if r.source != "the design's default"]
    if kept:
        rest = "; ".join(f"{r.path} keeps {r.applied} ({r.source})" for r in kept)
        return f"The design's default is now {what}, for every layer without its own setting; {rest}."
    return f"Every layer now gets {what}."


def init_section(current: builder.Design, net: nn.Module, kinds: dict[str, str], shared_at: dict[str, str]) -> None:
    st.subheader("Initialization")
    st.caption(
        "Part of the design: the design's default applies to every layer with a weight matrix or kernel; a "
        "layer's own choice wins (the table says where each layer's comes from). A seed makes the weights "
        "reproducible, and the exported code reproduces them."
    )
    targets = plan_table(current)
    options = [ALL, *(p for p, _ in targets)]
    labels = {ALL: "all layers", **{p: f"{k}  ({p})" for p, k in targets}}
    c1, c2 = st.columns(2)
    target = c1.selectbox("Apply to", options, key="init_target", format_func=labels.get)
    spec = method_form(c2, for_layer=target != ALL)
    own = inits.own_inits(current)
    replace_own = (
        bool(own)
        and target == ALL
        and st.checkbox(
            f"Also replace the own settings of {', '.join(own)}",
            value=True,
            key="init_replace_own",
            help="Unticked: the method becomes the design's default, and these layers keep their own choice.",
        )
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
            if replace_own:
                new = inits.with_init_everywhere(current, spec)
            else:
                new = inits.with_init(current, None if target == ALL else target, spec)
            new = inits.with_seed(new, int(seed) if use_seed else None)
        except DesignError as e:
            ui.show_error(e)
        else:
            ui.set_design(new)
            ui.flash(init_note(target, labels[target], new, own, replace_own))
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
