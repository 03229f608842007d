"""Limits live in one place (builder.limits), are changed by environment variables, and say which one."""

from __future__ import annotations

import pytest

from builder import DesignError, dry_run, limits, load_example
from builder.limits import _DEFAULTS

from .conftest import ROOT


def test_every_limit_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in _DEFAULTS:
        assert f"`{name}`" in readme, name


def test_environment_overrides_and_bad_values(monkeypatch) -> None:
    monkeypatch.setenv("BLOCKWORK_MAX_LAYERS", "1_000")
    assert limits().max_layers == 1000
    monkeypatch.setenv("BLOCKWORK_MAX_LAYERS", "many")
    with pytest.raises(ValueError, match="BLOCKWORK_MAX_LAYERS must be a whole number, got 'many'"):
        limits()
    monkeypatch.setenv("BLOCKWORK_MAX_LAYERS", "0")
    with pytest.raises(ValueError, match="must be positive"):
        limits()


def test_vgg11_opens_at_the_default_limits_and_the_old_one_refused_it(monkeypatch) -> None:
    """The chapter-8 network the old 50 M budget refused: VGG-11 at 224 x 224 (128.8 M parameters) dry-runs at
    the default limits (tests/test_chapter8.py builds it against the book's code); 50 M refuses it on meta."""
    for name in _DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    design = load_example("vgg11")
    assert dry_run(design).parameters == 128_806_154 <= limits().max_params
    monkeypatch.setenv("BLOCKWORK_MAX_PARAMS", "50000000")  # the old default: refused on meta, naming the head
    with pytest.raises(
        DesignError, match=r"128,806,154 parameters, over the budget of 50,000,000.*layers\[6\] LazyLinear"
    ):
        dry_run(design)
