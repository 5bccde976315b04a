"""Bad input gets the right status and changes nothing."""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from joist.core.errors import ALL_ERRORS
from joist.gateways.webdav import errors as dav_errors
from tests.gateways.webdav.conftest import DavSite
from tests.gateways.webdav.davclient import Dav
from tests.world import A_TXT, PASSWORD

DATA = "/user/alice/Private/data"


def raw_request(site: DavSite, method: str, target: str, headers: dict[str, str] | None = None,
                body: bytes = b"") -> tuple[int, bytes]:
    """One request sent byte for byte (clients normalize what we want to send)."""
    parts = urlsplit(site.base)
    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}",
             f"Authorization: Basic {auth}", f"Content-Length: {len(body)}",
             "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


def listing(alice: Dav) -> list[str]:
    return sorted(alice.responses(f"{DATA}/"))


def test_every_core_error_has_a_status() -> None:
    assert set(ALL_ERRORS) <= set(dav_errors.STATUS)
    for cls in ALL_ERRORS:
        error = dav_errors.dav_error(cls("boom") if cls is not dav_errors.ThrottledError
                                     else cls("slow down", retry_after=3))
        assert error.value == dav_errors.STATUS[cls]


def test_server_failures_say_nothing_of_their_cause() -> None:
    error = dav_errors.dav_error(dav_errors.StorageError("/secret/path exploded"), "rid1")
    assert error.value == 500
    assert "secret" not in str(error.context_info) and "rid1" in str(error.context_info)
    unexpected = dav_errors.dav_error(KeyError("password=hunter2"), "rid2")
    assert unexpected.value == 500 and "hunter2" not in str(unexpected.context_info)


@pytest.mark.parametrize("target, expected", [
    ("/dav/user/alice/Private/data/../data/a.txt", 400),
    ("/dav/user/alice/Private/%2e%2e/Private/data/a.txt", 400),
    ("/dav/user/alice/./Private/data/a.txt", 400),
    ("/dav/user/alice/Private/data%2Fa.txt", 400),
    ("/dav/nowhere/at/all", 404),
    ("/dav/user/alice/Private/data/a.txt/inside", 404),
])
def test_odd_paths(site: DavSite, dav: Callable[..., Dav], target: str, expected: int) -> None:
    alice = dav("alice")
    before = listing(alice)
    for method in ("GET", "DELETE"):
        status, raw = raw_request(site, method, target)
        assert status == expected, (method, target, raw[:300])
        assert b"Traceback" not in raw
    assert listing(alice) == before
    assert alice.request("GET", f"{DATA}/a.txt").content == A_TXT


def test_invalid_xml_bodies(site: DavSite, dav: Callable[..., Dav]) -> None:
    alice = dav("alice")
    before = listing(alice)
    for method, body in (("PROPFIND", b"<not-xml"), ("PROPFIND", b"<a:b xmlns:c='x'/>"),
                         ("PROPPATCH", b"<D:propertyupdate xmlns:D='DAV:'><D:set>"),
                         ("LOCK", b"<?xml version='1.0'?><oops/>"),
                         ("PROPFIND", b"<!DOCTYPE x [<!ENTITY a 'aaaa'>]><x>&a;</x>")):
        resp = alice.request(method, f"{DATA}/a.txt", data=body, headers={"Depth": "0"})
        assert resp.status_code == 400, (method, body, resp.status_code)
        assert "Traceback" not in resp.text
    assert listing(alice) == before


def test_put_onto_a_folder_and_into_a_file(dav: Callable[..., Dav]) -> None:
    alice = dav("alice")
    before = listing(alice)
    assert alice.request("PUT", f"{DATA}/deep", data=b"x").status_code == 405
    assert alice.request("PUT", f"{DATA}/a.txt/x", data=b"x").status_code == 409
    assert alice.request("PUT", f"{DATA}/nope/x", data=b"x").status_code == 409
    assert alice.request("MKCOL", f"{DATA}/deep").status_code == 405
    assert alice.request("MKCOL", f"{DATA}/multi/sub").status_code == 403
    assert listing(alice) == before


def test_move_onto_itself_or_below_itself(dav: Callable[..., Dav]) -> None:
    alice = dav("alice")
    before = listing(alice)
    for src, dst in ((f"{DATA}/deep", f"{DATA}/deep"), (f"{DATA}/deep", f"{DATA}/deep/d1/x"),
                     (f"{DATA}/a.txt", f"{DATA}/a.txt")):
        for method in ("MOVE", "COPY"):
            resp = alice.request(method, src, headers={"Destination": alice.url(dst)})
            assert resp.status_code == 403, (method, src, dst, resp.status_code)
    resp = alice.request("MOVE", f"{DATA}/a.txt", headers={
        "Destination": alice.url(f"{DATA}/deep"), "Overwrite": "F"})
    assert resp.status_code == 412
    resp = alice.request("MOVE", f"{DATA}/a.txt", headers={
        "Destination": "http://elsewhere.example" + alice.url(f"{DATA}/b.txt")[len(
            alice.base.split("/dav")[0]):]})
    assert resp.status_code == 502
    assert listing(alice) == before


def test_unknown_lock_tokens(dav: Callable[..., Dav]) -> None:
    alice = dav("alice")
    token = "opaquelocktoken:00000000-0000-0000-0000-000000000000"
    resp = alice.request("PUT", f"{DATA}/a.txt", data=b"changed",
                         headers={"If": f"(<{token}>)"})
    assert resp.status_code == 412
    resp = alice.request("UNLOCK", f"{DATA}/a.txt", headers={"Lock-Token": f"<{token}>"})
    assert resp.status_code == 409
    resp = alice.request("LOCK", f"{DATA}/a.txt", headers={"If": f"(<{token}>)",
                                                             "Timeout": "Second-60"})
    assert resp.status_code in (400, 412)
    assert alice.request("GET", f"{DATA}/a.txt").content == A_TXT


def test_depth_infinity_is_refused(dav: Callable[..., Dav]) -> None:
    alice = dav("alice")
    for headers in ({"Depth": "infinity"}, {}):
        resp = alice.request("PROPFIND", "/user/alice", headers=headers)
        assert resp.status_code == 403
        assert "propfind-finite-depth" in resp.text
    assert alice.request("PROPFIND", "/", headers={"Depth": "2"}).status_code == 400
