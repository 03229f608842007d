"""Python source of Blockwork's own functions and classes, and parsing of Python text, safe across a server's
threads.

    source_of(Dataset)              # inspect.getsource, once per object per process
    parse(text)                     # ast.parse(text), under the same lock

CPython 3.11 counts the depth of the AST objects it builds in one counter for all threads (gh-106905): when two
sessions parse at once — `inspect.getsource` of a class parses its whole module, a pasted script is parsed on
import — a garbage collection inside one parse can let the other thread run, and one of them fails with
"SystemError: AST constructor recursion depth mismatch". In a class pressing Train at once that was a traceback
on a student's Train page (the training bundle copies builder.data's classes). Every parse of Blockwork goes
through here, one at a time; sources are cached, as the code does not change while the server runs.
"""

from __future__ import annotations

import ast
import inspect
import threading
from typing import Any

_PARSING = threading.Lock()  # one AST construction at a time in this process


_SOURCES: dict[Any, str] = {}  # function or class -> its source


def source_of(obj: Any) -> str:
    """`inspect.getsource(obj)` of a module-level function or class, computed once (under the parse lock)."""
    with _PARSING:
        if obj not in _SOURCES:
            _SOURCES[obj] = inspect.getsource(obj)
        return _SOURCES[obj]


def parse(source: str) -> ast.Module:
    """`ast.parse(source, mode="exec")`, one thread at a time (see the module docstring); raises what it raises."""
    with _PARSING:
        return ast.parse(source, mode="exec")
