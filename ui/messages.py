"""How the app speaks: `show_error` for builder's errors, `flash` for a message that must survive a rerun.

    ui.flash("Saved 'mlp', version 2.")                    # shown once, on the next run of the page
    ui.flash(str(e), "error")                              # a refused action
    ui.flash(msg, about=(upload.file_id, id(net)))         # shown on every run while `about` is unchanged
    ui.show_flashes()                                      # where the page shows them (under its title)

A callback (on_click) runs before the page's rerun, so what it says is flashed, not drawn; so is what a page
says just before `st.rerun()`. Each page calls `show_flashes()` once, at the place its messages belong.
"""

from __future__ import annotations

from collections.abc import Hashable

import streamlit as st

from ui import state
from ui.state import Flash, Kind

ICONS: dict[Kind, str] = {
    "success": ":material/check_circle:",
    "info": ":material/info:",
    "warning": ":material/warning:",
    "error": ":material/error:",
}


def flash(
    text: str, kind: Kind = "success", *, icon: str | None = None, about: Hashable | None = None, toast: bool = False
) -> None:
    """Say `text` on the page's next run (and, with `about`, on every run while the page's `about` matches).
    `toast` also pops it up, to be seen when the page is scrolled away from where flashes show."""
    others = [f for f in state.FLASHES.get([]) or [] if not (about is not None and f.about == about)]
    state.FLASHES.set([*others, Flash(text, kind, icon, about, toast)])


def show_flashes(about: Hashable | None = None) -> None:
    """Show the flashes: the once-only ones (then forgotten) and those about `about` (others forgotten)."""
    held = state.FLASHES.get([]) or []
    keep = []
    for f in held:
        if f.about is not None and f.about != about:
            continue  # about something that changed: forgotten
        getattr(st, f.kind)(f.text, icon=f.icon or ICONS[f.kind])
        if f.toast:
            st.toast(f.text, icon=f.icon or ICONS[f.kind])
        if f.about is not None:
            keep.append(f)
    state.FLASHES.set(keep)


def error_text(e: Exception, failed: str | None = None) -> str:
    """An error as a person reads it: what failed (when given), then the part of the design at fault when
    the message does not already name it, then the message."""
    where = getattr(e, "path", None)
    text = f"**{where}** — {e}" if where and where not in str(e) else str(e)
    return f"{failed}: {text}" if failed else text


def show_error(e: Exception, failed: str | None = None) -> None:
    """Show an error (builder's DesignError, ParamsError, DataError, TrainingError, or torch's RuntimeError
    from a step the user asked for, with `failed` saying which: "The backward pass failed"), no traceback."""
    st.error(error_text(e, failed), icon=ICONS["error"])
