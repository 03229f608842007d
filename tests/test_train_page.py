"""The Train page in AppTest: each run of the script trains one slice, as each auto-rerun does in a browser."""

from __future__ import annotations

import json
import re

import pytest
import torch
from streamlit.testing.v1 import AppTest

from builder import Design, build, load_example
from ui import state, train_view

from .conftest import open_page


def train_page(app: AppTest) -> AppTest:
    return open_page(app, "train")


def no_errors(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def use_tied_moons(at: AppTest) -> None:
    at.selectbox(key="train_source").select("moons").run()
    at.button(key="train_use_example").click().run()
    assert at.session_state[state.DESIGN.name].name == "tied_moons"
    no_errors(at)


def train_until_done(at: AppTest, limit: int = 200) -> None:
    for _ in range(limit):
        if at.session_state[state.TRAIN_RUN.name].done:
            return
        at.run()
        assert not at.exception, at.exception
    raise AssertionError("the run did not finish")


def test_a_design_that_does_not_fit_the_data_is_explained_and_an_example_offered(app: AppTest) -> None:
    at = train_page(app)
    at.selectbox(key="train_source").select("moons").run()
    assert any("20 features per sample, but 'moons' has 2" in w.value for w in at.warning), at.warning
    assert at.button(key="train_start").disabled
    use_tied_moons(at)
    assert not at.button(key="train_start").disabled
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)  # the data, before any training
    assert [t["name"] for t in spec["data"]] == ["upper", "lower"]


def test_first_visit_picks_data_the_design_fits(app: AppTest) -> None:
    app.session_state[state.DESIGN.name] = load_example("digits_cnn")
    at = train_page(app)
    no_errors(at)
    assert at.selectbox(key="train_source").value == "digits" and not at.warning
    assert not at.button(key="train_start").disabled


def test_training_moons_draws_curves_and_trains_the_sessions_network(app: AppTest) -> None:
    at = train_page(app)
    use_tied_moons(at)
    at.number_input(key="train_epochs").set_value(25).run()
    at.button(key="train_start").click().run()
    no_errors(at)
    run = at.session_state[state.TRAIN_RUN.name]
    assert run.net is at.session_state[state.NET.name].module  # the session's own network, trained in place
    train_until_done(at)
    no_errors(at)
    assert run.epoch == 25 and not run.history.stopped
    assert run.history.last.val_acc >= 0.95
    charts = {
        json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "curves"): json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
    }
    curves = charts["curves"]
    names = [(t["name"], t["xaxis"]) for t in curves["data"]]
    assert ("train", "x") in names and ("validation", "x") in names and ("validation", "x2") in names
    assert len(curves["data"][0]["x"]) == 25  # one point per epoch
    assert any("Decision boundary" in title for title in charts)
    assert [m.label for m in at.metric][:3] == ["Train loss", "Val. loss", "Val. accuracy"]
    assert at.get("download_button")  # the trained weights, on this page too
    assert at.session_state[state.TRAIN_RUNS.name][-1] is run.history
    assert at.dataframe[-1].value["epochs"].tolist() == ["25/25"]


def test_stop_ends_the_run_and_keeps_the_weights(app: AppTest) -> None:
    at = train_page(app)
    use_tied_moons(at)
    at.number_input(key="train_epochs").set_value(10_000).run()
    at.button(key="train_start").click().run()
    start = build(load_example("tied_moons"), seed=0).state_dict()  # fresh weights with the seed, then trained
    run = at.session_state[state.TRAIN_RUN.name]
    assert not run.done and run.steps >= 1
    at.button(key="train_stop").click().run()
    no_errors(at)
    assert run.done and run.history.stopped and run.epoch < 10_000
    net = at.session_state[state.NET.name].module
    after_stop = {k: v.clone() for k, v in net.state_dict().items()}
    assert any(not torch.equal(after_stop[k], start[k]) for k in start)  # trained...
    at.run()
    assert all(torch.equal(net.state_dict()[k], after_stop[k]) for k in after_stop)  # ...and no step after Stop
    progress = at.get("progress")[0].proto
    assert re.search(r"stopped (after|during) epoch", progress.text) and progress.value < 100  # bar stays put
    assert at.button(key="train_stop").disabled and not at.button(key="train_start").disabled


def test_history_and_settings_outlive_a_visit_to_another_page(app: AppTest) -> None:
    at = train_page(app)
    use_tied_moons(at)
    at.number_input(key="train_epochs").set_value(3).run()
    at.number_input(key="train_lr").set_value(0.02).run()
    at.button(key="train_start").click().run()
    train_until_done(at)
    open_page(at, "inspect")
    train_page(at)
    no_errors(at)
    assert at.number_input(key="train_epochs").value == 3 and at.number_input(key="train_lr").value == 0.02
    assert len(at.session_state[state.TRAIN_RUNS.name]) == 1
    assert len(at.get("plotly_chart")) == 2  # the finished run's curves and boundary are still drawn


