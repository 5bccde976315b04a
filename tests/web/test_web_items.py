"""The item page in a real Chromium: files with download links, rename,
description, the metadata editor (text and JSON values, the server's key rules
shown next to the form), move and delete with confirmation, and several entries
selected at once for a zip download, a copy and a delete."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By

from tests.gateways.http.restsite import RestSite
from tests.web.pages import (
    button,
    by_label,
    console,
    csp_violations,
    find,
    heading,
    link,
    no_alert,
    screen,
    script_errors,
    sign_in,
    wait_for,
    wait_text,
)
from tests.world import upload_bytes

NOTES = b"some notes\n" * 10


@pytest.fixture(scope="module")
def site(web_site: RestSite) -> Iterator[RestSite]:
    """bobby's Private folder holds a few items to work on; Archive is a target."""
    app, world = web_site.app, web_site.world
    bobby = world.principal("bobby")
    svc = app.services
    private = svc.folders.list(bobby, "user", world.users["bobby"]["_id"], name="Private")[0][0]
    for name, data in (("notes.txt", NOTES), ("gone.txt", b"bye"), ("one.txt", b"1"),
                       ("two.txt", b"22"), ("three.txt", b"333")):
        upload_bytes(app, bobby, "folder", private, name, data)
    archive = svc.folders.create(bobby, "folder", private["_id"], "Archive")
    world.docs.update(bob_private=private, archive=archive)
    yield web_site


@pytest.fixture(scope="module")
def bob(site: RestSite, browser: Any) -> Any:
    sign_in(browser, site.server.url, "bobby")
    return browser


def _item(site: RestSite, folder: str, name: str) -> dict[str, Any] | None:
    found = site.get("item", "bobby", params={"folderId": site.id(folder), "name": name}).json()
    return found[0] if found else None


def _session_with_browser_cookies(browser: Any) -> requests.Session:
    session = requests.Session()
    for cookie in browser.get_cookies():
        session.cookies.set(cookie["name"], cookie["value"])
    return session


def test_files_and_download(site: RestSite, bob: Any) -> None:
    base = site.server.url
    bob.get(base + "/user/bobby/Private/notes.txt")
    heading(bob, "notes.txt")
    screen(bob, "item")
    row = find(bob, "table.files tbody tr")
    kind = site.find_file("bob_private", "notes.txt", "bobby")["mimeType"]
    assert row.text.split() == ["notes.txt", "110", "B", kind, "Download"]
    href = find(bob, "table.files a.download").get_attribute("href")
    # The link downloads with what the browser holds (its session cookie), nothing else.
    assert requests.get(href, timeout=10).status_code in (401, 403)
    reply = _session_with_browser_cookies(bob).get(href, timeout=10)
    assert reply.status_code == 200 and reply.content == NOTES


def test_rename_and_description(site: RestSite, bob: Any) -> None:
    base = site.server.url
    bob.get(base + "/user/bobby/Private/notes.txt")
    heading(bob, "notes.txt")
    button(bob, "Rename…").click()
    field = by_label(bob, "New name")
    field.clear()
    field.send_keys("   ")
    button(bob, "Save name").click()
    error = wait_for(lambda: bob.find_element(By.ID, "rename-error").text, "rename error")
    assert "empty" in error.lower() or "name" in error.lower()
    field.clear()
    field.send_keys("renamed <notes>.txt")
    button(bob, "Save name").click()
    heading(bob, "renamed <notes>.txt")
    assert bob.current_url == base + "/user/bobby/Private/renamed%20%3Cnotes%3E.txt"
    assert _item(site, "bob_private", "renamed <notes>.txt") is not None

    button(bob, "Add description").click()
    area = by_label(bob, "Description")
    area.send_keys("first line\n<second> & line")
    button(bob, "Save description").click()
    wait_text(bob, "<second> & line", "#description")
    assert _item(site, "bob_private", "renamed <notes>.txt")["description"] == \
        "first line\n<second> & line"


