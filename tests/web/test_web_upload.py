"""Uploading from a real Chromium through the REST upload protocol: a 20 MiB file
and a folder of 50 files (the tree kept) picked with the file inputs, files and
a folder tree dropped on the page, cancel (the server's upload record is
deleted), and an upload interrupted mid-way that goes on from the server's
offset: by itself after a lost connection and after the server stopped and
started again, and after a page reload when the same file is chosen again. The
bytes are then compared over REST with requests.

A lost connection is played in the page: a small wrapper around
XMLHttpRequest.send lets the first N chunk requests through and fails the rest
the way the network does (an "error" event, nothing sent). It also counts the
bytes really sent, which bounds what a resumed upload re-sends."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests.gateways.http.restsite import RestSite, running_site
from tests.web.pages import (
    console,
    csp_violations,
    find,
    heading,
    screen,
    script_errors,
    sign_in,
    wait_for,
    wait_text,
)

MiB = 1024 * 1024
UPLOAD_DEADLINE = 30.0
FOLDERS = ("Big", "Tree", "Dropped", "DroppedTree", "Cancel", "Resume", "Flaky", "Restart")

# Chunk requests beyond __pass fail as a lost connection would; with __hold they
# are kept unsent until canceled. __sent counts the chunk bytes really sent.
NETWORK = """
window.__pass = arguments[0]; window.__hold = arguments[1];
window.__sent = 0; window.__chunks = 0;
const proto = XMLHttpRequest.prototype;
const open = proto.open, send = proto.send;
proto.open = function (method, url, ...rest) {
  this.__url = String(url);
  return open.call(this, method, url, ...rest);
};
proto.send = function (body) {
  if (this.__url.includes("/api/v1/file/chunk")) {
    window.__chunks += 1;
    if (window.__chunks > window.__pass) {
      if (window.__hold) {
        this.abort = () => this.dispatchEvent(new ProgressEvent("abort"));
      } else {
        setTimeout(() => this.dispatchEvent(new ProgressEvent("error")), 0);
      }
      return undefined;
    }
    window.__sent += body.size;
  }
  return send.call(this, body);
};
"""


@pytest.fixture(scope="module")
def web_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestSite]:
    """As conftest's, but on a port picked up front: a server bound to port 0
    leaves its connections without SO_REUSEADDR, so after a stop it could not
    listen on that port again for a minute. The restart test needs to."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with running_site(tmp_path_factory.mktemp("web-upload") / "data",
                      **{"webdav.enabled": True, "server.port": port}) as site:
        yield site


@pytest.fixture(scope="module")
def site(web_site: RestSite) -> Iterator[RestSite]:
    app, world = web_site.app, web_site.world
    carol = world.principal("carol")
    private = app.services.folders.list(carol, "user", world.users["carol"]["_id"],
                                        name="Private")[0][0]
    for name in FOLDERS:
        world.docs[name] = app.services.folders.create(carol, "folder", private["_id"], name)
    yield web_site


@pytest.fixture(scope="module")
def carol(site: RestSite, browser: Any) -> Any:
    sign_in(browser, site.server.url, "carol")
    return browser


def _data(tmp: Path, name: str, size: int) -> Path:
    path = tmp / name
    path.write_bytes(os.urandom(size))
    return path


def _open(driver: Any, site: RestSite, folder: str) -> None:
    driver.get(f"{site.server.url}/user/carol/Private/{folder}")
    heading(driver, folder)
    find(driver, "#dropzone")


def _state(driver: Any, name: str) -> str:
    return str(find(driver, f'.upload-row[data-name="{name}"]').get_attribute("data-state"))


def _wait_state(driver: Any, name: str, state: str) -> None:
    wait_for(lambda: _state(driver, name) == state, f"{name} {state}", UPLOAD_DEADLINE)


def _content(site: RestSite, folder_id: str, name: str) -> bytes:
    items = site.get("item", "carol", params={"folderId": folder_id, "name": name}).json()
    assert len(items) == 1, (name, items)
    files = site.get(f"item/{items[0]['_id']}/files", "carol").json()
    assert len(files) == 1 and files[0]["name"] == name
    reply = site.get(f"file/{files[0]['_id']}/download", "carol")
    assert reply.status_code == 200
    return reply.content


