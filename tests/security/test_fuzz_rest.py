"""Fuzzing the REST gateway (issue 12, item 6): every declared route with odd
ids, query parameters of every declared kind, JSON and other bodies, as
anonymous, a user and an admin; odd paths and methods; odd credentials. No
answer may be a 5xx or carry a traceback, and the server must log no
unexpected failure."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from joist.gateways.http.resources import COLLECTORS
from joist.gateways.http.router import Param, Route, table_from
from tests.gateways.http.restsite import RestSite, running_site
from tests.security.fuzzkit import (
    FUZZ,
    NASTY_JSON,
    NASTY_TEXT,
    ROUTE_FUZZ,
    LogWatch,
    assert_sound,
    encode_segment,
    json_text,
    odd_bytes,
    odd_text,
    send,
    send_raw,
    watching_logs,
)
from tests.world import upload_bytes

ROUTES = sorted(table_from(COLLECTORS).routes, key=lambda r: (r.path, r.method))
# Imports walk a directory of the server's disk: an admin's operation, not a
# parser, and slow on a big directory.
ADMIN_SKIP = {("POST", "assetstore/:id/import")}
# Open-ended event streams: fuzzed with timeout=0 unless the timeout itself is
# fuzzed; past the per-process stream cap their answer is a deliberate 503.
STREAMS = {("GET", "notification/stream")}
STREAM_CAP = frozenset({503})


def _bounded(route: Route, query: list[str]) -> tuple[list[str], frozenset[int]]:
    if (route.method, route.path) not in STREAMS:
        return query, frozenset()
    if not any(q.startswith("timeout=") for q in query):
        query = [*query, "timeout=0"]
    return query, STREAM_CAP
CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded",
                 "application/octet-stream", "multipart/form-data; boundary=x", "text/plain",
                 "application/json; charset=latin-1", "\u00e9/\u00e9"]


@dataclass(repr=False)
class Target:
    site: RestSite
    host: str
    port: int
    tokens: dict[str, str | None]
    ids: dict[str, list[str]]
    watch: LogWatch

    def refresh(self) -> None:
        """Undo what earlier examples did to the fuzzing principals (an admin
        may demote or disable itself, log its token out, change a password)
        so that every test reaches past authentication."""
        app = self.site.app
        for login in ("admin", "alice"):
            app.store.users.update_one({"login": login}, {"$set": {
                "admin": login == "admin", "status": "enabled"}})
            user = app.store.users.find_one({"login": login})
            self.tokens[login] = str(app.services.auth.login_token(user)["_id"])


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with running_site(tmp_path_factory.mktemp("fuzzrest") / "data") as site, \
            watching_logs() as watch:
        parts = urlsplit(site.server.url)
        world, store = site.world, site.app.store
        item = store.items.find_one({"name": "a.txt"})
        file = store.files.find_one({"itemId": item["_id"]})
        ids = {"user": [str(world.users[u]["_id"]) for u in ("alice", "admin", "bobby")],
               "item": [str(item["_id"]), str(world.docs["multi"]["_id"])],
               "file": [str(file["_id"])],
               "folder": [str(world.docs["data"]["_id"]), str(world.docs["private"]["_id"])],
               "collection": [str(world.docs["shared"]["_id"])],
               "group": [str(world.docs["team"]["_id"])],
               "assetstore": [str(a["_id"]) for a in store.assetstores.find({})]}
        ids["resource"] = ids["item"] + ids["folder"] + ids["collection"]
        ids["all"] = sorted({i for group in ids.values() for i in group})
        ids.update({f"victim-{k}": v for k, v in _victims(site).items()})
        # Fuzzed logins fail by the thousand: no throttling here (it has its own tests).
        site.app.services.settings.set("joist.throttle.max_failures", 10 ** 9)
        tokens: dict[str, str | None] = {"anon": None, "bogus": "x" * 64}
        fuzz = Target(site, parts.hostname or "127.0.0.1", parts.port or 80, tokens, ids, watch)
        fuzz.refresh()
        yield fuzz


def _victims(site: RestSite) -> dict[str, list[str]]:
    """Objects made to be deleted: DELETE routes get these, so that the
    fixture's own objects survive for the routes fuzzed after them."""
    svc, world = site.app.services, site.world
    alice, admin = world.principal("alice"), world.principal("admin")
    folder = svc.folders.create(alice, "folder", world.docs["private"]["_id"], "victim")
    file = upload_bytes(site.app, alice, "folder", folder, "v.txt", b"victim")
    collection = svc.collections.create(admin, "victim")
    group = svc.groups.create(admin, "victims")
    return {"user": [str(world.users["bobby"]["_id"])], "folder": [str(folder["_id"])],
            "item": [str(file["itemId"])], "file": [str(file["_id"])],
            "collection": [str(collection["_id"])], "group": [str(group["_id"])]}


