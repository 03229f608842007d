"""The Train page's left column: the data (built-in set or CSV file) and the settings, remembered per session.

Streamlit forgets the state of widgets that are not drawn (another page), so each widget starts from the
session's last choice, kept in `state.TRAIN_SETTINGS`. It is passed as the widget's own value= (not written
into the widget's state): a widget the browser draws late, off screen at first, then starts from it too,
instead of from its minimum. The settings are TrainConfig's fields (`builder.train_advice.config_fields`),
each drawn by one entry of SETTING_WIDGETS and starting from `train_advice.START`.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

import builder
import ui
from builder import train_advice
from builder.data import BUILTINS, DataError, Dataset, dataset_from_table, read_csv_table
from builder.training import TrainConfig, TrainingError
from ui import state

UPLOAD = "upload"


def kept(key: state.Key[Any], default: Any, options: list[Any] | None = None) -> Any:
    """The value widget `key` starts from: the session's last choice, or `default`."""
    value = state.TRAIN_SETTINGS.setdefault(dict).get(key.name, default)
    if options is not None and value not in options:
        value = default
    if options is not None and key.present() and key() not in options:
        restart(key)  # the options changed (another CSV file)
    return value


def restart(key: state.Key[Any]) -> None:
    """Drop the widget `key`'s value (its options changed): the page seeds it again (`state.seed`), which
    reaches a browser that shows the widget. Such a widget gets no value=/index=/default= as well: Streamlit
    warns about a widget given both a default and a Session State value."""
    key.pop()


def remember(*keys: state.Key[Any]) -> None:
    settings = state.TRAIN_SETTINGS.setdefault(dict)
    for key in keys:
        settings[key.name] = key.get()


# -- data ------------------------------------------------------------------------------------------------


def keep_upload() -> None:
    """Read an uploaded CSV once, into this session only (a user's data never goes in a shared cache)."""
    file = state.TRAIN_CSV_UPLOAD.get()
    if file is None:
        state.TRAIN_CSV.pop()
        return
    try:
        state.TRAIN_CSV.set((file.name, read_csv_table(file.getvalue())))
    except DataError as e:
        state.TRAIN_CSV.set((file.name, e))


def apply_good_settings(source: str | None = None) -> None:
    """A built-in set with settings of its own (the chapter's SGD for the regression) sets them on choosing."""
    settings = state.TRAIN_SETTINGS.setdefault(dict)
    for field, value in train_advice.settings_for(source or state.TRAIN_SOURCE()).items():
        key = state.train_field(field)
        settings[key.name] = value
        if key.present():
            key.set(value)


def choose_data(design: builder.Design, output_shape: tuple[int, ...]) -> Dataset | None:
    sources = [*BUILTINS, UPLOAD]
    settings = state.TRAIN_SETTINGS.setdefault(dict)
    if state.TRAIN_SOURCE.name not in settings:  # first visit: data the design fits
        settings[state.TRAIN_SOURCE.name] = train_advice.fitting_source(design, output_shape)
        apply_good_settings(settings[state.TRAIN_SOURCE.name])
    st.selectbox(
        "Data",
        sources,
        key=state.TRAIN_SOURCE.name,
        index=sources.index(kept(state.TRAIN_SOURCE, "moons", sources)),
        on_change=apply_good_settings,
        format_func=lambda s: "Upload a CSV file…" if s == UPLOAD else s,
        help="Built-in sets are generated here (nothing is downloaded); a CSV file needs a header line.",
    )
    source = state.TRAIN_SOURCE()
    remember(state.TRAIN_SOURCE)
    if source == UPLOAD:
        return csv_data()
    spec = BUILTINS[source]
    a, b = st.columns(2)
    n_key, noise_key = state.train_data_size(source)
    max_rows = builder.limits().max_data_rows
    a.number_input(
        "Samples", min_value=20, max_value=max_rows, step=100, key=n_key.name, value=kept(n_key, spec.default_n)
    )
    b.number_input(
        spec.noise_label,
        min_value=0.0,
        max_value=spec.noise_max,
        step=0.05,
        format="%.2f",
        key=noise_key.name,
        value=kept(noise_key, spec.default_noise),
    )
    remember(n_key, noise_key)
    try:
        data = train_advice.dataset_for(design, source, n=int(n_key()), noise=float(noise_key()))
    except DataError as e:
        ui.show_error(e)
        return None
    st.caption(spec.summary[:1].upper() + spec.summary[1:] + ".")
    return data


