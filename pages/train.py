"""Train: the session's network on built-in or uploaded data — live curves, Stop, the trained weights.

Layout only: the data and settings are `ui.train_form`'s, the run and its results `ui.train_view`'s, the
advice (which data fits, good settings, run tables) `builder.train_advice`'s, the figures `builder.figures`'.
"""

from __future__ import annotations

import streamlit as st

import ui
from ui import downloads, state, train_form, train_view


def main() -> None:
    st.title("Train")
    st.html(train_view.NO_FADE_CSS)  # elements a rerun has not drawn yet are not faded out (see NO_FADE_CSS)
    ui.show_last_built()  # when the Design page's draft does not build
    design = ui.design()
    dry = ui.dry_run_or_error(design)
    if dry is None:
        return
    st.caption(
        f"Design **{design.name}**: input {design.input_shape} → output {dry.output_shape}, on "
        f"**{state.DEVICE()}**. Training changes the session's weights in place."
    )
    train_view.advance()  # the running run's next slice, before the page says whether it still runs
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.subheader("Data")
        data = train_form.choose_data(design, dry.output_shape)
        fits = data is not None and train_form.check_fit(design, dry.output_shape, data)
        st.subheader("Settings")
        config = train_form.choose_settings()
        slot = st.empty()  # the Train button; while a run it started in this page run goes on, a disabled one
        if slot.button(
            "Train",
            key="train_start",
            type="primary",
            icon=":material/play_arrow:",
            disabled=not fits or config is None or train_view.busy(),
            width="stretch",
        ):
            assert data is not None and config is not None
            if train_view.start(design, data, config):
                train_view.advance()  # its first slice now: a short run ends here, drawn finished by this page run
                if train_view.busy():  # a longer one goes on in the live fragment drawn below
                    slot.button(
                        "Train",
                        key="train_start_busy",
                        type="primary",
                        icon=":material/play_arrow:",
                        disabled=True,
                        width="stretch",
                    )
        if fits and data is not None and config is not None:
            downloads.training_bundle_button(design, data, config, key="train_bundle", width="stretch")
            st.caption(
                "Train beyond this server: `torchrun --standalone --nproc_per_node=N train.py` (DDP on N processes "
                "or GPUs; the README in the zip has the multi-node form). Upload its `trained.params` on the "
                "Weights page."
            )
    with right:
        train_view.results(design, data)
    train_view.runs_table()


main()