def _ids(target: Target, resource: str = "") -> st.SearchStrategy[Any]:
    """Mostly real ids of the route's own kind (to get past the lookup and
    reach the parsing of everything else), sometimes anything at all."""
    own = target.ids.get(resource) or target.ids["all"]
    return st.one_of(st.sampled_from(own), st.sampled_from(own), st.sampled_from(own),
                     st.sampled_from(target.ids["all"]), st.from_regex(r"\A[0-9a-f]{24}\Z"),
                     odd_text, odd_bytes)


def _value(param: Param, ids: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    kind, name = param.kind, param.name
    if kind == "integer":
        return st.one_of(st.integers(-(2 ** 70), 2 ** 70).map(str), odd_text)
    if kind == "number":
        return st.one_of(st.floats().map(str), st.sampled_from(["nan", "inf", "-0", "1e999"]),
                         odd_text)
    if kind == "boolean":
        return st.one_of(st.sampled_from(["true", "false", "1", "0", "yes", ""]), odd_text)
    if kind in ("json", "jsonObject", "jsonArray"):
        return json_text
    if kind == "objectId" or name.endswith("Id") or name == "id":
        return ids
    if name.endswith("Type") or name == "type":
        return st.one_of(st.sampled_from(["folder", "item", "user", "collection", "file",
                                          "group"]), odd_text)
    return st.one_of(odd_text, odd_bytes, json_text)


@st.composite
def route_requests(draw: st.DrawFn, target: Target, route: Route
                   ) -> tuple[str, str, dict[str, str], bytes | None]:
    who = draw(st.sampled_from(["admin", "admin", "alice", "alice", "anon", "bogus"]))
    if who == "admin" and (route.method, route.path) in ADMIN_SKIP:
        who = "alice"
    ids = _ids(target, route.resource)
    if route.method == "DELETE":
        ids = st.one_of(st.sampled_from(target.ids.get(f"victim-{route.resource}") or
                                        target.ids["all"]), odd_text)
    segments = [route.resource]
    for token in route.tokens:
        segments.append(encode_segment(draw(ids)) if token.startswith(":") else token)
    query: list[str] = []
    for param in route.params:
        if param.location == "path" or not draw(st.booleans()):
            continue
        query.append(f"{param.name}={encode_segment(draw(_value(param, ids)))}")
    if draw(st.integers(0, 7)) == 0:  # an unknown, or a repeated, parameter
        name = draw(st.sampled_from([p.name for p in route.params] or ["x"]))
        query.append(f"{encode_segment(name)}={encode_segment(draw(odd_text))}")
    headers: dict[str, str] = {}
    token = target.tokens[who]
    if token:
        headers["Girder-Token"] = token
    body: bytes | None = None
    if route.method in ("POST", "PUT") and draw(st.integers(0, 3)) > 0:
        body = draw(st.one_of(json_text.map(str.encode), json_text.map(str.encode), odd_bytes))
        headers["Content-Type"] = draw(st.sampled_from(CONTENT_TYPES))
    if draw(st.integers(0, 5)) == 0:
        headers["Range"] = draw(st.one_of(odd_text, st.sampled_from(
            ["bytes=0-0", "bytes=-0", "bytes=5-2,0-1", "bytes=0-1,3-4"])))
    query, _ = _bounded(route, query)
    target_url = "/api/v1/" + "/".join(segments) + ("?" + "&".join(query) if query else "")
    return route.method, target_url, headers, body


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_routes(target: Target, route: Route) -> None:
    """A few requests on every route (a sample over all routes would leave
    most of them untried)."""

    target.refresh()

    @ROUTE_FUZZ
    @given(request=route_requests(target, route))
    def check(request: tuple[str, str, dict[str, str], bytes | None]) -> None:
        method, url, headers, body = request
        reply = send(target.host, target.port, method, url, headers, body)
        assert_sound(reply, target.watch, (method, url, headers, body and body[:100]),
                     _bounded(route, [])[1])

    check()


def _sweep(route: Route, target: Target) -> Iterator[tuple[str, dict[str, str], bytes | None]]:
    """(query, headers, body) for every nasty value in every slot of a route:
    each JSON kind of parameter, the body, then every other parameter."""
    headers = {"Girder-Token": target.tokens["admin"] or ""}
    for value in NASTY_JSON:
        encoded = encode_segment(value)
        for param in route.params:
            if param.kind in ("json", "jsonObject", "jsonArray"):
                yield f"{param.name}={encoded}", headers, None
        if route.method in ("POST", "PUT"):
            yield "", {**headers, "Content-Type": "application/json"}, value.encode()
    for raw in NASTY_TEXT:
        for param in route.params:
            if param.location != "path" and param.kind not in ("json", "jsonObject",
                                                               "jsonArray"):
                yield f"{param.name}={encode_segment(raw)}", headers, None


@pytest.mark.parametrize("route", [r for r in ROUTES if (r.method, r.path) not in ADMIN_SKIP],
                         ids=lambda r: f"{r.method} {r.path}")
def test_nasty_values_on_every_route(target: Target, route: Route) -> None:
    """Each known-bad value in each slot, with real ids, as an admin (who gets
    furthest): a deterministic sweep beside the random examples."""
    target.refresh()
    kind = f"victim-{route.resource}" if route.method == "DELETE" else route.resource
    ids = iter(target.ids.get(kind) or target.ids["all"])
    segments = [route.resource]
    for token in route.tokens:
        segments.append(next(ids, target.ids["all"][0]) if token.startswith(":") else token)
    path = "/api/v1/" + "/".join(segments)
    for query, headers, body in _sweep(route, target):
        parts, allowed = _bounded(route, [query] if query else [])
        url = path + ("?" + "&".join(parts) if parts else "")
        reply = send(target.host, target.port, route.method, url, headers, body)
        assert_sound(reply, target.watch, (route.method, url, body and body[:80]), allowed)


METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "PROPFIND", "TRACE"]
RESOURCES = [*sorted({r.resource for r in ROUTES}), "", "describe", "..", "%2e%2e"]


