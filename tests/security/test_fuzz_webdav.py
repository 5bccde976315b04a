"""Fuzzing the WebDAV gateway (issue 12, item 6): odd paths (text and bytes
that are not UTF-8) under every method, as anonymous and as a user; odd
Depth, Destination, Overwrite, Range, If-Range, If, Timeout and Lock-Token
headers; odd PROPFIND, PROPPATCH and LOCK bodies. No answer may be a 5xx or
carry a traceback, and the server must log no unexpected failure."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from joist.admin.bootstrap import App
from joist.core.errors import NotFoundError
from tests.gateways.webdav.conftest import start_site
from tests.security.fuzzkit import (
    FUZZ,
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
from tests.world import PASSWORD, World, build_world

SCRATCH = "/user/alice/Private/scratch"
READ_BASES = ["", "/user", "/user/alice", "/user/alice/Private/data", "/collection/shared",
              "/collection/secret", "/user/alice/Private/data/a.txt",
              "/user/alice/Private/data/multi"]
METHODS = ["GET", "HEAD", "PUT", "DELETE", "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE",
           "LOCK", "UNLOCK", "OPTIONS", "POST", "PATCH", "TRACE"]
READS = ("GET", "HEAD", "PROPFIND", "OPTIONS")


@dataclass(repr=False)
class Target:
    app: App
    world: World
    host: str
    port: int
    watch: LogWatch

    def refresh(self) -> None:
        """A scratch folder with one file, as each test starts (fuzzed writes go there)."""
        view = self.app.hierarchy.view(self.world.principal("alice"))
        with contextlib.suppress(NotFoundError):
            view.remove(SCRATCH, recursive=True)
        view.mkdir(SCRATCH)
        with view.open_write(SCRATCH + "/f.txt") as writer:
            writer.write(b"0123456789" * 10)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    app, server = start_site(tmp_path_factory.mktemp("fuzzdav") / "data")
    try:
        with watching_logs() as watch:
            # Fuzzed logins fail by the thousand: no throttling here (it has its own tests).
            app.services.settings.set("joist.throttle.max_failures", 10 ** 9)
            parts = urlsplit(server.url)
            fuzz = Target(app, build_world(app), parts.hostname or "127.0.0.1",
                          parts.port or 80, watch)
            fuzz.refresh()
            yield fuzz
    finally:
        server.stop()
        app.close()


ALICE = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
who = st.one_of(st.sampled_from([ALICE, ALICE, ALICE, None]), st.sampled_from([
    "Basic " + base64.b64encode(b"\xff:\xfe").decode(), "Basic !!!", "Basic", "Bearer x",
    "Basic " + base64.b64encode(b"no-colon").decode(), "Digest username=\"alice\"",
    "Basic " + base64.b64encode(b"alice:" + b"x" * 5000).decode(), "\u00e9"]))
segment = st.one_of(odd_text, odd_bytes, st.sampled_from(["f.txt", "new", "data", "a.txt"]))


def _headers(auth: str | None, **extra: str | None) -> dict[str, str]:
    headers = {k.replace("_", "-"): v for k, v in extra.items() if v is not None}
    if auth:
        headers["Authorization"] = auth
    return headers


@FUZZ
@given(method=st.sampled_from(METHODS), auth=who, base=st.sampled_from(READ_BASES),
       segments=st.lists(segment, max_size=3), trailing=st.booleans(),
       body=st.one_of(st.none(), odd_bytes))
def test_paths(target: Target, method: str, auth: str | None, base: str,
               segments: list[str | bytes], trailing: bool, body: bytes | None) -> None:
    if method not in READS:
        base = SCRATCH  # writes stay in the scratch folder
    path = "/dav" + base + "".join("/" + encode_segment(s) for s in segments)
    path += "/" if trailing else ""
    reply = send(target.host, target.port, method, path, _headers(auth), body)
    assert_sound(reply, target.watch, (method, path))


destinations = st.one_of(
    odd_text,
    st.builds(lambda s, b: f"http://{s}/dav{SCRATCH}/{encode_segment(b)}",
              st.sampled_from(["127.0.0.1", "elsewhere.example", "[::1]:1", "a:b:c", ""]),
              st.one_of(odd_text, odd_bytes)),
    st.builds(lambda b: f"/dav{SCRATCH}/{b}", odd_text),
    st.sampled_from([f"/dav{SCRATCH}", "/dav/", "/dav/user/alice/Private/data/a.txt",
                     "/api/v1/item", "//x", "http://", "mailto:x", "/dav/%ff", "\u00e9"]),
)
header_text = st.one_of(odd_text, st.sampled_from(["0", "1", "infinity", "T", "F", "t", ""]))


@FUZZ
@given(method=st.sampled_from(METHODS), auth=who, name=st.sampled_from(["f.txt", "", "nope"]),
       depth=st.one_of(st.none(), header_text), destination=st.one_of(st.none(), destinations),
       overwrite=st.one_of(st.none(), header_text),
       range_=st.one_of(st.none(), odd_text, st.sampled_from(
           ["bytes=5-2", "bytes=-0", "bytes=0-0,5-9", "bytes=0x1-2", "items=0-1"])),
       if_range=st.one_of(st.none(), odd_text),
       if_=st.one_of(st.none(), odd_text, st.sampled_from(
           ["(<opaquelocktoken:x>)", "<http://x/dav/> (Not <urn:x>)", "(", "<", "([\"e\"])",
            "(<urn:uuid:1> [W/\"x\"]) (Not [\"y\"])", "</dav/user> (<a>) (<b>)"])),
       timeout=st.one_of(st.none(), odd_text, st.sampled_from(
           ["Second-99999999999999999999", "Infinite, Second-4100000000", "Second--1"])),
       lock_token=st.one_of(st.none(), odd_text, st.just("<opaquelocktoken:nope>")),
       content_range=st.one_of(st.none(), odd_text, st.just("bytes 0-1/2")))
def test_headers(target: Target, method: str, auth: str | None, name: str, depth: str | None,
                 destination: str | None, overwrite: str | None, range_: str | None,
                 if_range: str | None, if_: str | None, timeout: str | None,
                 lock_token: str | None, content_range: str | None) -> None:
    if method in ("MOVE", "DELETE"):
        target.refresh()  # the file the other examples work on
    path = f"/dav{SCRATCH}/{name}"
    headers = _headers(auth, Depth=depth, Destination=destination, Overwrite=overwrite,
                       Range=range_, If_Range=if_range, If=if_, Timeout=timeout,
                       Lock_Token=lock_token, Content_Range=content_range)
    body = b"data" if method == "PUT" else None
    reply = send(target.host, target.port, method, path, headers, body)
    assert_sound(reply, target.watch, (method, path, headers))


def _xml(inner: str, root: str = "propfind") -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><D:{root} xmlns:D="DAV:" '
            f'xmlns:j="urn:joist:meta" xmlns:x="http://example.org/x">{inner}</D:{root}>'
            ).encode()


_name = st.sampled_from(["D:prop", "D:set", "D:remove", "D:allprop", "D:propname", "D:include",
                         "D:displayname", "D:getetag", "D:resourcetype", "D:lockinfo",
                         "D:lockscope", "D:exclusive", "D:shared", "D:locktype", "D:write",
                         "D:owner", "D:href", "j:colour", "j:_x0041_", "j:_xZZZZ_", "x:dead",
                         "j:webdav:properties", "Z:undeclared", "D:quota-used-bytes"])


@st.composite
def xml_fragments(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(_name)
    attrs = ""
    if draw(st.integers(0, 3)) == 0:
        attrs = ' j:type="json"'
    if depth >= 3 or draw(st.booleans()):
        text = draw(st.one_of(odd_text, json_text))
        text = text.replace("&", "&amp;").replace("<", "&lt;")
        text = "".join(ch for ch in text if ch in "\t\n\r" or
                       (" " <= ch < "\ufffe" and not "\ud800" <= ch <= "\udfff"))
        return f"<{tag}{attrs}>{text}</{tag}>"
    children = draw(st.lists(xml_fragments(depth + 1), max_size=3))
    return f"<{tag}{attrs}>{''.join(children)}</{tag}>"


bodies = st.one_of(
    st.builds(_xml, st.lists(xml_fragments(), max_size=3).map("".join),
              st.sampled_from(["propfind", "propertyupdate", "lockinfo", "other"])),
    odd_bytes.map(bytes),
    st.sampled_from([
        b"", b"<", b"<?xml version='1.0' encoding='latin-1'?><D:propfind xmlns:D='DAV:'/>",
        b"<?xml version='1.0' encoding='nope'?><a/>", b"\xff\xfe<\x00a\x00/\x00>\x00",
        b'<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>',
        b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
        b"<D:propfind xmlns:D='DAV:'>" + b"<D:prop>" * 3000 + b"</D:prop>" * 3000 +
        b"</D:propfind>",
        _xml('<D:set><D:prop><j:k j:type="json">' + '{"a":' * 500 + "1" + "}" * 500 +
             "</j:k></D:prop></D:set>", "propertyupdate"),
        _xml("<D:set><D:prop><j:k>\U0001f600</j:k></D:prop></D:set>", "propertyupdate"),
    ]),
)


@FUZZ
@given(method=st.sampled_from(["PROPFIND", "PROPPATCH", "LOCK"]), auth=who,
       name=st.sampled_from(["f.txt", "", "nope"]), body=bodies,
       depth=st.sampled_from([None, "0", "1"]),
       content_type=st.sampled_from([None, "text/xml", "application/xml; charset=latin-1",
                                     "text/plain"]))
def test_xml_bodies(target: Target, method: str, auth: str | None, name: str, body: bytes,
                    depth: str | None, content_type: str | None) -> None:
    path = f"/dav{SCRATCH}/{name}"
    headers = _headers(auth, Depth=depth, Content_Type=content_type)
    reply = send(target.host, target.port, method, path, headers, body)
    assert_sound(reply, target.watch, (method, path, body[:200]))


@FUZZ
@given(method=st.sampled_from(["GET", "PROPFIND", "PUT", "DELETE", "MOVE"]), raw=odd_bytes)
def test_raw_request_lines(target: Target, method: str, raw: bytes) -> None:
    """Path bytes sent as they are, not percent-encoded."""
    if any(b in raw for b in b"\r\n "):
        return
    request = (f"{method} /dav{SCRATCH}/".encode() + raw + b" HTTP/1.1\r\nHost: x\r\n"
               b"Authorization: " + ALICE.encode() + b"\r\nContent-Length: 0\r\n"
               b"Connection: close\r\n\r\n")
    reply = send_raw(target.host, target.port, request)
    assert_sound(reply, target.watch, request)


@pytest.mark.parametrize("method", ["GET", "HEAD", "PROPFIND", "PUT", "DELETE", "MKCOL",
                                    "MOVE", "COPY", "LOCK", "PROPPATCH"])
@pytest.mark.parametrize("auth", [None, ALICE], ids=["anonymous", "alice"])
def test_invalid_utf8_in_paths_is_400(target: Target, method: str, auth: str | None) -> None:
    """The issue's case, on every method: the path bytes are not UTF-8."""
    for path in ("/dav/user/alice/Public/a%FFb", "/dav/user/alice/Public/%C3",
                 "/dav/user/alice/Public/%ED%A0%80", "/dav/%FF/x"):
        headers = _headers(auth, Destination=f"/dav{SCRATCH}/moved")
        reply = send(target.host, target.port, method, path, headers, b"")
        target.watch.take()
        assert reply.status == 400, (method, path, reply.status, reply.body[:200])
        if method != "HEAD":
            assert b"UTF-8" in reply.body
    headers = _headers(auth, Destination=f"/dav{SCRATCH}/a%FFb")
    if method in ("MOVE", "COPY"):
        reply = send(target.host, target.port, method, f"/dav{SCRATCH}/f.txt", headers)
        assert reply.status == 400, (method, reply.status, reply.body[:200])
