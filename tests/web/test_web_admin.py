"""Administration in a real Chromium: refused to a non-admin (hidden, and the API
refuses the calls), an admin changing settings, managing users, assetstores,
uploads in progress, and running the check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.gateways.http.restsite import RestSite
from tests.web.pages import (
    button,
    by_label,
    find,
    heading,
    link,
    screen,
    sign_in,
    sign_out,
    wait_for,
    wait_text,
)
from tests.world import PASSWORD


def test_admin_pages_refused_to_a_non_admin(web_site: RestSite, browser: Any) -> None:
    b, base = browser, web_site.server.url
    sign_in(b, base, "alice")
    assert b.find_elements(By.ID, "admin-link") == []  # hidden
    for page in ("/admin", "/admin/settings", "/admin/assetstores", "/admin/uploads"):
        b.get(base + page)
        heading(b, "Administration")
        assert find(b, "#admin-refused").text == "Only site administrators can see this page."
        assert b.find_elements(By.CSS_SELECTOR, "#settings, table.users, table.stores") == []
    # The protection is the server's: every call the pages make is refused to alice.
    for method, path, params in (
            ("GET", "system/setting/definitions", None),
            ("PUT", "system/setting", {"key": "core.registration_policy", "value": "closed"}),
            ("GET", "assetstore", None), ("GET", "system/uploads", None),
            ("DELETE", "system/uploads", None), ("GET", "system/check", {"mode": "slow"}),
            ("PUT", "user/{}".format(web_site.id("bobby")),
             {"firstName": "B", "lastName": "T", "email": "b@example.org", "admin": "true"})):
        reply = web_site.call(method, path, "alice", params=params)
        assert reply.status_code == 403, (method, path, reply.text)
    sign_out(b)


def test_admin_changes_settings(web_site: RestSite, browser: Any) -> None:
    b, base = browser, web_site.server.url
    sign_in(b, base, "admin")
    link(b, "Admin").click()
    heading(b, "Administration")
    link(b, "Settings").click()
    policy = find(b, "form[data-key='core.registration_policy']")
    Select(policy.find_element(By.TAG_NAME, "select")).select_by_value("closed")
    policy.find_element(By.XPATH, ".//button[text()='Save']").click()
    wait_text(b, "Saved.", "form[data-key='core.registration_policy']")
    assert web_site.get("system/public_settings").json()["core.registration_policy"] == "closed"

    lifetime = find(b, "form[data-key='core.cookie_lifetime']")
    field = lifetime.find_element(By.TAG_NAME, "input")
    assert field.get_attribute("value") == "180"
    field.clear()
    field.send_keys("-1")
    lifetime.find_element(By.XPATH, ".//button[text()='Save']").click()
    error = wait_for(lambda: lifetime.find_element(By.CSS_SELECTOR, "p.error").text, "refusal")
    assert "core.cookie_lifetime" in error and "must be" in error
    field.clear()
    field.send_keys("30")
    lifetime.find_element(By.XPATH, ".//button[text()='Save']").click()
    wait_text(b, "Saved.", "form[data-key='core.cookie_lifetime']")
    assert web_site.get("system/setting", "admin",
                        params={"key": "core.cookie_lifetime"}).json() == 30
    screen(b, "admin-settings")
    for key in ("core.registration_policy", "core.cookie_lifetime"):
        find(b, f"form[data-key='{key}']").find_element(
            By.XPATH, ".//button[text()='Default']").click()
        wait_text(b, "Default restored.", f"form[data-key='{key}']")
    assert web_site.get("system/public_settings").json()["core.registration_policy"] == "open"

    # The collection-creation policy: users and groups added by name.
    assert web_site.post("collection", "bobby", params={"name": "b1"}).status_code == 403
    policy = find(b, "form[data-key='core.collection_create_policy']")
    for name, shown in (("nobody-such", "#policy-add-error"),
                        ("bobby", "li[data-principal='bobby']"),
                        ("team", "li[data-principal='Group: team']")):
        field = by_label(b, "Add")
        field.clear()
        field.send_keys(name)
        button(b, "Add").click()
        # The unknown name is said in words next to the field (and not added).
        wait_for(lambda css=shown, want=name: want in b.find_element(By.CSS_SELECTOR, css).text,
                 name)
    assert [e.get_attribute("data-principal") for e in
            policy.find_elements(By.CSS_SELECTOR, "#policy-list li")] == ["bobby", "Group: team"]
    find(b, "#policy-open").click()  # the policy on
    policy.find_element(By.XPATH, ".//button[text()='Save']").click()
    wait_text(b, "Saved.", "form[data-key='core.collection_create_policy']")
    assert web_site.get("system/setting", "admin", params={
        "key": "core.collection_create_policy"}).json() == {
        "open": True, "users": [web_site.id("bobby")], "groups": [web_site.id("team")]}
    assert web_site.post("collection", "bobby", params={"name": "b1"}).status_code == 200
    assert web_site.post("collection", "alice", params={"name": "a1"}).status_code == 403
    assert web_site.delete("system/setting", "admin",
                           params={"key": "core.collection_create_policy"}).status_code == 200


def test_admin_manages_users(web_site: RestSite, browser: Any) -> None:
    b, base = browser, web_site.server.url
    login_url = web_site.url("user/authentication")
    b.get(base + "/admin")
    heading(b, "Administration")
    by_label(b, "Find users").send_keys("caro")
    button(b, "Find").click()
    wait_for(lambda: [r.get_attribute("data-login") for r in
                      b.find_elements(By.CSS_SELECTOR, "table.users tbody tr")] == ["carol"],
             "only carol listed")
    screen(b, "admin-users")
    find(b, "tr[data-login='carol'] button.toggle").click()  # Disable
    wait_text(b, "Disabled carol.", "#flash")
    assert "Disabled" in find(b, "tr[data-login='carol']").text
    assert requests.get(login_url, auth=("carol", PASSWORD), timeout=10).status_code in (401, 403)
    find(b, "tr[data-login='carol'] button.toggle").click()  # Enable
    wait_text(b, "Enabled carol.", "#flash")
    assert requests.get(login_url, auth=("carol", PASSWORD), timeout=10).status_code == 200
    find(b, "tr[data-login='carol'] button.admin").click()
    wait_text(b, "carol is now a site administrator.", "#flash")
    assert web_site.get("user/{}".format(web_site.id("carol")), "admin").json()["admin"] is True

    b.get(base + "/admin")
    heading(b, "Administration")
    for label, value in (("Login", "dave"), ("Email", "dave@example.org"),
                         ("First name", "Dave"), ("Last name", "Tester"),
                         ("Password", "dave's password")):
        by_label(b, label).send_keys(value)
    button(b, "Create user").click()
    wait_text(b, "Created the user dave.", "#flash")
    assert requests.get(login_url, auth=("dave", "dave's password"), timeout=10) \
        .status_code == 200
    find(b, "tr[data-login='dave'] button.danger").click()
    find(b, "dialog[open] button.danger").click()
    wait_text(b, "Deleted dave.", "#flash")
    assert b.find_elements(By.CSS_SELECTOR, "tr[data-login='dave']") == []
    assert requests.get(login_url, auth=("dave", "dave's password"), timeout=10) \
        .status_code == 401


def test_admin_assetstores_uploads_and_check(web_site: RestSite, browser: Any,
                                             tmp_path: Path) -> None:
    b, base = browser, web_site.server.url
    b.get(base + "/admin/assetstores")
    heading(b, "Administration")
    first = find(b, "table.stores tbody tr")
    assert "(current)" in first.text and " free of " in first.text
    by_label(b, "Name").send_keys("second")
    by_label(b, "Root directory on the server").send_keys(str(tmp_path / "second"))
    button(b, "Create assetstore").click()
    wait_text(b, "Created the assetstore second.", "#flash")
    find(b, "tr[data-name='second'] button").click()  # Make current
    wait_text(b, "second is now the current assetstore.", "#flash")
    stores = {s["name"]: s for s in web_site.get("assetstore", "admin").json()}
    assert stores["second"]["current"] is True
    screen(b, "admin-assetstores")
    old = next(name for name, s in stores.items() if name != "second")
    find(b, f"tr[data-name='{old}'] button").click()
    wait_text(b, f"{old} is now the current assetstore.", "#flash")

    started = web_site.post("file", "alice", params={
        "parentType": "folder", "parentId": web_site.id("private"), "name": "half.bin",
        "size": 1000}).json()
    b.get(base + "/admin/uploads")
    heading(b, "Administration")
    row = find(b, "tr[data-name='half.bin']")
    assert "In progress" in row.text
    row.find_element(By.TAG_NAME, "button").click()
    find(b, "dialog[open] button.danger").click()
    wait_text(b, "Discarded 1 upload.", "#flash")
    left = web_site.get("system/uploads", "admin").json()
    assert started["_id"] not in [u.get("_id") for u in left]

    link(b, "Check").click()
    button(b, "Full check").click()
    assert wait_for(lambda: b.find_element(By.ID, "check-verdict").text, "the report") \
        == "No problems found."
    assert '"ok": true' in find(b, "#check-report pre").text
    sign_out(b)


def test_admin_creates_an_s3_assetstore_and_imports_from_it(web_site: RestSite,
                                                            browser: Any) -> None:
    """Against moto's S3 server on 127.0.0.1 (tests/s3env.py)."""
    from tests.s3env import shared_moto

    moto = shared_moto()
    bucket = moto.new_bucket("webimport")
    client = moto.client()
    client.put_object(Bucket=bucket, Key="in/a.txt", Body=b"alpha")
    client.put_object(Bucket=bucket, Key="in/sub/b.txt", Body=b"beta")
    b, base = browser, web_site.server.url
    sign_in(b, base, "admin", next_path="/admin/assetstores")
    heading(b, "Administration")
    by_label(b, "Name").send_keys("objects")
    Select(by_label(b, "Type")).select_by_value("2")
    by_label(b, "Bucket").send_keys(bucket)
    by_label(b, "Service URL (empty for AWS)").send_keys(moto.url)
    by_label(b, "Access key ID").send_keys("testing")
    by_label(b, "Secret key").send_keys("testing")
    button(b, "Create assetstore").click()
    wait_text(b, "Created the assetstore objects.", "#flash")
    row = find(b, "tr[data-name='objects']")
    assert f"s3://{bucket}/" in row.text and "S3" in row.text and "(current)" not in row.text

    Select(by_label(b, "Assetstore")).select_by_visible_text("objects")
    by_label(b, "Path within the assetstore (empty: all of it)").send_keys("in")
    by_label(b, "Destination path").send_keys("/user/admin/Private")
    button(b, "Import").click()
    done = wait_text(b, "Imported:", "#import-done").text
    assert "files 2" in done, done
    b.get(base + "/user/admin/Private/sub")
    heading(b, "sub")
    assert "b.txt" in find(b, "#main").text
    item = web_site.get("resource/lookup", "admin",
                        params={"path": "/user/admin/Private/sub/b.txt"}).json()
    assert web_site.get(f"item/{item['_id']}/download", "admin").content == b"beta"
    sign_out(b)
