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
    "Parameter access",
    "Parameter initialization",
    "Tied parameters",
    "Lazy initialization",
    "Custom layers",
    "Saving and loading",
    "GPUs",
]
BUTTONS = {
    "access": "lesson_backward",
    "init": "lesson_init_apply",
    "tied": "lesson_tie_set",
    "save_load": "lesson_save_load",
}


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
        assert app.header[0].value == f"{step.section} · {step.title}"
        assert app.session_state[state.DESIGN.name] == load_example(step.preset)
        assert "Loaded as the session's design." in successes(app)
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
    app.selectbox(key="lesson_pick").select(4).run()
    assert app.session_state[state.DESIGN.name] == load_example("tied")
    app.number_input(key="lesson_tie_value").set_value(42.0)
    app.button(key="lesson_tie_set").click().run()
    assert any("net[2] is net[4]` → **True**" in s for s in successes(app))
    net = app.session_state[state.NET.name].module
    assert net[2].weight[0, 0] == 42 and net[4].weight[0, 0] == 42


def test_save_and_load_step_shows_y_clone_equal_to_y(app: AppTest) -> None:
    open_page(app, "lessons")
    app.selectbox(key="lesson_pick").select(7).run()
    app.button(key="lesson_save_load").click().run()
    assert any("**Y_clone == Y** everywhere" in s for s in successes(app))
    same = [d.value for d in app.dataframe if all(str(t) == "bool" for t in d.value.dtypes)]
    assert same and bool(same[0].all().all())


def test_a_step_whose_preset_is_not_loaded_offers_to_load_it(app: AppTest) -> None:
    open_page(app, "lessons")
    app.selectbox(key="lesson_pick").select(4).run()  # tied
    app.session_state[state.DESIGN.name] = load_example("lenet")  # the class wandered off
    app.run()
    assert not app.exception
    assert any("load the preset `tied`" in i.value for i in app.info)
    app.button(key="lesson_load").click().run()
    assert app.session_state[state.DESIGN.name] == load_example("tied")
    open_page(app, "inspect")
    open_page(app, "lessons")  # the step is remembered across pages
    assert app.selectbox(key="lesson_pick").value == 4 and app.header[0].value.endswith("Tied parameters")


def test_custom_step_refuses_bad_numbers_with_a_message(app: AppTest) -> None:
    open_page(app, "lessons")
    app.selectbox(key="lesson_pick").select(6).run()
    app.text_input(key="lesson_centered").set_value("1, two, 3").run()
    assert not app.exception
    assert any("'two'" in e.value and "not a number" in e.value for e in app.error)
