"""The argument form of a layer (Design page): one input per argument of the layer's form type, two to a
row, pre-filled; and reading the inputs back as the layer's arguments (`builder.forms` parses the text).

The size a lazy layer infers is a text box (a number box that starts filled cannot be emptied): left empty,
the layer is lazy. Widgets are keyed `<prefix><argument>` (prefix "arg_" in a row's editor, "new_" in the add
panel).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from builder import forms
from builder.flow import OPS
from builder.registry import REGISTRY, Arg
from ui import state


def _widget(arg: Arg, lazy: str | None) -> str:
    if arg.name == lazy:
        return "text"
    if arg.kind == "bool" and arg.optional:  # three states: true, false, or null (torch decides, e.g. align_corners)
        return "select"
    return {"int": "number", "float": "number", "bool": "check", "choice": "select"}.get(arg.kind, "text")


def _options(arg: Arg) -> list[Any]:
    return [None, True, False] if arg.kind == "bool" else list(arg.choices)


def _option_label(option: Any) -> str:
    return {None: "default (null)", True: "true", False: "false"}.get(option, str(option))


# What a text box takes, by argument kind.
_HINTS = {
    "int1": "a number",
    "int2": "a number or two, e.g. 3 or 3, 5",
    "ints": "one number or several, e.g. 8 or 4, 8",
    "floats": "a number or one per dimension, e.g. 2 or 2, 1.5",
    "padding1": "a number, same or valid",
    "padding2": "a number or two, same or valid",
    "layer": 'the layer as JSON, e.g. {"type": "TransformerEncoderLayer", "d_model": 32, "nhead": 4}',
}


def arg_inputs(type_name: str, values: dict[str, Any], prefix: str) -> None:
    """One input per argument of `type_name`'s form, pre-filled with `values`; two to a row."""
    base = REGISTRY[forms.form_type(type_name)]
    _inputs(base.name, base.args, values, prefix, forms.lazy_arg(type_name), base.lazy)


def size_note(kind: str, shape: tuple[int, ...] | None) -> None:
    """Say where a new layer's input size comes from: the shape arriving at the chosen place, or — when the
    design does not build up to there — nowhere: the form then starts from the registry's example size."""
    arg = REGISTRY[forms.form_type(kind)].feature_arg
    if not arg or (forms.lazy_arg(kind) and REGISTRY[kind].is_lazy):
        return  # no input size to fill, or a lazy layer: torch infers it
    if shape is not None:
        st.caption(f"**{arg}** is filled in from the shape arriving here, {shape}.")
    else:
        outer, _, inner = arg.partition(".")
        example = forms.new_values(kind).get(outer)
        if inner and isinstance(example, dict):  # a nested layer's size: TransformerEncoder's encoder_layer.d_model
            example = example.get(inner)
        st.caption(
            f":orange[The shape arriving here is not known]: the design does not build up to this place. "
            f"**{arg}** starts at an example value, {example}: set it to what arrives here."
        )


def op_inputs(op: str, values: dict[str, Any], prefix: str) -> None:
    """One input per argument of the flow operation `op` (builder.flow.OPS), pre-filled with `values`."""
    _inputs(op, OPS[op].args, values, prefix, None, None)


def read_op_args(op: str, prefix: str) -> dict[str, Any]:
    """The values of an operation's form (see op_inputs) as its arguments."""
    return _read(OPS[op].args, prefix, None)


def _inputs(
    what: str, args: tuple[Arg, ...], values: dict[str, Any], prefix: str, lazy: str | None, lazy_type: str | None
) -> None:
    if not args:
        st.caption(f"{what} has no arguments.")
        return
    for arg in args:  # a nested layer (TransformerEncoder's encoder_layer): its JSON, full width
        if arg.kind == "layer":
            st.text_area(
                arg.name,
                key=state.seed(prefix + arg.name, forms.format_value(values.get(arg.name))),
                help=f"{arg.help} ({_HINTS['layer']})",
                placeholder="empty: default" if arg.optional else None,
                height=90,
            )
    cols = st.columns(2)
    for i, arg in enumerate(a for a in args if a.kind != "layer"):
        box, key, value = cols[i % 2], prefix + arg.name, values.get(arg.name)
        help_ = arg.help or None
        kind = _widget(arg, lazy)
        if arg.name == lazy:  # a text box: a number box that starts filled cannot be emptied
            st_help = (
                f"{arg.help}. Leave empty to make the layer lazy ({lazy_type}): torch infers "
                f"{arg.name} from the first input."
            )
            box.text_input(
                arg.name,
                key=state.seed(key, forms.format_value(value)),
                help=st_help,
                placeholder="empty: lazy, torch infers it",
            )
        elif kind == "number":
            step = 1 if arg.kind == "int" else 0.01
            lo = None if arg.min is None else (int(arg.min) if arg.kind == "int" else float(arg.min))
            hi = None if arg.max is None else (int(arg.max) if arg.kind == "int" else float(arg.max))
            extra = {"value": None, "placeholder": "empty: default"} if arg.optional else {}  # may be emptied
            box.number_input(
                arg.name,
                min_value=lo,
                max_value=hi,
                step=step,
                key=state.seed(key, value),
                help=help_,
                format=None if arg.kind == "int" else "%g",
                **extra,
            )
        elif kind == "check":
            box.checkbox(arg.name, key=state.seed(key, bool(value)), help=help_)
        elif kind == "select":
            box.selectbox(
                arg.name,
                _options(arg),
                key=state.seed(key, value),
                help=help_,
                format_func=_option_label,
                placeholder=_option_label(None),  # shown while the value is null
            )
        else:
            hint = _HINTS[arg.kind]
            box.text_input(
                arg.name,
                key=state.seed(key, forms.format_value(value)),
                help=f"{help_ or ''} ({hint})",
                placeholder="empty: default" if arg.optional else None,
            )


def read_args(type_name: str, prefix: str) -> dict[str, Any]:
    """The values of an argument form (see arg_inputs) as a layer's arguments."""
    return _read(REGISTRY[forms.form_type(type_name)].args, prefix, forms.lazy_arg(type_name))


def _read(args: tuple[Arg, ...], prefix: str, lazy: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arg in args:
        value = st.session_state.get(prefix + arg.name)
        if _widget(arg, lazy) == "text":
            value = forms.parse_value(arg, value or "")
        out[arg.name] = value
    return out
