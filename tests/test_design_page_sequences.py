"""The Design page with issue 14's layer types (AppTest): each is offered by the add panel, its form is drawn
without a traceback and adds a layer that reads back; an LSTM starts from the size arriving at it."""

from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch import nn

from builder import REGISTRY, Design, build
from builder.design import Layer
from ui import state

from .test_design_page import add, click, draft, ok, start_empty

NEW_TYPES = [
    "RNN",
    "LSTM",
    "GRU",
    "MultiheadAttention",
    "TransformerEncoderLayer",
    "TransformerEncoder",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AdaptiveAvgPool1d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "GroupNorm",
    "Upsample",
]


def test_the_add_panel_offers_every_new_type(app: AppTest) -> None:
    options = app.selectbox(key="add_type").options  # as shown: "LSTM · Recurrent"
    shown = {option.split(" · ")[0] for option in options}
    assert set(NEW_TYPES) <= shown, sorted(set(NEW_TYPES) - shown)
    assert "LSTM · Recurrent" in options and "TransformerEncoder · Attention" in options


@pytest.mark.parametrize("choice", NEW_TYPES)
def test_each_new_type_adds_a_layer_that_reads_back(app: AppTest, choice: str) -> None:
    """Pre-filled forms (nested layers as JSON, optional switches as true / false / default) give layers
    that read back; whether they fit the input is the dry run's call, said as an error, never a traceback."""
    at = add(app, choice)
    assert draft(at).layers[-1].type == choice
    assert Design.from_json(draft(at).to_json()) == draft(at)
    if REGISTRY[choice].returns_tuple:  # its tuple must not reach a next layer: the network becomes a chain flow
        flow = draft(at).flow
        assert flow is not None and flow[-1].target == str(len(draft(at).layers) - 1), flow
        assert flow[-1].output == REGISTRY[choice].default_output
        assert any("now runs as a flow" in i.value for i in at.info), [i.value for i in at.info]


def sequence_input(at: AppTest) -> AppTest:
    """An empty design taking (2, 35) token ids, then Embedding(28, 32): the LSTM language model's start."""
    start_empty(at)
    ok(at.text_input(key="input_shape").input("2, 35").run())
    ok(at.selectbox(key="input_dtype").select("int64").run())
    return add(at, "Embedding", num_embeddings=28, embedding_dim=32)


def test_an_lstm_starts_from_the_size_arriving_and_batch_first(app: AppTest) -> None:
    at = sequence_input(app)
    ok(at.selectbox(key="add_type").select("LSTM").run())
    assert at.number_input(key="new_input_size").value == 32  # torch has no LazyLSTM: the dry run's size
    assert at.checkbox(key="new_batch_first").value is True  # Blockwork's inputs are (batch, ...)
    at.number_input(key="new_hidden_size").set_value(64)
    at = click(at, "add")
    # In a Sequential its tuple (output, (h, c)) would reach the next layer: the network becomes a chain flow
    assert not at.error, [e.value for e in at.error]
    assert any("rnn gives its sequence output" in i.value or "sequence output" in i.value for i in at.info)
    d = draft(at)
    assert [n.type for n in d.layers] == ["Embedding", "LSTM"] and d.flow is not None
    lstm = d.layers[1]
    assert lstm.args["input_size"] == 32 and lstm.args["hidden_size"] == 64 and lstm.args["batch_first"] is True
    # the truth: hand-written Embedding(28, 32) then LSTM(32, 64, batch_first=True), sequence output taken
    torch.manual_seed(0)
    emb, rnn = nn.Embedding(28, 32), nn.LSTM(32, 64, batch_first=True)
    net = build(d).eval()
    ref = {f"0.{k}": v for k, v in emb.state_dict().items()}
    ref |= {f"1.{k}": v for k, v in rnn.state_dict().items()}
    net.load_state_dict(ref, strict=True)
    x = torch.randint(0, 28, (2, 35))
    with torch.no_grad():
        assert torch.equal(net(x), rnn(emb(x))[0])


def test_a_nested_encoder_layer_is_typed_as_json(app: AppTest) -> None:
    at = sequence_input(app)
    ok(at.selectbox(key="add_type").select("TransformerEncoder").run())
    box = at.text_area(key="new_encoder_layer")
    assert '"d_model": 32' in box.value and '"batch_first": true' in box.value  # the size arriving here
    box.input(
        '{"type": "TransformerEncoderLayer", "d_model": 32, "nhead": 4, "dim_feedforward": 64, "batch_first": true}'
    )
    at = click(at, "add")
    layer = draft(at).layers[-1]
    assert layer.type == "TransformerEncoder" and layer.args["encoder_layer"]["dim_feedforward"] == 64
    # batch_first left out: torch's (sequence, batch, features) reading of (2, 35, 32) still runs
    assert not at.error, [e.value for e in at.error]  # Embedding → encoder builds: (2, 35, 32)
    ok(at.selectbox(key="add_type").select("TransformerEncoder").run())
    at.text_area(key="new_encoder_layer").input("{d_model: 32}")
    at = click(at, "add")
    assert any("type a layer as JSON" in e.value for e in at.error)


def test_upsample_switches_have_a_default_state(app: AppTest) -> None:
    at = start_empty(app)
    ok(at.text_input(key="input_shape").input("1, 3, 4, 4").run())
    ok(at.selectbox(key="add_type").select("Upsample").run())
    assert at.selectbox(key="new_align_corners").value is None  # null: torch decides
    at.selectbox(key="new_mode").select("bilinear")
    at.selectbox(key="new_align_corners").select(True)
    at = click(at, "add")
    assert draft(at).layers[-1] == Layer("Upsample", {"scale_factor": 2.0, "mode": "bilinear", "align_corners": True})
    assert not at.error and any("(1, 3, 8, 8)" in m.value for m in at.markdown)


def test_an_lstm_in_the_language_model_is_edited_by_clicking(app: AppTest) -> None:
    """In a flow design (the lstm_lm preset) the LSTM is a row like any other: two layers, then the keys are
    torch's rnn.weight_ih_l1 …, and the flow still takes its output."""
    ok(app.selectbox(key="start").select("lstm_lm").run())
    at = click(app, "load")
    click(at, "edit_1")
    at.number_input(key="arg_num_layers").set_value(2)
    at = click(at, "apply")
    assert not at.error, [e.value for e in at.error]
    rnn = draft(at).layers[1]
    assert rnn.type == "LSTM" and rnn.args["num_layers"] == 2 and draft(at).flow is not None
    assert at.session_state[state.DESIGN.name] == draft(at)  # it built: the session's design now
    keys = list(build(draft(at)).state_dict())
    assert "rnn.weight_ih_l1" in keys and keys[-2:] == ["linear.weight", "linear.bias"]
