"""The Train page with the token data sets (AppTest): the LSTM language model and the Tiny Transformer are
offered for them, get settings that train them, and reach the stated accuracy."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from ui import state

from .test_train_page import no_errors, train_page, train_until_done


@pytest.mark.parametrize(
    ("source", "example", "epochs", "target"),
    [("delayed copy", "lstm_lm", 8, 0.97), ("majority", "transformer_encoder", 5, 0.9)],
)
def test_token_data_offers_its_preset_and_trains_it(
    app: AppTest, source: str, example: str, epochs: int, target: float
) -> None:
    at = train_page(app)
    at.selectbox(key="train_source").select(source).run()
    no_errors(at)
    assert at.selectbox(key="train_optimizer").value == "adam" and at.number_input(key="train_epochs").value == epochs
    assert any("token ids" in w.value for w in at.warning), [w.value for w in at.warning]  # the MLP takes floats
    at.button(key="train_use_example").click().run()
    assert at.session_state[state.DESIGN.name].name == example
    no_errors(at)
    assert not at.warning and not at.button(key="train_start").disabled
    at.button(key="train_start").click().run()
    train_until_done(at, limit=400)
    no_errors(at)
    run = at.session_state[state.TRAIN_RUN.name]
    assert run.epoch == epochs and run.history.last.val_acc >= target, run.history.frame()
    assert run.net is at.session_state[state.NET.name].module  # the session's network, trained in place
    accuracy = next(m for m in at.metric if m.label == "Val. accuracy")
    assert ("Counted per token" in accuracy.proto.help) == (source == "delayed copy")


def test_accuracy_shows_whole_and_says_per_token() -> None:
    from ui.train_view import percent

    assert percent(1.0) == "100%" and percent(0.9996) == "100%" and percent(0.961) == "96.1%"
