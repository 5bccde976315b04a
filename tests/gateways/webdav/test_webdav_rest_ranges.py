"""Range requests answer the same on REST and WebDAV (one parser, in core):
status, Content-Range, length, body or multipart parts, for a table of headers
that includes the ones that once differed (issue 12, item 8)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests import byteranges
from tests.gateways.webdav.conftest import start_site
from tests.world import A_TXT, PASSWORD, build_world, upload_bytes

SIZE = len(A_TXT)
HEADERS = [
    # from the issue: invalid ones are ignored, bytes=-0 is unsatisfiable
    "bytes=5-2", "bytes=-0", "bytes=0x10-0x20", "items=0-5", "bytes=-1-5",
    # plain ones
    "bytes=0-0", "bytes=-5", "bytes=5-", "bytes=0-9", "bytes=10-99999", f"bytes={SIZE - 1}-",
    f"bytes={SIZE}-", "bytes=99999-", "bytes=-99999", "bytes=0-", "BYTES=3-4",
    # several ranges: multipart/byteranges on both, or one part once coalesced
    "bytes=0-1,5-6", "bytes=5-6,0-1", "bytes=0-3,2-5", "bytes=0-1,2-3", "bytes=-3,0-2",
    "bytes=1-2,99999-", "bytes=,1-2,", "bytes=0-0,2-2,4-4,6-6",
    # other malformed ones
    "bytes=", "bytes=-", "bytes=1-2,x", "bytes 0-5", "bytes=1-2;3", "bytes=" + "9" * 40 + "-",
]


class Pair:
    """One file reachable by REST id and WebDAV path, for one logged-in user."""

    def __init__(self, base: str, file_id: str, dav_path: str) -> None:
        self.rest = requests.Session()
        token = self.rest.get(base + "/api/v1/user/authentication", auth=("alice", PASSWORD),
                              timeout=30).json()["authToken"]["token"]
        self.rest.headers["Girder-Token"] = token
        self.rest_url = f"{base}/api/v1/file/{file_id}/download"
        self.dav = requests.Session()
        self.dav.auth = ("alice", PASSWORD)
        self.dav_url = base + "/dav" + dav_path

    def both(self, headers: dict[str, str], method: str = "GET"
             ) -> tuple[requests.Response, requests.Response]:
        rest = self.rest.request(method, self.rest_url, headers=headers, timeout=30,
                                 allow_redirects=False)
        if rest.status_code == 303:
            pytest.skip("REST redirects downloads to the assetstore (S3): it answers Range")
        return rest, self.dav.request(method, self.dav_url, headers=headers, timeout=30)

    def close(self) -> None:
        self.rest.close()
        self.dav.close()


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Pair]]:
    app, server = start_site(tmp_path_factory.mktemp("ranges") / "data")
    made: dict[str, Pair] = {}
    try:
        world = build_world(app)
        alice = world.principal("alice")
        upload_bytes(app, alice, "folder", world.docs["data"], "empty.txt", b"")
        for name in ("a.txt", "empty.txt"):
            made[name] = _pair(app, server.url, world.docs["data"], name)
        yield made
    finally:
        for pair in made.values():
            pair.close()
        server.stop()
        app.close()


def _pair(app: Any, base: str, folder: dict[str, Any], name: str) -> Pair:
    item = app.store.items.find_one({"folderId": folder["_id"], "name": name})
    file = app.store.files.find_one({"itemId": item["_id"]})
    return Pair(base, str(file["_id"]), f"/user/alice/Private/data/{name}")


def summary(reply: requests.Response) -> tuple[Any, ...]:
    """What must agree: status, range headers, length, and the bytes (part by
    part for multipart answers, whose boundaries are random)."""
    content_type = reply.headers.get("Content-Type", "")
    if reply.status_code == 206 and content_type.startswith("multipart/byteranges"):
        body: Any = [(r, data) for r, _type, data in
                     byteranges.parts(content_type, reply.content)]
    else:
        body = reply.content
    assert b"Traceback" not in reply.content
    return (reply.status_code, reply.headers.get("Content-Range"),
            reply.headers.get("Accept-Ranges"), body)


@pytest.mark.parametrize("name", ["a.txt", "empty.txt"])
@pytest.mark.parametrize("header", HEADERS)
def test_range_headers_agree(pairs: dict[str, Pair], name: str, header: str) -> None:
    rest, dav = pairs[name].both({"Range": header})
    assert summary(rest) == summary(dav)
    assert rest.status_code in (200, 206, 416)
    assert rest.headers["Content-Length"] == dav.headers["Content-Length"] == \
        str(len(rest.content))
    if rest.status_code == 416:
        size = SIZE if name == "a.txt" else 0
        assert rest.headers["Content-Range"] == f"bytes */{size}"


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=5-2", 200), ("bytes=-0", 416), ("bytes=0x10-0x20", 200), ("items=0-5", 200),
    ("bytes=-1-5", 200), ("bytes=0-0", 206), ("bytes=-5", 206), ("bytes=5-", 206),
    ("bytes=0-1,5-6", 206), (f"bytes={SIZE}-", 416)])
def test_the_issue_headers_follow_rfc_9110(pairs: dict[str, Pair], header: str,
                                           expected: int) -> None:
    _rest, dav = pairs["a.txt"].both({"Range": header})
    assert dav.status_code == expected
    if expected == 200:
        assert dav.content == A_TXT and "Content-Range" not in dav.headers


def test_several_ranges_are_multipart_on_both(pairs: dict[str, Pair]) -> None:
    for reply in pairs["a.txt"].both({"Range": "bytes=5-6,0-1"}):
        assert reply.status_code == 206
        assert [(r, d) for r, _t, d in byteranges.parts(reply.headers["Content-Type"],
                                                         reply.content)] == [
            (f"bytes 5-6/{SIZE}", A_TXT[5:7]), (f"bytes 0-1/{SIZE}", A_TXT[0:2])]


def test_head_agrees(pairs: dict[str, Pair]) -> None:
    for header in ("bytes=0-9", "bytes=-0", "bytes=5-2", "bytes=0-1,5-6"):
        rest, dav = pairs["a.txt"].both({"Range": header}, method="HEAD")
        assert rest.status_code == dav.status_code and rest.content == dav.content == b""
        assert rest.headers.get("Content-Range") == dav.headers.get("Content-Range")
        if not rest.headers.get("Content-Type", "").startswith("multipart/"):
            assert rest.headers["Content-Length"] == dav.headers["Content-Length"]


def test_if_range_agrees(pairs: dict[str, Pair]) -> None:
    pair = pairs["a.txt"]
    rest_full, dav_full = pair.both({})
    assert rest_full.headers["ETag"] == dav_full.headers["ETag"]
    for full in (rest_full, dav_full):
        for if_range, expected in ((full.headers["ETag"], 206), ('"stale"', 200),
                                   ("W/" + full.headers["ETag"], 200),
                                   (full.headers["Last-Modified"], 206),
                                   ("Mon, 01 Jan 2001 00:00:00 GMT", 200), ("junk", 200)):
            rest, dav = pair.both({"Range": "bytes=0-3", "If-Range": if_range})
            assert summary(rest) == summary(dav), if_range
            assert rest.status_code == expected, if_range


def test_the_whole_file_is_unchanged(pairs: dict[str, Pair]) -> None:
    rest, dav = pairs["a.txt"].both({})
    assert rest.status_code == dav.status_code == 200
    assert rest.content == dav.content == A_TXT
