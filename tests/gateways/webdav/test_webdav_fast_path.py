"""The fast path (GET/HEAD of a file and PROPFIND without wsgidav's request
stack, ``gateways/webdav/fast.py``) answers byte for byte as wsgidav's stack
does, and a depth-1 ``allprop`` rendered from the listing's nodes is the one
rendered from a resource per member.

Each request goes to one real server twice: with the fast path, then with it
switched off (everything through wsgidav, as before it existed)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from joist.gateways.webdav import propfind
from joist.gateways.webdav.app import RequestGuard
from tests.gateways.webdav.conftest import DavSite
from tests.gateways.webdav.test_webdav_locks import lock
from tests.world import PASSWORD

DATA = "/user/alice/Private/data"
ALICE = ("alice", PASSWORD)
NAMED = (b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getlastmodified/>'
         b"<D:getcontentlength/><D:resourcetype/><D:getetag/><D:nosuch/></D:prop></D:propfind>")
LOCKS = (b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/>'
         b"<D:supportedlock/><D:displayname/><D:creationdate/><D:getcontenttype/>"
         b"</D:prop></D:propfind>")
OTHER = (b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:j="urn:joist:meta">'
         b"<D:prop><j:n/><D:getcontentlength/></D:prop></D:propfind>")
# Headers that differ between any two answers, fast or not.
VOLATILE = {"date", "x-request-id"}


def _guard(site: DavSite) -> RequestGuard:
    for prefix, application in site.server.wsgi.routes:
        if prefix == "/dav":
            assert isinstance(application, RequestGuard)
            return application
    raise AssertionError("no /dav route")


class Counting:
    """Counts the requests that reach wsgidav's application."""

    def __init__(self, dav: Any) -> None:
        self.dav = dav
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.dav(environ, start_response)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dav, name)


@pytest.fixture
def guarded(site: DavSite) -> Iterator[tuple[RequestGuard, Counting]]:
    guard = _guard(site)
    counting = Counting(guard.dav)
    guard.dav = counting  # type: ignore[assignment]
    try:
        yield guard, counting
    finally:
        guard.dav = counting.dav
        guard.fast.enabled = True


def _timeless(body: bytes) -> bytes:
    """A lock's remaining seconds tick between two requests."""
    return re.sub(rb"Second-\d+", b"Second-N", body)


def _answer(resp: requests.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k.lower(), v) for k, v in resp.headers.items()
                     if k.lower() not in VOLATILE)
    return resp.status_code, headers, _timeless(resp.content)


def _both(guard: RequestGuard, site: DavSite, method: str, path: str,
          **kw: Any) -> tuple[Any, Any]:
    answers = []
    for enabled in (True, False):
        guard.fast.enabled = enabled
        resp = requests.request(method, site.base + path, timeout=60, **kw)
        answers.append(_answer(resp))
    guard.fast.enabled = True
    return answers[0], answers[1]


