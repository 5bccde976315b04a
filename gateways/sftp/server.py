"""``SftpServer``: the listening socket, one paramiko transport per connection.

Threads: one accepts, one sweeps (logins past their grace time, finished
connections), and paramiko runs a transport thread per connection plus a
thread per SFTP session. Nothing blocks the accept loop: key exchange and
authentication happen on the connection's own transport thread, so a slow or
stalled client holds up nobody else.

Start and stop it in-process (``joist serve``, ``joist sftpd``, tests)::

    server = SftpServer(app.hierarchy, app.services.auth, host="127.0.0.1",
                        port=0, host_key_path=app.settings.sftp_host_key)
    server.start(); host, port = server.address; ...; server.stop()
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paramiko

from joist.core.auth import Authenticator
from joist.core.hierarchy import Hierarchy

from . import paramiko_internals
from .auth import ConnectionAuth
from .hostkey import fingerprint, load_host_key
from .session import SftpSession
from .settings import MAX_PACKET_SIZE, WINDOW_SIZE, SftpTuning, apply_algorithms

log = logging.getLogger("joist.sftp")

JOIN_TIMEOUT = 10.0


@dataclass
class Connection:
    transport: paramiko.Transport
    auth: ConnectionAuth
    source: str
    accepted: float = field(default_factory=time.monotonic)


class SftpServer:
    """A read-only SFTP server over ``hierarchy``; every session gets a
    ``ReadOnlyView`` of the principal ``authenticator`` logs in."""

    def __init__(self, hierarchy: Hierarchy, authenticator: Authenticator, *,
                 host: str = "127.0.0.1", port: int = 8022,
                 host_key_path: str | os.PathLike[str],
                 create_host_key: bool = True, tuning: SftpTuning | None = None,
                 listener: socket.socket | None = None) -> None:
        self.hierarchy = hierarchy
        self.authenticator = authenticator
        self.tuning = tuning or SftpTuning()
        self._bind = (host, port)
        self.host_key = load_host_key(host_key_path, create=create_host_key)
        paramiko_internals.check()  # a paramiko we were not built for: say so now
        paramiko_internals.use_c_mac_compare()
        self._listener: socket.socket | None = None
        # A listening socket shared with other processes (``joist serve
        # --workers``): accepted from without blocking, never shut down (that
        # would stop it for every process), woken through ``_wake``.
        self._shared = listener
        self._wake: tuple[int, int] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # guards _connections and _sessions
        self._connections: list[Connection] = []
        self._sessions: set[SftpSession] = set()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ lifecycle
    @property
    def address(self) -> tuple[str, int]:
        """Where the server listens (the real port when started on port 0)."""
        listener = self._listener or self._shared
        if listener is None:
            raise RuntimeError("The SFTP server is not started.")
        host, port = listener.getsockname()[:2]
        return str(host), int(port)

    @property
    def host_key_fingerprint(self) -> str:
        return fingerprint(self.host_key)

    def start(self) -> None:
        if self._shared is not None:
            self._listener = self._shared
            self._listener.setblocking(False)  # another process may take the connection
            self._wake = os.pipe()
        else:
            host, port = self._bind
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self._listener = socket.create_server((host, port), family=family, backlog=128)
        self._stopping.clear()
        for name, target in (("sftp-accept", self._accept_loop),
                             ("sftp-sweep", self._sweep_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("SFTP server listening on %s:%d (host key %s)", *self.address,
                 self.host_key_fingerprint)

    def stop(self) -> None:
        """Stop accepting, end every connection and session, and wait for them."""
        self._stopping.set()
        listener, self._listener = self._listener, None
        if self._wake is not None:
            os.write(self._wake[1], b"x")  # wakes the accept loop's select
        elif listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT)
        self._threads.clear()
        if listener is not None:
            listener.close()
        if self._wake is not None:
            for fd in self._wake:
                os.close(fd)
            self._wake = None
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.transport.close()
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.join(JOIN_TIMEOUT)

    def __enter__(self) -> SftpServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stats(self) -> dict[str, int]:
        """Live counts: connections, SFTP sessions and their open handles."""
        with self._lock:
            sessions = list(self._sessions)
            connections = sum(1 for c in self._connections if c.transport.is_active())
        return {"connections": connections, "sessions": len(sessions),
                "handles": sum(len(s.handles) for s in sessions)}

    # ------------------------------------------------------------ SessionHost
    def session_started(self, session: SftpSession) -> None:
        with self._lock:
            self._sessions.add(session)

    def session_ended(self, session: SftpSession) -> None:
        with self._lock:
            self._sessions.discard(session)

    # ------------------------------------------------------------ threads
    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        wake = self._wake[0] if self._wake is not None else None
        poller = select.poll()
        if wake is not None:
            poller.register(listener, select.POLLIN)
            poller.register(wake, select.POLLIN)
        while not self._stopping.is_set():
            try:
                if wake is not None:
                    if any(fd == wake for fd, _ in poller.poll()):
                        return
                    sock, addr = listener.accept()
                    sock.setblocking(True)
                else:
                    sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                continue  # another process took it
            except OSError as exc:
                if self._stopping.is_set():
                    return
                log.warning("sftp accept failed: %s", exc)
                self._stopping.wait(0.1)  # e.g. out of descriptors: do not spin
                continue
            try:
                self._admit(sock, str(addr[0]))
            except Exception:
                log.exception("sftp: could not set up a connection from %s", addr[0])
                sock.close()

    def _admit(self, sock: socket.socket, source: str) -> None:
        with self._lock:
            live = sum(1 for c in self._connections if c.transport.is_active())
        if live >= self.tuning.max_connections:
            log.warning("sftp: refusing %s, %d connections already", source, live)
            sock.close()
            return
        _tune_socket(sock, self.tuning.stall_timeout)
        transport = paramiko.Transport(sock, default_window_size=WINDOW_SIZE,
                                       default_max_packet_size=MAX_PACKET_SIZE)
        paramiko_internals.buffer_reads(transport)  # a recv per batch, not three a packet
        transport.add_server_key(self.host_key)
        apply_algorithms(transport.get_security_options())
        transport.set_subsystem_handler("sftp", SftpSession, self)
        if self.tuning.keepalive:
            transport.set_keepalive(self.tuning.keepalive)
        auth = ConnectionAuth(self.authenticator, source)
        with self._lock:
            self._connections.append(Connection(transport, auth, source))
        # With an event, negotiation runs on the transport's own thread.
        transport.start_server(event=threading.Event(), server=auth)

    def _sweep_loop(self) -> None:
        while not self._stopping.wait(self.tuning.housekeeping):
            self.sweep()

    def sweep(self) -> None:
        """Forget finished connections; drop those still not logged in after
        ``login_grace`` seconds."""
        now = time.monotonic()
        expired: list[Connection] = []
        with self._lock:
            keep: list[Connection] = []
            for conn in self._connections:
                if not conn.transport.is_active():
                    continue
                if not conn.transport.is_authenticated() and \
                        now - conn.accepted > self.tuning.login_grace:
                    expired.append(conn)
                    continue
                keep.append(conn)
            self._connections = keep
        for conn in expired:
            log.info("sftp: %s did not log in within %.0f s", conn.source,
                     self.tuning.login_grace)
            conn.transport.close()


def _tune_socket(sock: socket.socket, stall_timeout: float) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    user_timeout = getattr(socket, "TCP_USER_TIMEOUT", None)
    if user_timeout is not None:
        # Unacknowledged data older than this ends the connection: a client
        # that vanished without a FIN frees its threads and handles.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, user_timeout, int(stall_timeout * 1000))


__all__ = ["SftpServer"]