def test_changing_the_design_ends_a_running_run(app: AppTest) -> None:
    at = train_page(app)
    use_tied_moons(at)
    at.number_input(key="train_epochs").set_value(10_000).run()
    at.button(key="train_start").click().run()
    run = at.session_state[state.TRAIN_RUN.name]
    narrower = load_example("tied_moons").to_json().replace("16", "12")  # hidden width 16 → 12
    at.session_state[state.DESIGN.name] = Design.from_json(narrower)
    at.run()
    assert not at.exception, at.exception
    assert run.done and run.history.stopped
    assert any("design changed" in w.value for w in at.warning)


def test_regression_data_sets_the_chapters_sgd_and_shows_w_and_b(app: AppTest) -> None:
    at = train_page(app)
    at.selectbox(key="train_source").select("linear regression").run()
    assert at.selectbox(key="train_optimizer").value == "sgd" and at.number_input(key="train_lr").value == 0.03
    at.button(key="train_use_example").click().run()
    assert at.session_state[state.DESIGN.name].name == "linear_regression"
    at.button(key="train_start").click().run()
    train_until_done(at)
    no_errors(at)
    fit = at.dataframe[0].value
    assert fit["parameter"].tolist() == ["w[0]", "w[1]", "b"]
    assert (fit["learned"] - fit["true"]).abs().max() < 0.05


def test_csv_upload_errors_are_named_and_a_good_file_trains(app: AppTest) -> None:
    at = train_page(app)
    use_tied_moons(at)
    at.selectbox(key="train_source").select("upload").run()
    assert at.info  # asks for a file
    bad = b"a,b,label\n1,2,x\n3,oops,y\n5,6,x\n7,8,y\n"
    at.file_uploader(key="train_csv_upload").set_value(("bad.csv", bad, "text/csv")).run()
    assert not at.exception, at.exception
    assert any("column 'b' is not numeric: row 2 holds 'oops'" in e.value for e in at.error), at.error
    assert at.button(key="train_start").disabled
    rows = "".join(f"{x / 10},{-x / 10},{'pos' if x > 0 else 'neg'}\n" for x in range(-20, 20) if x)
    at.file_uploader(key="train_csv_upload").set_value(("good.csv", ("a,b,label\n" + rows).encode(), "text/csv")).run()
    no_errors(at)
    assert at.selectbox(key="train_csv_target").value == "label"
    assert at.multiselect(key="train_csv_features").value == ["a", "b"]
    at.number_input(key="train_epochs").set_value(3).run()
    at.button(key="train_start").click().run()
    train_until_done(at)
    no_errors(at)
    assert at.session_state[state.TRAIN_RUN.name].data.classes == ("neg", "pos")


def test_a_diverging_run_ends_with_a_message_not_a_traceback(app: AppTest) -> None:
    at = train_page(app)
    at.selectbox(key="train_source").select("linear regression").run()
    at.button(key="train_use_example").click().run()
    at.number_input(key="train_lr").set_value(10.0).run()
    at.number_input(key="train_epochs").set_value(50).run()
    at.button(key="train_start").click().run()
    train_until_done(at)
    assert not at.exception, at.exception
    assert any("diverged. Try a smaller learning rate" in e.value for e in at.error), at.error
    assert "ended after epoch" in at.get("progress")[0].proto.text
    assert at.session_state[state.TRAIN_RUNS.name][-1].problem


def test_the_weights_page_has_the_trained_weights(app: AppTest) -> None:
    at = train_page(app)
    use_tied_moons(at)
    at.number_input(key="train_epochs").set_value(3).run()
    at.button(key="train_start").click().run()
    train_until_done(at)
    trained = {k: v.clone() for k, v in at.session_state[state.TRAIN_RUN.name].net.state_dict().items()}
    open_page(at, "weights")
    net = at.session_state[state.NET.name].module
    assert net is at.session_state[state.TRAIN_RUN.name].net  # the page saves the session's network: the trained one
    assert all(torch.equal(net.state_dict()[k], trained[k]) for k in trained)


def test_stop_then_continue_goes_on_with_the_same_run(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13, defect 6: after Stop, Continue resumes the run (same history, same curves); it ends with the
    weights and the epochs an uninterrupted run with the same settings gives."""
    from builder.training import train

    monkeypatch.setattr(train_view, "SLICE_SECONDS", 0.05)  # short slices: Stop lands inside the run
    at = train_page(app)
    use_tied_moons(at)
    at.number_input(key="train_epochs").set_value(200).run()  # more than a slice trains
    at.button(key="train_start").click().run()
    run = at.session_state[state.TRAIN_RUN.name]
    at.button(key="train_stop").click().run()
    no_errors(at)
    assert run.done and run.history.stopped
    assert not at.button(key="train_start").disabled  # a new run is still possible
    at.button(key="train_continue").click().run()
    no_errors(at)
    assert at.session_state[state.TRAIN_RUN.name] is run and not run.history.stopped
    train_until_done(at)
    no_errors(at)
    assert len(run.history.epochs) == 200 and all(e.complete for e in run.history.epochs)
    # the truth: the same settings in one uninterrupted run from the same fresh weights
    net = build(load_example("tied_moons"), seed=run.config.seed)
    whole = train(net, run.data, run.config)
    assert [e.train_loss for e in whole.epochs] == [e.train_loss for e in run.history.epochs]
    trained = at.session_state[state.NET.name].module.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in net.state_dict().items())
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)  # the curves: one history, 200 epochs
    assert spec["data"][0]["x"] == list(range(1, 201))
