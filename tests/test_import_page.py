"""The Design page's Import tab (AppTest): pasted code, uploaded .py / .json / .params, refusals, adoption
through the undo history."""

from __future__ import annotations

import io
import os

import torch
from streamlit.testing.v1 import AppTest
from torch import nn

from builder import Design, build, from_code, load_example, save_params
from ui import state

from .snippets import CHAPTER, PRELUDE
from .test_design_page import click, draft, ok

TIED = PRELUDE + CHAPTER["tied"]
MARKER = "/tmp/blockwork-import-page-pwned"


def paste(at: AppTest, code: str) -> AppTest:
    ok(at.radio(key=state.IMPORT_SOURCE.name).set_value("Paste code").run())
    at.text_area(key=state.IMPORT_CODE.name).input(code)
    return click(at, "import_read")


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    ok(at.radio(key=state.IMPORT_SOURCE.name).set_value("Upload a file").run())
    return ok(at.file_uploader(key=state.IMPORT_UPLOAD.name).set_value((name, data, "application/octet-stream")).run())


def frame(at: AppTest, column: str):
    """The table shown with `column` (AppTest finds dataframes by position, not key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def texts(at: AppTest) -> str:
    return " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.error, *at.warning, *at.success, *at.code])


def test_pasted_tied_network_is_shown_then_adopted_through_undo(app: AppTest) -> None:
    at = paste(app, TIED)
    before = draft(at)
    assert "never run" in texts(at)
    assert any("shared weights" in g.proto.spec for g in at.get("graphviz_chart")), "the shared-weights node"
    assert draft(at) == before  # shown, not yet used
    click(at, "import_use")
    assert draft(at) == from_code(TIED)
    assert at.session_state[state.DESIGN.name] == from_code(TIED)  # it builds: the session's design now
    assert any("Imported" in s.value for s in at.success)
    net = build(draft(at))
    assert net[2] is net[4]
    click(at, "undo")
    assert draft(at) == before


def test_dangerous_code_is_refused_with_line_and_column_and_changes_nothing(app: AppTest) -> None:
    if os.path.exists(MARKER):
        os.remove(MARKER)
    before = draft(app)
    at = paste(app, f"import os\nos.system('touch {MARKER}')\nnet = nn.Sequential(nn.Linear(2, 2))")
    errors = " ".join(e.value for e in at.error)
    assert "line 2, column 1" in errors and "nothing was run" in errors
    assert "import_use" not in [b.key for b in at.button]
    assert draft(at) == before
    assert not os.path.exists(MARKER)
    at = paste(at, "")
    assert "no code to read" in " ".join(e.value for e in at.error)


def test_uploaded_py_is_read_never_run(app: AppTest, tmp_path) -> None:
    target = tmp_path / "ran.txt"
    source = PRELUDE + CHAPTER["mlp_class"] + f"\ntorch.save(net.state_dict(), {str(target)!r})\n"
    at = upload(app, "mlp.py", source.encode())
    click(at, "import_use")
    assert draft(at) == from_code(source)
    assert not target.exists()


def test_uploaded_design_json(app: AppTest) -> None:
    design = load_example("lenet")
    at = upload(app, "lenet.json", design.to_json().encode())
    click(at, "import_use")
    assert draft(at) == design
    at = upload(at, "broken.json", b'{"format": 1, "layers": [')
    assert "not valid JSON" in " ".join(e.value for e in at.error)


def test_uploaded_params_shows_outline_fit_and_guess(app: AppTest) -> None:
    shared = nn.Linear(8, 8)
    theirs = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1))
    buffer = io.BytesIO()
    torch.save(theirs.state_dict(), buffer)  # a colleague's file, written by plain PyTorch
    app.session_state[state.DESIGN.name] = load_example("tied")
    at = upload(app.run(), "colleague.params", buffer.getvalue())
    shown = texts(at)
    assert "7 tensors" not in shown and "8 tensors" in shown and "1 tied group" not in shown  # 2 groups
    assert "2 tied group(s)" in shown
    assert "= 2.weight" in shown  # the tree marks 4.weight as the same tensor as 2.weight
    outline = frame(at, "tied with")
    assert outline.set_index("key").loc["4.bias", "tied with"] == "2.bias"
    assert "Fits 'tied'" in shown
    click(at, "import_use_guess")
    guessed = draft(at)
    assert guessed.name == "colleague" and "guess" in guessed.description
    net = build(guessed)
    net.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True), strict=True)
    assert net[2] is net[4]


def test_a_params_file_that_does_not_fit_is_diffed_by_layer(app: AppTest) -> None:
    app.session_state[state.DESIGN.name] = load_example("tied")
    other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 9))
    at = upload(app.run(), "other.params", save_params(other))
    assert "Does not fit 'tied'" in " ".join(w.value for w in at.warning)
    keys = frame(at, "status").set_index("key")
    assert keys.loc["2.weight", "status"] == "wrong shape" and keys.loc["6.weight", "status"] == "missing"


def test_a_malicious_params_file_is_refused(app: AppTest) -> None:
    class Exploit:
        def __reduce__(self):  # noqa: ANN204
            return (os.system, (f"touch {MARKER}",))

    if os.path.exists(MARKER):
        os.remove(MARKER)
    buffer = io.BytesIO()
    torch.save({"0.weight": Exploit()}, buffer)
    before: Design = draft(app)
    at = upload(app, "evil.params", buffer.getvalue())
    assert "refused" in " ".join(e.value for e in at.error)
    assert not os.path.exists(MARKER)
    assert draft(at) == before


NOT_FITTING = "net = nn.Sequential(\n    nn.Linear(20, 256),\n    nn.ReLU(),\n    nn.Linear(100, 10),\n)\n"


def test_an_import_that_does_not_build_says_why_on_the_import_tab_and_keeps_the_design(app: AppTest) -> None:
    before = draft(app)
    session_design = app.session_state[state.DESIGN.name]
    at = paste(app, NOT_FITTING)
    tab = next(t for t in at.tabs if t.label == "Import")
    said = " ".join(e.value for e in tab.error)
    assert "does not build" in said and "your design is unchanged" in said, said
    assert "layers[2] Linear" in said and "expects 100 input features, gets 256" in said, said
    assert "made on line 4 of the code" in said, said  # nn.Linear(100, 10) is on line 4 of the paste
    assert draft(at) == before and at.session_state[state.DESIGN.name] == session_design
    use = at.button(key="import_use")
    assert use.label == "Use it anyway, to fix it" and use.proto.type != "primary"

    click(at, "import_use")  # asked for: the draft now, its fault said; the session keeps the design that built
    assert draft(at) == from_code(NOT_FITTING)
    assert at.session_state[state.DESIGN.name] == session_design
    warned = " ".join(w.value for w in at.warning)
    assert "Imported 'net', which does not build" in warned and "Undo" in warned, warned
    assert not any("Imported" in s.value for s in at.success)
    click(at, "undo")
    assert draft(at) == before
