"""Design documents: JSON round trips, and every kind of bad design refused with the field named."""

from __future__ import annotations

import copy
import json

import pytest

from builder import REGISTRY, Block, Design, DesignError, Layer, Use, example_names, load_example


def tied_dict() -> dict:
    return json.loads(load_example("tied").to_json())


@pytest.mark.parametrize("name", example_names())
def test_examples_round_trip(name: str) -> None:
    design = load_example(name)
    again = Design.from_json(design.to_json())
    assert again == design
    assert again.to_json() == design.to_json()


def test_parsed_structure() -> None:
    d = load_example("tied")
    assert d.input_shape == (2, 4)
    assert d.shared == {"shared": Layer("Linear", {"in_features": 8, "out_features": 8})}
    assert d.layers[2] == Use("shared") and d.layers[4] == Use("shared")
    nested = load_example("nested")
    assert isinstance(nested.layers[0], Block)
    assert [k for _, k, _ in nested.walk()] == [
        "0",
        "0.net",
        "0.net.0",
        "0.net.1",
        "0.net.2",
        "0.net.3",
        "0.linear",
        "1",
    ]


def test_lists_become_tuples_and_back() -> None:
    d = Design.from_dict(
        {
            "format": 1,
            "input": {"shape": [1, 3, 8, 8]},
            "layers": [{"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": [3, 5]}],
        }
    )
    assert d.layers[0].args["kernel_size"] == (3, 5)
    assert json.loads(d.to_json())["layers"][0]["kernel_size"] == [3, 5]


def test_every_registry_type_has_a_buildable_example() -> None:
    # Each type's required arguments have an example value an editor can pre-fill.
    for lt in REGISTRY.values():
        for arg in lt.args:
            if arg.required:
                assert arg.example is not None, f"{lt.name}.{arg.name}"


def mutate(path: list, value, base: dict | None = None) -> dict:
    d = copy.deepcopy(base or tied_dict())
    target = d
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


DELETE = object()

BAD = [
    # (what, change, words the message must contain, the .path)
    ("format missing", (["format"], DELETE), ["format", "must be 1 or 2"], "format"),
    ("newer format", (["format"], 3), ["format 3", "Update Blockwork"], "format"),
    ("format as bool", (["format"], True), ["format", "must be 1 or 2"], "format"),
    ("layers not a list", (["layers"], {"type": "ReLU"}), ["layers", "list"], "layers"),
    ("no layers", (["layers"], []), ["at least one layer"], "layers"),
    ("layer not an object", (["layers", 1], "ReLU"), ["layers[1]", "object"], "layers[1]"),
    (
        "unknown type",
        (["layers", 1, "type"], "Relu"),
        ["layers[1].type", "unknown layer type 'Relu'"],
        "layers[1].type",
    ),
    ("missing type", (["layers", 1], {}), ["layers[1]", "type"], "layers[1]"),
    (
        "string size",
        (["layers", 0, "out_features"], "8"),
        ["layers[0]", "out_features", "whole number"],
        "layers[0].out_features",
    ),
    ("float size", (["layers", 0, "out_features"], 8.5), ["out_features", "whole number"], "layers[0].out_features"),
    ("bool size", (["layers", 0, "out_features"], True), ["out_features", "whole number"], "layers[0].out_features"),
    ("zero size", (["layers", 0, "out_features"], 0), ["out_features", "at least 1"], "layers[0].out_features"),
    (
        "negative size",
        (["layers", 6, "in_features"], -8),
        ["layers[6]", "in_features", "at least 1"],
        "layers[6].in_features",
    ),
    ("unknown argument", (["layers", 0, "units"], 3), ["layers[0]", "no argument 'units'"], "layers[0].units"),
    (
        "missing argument",
        (["layers", 6, "in_features"], DELETE),
        ["layers[6]", "needs 'in_features'", "LazyLinear"],
        "layers[6].in_features",
    ),
    ("bad bias", (["layers", 0, "bias"], "yes"), ["bias", "true or false"], "layers[0].bias"),
    (
        "unknown shared",
        (["layers", 4, "shared"], "tide"),
        ["layers[4]", "'tide'", "does not exist", "'shared'"],
        "layers[4].shared",
    ),
    ("shared uses shared", (["shared", "other"], {"shared": "shared"}), ["shared.other", "cannot use"], "shared.other"),
    (
        "bad shared name",
        (["shared", "two words"], {"type": "ReLU"}),
        ["shared.two words", "identifier"],
        "shared.two words",
    ),
    ("name with a dot", (["layers", 0, "name"], "a.b"), ["layers[0].name", "'.'"], "layers[0].name"),
    ("empty name", (["layers", 0, "name"], ""), ["layers[0].name", "non-empty"], "layers[0].name"),
    ("name not text", (["layers", 0, "name"], 3), ["layers[0].name", "non-empty text"], "layers[0].name"),
    ("control character", (["layers", 0, "name"], "a\nb"), ["layers[0].name", "control"], "layers[0].name"),
    ("long name", (["layers", 0, "name"], "n" * 65), ["layers[0].name", "at most 64"], "layers[0].name"),
    ("reserved name", (["layers", 0, "name"], "forward"), ["layers[0].name", "nn.Sequential"], "layers[0].name"),
    (
        "name clashes a position",
        (["layers", 1, "name"], "0"),
        ["layers[1]", "'0'", "position of layers[0]"],
        "layers[1].name",
    ),
    (
        "position clashes a name",
        (["layers", 0, "name"], "1"),
        ["layers[1]", "'1'", "name of layers[0]"],
        "layers[0].name",
    ),
    ("input missing", (["input"], DELETE), ["input"], "input"),
    ("input shape empty", (["input", "shape"], []), ["input.shape"], "input.shape"),
    ("input shape zero", (["input", "shape", 1], 0), ["input.shape[1]", "positive"], "input.shape[1]"),
    ("input dtype", (["input", "dtype"], "float16"), ["input.dtype", "float16"], "input.dtype"),
    ("unknown top field", (["colour"], "red"), ["unknown field 'colour'"], "colour"),
    (
        "block with args",
        (["layers", 1], {"type": "Sequential", "layers": [{"type": "ReLU"}], "p": 1}),
        ["layers[1]", "'p'"],
        "layers[1].p",
    ),
    (
        "empty block",
        (["layers", 1], {"type": "Sequential", "layers": []}),
        ["layers[1].layers", "at least one"],
        "layers[1].layers",
    ),
    ("layer with layers", (["layers", 1, "layers"], []), ["layers[1]", "not a block"], "layers[1].layers"),
    (
        "choice",
        (["layers", 1], {"type": "GELU", "approximate": "fast"}),
        ["approximate", "'none'", "'tanh'"],
        "layers[1].approximate",
    ),
    ("probability", (["layers", 1], {"type": "Dropout", "p": 1.5}), ["layers[1]", "p", "at most 1"], "layers[1].p"),
    ("nan", (["layers", 1], {"type": "Dropout", "p": float("nan")}), ["p", "number"], "layers[1].p"),
    (
        "kernel pair length",
        (["layers", 1], {"type": "MaxPool2d", "kernel_size": [2, 2, 2]}),
        ["kernel_size", "list of 2"],
        "layers[1].kernel_size",
    ),
    (
        "padding word",
        (["layers", 1], {"type": "Conv2d", "in_channels": 8, "out_channels": 8, "kernel_size": 3, "padding": "full"}),
        ["padding", "'same'"],
        "layers[1].padding",
    ),
]


