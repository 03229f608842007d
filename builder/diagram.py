"""The network's diagram as a graphviz.Digraph, from input to output.

Walking the design and drawing are separate: `graph` only emits DOT (rendering is the caller's choice:
st.graphviz_chart, or `.pipe()` where a `dot` binary exists). Node ids come from module keys, so the DOT of
a design is deterministic and can be compared in tests.

How things are shown
- a layer: its position or name, type, main arguments and output shape, filled by category;
- a nested block: a cluster labelled with its key;
- a lazy layer: dashed outline; its torch-inferred size shown once the dry run has run, "?" before;
- a shared layer: every use filled in the shared layer's own colour, and dashed links from one
  "weights" node, so the eye sees one set of weights used at several places;
- a layer the dry run rejects: red, with the reason, and no shapes after it.
"""

from __future__ import annotations

from typing import Any

import graphviz

from .build import DryRun, LayerRun, dry_run, layer_kwargs
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


def shared_colors(design: Design) -> dict[str, tuple[str, str]]:
    """(outline, fill) colour of each shared layer, by name; the same in every view."""
    return {name: _SHARED[i % len(_SHARED)] for i, name in enumerate(design.shared)}


def brief(layer: Layer, inferred: dict[str, int] | None = None) -> str:
    """The main arguments in a few characters, e.g. "20 → 256" or "? → 256" for a lazy layer not yet run."""
    lt = REGISTRY[layer.type]
    if not lt.brief:
        return ""
    values: dict[str, Any] = {k: _short(v) for k, v in layer_kwargs(layer).items()}
    if lt.infers:
        values[lt.infers] = str(inferred[lt.infers]) if inferred and lt.infers in inferred else "?"
    return lt.brief.format(**values)


def _short(value: Any) -> str:
    if isinstance(value, tuple):
        return "×".join(map(str, value))
    return str(value)


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def graph(design: Design, inferred: bool | DryRun = True) -> graphviz.Digraph:
    """Draw `design` from input to output.

    inferred: True runs the dry run (meta device) to show output shapes and lazy sizes; False draws the
    design as written, lazy layers pending (as before torch's first forward); a DryRun uses that one.
    A design the dry run rejects is still drawn, with the layer at fault in red.
    """
    run: DryRun | None = None
    error: DesignError | None = None
    if isinstance(inferred, DryRun):
        run = inferred
    elif inferred:
        try:
            run = dry_run(design)
        except DesignError as e:
            error = e
    return _Drawing(design, run, error).draw()


