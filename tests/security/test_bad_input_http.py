"""Bad input the fuzzers found, pinned down (issue 12, item 6): stored values
that reach HTTP headers, sizes no assetstore holds, and wsgidav's slips."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from joist.core.errors import ValidationError
from joist.core.validation import validate_mime_type
from tests.gateways.http.restsite import RestSite, running_site
from tests.security.fuzzkit import send
from tests.world import A_TXT, PASSWORD

DATA = "/user/alice/Private/data"
ALICE = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestSite]:
    with running_site(tmp_path_factory.mktemp("badinput") / "data",
                      **{"webdav.enabled": True}) as rest:
        yield rest


def test_mime_type_rule() -> None:
    assert validate_mime_type(None) is None
    assert validate_mime_type(" text/plain; charset=utf-8 ") == "text/plain; charset=utf-8"
    for bad in ("a\r\nX-Injected: 1", "\U0001f600/x", "t\x00/x", "\u00e9/x", "a" * 256, 5):
        with pytest.raises(ValidationError):
            validate_mime_type(bad)


@pytest.mark.parametrize("mime", ["a\r\nX-Injected: 1", "\U0001f600/x", "text/\x01"])
def test_a_mime_type_cannot_reach_the_headers(site: RestSite, mime: str) -> None:
    """It once could: a stored type with a line break injected headers into
    every download of the file, and one outside latin-1 made them a 500."""
    file = site.find_file("data", "a.txt")
    reply = site.put(f"file/{file['_id']}", "alice", params={"mimeType": mime})
    assert reply.status_code == 400 and reply.json()["field"] == "mimeType"
    start = site.post("file", "alice", params={
        "parentType": "folder", "parentId": site.id("data"), "name": "n.txt", "size": 1,
        "mimeType": mime})
    assert start.status_code == 400 and start.json()["field"] == "mimeType"
    download = site.get(f"file/{file['_id']}/download", "alice")
    assert download.status_code == 200 and download.content == A_TXT
    assert "X-Injected" not in download.headers


def test_webdav_put_drops_a_bad_content_type(site: RestSite) -> None:
    """A path-based client's type is a hint: a bad one is dropped (the name
    decides), the upload goes through."""
    parts = urlsplit(site.server.url)
    reply = send(parts.hostname or "", parts.port or 80, "PUT", f"/dav{DATA}/hint.txt",
                 {"Authorization": ALICE, "Content-Type": "text/\x01x"}, b"hello")
    assert reply.status in (201, 204), reply.body
    got = requests.get(f"{site.server.url}/dav{DATA}/hint.txt", auth=("alice", PASSWORD),
                       timeout=30)
    assert got.content == b"hello" and got.headers["Content-Type"] == "text/plain"


@pytest.mark.parametrize("size", [2 ** 63, 10 ** 30, 2 ** 62])
def test_sizes_no_assetstore_holds_are_400(site: RestSite, size: int) -> None:
    """Not 507: the request can never succeed, whatever the disk's state."""
    _assetstore, adapter = site.app.assetstores.current()
    if size < 2 ** 63 and adapter.capacity().total is None:
        pytest.skip("this assetstore (S3) does not say its capacity")
    reply = site.post("file", "alice", params={
        "parentType": "folder", "parentId": site.id("data"), "name": "big.bin",
        "size": size})
    assert reply.status_code == 400 and reply.json()["field"] == "size", reply.text
    file = site.find_file("data", "a.txt")
    again = site.put(f"file/{file['_id']}/contents", "alice", params={"size": size})
    assert again.status_code == 400, again.text


def test_webdav_collection_quirks(site: RestSite) -> None:
    parts = urlsplit(site.server.url)
    host, port = parts.hostname or "", parts.port or 80
    with_body = send(host, port, "GET", f"/dav{DATA}/", {"Authorization": ALICE}, b"x")
    assert with_body.status == 415, with_body.body
    redirect = send(host, port, "GET", f"/dav{DATA}", {"Authorization": ALICE})
    assert redirect.status == 301
    assert redirect.headers["Location"].endswith(f"/dav{DATA}/")  # the mount prefix kept
