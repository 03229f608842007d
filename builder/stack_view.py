"""The Design page's stack as rows to draw: blocks folded unless opened, long stacks cut into pages.

A design of 500 layers cannot be drawn as 500 rows of widgets (Streamlit's cost is per widget), so the page
draws `rows(design, unfolded)` — every node whose enclosing blocks are all open — one page of `PAGE_SIZE`
at a time. A block is one row (type, layers inside, output shape, parameters) until it is unfolded.
Pure functions of the design and the set of open blocks; nothing here knows Streamlit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

from .addressing import Path
from .design import Block, Design, Node, child_key

__all__ = [
    "PAGE_SIZE",
    "StackRow",
    "after_delete",
    "after_group",
    "after_insert",
    "after_move",
    "after_removals",
    "after_ungroup",
    "ancestors",
    "layer_count",
    "near",
    "page_count",
    "page_of",
    "moved",
    "reindexed",
    "rows",
]

PAGE_SIZE = 20  # rows drawn at once: the page costs ~1 ms per row (docs/performance.md, UI rerun)


@dataclass(frozen=True)
class StackRow:
    """One row of the stack: the node at `path` (module key `key`, design path `dpath`)."""

    path: Path
    node: Node
    key: str  # module key, e.g. "0.net.1" (the state_dict prefix)
    dpath: str  # design path, e.g. "layers[0].layers[1]" (DryRun.layers' `path`)
    folded: bool  # a block drawn closed: its children are not rows

    @property
    def depth(self) -> int:
        return len(self.path) - 1


def rows(design: Design, unfolded: Collection[Path]) -> list[StackRow]:
    """The rows of the stack in forward order: every node, except the children of a block not in
    `unfolded` (a block's row stands for them). Uses of a shared block have no children rows."""
    return list(_rows(design.layers, (), "", "", unfolded))


def _rows(
    nodes: Sequence[Node], prefix: Path, kprefix: str, dprefix: str, unfolded: Collection[Path]
) -> Iterator[StackRow]:
    for i, node in enumerate(nodes):
        path, key, dpath = (*prefix, i), kprefix + child_key(node, i), f"{dprefix}layers[{i}]"
        is_block = isinstance(node, Block)
        folded = is_block and path not in unfolded
        yield StackRow(path, node, key, dpath, folded)
        if is_block and not folded:
            assert isinstance(node, Block)
            yield from _rows(node.layers, path, key + ".", dpath + ".", unfolded)


def layer_count(block: Block) -> int:
    """The nodes inside a block, nested blocks' own nodes included (a use counts once)."""
    return sum(1 + (layer_count(n) if isinstance(n, Block) else 0) for n in block.layers)


def ancestors(path: Path) -> list[Path]:
    """The blocks that hold `path`, outermost first: (2, 0, 1) -> [(2,), (2, 0)]."""
    return [path[:i] for i in range(1, len(path))]


def page_count(n_rows: int, size: int = PAGE_SIZE) -> int:
    """Pages of `size` rows (at least one, also for an empty stack)."""
    return max(1, -(-n_rows // size))


def page_of(drawn: Sequence[StackRow], path: Path, size: int = PAGE_SIZE) -> int | None:
    """The page that shows `path`, or the row of its innermost folded block; None when neither is a row."""
    index = {r.path: i for i, r in enumerate(drawn)}
    for p in [path, *reversed(ancestors(path))]:
        if p in index:
            return index[p] // size
    return None


def reindexed(opened: Collection[Path], parent: Path, new_index: Callable[[int], int | None]) -> frozenset[Path]:
    """The open blocks after the children of `parent` were reordered, inserted or removed: child i is now
    child `new_index(i)` (None: it is gone, and the blocks inside it with it)."""
    out = set()
    n = len(parent)
    for p in opened:
        if len(p) > n and p[:n] == parent:
            j = new_index(p[n])
            if j is None:
                continue
            p = (*parent, j, *p[n + 1 :])
        out.add(p)
    return frozenset(out)


def after_move(i: int, j: int) -> Callable[[int], int | None]:
    """Child indices after the child at i moved to j."""
    order = list(range(max(i, j) + 1))
    order.insert(j, order.pop(i))
    new = {old: new for new, old in enumerate(order)}
    return lambda k: new.get(k, k)


def after_insert(i: int) -> Callable[[int], int | None]:
    """Child indices after a node was inserted at i."""
    return lambda k: k + 1 if k >= i else k


def after_delete(i: int) -> Callable[[int], int | None]:
    """Child indices after the child at i was removed."""
    return lambda k: None if k == i else (k - 1 if k > i else k)


def after_removals(before: Sequence[Node], after: Sequence[Node]) -> Callable[[int], int | None]:
    """Child indices after some children were removed (a flow step or branch removed with the layers only it
    called): `after` is `before` less some children, the others unchanged and in order. An unnamed child's
    removal re-keys the children after it, not the nodes themselves, so they are matched by value."""
    new: dict[int, int] = {}
    j = 0
    for i, node in enumerate(before):
        if j < len(after) and after[j] == node:
            new[i] = j
            j += 1
    return new.get


def moved(opened: Collection[Path], where: Callable[[Path], Path | None]) -> frozenset[Path]:
    """The open blocks after an edit that moved whole subtrees: each path's new place (None: gone)."""
    return frozenset(q for q in map(where, opened) if q is not None)


def after_group(parent: Path, start: int, stop: int) -> Callable[[Path], Path | None]:
    """Where a path goes when the children start..stop-1 of `parent` are wrapped into one block at `start`
    (group, residual, branches): the wrapped ones go inside it, the later ones move up."""
    n = len(parent)

    def where(p: Path) -> Path | None:
        if len(p) <= n or p[:n] != parent or p[n] < start:
            return p
        if p[n] < stop:
            return (*parent, start, p[n] - start, *p[n + 1 :])
        return (*parent, p[n] - (stop - start) + 1, *p[n + 1 :])

    return where


def after_ungroup(path: Path, count: int) -> Callable[[Path], Path | None]:
    """Where a path goes when the block at `path`, of `count` children, is replaced by them (ungroup): its
    own place is gone, what was inside it moves out a level, the later siblings move down."""
    parent, i, n = path[:-1], path[-1], len(path) - 1

    def where(p: Path) -> Path | None:
        if len(p) <= n or p[:n] != parent or p[n] < i:
            return p
        if p == path:
            return None
        if p[n] == i:
            return (*parent, i + p[n + 1], *p[n + 2 :])
        return (*parent, p[n] + count - 1, *p[n + 1 :])

    return where


def near(shown: Sequence[StackRow], path: Path | None, k: int = 2) -> list[str]:
    """Module keys of the rows around `path` (k before and after it; the row of its innermost folded block
    stands for it), or of the first 2k + 1 rows when it is None or not among `shown`: what a preview of a big
    design draws one by one (a graph of 20 rows and their links costs the browser seconds to lay out)."""
    index = {r.path: i for i, r in enumerate(shown)}
    at = next((index[p] for p in ([path, *reversed(ancestors(path))] if path else []) if p in index), None)
    lo = 0 if at is None else max(0, at - k)
    return [r.key for r in shown[lo : lo + 2 * k + 1]]