def cannot_use(name: str, e: DataError) -> None:
    """Say what is wrong with the file (the line, column or row at fault), and put away the last finished run's
    results: they are about other data, and a page showing them under this file misleads (the run stays in
    the runs table; its weights are the session's)."""
    ui.show_error(e, f"**{name}** cannot be used")
    run = state.TRAIN_RUN.get()
    if run is not None and run.done:
        state.TRAIN_RUN.pop()


def csv_data() -> Dataset | None:
    st.file_uploader(
        "CSV file",
        type=["csv"],
        key=state.TRAIN_CSV_UPLOAD.name,
        on_change=keep_upload,
        help=f"At most {builder.limits().max_data_rows:,} rows; the first line names the columns.",
    )
    held = state.TRAIN_CSV.get()
    if held is None:
        st.info(
            "Upload a CSV file: a header line naming the columns, then one row per sample.",
            icon=":material/upload_file:",
        )
        return None
    name, table = held
    if isinstance(table, DataError):
        cannot_use(name, table)
        return None
    columns = list(table.columns)
    st.caption(f"**{name}** — {len(table):,} rows, {len(columns)} columns")
    target = st.selectbox(
        "Target (what to predict)",
        columns,
        key=state.seed(state.TRAIN_CSV_TARGET.name, kept(state.TRAIN_CSV_TARGET, columns[-1], columns)),
    )
    others = [c for c in columns if c != target]
    features = kept(state.TRAIN_CSV_FEATURES, others)
    if not isinstance(features, list) or any(c not in others for c in features):
        features = others  # another target or file: every other column
        state.TRAIN_SETTINGS.setdefault(dict).pop(state.TRAIN_CSV_FEATURES.name, None)
        restart(state.TRAIN_CSV_FEATURES)
    st.multiselect("Features (the network's inputs)", others, key=state.seed(state.TRAIN_CSV_FEATURES.name, features))
    tasks = ["auto", "classification", "regression"]
    st.radio(
        "Task",
        tasks,
        key=state.TRAIN_CSV_TASK.name,
        index=tasks.index(kept(state.TRAIN_CSV_TASK, "auto", tasks)),
        horizontal=True,
        help="auto: text labels, or whole numbers with few values, are classes; other numbers are regression.",
    )
    st.checkbox(
        "Standardize features (mean 0, std 1)",
        key=state.TRAIN_CSV_STANDARDIZE.name,
        value=kept(state.TRAIN_CSV_STANDARDIZE, True),
        help="Usually needed to train on raw columns. The trained network then expects inputs scaled the "
        "same way (the means and deviations are listed below).",
    )
    remember(state.TRAIN_CSV_TARGET, state.TRAIN_CSV_FEATURES, state.TRAIN_CSV_TASK, state.TRAIN_CSV_STANDARDIZE)
    with st.expander("Preview"):
        st.dataframe(table.head(20), key="train_csv_preview", hide_index=True)
    try:
        data = dataset_from_table(
            table,
            target,
            state.TRAIN_CSV_FEATURES(),
            state.TRAIN_CSV_TASK(),
            state.TRAIN_CSV_STANDARDIZE(),
            name=name,
        )
    except DataError as e:
        cannot_use(name, e)
        return None
    st.caption(data.description + (f" · classes: {', '.join(data.classes[:12])}" if data.classes else ""))
    if data.info:
        scaling = (f"{f}: mean {data.info['mean'][f]:.4g}, std {data.info['std'][f]:.4g}" for f in data.feature_names)
        st.caption("Scaling: " + ", ".join(list(scaling)[:10]))
    return data


def load_suggested(name: str) -> None:
    ui.set_design(builder.load_example(name))
    state.TRAIN_RUN.pop()


