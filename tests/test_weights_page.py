"""The Weights and Parameters pages in AppTest: downloads, uploads (good, malicious, mismatched, partial), the
exported code, parameter access and edits on tied layers, initialization and its histogram."""

from __future__ import annotations

import io
import os

import pytest
import torch
from streamlit.testing.v1 import AppTest

from builder import build, devices, load_example, save_params, to_code
from builder.devices import DeviceInfo
from ui import state as session
from ui.navigation import PAGES

from .conftest import ROOT, open_page

pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True")


def with_example(at: AppTest, name: str) -> AppTest:
    at.session_state[session.DESIGN.name] = load_example(name)
    return at


def state_of(at: AppTest) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in at.session_state[session.NET.name].module.state_dict().items()}


def frame(at: AppTest, *columns: str):
    """The first table shown with these columns (st.dataframe's key is not visible to AppTest)."""
    for df in at.dataframe:
        if all(c in df.value.columns for c in columns):
            return df.value
    raise KeyError(columns)


def matrices(at: AppTest) -> list:
    """Tensor value tables (columns are indices "0", "1", ...): values first, then the gradient."""
    return [df.value for df in at.dataframe if list(df.value.columns)[:1] == ["0"]]


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="upload").set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    return at


def test_downloads_and_code(app: AppTest) -> None:
    at = open_page(with_example(app, "tied"), "weights")
    labels = [b.label for b in at.get("download_button")]
    assert labels == [
        "Weights · tied.params",
        "Weights · tied.safetensors",
        "Design · tied.json",
        "Bundle · tied.zip",
        "Code · tied.py",
    ]
    assert at.code[0].value.strip() == to_code(load_example("tied")).strip()
    assert not at.error


def test_uploading_good_weights_loads_them_and_reports(app: AppTest) -> None:
    at = open_page(with_example(app, "tied"), "weights")
    other = build(load_example("tied"), seed=11)
    upload(at, "other.params", save_params(other))
    assert [s.value for s in at.success][0].startswith("Loaded 8 tensors from other.params")
    report = frame(at, "key", "status", "detail")
    assert set(report["status"]) == {"matched"} and len(report) == 8
    for k, v in other.state_dict().items():
        assert torch.equal(state_of(at)[k], v)
    held = state_of(at)
    with torch.no_grad():
        at.session_state[session.NET.name].module[0].weight[0, 0] = 5.0  # an edit after the load ...
    at.run()
    assert float(at.session_state[session.NET.name].module[0].weight[0, 0]) == 5.0  # ... is not undone by a rerun
    assert held.keys() == state_of(at).keys()


def test_an_upload_over_the_limit_is_refused_and_changes_nothing(app: AppTest, monkeypatch) -> None:
    """The page applies BLOCKWORK_MAX_UPLOAD_MB to what the browser sent (a notebook's load_params does not)."""
    monkeypatch.setenv("BLOCKWORK_MAX_UPLOAD_MB", "1")
    at = open_page(with_example(app, "tied"), "weights")
    before = state_of(at)
    upload(at, "big.params", save_params(torch.nn.Sequential(torch.nn.Linear(1024, 512))))
    assert "over the limit of 1 MB (BLOCKWORK_MAX_UPLOAD_MB)" in at.error[0].value
    after = state_of(at)
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_a_malicious_upload_is_refused_and_changes_nothing(app: AppTest) -> None:
    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch /tmp/blockwork-page-pwned",))

    at = open_page(with_example(app, "tied"), "weights")
    before = state_of(at)
    buffer = io.BytesIO()
    torch.save({"0.weight": Exploit()}, buffer)
    upload(at, "evil.params", buffer.getvalue())
    assert "refused" in at.error[0].value and "posix.system" in at.error[0].value
    assert any("unchanged" in c.value for c in at.caption)
    assert not os.path.exists("/tmp/blockwork-page-pwned")
    after = state_of(at)
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_a_mismatched_upload_is_refused_then_loaded_partially_by_choice(app: AppTest) -> None:
    at = open_page(with_example(app, "tied"), "weights")
    before = state_of(at)
    other = build(load_example("tied"), seed=11).state_dict()
    other.pop("6.bias")
    other["0.weight"] = torch.zeros(8, 5)
    buffer = io.BytesIO()
    torch.save(other, buffer)
    upload(at, "odd.params", buffer.getvalue())
    message = at.error[0].value
    assert "missing 6.bias" in message and "0.weight (network (8, 4), file (8, 5))" in message
    assert all(torch.equal(state_of(at)[k], v) for k, v in before.items())
    statuses = dict(zip(frame(at, "status")["key"], frame(at, "status")["status"], strict=True))
    assert statuses["6.bias"] == "missing" and statuses["0.weight"] == "wrong shape"
    at.button(key="partial_load").click().run()
    assert not at.exception
    assert "partial load" in at.success[0].value
    now = state_of(at)
    assert torch.equal(now["2.weight"], other["2.weight"]) and torch.equal(now["0.weight"], before["0.weight"])


