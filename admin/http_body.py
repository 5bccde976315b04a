"""The worker side of slow-client defence: how a worker reads a request.

A worker first gets the bytes the front (``http_front``) already read for the
request, then reads the socket under the body rules: no single wait longer
than ``body_timeout``, and once that grace is spent an average of at least
``body_min_rate`` bytes per second of waiting. Breaking either raises
``RequestTimeoutError`` (408) in the application, which rolls back what it was
writing, and the connection is closed after the answer.
"""

from __future__ import annotations

import _pyio
import contextlib
import email.utils
import os
import socket
import time
import typing
from dataclasses import dataclass
from typing import Any

from cheroot import makefile, server

from joist.core.errors import RequestTimeoutError

DRAIN_BYTES = 64 * 1024  # read size when draining a body the application left unread
HOLD_BODY_BYTES = 256 * 1024  # body chunks up to this size are sent in one piece with the head


@dataclass(frozen=True)
class Limits:
    header_timeout: float  # seconds for a whole request head
    body_timeout: float  # longest wait for body bytes, and the grace before the rate applies
    body_min_rate: int  # bytes/s a body must average once the grace is over; 0: no rule
    per_address: int  # open connections per client address; 0: no cap
    body_workers_per_address: int  # workers one address's large bodies may hold at once
    max_head_bytes: int  # request line plus headers


class GuardedSocketIO(socket.SocketIO):
    """The socket as a worker reads it: first the bytes the front already read
    (the head, maybe some body), then the socket under the body rules."""

    def __init__(self, sock: socket.socket, limits: Limits, idle_timeout: float) -> None:
        super().__init__(sock, "rb")
        self.sock = sock
        self.limits = limits
        self.idle_timeout = idle_timeout  # the socket's timeout outside body reads (sends)
        self.prefix = bytearray()
        self.waited = 0.0
        self.received = 0
        self.stalled = False

    def begin(self, data: bytes) -> None:
        """A new request: ``data`` (its head, maybe more) is read first."""
        self.prefix[:0] = data
        self.waited, self.received = 0.0, 0

    def take_prefix(self) -> bytes:
        data = bytes(self.prefix)
        self.prefix.clear()
        return data

    def readinto(self, b: Any) -> int | None:
        if self.prefix:
            given = min(len(b), len(self.prefix))
            b[:given] = self.prefix[:given]
            del self.prefix[:given]
            return given
        limits = self.limits
        allowance = limits.body_timeout
        if limits.body_min_rate:
            # The client must have sent min_rate bytes for every second we
            # waited beyond the grace: this is how long it may take from here.
            allowance = min(allowance, limits.body_timeout - self.waited
                            + self.received / limits.body_min_rate)
        if self.stalled or allowance <= 0:
            self._stall()
        started = time.monotonic()
        self.sock.settimeout(allowance)
        n: int | None = None
        try:
            n = super().readinto(b)
        except TimeoutError:
            self._stall()
        finally:
            self.waited += time.monotonic() - started
            with contextlib.suppress(OSError):  # closed meanwhile
                self.sock.settimeout(self.idle_timeout)
        self.received += n or 0
        return n

    def _stall(self) -> typing.NoReturn:
        self.stalled = True
        raise RequestTimeoutError(
            f"The request body stalled: the server waits at most "
            f"{self.limits.body_timeout:g} s for data and then needs "
            f"{self.limits.body_min_rate} bytes/s on average.")


class GuardedReader(makefile.StreamReader):
    """cheroot's buffered socket reader over a ``GuardedSocketIO``."""

    def __init__(self, raw: GuardedSocketIO, bufsize: int) -> None:
        _pyio.BufferedReader.__init__(self, raw, bufsize)  # type: ignore[arg-type]
        self.bytes_read = 0
        self.guard = raw

    def has_data(self) -> bool:
        return bool(super().has_data() or self.guard.prefix)

    def readline(self, size: int | None = -1) -> bytes:
        # The head is in hand (the front read it): a line from it is a slice,
        # not _pyio's peek-and-read through the buffer for every header.
        prefix = self.guard.prefix
        if prefix and not super().has_data():
            limit = len(prefix) if size is None or size < 0 else min(size, len(prefix))
            end = prefix.find(b"\n", 0, limit)
            if end >= 0:
                line = bytes(prefix[:end + 1])
                del prefix[:end + 1]
                return line
        return super().readline(size)  # type: ignore[no-any-return]

    def take_unread(self) -> bytes:
        """Every byte received but not yet consumed, without touching the socket."""
        buffered = self.read1(1 << 30) if super().has_data() else b""
        return buffered + self.guard.take_prefix()


