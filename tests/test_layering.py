"""The import graph runs one way: pages -> ui -> builder -> torch. builder is a library (no Streamlit, no app
modules, no circle among its own modules), pages import no torch and stay small, each with a main()."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

PAGE_LINE_BUDGET = 200


def runtime_imports(path: Path) -> set[str]:
    """The top-level package or module names `path` imports when it runs (imports under
    `if TYPE_CHECKING:` are for annotations only and are left out); relative imports as ".name"."""
    tree = ast.parse(path.read_text(), str(path))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found |= {"." * node.level + (node.module or alias.name) for alias in node.names}
            else:
                found.add(node.module or "")
    return found


def top(name: str) -> str:
    return name.split(".")[0]


BUILDER = sorted((ROOT / "builder").rglob("*.py"))
UI = sorted((ROOT / "ui").glob("*.py"))
PAGES = sorted((ROOT / "pages").glob("*.py"))


@pytest.mark.parametrize("path", BUILDER, ids=lambda p: str(p.relative_to(ROOT)))
def test_builder_imports_no_streamlit_ui_or_pages(path: Path) -> None:
    bad = {n for n in runtime_imports(path) if top(n) in ("streamlit", "ui", "pages", "app")}
    assert not bad, f"{path.name} imports {bad}: builder is a library the app uses, not the other way round"


@pytest.mark.parametrize("path", UI, ids=lambda p: p.name)
def test_ui_imports_neither_pages_nor_torch(path: Path) -> None:
    bad = {n for n in runtime_imports(path) if top(n) in ("pages", "app", "torch")}
    assert not bad, f"ui/{path.name} imports {bad}: tensor work belongs in builder"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_are_thin(path: Path) -> None:
    names = {top(n) for n in runtime_imports(path)}
    assert not names & {"torch", "plotly", "numpy", "pandas"}, f"{path.name} imports {names}: logic goes in builder"
    lines = len(path.read_text().splitlines())
    assert lines <= PAGE_LINE_BUDGET, f"{path.name} has {lines} lines; move parts into ui/ components or builder"
    tree = ast.parse(path.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body), f"{path.name}: no main()"
    calls = [n for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)]
    assert [ast.unparse(c) for c in calls] == ["main()"], f"{path.name}: the page runs main() and nothing else"


def test_every_page_is_in_the_navigation_and_every_entry_has_a_file() -> None:
    from ui.navigation import PAGES as NAVIGATION

    assert sorted(ROOT / p.file for p in NAVIGATION.values()) == PAGES


def test_builder_modules_import_each_other_without_a_circle() -> None:
    graph: dict[str, set[str]] = {}
    for path in BUILDER:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for name in runtime_imports(path):
            if name.startswith("."):
                level = len(name) - len(name.lstrip("."))
                base = package.rsplit(".", level - 1)[0] if level > 1 else package
                name = f"{base}.{name.lstrip('.')}"
            if name.startswith("builder"):
                targets.add(name)
        graph[module] = targets
    graph = {m: {t for t in ts if t in graph and t != m} for m, ts in graph.items()}

    def visit(m: str, stack: list[str]) -> None:
        if m in stack:
            raise AssertionError("import circle: " + " -> ".join([*stack[stack.index(m) :], m]))
        for t in sorted(graph[m]):
            visit(t, [*stack, m])

    for m in graph:
        if m != "builder":  # the package re-exports its modules: importing from it is not a cycle of theirs
            graph[m].discard("builder")
    for m in sorted(graph):
        if m != "builder":
            visit(m, [])
