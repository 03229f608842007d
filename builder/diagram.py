"""The network's diagram as DOT text (wrapped in a graphviz.Digraph), from input to output.

Walking the design and drawing are separate: `graph` only emits DOT (rendering is the caller's choice:
st.graphviz_chart, Jupyter, or `.pipe()` where a `dot` binary exists). The DOT text is written here directly
(the graphviz package's per-attribute quoting cost more than the walk), then handed to a Digraph as its body,
so callers keep the Digraph they always had. Node ids come from module keys, so the DOT of a design is
deterministic and can be compared in tests.

How things are shown
- a layer: its position or name, type, main arguments and output shape, filled by category;
- a nested block: a cluster labelled with its key and class, or, deeper than `depth`, one collapsed node
  (a 3-D box) with its layer count, parameter total and output shape;
- a block with a flow (builder.flow): its steps in order; parallel branches side by side, joined by a merge
  node that says what it does ("+", "cat dim=1") and its output shape; an empty branch (a skip connection)
  is an edge from the fork straight to the merge, labelled "skip"; a parameter-free operation (relu, mean,
  flatten…) a small node; a child the flow calls more than once is marked as a shared layer is (same
  weights at every call);
- a lazy layer: dashed outline; before the dry run its Lazy* type and "?" for its input size, after it the
  class torch turned it into (LazyLinear -> Linear) and the size torch inferred ("in_features=20 inferred");
- a shared layer: every use filled in the shared layer's own colour, and dashed links from one
  "weights" node, so the eye sees one set of weights used at several places;
- a layer the dry run rejects: red, with the reason, and no shapes after it (a collapsed block holding it: red).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable
from typing import Any

import graphviz

from .build import Answers, DryRun, LayerRun, StepRun, dry_run
from .design import Block, Design, Layer, Node, Use, child_key, resolve
from .errors import DesignError
from .flow import OPS, Branches, Call, Flow, Op, merge_label, walk_steps
from .registry import REGISTRY, built_type

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
_OP_FILL = "#ecfdf5"  # a parameter-free operation
_MERGE = ("#a16207", "#fef9c3")  # a merge node: outline, fill
_SKIP = "#0f766e"  # the skip edge
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
_SPATIAL = (("stride", "s"), ("padding", "p"), ("dilation", "d"))
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
    text = lt.brief.format(**values)
    for name, mark in _SPATIAL:  # what changes a feature map's size, when not the default: "k3, s2, p1"
        arg = lt.arg_index.get(name)
        if (
            arg is not None
            and name in given
            and "{" + name + "}" not in lt.brief
            and _differs(given[name], arg.default)
        ):
            text += f", {mark}{values[name]}"
    return text


def _short(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "×".join(map(str, value))
    return str(value)


def _differs(value: Any, default: Any) -> bool:
    """Whether an argument differs from its default; (1, 1) is the default 1, and "same" padding is not 0."""
    if isinstance(value, (tuple, list)) and value and not isinstance(default, (tuple, list)):
        return any(v != default for v in value)
    return bool(value != default)


def _shape(shape: tuple[int, ...]) -> str:
    return str(shape) if len(shape) != 1 else f"({shape[0]})"


def _q(text: str) -> str:
    """A DOT string: quotes and backslashes escaped (so a name like "a\\N" is shown, not expanded)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- blocks and depth ---------------------------------------------------------------------------------------