_NOW: tuple[int, bytes] = (0, b"")  # (a second, its HTTP date): replaced whole


def _http_now() -> bytes:
    """The ``Date`` header's value (RFC 9110's IMF-fixdate), formatted once a second."""
    global _NOW
    now = int(time.time())
    seen = _NOW
    if seen[0] != now:
        seen = _NOW = (now, email.utils.formatdate(now, usegmt=True).encode("ascii"))
    return seen[1]


class SocketWriter:
    """The connection's writer. cheroot's (a ``_pyio`` buffered writer that it
    flushes after every write anyway) copies each write into a buffer and out
    again, and its ``send`` polls before every call; this one hands the bytes
    to the kernel with one ``os.write`` on the socket's non-blocking descriptor
    and leaves only what did not fit to ``sendall`` (under the socket's timeout)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.bytes_written = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        if self.closed:
            raise ValueError("write to a closed connection")
        size = len(data)
        sent = 0
        if self.sock.gettimeout() is not None:  # non-blocking descriptor: never waits
            try:
                sent = os.write(self.sock.fileno(), data)
            except (BlockingIOError, InterruptedError):
                sent = 0
        if sent < size:
            self.sock.sendall(memoryview(data)[sent:])
        self.bytes_written += size
        return size

    def flush(self) -> None:
        pass  # nothing is held

    def close(self) -> None:
        self.closed = True  # the socket is the connection's to close


class _HeldWrite:
    """Stands in for the connection's writer while cheroot formats the head."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


class GuardedRequest(server.HTTPRequest):
    # The head of a response with a known length waits for its first body bytes
    # and goes out in the same send: one system call and one TCP segment for a
    # small answer instead of two. Streams (no Content-Length: chunked, or
    # close-delimited such as event streams) get their head at once.
    held_head = b""

    def respond(self) -> None:
        super().respond()
        if self.held_head:  # no body was written (HEAD, 204, 304, empty file)
            head, self.held_head = self.held_head, b""
            self.conn.wfile.write(head)

    def write(self, chunk: bytes) -> None:
        if self.held_head:
            head, self.held_head = self.held_head, b""
            if chunk and len(chunk) <= HOLD_BODY_BYTES:
                chunk = head + chunk
            else:  # nothing to join, or a chunk too large to be worth a copy
                self.conn.wfile.write(head)
        super().write(chunk)

    def send_headers(self) -> None:
        # A request whose body stalled ends its connection; a body the app left
        # unread is drained here under the body rules (cheroot would drain it too,
        # but an error there would end up as a 500).
        guard: GuardedSocketIO = self.conn.rfile.guard
        if not self.close_connection and not self.chunked_read and not guard.stalled:
            remaining = getattr(self.rfile, "remaining", 0)
            try:
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, DRAIN_BYTES))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            except (RequestTimeoutError, OSError):
                self.close_connection = True
        if guard.stalled:
            self.close_connection = True
        keys = {key.lower() for key, _value in self.outheaders}
        if b"date" not in keys:  # cheroot would format it anew for every response
            self.outheaders.append((b"Date", _http_now()))
        if b"content-length" in keys:
            real, held = self.conn.wfile, _HeldWrite()
            self.conn.wfile = held
            try:
                super().send_headers()
            finally:
                self.conn.wfile = real
            if self.chunked_write:  # cannot happen with a length; never hold then
                real.write(held.data)
            else:
                self.held_head = held.data
            return
        super().send_headers()


__all__ = ["GuardedReader", "GuardedRequest", "GuardedSocketIO", "Limits", "SocketWriter"]
