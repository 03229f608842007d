"""The JSON Schema file: generated from the registry, kept in step, and agreeing with the parser."""

from __future__ import annotations

import json

import jsonschema
import pytest

from builder import REGISTRY, Design, DesignError, example_names, load_example
from builder.schema import json_schema

from .conftest import ROOT

SCHEMA_FILE = ROOT / "docs" / "design.schema.json"


def test_schema_file_is_up_to_date() -> None:
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema(), (
        "regenerate: python -m builder.schema > docs/design.schema.json"
    )


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


@pytest.mark.parametrize("name", example_names())
def test_examples_validate(name: str) -> None:
    jsonschema.validate(load_example(name).to_dict(), json_schema())


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "Relu"},
        {"type": "Linear", "in_features": 0, "out_features": 3},
        {"type": "Linear", "in_features": 2},
        {"type": "Linear", "in_features": 2, "out_features": 3, "units": 1},
        {"type": "Dropout", "p": 2},
        {"type": "Sequential", "layers": []},
        {"shared": "x", "type": "ReLU"},
    ],
)
def test_schema_and_parser_refuse_the_same_layers(bad: dict) -> None:
    doc = {"format": 1, "input": {"shape": [2, 2]}, "shared": {"x": {"type": "ReLU"}}, "layers": [bad]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json_schema())
    with pytest.raises(DesignError):
        Design.from_dict(doc)


@pytest.mark.parametrize(
    "doc",
    [
        {"seed": 3, "init": "xavier_uniform"},
        {"init": {"method": "normal", "std": 0.5, "bias": "default"}},
        {"layers": [{"type": "Linear", "in_features": 2, "out_features": 2, "init": "my_init"}]},
        {
            "layers": [
                {
                    "type": "Sequential",
                    "init": {"method": "kaiming_normal", "mode": "fan_out"},
                    "layers": [{"type": "LazyLinear", "out_features": 2}],
                }
            ]
        },
    ],
)
def test_init_and_seed_validate(doc: dict) -> None:
    full = {"format": 1, "input": {"shape": [2, 2]}, "layers": [{"type": "ReLU"}], **doc}
    Design.from_dict(full)
    jsonschema.validate(full, json_schema())


@pytest.mark.parametrize(
    "doc",
    [
        {"seed": -1},
        {"init": "uniform"},
        {"init": {"method": "normal", "sigma": 1}},
        {"layers": [{"type": "ReLU", "init": "zeros"}]},
    ],
)
def test_bad_init_and_seed_are_refused_by_both(doc: dict) -> None:
    full = {"format": 1, "input": {"shape": [2, 2]}, "layers": [{"type": "ReLU"}], **doc}
    with pytest.raises(DesignError):
        Design.from_dict(full)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(full, json_schema())


def test_format_doc_lists_every_layer_type() -> None:
    text = (ROOT / "docs" / "design-format.md").read_text()
    for name in REGISTRY:
        assert f"| `{name}` |" in text, name
