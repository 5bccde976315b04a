"""Bad input and rude clients: every core error has a row in the one mapping,
malformed requests get a clean 4xx, oversized headers are refused, and clients
that vanish mid-upload or mid-download leave the store consistent."""

from __future__ import annotations

import os
import socket
import time

import pytest
import requests

from joist.core import errors
from joist.gateways.http.errors import STATUS, status_for
from tests.gateways.http.restsite import RestSite, open_fds
from tests.s3env import local_blobs_only


def test_every_core_error_has_a_row() -> None:
    assert set(errors.ALL_ERRORS) <= set(STATUS)
    for cls in errors.ALL_ERRORS:
        status, kind = STATUS[cls]
        assert 400 <= status < 600 and kind in ("rest", "validation", "access", "girder")


@pytest.mark.parametrize("cls", errors.ALL_ERRORS)
def test_status_per_class_and_caller(cls: type[errors.CoreError]) -> None:
    exc = cls("x")
    anonymous, _ = status_for(exc, authenticated=False)
    known, kind = status_for(exc, authenticated=True)
    if issubclass(cls, errors.ThrottledError):
        assert anonymous == known == 429
    elif issubclass(cls, errors.AuthenticationError):
        assert anonymous == known == 401
    elif kind == "access":
        assert (anonymous, known) == (401, 403)
    else:
        assert anonymous == known
    if issubclass(cls, errors.NotFoundError | errors.ValidationError):
        assert known == 400  # Girder answers not-found with 400 (the CLI relies on it)


# ---------------------------------------------------------------- raw HTTP

def _raw(site: RestSite, data: bytes, read: bool = True, timeout: float = 10) -> bytes:
    host, port = site.server.http_address
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        if not read:
            return b""
        chunks = []
        while True:
            block = sock.recv(65536)
            if not block:
                break
            chunks.append(block)
    return b"".join(chunks)


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def _still_serving(site: RestSite) -> None:
    assert site.get("system/version", timeout=5).status_code == 200


def test_oversized_headers_get_a_clean_4xx(ro_site: RestSite) -> None:
    huge = "x" * (200 * 1024)
    reply = ro_site.get("system/version", headers={"X-Big": huge})
    assert 400 <= reply.status_code < 500
    many = {f"X-H{i}": "y" * 1000 for i in range(100)}
    assert 400 <= ro_site.get("system/version", headers=many).status_code < 500
    long_url = ro_site.get("system/version?pad=" + "z" * (200 * 1024))
    assert 400 <= long_url.status_code < 500
    token = ro_site.get("system/version", headers={"Girder-Token": "t" * 5000})
    assert token.status_code == 200  # big but sane headers still pass
    _still_serving(ro_site)


@pytest.mark.parametrize("request_bytes", [
    b"GET /api/v1/system/version HTTP/1.1\r\nHost: x\r\nBad header line\r\n\r\n",
    b"POST /api/v1/user/authentication HTTP/1.1\r\nHost: x\r\nContent-Length: -4\r\n"
    b"Connection: close\r\n\r\n",
    b"POST /api/v1/api_key/token HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n"
    b"Connection: close\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"GET /api/v1/item/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /api/v1/item?folderId=%ff%fe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
])
def test_malformed_requests_get_a_clean_4xx(ro_site: RestSite, request_bytes: bytes) -> None:
    response = _raw(ro_site, request_bytes)
    assert 400 <= _status(response) < 500, response[:200]
    assert b"Traceback" not in response
    _still_serving(ro_site)


def test_bodies_that_are_too_big_for_json(site: RestSite) -> None:
    item = site.id("multi")
    huge = b'{"a": "' + b"x" * (2 << 20) + b'"}'
    reply = site.put(f"item/{item}/metadata", "alice", data=huge)
    assert reply.status_code == 413 and reply.json()["type"] == "rest"
    assert site.get(f"item/{item}", "alice").json()["meta"] == {}


def test_wrong_types_everywhere_are_400(ro_site: RestSite) -> None:
    cases = [("GET", "folder", {"parentType": "folder", "parentId": "nope"}),
             ("GET", "folder", {"parentType": "bogus", "parentId": ro_site.id("data")}),
             ("GET", "item", {"folderId": ro_site.id("data"), "offset": "1.5"}),
             ("GET", "resource/search", {"q": "a", "types": '{"a": 1}'}),
             ("GET", "resource/lookup", {}),
             ("GET", f"file/{ro_site.id('data')}/download", {}),
             ("PUT", f"folder/{ro_site.id('data')}/access", {"access": "{"}),
             ("POST", "file/chunk", {"uploadId": "nope", "offset": 0}),
             ("GET", "file/offset", {"uploadId": "5" * 24})]
    for method, path, params in cases:
        reply = ro_site.call(method, path, "alice", params=params)
        assert reply.status_code == 400, (method, path, reply.text)
        assert set(reply.json()) >= {"message", "type"}


# ---------------------------------------------------------------- rude clients

