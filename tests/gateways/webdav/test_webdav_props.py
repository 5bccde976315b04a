"""Properties: item metadata as dead properties in the Joist namespace
(PROPPATCH writes it), other dead properties, quota from statfs."""

from __future__ import annotations

from collections.abc import Callable

from joist.gateways.webdav.props import decode_key, encode_key
from tests.gateways.webdav.conftest import DavSite
from tests.gateways.webdav.davclient import DAV, Dav, prop
from tests.s3env import local_blobs_only

DATA = "/user/alice/Private/data"
J = "{urn:joist:meta}"


def proppatch(alice: Dav, path: str, inner: str) -> int:
    body = ('<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:j="urn:joist:meta" '
            f'xmlns:x="http://example.org/x">{inner}</D:propertyupdate>')
    resp = alice.request("PROPPATCH", path, data=body.encode())
    assert resp.status_code == 207, resp.text
    return 200 if "HTTP/1.1 200" in resp.text and "HTTP/1.1 4" not in resp.text else 400


def meta_of(site: DavSite, path: str) -> dict:
    return site.app.hierarchy.view(site.world.principal("alice")).metadata(path)


def test_metadata_shows_and_is_written(site: DavSite, dav: Callable[..., Dav]) -> None:
    alice = dav("alice")
    view = site.app.hierarchy.view(site.world.principal("alice"))
    view.set_metadata(f"{DATA}/a.txt", {"species": "oak", "count": 3, "a key": [1, 2]})
    entry = next(iter(alice.responses(f"{DATA}/a.txt", "0").values()))
    assert prop(entry, f"{J}species").text == "oak"
    count = prop(entry, f"{J}count")
    assert count.text == "3" and count.get(f"{J}type") == "json"
    assert prop(entry, f"{J}{encode_key('a key')}").text == "[1, 2]"

    assert proppatch(alice, f"{DATA}/a.txt",
                     "<D:set><D:prop><j:species>elm</j:species>"
                     '<j:size j:type="json">{"h": 12}</j:size></D:prop></D:set>'
                     "<D:remove><D:prop><j:count/></D:prop></D:remove>") == 200
    assert meta_of(site, f"{DATA}/a.txt") == {"species": "elm", "size": {"h": 12},
                                             "a key": [1, 2]}
    # In a depth-1 listing too, for folders as well as files.
    assert proppatch(alice, f"{DATA}/deep", "<D:set><D:prop><j:kind>dir</j:kind>"
                                            "</D:prop></D:set>") == 200
    listed = alice.responses(f"{DATA}/", "1", b'<?xml version="1.0"?><D:propfind '
                             b'xmlns:D="DAV:"><D:allprop/></D:propfind>')
    assert prop(listed[f"/dav{DATA}/deep/"], f"{J}kind").text == "dir"


def test_invalid_metadata_changes_nothing(site: DavSite, dav: Callable[..., Dav]) -> None:
    alice = dav("alice")
    before = meta_of(site, f"{DATA}/a.txt")
    # Girder refuses keys with a dot: the whole PROPPATCH fails, nothing is written.
    assert proppatch(alice, f"{DATA}/a.txt",
                     "<D:set><D:prop><j:good>1</j:good><j:bad.key>2</j:bad.key></D:prop>"
                     "</D:set>") == 400
    assert meta_of(site, f"{DATA}/a.txt") == before
    assert proppatch(alice, f"{DATA}/a.txt", '<D:set><D:prop><j:x j:type="json">{nope'
                     "</j:x></D:prop></D:set>") == 400
    assert proppatch(alice, f"{DATA}/a.txt",
                     "<D:set><D:prop><D:getetag>x</D:getetag></D:prop></D:set>") == 400
    assert meta_of(site, f"{DATA}/a.txt") == before


def test_dead_properties_persist_and_move(site: DavSite, dav: Callable[..., Dav]) -> None:
    alice = dav("alice")
    assert proppatch(alice, f"{DATA}/a.txt", "<D:set><D:prop><x:colour>blue<x:deep>1</x:deep>"
                     "</x:colour></D:prop></D:set>") == 200
    moved = alice.request("MOVE", f"{DATA}/a.txt",
                          headers={"Destination": alice.url(f"{DATA}/deep/b.txt")})
    assert moved.status_code == 201
    entry = next(iter(alice.responses(f"{DATA}/deep/b.txt", "0").values()))
    colour = prop(entry, "{http://example.org/x}colour")
    assert colour is not None and colour.text == "blue"
    assert colour.find("{http://example.org/x}deep").text == "1"


@local_blobs_only
def test_quota_properties(site: DavSite, dav: Callable[..., Dav]) -> None:
    alice = dav("alice")
    body = (b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>'
            b"<D:quota-available-bytes/><D:quota-used-bytes/></D:prop></D:propfind>")
    entry = next(iter(alice.responses(DATA, "0", body).values()))
    stats = site.app.hierarchy.view(site.world.principal("alice")).statfs()
    available = int(prop(entry, f"{DAV}quota-available-bytes").text)
    assert abs(available - stats.free) < 256 << 20  # the disk moves a little meanwhile
    assert int(prop(entry, f"{DAV}quota-used-bytes").text) >= 0
    allprop = next(iter(alice.responses(DATA, "0").values()))
    assert prop(allprop, f"{DAV}quota-available-bytes") is None  # RFC 4331: not in allprop


def test_propname_lists_joist_properties(site: DavSite, dav: Callable[..., Dav]) -> None:
    site.app.hierarchy.view(site.world.principal("alice")).set_metadata(
        f"{DATA}/a.txt", {"tag": "t"})
    alice = dav("alice")
    body = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
    entry = next(iter(alice.responses(f"{DATA}/a.txt", "0", body).values()))
    assert prop(entry, f"{J}tag") is not None
    assert prop(entry, f"{DAV}getcontentlength") is not None


def test_key_codec_round_trips() -> None:
    for key in ("plain", "a key", "1st", "_x0041_", "naïve", "emoji\U0001F600", "a:b"):
        name = encode_key(key)
        assert decode_key(name) == key
        assert " " not in name and ":" not in name
