"""Every st.session_state key of the app, declared once, with its type: `state.TRAIN_RUN.get()`.

A browser session's state lives in st.session_state (never a global cache). Each entry has one `Key` here;
pages, UI components and tests use the Key (its `.name` for a widget's `key=` or AppTest's
`at.session_state[...]`), never the string. To keep something new across reruns, add a Key here, in the
section of the page that owns it. Keys of widgets whose value nothing reads back through the session (most
buttons) stay at the widget: they are element ids for the tests, not state.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import streamlit as st

if TYPE_CHECKING:
    from torch import nn

    from builder import Design, TrainingHistory, UndoHistory
    from builder.training import Trainer

T = TypeVar("T")


class Key(Generic[T]):
    """One entry of st.session_state; `T` is what it holds."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Key({self.name!r})"

    def get(self, default: T | None = None) -> T | None:
        return st.session_state.get(self.name, default)

    def __call__(self) -> T:
        """The value, which must be there (the app sets it first)."""
        return st.session_state[self.name]

    def set(self, value: T) -> None:
        st.session_state[self.name] = value

    def pop(self) -> T | None:
        return st.session_state.pop(self.name, None)

    def setdefault(self, make: Callable[[], T]) -> T:
        if self.name not in st.session_state:
            st.session_state[self.name] = make()
        return st.session_state[self.name]

    def present(self) -> bool:
        return self.name in st.session_state


@dataclass
class HeldNet:
    """The session's network: built from the design whose JSON is `design_json`, now on `device`."""

    design_json: str
    module: nn.Module
    device: str


Kind = Literal["success", "info", "warning", "error"]


@dataclass(frozen=True)
class Flash:
    """A message that survives a rerun (ui.messages.flash)."""

    text: str
    kind: Kind
    icon: str | None
    about: Hashable | None  # shown while the page passes the same `about`; None: once
    toast: bool


def seed(key: str, value: Any) -> str:
    """Give the widget `key` its value through the session when it has none (first shown, or forgotten
    after an edit); returns `key` for the widget's key=. Passing `value=` instead would not reach a browser
    that already shows the widget."""
    if key not in st.session_state:
        st.session_state[key] = value
    return key


def forget_widgets(prefixes: tuple[str, ...] = (), names: tuple[str, ...] = ()) -> None:
    """Drop widget values (keys starting with one of `prefixes`, or in `names`) so the widgets show what the
    page gives them next, not what the browser last sent."""
    for key in list(st.session_state):
        if isinstance(key, str) and (key.startswith(prefixes) or key in names):
            del st.session_state[key]


# -- the session (ui.session) ----------------------------------------------------------------------------------
DESIGN: Key[Design] = Key("design")  # the session's design: what every page shows
NET: Key[HeldNet] = Key("net")  # its network, built when the design changes (ui.session.net)
DEVICE: Key[str] = Key("device")  # the device the user chose ("cpu", "cuda:0", "mps")
DEVICE_SELECT: Key[str] = Key("device_select")  # the sidebar's selector (a widget: dropped when not drawn)
DEVICE_PROBED: Key[str] = Key("device_probed")  # the device last checked to hold tensors
SHARE_TOKEN: Key[str] = Key("share_token")  # the ?design= link last opened, once per link
SHARE_ERROR: Key[str] = Key("share_error")  # why that link could not be opened
FLASHES: Key[list[Flash]] = Key("flashes")  # messages that survive a rerun (ui.messages.flash)

