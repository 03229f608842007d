"""Download buttons for what the session holds: weights (.params, .safetensors), design JSON, bundle, code, the
ONNX file, and the training bundle for torchrun.

Weights' bytes are made on every rerun for a small network, on click for a big one. On-click (deferred)
downloads spare memory, but under many concurrent sessions Streamlit 1.67 can drop a deferred file before its
click arrives ("Deferred file ... not found", seen in tests/e2e/test_load.py), so small networks, the
classroom case, get plain bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import streamlit as st

import builder
from builder.codegen import file_stem
from builder.onnx_export import INSTALL, OnnxError
from builder.params import weights_version
from ui import state
from ui.messages import show_error

if TYPE_CHECKING:
    from torch import nn

    from builder import Dataset, TrainConfig

EAGER_DOWNLOAD_BYTES = 8 * 2**20
EAGER_BUNDLE_VALUES = 200_000  # values of a data set written into a training bundle on every rerun (~0.1 s)


def download_data(net: nn.Module, make: Callable[[], bytes]) -> bytes | Callable[[], bytes]:
    """`make()` now when the network's tensors are small, else `make` itself for st.download_button to call."""
    size = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    return make() if size <= EAGER_DOWNLOAD_BYTES else make


def weights_button(net: nn.Module, name: builder.Design | str, key: str, label: str | None = None, **kw: Any) -> None:
    """torch.save(net.state_dict()) of the session's network (CPU copies), as `<stem>.params`."""
    stem = file_stem(name)
    st.download_button(
        label or f"Weights · {stem}.params",
        download_data(net, lambda: builder.save_params(net, cpu=True)),
        file_name=f"{stem}.params",
        mime="application/octet-stream",
        key=key,
        on_click="ignore",  # no rerun: a second download clicked right after is not cancelled
        icon=kw.pop("icon", ":material/download:"),
        **kw,
    )


def design_button(design: builder.Design, key: str, label: str | None = None, **kw: Any) -> None:
    """The design as JSON, the format of the files in examples/."""
    stem = file_stem(design)
    st.download_button(
        label or f"Design · {stem}.json",
        design.to_json() + "\n",
        file_name=f"{stem}.json",
        mime="application/json",
        key=key,
        on_click="ignore",  # no rerun: a second download clicked right after is not cancelled
        icon=":material/download:",
        **kw,
    )


def safetensors_button(net: nn.Module, name: builder.Design | str, key: str, **kw: Any) -> None:
    """The weights as `<stem>.safetensors`: every key its own copy (loads strictly into hand-written PyTorch with
    safetensors.torch.load_file), tied keys recorded in the metadata."""
    stem = file_stem(name)
    st.download_button(
        f"Weights · {stem}.safetensors",
        download_data(net, lambda: builder.save_safetensors(net)),
        file_name=f"{stem}.safetensors",
        mime="application/octet-stream",
        key=key,
        on_click="ignore",  # no rerun: a second download clicked right after is not cancelled
        icon=":material/download:",
        **kw,
    )


def onnx_export(design: builder.Design, net: nn.Module) -> None:
    """Export to ONNX on request (a few seconds), then offer the file while the network stays as it was
    exported; the exporter's failure is shown naming the layer. Without the optional packages, says how to
    add them."""
    missing = builder.onnx_missing()
    if missing:
        st.info(
            f"ONNX export needs the optional package{'s' * (len(missing) > 1)} {', '.join(missing)}, not "
            f"installed on this server: `{INSTALL}` (about 120 MB, with onnxruntime to run the file).",
            icon=":material/extension:",
        )
        return
    stem = file_stem(design)
    stamp = (design.to_json(), id(net), weights_version(net))
    made = state.ONNX_FILE.get()
    if made is not None and made[0] == stamp and made[1] is not None:
        st.download_button(
            f"ONNX · {stem}.onnx",
            made[1],
            file_name=f"{stem}.onnx",
            mime="application/octet-stream",
            key="download_onnx",
            on_click="ignore",
            icon=":material/download:",
        )
        return
    if made is not None and made[0] == stamp and made[2] is not None:
        show_error(OnnxError(made[2]), failed="The ONNX export failed")
    label = "Export to ONNX" if made is None or made[0] != stamp else "Try the ONNX export again"
    if st.button(label, key="export_onnx", icon=":material/output:"):
        with st.spinner("Exporting with torch.onnx (dynamo): a few seconds..."):
            try:
                data = builder.to_onnx(net, builder.example_input(design))
                state.ONNX_FILE.set((stamp, data, None))
            except OnnxError as e:
                state.ONNX_FILE.set((stamp, None, str(e)))
        st.rerun()


def training_bundle_button(design: builder.Design, data: Dataset, config: TrainConfig, key: str, **kw: Any) -> None:
    """`<stem>_train.zip`: model.py, train.py (DDP for torchrun), the data and the design (builder.torchrun).
    Made now for small data; on click for large (an uploaded CSV of many rows is written out as CSV)."""
    stem = file_stem(design)

    def make() -> bytes:
        return builder.training_bundle(design, data, config)

    st.download_button(
        f"Training script · {stem}_train.zip",
        make() if data.X.numel() <= EAGER_BUNDLE_VALUES else make,
        file_name=f"{stem}_train.zip",
        mime="application/zip",
        key=key,
        on_click="ignore",
        icon=":material/terminal:",
        **kw,
    )