def test_metadata_editor(site: RestSite, bob: Any) -> None:
    base = site.server.url
    bob.get(base + "/user/bobby/Private/one.txt")
    heading(bob, "one.txt")

    def add(key: str, value: str, as_json: bool = False) -> None:
        form = find(bob, ".metadata > form.meta-form")
        form.find_element(By.CSS_SELECTOR, ".meta-key").send_keys(key)
        form.find_element(By.CSS_SELECTOR, ".meta-value").send_keys(value)
        if as_json:
            form.find_element(By.CSS_SELECTOR, ".meta-json").click()
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    add("color", "<blue>")
    wait_for(lambda: bob.find_element(By.CSS_SELECTOR, "tr[data-key=color] .meta-v").text ==
             "<blue>", "the color key")
    add("shape", '{"sides": [1, 2.5], "ok": true}', as_json=True)
    wait_for(lambda: bob.find_elements(By.CSS_SELECTOR, "tr[data-key=shape]"), "the shape key")
    meta = _item(site, "bob_private", "one.txt")["meta"]
    assert meta == {"color": "<blue>", "shape": {"sides": [1, 2.5], "ok": True}}

    add("bad", "{not json", as_json=True)  # refused by the page, in words
    wait_text(bob, "not valid JSON", ".metadata > form.meta-form .error")
    find(bob, ".metadata > form.meta-form .meta-key").clear()
    find(bob, ".metadata > form.meta-form .meta-value").clear()
    find(bob, ".metadata > form.meta-form .meta-json").click()
    add("a.b", "x")  # refused by the server's key rules: its message, next to the form
    message = wait_for(lambda: bob.find_element(
        By.CSS_SELECTOR, ".metadata > form.meta-form .error").text, "the key rule error")
    assert "." in message and "a.b" not in _item(site, "bob_private", "one.txt")["meta"]
    screen(bob, "metadata")

    find(bob, "tr[data-key=color] .meta-edit").click()
    value = find(bob, "tr[data-key=color] .meta-value")
    value.clear()
    value.send_keys("42")
    find(bob, "tr[data-key=color] .meta-json").click()
    find(bob, "tr[data-key=color] button[type=submit]").click()
    wait_for(lambda: bob.find_element(By.CSS_SELECTOR, "tr[data-key=color] .meta-v").text ==
             "42", "the page showing the new value")
    assert _item(site, "bob_private", "one.txt")["meta"]["color"] == 42  # a number, not "42"
    find(bob, "tr[data-key=shape] .meta-delete").click()
    wait_for(lambda: "shape" not in _item(site, "bob_private", "one.txt")["meta"],
             "shape deleted")
    wait_for(lambda: not bob.find_elements(By.CSS_SELECTOR, "tr[data-key=shape]"),
             "shape row gone")
    assert no_alert(bob)


def test_delete_asks_first(site: RestSite, bob: Any) -> None:
    base = site.server.url
    bob.get(base + "/user/bobby/Private/gone.txt")
    heading(bob, "gone.txt")
    button(bob, "Delete…").click()
    dialog = find(bob, "dialog[open]")
    assert "gone.txt" in dialog.text
    screen(bob, "confirm-delete")
    button(bob, "Cancel").click()
    wait_for(lambda: not bob.find_elements(By.CSS_SELECTOR, "dialog[open]"), "dialog closed")
    assert _item(site, "bob_private", "gone.txt") is not None
    button(bob, "Delete…").click()
    find(bob, "dialog[open]")
    button(bob, "Delete").click()
    heading(bob, "Private")
    assert find(bob, "#flash").text == "Deleted “gone.txt”."
    assert _item(site, "bob_private", "gone.txt") is None
    assert "gone.txt" not in find(bob, "table.contents").text


def test_move_to_a_path(site: RestSite, bob: Any) -> None:
    base = site.server.url
    bob.get(base + "/user/bobby/Private/one.txt")
    heading(bob, "one.txt")
    button(bob, "Move…").click()
    where = by_label(bob, "Destination folder path")
    where.clear()
    where.send_keys("/user/bobby/Private/Nowhere")
    find(bob, "dialog[open] button[type=submit]").click()
    wait_text(bob, "Path not found", "#dest-error")
    where.clear()
    where.send_keys("/user/bobby/Private/Archive")
    find(bob, "dialog[open] button[type=submit]").click()
    heading(bob, "one.txt")
    wait_for(lambda: bob.current_url == base + "/user/bobby/Private/Archive/one.txt", "moved")
    assert _item(site, "archive", "one.txt") is not None
    assert _item(site, "bob_private", "one.txt") is None