def test_client_vanishing_mid_upload(site: RestSite) -> None:
    site.app.services.settings.set("core.upload_minimum_chunk_size", 1)
    data = os.urandom(300_000)
    upload = site.post("file", "alice", params={
        "parentType": "folder", "parentId": site.id("public"), "name": "cut.bin",
        "size": len(data)}).json()
    head = (f"POST /api/v1/file/chunk?uploadId={upload['_id']}&offset=0 HTTP/1.1\r\n"
            f"Host: x\r\nGirder-Token: {site.token('alice')}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    _raw(site, head + data[:100_000], read=False)  # ... and hang up
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the server notices the hang-up
        offset = site.get("file/offset", "alice", params={"uploadId": upload["_id"]})
        if offset.status_code == 200 and offset.json() == {"offset": 0}:
            break
        time.sleep(0.05)
    assert offset.json() == {"offset": 0}  # the broken chunk was rolled back
    assert site.get("item", "alice", params={"folderId": site.id("public"),
                                             "name": "cut.bin"}).json() == []
    assert site.check() == []
    done = site.post("file/chunk", "alice", params={"uploadId": upload["_id"], "offset": 0},
                     data=data)
    assert done.status_code == 200 and done.json()["size"] == len(data)
    assert site.get(f"file/{done.json()['_id']}/download", "alice").content == data
    assert site.check() == []


def test_client_vanishing_mid_one_shot_upload(site: RestSite) -> None:
    head = (f"POST /api/v1/file?parentType=folder&parentId={site.id('public')}"
            f"&name=gone.bin&size=500000 HTTP/1.1\r\nHost: x\r\n"
            f"Girder-Token: {site.token('alice')}\r\nContent-Length: 500000\r\n\r\n").encode()
    _raw(site, head + b"x" * 1000, read=False)
    _still_serving(site)
    assert site.get("item", "alice", params={"folderId": site.id("public"),
                                             "name": "gone.bin"}).json() == []
    assert site.check() == []


def test_client_vanishing_mid_download_leaks_nothing(site: RestSite) -> None:
    big = site.upload("alice", site.id("public"), "big.bin", os.urandom(8 << 20))
    request = (f"GET /api/v1/file/{big['_id']}/download HTTP/1.1\r\nHost: x\r\n"
               f"Girder-Token: {site.token('alice')}\r\n\r\n").encode()
    zip_request = (f"GET /api/v1/folder/{site.id('public')}/download HTTP/1.1\r\nHost: x\r\n"
                   f"Girder-Token: {site.token('alice')}\r\n\r\n").encode()
    host, port = site.server.http_address
    for raw in (request, zip_request):  # warm up: every path opened once
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(raw)
            sock.recv(65536)
    _settle(site)
    baseline = open_fds()
    for _ in range(10):
        for raw in (request, zip_request):
            with socket.create_connection((host, port), timeout=10) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.sendall(raw)
                assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    _still_serving(site)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(open_fds() - baseline) > 0:
        time.sleep(0.05)
    assert open_fds() - baseline == set()
    assert site.check() == []


def _settle(site: RestSite) -> None:
    """Let the server close the sockets of finished requests."""
    deadline = time.monotonic() + 5
    last = -1
    while time.monotonic() < deadline:
        now = len(open_fds())
        if now == last:
            return
        last = now
        time.sleep(0.2)


def test_no_traceback_ever_reaches_the_client(site: RestSite) -> None:
    broken = {"name": "broken", "lowerName": "broken", "size": 0, "folderId": "not an id"}
    site.app.store.items.insert_one(broken)
    for path in (f"item/{broken['_id']}", f"item/{broken['_id']}/download",
                 f"item/{broken['_id']}/files"):
        reply = requests.get(site.url(path), headers={"Girder-Token": site.token("alice")},
                             timeout=10)
        assert reply.status_code in (400, 500)
        assert "Traceback" not in reply.text and 'File "' not in reply.text


@local_blobs_only
def test_missing_bytes_fail_cleanly_before_and_during_streaming(
        site: RestSite, caplog: pytest.LogCaptureFixture) -> None:
    doc = site.upload("alice", site.id("data"), "lost.bin", os.urandom(50_000))
    record = site.app.store.get("file", __import__("bson").ObjectId(doc["_id"]))
    path = site.app.services.assetstores.for_file(record).local_path(record)
    os.unlink(path)  # the bytes vanish behind the store's back
    single = site.get(f"file/{doc['_id']}/download", "alice")
    assert single.status_code == 500 and single.json()["type"] == "girder"
    assert "Traceback" not in single.text and str(path) not in single.text
    assert single.json()["uid"] == single.headers["Girder-Request-Uid"]
    with caplog.at_level("ERROR", logger="joist.http"), \
            pytest.raises(requests.exceptions.ChunkedEncodingError):
        site.get(f"folder/{site.id('data')}/download", "alice").content  # noqa: B018
    assert "failed while streaming" in caplog.text
    _still_serving(site)