@FUZZ
@given(method=st.sampled_from(METHODS), first=st.sampled_from(RESOURCES),
       rest=st.lists(st.one_of(odd_text, odd_bytes), max_size=4),
       query=st.one_of(st.just(""), odd_text, odd_bytes))
def test_paths(target: Target, method: str, first: str, rest: list[str | bytes],
               query: str | bytes) -> None:
    path = "/api/v1/" + "/".join([first, *(encode_segment(s) for s in rest)])
    if query:
        path += "?" + encode_segment(query).replace("%3D", "=").replace("%26", "&")
    target.refresh()
    headers = {"Girder-Token": target.tokens["alice"] or ""}
    reply = send(target.host, target.port, method, path, headers)
    assert_sound(reply, target.watch, (method, path))


@FUZZ
@given(raw=odd_bytes, tail=odd_bytes)
def test_raw_request_lines(target: Target, raw: bytes, tail: bytes) -> None:
    """Bytes in the request line that no client library would send as they are."""
    line = b"GET /api/v1/item/" + raw + b"?" + tail + b" HTTP/1.1\r\n"
    if b"\r" in raw + tail or b"\n" in raw + tail:
        return
    request = line + b"Host: x\r\nConnection: close\r\n\r\n"
    reply = send_raw(target.host, target.port, request)
    assert_sound(reply, target.watch, request)


def _basic(user: bytes, password: bytes) -> str:
    return "Basic " + base64.b64encode(user + b":" + password).decode()


credentials = st.one_of(
    st.builds(_basic, odd_bytes, odd_bytes),
    st.builds(_basic, st.just(b"alice"), odd_bytes),
    st.sampled_from(["Basic", "Basic ", "Basic !!!", "Basic " + "A" * 5000, "Bearer x",
                     "Basic " + base64.b64encode(b"no-colon").decode(), "Digest x=y"]),
    odd_text,
)


@settings(FUZZ, max_examples=80)  # each Basic login costs a bcrypt check
@given(auth=st.one_of(st.none(), credentials), token=st.one_of(st.none(), odd_text),
       cookie=st.one_of(st.none(), odd_text, st.just("girderToken=\x01; a=\"b")),
       path=st.sampled_from(["user/authentication", "user/me", "token/current",
                             "file/{file}/download", "folder"]))
def test_credentials(target: Target, auth: str | None, token: str | None,
                     cookie: str | None, path: str) -> None:
    headers = {k: v for k, v in (("Authorization", auth), ("Girder-Token", token),
                                 ("Cookie", cookie)) if v is not None}
    url = "/api/v1/" + path.format(file=target.ids["file"][0])
    reply = send(target.host, target.port, "GET", url, headers)
    assert_sound(reply, target.watch, (url, headers))
