"""The example designs shipped in the repository's examples/ folder."""

from __future__ import annotations

import functools
from pathlib import Path

from .design import Design

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"

# Examples whose networks take seconds and hundreds of MB to build (AlexNet 46.8 M parameters, VGG-11 128.8 M, at
# the book's 224 x 224): offered like any other, but code that builds or exports every example (a test suite)
# may leave them out with example_names(heavy=False).
HEAVY = frozenset({"alexnet", "vgg11"})


def example_names(heavy: bool = True) -> list[str]:
    """Names of the shipped examples (file stems), the chapter's first and then alphabetical; heavy=False:
    without the HEAVY ones."""
    first = ["sequential_mlp", "custom_mlp", "tied", "lazy_mlp", "my_linear", "nested"]
    names = sorted(p.stem for p in EXAMPLES_DIR.glob("*.json") if heavy or p.stem not in HEAVY)
    return [n for n in first if n in names] + [n for n in names if n not in first]


def load_example(name: str) -> Design:
    """The example design `name` (e.g. "tied")."""
    if name not in example_names():
        raise KeyError(f"no example named {name!r}; examples: {', '.join(example_names())}")
    return Design.from_json((EXAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=64)
def _example_text(name: str) -> str:
    return (EXAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8")


def matching_example(design: Design) -> str | None:
    """The name of the shipped example `design` is, unchanged; None for any other design (an edited example
    keeps its name, so the name alone does not tell). For pickers that must show the truth."""
    if design.name not in example_names():
        return None
    return design.name if design == _example_design(design.name) else None


@functools.lru_cache(maxsize=64)
def _example_design(name: str) -> Design:
    """The example as read, for comparisons only (never handed out: callers of load_example get their own)."""
    return Design.from_json(_example_text(name))
