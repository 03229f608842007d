"""The Lessons page in AppTest: every step renders, loads its preset and links to its page; the "try it" parts
compute what the chapter shows (tied weights change together, Y_clone == Y). Plus the lesson data itself."""

from __future__ import annotations

import pytest
import torch
from streamlit.testing.v1 import AppTest

import builder
from builder import build, lessons, load_example
from builder.lessons import LESSONS
from ui import state
from ui.navigation import PAGES

from .conftest import ROOT, open_page

CHAPTER = [
    "Modules and nn.Sequential",
    "Custom blocks",
    "Your own Sequential",
    "Code in forward: FixedHiddenMLP and the chimera",
    "Parameter access",
    "Parameters of nested blocks",
    "Parameter initialization",
    "Tied parameters",
    "Lazy initialization",
    "Custom layers",
    "Saving and loading tensors",
    "Saving and loading",
    "GPUs",
]
BUTTONS = {
    "access": "lesson_backward",
    "init": "lesson_init_apply",
    "tied": "lesson_tie_set",
    "save_load": "lesson_save_load",
    "fixed_hidden": "lesson_fixed_run",
}


def index(key: str) -> int:
    """The position of the step with this key in the picker."""
    return next(i for i, s in enumerate(LESSONS) if s.key == key)


def successes(at: AppTest) -> list[str]:
    return [s.value for s in at.success]


# -- the data --------------------------------------------------------------------------------------------------


def test_the_steps_cover_the_chapter_with_real_presets_and_pages() -> None:
    assert [s.title for s in LESSONS] == CHAPTER
    assert len({s.key for s in LESSONS}) == len(LESSONS)
    for s in LESSONS:
        load_example(s.preset)  # a shipped example
        assert s.page in PAGES and (ROOT / PAGES[s.page].file).exists(), s.page
        assert s.idea and s.code and s.look
        compile(s.code, s.key, "exec")  # the chapter's code is valid Python
    assert lessons.step("tied").preset == "tied"
    with pytest.raises(KeyError):
        lessons.step("nope")


def test_presets_list_every_example_once_with_a_one_line_description() -> None:
    found = lessons.presets()
    assert sorted(p.name for p in found) == sorted(builder.example_names())
    assert [p.group for p in found][:6] == ["The chapter"] * 6
    assert {"lenet", "vgg_block", "mlp_dropout_bn"} <= {p.name for p in found if p.group == "Classics"}
    assert all(p.description and "\n" not in p.description for p in found)


def test_tie_demo_changes_both_positions_of_the_shared_layer() -> None:
    net = build(load_example("tied"), seed=0)
    demo = lessons.tie_demo(net, 100.0)
    assert demo.keys == ["2.weight", "4.weight"] and demo.same_object
    assert net[4].weight[0, 0] == 100 and list(demo.rows[("[0, 0]")]) == [100.0, 100.0]
    plain = build(load_example("sequential_mlp"), seed=0)
    assert not lessons.tie_demo(plain, 5.0).same_object


def test_save_load_gives_y_clone_equal_to_y() -> None:
    design = load_example("custom_mlp")
    net = build(design, seed=3)
    out = lessons.save_load(design, net)
    assert out.equal and torch.equal(out.y, out.y_clone)
    assert out.keys == ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    assert net.training  # the network's mode is left as it was


def test_init_choices_and_small_helpers() -> None:
    design = load_example("sequential_mlp")
    net = build(design, seed=0)
    lessons.apply_init(net, design, "constant 1, bias 0 — net.apply(init_constant)")
    assert lessons.first_values(net, "0.weight", 3) == [1.0, 1.0, 1.0]
    assert lessons.first_values(net, "2.bias", 1) == [0.0]
    for choice in lessons.INIT_CHOICES:
        lessons.apply_init(net, design, choice)
    with pytest.raises(builder.DesignError):
        lessons.apply_init(net, design, "nope")
    assert lessons.centered(lessons.parse_numbers("1, 2 3;4,5")) == ([-2.0, -1.0, 0.0, 1.0, 2.0], 0.0)
    with pytest.raises(builder.DesignError, match="item 2"):
        lessons.parse_numbers("1, x")
    report = lessons.device_report(net, design)
    assert report.devices[0] == "cpu" and report.network == report.output == "cpu"
    assert list(lessons.children(build(load_example("custom_mlp")))["access"]) == ["net.hidden", "net[1]", "net.out"]


