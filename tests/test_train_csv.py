"""Issue 13, defect 7: a broken CSV upload on the Train page left the previous run's results on screen and
said little about the file; the server logged a widget-key warning (`train_csv_features` given a default and
a Session State value). AppTest, as a person would upload files."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from streamlit.elements.lib import policies
from streamlit.testing.v1 import AppTest

from builder.data import DataError, read_csv_table
from ui import state

from .conftest import open_page
from .test_train_page import train_until_done, use_tied_moons

ROWS = "".join(f"{x / 10},{-x / 10},{'pos' if x > 0 else 'neg'}\n" for x in range(-20, 20) if x)
GOOD = ("a,b,label\n" + ROWS).encode()


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key=state.TRAIN_CSV_UPLOAD.name).set_value((name, data, "text/csv")).run()
    assert not at.exception, at.exception
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_a_broken_csv_after_a_run_hides_that_runs_results_and_names_the_line(app: AppTest) -> None:
    at = open_page(app, "train")
    use_tied_moons(at)
    at.number_input(key="train_epochs").set_value(2).run()
    at.button(key="train_start").click().run()
    train_until_done(at)
    at.run()
    assert at.get("plotly_chart") and any(b.key == "train_stop" for b in at.button)  # the run's results
    at.selectbox(key=state.TRAIN_SOURCE.name).select("upload").run()
    upload(at, "broken.csv", b"a,b,label\n1,2,x\n3,4,y\n5,6,x,9\n7,8,y\n")
    said = errors(at)
    assert any("line 4" in e and "4 values" in e and "3 columns" in e for e in said), said
    assert not any(b.key == "train_stop" for b in at.button), "the previous run's results are still shown"
    assert not at.get("plotly_chart")
    assert len(at.session_state[state.TRAIN_RUNS.name]) == 1  # nothing lost: the run is in the runs table
    assert at.button(key="train_start").disabled
    upload(at, "good.csv", GOOD)  # a good file: ready to train on it
    assert not errors(at) and not at.button(key="train_start").disabled


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"a,b,label\n1,2,x\n3,4,y\n5,6,x,9\n", ("line 4", "4 values", "header line names 3 columns")),
        (b'a,b,label\n1,2,x\n"3,4,y\n', ("quote", "line 3")),
        (b"a;b;label\n1;2;x\n3;4;y\n", ("one column", "';'", "comma")),
        (b"a\tb\tlabel\n1\t2\tx\n3\t4\ty\n", ("one column", "tab", "comma")),
    ],
)
def test_unreadable_csv_names_the_line_or_what_to_change(data: bytes, words: tuple[str, ...]) -> None:
    with pytest.raises(DataError) as e:
        read_csv_table(data)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_csv_widgets_follow_a_new_target_or_file_without_a_widget_key_warning(
    app: AppTest, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Streamlit checks its widget-state rules only under a server runtime (AppTest has none): pretend one. Its
    # warning is logged once per process: allowed again before each step, so that each step is checked.
    monkeypatch.setattr(policies, "runtime", SimpleNamespace(exists=lambda: True))
    at = open_page(app, "train")
    use_tied_moons(at)

    def step(action: Callable[[], object]) -> None:
        monkeypatch.setattr(policies, "_shown_default_value_warning", False)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="streamlit"):
            action()
            assert not at.exception, at.exception
        warned = [r.getMessage() for r in caplog.records if "Session State API" in r.getMessage()]
        assert not warned, warned

    step(lambda: at.selectbox(key=state.TRAIN_SOURCE.name).select("upload").run())
    step(lambda: upload(at, "good.csv", GOOD))
    assert at.multiselect(key=state.TRAIN_CSV_FEATURES.name).value == ["a", "b"]
    step(lambda: at.selectbox(key=state.TRAIN_CSV_TARGET.name).select("a").run())  # another target
    assert at.multiselect(key=state.TRAIN_CSV_FEATURES.name).value == ["b", "label"]  # every other column
    step(lambda: upload(at, "other.csv", ("x,y,z\n" + ROWS).encode()))  # another file: its own columns
    assert at.selectbox(key=state.TRAIN_CSV_TARGET.name).value == "z"
    assert at.multiselect(key=state.TRAIN_CSV_FEATURES.name).value == ["x", "y"]


def test_choosing_a_set_with_settings_of_its_own_sets_them_without_a_widget_key_warning(
    app: AppTest, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The chapter's regression brings its SGD settings (train_form.apply_good_settings): they reach the settings
    widgets already shown, and Streamlit does not warn of a widget given both a default and a Session State value
    (as it did when the widgets also got value=/index=). Then back to moons: the settings stay what they are."""
    monkeypatch.setattr(policies, "runtime", SimpleNamespace(exists=lambda: True))  # as in the test above
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    at = open_page(app, "train")
    assert at.selectbox(key="train_optimizer").value == "adam"
    with caplog.at_level(logging.WARNING, logger="streamlit"):
        at.selectbox(key=state.TRAIN_SOURCE.name).select("linear regression").run()
        assert not at.exception, at.exception
        assert at.selectbox(key="train_optimizer").value == "sgd" and at.number_input(key="train_lr").value == 0.03
        assert at.number_input(key="train_batch_size").value == 10 and at.number_input(key="train_epochs").value == 5
        at.number_input(key="train_epochs").set_value(7).run()  # the user's own change is kept
        at.selectbox(key=state.TRAIN_SOURCE.name).select("moons").run()
        assert at.number_input(key="train_epochs").value == 7 and at.selectbox(key="train_optimizer").value == "sgd"
    warned = [r.getMessage() for r in caplog.records if "Session State API" in r.getMessage()]
    assert not warned, warned
