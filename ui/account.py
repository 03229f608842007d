"""Who is using the app: Streamlit's st.login with the server's OpenID Connect provider, when one is configured
(`[auth]` in .streamlit/secrets.toml; docs/deploy.md). Without it there is no one to ask: everyone may change
everything in the library, and the Library page says so.

    account.library()     # the design library, knowing whether this server has login
    account.user()        # the signed-in person's e-mail (lower case), or None
    account.sidebar()     # "Sign in" / "Signed in as …" + "Sign out", in the sidebar of every page
"""

from __future__ import annotations

import streamlit as st

from builder.store import Store, teachers


def login_configured() -> bool:
    """This server has login: secrets.toml has an [auth] section (a provider for st.login)."""
    return bool(st.secrets.load_if_toml_exists()) and "auth" in st.secrets


def user() -> str | None:
    """The signed-in person's e-mail in lower case (their `sub` when the provider gives no e-mail), or None:
    not signed in, or no login on this server."""
    if not login_configured() or not st.user.is_logged_in:
        return None
    who = str(st.user.get("email") or st.user.get("sub") or "").strip().lower()
    return who or None


def is_teacher(who: str | None) -> bool:
    """`who` is in BLOCKWORK_TEACHERS: may change and restore every design."""
    return who is not None and who in teachers()


def library() -> Store:
    """The design library (BLOCKWORK_DB, read on every call). With login, it refuses changes by no one."""
    return Store(login=login_configured())


def sidebar() -> None:
    """Sign in / out, on every page (nothing on a server without login)."""
    if not login_configured():
        return
    with st.sidebar.container(key="account"):
        who = user()
        if who is None:
            st.caption("Sign in to save designs to the library and to change your own.")
            if st.button("Sign in", key="sign_in", icon=":material/login:", width="stretch"):
                st.login()
        else:
            role = " · teacher" if is_teacher(who) else ""
            st.caption(f"Signed in as {who}{role}")
            if st.button("Sign out", key="sign_out", icon=":material/logout:", width="stretch"):
                st.logout()