def _subfolder(site: RestSite, parent_id: str, name: str) -> str:
    found = site.get("folder", "carol", params={"parentType": "folder", "parentId": parent_id,
                                               "name": name}).json()
    assert len(found) == 1, (name, found)
    return str(found[0]["_id"])


def _uploads(site: RestSite) -> list[dict[str, Any]]:
    reply = site.get("system/uploads", "admin")
    assert reply.status_code == 200, reply.text
    return list(reply.json())


def test_upload_a_20_mib_file(site: RestSite, carol: Any, tmp_path: Path) -> None:
    path = _data(tmp_path, "big.bin", 20 * MiB)
    _open(carol, site, "Big")
    find(carol, "#upload-files").send_keys(str(path))
    # The batch over, the page shows the new item and the list stays.
    wait_text(carol, "Uploaded 1 of 1 files.", "#flash")
    find(carol, 'a[href$="/Big/big.bin"]')
    assert _state(carol, "big.bin") == "done"
    assert "1 of 1 files uploaded" in find(carol, "#upload-summary").text
    screen(carol, "upload-done")
    assert _content(site, site.id("Big"), "big.bin") == path.read_bytes()
    assert not _uploads(site)


def test_upload_a_folder_of_50_files_keeps_the_tree(site: RestSite, carol: Any,
                                                    tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    expected: dict[str, bytes] = {}
    for i in range(50):
        sub = tree / ("a" if i < 20 else "b/c")
        sub.mkdir(parents=True, exist_ok=True)
        data = f"file {i}\n".encode() * (i + 1)
        (sub / f"f{i:02}.txt").write_bytes(data)
        expected[str((sub / f"f{i:02}.txt").relative_to(tmp_path))] = data
    _open(carol, site, "Tree")
    find(carol, "#upload-folder").send_keys(str(tree))
    wait_text(carol, "Uploaded 50 of 50 files.", "#flash")
    assert len(carol.find_elements(By.CSS_SELECTOR, '.upload-row[data-state="done"]')) == 50
    # The finished batch folds away: the listing matters more now.
    assert find(carol, "#upload-details").get_attribute("open") is None
    assert "Files (50)" in find(carol, "#upload-details summary").text
    screen(carol, "upload-tree")
    root = _subfolder(site, site.id("Tree"), "tree")
    ids = {"tree/a": _subfolder(site, root, "a")}
    ids["tree/b/c"] = _subfolder(site, _subfolder(site, root, "b"), "c")
    for rel, data in expected.items():
        folder, name = rel.rsplit("/", 1)
        assert _content(site, ids[folder], name) == data, rel


def test_dropped_files_upload(site: RestSite, carol: Any) -> None:
    _open(carol, site, "Dropped")
    # A drop as the page receives it: a DataTransfer holding two files.
    carol.execute_script("""
        const dt = new DataTransfer();
        dt.items.add(new File(["first <dropped>"], "one <b>.txt", {type: "text/plain"}));
        dt.items.add(new File([new Uint8Array(3000)], "two.bin"));
        dt.items.add(new File([], "empty.txt"));
        const zone = document.getElementById("dropzone");
        for (const type of ["dragenter", "dragover", "drop"]) {
          zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true,
                                                  cancelable: true}));
        }""")
    wait_text(carol, "Uploaded 3 of 3 files.", "#flash")
    assert _content(site, site.id("Dropped"), "one <b>.txt") == b"first <dropped>"
    assert _content(site, site.id("Dropped"), "two.bin") == bytes(3000)
    assert _content(site, site.id("Dropped"), "empty.txt") == b""
    find(carol, '.upload-row[data-name="one <b>.txt"]')  # the name shown as text


def test_dropped_folder_tree_is_walked(site: RestSite, carol: Any) -> None:
    """A dropped folder reaches the page as FileSystemDirectoryEntry objects, which
    a script cannot make: these stand-ins follow that API (readEntries answers in
    batches, then an empty one), so the walk is the one a real drop runs."""
    _open(carol, site, "DroppedTree")
    carol.execute_script("""
        const file = (name, text) => ({ isFile: true, isDirectory: false, name,
          file: (ok) => ok(new File([text], name)) });
        const dir = (name, children) => ({ isFile: false, isDirectory: true, name,
          createReader: () => { let at = 0; return { readEntries: (ok) => {
            const batch = children.slice(at, at + 5); at += batch.length;
            setTimeout(() => ok(batch), 0); } }; } });
        const many = Array.from({ length: 12 }, (_, i) => file(`n${i}.txt`, `n${i}`));
        const root = dir("top", [file("a.txt", "A"), dir("sub", many), dir("empty", [])]);
        const event = new Event("drop", { bubbles: true, cancelable: true });
        Object.defineProperty(event, "dataTransfer", { value: { types: ["Files"], files: [],
          items: [{ kind: "file", webkitGetAsEntry: () => root }] } });
        document.getElementById("dropzone").dispatchEvent(event);""")
    wait_text(carol, "Uploaded 13 of 13 files.", "#flash")
    top = _subfolder(site, site.id("DroppedTree"), "top")
    assert _content(site, top, "a.txt") == b"A"
    sub = _subfolder(site, top, "sub")
    for i in range(12):
        assert _content(site, sub, f"n{i}.txt") == f"n{i}".encode()
    _subfolder(site, top, "empty")  # an empty folder is kept too


def test_cancel_deletes_the_upload(site: RestSite, carol: Any, tmp_path: Path) -> None:
    path = _data(tmp_path, "cancel.bin", 12 * MiB)  # three chunks of 5 MiB
    _open(carol, site, "Cancel")
    carol.execute_script(NETWORK, 1, True)  # the second chunk never leaves
    find(carol, "#upload-files").send_keys(str(path))
    wait_for(lambda: carol.execute_script("return window.__chunks") == 2, "a held chunk")
    pending = [u for u in _uploads(site) if u["name"] == "cancel.bin"]
    assert len(pending) == 1 and pending[0]["received"] == 5 * MiB
    screen(carol, "upload-progress")
    find(carol, '.upload-row[data-name="cancel.bin"] .upload-cancel').click()
    _wait_state(carol, "cancel.bin", "canceled")
    wait_for(lambda: not [u for u in _uploads(site) if u["name"] == "cancel.bin"],
             "the upload record deleted")
    assert site.get("item", "carol", params={"folderId": site.id("Cancel")}).json() == []
    assert not carol.execute_script(
        "return Object.keys(localStorage).filter((k) => k.startsWith('joist.upload:'))")


def test_lost_connection_resumes_by_itself(site: RestSite, carol: Any, tmp_path: Path) -> None:
    path = _data(tmp_path, "flaky.bin", 11 * MiB)
    _open(carol, site, "Flaky")
    carol.execute_script(NETWORK, 1, False)
    find(carol, "#upload-files").send_keys(str(path))
    _wait_state(carol, "flaky.bin", "retrying")
    carol.execute_script("window.__pass = 1e9")  # the connection is back
    wait_text(carol, "Uploaded 1 of 1 files.", "#flash")
    # Nothing was sent twice: it asked the server where it was and went on.
    assert carol.execute_script("return window.__sent") == path.stat().st_size
    assert _content(site, site.id("Flaky"), "flaky.bin") == path.read_bytes()


def _start_again(site: RestSite) -> None:
    """The server back on its port (the other tests go on with it)."""
    def started() -> bool:
        try:
            site.server.start()
        except OSError:  # another process took the port meanwhile: say so
            return False
        return True
    wait_for(started, "the server listening again on its port", 5.0)


def test_server_restart_mid_upload_goes_on_from_its_offset(
        site: RestSite, carol: Any, tmp_path: Path) -> None:
    """The real thing: the server stops while chunks are flowing, and comes back
    on the same port; the page keeps trying, asks where the server is, and ends
    the upload without starting over."""
    size = 128 * MiB  # chunks of 8 MiB
    path = _data(tmp_path, "restart.bin", size)
    _open(carol, site, "Restart")
    carol.execute_script(NETWORK, 1e9, False)  # counting only
    uploads = site.app.services.uploads

    def received() -> int:
        found = [u for u in uploads.list() if u["name"] == "restart.bin"]
        return int(found[0]["received"]) if found else 0

    find(carol, "#upload-files").send_keys(str(path))
    wait_for(lambda: received() >= 16 * MiB, "two chunks on the server", UPLOAD_DEADLINE)
    site.server.stop()
    try:
        stopped_at = received()
        assert stopped_at < size, "the upload ended before the server stopped"
        _wait_state(carol, "restart.bin", "retrying")
        # Attempt 3: the server was asked where it is while still away.
        wait_text(carol, "(attempt 3)", '.upload-row[data-name="restart.bin"]')
    finally:
        _start_again(site)
    wait_text(carol, "Uploaded 1 of 1 files.", "#flash")
    sent = carol.execute_script("return window.__sent")
    assert size <= sent < size * 1.5
    assert hashlib.sha256(_content(site, site.id("Restart"), "restart.bin")).digest() == \
        hashlib.sha256(path.read_bytes()).digest()


def test_reload_and_choose_again_resumes_from_the_server_offset(
        site: RestSite, carol: Any, tmp_path: Path) -> None:
    size = 20 * MiB
    path = _data(tmp_path, "resume.bin", size)
    _open(carol, site, "Resume")
    carol.execute_script(NETWORK, 2, False)  # the connection drops after two chunks
    find(carol, "#upload-files").send_keys(str(path))
    _wait_state(carol, "resume.bin", "retrying")
    before = carol.execute_script("return window.__sent")
    assert before == 10 * MiB
    [pending] = [u for u in _uploads(site) if u["name"] == "resume.bin"]
    assert pending["received"] == before

    carol.refresh()  # the page is gone; the upload id is remembered
    heading(carol, "Resume")
    wait_text(carol, "resume.bin (21 MB) 10 MB received", "#upload-pending")
    screen(carol, "upload-pending")
    carol.execute_script(NETWORK, 1e9, False)  # counting only
    find(carol, "#upload-files").send_keys(str(path))
    wait_text(carol, "Uploaded 1 of 1 files.", "#flash")
    assert not carol.find_elements(By.ID, "upload-pending")
    row = find(carol, '.upload-row[data-name="resume.bin"]')
    assert "resumed at 10 MB" in str(row.get_attribute("textContent"))
    after = carol.execute_script("return window.__sent")
    assert after == size - before
    assert before + after < size * 1.5
    assert hashlib.sha256(_content(site, site.id("Resume"), "resume.bin")).digest() == \
        hashlib.sha256(path.read_bytes()).digest()
    assert not [u for u in _uploads(site) if u["name"] == "resume.bin"]


def test_narrow_screen_and_clean_console(site: RestSite, carol: Any) -> None:
    # Where carol may only read, there is nothing to upload with.
    carol.get(f"{site.server.url}/user/alice/Public")
    heading(carol, "Public")
    assert not carol.find_elements(By.CSS_SELECTOR, "section.upload, #upload-files")
    carol.set_window_size(390, 844)
    try:
        _open(carol, site, "Tree")
        carol.execute_script(NETWORK, 0, False)  # its one chunk is lost: shown as such
        carol.execute_script("""
            const dt = new DataTransfer();
            dt.items.add(new File(["x".repeat(6e6)], "a rather long file name, on a phone.txt"));
            document.getElementById("dropzone").dispatchEvent(new DragEvent("drop",
              {dataTransfer: dt, bubbles: true, cancelable: true}));""")
        _wait_state(carol, "a rather long file name, on a phone.txt", "retrying")
        panel = find(carol, "section.upload")
        assert panel.size["width"] <= 390
        assert carol.execute_script(
            "return document.documentElement.scrollWidth") <= 390
        screen(carol, "upload-narrow")
    finally:
        carol.set_window_size(1280, 900)
    entries = console(carol)
    assert not csp_violations(entries)
    assert not script_errors(entries)