def test_tied_positions_that_disagree_are_refused_on_the_page(app: AppTest) -> None:
    at = open_page(with_example(app, "tied"), "weights")
    before = state_of(at)
    bad = {k: v.clone() for k, v in before.items()}
    bad["4.weight"] += 1
    buffer = io.BytesIO()
    torch.save(bad, buffer)
    upload(at, "split.params", buffer.getvalue())
    assert "2.weight and 4.weight" in at.error[0].value
    assert all(torch.equal(state_of(at)[k], v) for k, v in before.items())


def test_a_network_on_an_unusable_device_falls_back_on_the_page(app: AppTest, monkeypatch) -> None:
    monkeypatch.setattr(
        devices, "available_devices", lambda: [DeviceInfo("cpu", "CPU"), DeviceInfo("cuda:0", "cuda:0 — fake")]
    )
    app.session_state[session.DEVICE.name] = "cuda:0"  # as if chosen; the page builds and tries to move there
    at = open_page(app, "weights")
    assert any("could not move the network to cuda:0" in w.value for w in at.warning)
    assert at.session_state[session.DEVICE.name] == "cpu" and at.session_state[session.NET.name].device == "cpu"


# -- the Parameters page ------------------------------------------------------------------------------------


def test_parameter_access_and_editing_a_tied_weight(app: AppTest) -> None:
    at = open_page(with_example(app, "tied"), "parameters")
    assert list(frame(at, "layer", "init")["layer"]) == ["0", "6", "shared 'shared'"]
    at.selectbox(key="param_layer").select("2").run()
    state = frame(at, "kind", "tied_with")
    assert list(state["key"]) == ["2.weight", "2.bias"] and list(state["tied_with"]) == ["4.weight", "4.bias"]
    assert matrices(at)[0].shape == (8, 8)
    assert any("No gradient yet" in c.value for c in at.caption)
    at.button(key="param_backward").click().run()
    assert not at.exception and matrices(at)[1].shape == (8, 8)
    at.number_input(key="edit_value").set_value(100.0).run()
    at.button(key="edit_set").click().run()
    assert not at.exception
    net = at.session_state[session.NET.name].module
    assert net[2].weight.data[0, 0] == 100 and net[4].weight.data[0, 0] == 100  # the chapter's check
    assert "4.weight changed with it" in at.success[0].value
    positions = frame(at, "key", "value at [0, 0]")
    assert list(positions["key"]) == ["2.weight", "4.weight"] and set(positions.iloc[:, 1]) == {100.0}


def test_initialization_is_set_in_the_design_and_reinitializes(app: AppTest) -> None:
    at = open_page(with_example(app, "sequential_mlp"), "parameters")
    at.selectbox(key="init_method").select("constant").run()
    at.number_input(key="init_value").set_value(0.5).run()
    at.checkbox(key="init_use_seed").check().run()
    at.number_input(key="init_seed").set_value(4).run()
    at.button(key="init_apply").click().run()
    assert not at.exception
    design = at.session_state[session.DESIGN.name]
    assert design.init == {"method": "constant", "value": 0.5, "bias": "zeros"} and design.seed == 4
    net = at.session_state[session.NET.name].module
    assert torch.all(net[0].weight == 0.5) and torch.all(net[2].bias == 0)
    table = frame(at, "layer", "init")
    assert set(table["init"]) == {"constant(value=0.5), bias zeros"}
    # one layer differently, then re-initialize after an edit: the seed gives the same weights back
    at.selectbox(key="init_target").select("layers[2]").run()
    at.selectbox(key="init_method").select("xavier_normal").run()
    at.button(key="init_apply").click().run()
    net = at.session_state[session.NET.name].module
    assert torch.all(net[0].weight == 0.5) and not torch.all(net[2].weight == 0.5)
    expected = net[2].weight.detach().clone()
    with torch.no_grad():
        net[2].weight.fill_(3.0)
    at.button(key="reinit").click().run()
    assert not at.exception and torch.equal(at.session_state[session.NET.name].module[2].weight, expected)
    assert at.session_state[session.NET.name].module is net
    spec = at.get("plotly_chart")[0].proto.spec
    assert "0.weight" in spec