# -- the page ------------------------------------------------------------------------------------------------


def test_every_step_renders_loads_its_preset_and_its_try_it_runs(app: AppTest) -> None:
    open_page(app, "lessons")
    for i, step in enumerate(LESSONS):
        assert app.session_state[state.LESSON_STEP.name] == i
        assert not app.exception and not app.error, [e.value for e in app.error]
        assert app.subheader[0].value == f"{step.section} · {step.title}"
        assert app.session_state[state.DESIGN.name] == load_example(step.preset)
        assert any(m.value.startswith(":green-badge[:material/check_circle: Loaded]") for m in app.markdown)
        assert step.code in [c.value for c in app.code]
        if step.key in BUTTONS:
            app.button(key=BUTTONS[step.key]).click().run()
            assert not app.exception and not app.error, [e.value for e in app.error]
        if i < len(LESSONS) - 1:
            app.button(key="lesson_next").click().run()
    assert app.button(key="lesson_next").disabled
    app.button(key="lesson_prev").click().run()
    assert app.session_state[state.LESSON_STEP.name] == len(LESSONS) - 2


def test_tied_step_shows_net4_following_net2(app: AppTest) -> None:
    open_page(app, "lessons")
    app.selectbox(key="lesson_pick").select(index("tied")).run()
    assert app.session_state[state.DESIGN.name] == load_example("tied")
    app.number_input(key="lesson_tie_value").set_value(42.0)
    app.button(key="lesson_tie_set").click().run()
    assert any("net[2] is net[4]` → **True**" in s for s in successes(app))
    net = app.session_state[state.NET.name].module
    assert net[2].weight[0, 0] == 42 and net[4].weight[0, 0] == 42


def test_save_and_load_step_shows_y_clone_equal_to_y(app: AppTest) -> None:
    open_page(app, "lessons")
    app.selectbox(key="lesson_pick").select(index("save_load")).run()
    app.button(key="lesson_save_load").click().run()
    assert any("**Y_clone == Y** everywhere" in s for s in successes(app))
    same = [d.value for d in app.dataframe if all(str(t) == "bool" for t in d.value.dtypes)]
    assert same and bool(same[0].all().all())


def test_a_step_whose_preset_is_not_loaded_offers_to_load_it(app: AppTest) -> None:
    open_page(app, "lessons")
    app.selectbox(key="lesson_pick").select(index("tied")).run()  # tied
    app.session_state[state.DESIGN.name] = load_example("lenet")  # the class wandered off
    app.run()
    assert not app.exception
    assert any("load the preset `tied`" in i.value for i in app.info)
    app.button(key="lesson_load").click().run()
    assert app.session_state[state.DESIGN.name] == load_example("tied")
    open_page(app, "inspect")
    open_page(app, "lessons")  # the step is remembered across pages
    assert app.selectbox(key="lesson_pick").value == index("tied")
    assert app.subheader[0].value.endswith("Tied parameters")


def test_custom_step_refuses_bad_numbers_with_a_message(app: AppTest) -> None:
    open_page(app, "lessons")
    app.selectbox(key="lesson_pick").select(index("custom")).run()
    app.text_input(key="lesson_centered").set_value("1, two, 3").run()
    assert not app.exception
    assert any("'two'" in e.value and "not a number" in e.value for e in app.error)


# -- issue 13: the chapter's examples a design alone does not show, each 2 clicks from Lessons -------------------


