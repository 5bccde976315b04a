"""``joist sftpd``: the read-only SFTP server alone (Girder's ``girder sftpd``)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

log = logging.getLogger("joist.sftpd")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "sftpd", help="run the read-only SFTP server",
        description="Serve the data tree over SFTP, read-only, with the same names and "
                    "permissions as every other gateway.")
    parser.add_argument("-i", "--identity-file", dest="identity", metavar="KEY",
                        help="host private key file (default: sftp.host_key, else "
                             "<data_dir>/sftp_host_ed25519_key, generated on first start)")
    parser.add_argument("-p", "--port", type=int, help="port, 0 = any free one (sftp.port)")
    parser.add_argument("-H", "--host", help="address to listen on (sftp.host)")
    parser.set_defaults(handler=_sftpd)


def _sftpd(args: argparse.Namespace) -> int:
    from joist.core.memory import freeze_startup
    from joist.gateways.sftp import SftpServer

    from ..bootstrap import build_app
    from ..cli import configure_logging, settings_from

    settings = settings_from(args, {"sftp.host": args.host, "sftp.port": args.port,
                                    "sftp.host_key": args.identity})
    configure_logging(settings, args.verbose)
    stop = threading.Event()

    def on_signal(_sig: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app = build_app(settings)
    try:
        server = SftpServer(app.hierarchy, app.services.auth, host=settings.sftp.host,
                            port=settings.sftp.port, host_key_path=settings.sftp_host_key,
                            create_host_key=not args.identity)
        server.start()
        freeze_startup()
        try:
            host, port = server.address
            print(f"Joist SFTP server (read-only) on {host}:{port}", flush=True)
            print(f"Host key {settings.sftp_host_key}: {server.host_key_fingerprint}",
                  flush=True)
            print(f"Connect with: sftp -P {port} LOGIN@{host}", flush=True)
            stop.wait()
            log.info("shutting down")
        finally:
            server.stop()
    finally:
        app.close()
    return 0
