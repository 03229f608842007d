"""Weights: download the session's weights, design, code or all three; upload weights back, checked first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import streamlit as st

import builder
import ui
from builder import ParamsError
from builder.codegen import file_stem
from ui import downloads, state

if TYPE_CHECKING:
    from torch import nn

UNCHANGED = "The session's weights are unchanged."


def download_row(current: builder.Design, net: nn.Module) -> None:
    stem = file_stem(current)
    st.caption(
        f"`{stem}.params` is `torch.save(net.state_dict())`: load it into hand-written PyTorch with "
        f"`net.load_state_dict(torch.load('{stem}.params'))`. `{stem}.safetensors` loads without unpickling "
        f"(`safetensors.torch.load_file`), every key its own copy, tied keys named in its metadata. The design "
        f"JSON rebuilds the network in Blockwork; the bundle holds the design, the weights and the exported code."
    )
    cols = st.columns(2)  # weights in both formats above, design and bundle below: room for the file names
    with cols[0]:
        downloads.weights_button(net, current, key="download_params", width="stretch")
    with cols[1]:
        downloads.safetensors_button(net, current, key="download_safetensors", width="stretch")
    cols = st.columns(2)
    with cols[0]:
        downloads.design_button(current, key="download_design", width="stretch")
    with cols[1]:
        st.download_button(
            f"Bundle · {stem}.zip",
            downloads.download_data(net, lambda: builder.bundle(current, net)),
            file_name=f"{stem}.zip",
            mime="application/zip",
            key="download_bundle",
            on_click="ignore",  # no rerun: a second download clicked right after is not cancelled
            icon=":material/folder_zip:",
            width="stretch",
        )
    if ui.net_device() != "cpu":
        st.caption("The network is on a GPU; the files hold CPU copies of its tensors, so they load anywhere.")


def load(net: nn.Module, upload: Any, state_dict: dict[str, Any], strict: bool) -> None:
    """Load the uploaded tensors; what happened is flashed while the same file and network are shown."""
    about = (upload.file_id, id(net))
    state.UPLOAD_LOADED.set(about)
    try:
        report = builder.load_params(net, state_dict, strict=strict)
    except ParamsError as e:
        ui.flash(f"{e} {UNCHANGED}", "error", about=about)
        return
    how = "" if strict else " (partial load: only the matching keys)"
    converted = f"; converted {len(report.converted)} to the network's dtype" if report.converted else ""
    text = f"Loaded {len(report.matched)} tensors from {upload.name}{how}{converted}. {report.summary()}."
    ui.flash(text, about=about)


def upload_section(net: nn.Module) -> None:
    upload = st.file_uploader(
        "A .params file (torch.save(net.state_dict(), path)) or a .safetensors file",
        type=["params", "pt", "pth", "safetensors"],
        key=state.UPLOAD.name,
        help=f"Read safely (torch.load with weights_only=True, or a checked safetensors header: no code in the "
        f"file runs). Keys, shapes and tied positions are checked before anything changes. At most "
        f"{builder.limits().max_upload_mb} MB. A torchrun training bundle's trained.params loads here too.",
    )
    if upload is None:
        return
    try:
        state_dict = builder.read_params(upload.getvalue(), max_mb=builder.limits().max_upload_mb)
        report = builder.check_params(net, state_dict)
    except ParamsError as e:
        ui.show_error(e)
        st.caption(UNCHANGED)
        return
    about = (upload.file_id, id(net))
    loaded = state.UPLOAD_LOADED.get()
    fresh = loaded is None or loaded[0] != upload.file_id
    if report.ok and fresh:
        load(net, upload, state_dict, strict=True)  # the file fits: uploading it is the request to load it
    ui.show_flashes(about=about)
    if not report.ok:
        if fresh or loaded != about:
            try:
                builder.load_params(net, state_dict, strict=True)  # refused: says which keys, changes nothing
            except ParamsError as e:
                ui.show_error(e)
                st.caption(UNCHANGED)
        if report.matched and st.button(
            f"Load only the {len(report.matched)} matching keys",
            key="partial_load",
            icon=":material/rule:",
            help="A partial load: keys that match in name and shape are loaded; "
            "the network keeps its own values for the rest.",
        ):
            load(net, upload, state_dict, strict=False)
            st.rerun()
    elif not fresh and loaded != about and st.button("Load these weights", key="load_again"):
        load(net, upload, state_dict, strict=True)
        st.rerun()
    st.caption(f"Check of {upload.name} against the network: {report.summary()}.")
    st.dataframe(report.table(), key="report", hide_index=True, width="stretch")


def code_section(current: builder.Design) -> None:
    stem = file_stem(current)
    code = builder.to_code(current)
    st.caption(
        f"Plain PyTorch that rebuilds this network; `python {stem}.py {stem}.params` loads the weights and prints it."
    )
    st.download_button(
        f"Code · {stem}.py",
        code,
        file_name=f"{stem}.py",
        mime="text/x-python",
        key="download_code",
        on_click="ignore",  # no rerun: a second download clicked right after is not cancelled
        icon=":material/code:",
    )
    with st.container(key="code"):
        st.code(code, language="python")


def main() -> None:
    st.title("Weights")
    ui.show_last_built()  # when the Design page's draft does not build
    current = ui.design()
    net = ui.net()
    if net is None:
        return
    st.subheader("Download")
    download_area = st.container()  # filled after the upload below is applied: its bytes hold the new weights
    st.subheader("Upload weights")
    upload_section(net)
    with download_area:
        download_row(current, net)
    st.subheader("ONNX")
    st.caption(
        "The network as an ONNX file for Netron, onnxruntime, phones and browsers: exported by torch's own exporter "
        "in eval mode, any batch size, the weights inside (a shared layer's once)."
    )
    downloads.onnx_export(current, net)
    st.subheader("Code")
    code_section(current)


main()
