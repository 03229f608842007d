"""The network's diagram as DOT text (wrapped in a graphviz.Digraph), from input to output.

Walking the design and drawing are separate: `graph` only emits DOT (rendering is the caller's choice:
st.graphviz_chart, Jupyter, or `.pipe()` where a `dot` binary exists). The DOT text is written here directly
(the graphviz package's per-attribute quoting cost more than the walk), then handed to a Digraph as its body,
so callers keep the Digraph they always had. Node ids come from module keys, so the DOT of a design is
deterministic and can be compared in tests.

How things are shown
- a layer: its position or name, type, main arguments and output shape, filled by category;
- a nested block: a cluster labelled with its key, or, deeper than `depth`, one collapsed node (a 3-D box)
  with its layer count, parameter total and output shape;
- a lazy layer: dashed outline; its torch-inferred size shown once the dry run has run, "?" before;
- a shared layer: every use filled in the shared layer's own colour, and dashed links from one
  "weights" node, so the eye sees one set of weights used at several places;
- a layer the dry run rejects: red, with the reason, and no shapes after it (a collapsed block holding it: red).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import graphviz

from .build import DryRun, LayerRun, dry_run
from .design import Block, Design, Layer, Node, Use, child_key
from .errors import DesignError
from .registry import REGISTRY

_CATEGORY_FILL = {
    "Linear": "#dbeafe",
    "Convolution": "#fde7c8",
    "Pooling": "#fef3c7",
    "Normalization": "#e0e7ff",
    "Regularization": "#f1f5f9",
    "Shape": "#f1f5f9",
    "Activation": "#dcfce7",
    "Custom": "#f3e8ff",
    "Recurrent": "#ccfbf1",
    "Attention": "#fce7f3",
}
_BLOCK_FILL = "#e2e8f0"  # a collapsed block
# Distinct, colour-blind-friendly hues for shared layers (Okabe–Ito), light fill + strong outline.
_SHARED = [
    ("#e69f00", "#fff1d6"),
    ("#0072b2", "#d6ecfa"),
    ("#cc79a7", "#f9e3ef"),
    ("#009e73", "#d3f2e8"),
    ("#d55e00", "#fde1d0"),
    ("#56b4e9", "#e0f2fc"),
]
_FONT = "Helvetica"
_HEAD = (
    f"\tfontname={_FONT} newrank=true nodesep=0.25 rankdir=TB ranksep=0.3\n"
    f'\tnode [color="#475569" fontname={_FONT} fontsize=11 margin="0.15,0.05" shape=box style="rounded,filled"]\n'
    f'\tedge [arrowsize=0.7 color="#64748b" fontname={_FONT} fontsize=9]\n'
)
_CLUSTER_ATTRS = f"fontname={_FONT} fontsize=11 labeljust=l"


def shared_colors(design: Design) -> dict[str, tuple[str, str]]:
    """(outline, fill) colour of each shared layer, by name; the same in every view."""
    return {name: _SHARED[i % len(_SHARED)] for i, name in enumerate(design.shared)}


def brief(layer: Layer, inferred: dict[str, int] | None = None) -> str:
    """The main arguments in a few characters, e.g. "20 → 256" or "? → 256" for a lazy layer not yet run."""
    lt = REGISTRY[layer.type]
    if not lt.brief:
        return ""
    # The arguments as given, defaults filled in (the design was validated when it was read or edited).
    given = layer.args
    values: dict[str, Any] = {a.name: _short(given.get(a.name, a.default)) for a in lt.args}
    if lt.infers:
        values[lt.infers] = str(inferred[lt.infers]) if inferred and lt.infers in inferred else "?"
    return lt.brief.format(**values)


def _short(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "×".join(map(str, value))
    return str(value)


def _shape(shape: tuple[int, ...]) -> str:
    return str(shape) if len(shape) != 1 else f"({shape[0]})"


def _q(text: str) -> str:
    """A DOT string: quotes and backslashes escaped (so a name like "a\\N" is shown, not expanded)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- blocks and depth ---------------------------------------------------------------------------------------


def blocks(design: Design) -> list[tuple[str, int]]:
    """Every block of the design as (module key, depth), in forward order; depth 0 is a top-level block.
    These are what `graph(..., expand=...)` takes, and what a page offers to expand."""
    out: list[tuple[str, int]] = []

    def visit(nodes: tuple[Node, ...], prefix: str, depth: int) -> None:
        for i, node in enumerate(nodes):
            inner = _resolve(design, node)
            if isinstance(inner, Block):
                key = prefix + child_key(node, i)
                out.append((key, depth))
                visit(inner.layers, key + ".", depth + 1)

    visit(design.layers, "", 0)
    return out


