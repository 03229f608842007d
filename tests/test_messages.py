"""Error messages a first-time user reads (issue 13, defect 7): the location said once, and "did you mean"."""

import json

import pytest

from builder import Design, DesignError
from builder.registry import REGISTRY, unknown_type


def _error(layer: dict) -> DesignError:
    text = json.dumps({"format": 1, "input": {"shape": [2, 4]}, "layers": [layer]})
    with pytest.raises(DesignError) as info:
        Design.from_json(text)
    return info.value


@pytest.mark.parametrize(
    ("layer", "path", "words"),
    [
        ({"type": "Linear", "in_features": -4, "out_features": 2}, "layers[0].in_features", "(Linear): must be"),
        ({"type": "Linear", "out_features": 2}, "layers[0].in_features", "Linear needs 'in_features'"),
        ({"type": "Linear", "in_features": 4, "out_features": 2, "foo": 1}, "layers[0].foo", "no argument 'foo'"),
        ({"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": "x"}, "layers[0].kernel_size", ""),
    ],
)
def test_an_argument_error_names_its_path_once_and_at_the_start(layer, path, words):
    # The page prefixes e.path when the message does not contain it: "layers[0].in_features — layers[0]
    # (Linear).in_features: …" said the place twice. The message now starts with the path itself.
    e = _error(layer)
    assert e.path == path
    assert str(e).startswith(path) and str(e).count(path) == 1, str(e)
    assert words in str(e)


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("Linearr", "Linear"), ("Linaer", "Linear"), ("relu", "ReLU"), ("conv2d", "Conv2d"), ("Sequentail", "Sequential")],
)
def test_an_unknown_type_suggests_the_closest_ones(typo, meant):
    e = _error({"type": typo})
    assert e.path == "layers[0].type"
    assert f"did you mean {meant!r}" in str(e)
    assert "known types" not in str(e)  # not all 34 names when one is clearly meant


def test_an_unknown_type_with_nothing_close_lists_every_type():
    e = _error({"type": "Zzzzzz"})
    assert "did you mean" not in str(e)
    assert all(name in str(e) for name in REGISTRY)


def test_unknown_type_of_a_non_string():
    assert "known types" in unknown_type(3)
