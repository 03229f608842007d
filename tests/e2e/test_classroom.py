"""A classroom server in real browsers: two app processes sharing one PostgreSQL library, and login through a real
OpenID Connect provider (oidc-provider-mock, started here) with owners and a teacher. Nothing is mocked: the
databases are a throwaway PostgreSQL (tests/pgserver.py), the login is Streamlit's st.login round trip."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from builder import load_example
from builder.store import Store

from ..conftest import new_database
from .conftest import WAIT_MS, free_port, no_errors, serve, wait_idle

TEACHER = "teacher@school.example"
PEOPLE = {"alice": "alice@school.example", "bob": "bob@school.example", "teacher": TEACHER}


# -- two app processes, one library ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_servers(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """Two app servers (two processes, two ports) on one PostgreSQL database: (url A, url B, database URL)."""
    logs = tmp_path_factory.mktemp("two-servers")
    with new_database(postgres_server) as db:
        env = {"BLOCKWORK_DB": db}
        with serve(logs / "a.log", env) as (a, _), serve(logs / "b.log", env) as (b, _):
            yield a, b, db


def open_library(page: Page, url: str, tab: str = "Saved designs") -> None:
    page.goto(f"{url}/library")
    wait_idle(page)
    page.get_by_role("heading", name="Library", level=1).wait_for(timeout=WAIT_MS)
    page.get_by_role("tab", name=tab).click()
    wait_idle(page)


def click(page: Page, key: str) -> None:
    page.locator(f".st-key-{key} button").first.click()
    page.wait_for_timeout(200)  # let the click's rerun start
    wait_idle(page)


def fill(page: Page, key: str, text: str) -> None:
    box = page.locator(f".st-key-{key} input")
    box.fill(text)
    box.press("Enter")
    page.wait_for_timeout(200)
    wait_idle(page)


def flash(page: Page, kind: str = "Success") -> str:
    box = page.get_by_test_id(f"stAlertContent{kind}").first
    box.wait_for(timeout=WAIT_MS)
    return box.inner_text()


def save_as(page: Page, name: str) -> str:
    fill(page, "lib_name", name)
    click(page, "lib_save")
    return flash(page, "Success")


def pick(page: Page, name: str) -> None:
    """Choose `name` in the Saved designs picker."""
    box = page.locator(".st-key-lib_pick input")
    if box.input_value() != name:
        box.click()
        page.get_by_role("option", name=name, exact=True).click()
        wait_idle(page)
    expect(box).to_have_value(name, timeout=WAIT_MS)


def test_a_design_saved_on_server_a_appears_in_the_library_on_server_b(
    two_servers: tuple[str, str, str], browser: Browser
) -> None:
    a, b, db = two_servers
    on_a = browser.new_context().new_page()
    on_b = browser.new_context().new_page()
    try:
        open_library(on_a, a, tab="Presets")
        click(on_a, "preset_lenet")
        on_a.get_by_role("tab", name="Saved designs").click()
        assert "'lenet from A', version 1" in save_as(on_a, "lenet from A")

        open_library(on_b, b)  # another process: it knows the design only through the database
        pick(on_b, "lenet from A")
        click(on_b, "lib_load")
        assert "Loaded 'lenet from A'" in flash(on_b)
        on_b.get_by_test_id("stSidebarNav").get_by_role("link", name="Inspect").click()
        wait_idle(on_b)
        expect(on_b.locator(".st-key-graph svg g.node text", has_text="Conv2d").first).to_be_visible(timeout=WAIT_MS)
        no_errors(on_a)
        no_errors(on_b)
    finally:
        on_a.context.close()
        on_b.context.close()
    assert Store(db).load("lenet from A").layers == load_example("lenet").layers


# -- login: owners and a teacher -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenID Connect provider on 127.0.0.1 with three users; its base URL (via localhost)."""
    port = free_port()
    claims = [json.dumps({"sub": sub, "email": email, "name": sub.title()}) for sub, email in PEOPLE.items()]
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    command = [str(Path(sys.executable).parent / "oidc-provider-mock"), "--port", str(port)]
    for c in claims:
        command += ["--user-claims", c]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/.well-known/openid-configuration", timeout=1).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"oidc-provider-mock did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def login_server(
    provider: str, postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """An app server with login (secrets.toml [auth] pointing at the provider) and a teacher: (url, database)."""
    folder = tmp_path_factory.mktemp("login")
    port = free_port()
    secrets = folder / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
        'cookie_secret = "a-test-cookie-secret-that-is-long-enough-0123456789"\n'
        'client_id = "blockwork"\n'
        'client_secret = "blockwork-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )
    with new_database(postgres_server) as db:
        env = {"BLOCKWORK_DB": db, "BLOCKWORK_TEACHERS": TEACHER}
        with serve(folder / "app.log", env, args=("--secrets.files", str(secrets)), port=port):
            yield f"http://localhost:{port}", db


def sign_in(browser: Browser, url: str, who: str) -> Page:
    """A new browser (context) signed in as `who` through the provider's authorization page."""
    page = browser.new_context().new_page()
    open_library(page, url)
    page.locator(".st-key-sign_in button").click()  # off to the provider
    page.locator("input[name=sub]").wait_for(timeout=WAIT_MS)  # its authorization page
    page.locator("input[name=sub]").fill(who)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(f"{url}/**", timeout=WAIT_MS)
    wait_idle(page)
    expect(page.get_by_test_id("stSidebar")).to_contain_text(f"Signed in as {PEOPLE[who]}", timeout=WAIT_MS)
    open_library(page, url)
    return page


def test_owners_others_fork_and_the_teacher_restores_from_the_trash(
    login_server: tuple[str, str], browser: Browser
) -> None:
    url, db = login_server
    visitor = browser.new_context().new_page()  # not signed in: may look, may not save
    open_library(visitor, url)
    expect(visitor.get_by_test_id("stMain")).to_contain_text("Sign in to save designs", timeout=WAIT_MS)

    alice = sign_in(browser, url, "alice")
    assert "'alice net', version 1" in save_as(alice, "alice net")
    assert Store(db).entry("alice net").owner == PEOPLE["alice"]

    bob = sign_in(browser, url, "bob")
    pick(bob, "alice net")
    why = "'alice net' belongs to alice@school.example: only its owner or a teacher may change it"
    expect(bob.locator(".st-key-lib_owner")).to_contain_text(why, timeout=WAIT_MS)  # the page says why
    expect(bob.locator(".st-key-lib_delete button").first).to_be_disabled()
    expect(bob.locator(".st-key-lib_rename button").first).to_be_disabled()
    assert why in save_as_refused(bob, "alice net")  # overwriting is refused too, with the reason
    fill(bob, "lib_fork_to", "bob's copy")
    click(bob, "lib_fork")
    assert "Forked 'alice net' as \"bob's copy\"" in flash(bob)
    assert Store(db).entry("bob's copy").owner == PEOPLE["bob"]

    pick(alice, "alice net")
    click(alice, "lib_delete")
    assert "Moved 'alice net' to the trash" in flash(alice)
    assert [e.name for e in Store(db).trash()] == ["alice net"]

    teacher = sign_in(browser, url, "teacher")
    teacher.locator(".st-key-lib_trash").wait_for(timeout=WAIT_MS)
    expect(teacher.locator(".st-key-lib_trash")).to_contain_text("alice net")
    click(teacher, "lib_undelete")
    assert "'alice net' is back" in flash(teacher)
    entry = Store(db).entry("alice net")
    assert entry.deleted is None and entry.owner == PEOPLE["alice"] and entry.versions == 1
    for page in (visitor, alice, bob, teacher):
        assert page.get_by_test_id("stException").count() == 0
        page.context.close()


def save_as_refused(page: Page, name: str) -> str:
    fill(page, "lib_name", name)
    click(page, "lib_save")
    return flash(page, "Error")
