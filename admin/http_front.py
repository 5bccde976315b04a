"""The HTTP server's front: slow clients must not hold worker threads.

cheroot (>= 10) hands a *new* connection to a worker thread at once, and a
kept-alive one as soon as a single byte arrives; the worker then blocks while
the client sends the rest of its request head, so a few dozen clients that send
half a head and stop starve every other request. This front replaces cheroot's
``ConnectionManager`` (same interface, same selector thread) with one that:

- reads request heads itself, without blocking, on the selector thread, and
  hands a connection to a worker only once its head is complete (the bytes read
  so far are replayed to cheroot's parser by ``GuardedSocketIO``);
- gives a head ``header_timeout`` seconds (from accept, or from its first byte
  on a kept-alive connection), then answers 408 and closes;
- keeps idle keep-alive connections in the selector, costing no thread, until
  cheroot's keep-alive timeout (a worker that has just answered waits a
  moment, ``NEXT_HEAD_WAIT_MS``, for the same client's next request, and only
  while no other connection waits for a worker: a client that sends its
  requests back to back is then served without two thread hand-overs each);
- refuses (503) a connection beyond ``max_connections_per_address`` open ones
  from one address, and lets one address's large bodies occupy at most
  ``body_workers_per_address`` workers (the others wait on no thread:
  ``http_fairness``);
- also reads a small body (``Content-Length`` up to ``PREREAD_BODY``: JSON,
  metadata, WebDAV XML, small files) before the hand-over, so trickling one
  costs no thread either;
- lets a worker wait for the bytes of a larger body only while the client keeps
  up an average of ``body_min_rate`` bytes/s after a first ``body_timeout``
  seconds (and never more than ``body_timeout`` for any one read): a stalled or
  trickled body ends in ``RequestTimeoutError`` (408) and frees the thread
  (``http_body``).

The front only decides *when* a worker takes a connection: cheroot still parses
every byte itself, so a head the front reads differently (say two
``Content-Length`` headers) can only make it wait, never change the request.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import select
import selectors
import socket
import threading
import time
from typing import Any

from cheroot import server, wsgi

from . import cheroot_internals
from .http_body import GuardedReader, GuardedRequest, GuardedSocketIO, Limits, SocketWriter
from .http_fairness import PerAddress

log = logging.getLogger(__name__)

HEAD_END = re.compile(rb"\n\r?\n")  # the blank line ending a head (bare LF: cheroot says 400)
RECV_BYTES = 64 * 1024
PREREAD_BODY = 64 * 1024  # bodies up to this size are read before a worker takes them
_HEADER = re.compile(rb"\r?\n([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*:[ \t]*([^\r\n]*)")
ACCEPTS_PER_WAKE = 256  # accept in bursts, then look at readable connections again
# How long a worker that has just answered on a kept-alive connection waits for
# that client's next request before handing the connection to the selector
# (only while no other connection waits for a worker; see HeadFront.take_next).
NEXT_HEAD_WAIT_MS = 2


def body_plan(head: bytes) -> tuple[int, bool]:
    """What comes after this head: the bytes of body the front reads before the
    hand-over (a plain ``Content-Length`` up to ``PREREAD_BODY``), and whether a
    worker will read a larger body itself (chunked, large, odd, or from a client
    that waits for ``100 Continue`` before it sends it)."""
    length: int | None = None
    chunked = expect = False
    for name, value in _HEADER.findall(head):
        name = name.lower()
        if name == b"transfer-encoding":
            chunked = True
        elif name == b"expect" and b"100" in value:
            expect = True
        elif name == b"content-length":
            value = value.strip()
            if length is not None or not value.isdigit():
                return 0, True  # cheroot will judge it; meanwhile count it as large
            length = int(value)
    if chunked:
        return 0, True
    if not length:
        return 0, False
    if expect or length > PREREAD_BODY:
        return 0, True
    return length, False


def _reply(sock: socket.socket, status: str, text: str, extra: str = "") -> None:
    """A best-effort short answer that never blocks (the selector thread sends it)."""
    body = text.encode()
    head = (f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}"
            f"\r\nConnection: close\r\n{extra}\r\n").encode()
    with contextlib.suppress(OSError):
        sock.send(head + body, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)


def _read_now(sock: socket.socket) -> bytes:
    """What the socket holds now, without waiting (``BlockingIOError`` if
    nothing). A socket with a timeout has a non-blocking descriptor, and
    ``os.read`` on it skips the ``poll`` that ``recv`` makes first."""
    if sock.gettimeout() is None:  # a blocking descriptor: let recv not wait
        return sock.recv(RECV_BYTES, socket.MSG_DONTWAIT)
    return os.read(sock.fileno(), RECV_BYTES)


class GuardedConnection(server.HTTPConnection):
    RequestHandlerClass = GuardedRequest

    def __init__(self, httpserver: Any, sock: socket.socket, front: HeadFront) -> None:
        self.front = front
        self.pending = bytearray()  # head (and small body) bytes read by the front so far
        self.deadline = 0.0  # monotonic time by which the pending head must be complete
        self.need = 0  # once the head is complete: the bytes to read before the hand-over
        self.counted_as: str | None = None  # the address it counts against, once accepted
        self.large = False  # its current request has a body a worker reads itself
        self.body_slot = False  # it holds one of its address's places for large bodies
        self.closed = False
        self.poller: select.poll | None = None  # for ``HeadFront.take_next``
        limits = front.limits

        def make(sock_: socket.socket, mode: str = "r", bufsize: int = 8192) -> Any:
            if "r" in mode:
                return GuardedReader(GuardedSocketIO(sock_, limits, httpserver.timeout), bufsize)
            return SocketWriter(sock_)

        super().__init__(httpserver, sock, make)

    def communicate(self) -> bool:
        """cheroot's request loop step, repeated while the client's next request
        comes whole within ``NEXT_HEAD_WAIT_MS`` (``HeadFront.take_next``)."""
        keep = super().communicate()
        while keep and self.front.take_next(self):
            keep = super().communicate()
        return bool(keep)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.front.forget(self)
        super().close()


class HeadFront:
    """A drop-in for cheroot's ``ConnectionManager`` (see the module doc)."""

    def __init__(self, httpserver: Any, limits: Limits) -> None:
        self.server = httpserver
        self.limits = limits
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()  # the selector's map
        self.book = PerAddress(limits.per_address, limits.body_workers_per_address)
        self._serving = False
        self._stop_requested = False
        self._listener = httpserver.socket
        self._listener.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, data=None)

    # ------------------------------------------------ cheroot's interface
    @property
    def can_add_keepalive_connection(self) -> bool:
        limit = self.server.keep_alive_conn_limit
        return limit is None or len(self._selector.get_map()) - 1 < limit

    def put(self, conn: GuardedConnection) -> None:
        """A worker is done with a request and keeps the connection: wait for the
        next head here, on no thread (pipelined bytes already read come along)."""
        self._end_body(conn)
        conn.last_used = time.time()
        conn.pending[:] = conn.rfile.take_unread()
        conn.need = 0
        if conn.pending:
            conn.deadline = time.monotonic() + self.limits.header_timeout
            if self._head_ready(conn):
                return
        else:
            conn.deadline = 0.0  # idle: the keep-alive timeout applies, not the head's
        self._register(conn)

    def take_next(self, conn: GuardedConnection) -> bool:
        """A worker is done with a request and keeps the connection. If no other
        connection waits for a worker, wait up to ``NEXT_HEAD_WAIT_MS`` on this
        thread for the client's next request: True when its head (and small
        body) came whole, and this worker goes on with it; no hand-over to the
        selector thread and back to another worker (two thread wake-ups, and
        the GIL passed between three threads, per request). Otherwise the
        bytes read so far go back to the connection, for ``put``."""
        if NEXT_HEAD_WAIT_MS <= 0 or self._stop_requested or self.server.requests.qsize:
            return False  # others wait for a worker: do not hold this one
        unread = conn.rfile.take_unread()
        if not unread:
            try:
                if not self._next_poller(conn).poll(NEXT_HEAD_WAIT_MS):
                    return False
                unread = _read_now(conn.socket)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                return False  # the front's read sees the error again and closes
            if not unread:  # the client went away: the selector sees it too
                return False
        end = HEAD_END.search(unread, 0, self.limits.max_head_bytes + 4)
        if end is not None:
            preread, large = body_plan(unread[:end.end()])
            if not large and len(unread) >= end.end() + preread:
                self._end_body(conn)
                conn.last_used = time.time()
                conn.large = False
                conn.rfile.guard.begin(unread)
                return True
        conn.rfile.guard.begin(unread)  # incomplete: ``put`` takes it from here
        return False

    @staticmethod
    def _next_poller(conn: GuardedConnection) -> select.poll:
        poller = conn.poller
        if poller is None:
            poller = conn.poller = select.poll()
            poller.register(conn.socket.fileno(), select.POLLIN)
        return poller

    def run(self, expiration_interval: float) -> None:
        self._serving = True
        try:
            self._run(expiration_interval)
        finally:
            self._serving = False

    def stop(self) -> None:
        self._stop_requested = True
        for _ in range(1000):  # the loop notices within one select timeout
            if not self._serving:
                return
            time.sleep(0.01)

    def close(self) -> None:
        for conn in self._registered() + self.book.drop_waiting():
            conn.close()
        self._selector.close()

    # ------------------------------------------------ the selector loop
    def _run(self, expiration_interval: float) -> None:
        last_check = time.monotonic()
        while not self._stop_requested:
            try:
                ready = self._selector.select(timeout=expiration_interval)
            except OSError:  # a connection closed under us: its key goes below
                ready = []
                self._drop_closed()
            for key, _ in ready:
                if key.data is None:
                    self._accept()
                else:
                    self._read_head(key.data)
            now = time.monotonic()
            if now - last_check >= expiration_interval:
                self._expire(now)
                last_check = now

    def _accept(self) -> None:
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    log.warning("HTTP: out of file descriptors; dropping the oldest idle "
                                "connection")
                    self._shed_oldest()
                return
            host = str(addr[0]) if isinstance(addr, tuple) else ""
            if not self.book.admit(host):
                _reply(sock, "503 Service Unavailable",
                       "Too many connections from your address.\n", "Retry-After: 5\r\n")
                sock.close()
                continue
            try:
                sock.settimeout(self.server.timeout)
                if self.server.nodelay:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn = GuardedConnection(self.server, sock, self)
            except OSError:
                self.book.leave(host)
                sock.close()
                continue
            conn.remote_addr, conn.remote_port = host, (addr[1] if len(addr) > 1 else 0)
            conn.ssl_env = {}
            conn.counted_as = host
            conn.last_used = time.time()
            conn.deadline = time.monotonic() + self.limits.header_timeout
            if self.server.stats["Enabled"]:
                self.server.stats["Accepts"] += 1
            self._register(conn)

    def _read_head(self, conn: GuardedConnection) -> None:
        try:
            data = _read_now(conn.socket)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._unregister(conn)
            conn.close()
            return
        if not conn.pending:
            conn.deadline = time.monotonic() + self.limits.header_timeout
        seen = len(conn.pending)
        conn.pending += data
        conn.last_used = time.time()
        if self._head_ready(conn, registered=True, start=max(0, seen - 2)):
            return
        if not conn.need and len(conn.pending) > self.limits.max_head_bytes:
            self._unregister(conn)
            _reply(conn.socket, "431 Request Header Fields Too Large",
                   f"The request head exceeds {self.limits.max_head_bytes} bytes.\n")
            conn.close()

    def _head_ready(self, conn: GuardedConnection, registered: bool = False,
                    start: int = 0) -> bool:
        """Hand the connection to a worker if its pending head is complete
        (searched from ``start``: a trickled head is not rescanned per byte)."""
        if not conn.need:
            end = HEAD_END.search(conn.pending, start, self.limits.max_head_bytes + 4)
            if not end:
                return False
            preread, conn.large = body_plan(bytes(conn.pending[:end.end()]))
            conn.need = end.end() + preread
            if len(conn.pending) < conn.need:  # a small body is still on its way
                body = conn.need - end.end()
                rate = self.limits.body_min_rate
                conn.deadline = time.monotonic() + self.limits.body_timeout + (
                    body / rate if rate else 0.0)
        if len(conn.pending) < conn.need:
            return False
        conn.need = 0
        if registered:
            self._unregister(conn)
        conn.rfile.guard.begin(bytes(conn.pending))
        conn.pending.clear()
        if not conn.large or self.book.start_body(conn):
            self.server.process_conn(conn)
        return True  # handed over, or waiting for its address's turn at a large body

    def _expire(self, now: float) -> None:
        idle_before = time.time() - self.server.timeout
        for conn in self._registered():
            if conn.deadline and now > conn.deadline:  # a head that did not come in time
                self._unregister(conn)
                what = "body" if conn.need else "head"
                _reply(conn.socket, "408 Request Timeout",
                       f"The request {what} did not arrive in time.\n")
                conn.close()
            elif not conn.deadline and conn.last_used < idle_before:  # idle keep-alive
                self._unregister(conn)
                conn.close()

    def _shed_oldest(self) -> None:
        conns = self._registered()
        if conns:
            oldest = min(conns, key=lambda c: c.last_used)
            self._unregister(oldest)
            oldest.close()

    def _drop_closed(self) -> None:
        for conn in self._registered():
            if conn.socket.fileno() < 0:
                self._unregister(conn)
                conn.close()

    # ------------------------------------------------ bookkeeping
    def _register(self, conn: GuardedConnection) -> None:
        with self._lock:
            try:
                self._selector.register(conn.socket, selectors.EVENT_READ, data=conn)
                return
            except (ValueError, KeyError, OSError):  # closed meanwhile (server stopping)
                pass
        conn.close()

    def _unregister(self, conn: GuardedConnection) -> None:
        with self._lock, contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(conn.socket)

    def _registered(self) -> list[GuardedConnection]:
        with self._lock:
            return [key.data for key in self._selector.get_map().values()
                    if key.data is not None]

    def _end_body(self, conn: GuardedConnection) -> None:
        """A worker is done with ``conn``'s request: its place for a large body,
        if it had one, goes to the next waiting connection of its address."""
        nxt = self.book.end_body(conn)
        if nxt is not None:
            self.server.process_conn(nxt)

    def forget(self, conn: GuardedConnection) -> None:
        """A connection closed (on any thread): it no longer counts for its address."""
        self._end_body(conn)
        if conn.counted_as is not None:
            self.book.leave(conn.counted_as)

    def connections_from(self, host: str) -> int:
        return self.book.connections(host)


