"""Blockwork: design PyTorch networks in the browser. Entry point: page config, session, sidebar, pages.

The pages are named by key in ui/navigation.py (key -> file, title, icon); this builds the navigation from it.
"""

import streamlit as st

import builder
import ui
from ui import theme
from ui.navigation import PAGES, START

builder.devices.use_thread_limit()  # the server's sessions share the cores (BLOCKWORK_TORCH_THREADS)
st.set_page_config(page_title="Blockwork", page_icon=":material/view_in_ar:", layout="wide")
theme.apply()  # one CSS for every page (inline code size, icon buttons, short screens)
ui.init_session()
ui.open_share_link()  # ?design=... : a shared design, validated

pages = [st.Page(p.file, title=p.title, icon=p.icon, default=key == START) for key, p in PAGES.items()]
page = st.navigation(pages)
st.set_page_config(page_title=f"{page.title} · Blockwork")  # the browser tab names the page
ui.sidebar()
page.run()
