"""The Library page's tabs: presets gallery, saved designs (every save a version; restore, rename, fork, delete
to the trash, restore from it, purge; with login, owners and teachers: ui.account), share by link, import /
export. Each action is a callback wrapped in `guarded`: what it did, or why it was
refused, is flashed and shown under the page's title after the rerun."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

import builder
import ui
from builder import DesignError, lessons, share
from builder.codegen import file_stem
from builder.store import Entry, Store, StoreError
from ui import account, downloads, state
from ui.messages import error_text

LINK_PAGES = {"Design": "", "Inspect": "inspect"}  # where a share link opens: the start page, or the graph


def store() -> Store:
    return account.library()  # BLOCKWORK_DB is read on every call; with login, changes need a signed-in user


def guarded(action: Callable[..., None]) -> Callable[..., None]:
    """Run a callback's library action; a refused one becomes the message shown after the rerun."""

    def run(*args: Any) -> None:
        try:
            action(*args)
        except (StoreError, DesignError) as e:
            ui.flash(error_text(e), "error")

    return run


def pick(label: str, options: list[Any], key: state.Key[Any], box: Any = st) -> Any:
    """A selectbox whose choice is kept while it is still offered (else the first option)."""
    if key.get() not in options:
        key.set(options[0])
    return box.selectbox(label, options, key=key.name)


def count(n: int, noun: str = "version") -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


# -- presets ---------------------------------------------------------------------------------------------------


@guarded
def load_preset(name: str) -> None:
    ui.set_design(builder.load_example(name))
    ui.flash(
        f"Loaded the preset {name!r}. See it on the Design or Inspect page (Undo on Design brings back "
        f"the design you had).",
    )


@st.cache_data(show_spinner=False)
def gallery() -> list[lessons.Preset]:
    return lessons.presets()


def presets_tab(current: builder.Design) -> None:
    items = gallery()
    for group in dict.fromkeys(p.group for p in items):
        st.subheader(group)
        members = [p for p in items if p.group == group]
        for start in range(0, len(members), 3):
            cols = st.columns(3)
            for col, p in zip(cols, members[start : start + 3], strict=False):
                with col, st.container(border=True, key=f"preset_card_{p.name}", height="stretch"):
                    st.markdown(f"**{p.title}**  \n`{p.name}` · {p.layers} layers")
                    st.markdown(p.description)
                    loaded = current.name == p.name and current == builder.load_example(p.name)
                    st.button(
                        "Loaded" if loaded else "Load",
                        key=f"preset_{p.name}",
                        on_click=load_preset,
                        args=(p.name,),
                        disabled=loaded,
                        type="secondary" if loaded else "primary",
                        icon=":material/check:" if loaded else ":material/download:",
                    )


# -- saved designs ---------------------------------------------------------------------------------------------


@guarded
def save_current() -> None:
    name = " ".join(state.LIB_NAME.get("").split())
    number = store().save(name, ui.design(), note=state.LIB_MESSAGE.get("").strip(), user=account.user())
    state.LIB_PICK.set(name)
    state.LIB_MESSAGE.set("")
    state.LIB_VERSION.pop()  # show the new version
    state.LIB_SAVED_AS.set((ui.design().name, name))  # the name box keeps it for the next save
    ui.flash(f"Saved the session's design as {name!r}, version {number}.")


@guarded
def load_saved(name: str, version: int | None) -> None:
    ui.set_design(store().load(name, version))
    which = "its newest version" if version is None else f"version {version}"
    ui.flash(f"Loaded {name!r} ({which}) into the session.")


@guarded
def restore(name: str, version: int) -> None:
    number = store().restore(name, version, user=account.user())
    ui.flash(f"Version {version} of {name!r} is now its newest version ({number}); the others are kept.")


@guarded
def rename(name: str) -> None:
    new = store().rename(name, state.LIB_RENAME_TO.get(""), user=account.user())
    state.LIB_PICK.set(new)
    state.LIB_RENAME_TO.pop()
    ui.flash(f"Renamed {name!r} to {new!r}; its versions went with it.")


@guarded
def fork(name: str) -> None:
    new = store().fork(name, state.LIB_FORK_TO.get("").strip() or f"{name} (copy)"[:100], user=account.user())
    state.LIB_PICK.set(new)
    state.LIB_FORK_TO.pop()
    ui.flash(f"Forked {name!r} as {new!r}: the copy is yours to change; {name!r} stays as it was.")