def _basic(login: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", f"{DATA}/a.txt", {"auth": ALICE}),
    ("HEAD", f"{DATA}/a.txt", {"auth": ALICE}),
    ("GET", f"{DATA}/a.txt", {"auth": ALICE, "headers": {"Range": "bytes=5-20"}}),
    ("GET", f"{DATA}/a.txt", {"auth": ALICE, "headers": {"Range": "bytes=5000-"}}),
    ("GET", f"{DATA}/multi/x.bin", {"auth": ALICE}),
    ("GET", f"{DATA}/nope.txt", {"auth": ALICE}),
    ("GET", f"{DATA}/a.txt/more", {"auth": ALICE}),
    ("GET", f"{DATA}/", {"auth": ALICE}),
    ("GET", f"{DATA}/a.txt", {}),                                  # no credentials
    ("GET", f"{DATA}/a.txt", {"auth": ("alice", "wrong")}),
    ("GET", f"{DATA}/a.txt", {"auth": ("bobby", PASSWORD)}),         # not his: 404
    ("GET", "/user/alice/Public/readme.txt", {}),
    ("GET", f"{DATA}/a.txt", {"headers": {"Authorization": "Basic !!!"}}),
    ("GET", f"{DATA}/a.txt", {"headers": {"Authorization": 'Digest username="alice"'}}),
    ("GET", f"{DATA}/a.txt?logout", {"auth": ALICE}),
    ("GET", f"{DATA}/a.txt", {"headers": {**_basic("alice", PASSWORD), "Depth": "1"}}),
    ("PROPFIND", f"{DATA}/", {"auth": ALICE, "headers": {"Depth": "1"}}),
    ("PROPFIND", f"{DATA}", {"auth": ALICE, "headers": {"Depth": "0"}}),
    ("PROPFIND", f"{DATA}/a.txt", {"auth": ALICE, "headers": {"Depth": "1"}}),
    ("PROPFIND", f"{DATA}/", {"auth": ALICE, "headers": {"Depth": "1"}, "data": NAMED}),
    ("PROPFIND", f"{DATA}/", {"auth": ALICE}),                     # Depth: infinity
    ("PROPFIND", f"{DATA}/", {"auth": ALICE, "headers": {"Depth": "2"}}),
    ("PROPFIND", f"{DATA}/", {"auth": ALICE, "headers": {"Depth": "1"}, "data": b"<x"}),
    ("PROPFIND", f"{DATA}/nope/", {"auth": ALICE, "headers": {"Depth": "1"}}),
    ("PROPFIND", "/collection/secret/", {"auth": ("carol", PASSWORD),
                                         "headers": {"Depth": "1"}}),
    ("PROPFIND", "/user/alice/", {"headers": {"Depth": "1"}}),
    ("PROPFIND", "/", {"auth": ("admin", PASSWORD), "headers": {"Depth": "1"}}),
]


def test_fast_path_answers_as_wsgidav_does(site: DavSite, guarded: Any) -> None:
    guard, counting = guarded
    alice = site.client("alice")
    # A member with metadata and dead properties, one with a lock, an odd name.
    assert alice.request("PROPPATCH", f"{DATA}/a.txt", data=(
        b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:j="urn:joist:meta" '
        b'xmlns:x="urn:x"><D:set><D:prop><j:colour>blue &amp; red</j:colour>'
        b"<x:dead>kept</x:dead></D:prop></D:set></D:propertyupdate>")).status_code == 207
    lock(alice, f"{DATA}/multi")
    assert alice.request("PUT", f"{DATA}/é x(1)&.txt", data=b"odd").status_code == 201
    cases = [*CASES, ("GET", f"{DATA}/é x(1)&.txt", {"auth": ALICE}),
             ("PROPFIND", f"{DATA}/é x(1)&.txt", {"auth": ALICE, "headers": {"Depth": "0"}})]
    for method, path, kw in cases:
        fast, slow = _both(guard, site, method, path.replace(" ", "%20"), **kw)
        assert fast == slow, (method, path, kw)
    alice.close()
    # The fast path was taken: a GET of a file and a PROPFIND never reach wsgidav.
    counting.calls = 0
    for method, path, kw in CASES[:3] + CASES[16:20]:
        requests.request(method, site.base + path, timeout=60, **kw).close()
    assert counting.calls == 0


def test_members_from_nodes_render_as_from_resources(
        site: DavSite, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = site.client("alice")
    assert alice.request("PROPPATCH", f"{DATA}/a.txt", data=(
        b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:j="urn:joist:meta">'
        b"<D:set><D:prop><j:n>1</j:n></D:prop></D:set></D:propertyupdate>")).status_code == 207
    lock(alice, f"{DATA}/deep", depth="infinity")
    paths = [f"{DATA}/", "/user/alice/Private/", "/user/", "/"]
    bodies = [None, NAMED, LOCKS, OTHER]
    fast = [_timeless(alice.propfind(p, body=b).content) for p in paths for b in bodies]

    def per_resource(provider: Any, collection: Any, names: Any = None) -> Iterator[str]:
        for member in collection.iter_members():
            yield propfind.render_allprop(member) if names is None else \
                propfind.render_response(member.get_href(), member.get_properties(
                    "named", name_list=names))

    monkeypatch.setattr(propfind, "_allprop_members", per_resource)
    monkeypatch.setattr(propfind, "_named_members", per_resource)
    slow = [_timeless(alice.propfind(p, body=b).content) for p in paths for b in bodies]
    alice.close()
    assert fast == slow
    assert b"locktoken>" in fast[0] and b"<j:n" in fast[0] and b"locktoken>" in fast[2]
