"""The two errors builder raises for bad input. Both are ValueErrors, so callers can catch either."""

from __future__ import annotations

from typing import Any


class DesignError(ValueError):
    """A design that cannot be read or built.

    `path` points at the part of the design at fault (e.g. ``"layers[3].out_features"``), so an editor can
    highlight it; it is ``None`` when the fault is the whole document (broken JSON, over budget).
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class ParamsError(ValueError):
    """A weights file that is unsafe, corrupt or does not fit the network. The network is left untouched."""


def json_kind(value: Any) -> str:
    """What a JSON value is, as an error message says it: "an object", "a list", "null"…"""
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def first_line(e: BaseException, limit: int = 300) -> str:
    """An exception's message as one line a person can read beside a layer: its first line, at most
    `limit` characters (torch's messages can span many lines); the exception's class name when empty."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
