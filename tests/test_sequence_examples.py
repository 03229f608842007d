"""examples/lstm_lm.json and examples/transformer_encoder.json against the issue's LSTMLM and TinyTransformer
written by hand: identical keys, the same weights under the same seed, strict loads both ways, equal outputs on
random token ids in eval mode — and both train on the built-in token data."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from builder import Design, DesignError, build, dry_run, load_example, save_params
from builder.data import make_dataset
from builder.training import TrainConfig, train

from .sequence_models import LSTMLM, TinyTransformer

REFERENCES = {"lstm_lm": (LSTMLM, 28), "transformer_encoder": (TinyTransformer, 100)}


def tokens(name: str, seed: int = 0) -> torch.Tensor:
    design = load_example(name)
    vocab = REFERENCES[name][1]
    return torch.randint(0, vocab, design.input_shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_example_is_the_hand_written_class(name: str) -> None:
    design = load_example(name)
    reference = REFERENCES[name][0]
    torch.manual_seed(3)
    theirs = reference()
    ours = build(design, seed=3)
    assert repr(ours).startswith(reference.__name__ + "(")  # a FlowModule that shows the class it stands for
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():  # construction's own draws, in construction's order
        assert torch.equal(ours.state_dict()[key], value), key
    x = tokens(name)
    for src, dst in ((theirs, ours), (ours, theirs)):  # .params both ways, then fresh weights again
        dst.load_state_dict(torch.load(io.BytesIO(save_params(src)), weights_only=True), strict=True)
        src.load_state_dict(build(design, seed=11).state_dict(), strict=True)
        dst.load_state_dict(src.state_dict(), strict=True)
        src.eval(), dst.eval()
        with torch.no_grad():
            torch.testing.assert_close(dst(x), src(x))
            assert tuple(dst(x).shape) == dry_run(design).output_shape


def test_lstm_lm_keys_are_torchs_own() -> None:
    keys = list(build(load_example("lstm_lm")).state_dict())
    assert keys == [
        "embedding.weight",
        "rnn.weight_ih_l0",
        "rnn.weight_hh_l0",
        "rnn.bias_ih_l0",
        "rnn.bias_hh_l0",
        "linear.weight",
        "linear.bias",
    ]
    assert dry_run(load_example("lstm_lm")).output_shape == (2, 35, 28)


def test_transformer_keys_are_torchs_own() -> None:
    keys = list(build(load_example("transformer_encoder")).state_dict())
    assert keys[:3] == [
        "embedding.weight",
        "encoder.layers.0.self_attn.in_proj_weight",
        "encoder.layers.0.self_attn.in_proj_bias",
    ]
    assert "encoder.layers.1.norm2.bias" in keys and keys[-2:] == ["head.weight", "head.bias"]
    assert len(keys) == 1 + 2 * 12 + 2


def test_a_recurrent_layer_fed_a_2d_input_is_named() -> None:
    """The LSTM language model without its Embedding: the LSTM gets (2, 35) floats, refused with its name."""
    doc = load_example("lstm_lm").to_dict()
    doc["input"] = {"shape": [2, 35]}
    doc["layers"] = doc["layers"][1:]
    doc["flow"] = ["rnn", "linear"]
    with pytest.raises(DesignError) as info:
        dry_run(Design.from_dict(doc))
    assert "layers[0] LSTM: expects a 3-D input (batch, sequence, features), gets shape (2, 35)" in str(info.value)
    assert info.value.path  # where the flow calls it


def test_a_sequential_refuses_the_lstm_and_points_at_flows() -> None:
    doc = load_example("lstm_lm").to_dict()
    del doc["flow"], doc["class"]
    with pytest.raises(DesignError, match="flow"):
        dry_run(Design.from_dict(doc))


@pytest.mark.parametrize(
    ("name", "data", "epochs", "target"),
    [("lstm_lm", "delayed copy", 5, 0.95), ("transformer_encoder", "majority", 3, 0.9)],
)
def test_the_examples_train_on_their_built_in_data(name: str, data: str, epochs: int, target: float) -> None:
    """The presets' settings (Adam, lr 0.01, batch 32) on 1000 sequences, as the Train page runs them."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net = build(load_example(name), seed=0)
        history = train(net, make_dataset(data, n=1000), TrainConfig(lr=0.01, batch_size=32, epochs=epochs, seed=0))
    finally:
        torch.set_num_threads(before)
    assert history.last.val_acc >= target, history.frame()


def test_hand_written_references_are_plain_torch() -> None:
    assert isinstance(LSTMLM().rnn, nn.LSTM) and isinstance(TinyTransformer().encoder, nn.TransformerEncoder)
