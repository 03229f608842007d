"""Blockwork: design PyTorch networks in the browser. Entry point: page config, session, sidebar, pages."""

import streamlit as st

import ui

st.set_page_config(page_title="Blockwork", page_icon=":material/view_in_ar:", layout="wide")
ui.init_session()
ui.open_share_link()  # ?design=... : a shared design, validated

pages = [
    st.Page("pages/design.py", title="Design", icon=":material/stacks:", default=True),
    st.Page("pages/inspect.py", title="Inspect", icon=":material/account_tree:"),
    st.Page("pages/weights.py", title="Weights", icon=":material/save:"),
    st.Page("pages/parameters.py", title="Parameters", icon=":material/tune:"),
    st.Page("pages/gradients.py", title="Gradients", icon=":material/functions:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/library.py", title="Library", icon=":material/collections_bookmark:"),
    st.Page("pages/lessons.py", title="Lessons", icon=":material/school:"),
]
page = st.navigation(pages)
ui.sidebar()
page.run()