class _Drawing:
    def __init__(self, design: Design, run: DryRun | None, error: DesignError | None) -> None:
        self.design = design
        self.runs: dict[str, LayerRun] = run.by_key() if run else {}
        self.run = run
        self.error = error
        self.colors = shared_colors(design)
        self.uses: dict[str, list[tuple[str, str]]] = {}  # shared name -> (module key, first node id) per use
        self.drawn: list[str] = []  # node ids of layers in drawing order
        self.failed = False

    def draw(self) -> graphviz.Digraph:
        d = self.design
        g = graphviz.Digraph(name=d.name or "design")
        g.attr(rankdir="TB", fontname=_FONT, nodesep="0.25", ranksep="0.3", newrank="true")
        g.attr(
            "node",
            shape="box",
            style="rounded,filled",
            fontname=_FONT,
            fontsize="11",
            margin="0.15,0.05",
            color="#475569",
        )
        g.attr("edge", fontname=_FONT, fontsize="9", color="#64748b", arrowsize="0.7")
        dtype = "" if d.input_dtype == "float32" else f" {d.input_dtype}"
        g.node("input", f"input\n{_shape(d.input_shape)}{dtype}", shape="oval", fillcolor="#ffffff")
        last = self.nodes(g, d.layers, "", "layers", shared=None, entry="input")
        out = f"output\n{_shape(self.run.output_shape)}" if self.run else "output"
        g.node("output", out, shape="oval", fillcolor="#ffffff")
        g.edge(last, "output")
        for name, ids in self.uses.items():
            self.weights_node(g, name, ids)
        return g

    def nodes(
        self, g: graphviz.Digraph, nodes: tuple[Node, ...], prefix: str, path: str, shared: str | None, entry: str
    ) -> str:
        """Draw `nodes` in order, chaining edges from `entry`; return the id of the last node drawn."""
        for i, node in enumerate(nodes):
            entry = self.node(g, node, prefix + child_key(node, i), f"{path}[{i}]", shared, entry)
        return entry

    def node(self, g: graphviz.Digraph, node: Node, key: str, path: str, shared: str | None, entry: str) -> str:
        title = key.rpartition(".")[2]
        if isinstance(node, Use):
            first = len(self.drawn)
            last = self.node(g, self.design.shared[node.shared], key, path, node.shared, entry)
            self.uses.setdefault(node.shared, []).append((key, self.drawn[first]))
            return last
        if isinstance(node, Block):
            with g.subgraph(name=f"cluster_{_node_id(key)}") as c:
                label = f"{title} · Sequential" + (f" · shared '{shared}'" if shared else "")
                outline = self.colors[shared][0] if shared else "#94a3b8"
                c.attr(
                    label=label,
                    style="rounded,dashed" if not shared else "rounded,bold",
                    color=outline,
                    fontname=_FONT,
                    fontsize="11",
                    labeljust="l",
                )
                sub = f"shared.{shared}.layers" if shared and path.startswith("layers") else f"{path}.layers"
                return self.nodes(c, node.layers, key + ".", sub, shared, entry)
        return self.leaf(g, node, key, title, path, shared, entry)

    def leaf(
        self, g: graphviz.Digraph, layer: Layer, key: str, title: str, path: str, shared: str | None, entry: str
    ) -> str:
        lt = REGISTRY[layer.type]
        run = self.runs.get(key)
        lines = [f"{title} · {layer.type}"]
        main = brief(layer, dict(run.inferred) if run else None)
        if main:
            lines.append(main)
        attrs = {"fillcolor": _CATEGORY_FILL.get(lt.category, "#ffffff")}
        if lt.is_lazy:
            attrs["style"] = "rounded,filled,dashed"
            lines.append("lazy: inferred" if run else "lazy: size pending")
        if shared:
            outline, fill = self.colors[shared]
            attrs.update(fillcolor=fill, color=outline, penwidth="2.5")
            lines.append(f"shared '{shared}'")
        if run:
            lines.append(f"→ {_shape(run.output_shape)}")
        elif self.error is not None and not self.failed and self.error.path and _at(self.error.path, path):
            self.failed = True
            attrs.update(fillcolor="#fee2e2", color="#dc2626", penwidth="2.5", fontcolor="#991b1b")
            lines.append("✗ does not fit — see message")
            attrs["tooltip"] = str(self.error)
        node_id = _node_id(key)
        self.drawn.append(node_id)
        g.node(node_id, "\n".join(lines), **attrs)
        g.edge(entry, node_id)
        return node_id

    def weights_node(self, g: graphviz.Digraph, name: str, uses: list[tuple[str, str]]) -> None:
        outline, fill = self.colors[name]
        spec = self.design.shared[name]
        kind = spec.type if isinstance(spec, Layer) else "Sequential"
        run = self.runs.get(uses[0][0])
        label = f"shared weights '{name}'\n{kind}" + (f"\n{run.parameters:,} parameters" if run else "")
        label += f"\nused {len(uses)}×"
        g.node(
            f"weights_{name}", label, shape="cylinder", style="filled,bold", fillcolor=fill, color=outline, penwidth="2"
        )
        for _, target in uses:
            g.edge(
                f"weights_{name}",
                target,
                style="dashed",
                color=outline,
                arrowhead="none",
                constraint="false",
                penwidth="1.5",
            )


def _node_id(key: str) -> str:
    return "n_" + key.replace(".", "_")


def _at(error_path: str, path: str) -> bool:
    """Whether an error's design path points at this node (or at one of its arguments)."""
    return error_path == path or error_path.startswith(path + ".")
