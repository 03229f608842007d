"""The Library page in AppTest: presets, saving with versions, restore, rename, delete, import/export, and share
links opened from the URL (a good one loads, a tampered one is an error box, never a traceback)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from streamlit.testing.v1 import AppTest

import builder
from builder import load_example, share
from builder.store import Store
from ui import state

from .conftest import ROOT, open_page


@pytest.fixture(autouse=True)
def library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "library.sqlite3"
    monkeypatch.setenv("BLOCKWORK_DB", str(path))  # never the repository's data/ folder
    return path


def lib(at: AppTest) -> AppTest:
    return open_page(at, "library")


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def successes(at: AppTest) -> list[str]:
    return [s.value for s in at.success]


def frame(at: AppTest, first_column: str):
    """The dataframe whose first column is `first_column` (AppTest's dataframes carry no key)."""
    found = [d.value for d in at.dataframe if list(d.value.columns)[:1] == [first_column]]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def fresh(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


# -- presets ---------------------------------------------------------------------------------------------------


def test_every_preset_is_shown_with_its_description_and_loads_with_one_click(app: AppTest) -> None:
    lib(app)
    keys = {b.key for b in app.button}
    for name in builder.example_names():
        assert f"preset_{name}" in keys
    texts = " ".join(m.value for m in app.markdown)
    assert load_example("mlp_dropout_bn").description in texts
    assert app.button(key="preset_sequential_mlp").disabled  # the session's design: already loaded
    app.button(key="preset_tied").click().run()
    assert not app.exception
    assert app.session_state[state.DESIGN.name] == load_example("tied")
    assert any("Loaded the preset 'tied'" in s for s in successes(app))
    assert app.button(key="preset_tied").disabled and not app.button(key="preset_sequential_mlp").disabled


# -- saved designs -------------------------------------------------------------------------------------------


def test_save_versions_load_restore(app: AppTest, library: Path) -> None:
    lib(app)
    assert app.text_input(key="lib_name").value == "sequential_mlp"  # follows the session's design
    app.text_input(key="lib_name").set_value("class net")
    app.button(key="lib_save").click().run()
    assert "Saved the session's design as 'class net', version 1." in successes(app)
    assert app.text_input(key="lib_name").value == "class net"  # kept for the next save
    app.button(key="preset_lenet").click().run()
    app.text_input(key="lib_name").set_value("class net")
    app.text_input(key="lib_message").set_value("now LeNet")
    app.button(key="lib_save").click().run()
    assert any("version 2" in s for s in successes(app))
    versions = frame(app, "version")
    assert list(versions["version"]) == [2, 1] and list(versions["note"]) == ["now LeNet", ""]
    table = frame(app, "name")
    assert list(table["name"]) == ["class net"] and list(table["versions"]) == [2]

    app.selectbox(key="lib_version").select(1).run()
    app.button(key="lib_load_version").click().run()
    assert app.session_state[state.DESIGN.name].layers == load_example("sequential_mlp").layers
    assert app.session_state[state.DESIGN.name].name == "class net"
    app.button(key="lib_restore").click().run()
    assert not app.exception
    assert Store(library).versions("class net")[0].note == "restored from version 1"
    assert list(frame(app, "version")["version"]) == [3, 2, 1]
    app.button(key="preset_tied").click().run()
    app.button(key="lib_load").click().run()  # the newest: version 3, the restored one
    assert app.session_state[state.DESIGN.name].layers == load_example("sequential_mlp").layers


def test_search_rename_and_delete(app: AppTest, library: Path) -> None:
    store = Store(library)
    store.save("lenet for monday", load_example("lenet"))
    store.save("tied demo", load_example("tied"))
    lib(app)
    assert list(frame(app, "name")["name"]) == ["tied demo", "lenet for monday"]
    app.text_input(key="lib_search").set_value("avgpool").run()
    assert list(frame(app, "name")["name"]) == ["lenet for monday"]
    assert app.selectbox(key="lib_pick").value == "lenet for monday"
    app.text_input(key="lib_search").set_value("no such thing").run()
    assert any("No saved design matches" in i.value for i in app.info)
    app.text_input(key="lib_search").set_value("").run()

    app.selectbox(key="lib_pick").select("tied demo").run()
    app.text_input(key="lib_rename_to").set_value("lenet for monday")
    app.button(key="lib_rename").click().run()
    assert any("already a design named 'lenet for monday'" in e for e in errors(app))
    assert not app.exception
    app.text_input(key="lib_rename_to").set_value("tied, week 2")
    app.button(key="lib_rename").click().run()
    assert "Renamed 'tied demo' to 'tied, week 2'; its versions went with it." in successes(app)
    assert app.selectbox(key="lib_pick").value == "tied, week 2"

    app.button(key="lib_delete").click().run()  # to the trash: nothing is destroyed
    assert "Moved 'tied, week 2' to the trash with its 1 version; anyone can restore it" in successes(app)[0]
    assert "tied, week 2" not in store and len(store) == 1
    assert list(frame(app, "name")["name"]) == ["lenet for monday"]
    assert list(frame(app, "design")["design"]) == ["tied, week 2"]  # the trash's table


def test_the_trash_restores_with_every_version_and_purges_only_when_confirmed(app: AppTest, library: Path) -> None:
    store = Store(library)
    store.save("net", load_example("tied"))
    store.save("net", load_example("lenet"))
    store.delete("net")
    lib(app)
    assert any("The library is empty" in i.value for i in app.info)
    assert app.selectbox(key="lib_trash_pick").value == "net"
    app.button(key="lib_purge").click().run()
    assert any("Purge 'net' and all 2 versions for good? This cannot be undone." in w.value for w in app.warning)
    app.button(key="lib_purge_no").click().run()
    assert [e.name for e in store.trash()] == ["net"]
    app.button(key="lib_undelete").click().run()
    assert "'net' is back in the library with 2 versions." in successes(app)
    assert [v.number for v in store.versions("net")] == [2, 1] and store.trash() == []
    assert app.selectbox(key="lib_pick").value == "net"
    assert any("Empty." in c.value for c in app.caption)

    app.button(key="lib_delete").click().run()
    app.button(key="lib_purge").click().run()
    app.button(key="lib_purge_yes").click().run()
    assert "Purged 'net' and all its versions for good." in successes(app)
    assert len(store) == 0 and store.trash() == []
    assert not app.exception


def test_without_login_the_page_says_everything_is_editable(app: AppTest) -> None:
    lib(app)
    assert any("This server has no login: everyone who opens it may save over, rename and delete" in i.value
               for i in app.info)  # fmt: skip
    assert not [b for b in app.sidebar.button if b.key in ("sign_in", "sign_out")]


# -- login: owners and teachers ---------------------------------------------------------------------------------

AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-test-cookie-secret",
    "client_id": "blockwork",
    "client_secret": "secret",
    "server_metadata_url": "http://localhost:9/.well-known/openid-configuration",
}


def signed_in(at: AppTest, email: str | None) -> AppTest:
    """The session as `email` on a server with login (None: not signed in)."""
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "email": email, "sub": email} if email else {"is_logged_in": False}
    return at


