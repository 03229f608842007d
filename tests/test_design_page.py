"""The Design page (AppTest): build networks by clicking, undo/redo, the JSON view, refused and broken edits."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from streamlit.testing.v1 import AppTest

from builder import Design, build, load_example
from builder.design import Block, Layer, Use
from ui import state


def draft(at: AppTest) -> Design:
    """The design the page is editing (may not build)."""
    return at.session_state[state.DESIGN_HISTORY.name].present


def ok(at: AppTest) -> AppTest:
    assert not at.exception, at.exception
    return at


def click(at: AppTest, key: str) -> AppTest:
    return ok(at.button(key=key).click().run())


def open_row(at: AppTest, row: str) -> AppTest:
    """Open a row's editor (its pencil): where its move, duplicate and delete buttons are."""
    editing = at.session_state[state.DESIGN_EDITING.name] if state.DESIGN_EDITING.name in at.session_state else None  # noqa: SIM401 (no .get here)
    if editing != tuple(map(int, row.split("_"))):
        click(at, f"edit_{row}")
    return at


def add(at: AppTest, choice: str, where: str | None = None, **args: int | None) -> AppTest:
    """Pick a type (or "shared:NAME") in the add panel, fill its number inputs and click Add."""
    ok(at.selectbox(key="add_type").select(choice).run())
    if where is not None:
        ok(at.selectbox(key="add_where").select(where).run())
    texts = {w.key for w in at.text_input}
    for name, value in args.items():
        if f"new_{name}" in texts:  # an input size that may be left empty (lazy) is a text box
            at.text_input(key=f"new_{name}").input("" if value is None else str(value))
        else:
            at.number_input(key=f"new_{name}").set_value(value)
    return click(at, "add")


def start_empty(at: AppTest) -> AppTest:
    click(at, "clear")
    click(at, "clear_yes")
    assert draft(at).layers == ()
    return at


def network(d: Design) -> Design:
    """What makes the network: the design without its name and description."""
    return dataclasses.replace(d, name="", description="")


def build_tied_by_clicking(at: AppTest) -> AppTest:
    start_empty(at)
    ok(at.text_input(key="input_shape").input("2, 4").run())
    add(at, "Linear", in_features=4, out_features=8)
    add(at, "ReLU")
    add(at, "Linear", out_features=8)  # in_features is pre-filled with the 8 the layer will receive
    click(at, "edit_2")
    at.text_input(key="share_name").input("shared")
    click(at, "share")
    add(at, "ReLU")
    add(at, "shared:shared")
    add(at, "ReLU")
    add(at, "Linear", in_features=8, out_features=1)
    return at


def test_the_design_page_is_the_start_page(app: AppTest) -> None:
    assert app.title[0].value == "Design"
    assert draft(app) == app.session_state[state.DESIGN.name]
    assert "0 · Linear" in app.get("graphviz_chart")[0].proto.spec


