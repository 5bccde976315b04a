"""Running servers for an ``App``: one cheroot HTTP server for REST and WebDAV.

The WSGI application is a prefix dispatcher: each gateway's app is mounted at
its prefix (``/api/v1`` for REST, ``/dav`` for WebDAV) with ``SCRIPT_NAME`` and
``PATH_INFO`` adjusted, as any WSGI container would.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

from joist.core.acl import SYSTEM
from joist.core.memory import Reclaimer

from .bootstrap import App
from .http_body import Limits
from .http_front import GuardedServer

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
MAX_HEADER_BYTES = 64 * 1024  # request line plus headers, per request (then 431)
# The listen backlog (the kernel caps it at net.core.somaxconn). cheroot's default of 5
# overflows when many clients connect at once while the accept thread waits for the GIL,
# and the kernel then drops or resets connections.
LISTEN_BACKLOG = 1024


class PrefixDispatcher:
    """Route by path prefix; the longest prefix wins."""

    def __init__(self, routes: dict[str, WSGIApp], fallback: WSGIApp) -> None:
        self.routes = sorted(routes.items(), key=lambda r: -len(r[0]))
        self.fallback = fallback

    def __call__(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        for prefix, application in self.routes:
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix):]
                return application(environ, start)
        return self.fallback(environ, start)


def build_routes(app: App, endpoints: Callable[[], dict[str, Any]] | None = None
                 ) -> dict[str, WSGIApp]:
    """The gateways served on the HTTP port, by prefix."""
    from joist.gateways.http import make_rest_app
    routes: dict[str, WSGIApp] = {
        "/api/v1": make_rest_app(app.services, app.hierarchy, app.settings, endpoints),
    }
    if app.settings.webdav.enabled:
        from joist.gateways.webdav import make_dav_app
        routes["/dav"] = make_dav_app(app.hierarchy, app.services, app.settings)
    return routes


class Server:
    """Everything ``joist serve`` runs, startable and stoppable in-process
    (tests start it on port 0)."""

    def __init__(self, app: App, listeners: dict[str, socket.socket] | None = None) -> None:
        """``listeners``: listening sockets bound by the supervisor of ``joist serve
        --workers`` ("http", "dav", "sftp"), used instead of binding ports."""
        self.app = app
        listeners = listeners or {}
        # Memory comes back after big work: expired cache entries, freed heap.
        self.reclaimer = Reclaimer(app.settings.memory.reclaim_interval)
        self.reclaimer.add(app.hierarchy.sweep)
        settings = app.settings.server
        # A notification stream holds a worker thread for minutes: leave most
        # of them to everything else (more streams get 503).
        app.services.notifications.max_streams = max(1, settings.threads // 4)
        from joist.gateways.http.webclient import WebClient
        # Everything the prefixes do not take is the browser client (and /healthz).
        self.wsgi = PrefixDispatcher(build_routes(app, self.endpoints), WebClient())
        # Slow clients: heads are read on the selector thread under a deadline,
        # bodies under a minimum rate, connections capped per address (http_front).
        limits = Limits(header_timeout=settings.header_timeout,
                        body_timeout=settings.body_timeout,
                        body_min_rate=settings.body_min_rate,
                        per_address=settings.max_connections_per_address,
                        body_workers_per_address=(settings.body_workers_per_address
                                                  or max(1, settings.threads // 2)),
                        max_head_bytes=MAX_HEADER_BYTES)
        self.http = GuardedServer((settings.host, settings.port), self.wsgi, limits,
                                  listener=listeners.get("http"),
                                  numthreads=settings.threads, server_name="joist",
                                  request_queue_size=LISTEN_BACKLOG)
        self.dav: GuardedServer | None = None  # WebDAV alone on its own port, if configured
        if app.settings.webdav.enabled and app.settings.webdav.port >= 0:
            from joist.gateways.webdav import make_dav_app
            self.dav = GuardedServer(
                (settings.host, app.settings.webdav.port),
                make_dav_app(app.hierarchy, app.services, app.settings, prefix=""), limits,
                listener=listeners.get("dav"),
                numthreads=settings.threads, server_name="joist",
                request_queue_size=LISTEN_BACKLOG)
        self.sftp: Any = None  # the read-only SFTP server, unless disabled
        if app.settings.sftp.enabled:
            from joist.gateways.sftp import SftpServer
            self.sftp = SftpServer(app.hierarchy, app.services.auth,
                                   host=app.settings.sftp.host, port=app.settings.sftp.port,
                                   host_key_path=app.settings.sftp_host_key,
                                   listener=listeners.get("sftp"))
        self._threads: list[threading.Thread] = []

    @property
    def http_address(self) -> tuple[str, int]:
        host, port = self.http.bind_addr[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.http_address
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    @property
    def dav_url(self) -> str | None:
        """WebDAV's own-port URL (None unless ``webdav.port`` is set)."""
        if self.dav is None:
            return None
        host, port = self.dav.bind_addr[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    def endpoints(self) -> dict[str, Any]:
        """Where the other protocols listen, for the web client's Connect panel
        (``GET system/endpoints``): read when asked, since ports may be picked at
        start."""
        sftp = None
        if self.sftp is not None:
            host, port = self.sftp.address
            sftp = {"host": host, "port": port}
        webdav = None
        if self.app.settings.webdav.enabled:
            webdav = {"path": "/dav", "port": self.dav.bind_addr[1] if self.dav else None}
        return {"webdav": webdav, "sftp": sftp}

    def start(self) -> None:
        try:
            self.reclaimer.start()
            for name, server in (("http", self.http), ("dav", self.dav)):
                if server is not None:
                    server.prepare()
                    thread = threading.Thread(target=server.serve, name=name, daemon=True)
                    thread.start()
                    self._threads.append(thread)
            if self.sftp is not None:
                self.sftp.start()
            # plugins' background work that belongs to a serving process (the job runners)
            self.app.services.events.trigger("joist.serve.start", self.app.services)
        except BaseException:
            self.stop()  # whatever did start must not outlive a failed start
            raise

    def stop(self) -> None:
        self.app.services.events.trigger("joist.serve.stop", self.app.services)
        self.app.services.notifications.close()  # open streams end: threads come back
        if self.sftp is not None:
            self.sftp.stop()
        self.http.stop()
        if self.dav is not None:
            self.dav.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        self.reclaimer.stop()

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def banner(self) -> list[str]:
        lines = [f"Joist is running. REST API: {self.url}/api/v1"]
        if self.app.settings.webdav.enabled:
            lines.append(f"WebDAV: {self.url}/dav" +
                         (f" (and {self.dav_url})" if self.dav_url else ""))
        if self.sftp is not None:
            host, port = self.sftp.address
            lines.append(f"SFTP (read-only): sftp -P {port} LOGIN@{host}   "
                         f"host key {self.sftp.host_key_fingerprint}")
        lines.append(f"Data directory: {self.app.settings.data_path}")
        if not self.app.services.users.list(SYSTEM, limit=1):
            lines.append("No users yet: create the first (an administrator) with\n"
                         "  .venv/bin/joist user create LOGIN --email you@example.org")
        else:
            lines.append("Log in with your Joist login (or email) and password.")
        return lines
