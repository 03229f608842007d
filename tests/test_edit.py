"""builder.edit: every editing operation, its edge cases, and what the edited design builds into."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from builder import Design, DesignError, UndoHistory, addressing, build, dry_run, edit, forms, load_example
from builder.design import Block, Layer, Use
from builder.flow import Call
from builder.registry import REGISTRY

from .chapter import tied as hand_tied


def linear(i: int | None, o: int, name: str | None = None) -> Layer:
    return forms.make_layer("Linear", {"in_features": i, "out_features": o}, name)


RELU = Layer("ReLU")


def mlp() -> Design:
    """Linear 4→8, ReLU, Linear 8→8, ReLU, Linear 8→1 on (2, 4)."""
    return Design(layers=(linear(4, 8), RELU, linear(8, 8), RELU, linear(8, 1)), input_shape=(2, 4))


def nested() -> Design:
    """[Block(Linear 4→8, ReLU, Linear 8→8), Linear 8→1]: a block to share and move inside."""
    return Design(layers=(Block((linear(4, 8), RELU, linear(8, 8))), linear(8, 1)), input_shape=(2, 4))


def types(d: Design) -> list[str]:
    return [
        n.type if isinstance(n, Layer) else ("use:" + n.shared if isinstance(n, Use) else "Block") for n in d.layers
    ]


def same_structure(a: nn.Module, b: nn.Module) -> None:
    """Same state_dict keys and shapes, and the same tensors tied (by identity) in both."""
    sa, sb = a.state_dict(keep_vars=True), b.state_dict(keep_vars=True)
    assert list(sa) == list(sb)
    assert {k: tuple(v.shape) for k, v in sa.items()} == {k: tuple(v.shape) for k, v in sb.items()}

    def ties(s: dict) -> set[tuple[str, ...]]:
        groups: dict[int, list[str]] = {}
        for k, v in s.items():
            groups.setdefault(id(v), []).append(k)
        return {tuple(g) for g in groups.values() if len(g) > 1}

    assert ties(sa) == ties(sb)


# -- addressing ---------------------------------------------------------------------------------------


def test_paths_follow_design_walk() -> None:
    d = load_example("nested")
    ours = [(addressing.format_path(p), n) for p, n in addressing.paths(d)]
    assert ours == [(path, node) for path, _, node in d.walk()]
    for path, _, node in d.walk():
        assert addressing.node_at(d, addressing.parse_path(path)) == node


def test_parse_and_format_path_round_trip() -> None:
    assert addressing.parse_path("layers[0].layers[2]") == (0, 2)
    assert addressing.format_path((0, 2)) == "layers[0].layers[2]"
    with pytest.raises(DesignError, match="not a path"):
        addressing.parse_path("shared.x")


def test_node_at_a_missing_path_says_so() -> None:
    with pytest.raises(DesignError, match=r"no layer at layers\[9\]"):
        addressing.node_at(mlp(), (9,))
    with pytest.raises(DesignError, match="not a block"):
        addressing.node_at(mlp(), (0, 1))


# -- insert / delete ----------------------------------------------------------------------------------


def test_insert_at_start_middle_end_and_inside_a_block() -> None:
    d = mlp()
    assert types(edit.insert(d, (0,), Layer("Identity")))[0] == "Identity"
    assert types(edit.insert(d, (5,), Layer("Identity")))[-1] == "Identity"
    assert types(edit.insert(d, (2,), Layer("Tanh")))[2] == "Tanh"
    n = edit.insert(nested(), (0, 1), Layer("Tanh"))
    assert addressing.node_at(n, (0, 1)) == Layer("Tanh")
    assert len(n.layers[0].layers) == 4
    with pytest.raises(DesignError, match="cannot insert"):
        edit.insert(d, (7,), RELU)


def test_insert_validates_the_new_layer() -> None:
    with pytest.raises(DesignError, match="out_features"):
        edit.insert(mlp(), (0,), Layer("Linear", {"in_features": 4, "out_features": 0}))


def test_delete_and_the_only_layer_of_a_block() -> None:
    d = edit.delete(mlp(), (1,))
    assert types(d) == ["Linear", "Linear", "ReLU", "Linear"]
    single = Design(layers=(Block((RELU,)), linear(4, 1)), input_shape=(2, 4))
    with pytest.raises(DesignError, match="only layer of block"):
        edit.delete(single, (0, 0))
    emptied = edit.delete(Design(layers=(RELU,), input_shape=(2, 4)), (0,))
    assert emptied.layers == ()  # the editor's empty start, as clear


def test_deleting_the_last_use_drops_the_shared_definition() -> None:
    d = edit.share(mlp(), (2,), "tie")
    assert "tie" in d.shared
    gone = edit.delete(d, (2,))
    assert gone.shared == {} and all(not isinstance(n, Use) for n in gone.layers)
    twice = edit.use_shared(d, (4,), "tie")
    once = edit.delete(twice, (2,))
    assert "tie" in once.shared and addressing.uses(once, "tie") == [(3,)]


def test_deleting_a_shared_layer_still_used_is_refused_unless_asked_to_remove_every_use() -> None:
    d = edit.use_shared(edit.share(mlp(), (2,), "tie"), (4,), "tie")
    with pytest.raises(DesignError, match=r"still used at layers\[2\], layers\[4\].*refused") as info:
        edit.delete_shared(d, "tie")
    assert info.value.path == "shared.tie"
    out = edit.delete_shared(d, "tie", with_uses=True)
    assert out.shared == {} and types(out) == ["Linear", "ReLU", "ReLU", "Linear"]


# -- move -------------------------------------------------------------------------------------------


def test_move_up_and_down() -> None:
    d = mlp()
    assert types(edit.move(d, (1,), -1))[:2] == ["ReLU", "Linear"]
    assert types(edit.move(d, (1,), 1))[1:3] == ["Linear", "ReLU"]
    assert edit.move(edit.move(d, (1,), 1), (2,), -1) == d


def test_moving_the_first_up_or_the_last_down_is_refused() -> None:
    d = mlp()
    with pytest.raises(DesignError, match="already the first layer of the stack") as info:
        edit.move(d, (0,), -1)
    assert info.value.path == "layers[0]"
    with pytest.raises(DesignError, match="already the last layer of the stack"):
        edit.move(d, (4,), 1)
    with pytest.raises(DesignError, match=r"already the last layer of block layers\[0\]"):
        edit.move(nested(), (0, 2), 1)  # does not leave its block
    with pytest.raises(DesignError, match="only 1 layer above it in the stack"):
        edit.move(d, (1,), -3)
    assert edit.move(d, (1,), 0) is d


def test_move_inside_a_nested_block() -> None:
    d = edit.move(nested(), (0, 2), -1)
    assert [n.type for n in d.layers[0].layers] == ["Linear", "Linear", "ReLU"]


# -- duplicate --------------------------------------------------------------------------------------


def test_duplicate_layer_block_and_named_node() -> None:
    d = edit.duplicate(mlp(), (2,))  # Linear 8 -> 8 receives 8 below itself too: an equal copy
    assert d.layers[2] == d.layers[3] and len(d.layers) == 6
    n = edit.duplicate(Design(layers=(Block((linear(4, 4), RELU)),), input_shape=(2, 4)), (0,))
    assert n.layers[0] == n.layers[1]
    named = edit.duplicate(edit.rename(mlp(), (0,), "hidden"), (0,))
    assert [x.name for x in named.layers[:2]] == ["hidden", "hidden_2"]
    again = edit.duplicate(named, (1,))
    assert again.layers[2].name == "hidden_3"


def test_a_duplicate_fits_where_it_lands() -> None:
    """Issue 13, defect 7: duplicating Linear(4, 8) gave Linear(4, 8) under it, which receives 8 features: a
    broken design. The copy takes the size it receives (its output stays), as a person writing the code would:
    nn.Linear(4, 8), nn.Linear(8, 8)."""
    d = edit.duplicate(mlp(), (0,))
    assert d.layers[1] == linear(8, 8) and d.layers[0] == linear(4, 8)
    hand = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
    same_structure(build(d), hand)
    # a block: its first layer takes what the block receives (8), the rest is copied as is
    n = edit.duplicate(nested(), (0,))
    assert n.layers[1].layers[0] == linear(8, 8) and n.layers[1].layers[1:] == nested().layers[0].layers[1:]
    dry_run(n)
    # Conv2d(3, 16) duplicated: the copy takes the 16 channels it receives, kernel and padding kept
    conv = forms.make_layer("Conv2d", {"in_channels": 3, "out_channels": 16, "kernel_size": 3, "padding": 1})
    c = edit.duplicate(Design(layers=(conv, RELU), input_shape=(1, 3, 8, 8)), (0,))
    assert c.layers[1].args == {**conv.args, "in_channels": 16}
    hand_conv = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
    same_structure(build(c), hand_conv)
    # a lazy layer infers its size anyway: an equal copy
    lazy = load_example("lazy_mlp")
    assert edit.duplicate(lazy, (0,)).layers[1] == lazy.layers[0]
    # a BatchNorm after the conv: its size is the channels it receives, which the copy receives too
    bn = forms.make_layer("BatchNorm2d", {"num_features": 16})
    b = edit.duplicate(Design(layers=(conv, bn), input_shape=(1, 3, 8, 8)), (1,))
    assert b.layers[2] == bn


def test_a_duplicate_in_a_design_that_does_not_build_is_a_plain_copy() -> None:
    # the fault is further down: the dry run cannot say what the copy receives
    broken = edit.set_args(mlp(), (4,), {"in_features": 99, "out_features": 1})
    d = edit.duplicate(broken, (0,))
    assert d.layers[1] == d.layers[0]


def test_duplicating_a_use_adds_another_use_of_the_same_weights() -> None:
    d = edit.duplicate(edit.share(mlp(), (2,), "tie"), (2,))
    assert addressing.uses(d, "tie") == [(2,), (3,)]
    net = build(d)
    assert net[2] is net[3]


# -- group / ungroup -------------------------------------------------------------------------------


def test_group_unnamed_and_named_matches_hand_written_nesting() -> None:
    d = edit.group(mlp(), [(2,), (0,), (1,)])
    assert isinstance(d.layers[0], Block) and len(d.layers) == 3
    torch_net = nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8)), nn.ReLU(), nn.Linear(8, 1))
    same_structure(build(d), torch_net)
    named = edit.group(mlp(), [(0,), (1,)], name="features")
    assert list(build(named).state_dict())[:2] == ["features.0.weight", "features.0.bias"]


def test_group_refuses_gaps_mixed_levels_and_empty_selections() -> None:
    with pytest.raises(DesignError, match="next to each other"):
        edit.group(mlp(), [(0,), (2,)])
    with pytest.raises(DesignError, match="same block"):
        edit.group(nested(), [(0, 2), (1,)])
    with pytest.raises(DesignError, match="select the layers"):
        edit.group(mlp(), [])
    with pytest.raises(DesignError, match="cannot contain '.'"):
        edit.group(mlp(), [(0,)], name="not.a.name")  # format 2: any name add_module takes ("block 0" is one)


def test_group_inside_a_block_and_ungroup_restore() -> None:
    d = edit.group(nested(), [(0, 1), (0, 2)], name="inner")
    assert addressing.node_at(d, (0, 1)).name == "inner"
    assert edit.ungroup(d, (0, 1)) == nested()
    assert edit.ungroup(edit.group(mlp(), [(1,), (2,), (3,)]), (1,)) == mlp()


def test_ungroup_refuses_layers_uses_and_name_clashes() -> None:
    with pytest.raises(DesignError, match="not a block"):
        edit.ungroup(mlp(), (0,))
    d = Design(layers=(linear(4, 8, "a"), Block((linear(8, 8, "a"),))), input_shape=(2, 4))
    with pytest.raises(DesignError, match="clash"):
        edit.ungroup(d, (1,))
    shared_block = edit.share(nested(), (0,), "blk")
    with pytest.raises(DesignError, match="unshare it first"):
        edit.ungroup(shared_block, (0,))


# -- share / use / unshare --------------------------------------------------------------------------


def test_building_the_tied_network_by_edits_equals_the_example_and_hand_written_pytorch() -> None:
    d = edit.clear(mlp())
    for i, layer in enumerate([linear(4, 8), RELU, linear(8, 8), RELU]):
        d = edit.insert(d, (i,), layer)
    d = edit.share(d, (2,), "shared")
    d = edit.use_shared(d, (4,), "shared")
    d = edit.insert(d, (5,), RELU)
    d = edit.insert(d, (6,), linear(8, 1))
    example = load_example("tied")
    assert (d.layers, d.shared, d.input_shape) == (example.layers, example.shared, example.input_shape)
    net = build(d)
    same_structure(net, hand_tied())
    assert net[2] is net[4]


def test_sharing_inside_a_nested_block_ties_the_block_layer_to_a_top_level_use() -> None:
    d = edit.share(nested(), (0, 2), "tie")  # layers[0].layers[2] becomes the first use
    assert addressing.node_at(d, (0, 2)) == Use("tie")
    d = edit.use_shared(d, (1,), "tie")  # and another use at the top level, before the output layer
    assert addressing.uses(d, "tie") == [(0, 2), (1,)]
    net = build(d)
    assert net[0][2] is net[1]
    shared = nn.Linear(8, 8)
    torch_net = nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared), shared, nn.Linear(8, 1))
    same_structure(net, torch_net)
    # a use may also go inside a block
    d2 = edit.use_shared(d, (0, 0), "tie")
    assert addressing.uses(d2, "tie") == [(0, 0), (0, 3), (1,)]


def test_share_keeps_the_node_name_on_the_use_and_refuses_bad_requests() -> None:
    d = edit.share(edit.rename(mlp(), (2,), "mid"), (2,), "tie")
    assert d.layers[2] == Use("tie", name="mid") and d.shared["tie"].name is None
    with pytest.raises(DesignError, match="already a use"):
        edit.share(d, (2,), "other")
    with pytest.raises(DesignError, match="already a shared layer called 'tie'"):
        edit.share(d, (0,), "tie")
    with pytest.raises(DesignError, match="Python identifier"):
        edit.share(mlp(), (0,), "2x")
    with pytest.raises(DesignError, match="no shared layer 'nope'"):
        edit.use_shared(mlp(), (0,), "nope")


def test_a_block_holding_a_use_cannot_be_shared() -> None:
    d = edit.group(edit.share(mlp(), (2,), "tie"), [(2,), (3,)])
    with pytest.raises(DesignError, match="cannot use another"):
        edit.share(d, (2,), "outer")


def test_sharing_a_block_shares_all_its_weights() -> None:
    block = Design(layers=(Block((linear(8, 8), RELU)),), input_shape=(2, 8))
    d = edit.use_shared(edit.share(block, (0,), "b"), (1,), "b")
    net = build(d)
    assert net[0] is net[1] and net[0][0].weight is net[1][0].weight
    shared = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
    same_structure(net, nn.Sequential(shared, shared))


def test_unshare_gives_an_own_copy_and_drops_the_definition_with_its_last_use() -> None:
    d = edit.use_shared(edit.share(mlp(), (2,), "tie"), (4,), "tie")
    one = edit.unshare(d, (4,))
    assert one.layers[4] == linear(8, 8) and addressing.uses(one, "tie") == [(2,)]
    net = build(one)
    assert net[2] is not net[4]
    none = edit.unshare(one, (2,))
    assert none.shared == {} and none == edit.insert(mlp(), (4,), linear(8, 8))
    with pytest.raises(DesignError, match="not a use"):
        edit.unshare(mlp(), (0,))


def test_rename_shared_renames_every_use() -> None:
    d = edit.use_shared(edit.share(mlp(), (2,), "tie"), (4,), "tie")
    r = edit.rename_shared(d, "tie", "hidden")
    assert list(r.shared) == ["hidden"] and addressing.uses(r, "hidden") == [(2,), (4,)]
    with pytest.raises(DesignError, match="no shared layer"):
        edit.rename_shared(d, "nope", "x")


# -- rename / set_args / set_input ---------------------------------------------------------------------


def test_rename_blocks_and_children_changes_state_dict_keys() -> None:
    d = edit.rename(edit.rename(nested(), (0,), "body"), (0, 0), "first")
    assert list(build(d).state_dict())[:2] == ["body.first.weight", "body.first.bias"]
    assert edit.rename(d, (0,), "").layers[0].name is None  # empty: indexed again
    with pytest.raises(DesignError, match="already the name of"):
        edit.rename(d, (0, 2), "first")
    with pytest.raises(DesignError, match="taken by nn.Sequential"):
        edit.rename(d, (1,), "forward")
    with pytest.raises(DesignError, match="cannot contain '.'"):
        edit.rename(d, (1,), "9.lives")
    assert list(build(edit.rename(d, (0,), "block 0")).state_dict())[:1] == ["block 0.first.weight"]  # the book's


def test_renaming_a_child_of_a_flow_block_renames_its_calls() -> None:
    d = load_example("resnet18")
    block = (2, 0)  # b3.0: a Residual with conv3 on its skip
    d = edit.rename(d, (*block, 2), "shortcut")
    flow = addressing.node_at(d, block).flow
    assert flow[0].branches[1] == (Call("shortcut"),)
    net = build(d)
    assert "b3.0.shortcut.weight" in net.state_dict() and "b3.0.conv3.weight" not in net.state_dict()
    top = Design.from_dict({**load_example("densenet_block").to_dict()})
    renamed = edit.rename(top, (0,), "blocks")  # the top-level flow calls "net.0", "net.1"
    assert [b.branches[1] for b in renamed.flow] == [(Call("blocks.0"),), (Call("blocks.1"),)]
    assert list(build(renamed).state_dict())[0] == "blocks.0.0.weight"


def test_set_args_and_lazy_switch() -> None:
    d = edit.set_args(mlp(), (0,), {"in_features": None, "out_features": 8, "bias": True})
    assert d.layers[0] == Layer("LazyLinear", {"out_features": 8})  # empty in_features: lazy
    assert dry_run(d).layers[0].inferred == {"in_features": 4}
    back = edit.set_args(d, (0,), {"in_features": 4, "out_features": 8, "bias": True})
    assert back == mlp()  # given again: eager, and bias=True (the default) is not stored
    nob = edit.set_args(mlp(), (0,), {"in_features": 4, "out_features": 8, "bias": False})
    assert nob.layers[0].args == {"in_features": 4, "out_features": 8, "bias": False}
    with pytest.raises(DesignError, match="out_features") as info:
        edit.set_args(mlp(), (0,), {"in_features": 4, "out_features": 0})
    assert info.value.path == "layers[0].out_features"
    with pytest.raises(DesignError, match="block"):
        edit.set_args(nested(), (0,), {})


def test_set_args_at_a_use_changes_the_shared_layer_for_every_use() -> None:
    d = edit.use_shared(edit.share(mlp(), (2,), "tie"), (4,), "tie")
    d = edit.set_args(d, (4,), {"in_features": None, "out_features": 8})
    assert d.shared["tie"] == Layer("LazyLinear", {"out_features": 8})
    net = build(d)
    assert net[2] is net[4] and net[2].weight.shape == (8, 8)


def test_lazy_layers_built_by_edits_match_the_chapter() -> None:
    d = edit.clear(mlp())
    d = edit.set_input(d, (2, 20))
    d = edit.insert(d, (0,), forms.make_layer("Linear", {"in_features": None, "out_features": 256}))
    d = edit.insert(d, (1,), RELU)
    d = edit.insert(d, (2,), forms.make_layer("LazyLinear", {"out_features": 10}))
    assert d.layers == load_example("lazy_mlp").layers
    hand = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
    hand(torch.randn(2, 20))
    same_structure(build(d), hand)


def test_set_input_shape_and_dtype() -> None:
    d = edit.set_input(mlp(), (5, 4))
    assert d.input_shape == (5, 4) and dry_run(d).output_shape == (5, 1)
    assert edit.set_input(mlp(), (2, 4), "int64").input_dtype == "int64"
    with pytest.raises(DesignError, match="input.dtype"):
        edit.set_input(mlp(), (2, 4), "float16")
    with pytest.raises(DesignError, match="positive"):
        edit.set_input(mlp(), (2, 0))


def test_make_layer_drops_defaults_and_checks_values() -> None:
    conv = forms.make_layer(
        "Conv2d",
        {
            "in_channels": 1,
            "out_channels": 6,
            "kernel_size": 5,
            "stride": 1,
            "padding": 2,
            "bias": True,
            "padding_mode": "zeros",
        },
    )
    assert conv == Layer("Conv2d", {"in_channels": 1, "out_channels": 6, "kernel_size": 5, "padding": 2})
    assert forms.make_layer("Conv2d", {"in_channels": None, "out_channels": 6, "kernel_size": 3}).type == "LazyConv2d"
    assert forms.make_layer("MaxPool2d", {"kernel_size": 2, "stride": None}) == Layer("MaxPool2d", {"kernel_size": 2})
    with pytest.raises(DesignError, match="out_features is needed"):
        forms.make_layer("Linear", {"in_features": 4, "out_features": None})
    with pytest.raises(DesignError, match="no argument 'units'"):
        forms.make_layer("Linear", {"units": 3})


def test_form_values_show_lazy_sizes_empty() -> None:
    assert forms.form_type("LazyLinear") == "Linear" and forms.lazy_arg("LazyLinear") == "in_features"
    assert forms.form_values(Layer("LazyLinear", {"out_features": 8})) == {
        "in_features": None,
        "out_features": 8,
        "bias": True,
    }
    assert forms.lazy_arg("ReLU") is None


def test_parse_value_and_shape() -> None:
    reg = REGISTRY
    ks = reg["Conv2d"].arg_index["kernel_size"]
    assert forms.parse_value(ks, "3") == 3 and forms.parse_value(ks, "3, 5") == [3, 5]
    assert forms.parse_value(ks, "(3, 5)") == [3, 5] and forms.parse_value(ks, "") is None
    assert forms.parse_value(reg["Conv2d"].arg_index["padding"], "same") == "same"
    assert forms.format_value((3, 5)) == "3, 5" and forms.format_value(None) == ""
    with pytest.raises(DesignError, match="whole number"):
        forms.parse_value(ks, "three")
    assert forms.parse_shape("2, 4") == (2, 4) and forms.parse_shape("(1, 1, 28, 28)") == (1, 1, 28, 28)
    assert forms.parse_shape("2x20") == (2, 20)
    for bad in ("", "2, a", "2, 0"):
        with pytest.raises(DesignError, match="input.shape"):
            forms.parse_shape(bad)


def test_edits_keep_other_fields_of_a_layer() -> None:
    """A layer's init (and anything else it carries) survives an edit of its arguments or a share."""
    base = Design.from_dict(
        {
            "format": 1,
            "input": {"shape": [2, 4]},
            "layers": [{"type": "Linear", "in_features": 4, "out_features": 8, "init": "zeros"}],
        }
    )
    d = edit.set_args(base, (0,), {"in_features": 4, "out_features": 3})
    assert d.layers[0].init == base.layers[0].init and d.layers[0].args["out_features"] == 3