def blocks(design: Design) -> list[tuple[str, int]]:
    """Every block of the design as (module key, depth), in module order; depth 0 is a top-level block.
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


def node_count(
    design: Design, depth: int | None = None, expand: Iterable[str] = (), chain_limit: int | None = None
) -> int:
    """How many layer, block, operation and merge nodes `graph(design, depth=depth, expand=expand,
    chain_limit=chain_limit)` draws (input, output and weights nodes not counted; no focus)."""
    open_ = _expanded(expand)

    def block(b: Block, key: str, level: int) -> int:
        prefix = f"{key}." if key else ""
        if b.flow is None:
            kept = _kept(b.layers, prefix, "", chain_limit, open_, None)
            if kept is not None:  # the nodes kept, and one box per run left out between them
                runs = sum(1 for i in range(len(b.layers)) if i not in kept and (i == 0 or i - 1 in kept))
                return runs + sum(node(b.layers[i], prefix + child_key(b.layers[i], i), level) for i in kept)
            return sum(node(n, prefix + child_key(n, i), level) for i, n in enumerate(b.layers))
        count = 0
        for _, step in walk_steps(b.flow, "flow"):
            if isinstance(step, Call):
                found = resolve(b.layers, step.target, design.shared)
                count += node(found[0], prefix + step.target, level) if found else 1
            else:
                count += 1  # an operation, or a merge
        return count

    def node(n: Node, key: str, level: int) -> int:
        inner = _resolve(design, n)
        if isinstance(inner, Block) and _opens(key, level, depth, open_):
            return block(inner, key, level + 1)
        return 1

    return block(design.top, "", 0)


def fitting_depth(design: Design, max_nodes: int = 60) -> int | None:
    """The deepest `depth` whose graph draws at most `max_nodes` nodes (at least 1); None when the whole
    design fits (nothing to collapse). What a page shows first, so a 500-layer design opens readable."""
    if node_count(design) <= max_nodes:
        return None
    levels = max((d for _, d in blocks(design)), default=-1) + 2  # the depth that opens every block
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
    design: Design,
    inferred: bool | DryRun = True,
    *,
    depth: int | None = None,
    expand: Iterable[str] = (),
    chain_limit: int | None = None,
    focus: Iterable[str] = (),
) -> graphviz.Digraph:
    """Draw `design` from input to output.

    inferred: True runs the dry run (meta device) to show output shapes and lazy sizes; False draws the
    design as written, lazy layers pending (as before torch's first forward); a DryRun uses that one (the
    design's, from `dry_run(design)`). A drawing with shapes is remembered: the same design, run and options
    again (a rerun) reuse it.
    depth: like torchview's — layers and blocks up to that depth are drawn (1: the top level only), blocks
    at the last level collapsed into one node with their totals and output shape; None draws everything.
    expand: module keys of blocks to draw open whatever the depth (their enclosing blocks open with them).
    chain_limit: a chain (a Sequential's layers) longer than this is drawn as its first and last few nodes
    (chain_limit // 4 each), the nodes in `focus` (module keys; a block holding one counts) and one box per
    run of layers left out between them, with what they are, their parameters and output shape — so a flat
    500-layer chain stays readable. None draws every node.
    A design the dry run rejects is still drawn, with the layer at fault in red (never folded away).
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
    opened, focused = _expanded(expand), _expanded(focus)
    # A drawing with shapes is remembered by the design and run objects (see _Bodies); one without is cheap.
    key = (id(design), id(run), depth, opened, chain_limit, focused)
    body = _BODIES.get(key, design, run) if run is not None else None
    if body is None:
        drawing = _Drawing(design, run, error, depth, opened)
        drawing.chain_limit, drawing.focus = chain_limit, focused
        body = drawing.draw()
        if run is not None:
            _BODIES.put(key, design, run, body)
    g.body = list(body)  # the caller's own list: adding to its graph never changes a remembered drawing
    return g


class _Bodies:
    """The DOT bodies `graph` drew with a dry run, by the Design and DryRun objects and the drawing options
    (least recently used forgotten first; safe across threads). Each body holds its design and run, so the
    ids in its key are not reused while it is kept.

    Why the objects tell the drawing: a body is a function of the design's content and the run. The run is
    the design's dry run — `dry_run(design)` (graph's own, or the caller's as documented), which makes one
    DryRun per design JSON and limits — so a design changed in any way, even the same Design object changed
    in place, comes with another run, and a limit changed too.
    """

    def __init__(self, size: int) -> None:
        self._kept: Answers[tuple[Design, DryRun, list[str]]] = Answers(size)

    def get(self, key: tuple[Hashable, ...], design: Design, run: DryRun) -> list[str] | None:
        found = self._kept.get(key)
        return found[2] if found is not None and found[0] is design and found[1] is run else None

    def put(self, key: tuple[Hashable, ...], design: Design, run: DryRun, body: list[str]) -> None:
        self._kept.put(key, (design, run, body))

    def clear(self) -> None:
        self._kept.clear()


_BODIES = _Bodies(64)


def forget_drawings() -> None:
    """Forget the drawings `graph` keeps (the next graph of every design is drawn from scratch)."""
    _BODIES.clear()


class _Weights:
    """One set of weights drawn at several places: a shared layer, or a child a flow calls more than once."""

    def __init__(self, node_id: str, title: str, kind: str, colors: tuple[str, str], calls: str) -> None:
        self.node_id, self.title, self.kind, self.colors, self.calls = node_id, title, kind, colors, calls
        self.targets: list[str] = []  # the node drawn for each use
        self.parameters: int | None = None


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
        self.steps: dict[tuple[str, str], StepRun] = run.by_step() if run else {}
        self.run = run
        self.error = error
        self.depth = depth
        self.expanded = expanded
        self.colors = shared_colors(design)
        self.weights: dict[str, _Weights] = {}  # by shared name, or by "call:<module key>" for repeated calls
        self.ids: set[str] = {"input", "output"}
        self.out: list[str] = []  # node and cluster lines, in drawing order
        self.edges: list[str] = []
        self.failed = False
        self.small = 0  # operations and merges drawn (their ids)
        self.chain_limit: int | None = None  # longer chains are drawn as head, focus and tail (graph())
        self.focus: frozenset[str] = frozenset()  # module keys kept in a folded chain, with their blocks

    def draw(self) -> list[str]:
        d = self.design
        out = self.out
        out.append(_HEAD)
        dtype = "" if d.input_dtype == "float32" else f" {d.input_dtype}"
        label = f"input\n{_shape(d.input_shape)}{dtype}"
        out.append(f'\tinput [label={_q(label)} fillcolor="#ffffff" shape=oval]\n')
        if d.flow is None:
            last = self.nodes(d.layers, "", "layers", None, "input", 0, "\t")
        else:
            last = self.flow(d.top, "", "", None, "input", 0, "\t")
        label = f"output\n{_shape(self.run.output_shape)}" if self.run else "output"
        out.append(f'\toutput [label={_q(label)} fillcolor="#ffffff" shape=oval]\n')
        self.edge(last, "output")
        for w in self.weights.values():
            self.weights_node(w)
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

    # -- chains and blocks ------------------------------------------------------------------------------

    def nodes(
        self, nodes: tuple[Node, ...], prefix: str, path: str, shared: str | None, entry: str, level: int, tab: str
    ) -> str:
        """Draw `nodes` in order, chaining edges from `entry`; return the id of the last node drawn. A chain
        longer than `chain_limit` draws the runs of nodes it leaves out as one box each."""
        kept = _kept(nodes, prefix, path, self.chain_limit, self.focus, self.error)
        i = 0
        while i < len(nodes):
            j = i + 1
            while kept is not None and i not in kept and j < len(nodes) and j not in kept:
                j += 1
            if j - i > 1:
                entry = self.left_out(
                    nodes[i:j], [prefix + child_key(n, k) for k, n in enumerate(nodes[i:j], i)], entry
                )
            else:
                entry = self.node(nodes[i], prefix + child_key(nodes[i], i), f"{path}[{i}]", shared, entry, level, tab)
            i = j
        return entry

    def left_out(self, nodes: tuple[Node, ...], keys: list[str], entry: str) -> str:
        """One box for a run of a long chain's nodes: how many, of which types, their parameters, output shape."""
        kinds: dict[str, int] = {}
        layers = 0
        for node in nodes:
            inner = _resolve(self.design, node)
            kind = inner.class_name if isinstance(inner, Block) else inner.type
            kind += f" (shared '{node.shared}')" if isinstance(node, Use) else ""
            kinds[kind] = kinds.get(kind, 0) + 1
            layers += _count(self.design, inner)[0] + 1 if isinstance(inner, Block) else 1
        common = sorted(kinds.items(), key=lambda kv: -kv[1])
        what = ", ".join(f"{k} ×{n}" for k, n in common[:3]) + (", …" if len(common) > 3 else "")
        lines = [
            f"… {keys[0]} to {keys[-1]}: {len(nodes)} layers" + (f" ({layers} in all)" if layers > len(nodes) else ""),
            what,
        ]
        runs = [self.runs.get(k) for k in keys]
        if all(r is not None for r in runs):
            per_use = any(isinstance(n, Use) for n in nodes)
            total = sum(r.parameters for r in runs if r is not None)
            lines.append(f"{total:,} parameters" + (" (counted per use)" if per_use else ""))
            last = runs[-1]
            assert last is not None
            lines.append(f"→ {_shape(last.output_shape)}")
        tooltip = f"{len(nodes)} layers not drawn one by one: {keys[0]} … {keys[-1]}"
        node_id = self.emit(
            f"{keys[0]}__to", "\n".join(lines), entry, "\t", "", _BLOCK_FILL, "", "", "filled,dashed", tooltip
        )
        for node in nodes:  # a shared layer used in the run: its weights link to the box
            inner = _resolve(self.design, node)
            uses = [node.shared] if isinstance(node, Use) else (_uses_inside(inner) if isinstance(inner, Block) else [])
            for name in uses:
                self.shared_weights(name).targets.append(node_id)
        return node_id

    def node(
        self,
        node: Node,
        key: str,
        path: str,
        shared: str | None,
        entry: str,
        level: int,
        tab: str,
        step: tuple[str, str, Call] | None = None,  # called by a flow: (step path, block key, the call)
    ) -> str:
        if isinstance(node, Use):
            inner = self.design.shared[node.shared]
            first = len(self.out)
            last = self.node(inner, key, path, node.shared, entry, level, tab, step)
            self.shared_weights(node.shared).targets.append(self.first_node(first) or last)
            return last
        if isinstance(node, Block):
            # Inside a shared block, design paths are the shared definition's (as the dry run reports them).
            own = f"shared.{shared}" if shared and path.startswith("layers") else path
            if not _opens(key, level, self.depth, self.expanded):
                return self.collapsed(node, key, path, own, shared, entry, step)
            title = step[2].target if step else key.rpartition(".")[2]
            label = f"{title} · {node.class_name}" + (f" · shared '{shared}'" if shared else "")
            outline = self.colors[shared][0] if shared else "#94a3b8"
            style = "rounded,bold" if shared else "rounded,dashed"
            self.out.append(f"{tab}subgraph cluster_{self.node_id(key)} {{\n")
            self.out.append(f'{tab}\tcolor="{outline}" {_CLUSTER_ATTRS} label={_q(label)} style="{style}"\n')
            if node.flow is None:
                last = self.nodes(node.layers, key + ".", f"{own}.layers", shared, entry, level + 1, tab + "\t")
            else:
                last = self.flow(node, key, own, shared, entry, level + 1, tab + "\t")
            self.out.append(f"{tab}}}\n")
            return last
        return self.leaf(node, key, path, shared, entry, tab, step)

    def first_node(self, start: int) -> str | None:
        """The id of the first node line written since out[start] (a use's first layer)."""
        for line in self.out[start:]:
            head = line.lstrip("\t")
            if not head.startswith("subgraph") and " [label=" in head:
                return head.split(" ", 1)[0]
        return None

    def at_fault(self, *paths: str | None) -> bool:
        """Whether the dry run's error names this node (one of its design or step paths, or, for a collapsed
        block, anything inside it). The first node that matches takes the error."""
        if self.error is None or self.failed or not self.error.path:
            return False
        self.failed = any(p is not None and _at(self.error.path, p) for p in paths)
        return self.failed

    def leaf(
        self,
        layer: Layer,
        key: str,
        path: str,
        shared: str | None,
        entry: str,
        tab: str,
        step: tuple[str, str, Call] | None = None,
    ) -> str:
        lt = REGISTRY[layer.type]
        run = self.runs.get(key)
        title = key.rpartition(".")[2]
        out_shape = run.output_shape if run else None
        repeat: _Weights | None = None
        if step is not None:  # called by a flow: its shapes are the call's (a child called twice: each its own)
            title = step[2].target
            ran = self.steps.get((step[1], step[0]))
            out_shape = ran.output_shape if ran else None
            repeat = self.weights.get(f"call:{key}")
        # After the dry run torch has turned a lazy layer into its ordinary class (LazyLinear -> Linear): say so.
        sizes = ", ".join(f"{k}={v} inferred" for k, v in run.inferred.items()) if run and lt.is_lazy else ""
        lines = [f"{title} · {built_type(layer.type, run.inferred) if run else layer.type}"]
        if step is not None and step[2].output is not None:
            lines[0] += f" [{step[2].output}]"
        main = brief(layer, dict(run.inferred) if run else None)
        if main:
            lines.append(main)
        color = penwidth = fontcolor = tooltip = style = ""
        fill = _CATEGORY_FILL.get(lt.category, "#ffffff")
        if lt.is_lazy:
            style = "rounded,filled,dashed"
            lines.append(f"lazy: {sizes}" if sizes else "lazy: inferred" if run else "lazy: size pending")
        if shared:
            color, fill = self.colors[shared]
            penwidth = "2.5"
            lines.append(f"shared '{shared}'")
        elif repeat is not None:
            color, fill = repeat.colors
            penwidth = "2.5"
            lines.append(f"call {len(repeat.targets) + 1} of {repeat.calls}: same weights")
        if out_shape is not None:
            lines.append(f"→ {_shape(out_shape)}")
        elif self.at_fault(path, step[0] if step else None):
            color, fill, penwidth, fontcolor = "#dc2626", "#fee2e2", "2.5", "#991b1b"
            lines.append("✗ does not fit — see message")
            tooltip = str(self.error)
        node_id = self.emit(key, "\n".join(lines), entry, tab, color, fill, penwidth, fontcolor, style, tooltip)
        if repeat is not None:
            repeat.targets.append(node_id)
            if run is not None:
                repeat.parameters = run.parameters
        return node_id

    def collapsed(
        self,
        block: Block,
        key: str,
        path: str,
        own: str,
        shared: str | None,
        entry: str,
        step: tuple[str, str, Call] | None = None,
    ) -> str:
        """One node for a whole block: its class, what it holds, its parameter total and output shape."""
        run = self.runs.get(key)
        out_shape = run.output_shape if run else None
        if step is not None:
            ran = self.steps.get((step[1], step[0]))
            out_shape = ran.output_shape if ran else None
        layers, inner = _count(self.design, block)
        held = f"{layers} layer{'s' if layers != 1 else ''}" + (
            f" in {inner} block{'s' if inner != 1 else ''}" if inner else ""
        )
        title = step[2].target if step else key.rpartition(".")[2]
        lines = [f"{title} · {block.class_name}", held]
        color, fill, penwidth, fontcolor, tooltip = "", _BLOCK_FILL, "", "", f"{key}: collapsed ({held})"
        if shared:
            color, fill = self.colors[shared]
            penwidth = "2.5"
            lines.append(f"shared '{shared}'")
        if run is not None and out_shape is not None:
            lines.append(f"{run.parameters:,} parameters")
            lines.append(f"→ {_shape(out_shape)}")
        elif self.at_fault(path, own, step[0] if step else None):
            color, fill, penwidth, fontcolor = "#dc2626", "#fee2e2", "2.5", "#991b1b"
            lines.append("✗ does not fit — see message")
            tooltip = str(self.error)
        node_id = self.emit(key, "\n".join(lines), entry, "\t", color, fill, penwidth, fontcolor, "filled", tooltip, 1)
        for name in _uses_inside(block):  # a shared layer used inside: its weights link to the whole block
            self.shared_weights(name).targets.append(node_id)
        return node_id

    # -- flows --------------------------------------------------------------------------------------------

    def flow(self, block: Block, key: str, own: str, shared: str | None, entry: str, level: int, tab: str) -> str:
        """Draw a flow block's steps from `entry` (own: the block's design path, "" for the top level)."""
        assert block.flow is not None
        prefix = f"{key}." if key else ""
        calls: dict[str, int] = {}
        for _, s in walk_steps(block.flow, "flow"):
            if isinstance(s, Call):
                calls[s.target] = calls.get(s.target, 0) + 1
        for target, n in calls.items():  # a child called more than once: one set of weights, several calls
            found = resolve(block.layers, target, self.design.shared)
            if n > 1 and found is not None and not isinstance(found[0], Use):
                inner = found[0]
                kind = inner.type if isinstance(inner, Layer) else inner.class_name
                palette = _SHARED[(len(self.design.shared) + len(self.weights)) % len(_SHARED)]
                w = _Weights(
                    self.node_id(f"weights.{prefix}{target}"), f"weights of '{prefix}{target}'", kind, palette, f"{n}"
                )
                self.weights[f"call:{prefix}{target}"] = w
        at = f"{own}." if own else ""
        last = self.chain(block.flow, block, key, at, f"{at}flow", shared, entry, level, tab)
        self.uncalled(block, prefix, at, calls, tab)
        return last

    def chain(
        self,
        flow: Flow,
        block: Block,
        key: str,
        at: str,
        where: str,
        shared: str | None,
        entry: str,
        level: int,
        tab: str,
    ) -> str:
        """The steps of one flow (a block's, or one branch's) in order from `entry`; the last node's id."""
        for i, step in enumerate(flow):
            path = f"{where}[{i}]"
            if isinstance(step, Call):
                found = resolve(block.layers, step.target, self.design.shared)
                assert found is not None  # the design was checked
                child, rel = found
                child_key_ = f"{key}.{step.target}" if key else step.target
                entry = self.node(child, child_key_, at + rel, shared, entry, level, tab, (path, key, step))
            elif isinstance(step, Op):
                entry = self.op(step, key, path, entry, tab)
            else:
                entry = self.branches(step, block, key, at, path, shared, entry, level, tab)
        return entry

    def op(self, step: Op, key: str, path: str, entry: str, tab: str) -> str:
        """A parameter-free operation: a small node with its name, arguments and (when it changes) the shape."""
        ran = self.steps.get((key, path))
        spec = OPS[step.op]
        args = " ".join(f"{k}={_short(v)}" for k, v in step.args.items() if k in {a.name for a in spec.args})
        lines = [f"{step.op} {args}".strip()]
        color = fill = fontcolor = tooltip = penwidth = ""
        fill = _OP_FILL
        if ran is not None and ran.output_shape != ran.input_shape:
            lines.append(f"→ {_shape(ran.output_shape)}")
        elif ran is None and self.at_fault(path):
            color, fill, penwidth, fontcolor = "#dc2626", "#fee2e2", "2.5", "#991b1b"
            lines.append("✗ see message")
            tooltip = str(self.error)
        self.small += 1
        node_id = self.node_id(f"{key}.op{self.small}" if key else f"op{self.small}")
        attrs = f'label={_q(chr(10).join(lines))} fillcolor="{fill}" fontsize=10 height=0.2 margin="0.06,0.02"'
        if color:
            attrs += f' color="{color}" fontcolor="{fontcolor}" penwidth={penwidth} tooltip={_q(tooltip)}'
        self.out.append(f"{tab}{node_id} [{attrs}]\n")
        self.edge(entry, node_id)
        return node_id

    def branches(
        self,
        step: Branches,
        block: Block,
        key: str,
        at: str,
        path: str,
        shared: str | None,
        entry: str,
        level: int,
        tab: str,
    ) -> str:
        """Parallel branches side by side from `entry`, joined by a merge node; an empty branch (a skip) is an
        edge from `entry` straight to the merge."""
        ends: list[str | None] = []
        for j, branch in enumerate(step.branches):
            bpath = f"{path}.branches[{j}]"
            ends.append(self.chain(branch, block, key, at, bpath, shared, entry, level, tab) if branch else None)
        ran = self.steps.get((key, path))
        lines = [merge_label(step.merge, step.dim)]
        color, fill = _MERGE
        fontcolor = tooltip = ""
        if ran is not None:
            lines.append(f"→ {_shape(ran.output_shape)}")
        elif self.at_fault(path):
            color, fill, fontcolor = "#dc2626", "#fee2e2", "#991b1b"
            lines.append("✗ does not fit — see message")
            tooltip = str(self.error)
        self.small += 1
        node_id = self.node_id(f"{key}.merge{self.small}" if key else f"merge{self.small}")
        attrs = f'label={_q(chr(10).join(lines))} color="{color}" fillcolor="{fill}" fontsize=12 penwidth=1.5'
        if fontcolor:
            attrs += f' fontcolor="{fontcolor}" tooltip={_q(tooltip)}'
        self.out.append(f"{tab}{node_id} [{attrs}]\n")
        for end in ends:
            if end is None:
                self.edge(
                    entry, node_id, f'color="{_SKIP}" fontcolor="{_SKIP}" label=" skip" penwidth=1.5 style=dashed'
                )
            else:
                self.edge(end, node_id)
        return node_id

    def uncalled(self, block: Block, prefix: str, at: str, calls: dict[str, int], tab: str) -> None:
        """Children the flow never calls: still in the module (and its state_dict), drawn apart, greyed."""
        used = {t.split(".")[0] for t in calls}
        for i, child in enumerate(block.layers):
            name = child_key(child, i)
            if name in used:
                continue
            inner = _resolve(self.design, child)
            kind = inner.type if isinstance(inner, Layer) else inner.class_name
            label = f"{name} · {kind}\nnot called by forward"
            self.out.append(
                f'{tab}{self.node_id(prefix + name)} [label={_q(label)} color="#94a3b8" fillcolor="#f8fafc" '
                f'fontcolor="#64748b" style="rounded,filled,dashed"]\n'
            )

    # -- nodes and weights --------------------------------------------------------------------------------

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

    def shared_weights(self, name: str) -> _Weights:
        w = self.weights.get(name)
        if w is None:
            spec = self.design.shared[name]
            kind = spec.type if isinstance(spec, Layer) else spec.class_name
            w = self.weights[name] = _Weights(
                f"weights_{name}", f"shared weights '{name}'", kind, self.colors[name], ""
            )
            if self.runs:
                w.parameters = _own_parameters(self.runs, name)
        return w

    def weights_node(self, w: _Weights) -> None:
        outline, fill = w.colors
        label = f"{w.title}\n{w.kind}"
        if w.parameters is not None:
            label += f"\n{w.parameters:,} parameters"
        label += f"\ncalled {w.calls}×" if w.calls else f"\nused {len(w.targets)}×"
        self.out.append(
            f'\t{w.node_id} [label={_q(label)} color="{outline}" fillcolor="{fill}" penwidth=2 shape=cylinder '
            f'style="filled,bold"]\n'
        )
        for target in dict.fromkeys(w.targets):  # a collapsed block holding two uses: one link
            self.edge(w.node_id, target, f'arrowhead=none color="{outline}" constraint=false penwidth=1.5 style=dashed')


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


def _kept(
    nodes: tuple[Node, ...],
    prefix: str,
    path: str,
    limit: int | None,
    focus: Collection[str],
    error: DesignError | None,
) -> set[int] | None:
    """The positions of a chain drawn one by one when it is longer than `limit` (None: all of them): the first
    and last limit // 4, the nodes in `focus` or holding one, and the node the error names."""
    n = len(nodes)
    if limit is None or n <= limit:
        return None
    ends = max(1, limit // 4)
    kept = set(range(ends)) | set(range(n - ends, n))
    for i, node in enumerate(nodes):
        at_fault = error is not None and bool(error.path) and _at(str(error.path), f"{path}[{i}]")
        if at_fault or prefix + child_key(node, i) in focus:
            kept.add(i)
    return kept


def _at(error_path: str, path: str) -> bool:
    """Whether an error's design path points at this node (or at one of its arguments)."""
    return error_path == path or error_path.startswith(path + ".")
