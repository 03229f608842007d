"""graph(..., chain_limit=, focus=): a long flat chain is drawn as its first and last nodes, the nodes in focus,
and one box per run left out, with what the box holds counted by torch (issue 16: a flat 500-layer chain drew
500 nodes)."""

from __future__ import annotations

import re

import torch

from builder import Design, build, dry_run, graph
from builder.diagram import node_count


def chain(n: int) -> Design:
    """n layers: Linear(6, 6), Tanh, the shared Linear(6, 6), Tanh, … (a shared layer inside the runs)."""
    pattern = [
        {"type": "Linear", "in_features": 6, "out_features": 6},
        {"type": "Tanh"},
        {"shared": "s"},
        {"type": "Tanh"},
    ]
    return Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [3, 6]},
            "shared": {"s": {"type": "Linear", "in_features": 6, "out_features": 6}},
            "layers": [pattern[i % 4] for i in range(n)],
        }
    )


def labels(dot: str) -> list[str]:
    return re.findall(r'\[label="([^"]*)"', dot)


def test_a_long_chain_draws_its_ends_and_one_box_for_the_rest() -> None:
    d = chain(500)
    dot = graph(d, dry_run(d), chain_limit=40).source
    drawn = [t for t in labels(dot) if not t.startswith(("input", "output", "shared weights"))]
    assert len(drawn) == 21 == node_count(d, chain_limit=40)  # 10 first, 1 box, 10 last
    box = next(t for t in drawn if t.startswith("…"))
    assert box.startswith("… 10 to 489: 480 layers")
    assert "Tanh ×240" in box and "Linear ×120" in box and "Linear (shared 's') ×120" in box
    net = build(d)
    per_use = sum(p.numel() for i in range(10, 490) for p in net[i].parameters())  # the shared layer at each use
    assert f"{per_use:,} parameters (counted per use)" in box
    with torch.no_grad():
        shape = tuple(net[:490](torch.zeros(3, 6)).shape)
    assert box.endswith(f"→ ({shape[0]}, {shape[1]})")
    assert "weights_s -> n_10__to" in dot  # the shared weights still reach the uses inside the box


def test_focus_keeps_nodes_in_the_middle_and_a_short_chain_is_drawn_whole() -> None:
    d = chain(300)
    drawn = labels(graph(d, dry_run(d), chain_limit=12, focus=["150", "151"]).source)
    assert any(t.startswith("150 · ") for t in drawn) and any(t.startswith("151 · ") for t in drawn)
    assert sum(t.startswith("…") for t in drawn) == 2  # a box before them and one after
    small = chain(12)
    assert not any(t.startswith("…") for t in labels(graph(small, dry_run(small), chain_limit=12).source))


def test_the_layer_at_fault_is_never_folded_away() -> None:
    d = chain(200)
    broken = Design.from_dict(
        {
            **d.to_dict(),
            "layers": [*d.to_dict()["layers"][:100], {"type": "Linear", "in_features": 5, "out_features": 6}],
        }
    )
    drawn = labels(graph(broken, chain_limit=20).source)
    assert any(t.startswith("100 · Linear") and "does not fit" in t for t in drawn)
