"""What the gateway fuzz tests share: odd text and bytes, a raw HTTP client
that sends exactly what it is given, and a watch on the server's log.

A fuzzed request fails the test when the answer is a 5xx, carries a
traceback, or when the server logged an unexpected failure while handling
it (an error after the headers went out shows only there).
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote_from_bytes

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Bounded and reproducible: the same examples on every run (CI stability).
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
# For a test that runs once per route (or method): a few examples each.
ROUTE_FUZZ = settings(FUZZ, max_examples=5)

# Characters that break parsers: separators, escapes, controls, non-BMP,
# combining marks, bidi overrides, surrogate halves written as text.
ODD_CHARS = ["/", "\\", "%", "..", ".", "?", "#", "&", "=", ";", ",", ":", "*", "\"", "'",
             "<", ">", "{", "}", "[", "]", " ", "\t", "\x00", "\x01", "\x7f", "\u0085",
             "\u00e9", "\u202e", "\ufeff", "\U0001f600", "e\u0301", "$", "~", "+", "-1"]
odd_text = st.one_of(
    st.text(max_size=20),
    st.lists(st.sampled_from(ODD_CHARS), max_size=6).map("".join),
    st.sampled_from(["", ".", "..", "...", "a" * 300, "0" * 40, "-1", "9" * 30, "null",
                     "true", "[]", "{}", "NaN", "1e999", "\u00e9t\u00e9", "CON", "~root"]),
)
# Bytes that are not UTF-8, as URL paths and header values carry them.
odd_bytes = st.one_of(
    st.binary(max_size=16),
    st.sampled_from([b"\xff", b"a\xffb", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\x00",
                     b"%", b"%zz", b"%ff", b"\xe2\x80\xae"]),
)


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


# JSON that has broken servers: nesting past any stack, numbers JSON has not,
# numbers no engine holds, lone surrogates, operator and dotted keys.
NASTY_JSON = ["{", "", "null", "NaN", '{"a": NaN}', '{"a": -Infinity}', "1e400",
              '{"a": ' + "9" * 30 + "}", "9" * 5000, '"\\udc80"', '{"\\udc80": 1}',
              '{"\\u0000": 1}', '{"$where": 1}', '{"a.b": 1}', '{"a": {"$gt": 1}}',
              deep_json(200), deep_json(5000), '{"a":' * 900 + "1" + "}" * 900,
              '{"a": ' + deep_json(90) + "}", '[{"_id": 1}]',
              '{"users": [{"id": "x", "level": 9}]}', '{"users": "x", "groups": [null]}']
json_text = st.one_of(
    st.sampled_from(NASTY_JSON),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) |
                 st.text(max_size=8),
                 lambda kids: st.lists(kids, max_size=3) |
                 st.dictionaries(st.text(max_size=5), kids, max_size=3),
                 max_leaves=8).map(json.dumps),
)
# Strings (as bytes before percent-encoding) for every other parameter.
NASTY_TEXT = [b"\xff", b"a\r\nX-Injected: 1", b"\xed\xa0\x80", b"\x00\x1b", b"a" * 1000,
              b"../..", b"%", b"-1", b"9" * 30, b"\xe2\x80\xae", b"\xf0\x9f\x98\x80/x"]


def encode_segment(value: str | bytes) -> str:
    """A path segment or query value percent-encoded, bytes kept as they are."""
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return quote_from_bytes(raw, safe="")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def send(host: str, port: int, method: str, target: str, headers: dict[str, str] | None = None,
         body: bytes | None = None, timeout: float = 30.0) -> Reply:
    """One request, sent as given (``target`` already encoded), on its own connection."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=False, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            clean = value.replace("\r", " ").replace("\n", " ")  # no header injection
            conn.putheader(name, clean.encode("latin-1", "replace"))
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        # An event stream (notification/stream) is open-ended by design: its
        # status and headers are the answer; the connection is closed below.
        streaming = (response.getheader("Content-Type") or "").startswith("text/event-stream")
        data = response.read() if method != "HEAD" and not streaming else b""
        return Reply(response.status, {k: v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def send_raw(host: str, port: int, request: bytes, timeout: float = 30.0) -> Reply:
    """Bytes straight onto the socket (for what http.client would refuse to send)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    parts = status_line.split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return Reply(status, {}, body)


class LogWatch(logging.Handler):
    """Collects ERROR records of the ``joist`` loggers (unexpected failures)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        found = [f"{r.name}: {r.getMessage()}" + (f" ({r.exc_info[1]!r})" if r.exc_info else "")
                 for r in self.records]
        self.records.clear()
        return found


@contextmanager
def watching_logs() -> Iterator[LogWatch]:
    watch = LogWatch()
    logger = logging.getLogger("joist")
    logger.addHandler(watch)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)


def assert_sound(reply: Reply, watch: LogWatch, what: object,
                 allowed: frozenset[int] = frozenset()) -> None:
    """The fuzz verdict for one request; ``allowed``: 5xx statuses that are a
    deliberate answer there (a stream cap's 503), not a failure."""
    logged = watch.take()  # first: nothing carries over to the next request
    what = repr(what)[:400]
    assert reply.status < 500 or reply.status in allowed, \
        (reply.status, what, reply.body[:300], logged)
    assert b"Traceback" not in reply.body, (what, reply.body[:300])
    assert reply.status != 0, (what, "no HTTP answer")
    assert not any(k.lower() == "x-injected" for k in reply.headers), (what, "header injected")
    assert not logged, (what, logged)
