"""``joist serve``: the HTTP server (REST, WebDAV, web client) and SFTP, in one
process or in ``--workers N`` processes sharing their ports (``admin/workers.py``)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

from joist.core.memory import freeze_startup

log = logging.getLogger("joist.serve")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("serve", help="run the server")
    parser.add_argument("--host", help="address to listen on (server.host)")
    parser.add_argument("--port", type=int, help="HTTP port, 0 = any free one (server.port)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="server processes sharing the ports; default one per CPU "
                             "core, 1 = a single process (server.workers)")
    parser.set_defaults(handler=_serve)


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def on_signal(_sig: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def _serve(args: argparse.Namespace) -> int:
    from ..cli import configure_logging, settings_from
    from ..workers import worker_listeners

    if args.workers is not None and args.workers < 0:
        print("joist: error: --workers must be 0 (one per core) or more", file=sys.stderr,
              flush=True)
        return 2
    settings = settings_from(args, {"server.host": args.host, "server.port": args.port,
                                    "server.workers": args.workers})
    configure_logging(settings, args.verbose)
    handed = worker_listeners()
    if handed is not None:
        return _worker(settings, *handed)
    count = settings.server.workers or os.cpu_count() or 1
    if count == 1:
        return _single(settings)
    return _supervise(settings, count, getattr(args, "argv", None) or [])


def _single(settings: Any) -> int:
    from ..bootstrap import build_app
    from ..server import Server

    app = build_app(settings)
    stop = _stop_event()
    server = Server(app)
    try:
        server.start()
        freeze_startup()
        for line in server.banner():
            print(line, flush=True)
        stop.wait()
        log.info("shutting down")
    finally:
        server.stop()
        app.close()
    return 0


def _worker(settings: Any, listeners: dict[str, socket.socket], ready: int | None) -> int:
    """One of the supervisor's workers: serve the handed-down sockets, quietly."""
    from ..bootstrap import build_app
    from ..server import Server
    from ..workers import report_ready

    stop = _stop_event()
    app = build_app(settings)
    server = Server(app, listeners)
    try:
        server.start()
        freeze_startup()
        report_ready(ready)
        stop.wait()
        log.info("worker %d shutting down", os.getpid())
    finally:
        server.stop()
        app.close()
    return 0


def _supervise(settings: Any, count: int, argv: list[str]) -> int:
    from ..bootstrap import build_app
    from ..server import LISTEN_BACKLOG, Server
    from ..workers import Supervisor, bind_listener

    listeners: dict[str, socket.socket] = {}
    stop = _stop_event()
    wanted = [("http", settings.server.host, settings.server.port, LISTEN_BACKLOG, True)]
    if settings.webdav.enabled and settings.webdav.port >= 0:
        wanted.append(("dav", settings.server.host, settings.webdav.port, LISTEN_BACKLOG, True))
    if settings.sftp.enabled:
        wanted.append(("sftp", settings.sftp.host, settings.sftp.port, 128, False))
    try:
        for name, host, port, backlog, resolve in wanted:
            try:
                listeners[name] = bind_listener(host, port, backlog=backlog, resolve=resolve)
            except OSError as exc:
                print(f"joist: error: cannot listen on {host}:{port} ({name}): "
                      f"{exc.strerror or exc}", file=sys.stderr, flush=True)
                return 1
        # Built once here before any worker: the store's tables and indexes, the
        # default assetstore and the SFTP host key are made by one process, and
        # the banner says where the workers' shared sockets are.
        app = build_app(settings)
        try:
            banner = Server(app, listeners).banner()
        finally:
            app.close()
        supervisor = Supervisor(count, argv, listeners)
        if not supervisor.start():
            return 1
        try:
            print(f"{count} worker processes (pids "
                  f"{', '.join(map(str, supervisor.pids()))})", flush=True)
            for line in banner:
                print(line, flush=True)
            supervisor.supervise(stop)
            log.info("shutting down %d workers", count)
        finally:
            status = supervisor.stop()
        return status
    finally:
        for sock in listeners.values():
            sock.close()
