"""Blockwork: design PyTorch networks in the browser. Entry point: page config, session, sidebar, pages."""

import streamlit as st

import ui

st.set_page_config(page_title="Blockwork", page_icon=":material/view_in_ar:", layout="wide")
ui.init_session()

pages = [
    st.Page("pages/design.py", title="Design", icon=":material/stacks:", default=True),
    st.Page("pages/inspect.py", title="Inspect", icon=":material/account_tree:"),
    st.Page("pages/gradients.py", title="Gradients", icon=":material/functions:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
]
page = st.navigation(pages)
ui.sidebar()
page.run()