def pick(app: AppTest, key: str) -> AppTest:
    """Open Lessons and choose the step in the picker (open it, click the step: 2 clicks)."""
    at = open_page(app, "lessons")
    at.selectbox(key="lesson_pick").select(index(key)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["design"] == load_example(lessons.step(key).preset)
    return at


def test_my_sequential_step_shows_the_same_keys_and_outputs(app: AppTest) -> None:
    at = pick(app, "my_sequential")
    assert "Same keys, same outputs: MySequential is nn.Sequential." in successes(at)
    shown = next(df.value for df in at.dataframe if "MySequential" in df.value.index)
    assert list(shown.loc["MySequential"]) == list(shown.loc["nn.Sequential"])


def test_fixed_hidden_step_runs_the_books_code_and_says_what_a_design_cannot_hold(app: AppTest) -> None:
    at = pick(app, "fixed_hidden")
    at.button(key="lesson_fixed_run").click().run()
    run = lessons.fixed_hidden(load_example("sequential_mlp"))
    text = " ".join(m.value for m in at.markdown)
    assert f"**{run.fixed:.6g}**" in text and f"**{run.chimera:.6g}**" in text
    assert any("cannot hold" in i.value for i in at.info)
    assert "while X.abs().sum() > 1" in [c.value for c in at.code][0]


def test_init_step_sets_parameters_directly_and_xavier_42_in_one_choice(app: AppTest) -> None:
    at = pick(app, "init")
    net = at.session_state[state.NET.name].module
    expected = net[0].weight.detach().clone() + 1
    at.button(key="lesson_direct_add_one").click().run()
    assert torch.equal(at.session_state[state.NET.name].module[0].weight.detach(), expected)
    at.button(key="lesson_direct_set_42").click().run()
    assert float(at.session_state[state.NET.name].module[0].weight[0, 0]) == 42.0
    at.selectbox(key="lesson_init_choice").select("Xavier on net[0], 42 on net[2] — biases kept").run()
    at.button(key="lesson_init_apply").click().run()  # 3 clicks with the picker's 2... one choice, one button
    net = at.session_state[state.NET.name].module
    assert bool((net[2].weight == 42).all()) and float(net[0].weight.abs().max()) <= (6 / 276) ** 0.5
    assert not bool((net[0].bias == 0).all())


def test_tensor_files_step_downloads_three_files_and_reads_one_back_safely(app: AppTest, downloads) -> None:
    import os
    import pickle

    from .conftest import download_bytes

    at = pick(app, "tensor_io")
    for name in ("x-file", "x-files", "mydict"):
        assert download_bytes(at, downloads, name) == lessons.tensor_files()[name]
    at.file_uploader(key="lesson_tensor_upload").set_value(("mydict", lessons.tensor_files()["mydict"], "")).run()
    assert any(s.startswith("mydict holds a dict of 2 tensors: {'x': tensor([0, 1, 2, 3])") for s in successes(at))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    at.file_uploader(key="lesson_tensor_upload").set_value(("evil", pickle.dumps(Evil()), "")).run()
    assert not at.exception and "not a tensor file" in at.error[0].value


def test_gpu_step_runs_x_ones_on_its_preset_and_lists_all_gpus(app: AppTest) -> None:
    at = pick(app, "devices")
    table = next(df.value for df in at.dataframe if "expression" in df.value.columns)
    values = dict(zip(table["expression"], table["value"], strict=True))
    assert values["X"] == "torch.ones(2, 3)" and values["try_all_gpus()"] == "[]"
    assert values["net(X)"].startswith("tensor([[")
    assert any("No GPU was found" in c.value for c in at.caption)


def test_rgnet_step_prints_the_tree_with_spaced_names_and_indexes_into_it(app: AppTest) -> None:
    """The book's rgnet (6.2.2), by hand, is the truth: same print, same rgnet[0][1][0].bias.data."""
    from torch import nn

    at = pick(app, "rgnet")
    net = at.session_state[state.NET.name].module

    def block1() -> nn.Module:
        return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(4), nn.ReLU())

    def block2() -> nn.Module:
        blocks = nn.Sequential()
        for i in range(4):
            blocks.add_module(f"block {i}", block1())
        return blocks

    rgnet = nn.Sequential(block2(), nn.LazyLinear(1))
    rgnet(torch.rand(2, 4))
    rgnet.load_state_dict(net.state_dict())
    shown = [c.value for c in at.code]
    assert repr(rgnet) in shown
    assert " ".join(repr(rgnet[0][1][0].bias.data).split()) in shown