def node_count(design: Design, depth: int | None = None, expand: Iterable[str] = ()) -> int:
    """How many layer and block nodes `graph(design, depth=depth, expand=expand)` draws (input, output and
    weights nodes not counted)."""
    open_ = _expanded(expand)
    count = 0

    def visit(nodes: tuple[Node, ...], prefix: str, level: int) -> None:
        nonlocal count
        for i, node in enumerate(nodes):
            inner, key = _resolve(design, node), prefix + child_key(node, i)
            if isinstance(inner, Block) and _opens(key, level, depth, open_):
                visit(inner.layers, key + ".", level + 1)
            else:
                count += 1

    visit(design.layers, "", 0)
    return count


def fitting_depth(design: Design, max_nodes: int = 60) -> int | None:
    """The deepest `depth` whose graph draws at most `max_nodes` nodes (at least 1); None when the whole
    design fits (nothing to collapse). What a page shows first, so a 500-layer design opens readable."""
    levels = max((d for _, d in blocks(design)), default=-1) + 2  # depth that opens every block
    if node_count(design) <= max_nodes:
        return None
    for depth in range(levels - 1, 0, -1):
        if node_count(design, depth) <= max_nodes:
            return depth
    return 1


def _resolve(design: Design, node: Node) -> Layer | Block:
    return design.shared[node.shared] if isinstance(node, Use) else node


def _expanded(keys: Iterable[str]) -> frozenset[str]:
    """The blocks to open: the ones asked for and every block around them (else they would not show)."""
    out: set[str] = set()
    for key in keys:
        parts = key.split(".")
        out.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return frozenset(out)


def _opens(key: str, level: int, depth: int | None, expanded: Collection[str]) -> bool:
    """Whether the block at `key` (at `level`, 0 = top level) is drawn open, its children inside."""
    return depth is None or level + 1 < depth or key in expanded


# -- the drawing --------------------------------------------------------------------------------------------


def graph(
    design: Design, inferred: bool | DryRun = True, *, depth: int | None = None, expand: Iterable[str] = ()
) -> graphviz.Digraph:
    """Draw `design` from input to output.

    inferred: True runs the dry run (meta device) to show output shapes and lazy sizes; False draws the
    design as written, lazy layers pending (as before torch's first forward); a DryRun uses that one.
    depth: like torchview's — layers and blocks up to that depth are drawn (1: the top level only), blocks
    at the last level collapsed into one node with their totals and output shape; None draws everything.
    expand: module keys of blocks to draw open whatever the depth (their enclosing blocks open with them).
    A design the dry run rejects is still drawn, with the layer at fault in red.
    """
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise ValueError(f"depth must be a whole number ≥ 1 (1: the top level only) or None, got {depth!r}")
    run: DryRun | None = None
    error: DesignError | None = None
    if isinstance(inferred, DryRun):
        run = inferred
    elif inferred:
        try:
            run = dry_run(design)
        except DesignError as e:
            error = e
    g = graphviz.Digraph(name=design.name or "design")
    g.body = _Drawing(design, run, error, depth, _expanded(expand)).draw()
    return g