# -- clear and history -----------------------------------------------------------------------------------


def test_clear_keeps_the_input_and_the_empty_design_can_grow() -> None:
    d = edit.clear(load_example("tied"))
    assert d.layers == () and d.shared == {} and d.input_shape == (2, 4)
    d = edit.insert(d, (0,), linear(4, 1))
    assert dry_run(d).output_shape == (2, 1)


def test_history_undo_redo_and_a_new_edit_forgets_redo() -> None:
    a, b, c = mlp(), edit.delete(mlp(), (1,)), edit.delete(mlp(), (3,))
    h = UndoHistory(a).push(b)
    assert h.present == b and h.can_undo and not h.can_redo
    h = h.undo()
    assert h.present == a and h.can_redo and not h.can_undo
    assert h.redo().present == b
    h = h.push(c)
    assert h.present == c and not h.can_redo and h.past == (a,)
    with pytest.raises(DesignError, match="nothing to redo"):
        h.redo()
    with pytest.raises(DesignError, match="nothing to undo"):
        UndoHistory(a).undo()
    assert UndoHistory(a).push(a).can_undo is False  # an edit that changes nothing is not recorded


def test_history_keeps_at_most_its_limit() -> None:
    h = UndoHistory(mlp(), limit=3)
    for n in range(10, 15):
        h = h.push(edit.set_input(mlp(), (n, 4)))
    assert [p.input_shape[0] for p in h.past] == [11, 12, 13] and h.present.input_shape == (14, 4)