# -- Design page ----------------------------------------------------------------------------------------------
DESIGN_HISTORY: Key[UndoHistory] = Key("design_history")  # drafts; the present may not build (fault shown)
DESIGN_SYNCED: Key[Design] = Key("design_synced")  # the session design the page last saw
DESIGN_EDITING: Key[tuple[int, ...] | None] = Key("design_editing")  # path of the row whose editor is open
DESIGN_JSON_ERROR: Key[Exception] = Key("design_json_error")
DESIGN_UNFOLDED: Key[frozenset[tuple[int, ...]]] = Key("design_unfolded")  # blocks drawn open (paths); others fold
# the open blocks each design of the undo history had when it was left (by id: the history holds the designs)
DESIGN_FOLDS: Key[dict[int, frozenset[tuple[int, ...]]]] = Key("design_folds")
DESIGN_PAGE: Key[int] = Key("design_page")  # the page of the stack shown (a widget: its picker), 0 first
DESIGN_NEAR: Key[tuple[int, ...]] = Key("design_near")  # the row last opened or edited: a big preview centres on it
DESIGN_SHOW: Key[tuple[int, ...]] = Key("design_show")  # a row to bring into view on the next draw (its page)
MOVE_TO: Key[int] = Key("move_to")  # the open row's "move to position" box (1 = first in its block)
DESIGN_CONFIRM_CLEAR: Key[bool] = Key("design_confirm_clear")
ADD_TYPE: Key[str] = Key("add_type")  # the add panel's layer type (or "shared:<name>")
ADD_WHERE: Key[str] = Key("add_where")  # where the new layer goes, a design path
START_EXAMPLE: Key[str] = Key("start")  # the toolbar's example picker
DESIGN_JSON: Key[str] = Key("json")
INPUT_SHAPE: Key[str] = Key("input_shape")
INPUT_DTYPE: Key[str] = Key("input_dtype")
NODE_NAME: Key[str] = Key("name")  # the open editor's name box
SHARE_NAME: Key[str] = Key("share_name")  # "Mark as shared" name box
SHARED_NAME: Key[str] = Key("shared_name")  # a use's shared-layer rename box
GROUP_NAME: Key[str] = Key("group_name")
# A flow panel's controls (ui.flow_panel), keyed by the holder ("0_2" a block's row, "top" the network) and the
# step's place: FLOW_PREFIX + "merge_<holder>_<at>", "dim_…", "out_…" (a call's output), "kind_<holder>",
# "where_<holder>", "name_<holder>" and "arg_<holder>_<argument>" (the add-a-step form), "class_<holder>".
FLOW_PREFIX = "flow_"


def flow_key(part: str, *ids: object) -> Key[Any]:
    return Key("_".join([FLOW_PREFIX + part, *map(str, ids)]))


NEW_NAME: Key[str] = Key("new_name")  # the add panel's name box
IMPORT_SOURCE: Key[str] = Key("import_source")  # Import tab: paste code or upload a file
IMPORT_CODE: Key[str] = Key("import_code")  # the pasted code
IMPORT_UPLOAD: Key[Any] = Key("import_upload")  # the uploaded .py / .json / .params (an UploadedFile)
IMPORT_READ: Key[str] = Key("import_read")  # the file_id of the upload last read
IMPORT_RESULT: Key[tuple[str, Any]] = Key("import_result")  # (what was read, a Design, (outline, guess) or error)
# Per-row and per-argument widgets: "sel_<row>", "arg_<argument>" (open editor), "new_<argument>" (add panel).
SELECT_PREFIX, ARG_PREFIX, NEW_PREFIX = "sel_", "arg_", "new_"

# -- Train page -----------------------------------------------------------------------------------------------
TRAIN_SETTINGS: Key[dict[str, Any]] = Key("train_settings")  # widget key -> last choice (kept across pages)
TRAIN_CSV_UPLOAD: Key[Any] = Key("train_csv_upload")  # the file uploader (an UploadedFile)
TRAIN_CSV: Key[tuple[str, Any]] = Key("train_csv")  # (file name, its table or the DataError reading it)
TRAIN_RUN: Key[Trainer] = Key("train_run")  # the run shown (running or done)
TRAIN_RUNS: Key[list[TrainingHistory]] = Key("train_runs")  # every finished run of the session
TRAIN_DRAW_SECONDS: Key[float] = Key("train_draw_seconds")  # CPU seconds the live run's last redraw took
TRAIN_SOURCE: Key[str] = Key("train_source")  # a built-in set's name or "upload"
TRAIN_FRESH: Key[bool] = Key("train_fresh")  # re-initialize before training
TRAIN_CSV_TARGET: Key[str] = Key("train_csv_target")
TRAIN_CSV_FEATURES: Key[list[str]] = Key("train_csv_features")
TRAIN_CSV_TASK: Key[str] = Key("train_csv_task")
TRAIN_CSV_STANDARDIZE: Key[bool] = Key("train_csv_standardize")
TRAIN_PREFIX = "train_"  # a TrainConfig field's widget is "train_<field>"; data sizes "train_n_<set>"...