@pytest.mark.parametrize(("what", "change", "words", "path"), BAD, ids=[b[0] for b in BAD])
def test_bad_designs_are_refused_with_the_field_named(what, change, words, path) -> None:
    data = mutate(*change)
    with pytest.raises(DesignError) as info:
        Design.from_dict(data)
    for word in words:
        assert word in str(info.value), (what, str(info.value))
    assert info.value.path == path
    assert isinstance(info.value, ValueError)


def test_duplicate_names_in_a_block() -> None:
    d = load_example("custom_mlp").to_dict()
    d["layers"][2]["name"] = "hidden"
    with pytest.raises(DesignError, match=r"layers\[2\].*'hidden' is already used by layers\[0\]"):
        Design.from_dict(d)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{", ["not valid JSON", "line 1"]),
        ('{"format": 1,}', ["not valid JSON"]),
        ("[1, 2]", ["JSON object", "a list"]),
        ("null", ["JSON object", "null"]),
        (b"\xff\xfe", ["UTF-8"]),
        ("[" * 100_000 + "]" * 100_000, ["nested too deeply"]),
    ],
)
def test_broken_json(text, words) -> None:
    with pytest.raises(DesignError) as info:
        Design.from_json(text)
    for word in words:
        assert word in str(info.value)


def test_design_text_size_limit(monkeypatch) -> None:
    monkeypatch.setenv("BLOCKWORK_MAX_DESIGN_CHARS", "100")
    with pytest.raises(DesignError, match="over the limit of 100"):
        Design.from_json(load_example("tied").to_json())


def test_layer_count_and_depth_limits(monkeypatch) -> None:
    many = {"format": 1, "input": {"shape": [1, 4]}, "layers": [{"type": "ReLU"}] * 50}
    monkeypatch.setenv("BLOCKWORK_MAX_LAYERS", "40")
    with pytest.raises(DesignError, match=r"layers\[40\].*more than 40 layers"):
        Design.from_dict(many)
    deep: dict = {"type": "ReLU"}
    for _ in range(30):
        deep = {"type": "Sequential", "layers": [deep]}
    with pytest.raises(DesignError, match="nest more than 20 deep"):
        Design.from_dict({"format": 1, "input": {"shape": [1, 4]}, "layers": [deep]})


def test_defaults_are_not_written_back() -> None:
    d = Design.from_dict(
        {"format": 1, "input": {"shape": [2, 4]}, "layers": [{"type": "Linear", "in_features": 4, "out_features": 2}]}
    )
    assert json.loads(d.to_json())["layers"] == [{"type": "Linear", "in_features": 4, "out_features": 2}]