def test_histogram_follows_the_chosen_tensor(app: AppTest) -> None:
    at = open_page(with_example(app, "lenet"), "parameters")
    at.selectbox(key="hist_key").select("3.weight").run()
    spec = at.get("plotly_chart")[0].proto.spec
    assert not at.exception and not at.error  # the page opened for a conv net without errors
    # the histogram is of 3.weight, a (16, 6, 5, 5) kernel: every one of its 2,400 values, none of 0.weight's 150
    assert "3.weight: 2,400 values" in spec and "0.weight" not in spec


@pytest.mark.parametrize("page", ["weights", "parameters"])
def test_a_cold_deep_link_opens_the_page(page: str) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page(f"pages/{page}.py").run()  # the first page this session opens
    assert not at.exception and not at.error
    assert [t.value for t in at.title] == [PAGES[page].title]  # the page itself ran, not a blank one


def test_the_first_download_after_an_upload_holds_the_uploaded_weights(app: AppTest, downloads) -> None:
    """Issue 13, defect 1: the .params (and bundle) download drawn right after a successful upload held the old
    weights; a second click had the new ones. The chapter's save -> load -> compare demo broke on it."""
    import zipfile

    from .conftest import download_bytes

    at = open_page(with_example(app, "custom_mlp"), "weights")
    halves = {k: torch.full_like(v, 0.5) for k, v in build(load_example("custom_mlp")).state_dict().items()}
    buf = io.BytesIO()
    torch.save(halves, buf)
    upload(at, "halves.params", buf.getvalue())
    assert [s.value for s in at.success][0].startswith("Loaded 4 tensors from halves.params")
    got = torch.load(io.BytesIO(download_bytes(at, downloads, "Weights ·")), weights_only=True)
    assert all(torch.equal(got[k], halves[k]) for k in halves)
    with zipfile.ZipFile(io.BytesIO(download_bytes(at, downloads, "Bundle ·"))) as z:
        name = next(n for n in z.namelist() if n.endswith(".params"))
        in_bundle = torch.load(io.BytesIO(z.read(name)), weights_only=True)
    assert all(torch.equal(in_bundle[k], halves[k]) for k in halves)


def test_init_for_all_layers_reaches_layers_with_their_own_setting_and_says_so(app: AppTest) -> None:
    """Issue 13, defect 2: "for all layers" said it set my_init everywhere while a layer with its own Xavier
    kept it; there was no way back to the design's default; biases were zeroed beside Xavier and my_init."""
    at = open_page(with_example(app, "sequential_mlp"), "parameters")
    at.selectbox(key="init_target").select("layers[0]").run()
    at.selectbox(key="init_method").select("xavier_uniform").run()
    assert at.selectbox(key="init_bias_xavier_uniform").value == "default"  # the chapter keeps the bias
    at.button(key="init_apply").click().run()
    assert not at.exception
    table = frame(at, "layer", "init", "from")
    assert list(table["from"]) == ["its own", "nothing chosen: PyTorch's default"]
    # my_init for all layers: reaches layers[0] too (its own Xavier is replaced), and says so
    at.selectbox(key="init_target").select("*").run()
    at.selectbox(key="init_method").select("my_init").run()
    assert at.checkbox(key="init_replace_own").value
    at.button(key="init_apply").click().run()
    assert "the own settings of layers[0] were removed" in at.success[0].value
    net = at.session_state[session.NET.name].module
    for layer in (net[0], net[2]):
        w = layer.weight.detach()
        assert bool(((w == 0) | (w.abs() >= 5)).all()) and not bool((layer.bias == 0).all())  # bias kept
    table = frame(at, "layer", "init", "from")
    assert set(table["from"]) == {"the design's default"}
    # keep a layer's own setting when asked to, and the message says which one kept what
    at.selectbox(key="init_target").select("layers[2]").run()
    at.selectbox(key="init_method").select("zeros").run()
    at.button(key="init_apply").click().run()
    at.selectbox(key="init_target").select("*").run()
    at.selectbox(key="init_method").select("normal").run()
    at.checkbox(key="init_replace_own").uncheck().run()
    at.button(key="init_apply").click().run()
    assert "layers[2] keeps zeros(), bias zeros (its own)" in at.success[0].value
    assert torch.all(at.session_state[session.NET.name].module[2].weight == 0)
    # and back to the design's default, one layer
    at.selectbox(key="init_target").select("layers[2]").run()
    at.selectbox(key="init_method").select("use the design's default").run()
    at.button(key="init_apply").click().run()
    assert at.session_state[session.DESIGN.name].layers[2].init is None
    assert list(frame(at, "layer", "init", "from")["from"]) == ["the design's default"] * 2
    assert not torch.all(at.session_state[session.NET.name].module[2].weight == 0)
