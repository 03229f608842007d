"""AppTest for the Gradients page (the tied example: two contributions whose sum is .grad) and for the
Inspect page's dry-run toggle (lazy layers pending before, inferred after)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

import builder
from builder import load_example
from ui import state as session

from .conftest import open_page


def _frames(at: AppTest, first_column: str) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe if list(d.value.columns)[:1] == [first_column]]


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _tied_session(app: AppTest) -> AppTest:
    at = open_page(app, "gradients")
    at.button(key="grad_load_tied").click().run()  # the default design has no shared layer: the page offers one
    assert not at.exception, at.exception
    assert at.session_state[session.DESIGN.name].name == "tied"
    return at


def test_without_shared_layers_the_page_explains_and_offers_the_tied_example(app: AppTest) -> None:
    at = open_page(app, "gradients")
    at.session_state[session.DESIGN.name] = load_example("sequential_mlp")
    at.run()
    assert not at.exception and not at.error
    assert any("no shared layers" in i.value for i in at.info)
    assert _metric(at, "Shared tensors") == "0"
    bars = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert len(bars["data"][0]["y"]) == 4  # every parameter has a bar
    assert not _frames(at, "gradient")


def test_tied_example_two_contributions_sum_to_grad(app: AppTest) -> None:
    at = _tied_session(app)
    assert not at.error
    net = at.session_state[session.NET.name].module
    state = {k: v.clone() for k, v in net.state_dict().items()}
    assert _metric(at, "Shared tensors") == "2"

    tables = _frames(at, "gradient")
    assert len(tables) == 2  # 2.weight and 2.bias
    for table in tables:
        assert list(table["gradient"]) == [
            "use 1 (at 2)",
            "use 2 (at 4)",
            "sum of the uses",
            ".grad (ordinary backward)",
        ]
    # the same numbers as the library gives (with the page's defaults: example input, sum loss, train mode)
    design = at.session_state[session.DESIGN.name]
    truth = builder.tied_gradients(net, builder.make_batch(design), builder.make_loss("sum", (2, 1)), train=True)
    for table, name in zip(tables, ["2.weight", "2.bias"], strict=True):
        sg = truth[name]
        assert len(sg) == 2
        expected = [float(g.norm()) for g in (*sg.uses, sg.total, sg.grad)]
        assert table["norm"].tolist() == expected
        torch.testing.assert_close(sg.uses[0] + sg.uses[1], sg.grad)
        assert table["norm"][2] == pytest.approx(table["norm"][3], rel=1e-6)  # the sum of the two uses is .grad
    diffs = [float(m.value) for m in at.metric if m.label == "largest |sum − .grad|"]
    assert len(diffs) == 2 and max(diffs) < 1e-6
    assert [s.value for s in at.success] == ["sum = .grad", "sum = .grad"]

    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    # the norms of every parameter, the heatmaps of the shared 8×8 weight (not of the bias: a vector, in its
    # table), then .grad of the other small weight matrices: 0.weight (8, 4) and 6.weight (1, 8)
    assert len(charts) == 4
    bars, heat, *others = charts
    assert [c["layout"]["title"]["text"] for c in others] == ["0.weight (8, 4)", "6.weight (1, 8)"]
    assert len(bars["data"][0]["y"]) == 6 and bars["data"][0]["orientation"] == "h"
    assert [t["type"] for t in heat["data"]] == ["heatmap"] * 4
    assert [a["text"] for a in heat["layout"]["annotations"]] == [
        "use 1 · at 2",
        "use 2 · at 4",
        "sum of the uses",
        ".grad",
    ]
    # the session's network is untouched: weights, grads, mode
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())
    assert net.training


def test_controls_change_the_batch_and_loss(app: AppTest) -> None:
    at = _tied_session(app)
    first = _metric(at, "Sum of the outputs")
    at.selectbox(key="grad_loss").select("mse").run()
    at.radio(key="grad_batch").set_value("random").run()
    at.number_input(key="grad_seed").set_value(3).run()
    at.toggle(key="grad_train").set_value(False).run()
    assert not at.exception and not at.error
    assert _metric(at, "MSE loss") != first
    assert [s.value for s in at.success] == ["sum = .grad", "sum = .grad"]
    design = at.session_state[session.DESIGN.name]
    truth = builder.tied_gradients(
        at.session_state[session.NET.name].module,
        builder.make_batch(design, "random", 3),
        builder.make_loss("mse", (2, 1), 3),
        train=False,
        seed=3,
    )
    assert _metric(at, "MSE loss") == f"{truth.loss:.5g}"


SHARED_CONV_BN = {
    "format": 1,
    "input": {"shape": [2, 1, 6, 6]},
    "shared": {
        "c": {"type": "Conv2d", "in_channels": 3, "out_channels": 3, "kernel_size": 3, "padding": 1},
        "bn": {"type": "BatchNorm2d", "num_features": 3},
        "blk": {
            "type": "Sequential",
            "layers": [{"type": "Linear", "in_features": 4, "out_features": 3}, {"type": "Tanh"}],
        },
    },
    "layers": [
        {"type": "Conv2d", "in_channels": 1, "out_channels": 3, "kernel_size": 3, "padding": 1},
        {"shared": "bn"},
        {"type": "ReLU"},
        {"shared": "c"},
        {"shared": "bn"},
        {"type": "Dropout", "p": 0.3},
        {"shared": "c"},
        {"shared": "c"},
        {"type": "AdaptiveAvgPool2d", "output_size": 2},
        {"type": "Flatten", "start_dim": 2},
        {"type": "LazyLinear", "out_features": 4},
        {"shared": "blk"},
        {"type": "LazyLinear", "out_features": 4},
        {"shared": "blk"},
        {"type": "Flatten"},
    ],
}


def test_conv_batchnorm_and_block_shared_on_the_page(app: AppTest) -> None:
    at = open_page(app, "gradients")
    at.session_state[session.DESIGN.name] = builder.Design.from_dict(SHARED_CONV_BN)
    at.run()
    at.selectbox(key="grad_loss").select("cross_entropy").run()
    assert not at.exception and not at.error
    assert [h.value for h in at.subheader][1:4] == [
        "Shared 'bn' · BatchNorm2d, used 2× (at 1, 4)",
        "Shared 'c' · Conv2d, used 3× (at 3, 6, 7)",
        "Shared 'blk' · Sequential, used 2× (at 11, 13)",
    ]
    assert [s.value for s in at.success] == ["sum = .grad"] * 6
    assert _metric(at, "Shared tensors") == "6"
    tables = _frames(at, "gradient")
    assert [len(t) for t in tables] == [4, 4, 5, 5, 4, 4]  # each use, their sum, .grad


def test_cross_entropy_on_one_output_is_explained(app: AppTest) -> None:
    at = _tied_session(app)
    at.selectbox(key="grad_loss").select("cross_entropy").run()
    assert not at.exception
    assert "at least 2 classes" in at.error[0].value


def test_design_that_does_not_build_shows_a_message(app: AppTest) -> None:
    at = open_page(app, "gradients")
    bad = builder.Design.from_dict(
        {"format": 1, "input": {"shape": [2, 4]}, "layers": [{"type": "Linear", "in_features": 5, "out_features": 2}]}
    )
    at.session_state[session.DESIGN.name] = bad
    at.run()
    assert not at.exception
    assert "expects 5 input features, gets 4" in at.error[0].value


# -- Inspect: the dry-run toggle ---------------------------------------------------------------------------


def test_inspect_dry_run_toggle_shows_before_and_after(app: AppTest) -> None:
    at = open_page(app, "inspect")
    at.selectbox(key="example").select("lazy_mlp").run()
    assert len(at.get("graphviz_chart")) == 1  # off by default: the page as it was
    at.toggle(key="inspect_dry_run").set_value(True).run()
    assert not at.exception and not at.error

    before, after, main = (g.proto.spec for g in at.get("graphviz_chart"))
    assert before.count("lazy: size pending") == 2 and "? → 256" in before and "? → 10" in before
    assert "inferred" not in before and "(2, 256)" not in before
    assert "lazy: in_features=20 inferred" in after and "lazy: in_features=256 inferred" in after
    assert "20 → 256" in after and "256 → 10" in after
    assert "→ (2, 256)" in after
    assert main == after

    (lazy,) = _frames(at, "key")[:1]
    assert list(lazy.columns) == ["key", "type before", "shape before", "type after", "shape after", "inferred"]
    assert list(lazy["shape before"]) == ["uninitialized"] * 4
    assert list(lazy["shape after"]) == ["(256, 20)", "(256,)", "(10, 256)", "(10,)"]
    assert list(lazy["type before"]) == ["LazyLinear"] * 4 and list(lazy["type after"]) == ["Linear"] * 4
    # the page's tables are still there, each on its tab (only the open tab is drawn)
    at.session_state[session.INSPECT_TAB.name] = "Output shapes"
    at.run()
    assert any(list(d.value.columns)[:2] == ["layer", "type"] for d in at.dataframe)  # shapes
    at.session_state[session.INSPECT_TAB.name] = "Parameters"
    at.run()
    assert any("tied_with" in d.value.columns for d in at.dataframe)  # params


def test_inspect_dry_run_without_lazy_layers(app: AppTest) -> None:
    at = open_page(app, "inspect")
    at.selectbox(key="example").select("tied").run()
    at.toggle(key="inspect_dry_run").set_value(True).run()
    assert not at.exception and not at.error
    assert any("no lazy layers" in i.value for i in at.info)
    assert len(at.get("graphviz_chart")) == 3


def test_the_check_script_and_labels_say_what_the_page_computes(app: AppTest, downloads, tmp_path) -> None:
    """Issue 13, defect 8: the snippet drew torch.rand(2, 4) on fresh weights; now the page offers its own
    script and the session's weights, and running them prints the page's numbers. The sum is not called a loss;
    "example input" and "random data" are different batches."""
    import subprocess
    import sys

    from .conftest import download_bytes

    app.session_state[session.DESIGN.name] = load_example("tied")
    at = open_page(app, "gradients")
    assert at.metric[0].label == "Sum of the outputs"
    at.radio(key="grad_batch").set_value("random").run()
    at.number_input(key="grad_seed").set_value(0).run()
    assert not at.exception
    script = download_bytes(at, downloads, "Script ·").decode()
    (tmp_path / "tied.params").write_bytes(download_bytes(at, downloads, "Weights ·"))
    (tmp_path / "check.py").write_text(script)
    done = subprocess.run([sys.executable, "check.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    assert printed[0] == f"Sum of the outputs: {at.metric[0].value}"
    table = next(df.value for df in at.dataframe if "gradient" in df.value.columns)
    entry = [c for c in table.columns if c.startswith("entry")][0]
    for (_, row), line in zip(table.iterrows(), printed[1:], strict=False):
        assert f"{entry.removeprefix('entry ')} {row[entry]:.5f}, sum of entries {row['sum of entries']:.5f}" in line
    assert "X = torch.rand((2, 4), generator=torch.Generator().manual_seed(0))" in script
