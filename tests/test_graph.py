"""graph(): DOT from input to output with types, arguments, shapes, clusters, lazy and shared marks."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from builder import Design, dry_run, graph, load_example
from builder.diagram import blocks, fitting_depth, forget_drawings, node_count


def labels(dot: str) -> dict[str, str]:
    """node id -> label text."""
    return {m[0]: m[1] or m[2] for m in re.findall(r'^\s*(\w+) \[label=(?:"([^"]*)"|(\w+))', dot, flags=re.M)}


def edges(dot: str) -> list[tuple[str, str]]:
    return re.findall(r"^\s*(\w+) -> (\w+)", dot, flags=re.M)


def test_chain_from_input_to_output_with_shapes() -> None:
    dot = graph(load_example("sequential_mlp")).source
    nodes = labels(dot)
    assert nodes["input"] == "input\n(2, 20)"
    assert nodes["n_0"] == "0 · Linear\n20 → 256\n→ (2, 256)"
    assert nodes["n_1"] == "1 · ReLU\n→ (2, 256)"
    assert nodes["output"] == "output\n(2, 10)"
    assert edges(dot) == [("input", "n_0"), ("n_0", "n_1"), ("n_1", "n_2"), ("n_2", "output")]


def test_graph_is_deterministic() -> None:
    assert graph(load_example("nested")).source == graph(load_example("nested")).source


def test_nested_blocks_are_clusters_and_lazy_layers_marked() -> None:
    design = load_example("nested")
    dot = graph(design).source
    assert "subgraph cluster_n_0 {" in dot and "subgraph cluster_n_0_net {" in dot
    nodes = labels(dot)
    assert nodes["n_0_net_0"] == "0 · Linear\n20 → 64\nlazy: in_features=20 inferred\n→ (2, 64)"
    assert nodes["n_0_linear"].startswith("linear · Linear\n32 → 16")
    pending = labels(graph(design, inferred=False).source)
    assert pending["n_0_net_0"] == "0 · LazyLinear\n? → 64\nlazy: size pending"
    assert "dashed" in re.search(r"n_0_net_0 \[.*?style=\"([^\"]*)\"", dot, flags=re.S)[1]


def test_shared_uses_share_a_colour_and_one_weights_node() -> None:
    dot = graph(load_example("tied")).source
    nodes = labels(dot)
    assert "shared 'shared'" in nodes["n_2"] and "shared 'shared'" in nodes["n_4"]
    assert "shared" not in nodes["n_0"]
    assert nodes["weights_shared"] == "shared weights 'shared'\nLinear\n72 parameters\nused 2×"
    assert ("weights_shared", "n_2") in edges(dot) and ("weights_shared", "n_4") in edges(dot)
    colour = re.search(r'n_2 \[.*?color="(#\w+)"', dot, flags=re.S)[1]
    assert re.search(r'n_4 \[.*?color="(#\w+)"', dot, flags=re.S)[1] == colour != "#475569"


def test_a_design_that_does_not_fit_is_drawn_with_the_layer_in_red() -> None:
    d = load_example("sequential_mlp").to_dict()
    d["layers"][2]["in_features"] = 30
    dot = graph(Design.from_dict(d)).source
    nodes = labels(dot)
    assert "does not fit" in nodes["n_2"]
    assert "→" not in nodes["n_2"].split("\n")[-1]
    assert 'tooltip="layers[2] Linear: expects 30 input features, gets 256' in dot
    assert "#dc2626" in re.search(r"n_2 \[.*?\]", dot, flags=re.S)[0]
    assert nodes["output"] == "output"


def test_shared_block_links_weights_to_each_use() -> None:
    design = Design.from_dict(
        {
            "format": 1,
            "input": {"shape": [2, 6]},
            "shared": {
                "pair": {
                    "type": "Sequential",
                    "layers": [{"type": "Linear", "in_features": 6, "out_features": 6}, {"type": "Tanh"}],
                }
            },
            "layers": [{"shared": "pair"}, {"shared": "pair"}],
        }
    )
    dot = graph(design).source
    assert ("weights_pair", "n_0_0") in edges(dot) and ("weights_pair", "n_1_0") in edges(dot)
    assert "used 2×" in labels(dot)["weights_pair"]
    assert "cluster_n_0" in dot and "cluster_n_1" in dot


def test_depth_collapses_blocks_into_one_node_with_their_totals() -> None:
    design = load_example("nested")
    top = graph(design, depth=1).source
    nodes = labels(top)
    assert nodes["n_0"] == "0 · Sequential\n5 layers in 1 block\n3,952 parameters\n→ (2, 16)"
    assert "cluster" not in top and "shape=box3d" in top
    assert edges(top) == [("input", "n_0"), ("n_0", "n_1"), ("n_1", "output")]
    two = graph(design, depth=2).source  # the top block open, the one inside it collapsed
    assert "subgraph cluster_n_0 {" in two and "cluster_n_0_net" not in two
    assert labels(two)["n_0_net"].startswith("net · Sequential\n4 layers\n")
    assert ("n_0_net", "n_0_linear") in edges(two)
    assert graph(design, depth=3).source == graph(design).source  # deep enough: everything, as without depth


def test_expanding_one_block_opens_it_and_the_blocks_around_it() -> None:
    design = load_example("nested")
    dot = graph(design, depth=1, expand=["0.net"]).source
    assert "subgraph cluster_n_0 {" in dot and "subgraph cluster_n_0_net {" in dot
    assert graph(design, depth=1, expand=["0"]).source == graph(design, depth=2).source


def test_a_collapsed_block_holding_the_fault_is_red_and_one_holding_a_shared_use_is_linked() -> None:
    d = load_example("nested").to_dict()
    d["layers"][0]["layers"][0]["layers"][0] = {"type": "Linear", "in_features": 31, "out_features": 64}  # 2 deep
    dot = graph(Design.from_dict(d), depth=1).source
    assert "does not fit" in labels(dot)["n_0"] and "#dc2626" in re.search(r"n_0 \[.*?\]\n", dot, flags=re.S)[0]
    tied = load_example("tied").to_dict()
    tied["layers"] = [{"type": "Sequential", "layers": tied["layers"][:3]}, *tied["layers"][3:]]
    dot = graph(Design.from_dict(tied), depth=1).source
    assert ("weights_shared", "n_0") in edges(dot) and ("weights_shared", "n_2") in edges(dot)
    assert labels(dot)["weights_shared"] == "shared weights 'shared'\nLinear\n72 parameters\nused 2×"


def test_a_big_design_opens_at_a_depth_that_stays_readable() -> None:
    block = {
        "type": "Sequential",
        "layers": [{"type": "Linear", "in_features": 8, "out_features": 8}, {"type": "ReLU"}] * 5,
    }
    design = Design.from_dict({"format": 1, "input": {"shape": [2, 8]}, "layers": [block] * 50})  # 500 layers
    assert node_count(design) == 500 and blocks(design)[:2] == [("0", 0), ("1", 0)]
    depth = fitting_depth(design, max_nodes=60)
    assert depth == 1 and node_count(design, depth) == 50
    assert len(labels(graph(design, depth=depth).source)) == 50 + 2
    assert node_count(design, 1, expand=["7"]) == 59
    assert fitting_depth(load_example("nested")) is None  # small: drawn whole


def test_depth_must_be_a_whole_number_from_one() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="depth must be"):
            graph(load_example("nested"), depth=bad)


# -- flows (format 2): branches, merges, skips, operations, repeated calls -------------------------------------


def merges(dot: str) -> dict[str, str]:
    return {k: v for k, v in labels(dot).items() if "merge" in k}


def test_parallel_branches_join_in_a_merge_node_that_says_cat_and_its_shape() -> None:
    dot = graph(load_example("inception")).source
    nodes = labels(dot)
    assert list(merges(dot).values()) == ["cat dim=1\n→ (1, 256, 28, 28)"]
    merge = next(iter(merges(dot)))
    starts = [b for a, b in edges(dot) if a == "input"]
    assert starts == ["n_b1_1", "n_b2_1", "n_b3_1", "n_b4_1"]  # four branches from the block's input, in order
    into = [a for a, b in edges(dot) if b == merge]
    assert len(into) == 4 and all(nodes[a] == "relu" for a in into)  # each branch ends in its relu
    assert nodes["n_b2_2"] == "b2_2 · Conv2d\n96 → 128, k3, p1\nlazy: in_channels=96 inferred\n→ (1, 128, 28, 28)"
    assert (merge, "output") in edges(dot) and "skip" not in dot


def test_a_residual_block_has_its_skip_edge_and_an_add_node() -> None:
    dot = graph(load_example("resnet18")).source
    nodes = labels(dot)
    assert "subgraph cluster_n_b2_0 {" in dot and 'label="0 · Residual"' in dot
    skips = re.findall(r"^\s*(\w+) -> (\w+) \[[^\]]*label=\" skip\"", dot, flags=re.M)
    assert len(skips) == 5  # the identity shortcuts; b3.0, b4.0, b5.0 go through conv3
    fork, merge = skips[0]
    assert nodes[fork].startswith("3 · MaxPool2d") and nodes[merge] == "+\n→ (1, 64, 24, 24)"
    assert (fork, "n_b2_0_conv1") in edges(dot)  # the main branch starts at the same fork
    assert ("n_b2_0_bn2", merge) in edges(dot)
    first = next(b for a, b in edges(dot) if a == merge)
    assert nodes[first] == "relu"  # Y += X, then relu
    conv3 = [a for a, b in edges(dot) if a == "n_b3_0_conv3"]
    assert conv3 and nodes["n_b3_0_conv3"].startswith("conv3 · Conv2d\n64 → 128, k1, s2")


def test_collapsed_flow_blocks_show_their_class_totals_and_shape() -> None:
    design = load_example("resnet18")
    nodes = labels(graph(design, depth=2).source)
    assert nodes["n_b2_0"] == "0 · Residual\n4 layers\n74,112 parameters\n→ (1, 64, 24, 24)"
    assert nodes["n_b3_0"].startswith("0 · Residual\n5 layers\n")
    for depth in (1, 2, 3, None):
        drawn = labels(graph(design, depth=depth).source)
        assert len(drawn) - 2 == node_count(design, depth), depth  # (input and output not counted)
    assert fitting_depth(design) == 2


def test_a_child_called_twice_is_marked_like_a_shared_layer() -> None:
    design = Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [2, 8]},
            "layers": [
                {"type": "Linear", "in_features": 8, "out_features": 8, "name": "fc"},
                {"type": "Linear", "in_features": 8, "out_features": 3, "name": "out"},
            ],
            "flow": ["fc", {"op": "relu"}, "fc", {"op": "relu"}, "out"],
        }
    )
    dot = graph(design).source
    nodes = labels(dot)
    assert nodes["n_fc"] == "fc · Linear\n8 → 8\ncall 1 of 2: same weights\n→ (2, 8)"
    assert nodes["n_fc__2"] == "fc · Linear\n8 → 8\ncall 2 of 2: same weights\n→ (2, 8)"
    weights = next(k for k, v in nodes.items() if v.startswith("weights of 'fc'"))
    assert nodes[weights] == "weights of 'fc'\nLinear\n72 parameters\ncalled 2×"
    assert (weights, "n_fc") in edges(dot) and (weights, "n_fc__2") in edges(dot)
    assert edges(dot)[:5] == [
        ("input", "n_fc"),
        ("n_fc", "n_op1"),
        ("n_op1", "n_fc__2"),
        ("n_fc__2", "n_op2"),
        ("n_op2", "n_out"),
    ]


def test_a_merge_that_does_not_fit_is_red_and_names_the_branches() -> None:
    d = load_example("inception").to_dict()
    d["layers"][-1]["padding"] = 3  # b4_2 (1×1) now pads: 34×34 beside 28×28
    dot = graph(Design.from_dict(d)).source
    merge = next(iter(merges(dot)))
    assert "does not fit" in labels(dot)[merge]
    assert "#dc2626" in re.search(rf"{merge} \[.*?\]\n", dot, flags=re.S)[0]
    tooltip = re.search(rf'{merge} \[.*?tooltip="([^"]*)"', dot, flags=re.S)[1]
    assert "cat dim=1" in tooltip and "branch 3" in tooltip
    assert labels(dot)["output"] == "output"


def test_names_with_spaces_and_quotes_become_safe_ids_and_escaped_labels() -> None:
    dot = graph(load_example("rgnet")).source
    nodes = labels(dot)
    assert "subgraph cluster_n_0_block_0 {" in dot and 'label="block 0 · Sequential"' in dot
    assert nodes["n_0_block_0_0"].startswith("0 · Linear")
    design = Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [2, 4]},
            "layers": [
                {"type": "Linear", "in_features": 4, "out_features": 4, "name": 'say "hi" \\N'},
                {"type": "Linear", "in_features": 4, "out_features": 4, "name": "say _hi_ _N"},
            ],
        }
    )
    dot = graph(design).source
    assert r'label="say \"hi\" \\N · Linear' in dot  # a quote and a backslash shown as written
    assert len(set(labels(dot))) == 4  # two distinct ids although both names sanitize alike


def test_after_the_dry_run_a_lazy_layer_is_labelled_as_what_torch_built_with_its_inferred_size() -> None:
    """Issue 13, defect 7: after the dry run the graph still said "LazyLinear" where torch (and the parameter
    table) had a Linear. The truth: torch's own lazy modules after one forward pass."""
    import torch
    from torch import nn

    hand = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
    hand(torch.zeros(2, 20))
    after = labels(graph(load_example("lazy_mlp")).source)
    for i in (0, 2):
        built = type(hand[i]).__name__
        assert built == "Linear" and after[f"n_{i}"].startswith(f"{i} · {built}\n"), after[f"n_{i}"]
    assert after["n_0"] == "0 · Linear\n20 → 256\nlazy: in_features=20 inferred\n→ (2, 256)"
    assert after["n_2"].split("\n")[2] == f"lazy: in_features={hand[2].in_features} inferred"
    before = labels(graph(load_example("lazy_mlp"), inferred=False).source)
    assert before["n_0"] == "0 · LazyLinear\n? → 256\nlazy: size pending"  # as constructed: not built yet
    conv = nn.LazyConv2d(128, 3, padding=1)
    conv(torch.zeros(1, 96, 28, 28))
    inception = labels(graph(load_example("inception")).source)
    assert inception["n_b2_2"].startswith(f"b2_2 · {type(conv).__name__}\n96 → 128, k3, p1\n")
    assert "lazy: in_channels=96 inferred" in inception["n_b2_2"]