@guarded
def delete(name: str) -> None:
    lib = store()
    n = lib.entry(name).versions
    lib.delete(name, user=account.user())
    state.LIB_PICK.pop()
    who = "its owner or a teacher" if lib.login else "anyone"
    ui.flash(f"Moved {name!r} to the trash with its {count(n)}; {who} can restore it (Trash, below).")


@guarded
def undelete(name: str) -> None:
    lib = store()
    back = lib.undelete(name, user=account.user())
    state.LIB_PICK.set(back)
    state.LIB_TRASH_PICK.pop()
    ui.flash(f"{back!r} is back in the library with {count(lib.entry(back).versions)}.")


@guarded
def purge(name: str) -> None:
    store().purge(name, user=account.user())
    state.LIB_CONFIRM_PURGE.pop()
    state.LIB_TRASH_PICK.pop()
    ui.flash(f"Purged {name!r} and all its versions for good.")


def confirm_purge(name: str | None) -> None:
    state.LIB_CONFIRM_PURGE.set(name)


def access_note(lib: Store) -> None:
    """Who may change what on this server, said once at the top of the tab."""
    who = account.user()
    if not lib.login:
        st.info(
            "This server has no login: everyone who opens it may save over, rename and delete every design "
            "here. Deleted designs wait in the Trash below until someone purges them. (A classroom server gives "
            "designs owners: see docs/deploy.md.)",
            icon=":material/group:",
        )
    elif who is None:
        st.info(
            "Sign in to save designs and to change your own (the button is in the sidebar). Until then you can "
            "open, load and export every design here.",
            icon=":material/login:",
        )
    elif account.is_teacher(who):
        st.caption(f"Signed in as **{who}**, a teacher: you may change, delete and restore every design.")
    else:
        st.caption(
            f"Signed in as **{who}**: what you save is yours. Others' designs you can open, load and fork, not change."
        )


def saved_tab(current: builder.Design) -> None:
    try:
        lib = store()
    except StoreError as e:
        ui.show_error(e)
        return
    access_note(lib)
    saved_as = state.LIB_SAVED_AS.get()  # (design name, library name) of the last save
    default = saved_as[1] if saved_as is not None and saved_as[0] == current.name else current.name
    if state.LIB_NAME_FOR.get() != default or not state.LIB_NAME.present():
        state.LIB_NAME.set(default)  # the name box follows the session's design
        state.LIB_NAME_FOR.set(default)
    with st.container(border=True, key="lib_save_box"):
        st.markdown("**Save the session's design**")
        c = st.columns([2, 3, 1], vertical_alignment="bottom")
        c[0].text_input(
            "Name",
            key=state.LIB_NAME.name,
            max_chars=100,
            help="Saving under a name that exists adds a new version; nothing is overwritten.",
        )
        c[1].text_input("Note (optional)", key=state.LIB_MESSAGE.name, max_chars=200, placeholder="what changed")
        c[2].button(
            "Save", key="lib_save", type="primary", icon=":material/save:", on_click=save_current, width="stretch"
        )

    query = st.text_input(
        "Search",
        key="lib_search",
        placeholder="a name, a word of the description, a layer type (e.g. BatchNorm1d)",
        icon=":material/search:",
    )
    entries = lib.search(query)
    if not entries:
        st.info(
            "No saved design matches." if query.strip() else "The library is empty: save the session's design above.",
            icon=":material/info:",
        )
    else:
        saved_design(lib, entries)
    trash_section(lib)