def check_fit(design: builder.Design, output_shape: tuple[int, ...], data: Dataset) -> bool:
    """Whether the design fits the data; if not, say why and offer an example design that does."""
    problem = train_advice.fit_problem(design, output_shape, data)
    if problem is None:
        return True
    st.warning(problem[:1].upper() + problem[1:], icon=":material/straighten:")  # guidance: a design that fits
    suggestion = train_advice.SUGGESTED_EXAMPLE.get(data.name)
    if suggestion and suggestion != design.name:
        st.button(
            f"Use example '{suggestion}'",
            key="train_use_example",
            icon=":material/swap_horiz:",
            on_click=load_suggested,
            args=(suggestion,),
            width="stretch",
            help=f"Replace the session's design with the example '{suggestion}', which fits this data.",
        )
    return False


# -- settings ----------------------------------------------------------------------------------------------

# One widget per TrainConfig field: (kind, column 0/1, options). Its starting value is train_advice.START's.
SETTING_WIDGETS: dict[str, dict[str, Any]] = {
    "optimizer": {"kind": "select", "label": "Optimizer", "options": ["adam", "sgd"]},
    "lr": {"label": "Learning rate", "min_value": 1e-5, "max_value": 10.0, "step": 0.001, "format": "%.4f"},
    "batch_size": {"label": "Batch size", "min_value": 1, "max_value": 100_000, "step": 8},
    "epochs": {"label": "Epochs", "min_value": 1, "max_value": 10_000, "step": 10},
    "weight_decay": {
        "label": "Weight decay",
        "min_value": 0.0,
        "max_value": 1.0,
        "step": 0.0001,
        "format": "%.4f",
        "help": "L2 penalty on the weights (torch.optim's).",
    },
    "momentum": {
        "label": "Momentum",
        "min_value": 0.0,
        "max_value": 0.99,
        "step": 0.1,
        "format": "%.2f",
        "help": "SGD only.",
    },
    "val_fraction": {
        "kind": "slider",
        "label": "Validation share",
        "min_value": 0.0,
        "max_value": 0.5,
        "step": 0.05,
        "help": "Held out before training and never trained on: the curves' validation line.",
    },
    "seed": {
        "label": "Seed",
        "min_value": 0,
        "max_value": 2**31 - 1,
        "step": 1,
        "help": "The split, the shuffling, dropout and (with fresh weights) the initial weights.",
    },
}
OPTIMIZER_LABELS = {"adam": "Adam", "sgd": "SGD"}


def choose_settings() -> TrainConfig | None:
    """A widget per TrainConfig field, two to a row, and "Start from fresh weights"; the config, or None
    (and the reason shown) when a setting is out of range."""
    columns = st.columns(2)
    fields = train_advice.config_fields()
    for i, field in enumerate(fields):
        spec = dict(SETTING_WIDGETS[field])
        kind, label, key = spec.pop("kind", "number"), spec.pop("label"), state.train_field(field)
        box = columns[i % 2]
        start = getattr(train_advice.START, field)
        # seeded through the session, not value=/index=: apply_good_settings sets these widgets' values, and a
        # widget given both a default and a Session State value makes Streamlit warn
        if kind == "select":
            options = spec.pop("options")
            seeded = state.seed(key.name, kept(key, start, options))
            box.selectbox(label, options, key=seeded, format_func=OPTIMIZER_LABELS.get)
        elif kind == "slider":
            box.slider(label, key=state.seed(key.name, kept(key, start)), **spec)
        else:
            disabled = field == "momentum" and state.train_field("optimizer").get() != "sgd"
            box.number_input(label, key=state.seed(key.name, kept(key, start)), disabled=disabled, **spec)
    st.checkbox(
        "Start from fresh weights",
        key=state.seed(state.TRAIN_FRESH.name, kept(state.TRAIN_FRESH, True)),
        help="Re-initialize the network with the seed before training (same seed, same run). Untick to "
        "train further from the current weights.",
    )
    remember(*(state.train_field(f) for f in fields), state.TRAIN_FRESH)
    try:
        return TrainConfig(**{f: state.train_field(f)() for f in fields})
    except TrainingError as e:
        ui.show_error(e)
        return None
