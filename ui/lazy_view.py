"""The table of lazy layers before and after the dry run (builder.lazy_parameters), as Inspect's dry-run view
and the Lessons step on lazy initialization show it: one piece of code, so both keep the same columns."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    import pandas as pd

# "shape before" is "uninitialized" on every row (the table lists exactly the uninitialized tensors): the
# caption says it once, and the inferred sizes get the room ("in_features=256" whole at 150 % zoom).
SHOWN = ["key", "type before", "type after", "shape after", "inferred"]


def lazy_table(table: pd.DataFrame, key: str) -> None:
    """Show `table` (builder.lazy_parameters' columns) so that it fits its box at 1280 px and at 150 % zoom."""
    st.caption("Before the dry run each of these tensors is an `UninitializedParameter`: no shape, no memory.")
    st.dataframe(table, key=key, hide_index=True, width="stretch", column_order=SHOWN)