def test_with_login_designs_have_owners_others_fork_and_a_teacher_restores(
    app: AppTest, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLOCKWORK_TEACHERS", "teacher@school.example")
    store = Store(library)
    first = signed_in(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60), None).run()
    assert [b.key for b in first.sidebar.button] == ["sign_in"]  # (AppTest shows the sidebar on a first run only)
    assert any("Sign in to save designs" in c.value for c in first.sidebar.caption)
    alice = signed_in(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60), "alice@school.example").run()
    assert [b.key for b in alice.sidebar.button] == ["sign_out"]
    assert alice.sidebar.caption[0].value == "Signed in as alice@school.example"
    lib(signed_in(app, None))
    assert any("Sign in to save designs" in i.value for i in app.info)
    app.button(key="lib_save").click().run()
    assert any("sign in to change the library" in e for e in errors(app)) and len(store) == 0

    signed_in(app, "alice@school.example").run()
    assert any("Signed in as **alice@school.example**: what you save is yours" in c.value for c in app.caption)
    app.text_input(key="lib_name").set_value("alice net")
    app.button(key="lib_save").click().run()
    assert store.entry("alice net").owner == "alice@school.example"
    assert not app.button(key="lib_delete").disabled

    signed_in(app, "bob@school.example").run()
    why = "'alice net' belongs to alice@school.example: only its owner or a teacher may change it"
    assert any(why in w.value for w in app.warning)  # the page says why
    for key in ("lib_delete", "lib_rename"):
        assert app.button(key=key).disabled
    app.button(key="lib_save").click().run()  # saving over it: refused by the library, with the reason
    assert any(why in e for e in errors(app)) and store.entry("alice net").versions == 1
    app.text_input(key="lib_fork_to").set_value("bob's copy")
    app.button(key="lib_fork").click().run()
    assert "Forked 'alice net' as \"bob's copy\"" in successes(app)[0]
    assert store.entry("bob's copy").owner == "bob@school.example"
    assert app.selectbox(key="lib_pick").value == "bob's copy" and not app.button(key="lib_delete").disabled

    store.delete("alice net", user="alice@school.example")
    app.run()
    assert app.selectbox(key="lib_trash_pick").value == "alice net" and app.button(key="lib_undelete").disabled

    signed_in(app, "teacher@school.example").run()
    assert any("a teacher: you may change, delete and restore every design" in c.value for c in app.caption)
    app.button(key="lib_undelete").click().run()
    assert "'alice net' is back in the library with 1 version." in successes(app)
    assert store.entry("alice net").owner == "alice@school.example" and store.trash() == []
    assert not app.exception


