"""Limits live in one place (builder.limits), are changed by environment variables, and say which one."""

from __future__ import annotations

import pytest

from builder import limits
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
