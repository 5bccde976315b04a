"""Class 2 locks kept in the metadata store: two servers (two Apps, each with
its own engine, as two processes would have) on one store agree on them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateways.webdav.conftest import DavSite, start_site
from tests.gateways.webdav.davclient import Dav
from tests.world import A_TXT, PASSWORD, build_world

DATA = "/user/alice/Private/data"
LOCK_BODY = (b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
             b"</D:lockscope><D:locktype><D:write/></D:locktype>"
             b"<D:owner>tester</D:owner></D:lockinfo>")


@pytest.fixture
def two_sites(tmp_path: Path) -> Iterator[tuple[DavSite, DavSite]]:
    first_app, first = start_site(tmp_path / "data")
    try:
        world = build_world(first_app)
        second_app, second = start_site(tmp_path / "data", like=first_app)
        try:
            yield (DavSite(first_app, world, first), DavSite(second_app, world, second))
        finally:
            second.stop()
            second_app.close()
    finally:
        first.stop()
        first_app.close()


def lock(client: Dav, path: str, depth: str = "0") -> str:
    resp = client.request("LOCK", path, data=LOCK_BODY,
                          headers={"Depth": depth, "Timeout": "Second-600"})
    assert resp.status_code in (200, 201), resp.text
    return resp.headers["Lock-Token"].strip("<>")


def test_a_lock_taken_on_one_server_holds_on_the_other(two_sites) -> None:
    one, two = two_sites
    a1, a2 = Dav(one.base, ("alice", PASSWORD)), Dav(two.base, ("alice", PASSWORD))
    token = lock(a1, f"{DATA}/a.txt")
    assert a2.request("PUT", f"{DATA}/a.txt", data=b"no").status_code == 423
    assert a2.request("DELETE", f"{DATA}/a.txt").status_code == 423
    conflict = a2.request("LOCK", f"{DATA}/a.txt", data=LOCK_BODY, headers={"Depth": "0"})
    assert conflict.status_code == 423
    discovered = a2.propfind(f"{DATA}/a.txt", "0").text
    assert token in discovered and "tester" in discovered
    assert a2.request("GET", f"{DATA}/a.txt").content == A_TXT
    ok = a2.request("PUT", f"{DATA}/a.txt", data=b"yes", headers={"If": f"(<{token}>)"})
    assert ok.status_code == 204
    assert a2.request("UNLOCK", f"{DATA}/a.txt",
                      headers={"Lock-Token": f"<{token}>"}).status_code == 204
    assert a1.request("PUT", f"{DATA}/a.txt", data=b"free").status_code == 204


def test_depth_infinity_lock_covers_members(site: DavSite) -> None:
    alice = Dav(site.base, ("alice", PASSWORD))
    token = lock(alice, f"{DATA}/deep", depth="infinity")
    assert alice.request("PUT", f"{DATA}/deep/d1/new.txt", data=b"x").status_code == 423
    assert alice.request("DELETE", f"{DATA}/deep/d1").status_code == 423
    assert alice.request("PUT", f"{DATA}/deep/d1/new.txt", data=b"x",
                         headers={"If": f"(<{token}>)"}).status_code == 201
    # A listing of the parent shows the lock on the member (prefetched in one query).
    listing = alice.propfind(f"{DATA}/", "1").text
    assert listing.count(token) == 1
    # Another user holds no token: refused. The owner deletes; the lock goes too.
    assert alice.request("DELETE", f"{DATA}/deep", headers={"If": f"(<{token}>)"}
                         ).status_code == 204
    assert site.app.services.locks.find("/", include_children=True) == []


def test_locks_need_write_access(site: DavSite) -> None:
    carol = Dav(site.base, ("carol", PASSWORD))
    resp = carol.request("LOCK", "/collection/shared/docs/report.txt", data=LOCK_BODY)
    assert resp.status_code == 403
    anonymous = Dav(site.base)
    resp = anonymous.request("LOCK", "/user/alice/Public/readme.txt", data=LOCK_BODY)
    assert resp.status_code == 401
    bob = Dav(site.base, ("bobby", PASSWORD))
    # Invisible answers as missing: the parent "is not a collection" (409).
    assert bob.request("LOCK", f"{DATA}/a.txt", data=LOCK_BODY).status_code == 409
    assert bob.request("LOCK", "/user/alice/nope/a.txt", data=LOCK_BODY).status_code == 409
    assert site.app.services.locks.find("/", include_children=True) == []


def test_lock_on_unmapped_url_creates_an_empty_file(site: DavSite) -> None:
    alice = Dav(site.base, ("alice", PASSWORD))
    token = lock(alice, f"{DATA}/locked-new.txt")
    assert alice.request("GET", f"{DATA}/locked-new.txt").content == b""
    assert re.match(r"opaquelocktoken:[0-9a-f-]{36}$", token)
    assert alice.request("UNLOCK", f"{DATA}/locked-new.txt",
                         headers={"Lock-Token": f"<{token}>"}).status_code == 204
