"""``joist serve``: the HTTP server (REST API) and, later, WebDAV and SFTP."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

log = logging.getLogger("joist.serve")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("serve", help="run the server")
    parser.add_argument("--host", help="address to listen on (server.host)")
    parser.add_argument("--port", type=int, help="HTTP port, 0 = any free one (server.port)")
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from ..bootstrap import build_app
    from ..cli import configure_logging, settings_from
    from ..server import Server

    settings = settings_from(args, {"server.host": args.host, "server.port": args.port})
    configure_logging(settings, args.verbose)
    app = build_app(settings)
    stop = threading.Event()

    def on_signal(_sig: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = Server(app)
    try:
        server.start()
        for line in server.banner():
            print(line, flush=True)
        stop.wait()
        log.info("shutting down")
    finally:
        server.stop()
        app.close()
    return 0
