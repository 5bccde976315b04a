"""Sharing in a real Chromium: alice shares a folder with bobby through the
access dialog (found by typing part of his login, applied to subfolders); bobby
then sees it in the browser, and still cannot see its unshared sibling."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By

from joist.core.acl import READ, WRITE
from tests.gateways.http.restsite import RestSite
from tests.web.pages import (
    button,
    find,
    heading,
    link,
    main_text,
    screen,
    sign_in,
    sign_out,
    wait_for,
    wait_text,
)
from tests.world import PASSWORD


@pytest.fixture(scope="module")
def site(web_site: RestSite) -> Iterator[RestSite]:
    """alice gains top-level folders shareme/inner/note (to share) and keepout."""
    app, world = web_site.app, web_site.world
    alice = world.principal("alice")
    folders = app.services.folders
    home = world.users["alice"]
    shareme = folders.create(alice, "user", home["_id"], "shareme")
    inner = folders.create(alice, "folder", shareme["_id"], "inner")
    app.services.items.create(alice, inner, "note")
    keepout = folders.create(alice, "user", home["_id"], "keepout")
    world.docs.update(shareme=shareme, inner=inner, keepout=keepout)
    yield web_site


def test_share_a_folder_with_a_second_user(site: RestSite, browser: Any) -> None:
    b, base = browser, site.server.url
    svc, world = site.app.services, site.world
    sign_in(b, base, "alice", next_path="/user/alice/shareme")
    heading(b, "shareme")
    find(b, "#share").click()
    dialog = find(b, "dialog[open]")
    assert "Access to “shareme”" in dialog.text
    assert find(b, "#share-private").is_selected()  # a new folder of alice's is private
    find(b, "#share-find").send_keys("bob")  # part of a login
    pick = wait_for(lambda: next((e for e in b.find_elements(By.CSS_SELECTOR, "#share-found button")
                                  if e.text.startswith("bobby")), None), "bobby offered")
    pick.click()
    row = find(b, "tr[data-principal^='bobby']")
    assert "Can view" in row.text
    # A group is found the same way (GET group?text=).
    find(b, "#share-find").send_keys("tea")
    wait_for(lambda: any(e.text == "Group: team" for e in
                         b.find_elements(By.CSS_SELECTOR, "#share-found button")), "team offered")
    find(b, "#share-recurse").click()
    screen(b, "share-dialog")
    find(b, "#share-save").click()
    wait_text(b, "Access saved.", "#flash")

    # What the dialog saved is what the server now holds, subfolders included.
    for name in ("shareme", "inner"):
        access = svc.access.get(world.principal("alice"), "folder",
                                svc.folders.get(world.principal("alice"),
                                                world.docs[name]["_id"]))
        assert [(u["login"], u["level"]) for u in access["users"]] == [
            ("alice", 2), ("bobby", READ)], name
    keepout = svc.access.get(world.principal("alice"), "folder", svc.folders.get(
        world.principal("alice"), world.docs["keepout"]["_id"]))
    assert [u["login"] for u in keepout["users"]] == ["alice"]
    # Another gateway enforces the same: WebDAV lists the shared folder to bobby only.
    dav = f"{base}/dav/user/alice"
    listing = requests.request("PROPFIND", f"{dav}/shareme/inner", headers={"Depth": "1"},
                               auth=("bobby", PASSWORD), timeout=10)
    assert listing.status_code == 207 and "note" in listing.text
    assert requests.request("PROPFIND", f"{dav}/keepout", headers={"Depth": "0"},
                            auth=("bobby", PASSWORD), timeout=10).status_code == 404

    sign_out(b)
    sign_in(b, base, "bobby", next_path="/user/alice")
    heading(b, "alice")  # alice's folders, as bobby sees them
    assert "shareme" in main_text(b) and "keepout" not in main_text(b)
    link(b, "shareme").click()
    heading(b, "shareme")
    assert "inner" in main_text(b)
    assert b.find_elements(By.ID, "share") == []  # READ: no access dialog
    link(b, "inner").click()
    heading(b, "inner")
    assert "note" in main_text(b)
    b.get(base + "/user/alice/keepout")
    heading(b, "Not found")
    assert "keepout" in main_text(b) and "note" not in main_text(b)
    sign_out(b)


def test_access_dialog_changes_level_and_removes(site: RestSite, browser: Any) -> None:
    """Raise bobby to WRITE, make the folder public, then take bobby off again."""
    b, base = browser, site.server.url
    svc, world = site.app.services, site.world
    alice = world.principal("alice")
    sign_in(b, base, "alice", next_path="/user/alice/keepout")
    heading(b, "keepout")
    find(b, "#share").click()
    find(b, "#share-find").send_keys("bobby")
    wait_for(lambda: next((e for e in b.find_elements(By.CSS_SELECTOR, "#share-found button")
                           if e.text.startswith("bobby")), None), "bobby offered").click()
    select = find(b, "tr[data-principal^='bobby'] select")
    select.find_element(By.CSS_SELECTOR, f"option[value='{WRITE}']").click()
    find(b, "#share-public").click()
    find(b, "#share-save").click()
    wait_text(b, "Access saved.", "#flash")
    doc = svc.folders.get(alice, world.docs["keepout"]["_id"])
    assert doc["public"] is True
    assert {u["login"]: u["level"] for u in svc.access.get(alice, "folder", doc)["users"]} \
        == {"alice": 2, "bobby": WRITE}
    find(b, "#share").click()
    find(b, "tr[data-principal^='bobby'] button").click()  # Remove
    assert b.find_elements(By.CSS_SELECTOR, "tr[data-principal^='bobby']") == []
    old_flash = find(b, "#flash")
    button(b, "Save").click()
    wait_for(lambda: not b.find_elements(By.CSS_SELECTOR, "dialog[open]"), "the dialog closed")
    wait_for(lambda: b.find_element(By.ID, "flash") != old_flash, "the page shown again")
    doc = svc.folders.get(alice, world.docs["keepout"]["_id"])
    assert [u["login"] for u in svc.access.get(alice, "folder", doc)["users"]] == ["alice"]
    # A collection has the same dialog (alice is an owner of "shared").
    b.get(base + "/collection/shared")
    heading(b, "shared")
    find(b, "#share").click()
    assert "Can view" in find(b, "tr[data-principal='Group: team']").text
    button(b, "Cancel").click()
    wait_for(lambda: not b.find_elements(By.CSS_SELECTOR, "dialog[open]"), "closed")
    sign_out(b)
