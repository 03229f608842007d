"""Weights: download the session's weights, design, code or all three; upload weights back, checked first."""

import streamlit as st

import builder
import ui
from builder import ParamsError
from builder.codegen import file_stem

st.title("Weights")
current = ui.design()
net = ui.net()
if net is None:
    st.stop()
stem = file_stem(current)

# -- download ----------------------------------------------------------------------------------------------
st.subheader("Download")
st.caption(
    f"`{stem}.params` is `torch.save(net.state_dict())`: load it into hand-written PyTorch with "
    f"`net.load_state_dict(torch.load('{stem}.params'))`. The design JSON rebuilds the network in Blockwork; "
    f"the bundle holds the design, the weights and the exported code."
)
cols = st.columns(3)
with cols[0]:
    # bytes now for a small network; made when clicked for a big one (ui.download_data)
    st.download_button(
        f"Weights · {stem}.params",
        ui.download_data(net, lambda: builder.save_params(net, cpu=True)),
        file_name=f"{stem}.params",
        mime="application/octet-stream",
        key="download_params",
        icon=":material/download:",
        width="stretch",
    )
with cols[1]:
    st.download_button(
        f"Design · {stem}.json",
        current.to_json() + "\n",
        file_name=f"{stem}.json",
        mime="application/json",
        key="download_design",
        icon=":material/download:",
        width="stretch",
    )
with cols[2]:
    st.download_button(
        f"Bundle · {stem}.zip",
        ui.download_data(net, lambda: builder.bundle(current, net)),
        file_name=f"{stem}.zip",
        mime="application/zip",
        key="download_bundle",
        icon=":material/folder_zip:",
        width="stretch",
    )
if st.session_state.get("net_device", "cpu") != "cpu":
    st.caption("The network is on a GPU; the files hold CPU copies of its tensors, so they load anywhere.")

# -- upload ------------------------------------------------------------------------------------------------
st.subheader("Upload weights")
upload = st.file_uploader(
    "A .params file saved with torch.save(net.state_dict(), path)",
    type=["params", "pt", "pth"],
    key="upload",
    help=f"Read safely (torch.load with weights_only=True: no code in the file runs). Keys, shapes and tied "
    f"positions are checked before anything changes. At most {builder.limits().max_upload_mb} MB.",
)


def show_outcome() -> None:
    outcome = st.session_state.get("upload_outcome")
    if outcome is None or outcome["file"] != upload.file_id or outcome["net"] != id(net):
        return
    if outcome["ok"]:
        st.success(outcome["message"], icon=":material/check_circle:")
    else:
        st.error(outcome["message"], icon=":material/error:")
        st.caption("The session's weights are unchanged.")


def load(state: dict, strict: bool) -> None:
    try:
        report = builder.load_params(net, state, strict=strict)
    except ParamsError as e:
        st.session_state.upload_outcome = {"file": upload.file_id, "net": id(net), "ok": False, "message": str(e)}
        return
    how = "" if strict else " (partial load: only the matching keys)"
    converted = f"; converted {len(report.converted)} to the network's dtype" if report.converted else ""
    st.session_state.upload_outcome = {
        "file": upload.file_id,
        "net": id(net),
        "ok": True,
        "message": f"Loaded {len(report.matched)} tensors from {upload.name}{how}{converted}. {report.summary()}.",
    }


if upload is not None:
    try:
        state = builder.read_params(upload.getvalue())
        report = builder.check_params(net, state)
    except ParamsError as e:
        ui.show_error(e)
        st.caption("The session's weights are unchanged.")
    else:
        done = st.session_state.get("upload_outcome")
        fresh = done is None or done["file"] != upload.file_id
        if report.ok and fresh:
            load(state, strict=True)  # the file fits: uploading it is the request to load it
        show_outcome()
        if not report.ok:
            if fresh or done["net"] != id(net):
                try:
                    builder.load_params(net, state, strict=True)  # refused: says which keys, changes nothing
                except ParamsError as e:
                    ui.show_error(e)
                    st.caption("The session's weights are unchanged.")
            if report.matched and st.button(
                f"Load only the {len(report.matched)} matching keys",
                key="partial_load",
                icon=":material/rule:",
                help="A partial load: keys that match in name and shape are loaded; "
                "the network keeps its own values for the rest.",
            ):
                load(state, strict=False)
                st.rerun()
        elif not fresh and done["net"] != id(net) and st.button("Load these weights", key="load_again"):
            load(state, strict=True)
            st.rerun()
        st.caption(f"Check of {upload.name} against the network: {report.summary()}.")
        st.dataframe(report.table(), key="report", hide_index=True, width="stretch")

# -- code --------------------------------------------------------------------------------------------------
st.subheader("Code")
code = builder.to_code(current)
st.caption(
    f"Plain PyTorch that rebuilds this network; `python {stem}.py {stem}.params` loads the weights and prints it."
)
st.download_button(
    f"Code · {stem}.py", code, file_name=f"{stem}.py", mime="text/x-python", key="download_code", icon=":material/code:"
)
with st.container(key="code"):
    st.code(code, language="python")