def test_locate_points_at_the_node_of_an_error_path() -> None:
    d = edit.use_shared(edit.share(nested(), (0, 2), "tie"), (1,), "tie")
    assert addressing.locate(d, "layers[0].layers[1]") == [(0, 1)]
    assert addressing.locate(d, "layers[1].in_features") == [(1,)]
    assert addressing.locate(d, "shared.tie.out_features") == [(0, 2), (1,)]
    assert addressing.locate(d, None) == [] and addressing.locate(d, "input.shape") == []


def test_the_dry_run_error_of_an_edit_points_at_the_edited_layer() -> None:
    d = edit.set_args(mlp(), (2,), {"in_features": 5, "out_features": 8})
    with pytest.raises(DesignError) as info:
        dry_run(d)
    assert addressing.locate(d, info.value.path) == [(2,)]


# -- what the add form offers ----------------------------------------------------------------------------


def test_new_values_prefill_defaults_examples_and_the_input_size() -> None:
    assert forms.new_values("Linear") == {"in_features": 20, "out_features": 256, "bias": True}
    assert forms.new_values("Linear", (2, 8))["in_features"] == 8
    assert forms.new_values("Conv2d", (1, 3, 28, 28))["in_channels"] == 3
    assert forms.new_values("BatchNorm1d", (2, 16))["num_features"] == 16
    assert forms.new_values("LazyLinear", (2, 8))["in_features"] is None  # lazy: left empty
    assert forms.new_values("MaxPool2d") == {
        "kernel_size": 2,
        "stride": None,
        "padding": 0,
        "dilation": 1,
        "ceil_mode": False,
    }
    assert forms.new_values("Linear", ())["in_features"] == 20  # no feature axis to read: the example
    for name in REGISTRY:  # every type's pre-filled form makes a layer that reads back
        layer = forms.make_layer(name, forms.new_values(name))
        doc = {"format": 1, "input": {"shape": [1]}, "layers": [{"type": layer.type, **layer.args}]}
        if REGISTRY[name].returns_tuple:  # an LSTM's tuple is taken apart by a flow, not a Sequential
            doc = {**doc, "format": 2, "layers": [{**doc["layers"][0], "name": "m"}], "flow": ["m"]}
        assert Design.from_dict(doc).layers[0] == dataclasses.replace(layer, name=doc["layers"][0].get("name"))