def saved_design(lib: Store, entries: list[Entry]) -> None:
    """The library's list, and what can be done with the design picked in it."""
    rows = [
        {
            "name": e.name,
            "versions": e.versions,
            "saved": when(e.updated),
            "owner": e.owner or "anyone",
            "description": e.description,
        }
        for e in entries
    ]
    st.dataframe(pd.DataFrame(rows), key="lib_table", hide_index=True, width="stretch")
    name = pick("Design", [e.name for e in entries], state.LIB_PICK)
    entry = next(e for e in entries if e.name == name)
    why = lib.may_change(name, account.user())  # None: this user may change it
    with st.container(key="lib_owner"):
        owner = f"Owned by **{entry.owner}**" if entry.owner else "Saved without login: anyone may change it"
        st.caption(f"{owner} · {count(entry.versions)} · last saved {when(entry.updated)}")
        if why is not None:
            st.warning(why[:1].upper() + why[1:], icon=":material/lock:")
    versions = lib.versions(name)
    c = st.columns([1, 1, 1, 2], vertical_alignment="bottom")
    c[0].button(
        "Load",
        key="lib_load",
        type="primary",
        icon=":material/open_in_browser:",
        on_click=load_saved,
        args=(name, None),
        width="stretch",
        help="Its newest version becomes the session's design.",
    )
    try:
        exported = lib.export_json(name)
    except DesignError as e:
        exported = None
        ui.show_error(e)
    c[1].download_button(
        "Export JSON",
        exported or "",
        file_name=f"{file_stem(name)}.json",
        mime="application/json",
        key="lib_export",
        icon=":material/download:",
        width="stretch",
        disabled=exported is None,
    )
    c[2].button(
        "Delete",
        key="lib_delete",
        icon=":material/delete:",
        on_click=delete,
        args=(name,),
        width="stretch",
        disabled=why is not None,
        help=why or "Moves it to the trash with all its versions (it can be restored from there).",
    )
    with c[3].container(horizontal=True, vertical_alignment="bottom", key="lib_rename_row"):
        locked = why is not None
        st.text_input("Rename to", key=state.LIB_RENAME_TO.name, placeholder="a new name", disabled=locked)
        st.button("Rename", key="lib_rename", on_click=rename, args=(name,), icon=":material/edit:", disabled=locked)
    signed_out = lib.login and account.user() is None
    with st.container(horizontal=True, vertical_alignment="bottom", key="lib_fork_row"):
        st.text_input("Fork as", key=state.LIB_FORK_TO.name, placeholder=f"{name} (copy)"[:100], max_chars=100)
        st.button(
            "Fork",
            key="lib_fork",
            on_click=fork,
            args=(name,),
            icon=":material/fork_right:",
            disabled=signed_out,
            help="Sign in to fork." if signed_out else "Save a copy of its newest version under a new name, as yours.",
        )

    st.markdown(f"**Versions of {name!r}** — every save is kept; restoring one saves it again as the newest.")
    rows = [
        {"version": v.number, "saved": when(v.saved), "by": v.author or "", "layers": v.layers, "note": v.note}
        for v in versions
    ]
    st.dataframe(pd.DataFrame(rows), key="lib_versions", hide_index=True, width="stretch")
    numbers = [v.number for v in versions]
    c = st.columns([1, 1.4, 1.4, 1.2], vertical_alignment="bottom")
    version = pick("Version", numbers, state.LIB_VERSION, c[0])
    c[1].button(
        "Load this version",
        key="lib_load_version",
        on_click=load_saved,
        args=(name, version),
        icon=":material/history:",
        width="stretch",
    )
    c[2].button(
        "Restore as newest",
        key="lib_restore",
        on_click=restore,
        args=(name, version),
        icon=":material/restore:",
        width="stretch",
        disabled=version == numbers[0] or why is not None,
        help=why,
    )


def trash_section(lib: Store) -> None:
    """Deleted designs, each with all its versions: restore one, or purge it for good (asked twice)."""
    trashed = lib.trash()
    with st.container(border=True, key="lib_trash"):
        st.markdown(f"**Trash** · {count(len(trashed), 'design')}")
        if not trashed:
            st.caption("Empty. Deleting a design moves it here with all its versions; it can be restored.")
            return
        rows = [
            {
                "design": e.name,
                "owner": e.owner or "anyone",
                "versions": e.versions,
                "deleted": when(e.deleted or 0),
                "by": e.deleted_by or "",
            }
            for e in trashed
        ]
        st.dataframe(pd.DataFrame(rows), key="lib_trash_table", hide_index=True, width="stretch")
        c = st.columns([2, 1, 1], vertical_alignment="bottom")
        name = pick("In the trash", [e.name for e in trashed], state.LIB_TRASH_PICK, c[0])
        why = lib.may_change(name, account.user())
        c[1].button(
            "Restore",
            key="lib_undelete",
            type="primary",
            icon=":material/restore_from_trash:",
            on_click=undelete,
            args=(name,),
            width="stretch",
            disabled=why is not None,
            help=why or "Back into the library with all its versions.",
        )
        c[2].button(
            "Purge…",
            key="lib_purge",
            icon=":material/delete_forever:",
            on_click=confirm_purge,
            args=(name,),
            width="stretch",
            disabled=why is not None,
            help=why or "Remove it and all its versions for good (asks first).",
        )
        if why is not None:
            st.caption(why[:1].upper() + why[1:])
        if state.LIB_CONFIRM_PURGE.get() == name and why is None:
            n = next(e.versions for e in trashed if e.name == name)
            st.warning(
                f"Purge {name!r} and {'all ' * (n > 1)}{count(n)} for good? This cannot be undone.",
                icon=":material/warning:",
            )
            d = st.columns([1, 1, 4])
            d[0].button("Purge", key="lib_purge_yes", type="primary", on_click=purge, args=(name,))
            d[1].button("Cancel", key="lib_purge_no", on_click=confirm_purge, args=(None,))


