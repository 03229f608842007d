"""The Design page's undo/redo: an immutable history of designs (not a training run's history, which is
`builder.training.TrainingHistory`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .design import Design
from .errors import DesignError

__all__ = ["UndoHistory"]


@dataclass(frozen=True)
class UndoHistory:
    """An immutable undo/redo history of designs: `present` is the one being edited.

    `push` records an edit (and forgets what could be redone, as editors do); `undo`/`redo` step through.
    At most `limit` past designs are kept (the oldest are forgotten first).
    """

    present: Design
    past: tuple[Design, ...] = ()
    future: tuple[Design, ...] = ()
    limit: int = 200

    @property
    def can_undo(self) -> bool:
        return bool(self.past)

    @property
    def can_redo(self) -> bool:
        return bool(self.future)

    def push(self, design: Design) -> UndoHistory:
        """Make `design` the present; an edit that changes nothing is not recorded."""
        if design == self.present:
            return self
        past = (*self.past, self.present)[-self.limit :]
        return replace(self, present=design, past=past, future=())

    def undo(self) -> UndoHistory:
        if not self.past:
            raise DesignError("nothing to undo")
        return replace(self, present=self.past[-1], past=self.past[:-1], future=(self.present, *self.future))

    def redo(self) -> UndoHistory:
        if not self.future:
            raise DesignError("nothing to redo")
        return replace(self, present=self.future[0], past=(*self.past, self.present), future=self.future[1:])
