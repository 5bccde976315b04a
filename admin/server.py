"""Running servers for an ``App``: the HTTP server (cheroot) for now.

The REST and WebDAV gateways plug into the WSGI application built here; the
SFTP server joins ``joist serve`` with its gateway.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from cheroot import wsgi

from joist.core.acl import SYSTEM

from .bootstrap import App

StartResponse = Callable[..., Any]
VERSION = "5.0.0"  # the Girder API generation we speak (girder-client checks it)


def health_app(app: App) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """Until the REST gateway lands: a health route and the version route."""

    def application(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/api/v1/system/version"):
            body = json.dumps({"release": VERSION, "status": "ok"}).encode()
            start("200 OK", [("Content-Type", "application/json"),
                             ("Content-Length", str(len(body)))])
            return [body]
        body = b'{"message": "Not found.", "type": "rest"}'
        start("404 Not Found", [("Content-Type", "application/json"),
                                ("Content-Length", str(len(body)))])
        return [body]

    return application


class Server:
    def __init__(self, app: App) -> None:
        self.app = app
        settings = app.settings.server
        self.http = wsgi.Server((settings.host, settings.port), health_app(app),
                                numthreads=settings.threads, server_name="joist")
        self._thread: threading.Thread | None = None

    @property
    def http_address(self) -> tuple[str, int]:
        host, port = self.http.bind_addr[:2]
        return str(host), int(port)

    def start(self) -> None:
        self.http.prepare()
        self._thread = threading.Thread(target=self.http.serve, name="http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.http.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def banner(self) -> list[str]:
        host, port = self.http_address
        users = self.app.services.users.list(SYSTEM, limit=1)
        lines = [f"Joist is running. REST API: http://{host}:{port}/api/v1",
                 f"Data directory: {self.app.settings.data_path}"]
        if not users:
            lines.append("No users yet: create the first (an administrator) with\n"
                         "  .venv/bin/joist user create LOGIN --email you@example.org")
        else:
            lines.append("Log in with your Joist login and password.")
        return lines