# -- share by link ---------------------------------------------------------------------------------------------


def app_root() -> str:
    """The app's address without the page's own path (st.context.url is this page's URL)."""
    url = st.context.url or ""
    return re.sub(r"/library/?$", "/", url.split("?")[0])


@guarded
def open_link() -> None:
    shared = share.decode(share.token_from_link(state.SHARE_PASTE.get("")))
    ui.set_design(shared)
    state.SHARE_PASTE.set("")
    ui.flash(f"Opened the shared design {shared.name!r}.")


def share_tab(current: builder.Design) -> None:
    st.markdown(
        "**Share the session's design.** The link *is* the design (compressed into the URL): nothing is "
        "stored on the server. Whoever opens it gets this design, checked before it is loaded."
    )
    where = st.segmented_control("The link opens on", list(LINK_PAGES), default="Design", key="share_page")
    try:
        link = share.share_url(current, app_root() + LINK_PAGES.get(where or "Design", ""))
    except DesignError as e:
        ui.show_error(e)
    else:
        with st.container(key="share_link"):
            st.code(link, language=None, wrap_lines=True)
        st.caption(
            f"{len(link):,} characters. Copy it with the button at the code box's top right; paste it in "
            f"the class chat or shorten it for the projector."
        )
    st.markdown("**Open a link** someone shared (or paste it into the browser's address bar):")
    c = st.columns([5, 1], vertical_alignment="bottom")
    c[0].text_input(
        "Share link", key=state.SHARE_PASTE.name, placeholder="http://…/?design=…", label_visibility="collapsed"
    )
    c[1].button("Open", key="share_open", on_click=open_link, icon=":material/link:", width="stretch")


# -- import / export -------------------------------------------------------------------------------------------


@guarded
def import_design(to_library: bool) -> None:
    upload = state.IMPORT_FILE.get()
    if upload is None:
        return
    text = upload.getvalue()
    if to_library:
        name = state.IMPORT_NAME.get("").strip() or None
        saved, number = store().import_json(text, name, note=f"imported from {upload.name}"[:200], user=account.user())
        ui.flash(f"Imported {upload.name} into the library as {saved!r}, version {number}.")
    else:
        ui.set_design(builder.Design.from_json(text))
        ui.flash(f"Opened {upload.name} as the session's design.")


def import_tab(current: builder.Design) -> None:
    st.markdown("**Export** the session's design as JSON — the same format as the files in `examples/`.")
    downloads.design_button(current, key="export_session")
    st.markdown("**Import** a design JSON file: it is checked first; then open it or save it to the library.")
    upload = st.file_uploader(
        "Design JSON",
        type=["json"],
        key=state.IMPORT_FILE.name,
        help=f"At most {builder.limits().max_design_chars:,} characters.",
    )
    if upload is None:
        return
    try:
        design = builder.Design.from_json(upload.getvalue())
    except DesignError as e:
        ui.show_error(e)
        st.caption(f"{upload.name} was not imported.")
        return
    st.caption(f"{upload.name}: a valid design, {design.name!r}, {len(design.layers)} layers.")
    c = st.columns([2, 1, 1], vertical_alignment="bottom")
    c[0].text_input("Library name", key=state.IMPORT_NAME.name, placeholder=design.name)
    c[1].button(
        "Save to the library",
        key="import_save",
        on_click=import_design,
        args=(True,),
        icon=":material/library_add:",
        width="stretch",
    )
    c[2].button(
        "Open in the session",
        key="import_open",
        on_click=import_design,
        args=(False,),
        icon=":material/open_in_browser:",
        width="stretch",
    )
