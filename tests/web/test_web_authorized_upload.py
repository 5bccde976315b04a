"""Issue 16 item 7: the web client's page of an authorized upload link. Alice
makes a link over REST; a browser with nobody signed in opens it, picks one
file, sees the progress bar then "done"; the bytes are in alice's folder and
the link, opened again, is refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateways.http.restsite import RestSite
from tests.gateways.plugins.pluginsite import plugin_site
from tests.web.pages import console, csp_violations, find, heading, script_errors, wait_text

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def authup_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestSite]:
    with plugin_site(tmp_path_factory.mktemp("web-authup") / "data",
                     ["authorized_upload"]) as site:
        yield site


def test_a_person_without_an_account_uploads_one_file(authup_site: RestSite, browser: Any,
                                                      tmp_path: Path) -> None:
    site = authup_site
    reply = site.post("authorized_upload", "alice", params={"folderId": site.id("data")})
    assert reply.status_code == 200, reply.text
    url = reply.json()["url"]
    assert "#authorized_upload/" in url
    data = os.urandom(6 * MiB + 17)  # two chunks: the page sends 5 MiB at a time
    path = tmp_path / "survey results.bin"
    path.write_bytes(data)

    browser.get(url)
    heading(browser, "Upload a file")
    assert browser.find_elements("css selector", "#sign-out") == []  # nobody signed in
    find(browser, "#authup-file").send_keys(str(path))
    find(browser, "#authup-send").click()
    wait_text(browser, "Done: survey results.bin was uploaded", "#authup-done")
    assert find(browser, "#authup-progress").get_attribute("value") == "1"

    items = site.get("item", "alice", params={"folderId": site.id("data"),
                                              "name": "survey results.bin"}).json()
    assert len(items) == 1
    files = site.get(f"item/{items[0]['_id']}/files", "alice").json()
    assert site.get(f"file/{files[0]['_id']}/download", "alice").content == data

    # the link is dead: opened again, the page says so
    browser.get("about:blank")
    browser.get(url)
    heading(browser, "Upload a file")
    find(browser, "#authup-file").send_keys(str(path))
    find(browser, "#authup-send").click()
    wait_text(browser, "no longer valid", "#authup-error")
    entries = console(browser)
    assert csp_violations(entries) == []
    assert script_errors(entries) == []