class _Drawing:
    def __init__(
        self,
        design: Design,
        run: DryRun | None,
        error: DesignError | None,
        depth: int | None,
        expanded: frozenset[str],
    ) -> None:
        self.design = design
        self.runs: dict[str, LayerRun] = run.by_key() if run else {}
        self.run = run
        self.error = error
        self.depth = depth
        self.expanded = expanded
        self.colors = shared_colors(design)
        self.uses: dict[str, list[str]] = {}  # shared name -> the node id drawn for each use
        self.ids: set[str] = {"input", "output"}
        self.out: list[str] = []  # node and cluster lines, in drawing order
        self.edges: list[str] = []
        self.failed = False

    def draw(self) -> list[str]:
        d = self.design
        out = self.out
        out.append(_HEAD)
        dtype = "" if d.input_dtype == "float32" else f" {d.input_dtype}"
        label = f"input\n{_shape(d.input_shape)}{dtype}"
        out.append(f'\tinput [label={_q(label)} fillcolor="#ffffff" shape=oval]\n')
        last = self.nodes(d.layers, "", "layers", None, "input", 0, "\t")
        label = f"output\n{_shape(self.run.output_shape)}" if self.run else "output"
        out.append(f'\toutput [label={_q(label)} fillcolor="#ffffff" shape=oval]\n')
        self.edge(last, "output")
        for name, ids in self.uses.items():
            self.weights_node(name, ids)
        out.extend(self.edges)
        return out

    def edge(self, a: str, b: str, attrs: str = "") -> None:
        self.edges.append(f"\t{a} -> {b}{f' [{attrs}]' if attrs else ''}\n")

    def node_id(self, key: str) -> str:
        """A DOT id for a module key: "n_" + the key with "." as "_" (other characters too), made unique."""
        base = "n_" + key.replace(".", "_")
        if not (base.isascii() and base.isidentifier()):  # names may hold spaces and more since format 2
            base = "n_" + "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in key)
        node_id, n = base, 2
        while node_id in self.ids:
            node_id, n = f"{base}__{n}", n + 1
        self.ids.add(node_id)
        return node_id

    def nodes(
        self, nodes: tuple[Node, ...], prefix: str, path: str, shared: str | None, entry: str, level: int, tab: str
    ) -> str:
        """Draw `nodes` in order, chaining edges from `entry`; return the id of the last node drawn."""
        for i, node in enumerate(nodes):
            entry = self.node(node, prefix + child_key(node, i), f"{path}[{i}]", shared, entry, level, tab)
        return entry

    def node(self, node: Node, key: str, path: str, shared: str | None, entry: str, level: int, tab: str) -> str:
        if isinstance(node, Use):
            inner = self.design.shared[node.shared]
            first = len(self.out)
            last = self.node(inner, key, path, node.shared, entry, level, tab)
            self.uses.setdefault(node.shared, []).append(self.first_node(first) or last)
            return last
        if isinstance(node, Block):
            # Inside a shared block, design paths are the shared definition's (as the dry run reports them).
            sub = f"shared.{shared}.layers" if shared and path.startswith("layers") else f"{path}.layers"
            if not _opens(key, level, self.depth, self.expanded):
                return self.collapsed(node, key, path, sub, shared, entry)
            title = key.rpartition(".")[2]
            label = f"{title} · Sequential" + (f" · shared '{shared}'" if shared else "")
            outline = self.colors[shared][0] if shared else "#94a3b8"
            style = "rounded,bold" if shared else "rounded,dashed"
            self.out.append(f"{tab}subgraph cluster_{self.node_id(key)} {{\n")
            self.out.append(f'{tab}\tcolor="{outline}" {_CLUSTER_ATTRS} label={_q(label)} style="{style}"\n')
            last = self.nodes(node.layers, key + ".", sub, shared, entry, level + 1, tab + "\t")
            self.out.append(f"{tab}}}\n")
            return last
        return self.leaf(node, key, path, shared, entry, tab)

    def first_node(self, start: int) -> str | None:
        """The id of the first node line written since out[start] (a use's first layer)."""
        for line in self.out[start:]:
            head = line.lstrip("\t")
            if not head.startswith("subgraph") and " [label=" in head:
                return head.split(" ", 1)[0]
        return None

    def at_fault(self, path: str, inside: str | None = None) -> bool:
        """Whether the dry run's error names this node (or, for a collapsed block, anything inside it)."""
        if self.error is None or self.failed or not self.error.path:
            return False
        p = self.error.path
        hit = _at(p, path) or (inside is not None and _at(p, inside))
        self.failed = hit
        return hit

    def leaf(self, layer: Layer, key: str, path: str, shared: str | None, entry: str, tab: str) -> str:
        lt = REGISTRY[layer.type]
        run = self.runs.get(key)
        lines = [f"{key.rpartition('.')[2]} · {layer.type}"]
        main = brief(layer, dict(run.inferred) if run else None)
        if main:
            lines.append(main)
        color = fill = penwidth = fontcolor = tooltip = ""
        fill = _CATEGORY_FILL.get(lt.category, "#ffffff")
        style = ""
        if lt.is_lazy:
            style = "rounded,filled,dashed"
            lines.append("lazy: inferred" if run else "lazy: size pending")
        if shared:
            color, fill = self.colors[shared]
            penwidth = "2.5"
            lines.append(f"shared '{shared}'")
        if run:
            lines.append(f"→ {_shape(run.output_shape)}")
        elif self.at_fault(path):
            color, fill, penwidth, fontcolor = "#dc2626", "#fee2e2", "2.5", "#991b1b"
            lines.append("✗ does not fit — see message")
            tooltip = str(self.error)
        return self.emit(key, "\n".join(lines), entry, tab, color, fill, penwidth, fontcolor, style, tooltip)

    def collapsed(self, block: Block, key: str, path: str, sub: str, shared: str | None, entry: str) -> str:
        """One node for a whole block: its type, what it holds, its parameter total and output shape."""
        run = self.runs.get(key)
        layers, inner = _count(self.design, block)
        held = f"{layers} layer{'s' if layers != 1 else ''}" + (
            f" in {inner} block{'s' if inner != 1 else ''}" if inner else ""
        )
        lines = [f"{key.rpartition('.')[2]} · Sequential", held]
        color, fill, penwidth, fontcolor, tooltip = "", _BLOCK_FILL, "", "", f"{key}: collapsed ({held})"
        if shared:
            color, fill = self.colors[shared]
            penwidth = "2.5"
            lines.append(f"shared '{shared}'")
        if run:
            lines.append(f"{run.parameters:,} parameters")
            lines.append(f"→ {_shape(run.output_shape)}")
        elif self.at_fault(path, sub):
            color, fill, penwidth, fontcolor = "#dc2626", "#fee2e2", "2.5", "#991b1b"
            lines.append("✗ does not fit — see message")
            tooltip = str(self.error)
        node_id = self.emit(key, "\n".join(lines), entry, "\t", color, fill, penwidth, fontcolor, "filled", tooltip, 1)
        for name in _uses_inside(block):  # a shared layer used inside: its weights link to the whole block
            self.uses.setdefault(name, []).append(node_id)
        return node_id

    def emit(
        self,
        key: str,
        label: str,
        entry: str,
        tab: str,
        color: str,
        fill: str,
        penwidth: str,
        fontcolor: str,
        style: str,
        tooltip: str,
        box3d: int = 0,
    ) -> str:
        node_id = self.node_id(key)
        attrs = f"label={_q(label)}"
        if color:
            attrs += f' color="{color}"'
        attrs += f' fillcolor="{fill}"'
        if fontcolor:
            attrs += f' fontcolor="{fontcolor}"'
        if penwidth:
            attrs += f" penwidth={penwidth}"
        if box3d:
            attrs += " shape=box3d"
        if style:
            attrs += f' style="{style}"'
        if tooltip:
            attrs += f" tooltip={_q(tooltip)}"
        self.out.append(f"{tab}{node_id} [{attrs}]\n")
        self.edge(entry, node_id)
        return node_id

    def weights_node(self, name: str, targets: list[str]) -> None:
        outline, fill = self.colors[name]
        spec = self.design.shared[name]
        kind = spec.type if isinstance(spec, Layer) else "Sequential"
        label = f"shared weights '{name}'\n{kind}"
        if self.runs:
            label += f"\n{_own_parameters(self.runs, name):,} parameters"
        label += f"\nused {len(targets)}×"
        self.out.append(
            f'\tweights_{name} [label={_q(label)} color="{outline}" fillcolor="{fill}" penwidth=2 shape=cylinder '
            f'style="filled,bold"]\n'
        )
        for target in dict.fromkeys(targets):  # a collapsed block holding two uses: one link
            self.edge(
                f"weights_{name}",
                target,
                f'arrowhead=none color="{outline}" constraint=false penwidth=1.5 style=dashed',
            )


def _own_parameters(runs: dict[str, LayerRun], name: str) -> int:
    """Parameters of the shared layer `name` itself: those of its outermost use."""
    for run in runs.values():
        if run.shared == name:
            return run.parameters
    return 0


def _count(design: Design, block: Block) -> tuple[int, int]:
    """(layers, blocks) inside a block, shared ones included at each use."""
    layers = blocks_ = 0
    for node in block.layers:
        inner = _resolve(design, node)
        if isinstance(inner, Block):
            a, b = _count(design, inner)
            layers, blocks_ = layers + a, blocks_ + b + 1
        else:
            layers += 1
    return layers, blocks_


def _uses_inside(block: Block) -> list[str]:
    """The shared layer of every use inside a block, one entry per use."""
    out: list[str] = []
    for node in block.layers:
        if isinstance(node, Use):
            out.append(node.shared)
        elif isinstance(node, Block):
            out += _uses_inside(node)
    return out


def _at(error_path: str, path: str) -> bool:
    """Whether an error's design path points at this node (or at one of its arguments)."""
    return error_path == path or error_path.startswith(path + ".")