def test_a_bad_name_is_a_message(app: AppTest) -> None:
    lib(app)
    app.text_input(key="lib_name").set_value("   ")
    app.button(key="lib_save").click().run()
    assert not app.exception
    assert "give the design a name" in errors(app)


def test_an_unusable_library_location_is_a_message_and_the_rest_works(
    app: AppTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a file").write_text("not a folder")
    monkeypatch.setenv("BLOCKWORK_DB", str(tmp_path / "a file" / "library.sqlite3"))
    lib(app)
    assert not errors(app)  # an empty library until something is saved
    app.button(key="lib_save").click().run()
    assert any("cannot open the design library" in e for e in errors(app))
    app.button(key="preset_tied").click().run()  # presets still load
    assert app.session_state[state.DESIGN.name].name == "tied"


# -- import / export -----------------------------------------------------------------------------------------


def test_import_checks_the_file_then_opens_or_saves_it(app: AppTest, library: Path) -> None:
    lib(app)
    app.file_uploader(key="import_file").set_value(("broken.json", b'{"format": 1, "layers": [', "application/json"))
    app.run()
    assert not app.exception
    assert any("not valid JSON" in e for e in errors(app))
    text = (ROOT / "examples" / "vgg_block.json").read_bytes()
    app.file_uploader(key="import_file").set_value(("vgg.json", text, "application/json")).run()
    assert not errors(app)
    app.button(key="import_save").click().run()
    assert "Imported vgg.json into the library as 'vgg_block', version 1." in successes(app)
    assert Store(library).load("vgg_block").layers == load_example("vgg_block").layers
    app.button(key="import_open").click().run()
    assert app.session_state[state.DESIGN.name] == load_example("vgg_block")


# -- share links ---------------------------------------------------------------------------------------------


def test_the_share_tab_shows_a_link_that_carries_the_design(app: AppTest) -> None:
    app.session_state[state.DESIGN.name] = load_example("tied")
    lib(app)
    link = app.code[0].value
    token = parse_qs(urlsplit(link).query)["design"][0]
    assert share.decode(token) == load_example("tied")


def test_a_share_link_opens_the_design_in_a_new_session() -> None:
    at = fresh({"design": share.encode(load_example("lenet"))})
    assert not at.exception and not errors(at)
    assert at.session_state[state.DESIGN.name] == load_example("lenet")
    at.switch_page("pages/inspect.py").run()
    assert not at.exception
    dot = at.get("graphviz_chart")[0].proto.spec
    assert "Conv2d" in dot and "AvgPool2d" in dot


def test_share_round_trip_through_the_page_and_the_url(app: AppTest) -> None:
    app.session_state[state.DESIGN.name] = load_example("my_linear")
    lib(app)
    link = app.code[0].value
    other = fresh({"design": parse_qs(urlsplit(link).query)["design"][0]})
    assert other.session_state[state.DESIGN.name] == load_example("my_linear")


def test_a_link_loads_once_per_session() -> None:
    at = fresh({"design": share.encode(load_example("tied"))})
    assert at.session_state[state.DESIGN.name] == load_example("tied")
    at.session_state[state.DESIGN.name] = load_example("lenet")  # the class moves on; the URL still carries the link
    at.run()
    assert at.session_state[state.DESIGN.name] == load_example("lenet")
    open_page(at, "inspect")
    assert at.session_state[state.DESIGN.name] == load_example("lenet")


@pytest.mark.parametrize(
    "token",
    [
        "garbage!",
        share.encode(load_example("tied"))[:-7],
        share.encode(load_example("tied"))[:40] + "AAAA" + share.encode(load_example("tied"))[44:],
        "A" * 9000,
        "",
    ],
)
def test_a_tampered_link_is_an_error_not_a_traceback(token: str) -> None:
    at = fresh({"design": token})
    assert not at.exception
    assert any(e.startswith("This share link could not be opened") for e in errors(at)), errors(at)
    assert at.session_state[state.DESIGN.name] == load_example("sequential_mlp")  # the default design is kept
    open_page(at, "inspect")  # and the app works on


def test_pasting_a_link_on_the_share_tab(app: AppTest) -> None:
    lib(app)
    app.text_input(key="share_paste").set_value(f"http://classroom:8501/?design={share.encode(load_example('nested'))}")
    app.button(key="share_open").click().run()
    assert app.session_state[state.DESIGN.name] == load_example("nested")
    app.text_input(key="share_paste").set_value("http://classroom:8501/?other=1")
    app.button(key="share_open").click().run()
    assert any("not a Blockwork share link" in e for e in errors(app))
    assert app.session_state[state.DESIGN.name] == load_example("nested")