class GuardedServer(wsgi.Server):
    """cheroot's WSGI server with ``HeadFront`` in place of its connection manager."""

    def __init__(self, bind_addr: tuple[str, int], app: Any, limits: Limits,
                 listener: socket.socket | None = None, **kw: Any) -> None:
        if listener is not None:
            bind_addr = listener.getsockname()[:2]
        super().__init__(bind_addr, app, **kw)
        # A listening socket bound by the supervisor of `joist serve --workers`
        # and shared by every worker (adopted in ``bind``; see cheroot_internals).
        self.listener = listener
        self.limits = limits
        self.max_request_header_size = limits.max_head_bytes
        # Idle keep-alive connections cost no thread here, only a descriptor
        # (bounded per address): keep them instead of closing past cheroot's 10.
        self.keep_alive_conn_limit = None  # type: ignore[assignment]
        self.front: HeadFront | None = None

    def bind(self, family: Any, type: Any, proto: Any = 0) -> Any:
        if self.listener is None:
            return super().bind(family, type, proto)
        self.socket = self.listener
        self.bind_addr = self.resolve_real_bind_addr(self.listener)
        return self.listener

    def prepare(self) -> None:
        cheroot_internals.check()
        super().prepare()
        self.front = HeadFront(self, self.limits)
        plain = cheroot_internals.install_manager(self, self.front)
        plain.close()  # only watched the listening socket, which stays open


__all__ = ["GuardedServer", "HeadFront", "Limits", "body_plan"]