def test_build_the_tied_network_from_empty_by_clicking(app: AppTest) -> None:
    at = build_tied_by_clicking(app)
    tied = load_example("tied")
    assert network(draft(at)) == network(tied)
    assert network(at.session_state[state.DESIGN.name]) == network(tied)  # it builds, so the session follows
    mine, theirs = build(draft(at)).state_dict(), build(tied).state_dict()
    assert {k: tuple(v.shape) for k, v in mine.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    dot = at.get("graphviz_chart")[0].proto.spec
    assert dot.count("shared 'shared'") == 2 and "shared weights 'shared'" in dot
    assert not at.error
    # the preview tells both totals: 121 held, 193 counted per use
    assert any("121" in m.value and "193" in m.value for m in at.markdown)


def test_new_layer_after_a_known_shape_is_prefilled_with_its_input_size(app: AppTest) -> None:
    ok(app.selectbox(key="add_type").select("Linear").run())
    assert app.text_input(key="new_in_features").value == "10"  # the default example ends in (2, 10)


def test_empty_input_size_makes_the_layer_lazy_and_the_row_says_so(app: AppTest) -> None:
    at = add(app, "Linear", in_features=None, out_features=5)
    assert draft(at).layers[-1] == Layer("LazyLinear", {"out_features": 5})
    assert any("lazy: in_features=10 inferred" in m.value for m in at.markdown)
    # editing it shows the Linear form with in_features empty; giving it makes it eager again
    click(at, "edit_3")
    assert at.text_input(key="arg_in_features").value == ""
    at.text_input(key="arg_in_features").input("10")
    click(at, "apply")
    assert draft(at).layers[-1] == Layer("Linear", {"in_features": 10, "out_features": 5})
    click(at, "edit_3")
    at.text_input(key="arg_in_features").input("")
    click(at, "apply")
    assert draft(at).layers[-1] == Layer("LazyLinear", {"out_features": 5})
    # picking a Lazy* type in the list gives the same form, its size empty
    ok(at.selectbox(key="add_type").select("LazyConv2d").run())
    assert at.text_input(key="new_in_channels").value == ""


def test_a_size_that_is_not_a_number_is_refused(app: AppTest) -> None:
    at = add(app, "Linear", in_features=None, out_features=5)
    ok(at.selectbox(key="add_type").select("Linear").run())
    at.text_input(key="new_in_features").input("ten")
    at = click(at, "add")
    assert "in_features" in at.error[0].value and "whole number" in at.error[0].value
    assert len(draft(at).layers) == 4


def test_move_duplicate_delete_and_disabled_ends(app: AppTest) -> None:
    assert open_row(app, "2").button(key="down_2").disabled
    assert open_row(app, "0").button(key="up_0").disabled
    at = click(app, "down_0")
    assert [n.type for n in draft(at).layers] == ["ReLU", "Linear", "Linear"]
    assert at.session_state[state.DESIGN_EDITING.name] == (1,)  # the editor follows the moved row
    click(at, "up_1")
    click(open_row(at, "1"), "dup_1")
    assert [n.type for n in draft(at).layers] == ["Linear", "ReLU", "ReLU", "Linear"]
    click(open_row(at, "2"), "del_2")
    assert draft(at) == load_example("sequential_mlp")


def test_undo_and_redo_every_edit(app: AppTest) -> None:
    start = draft(app)
    assert app.button(key="undo").disabled and app.button(key="redo").disabled
    at = add(app, "ReLU")
    after_add = draft(at)
    click(open_row(at, "0"), "del_0")
    click(at, "undo")
    assert draft(at) == after_add
    click(at, "undo")
    assert draft(at) == start and at.session_state[state.DESIGN.name] == start
    assert at.button(key="undo").disabled
    click(at, "redo")
    click(at, "redo")
    assert [n.type for n in draft(at).layers] == ["ReLU", "Linear", "ReLU"]
    assert at.button(key="redo").disabled


def test_an_edit_that_breaks_the_build_keeps_the_last_design_that_built(app: AppTest) -> None:
    before = app.session_state[state.DESIGN.name]
    click(app, "edit_2")
    app.text_input(key="arg_in_features").input("99")
    at = click(app, "apply")
    assert draft(at).layers[2].args["in_features"] == 99  # the draft holds the edit...
    assert at.session_state[state.DESIGN.name] == before  # ...the session keeps the network that works
    errors = [e.value for e in at.error]
    assert any("layers[2]" in e and "expects 99 input features, gets 256" in e for e in errors), errors
    assert any("does not fit" in m.value for m in at.markdown)  # the row at fault is marked
    assert "does not fit" in at.get("graphviz_chart")[0].proto.spec
    click(at, "undo")
    assert draft(at) == before and not at.error


def test_a_refused_edit_changes_nothing_and_says_why(app: AppTest) -> None:
    before = draft(app)
    click(app, "edit_0")
    app.text_input(key="name").input("hidden.1")  # a dot would split the state_dict key
    at = click(app, "apply")
    assert draft(at) == before
    assert "cannot contain '.'" in at.error[0].value and "Not done" in at.error[0].value


def test_json_view_edits_and_shows_errors_inline(app: AppTest) -> None:
    before = draft(app)
    app.text_area(key="json").input('{"format": 1, "input": {"shape": [2, 3]}, "layers": [{"type": "Linaer"}]}')
    at = click(app, "json_apply")
    assert draft(at) == before
    assert "unknown layer type 'Linaer'" in at.error[0].value and "layers[0].type" in at.error[0].value
    at.text_area(key="json").input("{not json")
    click(at, "json_apply")
    assert "not valid JSON" in at.error[0].value and draft(at) == before
    at.text_area(key="json").input(load_example("tied").to_json())
    click(at, "json_apply")
    assert draft(at) == load_example("tied") and not at.error
    assert at.session_state[state.DESIGN.name] == load_example("tied")


def test_clear_asks_before_discarding(app: AppTest) -> None:
    before = draft(app)
    at = click(app, "clear")
    assert "Discard" in at.warning[0].value and draft(at) == before
    click(at, "clear_no")
    assert draft(at) == before and not at.warning
    click(at, "clear")
    click(at, "clear_yes")
    assert draft(at).layers == () and any("empty" in i.value for i in at.info)
    assert at.session_state[state.DESIGN.name] == before  # other pages keep the last design that built
    click(at, "undo")
    assert draft(at) == before


def test_start_from_an_example(app: AppTest) -> None:
    ok(app.selectbox(key="start").select("nested").run())
    at = click(app, "load")
    assert draft(at) == load_example("nested") == at.session_state[state.DESIGN.name]
    assert any("lazy" in m.value for m in at.markdown)


def test_group_rename_and_ungroup(app: AppTest) -> None:
    app.checkbox(key="sel_0").check()
    app.checkbox(key="sel_1").check().run()
    app.text_input(key="group_name").input("features")
    at = click(app, "group")
    d = draft(at)
    assert d.layers[0].name == "features" and len(d.layers[0].layers) == 2
    assert list(build(d).state_dict())[0] == "features.0.weight"
    click(at, "edit_0")
    at.text_input(key="name").input("body")
    click(at, "apply")
    assert draft(at).layers[0].name == "body"
    click(at, "edit_0_1")
    at.text_input(key="name").input("act")
    click(at, "apply")
    assert draft(at).layers[0].layers[1].name == "act"
    click(at, "edit_0")
    click(at, "ungroup")
    assert [n.type for n in draft(at).layers] == ["Linear", "ReLU", "Linear"]
    assert draft(at).layers[1].name == "act"


def test_group_of_layers_apart_is_refused(app: AppTest) -> None:
    app.checkbox(key="sel_0").check()
    app.checkbox(key="sel_2").check().run()
    at = click(app, "group")
    assert "next to each other" in at.error[0].value


def test_use_of_a_shared_layer_inside_a_block_and_edit_at_a_use(app: AppTest) -> None:
    at = build_tied_by_clicking(app)
    at.checkbox(key="sel_3").check()
    at.checkbox(key="sel_4").check().run()
    click(at, "group")  # [.., ReLU, Block(ReLU, use), ReLU, ..]
    add(at, "shared:shared", where="layers[3].layers[0]")
    assert draft(at).layers[3].layers[0] == Use("shared")
    assert [p for p, _, n in draft(at).walk() if isinstance(n, Use)] == [
        "layers[2]",
        "layers[3].layers[0]",
        "layers[3].layers[2]",
    ]
    net = build(draft(at))
    assert net[2] is net[3][0] is net[3][2]
    # editing a use edits the shared layer: every use changes together
    click(at, "edit_2")
    at.text_input(key="arg_in_features").input("8")
    at.checkbox(key="arg_bias").uncheck()
    click(at, "apply")
    assert draft(at).shared["shared"].args == {"in_features": 8, "out_features": 8, "bias": False}
    click(at, "edit_2")
    at.text_input(key="shared_name").input("tied")
    click(at, "rename_shared")
    assert list(draft(at).shared) == ["tied"] and draft(at).layers[2] == Use("tied")
    click(at, "edit_2")
    click(at, "unshare")
    assert draft(at).layers[2] == Layer("Linear", {"in_features": 8, "out_features": 8, "bias": False})
    assert len([n for _, _, n in draft(at).walk() if isinstance(n, Use)]) == 2


def test_input_shape_and_dtype(app: AppTest) -> None:
    at = ok(app.text_input(key="input_shape").input("5, 20").run())
    assert draft(at).input_shape == (5, 20)
    assert any("(5, 10)" in m.value for m in at.markdown)
    ok(at.text_input(key="input_shape").input("five").run())
    assert draft(at).input_shape == (5, 20) and "whole numbers" in at.error[0].value


def test_a_design_set_on_another_page_is_recorded_and_undoable(app: AppTest) -> None:
    app.switch_page("pages/inspect.py").run()
    ok(app.selectbox(key="example").select("tied").run())
    app.switch_page("pages/design.py").run()
    ok(app)
    assert draft(app) == load_example("tied")
    click(app, "undo")
    assert draft(app) == load_example("sequential_mlp")


@pytest.mark.parametrize("choice", ["Conv2d", "MaxPool2d", "LayerNorm", "Embedding", "Dropout", "GELU"])
def test_every_kind_of_argument_form_adds_a_valid_layer(app: AppTest, choice: str) -> None:
    """Pre-filled forms give layers that read back (whether they fit the input is the dry run's call)."""
    at = add(app, choice)
    assert draft(at).layers[-1].type == choice
    assert Design.from_json(draft(at).to_json()) == draft(at)


@pytest.mark.parametrize("name", ["nested", "lenet", "vgg_block", "my_linear", "custom_mlp"])
def test_every_example_loads_into_the_stack(app: AppTest, name: str) -> None:
    ok(app.selectbox(key="start").select(name).run())
    at = click(app, "load")
    d = load_example(name)
    assert draft(at) == d and not at.error
    # blocks are folded: one row each, with a fold toggle
    assert len([b for b in at.button if b.key and b.key.startswith("edit_")]) == len(d.layers)
    assert len([b for b in at.button if b.key and b.key.startswith("fold_")]) == sum(
        isinstance(n, Block) for n in d.layers
    )


def test_the_example_picker_shows_the_truth_and_choosing_loads(app: AppTest) -> None:
    """Issue 13, defect 4: the picker said "tied" on first load while the network was another; it kept the last
    example after an edit; choosing one did nothing until a separate Load click."""
    from builder.examples import matching_example
    from ui.design_panels import YOUR_DESIGN

    at = ok(app)
    session_design = at.session_state[state.DESIGN.name]
    assert at.selectbox(key="start").value == (matching_example(session_design) or YOUR_DESIGN)
    ok(at.selectbox(key="start").select("tied").run())  # one choice: loaded, no Load click
    assert draft(at) == load_example("tied") == at.session_state[state.DESIGN.name]
    assert at.selectbox(key="start").value == "tied"
    click(open_row(at, "1"), "dup_1")  # an edit: no longer the example
    assert draft(at) != load_example("tied")
    assert at.selectbox(key="start").value == YOUR_DESIGN
    assert at.button(key="load").disabled  # nothing to reload for "your own design"
    click(at, "undo")
    assert at.selectbox(key="start").value == "tied"  # undone: the example again, and the picker says so


def test_duplicate_says_what_the_copy_is_and_the_sidebar_says_no_gpu_was_found(app: AppTest) -> None:
    """Issue 13, defect 7: every row's Duplicate read "(a shared use: another use)"; the device selector did
    not say that no GPU was found."""
    import torch

    no_gpu = not torch.cuda.is_available() and not torch.backends.mps.is_available()
    assert any("No GPU was found" in c.value for c in app.sidebar.caption) == no_gpu  # the first run's sidebar
    at = ok(app.selectbox(key="start").select("tied").run())
    assert open_row(at, "0").button(key="dup_0").help.startswith("Duplicate: a copy with its own weights, placed below")
    assert open_row(at, "2").button(key="dup_2").help == "Duplicate: another use of shared 'shared' (the same weights)"


def test_a_duplicate_fits_where_it_lands_and_its_tooltip_says_so(app: AppTest) -> None:
    """Issue 13, defect 7: duplicating Linear(20, 256) gave a second Linear(20, 256) that receives 256: the
    design broke at once. The copy takes the size it receives; the design builds and becomes the session's."""
    at = open_row(app, "0")  # the row's editor: where its actions are
    assert "input size follows" in at.button(key="dup_0").help
    click(at, "dup_0")
    d = draft(at)
    assert [(n.type, n.args) for n in d.layers[:2]] == [
        ("Linear", {"in_features": 20, "out_features": 256}),
        ("Linear", {"in_features": 256, "out_features": 256}),
    ]
    assert at.session_state[state.DESIGN.name] == d and not at.error  # it builds: the other pages show it
    assert not [w for w in at.warning if "does not build" in w.value]


def test_sharing_is_offered_at_the_top_of_the_open_row_and_says_what_comes_next(app: AppTest) -> None:
    """Issue 13, defect 7: making a layer shared hid behind the pencil (tooltip "Edit arguments and name"),
    under the argument form. The pencil says it; the open row offers it above the form, clearly labelled; once
    shared, the page says how to use the same weights again."""
    assert "share" in app.button(key="edit_2").help.lower()
    at = open_row(app, "2")
    keys = [b.key for b in at.button]
    assert keys.index("share") < keys.index("apply"), keys  # above the arguments, not under them
    assert "weights" in at.button(key="share").label.lower()
    assert "tied weights" in at.button(key="share").help.lower()
    click(at, "share")
    assert draft(at).layers[2] == Use("shared") and "shared" in draft(at).shared
    said = [i.value for i in at.info]
    assert any("same weights again" in s and "another use of shared 'shared'" in s for s in said), said


def test_add_a_layer_to_a_draft_that_does_not_build_fills_in_the_size_arriving_before_the_fault(app: AppTest) -> None:
    text = (
        '{"format": 1, "input": {"shape": [2, 20]}, "layers": [{"type": "Linear", "in_features": 20, '
        '"out_features": 256}, {"type": "ReLU"}, {"type": "Linear", "in_features": 100, "out_features": 10}]}'
    )
    ok(app.text_area(key="json").input(text).run())
    at = click(app, "json_apply")  # Linear(100, 10) after 256 features: the draft does not build
    ok(at.selectbox(key="add_type").select("Linear").run())
    ok(at.selectbox(key="add_where").select("layers[2]").run())  # after the ReLU, before the layer at fault
    assert at.text_input(key="new_in_features").value == "256"  # what arrives there, not an example size
    assert any("filled in from the shape arriving here, (2, 256)" in c.value for c in at.caption)
    ok(at.selectbox(key="add_where").select("layers[3]").run())  # at the end: after the fault, never reached
    assert any("The shape arriving here is not known" in c.value for c in at.caption)
    ok(at.selectbox(key="add_where").select("layers[2]").run())
    at.number_input(key="new_out_features").set_value(100)
    click(at, "add")  # Linear(256, 100) before Linear(100, 10): the draft builds again
    assert build(draft(at))(torch.randn(2, 20)).shape == (2, 10)
