"""Browsing in a real Chromium: the Collections, Users and Groups pages, a deep
folder reached by clicks and by a reloaded deep link, breadcrumbs, server-side
paging and sorting, the path bar, quick search, names that look like HTML shown
as text, the CSP without violations, and the Connect panel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.gateways.http.restsite import RestSite
from tests.web.pages import (
    by_label,
    console,
    csp_violations,
    find,
    heading,
    link,
    main_text,
    no_alert,
    screen,
    script_errors,
    sign_in,
    wait_for,
    wait_text,
)
from tests.world import upload_bytes

XSS_FOLDER = "<img src=x onerror=alert(1)>"
XSS_ITEM = '"><script>alert(2)</script>'
MANY = 120  # more than two pages of 50
DASH = "\u2013"  # the en dash of the pager: "1<en dash>50 of 120"


@pytest.fixture(scope="module")
def site(web_site: RestSite) -> Iterator[RestSite]:
    """The world plus: HTML-looking names in alice's Public folder, and a folder
    of MANY items for paging."""
    app, world = web_site.app, web_site.world
    alice = world.principal("alice")
    svc = app.services
    public = world.docs["public"]
    odd = svc.folders.create(alice, "folder", public["_id"], XSS_FOLDER,
                             description="<b>bold?</b> & <i>not</i>")
    upload_bytes(app, alice, "folder", odd, XSS_ITEM, b"x")
    many = svc.folders.create(alice, "folder", world.docs["private"]["_id"], "many")
    for n in range(MANY):
        svc.items.create(alice, many, f"file{n:03d}.txt")
    world.docs.update(odd=odd, many=many)
    yield web_site


@pytest.fixture(scope="module")
def alice_browser(site: RestSite, browser: Any) -> Any:
    sign_in(browser, site.server.url, "alice")
    return browser


def test_collections_users_and_groups_pages(site: RestSite, alice_browser: Any) -> None:
    b, base = alice_browser, site.server.url
    link(b, "Collections").click()
    heading(b, "Collections")
    screen(b, "collections")
    assert "shared" in main_text(b) and "secret" not in main_text(b)  # ACL: alice's view
    link(b, "Users").click()
    heading(b, "Users")
    for login in ("alice", "bobby", "carol"):
        assert login in main_text(b)
    link(b, "Groups").click()
    heading(b, "Groups")
    assert "team" in main_text(b)
    b.get(base + "/collections")
    link(b, "shared").click()
    heading(b, "shared")
    assert "docs" in main_text(b)


def test_deep_folder_by_clicks_then_reload(site: RestSite, alice_browser: Any) -> None:
    b, base = alice_browser, site.server.url
    find(b, "#account .me").click()
    heading(b, "alice")
    for name in ("Private", "data", "deep", "d1", "d2", "d3"):
        link(b, name).click()
        heading(b, name)
    assert b.current_url == base + "/user/alice/Private/data/deep/d1/d2/d3"
    crumbs = [e.text for e in b.find_elements(By.CSS_SELECTOR, ".crumbs li")]
    assert crumbs == ["Users", "alice", "Private", "data", "deep", "d1", "d2", "d3"]
    assert "leaf.txt" in main_text(b)
    screen(b, "folder")
    b.refresh()  # a deep link works on reload
    heading(b, "d3")
    assert "leaf.txt" in main_text(b)
    link(b, "data").click()  # breadcrumbs lead back up
    heading(b, "data")
    b.back()
    heading(b, "d3")
    # A name holding "/" (the path codec's "\-") in a link and in the URL.
    b.get(base + "/user/alice/Private/data")
    link(b, "odd/name").click()
    heading(b, "odd/name")
    b.refresh()
    heading(b, "odd/name")


def test_paging_and_sorting_by_the_server(site: RestSite, alice_browser: Any) -> None:
    b, base = alice_browser, site.server.url
    b.get(base + "/user/alice/Private/many")
    heading(b, "many")
    rows = b.find_elements(By.CSS_SELECTOR, "table.contents tbody tr")
    assert len(rows) == 50
    assert find(b, "#page-info").text.startswith(f"1{DASH}50 of {MANY}")
    assert rows[0].text.startswith("file000.txt")
    link(b, "Next").click()
    wait_text(b, f"51{DASH}100 of {MANY}", "#page-info")
    assert "file050.txt" in main_text(b) and "file000.txt" not in main_text(b)
    assert "page=2" in b.current_url
    b.refresh()  # the page number is in the URL
    wait_text(b, f"51{DASH}100 of {MANY}", "#page-info")
    find(b, "a.sort[title='Sort by name']").click()  # descending
    wait_for(lambda: b.find_element(By.CSS_SELECTOR, "table.contents tbody tr").text
             .startswith("file119.txt"), "name descending")
    assert find(b, "#page-info").text.startswith(f"1{DASH}50")
    link(b, "Next").click()
    wait_text(b, f"51{DASH}100 of {MANY}", "#page-info")
    link(b, "Next").click()
    wait_text(b, f"101{DASH}120 of {MANY}", "#page-info")
    rows = b.find_elements(By.CSS_SELECTOR, "table.contents tbody tr")
    assert len(rows) == 20 and rows[-1].text.startswith("file000.txt")
    # Every listing the page asked for was one page: never the whole folder.
    listings = [parse_qs(urlsplit(url).query) for url in b.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
        if urlsplit(url).path in ("/api/v1/item", "/api/v1/folder")]
    assert listings and all(0 < int(q["limit"][0]) <= 50 for q in listings), listings


def test_path_bar(site: RestSite, alice_browser: Any) -> None:
    b, base = alice_browser, site.server.url
    b.get(base + "/collections")
    heading(b, "Collections")
    bar = by_label(b, "Path")
    bar.send_keys("/collection/shared/docs/", Keys.ENTER)  # pasted, trailing slash and all
    heading(b, "docs")
    assert b.current_url == base + "/collection/shared/docs"
    assert by_label(b, "Path").get_attribute("value") == "/collection/shared/docs"
    bar = by_label(b, "Path")
    bar.clear()
    bar.send_keys("/collection/secret/vault", Keys.ENTER)  # exists, but not for alice
    wait_text(b, "Path not found: /collection/secret/vault", "#path-error")
    assert b.current_url == base + "/collection/shared/docs"  # stayed where it was
    bar = by_label(b, "Path")
    bar.clear()
    bar.send_keys("/user/alice/Private/data/a.txt", Keys.ENTER)  # an item: its page
    heading(b, "a.txt")


def test_quick_search_text_and_prefix(site: RestSite, alice_browser: Any) -> None:
    b = alice_browser
    box = by_label(b, "Search")
    box.clear()
    box.send_keys("report", Keys.ENTER)
    heading(b, "Search: report")
    screen(b, "search")
    link(b, "report.txt").click()
    heading(b, "report.txt")
    assert b.current_url.endswith("/collection/shared/docs/report.txt")
    box = by_label(b, "Search")
    box.clear()
    box.send_keys("fil")
    find(b, "#search-mode option[value=prefix]").click()
    box.send_keys(Keys.ENTER)
    heading(b, "Search: fil")
    assert "file000.txt" in main_text(b)
    box = by_label(b, "Search")
    box.clear()
    box.send_keys("hidden", Keys.ENTER)  # in the secret collection: not for alice
    heading(b, "Search: hidden")
    assert find(b, "#no-results").text == "Nothing found."


def test_html_looking_names_are_text(site: RestSite, alice_browser: Any) -> None:
    b, base = alice_browser, site.server.url
    console(b)  # start from an empty log
    b.get(base + "/user/alice/Public")
    heading(b, "Public")
    folder = link(b, XSS_FOLDER)
    assert no_alert(b)
    assert b.find_elements(By.CSS_SELECTOR, "#main img") == []
    folder.click()
    heading(b, XSS_FOLDER)
    assert "<b>bold?</b> & <i>not</i>" in main_text(b)
    assert b.find_elements(By.CSS_SELECTOR, "#main b, #main i") == []
    assert XSS_ITEM in main_text(b)
    screen(b, "xss")
    link(b, XSS_ITEM).click()
    heading(b, XSS_ITEM)
    b.refresh()  # the encoded deep link of such a name works
    heading(b, XSS_ITEM)
    assert no_alert(b)
    assert b.find_elements(By.CSS_SELECTOR, "#main script, #main img") == []
    entries = console(b)
    assert csp_violations(entries) == [] and script_errors(entries) == []


def test_connect_panel(site: RestSite, alice_browser: Any) -> None:
    b, base = alice_browser, site.server.url
    b.get(base + "/user/alice/Private/data")
    heading(b, "data")
    find(b, "#connect summary").click()
    wait_text(b, "WebDAV URL", "#connect")
    screen(b, "connect")
    values = {e.get_attribute("id"): e.get_attribute("value")
              for e in b.find_elements(By.CSS_SELECTOR, "#connect input.copy-text")}
    text = "\n".join(values.values())
    assert f"{base}/dav/user/alice/Private/data" in text
    assert f"dav://{base.split('//')[1]}/dav/user/alice/Private/data" in text
    _, port = site.server.sftp.address
    assert f"sftp -P {port} alice@127.0.0.1:/user/alice/Private/data" in text
    assert "joist mount --user alice" in text
    folder_id = site.id("data")
    assert f"--api-url {base}/api/v1 --api-key KEY upload {folder_id} ./local-folder" in text
    assert f"download {folder_id} ./data" in text
    # The WebDAV URL shown is the real one: the folder's listing answers there.
    import requests
    reply = requests.request("PROPFIND", f"{base}/dav/user/alice/Private/data",
                             headers={"Depth": "1"}, auth=("alice", "correct horse"), timeout=10)
    assert reply.status_code == 207 and "a.txt" in reply.text
    copy = b.find_element(By.CSS_SELECTOR, "#connect dd button")
    copy.click()
    wait_for(lambda: b.find_element(By.CSS_SELECTOR, "#connect .copied").text, "copy feedback")


def test_narrow_screen_and_keyboard(site: RestSite, alice_browser: Any) -> None:
    b, base = alice_browser, site.server.url
    b.set_window_size(390, 844)
    try:
        b.get(base + "/user/alice/Private/data")
        heading(b, "data")
        width = b.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, width  # nothing wider than the screen
        screen(b, "narrow-folder")
        # Keyboard only: tab to the first entry link and open it with Enter.
        body = b.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        for _ in range(40):
            active = b.switch_to.active_element
            if active.tag_name == "a" and active.text == "deep":
                break
            active.send_keys(Keys.TAB)
        else:
            raise AssertionError("the folder link is not reachable by Tab")
        active.send_keys(Keys.ENTER)
        heading(b, "deep")
        b.get(base + "/user/alice/Private/data/multi")  # an item page, files and metadata
        heading(b, "multi")
        assert b.execute_script("return document.documentElement.scrollWidth") <= 390
        screen(b, "narrow-item")
        entries = console(b)  # everything since the HTML-looking names test
        assert csp_violations(entries) == [] and script_errors(entries) == []
    finally:
        b.set_window_size(1280, 900)