def test_every_lazy_type_is_labelled_with_the_class_torch_turns_it_into() -> None:
    from torch import nn

    from builder.registry import REGISTRY, built_type

    lazy = [name for name, lt in REGISTRY.items() if lt.is_lazy]
    assert len(lazy) >= 6  # LazyLinear, LazyConv1d/2d, LazyConvTranspose2d, LazyBatchNorm1d/2d
    for name in lazy:
        assert built_type(name, {"in": 1}) == getattr(nn, name).cls_to_become.__name__, name
        assert built_type(name, {}) == name  # not run yet: still lazy
    assert built_type("Linear", {}) == "Linear" and built_type("Sequential", {}) == "Sequential"


# -- the drawings graph keeps: never stale --------------------------------------------------------------------


def _mlp(width: int) -> Design:
    return Design.from_dict(
        {
            "format": 1,
            "name": "mlp",
            "input": {"shape": [2, 20]},
            "layers": [
                {"type": "LazyLinear", "out_features": width},
                {"type": "ReLU"},
                {"type": "Linear", "in_features": width, "out_features": 10},
            ],
        }
    )


def _from_scratch(design: Design, **options: Any) -> str:
    forget_drawings()
    return graph(design, **options).source


def test_graph_of_an_edited_design_shows_the_edit() -> None:
    first = _mlp(256)
    assert labels(graph(first).source)["n_0"] == "0 · Linear\n20 → 256\nlazy: in_features=20 inferred\n→ (2, 256)"
    edited = _mlp(64)  # what an editor makes: a new design
    assert "→ (2, 64)" in labels(graph(edited).source)["n_0"]
    assert graph(edited).source == _from_scratch(edited)
    # The same Design object changed in place (outside the editors' convention) is drawn as it is now.
    first.layers[0].args["out_features"] = 32  # type: ignore[index]
    first.layers[2].args["in_features"] = 32  # type: ignore[index]
    assert "→ (2, 32)" in labels(graph(first).source)["n_0"]
    assert graph(first).source == _from_scratch(first)
    # A run given by the caller (as the pages do): the design's own run again, or another design's drawing.
    run = dry_run(edited)
    assert graph(edited, run).source == graph(edited, run).source == _from_scratch(edited, inferred=run)
    named = dataclasses.replace(edited, layers=(dataclasses.replace(edited.layers[0], name="wide"), *edited.layers[1:]))
    drawn = graph(named, run).source
    assert "n_wide" in labels(drawn) and drawn == _from_scratch(named, inferred=run)


def test_graph_follows_the_limits_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    design = _mlp(256)
    fine = graph(design).source
    monkeypatch.setenv("BLOCKWORK_MAX_PARAMS", "1000")  # the dry run now refuses it: no shapes to draw
    refused = graph(design).source
    assert labels(fine)["output"] == "output\n(2, 10)" and labels(refused)["output"] == "output"
    assert refused == _from_scratch(design)
    monkeypatch.delenv("BLOCKWORK_MAX_PARAMS")
    assert graph(design).source == fine


def test_graph_options_are_drawn_each_and_the_caller_owns_its_graph() -> None:
    design = load_example("resnet18")
    every = graph(design).source
    shallow = graph(design, depth=1).source
    opened = graph(design, depth=1, expand=[blocks(design)[1][0]]).source
    assert len({every, shallow, opened}) == 3
    assert (every, shallow, opened) == (
        _from_scratch(design),
        _from_scratch(design, depth=1),
        _from_scratch(design, depth=1, expand=[blocks(design)[1][0]]),
    )
    g = graph(design, depth=1)
    g.node("mine", label="added by the caller")
    g.body[0] = "changed"
    assert graph(design, depth=1).source == shallow
