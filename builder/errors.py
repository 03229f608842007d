"""The two errors builder raises for bad input. Both are ValueErrors, so callers can catch either."""

from __future__ import annotations


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