def test_select_several_for_zip_copy_move_and_delete(site: RestSite, bob: Any) -> None:
    base = site.server.url
    bob.get(base + "/user/bobby/Private")
    heading(bob, "Private")
    for name in ("two.txt", "Archive"):
        find(bob, f"input[aria-label='Select {name}']").click()
    assert find(bob, "#selected-count").text == "2 selected"
    href = find(bob, "#download-selected").get_attribute("href")
    reply = _session_with_browser_cookies(bob).get(href, timeout=10)
    assert reply.status_code == 200
    names = sorted(zipfile.ZipFile(io.BytesIO(reply.content)).namelist())
    assert names == ["Archive/one.txt", "two.txt"]

    find(bob, "input[aria-label='Select Archive']").click()  # just two.txt now
    button(bob, "Copy…").click()
    where = by_label(bob, "Destination folder path")
    where.clear()
    where.send_keys("/user/bobby/Private/Archive")
    find(bob, "dialog[open] button[type=submit]").click()
    wait_text(bob, "Copied 1 entry to /user/bobby/Private/Archive.", "#flash")
    assert _item(site, "archive", "two.txt") is not None
    assert _item(site, "bob_private", "two.txt") is not None

    find(bob, "input[aria-label='Select three.txt']").click()
    button(bob, "Move…").click()
    where = by_label(bob, "Destination folder path")
    where.clear()
    where.send_keys("/user/bobby/Private/Archive")
    find(bob, "dialog[open] button[type=submit]").click()
    wait_text(bob, "Moved 1 entry to /user/bobby/Private/Archive.", "#flash")
    assert _item(site, "archive", "three.txt") is not None
    assert _item(site, "bob_private", "three.txt") is None
    find(bob, "#select-all").click()
    count = len(bob.find_elements(By.CSS_SELECTOR, "table.contents tbody tr"))
    assert find(bob, "#selected-count").text == f"{count} selected"
    button(bob, "Delete…").click()
    dialog = find(bob, "dialog[open]")
    assert "Archive" in dialog.text and "two.txt" in dialog.text
    button(bob, "Delete").click()
    wait_text(bob, f"Deleted {count} entries.", "#flash")
    wait_text(bob, "This folder is empty.")
    left = site.get("item", "bobby", params={"folderId": site.id("bob_private")}).json()
    assert left == []
    # Each ran with progress=true: the server recorded its progress to the end.
    done = {n["data"]["title"]: n["data"]["state"] for n in
            site.get("notification", "bobby").json() if n["type"] == "progress"}
    assert {t: done.get(t) for t in ("Copying resources", "Moving resources",
                                      "Deleting resources")} == \
        dict.fromkeys(("Copying resources", "Moving resources", "Deleting resources"),
                      "success")
    # Nothing this module did broke a script or the CSP (the log holds the whole module).
    entries = console(bob)
    assert csp_violations(entries) == [] and script_errors(entries) == []


def test_folder_actions(site: RestSite, bob: Any) -> None:
    base = site.server.url
    bob.get(base + "/user/bobby/Private")
    heading(bob, "Private")
    button(bob, "New folder…").click()
    by_label(bob, "Folder name").send_keys("Plans <2027>")
    find(bob, "dialog[open] button[type=submit]").click()
    heading(bob, "Plans <2027>")
    assert find(bob, "#flash").text == "Created folder “Plans <2027>”."
    bob.back()  # a step forward: Back returns to the parent
    heading(bob, "Private")
    button(bob, "New folder…").click()
    by_label(bob, "Folder name").send_keys("Plans <2027>")  # taken: said in the dialog
    find(bob, "dialog[open] button[type=submit]").click()
    message = wait_for(lambda: bob.find_element(By.ID, "prompt-error").text, "the clash")
    assert "exists" in message.lower(), message
    button(bob, "Cancel").click()
    link(bob, "Plans <2027>").click()
    heading(bob, "Plans <2027>")

    button(bob, "New item…").click()
    by_label(bob, "Item name").send_keys("todo")
    find(bob, "dialog[open] button[type=submit]").click()
    heading(bob, "todo")
    bob.back()
    heading(bob, "Plans <2027>")

    button(bob, "Rename…").click()
    field = by_label(bob, "New name")
    field.clear()
    field.send_keys("   ")
    find(bob, "dialog[open] button[type=submit]").click()
    wait_for(lambda: bob.find_element(By.ID, "prompt-error").text, "the name error")
    field.clear()
    field.send_keys("Plans 2028")
    find(bob, "dialog[open] button[type=submit]").click()
    heading(bob, "Plans 2028")
    assert bob.current_url == base + "/user/bobby/Private/Plans%202028"

    button(bob, "Add description").click()
    by_label(bob, "Description").send_keys("what we <will> do")
    find(bob, "dialog[open] button[type=submit]").click()
    wait_text(bob, "what we <will> do", "#description")

    button(bob, "Delete folder…").click()
    assert "Plans 2028" in find(bob, "dialog[open]").text
    button(bob, "Delete").click()
    heading(bob, "Private")
    assert find(bob, "#flash").text == "Deleted the folder “Plans 2028”."
    folders = site.get("folder", "bobby", params={"parentType": "folder",
                                                  "parentId": site.id("bob_private")}).json()
    assert "Plans 2028" not in [f["name"] for f in folders]
    assert [n["data"]["state"] for n in site.get("notification", "bobby").json()
            if n["data"].get("title") == "Deleting folder Plans 2028"] == ["success"]


def test_no_write_no_folder_actions(site: RestSite, bob: Any) -> None:
    bob.get(site.server.url + "/user/alice/Public")  # readable, not writable, for bobby
    heading(bob, "Public")
    assert bob.find_elements(By.ID, "new-folder") == []
    assert bob.find_elements(By.ID, "delete-folder") == []
