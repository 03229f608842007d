"""Download buttons for what the session holds: weights (.params), design JSON, bundle, code.

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

if TYPE_CHECKING:
    from torch import nn

EAGER_DOWNLOAD_BYTES = 8 * 2**20


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