def test_insert_points_cover_every_position_once() -> None:
    d = edit.use_shared(edit.share(nested(), (0, 2), "tie"), (1,), "tie")
    points = forms.insert_points(d)
    assert list(points)[0] == "layers[3]" and points["layers[3]"] == "at the end"
    assert points["layers[0]"] == "at the start"
    assert points["layers[0].layers[0]"] == "first inside 0 · Sequential"
    assert points["layers[0].layers[3]"] == "after 0.2 · shared 'tie'"
    assert points["layers[2]"] == "after 1 · shared 'tie'"
    for where in points:  # each one is a valid place to insert
        edit.insert(d, addressing.parse_path(where), RELU)
    assert forms.insert_points(edit.clear(d)) == {"layers[0]": "at the end"}


def test_input_shape_at_reads_the_dry_run() -> None:
    d = nested()  # (2, 4) -> block(Linear 4→8, ReLU, Linear 8→8) -> Linear 8→1
    run = dry_run(d)
    assert forms.input_shape_at(d, (0,), run) == (2, 4)
    assert forms.input_shape_at(d, (0, 0), run) == (2, 4)
    assert forms.input_shape_at(d, (0, 1), run) == (2, 8)
    assert forms.input_shape_at(d, (2,), run) == (2, 1)
    assert forms.input_shape_at(d, (2,), None) is None and forms.input_shape_at(d, (0,), None) == (2, 4)