def train_field(field: str) -> Key[Any]:
    """The widget key of TrainConfig's `field` ("lr" -> "train_lr")."""
    return Key(TRAIN_PREFIX + field)


def train_data_size(source: str) -> tuple[Key[int], Key[float]]:
    """The sample count and noise widgets of a built-in data set."""
    return Key(f"train_n_{source}"), Key(f"train_noise_{source}")


# -- Library page ---------------------------------------------------------------------------------------------
LIB_NAME: Key[str] = Key("lib_name")  # the save box's name
LIB_NAME_FOR: Key[str] = Key("lib_name_for")  # the default the name box was last given
LIB_MESSAGE: Key[str] = Key("lib_message")  # the save box's note
LIB_SAVED_AS: Key[tuple[str, str]] = Key("lib_saved_as")  # (design name, library name) of the last save
LIB_PICK: Key[str] = Key("lib_pick")  # the saved design picked
LIB_VERSION: Key[int] = Key("lib_version")
LIB_RENAME_TO: Key[str] = Key("lib_rename_to")
LIB_FORK_TO: Key[str] = Key("lib_fork_to")  # the name a fork gets
LIB_TRASH_PICK: Key[str] = Key("lib_trash_pick")  # the design picked in the trash
LIB_CONFIRM_PURGE: Key[str | None] = Key("lib_confirm_purge")  # name whose purge awaits a yes
SHARE_PASTE: Key[str] = Key("share_paste")  # a pasted share link
IMPORT_FILE: Key[Any] = Key("import_file")  # the uploaded design JSON
IMPORT_NAME: Key[str] = Key("import_name")

# -- Lessons page ---------------------------------------------------------------------------------------------
LESSON_STEP: Key[int] = Key("lesson_step")  # index of the step shown
LESSON_PICK: Key[int] = Key("lesson_pick")  # the step list (a widget)
LESSON_RESULT: Key[tuple[str, int, Any]] = Key("lesson_result")  # (step key, id of the network, what it gave)

# -- Parameters page ------------------------------------------------------------------------------------------
PARAM_EDITED: Key[tuple[int, str, tuple[int, ...]]] = Key("param_edited")  # (id of net, key, index) last set

# -- Weights page ---------------------------------------------------------------------------------------------
UPLOAD: Key[Any] = Key("upload")  # the uploaded .params file
UPLOAD_LOADED: Key[tuple[str, int]] = Key("upload_loaded")  # (file id, id of net) last loaded or refused
# The last ONNX export: (stamp of what it was made from, the file or None, why it failed or None); the stamp is
# (design JSON, id of net, builder.params.weights_version), so a trained or edited network asks for a new one.
ONNX_FILE: Key[tuple[tuple[Any, ...], bytes | None, str | None]] = Key("onnx_file")

# -- Inspect page ---------------------------------------------------------------------------------------------
EXAMPLE: Key[str] = Key("example")  # the example picker
GRAPH_DEPTH: Key[int | str] = Key("graph_depth")  # how deep the graph is drawn: 1, 2, … or "all" (a widget)
GRAPH_EXPAND: Key[list[str]] = Key("graph_expand")  # blocks drawn open whatever the depth (a widget)
INSPECT_TAB: Key[str] = Key("inspect_tab")  # the tab shown: "Graph", "Output shapes" or "Parameters" (only it runs)
GRAPH_FOR: Key[str] = Key("graph_for")  # the blocks of the design those two were chosen for
