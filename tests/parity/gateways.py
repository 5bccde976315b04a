"""One world behind all four gateways at once, and a walker that reads a tree
through any of them (the hierarchy contract's ``FsClient``).

REST and WebDAV share one cheroot server (``admin.server.Server``), SFTP runs
its own server in this process, and each principal's FUSE mount is a
``joist mount`` subprocess on the same data directory. The store is SQLite
whatever ``JOIST_TEST_ENGINE`` says: a mount is another process, and mongomock
lives in this one's memory. Everything started is stopped by ``close``, which
the module fixture runs even when a test fails.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
import requests

from joist.admin.bootstrap import build_app
from joist.admin.server import Server
from joist.gateways.sftp import SftpServer, SftpTuning
from tests.conftest import make_settings
from tests.contract.hierarchy_suite import FsClient
from tests.contract.test_hierarchy_contract import ViewClient
from tests.gateways.fuse.fuse_harness import MountFs, MountSite, fuse_available
from tests.gateways.http.restfs import RestFs, login_token
from tests.gateways.sftp.sftpfs import SftpFs, connect
from tests.gateways.webdav.davclient import Dav, DavFs
from tests.parity.parity_world import PASSWORD, build_parity_world
from tests.s3env import select_test_assetstore
from tests.world import World

GATEWAYS = ("rest", "webdav", "sftp", "fuse")
MAX_NODES = 500  # the parity world has about 50: a walk past this is looping
# Short SFTP timers, as the SFTP tests use, so that stopping is quick.
TUNING = SftpTuning(stall_timeout=5.0, login_grace=5.0, housekeeping=0.1, keepalive=0)


@dataclass
class Everything:
    """The world and a client per (gateway, login); ``None`` is anonymous."""

    mounts: MountSite
    server: Server
    sftp: SftpServer
    clients: dict[tuple[str, str | None], FsClient] = field(default_factory=dict)
    closers: list[Callable[[], Any]] = field(default_factory=list)

    @property
    def world(self) -> World:
        return self.mounts.world

    def view(self, login: str | None) -> ViewClient:
        """The core view itself: the reference every gateway is compared with."""
        principal = self.world.principal(login)
        return ViewClient(self.world.app.hierarchy.view(principal, read_only=True))

    def fs(self, gateway: str, login: str | None) -> FsClient:
        key = (gateway, login)
        if key not in self.clients:
            self.clients[key] = self._connect(gateway, login)
        return self.clients[key]

    def _connect(self, gateway: str, login: str | None) -> FsClient:
        auth = None if login is None else (login, PASSWORD)
        if gateway == "rest":
            session = requests.Session()
            if login is not None:
                api = self.server.url + "/api/v1"
                session.headers["Girder-Token"] = login_token(api, login, PASSWORD)
            self.closers.append(session.close)
            return RestFs(self.server.url + "/api/v1", session)
        if gateway == "webdav":
            dav = Dav(self.server.url + "/dav", auth)
            self.closers.append(dav.close)
            return DavFs(dav)
        if gateway == "sftp":
            transport = connect(self.sftp.address, login, PASSWORD)
            self.closers.append(transport.close)
            client = paramiko.SFTPClient.from_transport(transport)
            assert client is not None
            return SftpFs(client)
        if gateway == "fuse":
            return MountFs(self.mounts.mount(login).root)
        raise ValueError(gateway)

    def close(self) -> None:
        # Clients first, then the servers, then the mounts and the App.
        with contextlib.ExitStack() as stack:
            stack.callback(self.mounts.close)
            stack.callback(self.server.stop)
            stack.callback(self.sftp.stop)
            for closer in self.closers:
                stack.callback(closer)


def start_everything(base: Path) -> Everything:
    base.mkdir(parents=True, exist_ok=True)
    (base / "home").mkdir(exist_ok=True)
    app = build_app(make_settings(base / "data", **{"server.port": 0}), env={})
    try:
        select_test_assetstore(app)  # JOIST_TEST_ASSETSTORE=s3: the files go to S3
        world = build_parity_world(app)
    except BaseException:
        app.close()
        raise
    mounts = MountSite(app, world, base)  # its close() closes the App too
    with contextlib.ExitStack() as undo:
        undo.callback(mounts.close)
        # WebDAV serves anonymous readers only when asked to (issue 12 #10).
        app.services.settings.set("joist.webdav.anonymous_read", True)
        server = Server(app)
        server.http.expiration_interval = 0.05  # cheroot's shutdown poll
        server.start()
        undo.callback(server.stop)
        sftp = SftpServer(app.hierarchy, app.services.auth, host="127.0.0.1", port=0,
                          host_key_path=app.settings.sftp_host_key, tuning=TUNING)
        sftp.start()
        undo.pop_all()
    return Everything(mounts, server, sftp)


# ---------------------------------------------------------------- walking

Entry = tuple[str, int, str | None]  # kind, size, sha256 of the content (files)


def describe(fs: FsClient, path: str) -> Entry:
    """What a path is, as one gateway shows it: a directory and its size (0 on
    every gateway), or a file, its size and the digest of the bytes read
    through the gateway."""
    if fs.isdir(path):
        return ("dir", fs.size(path), None)
    data = fs.read(path)
    return ("file", fs.size(path), hashlib.sha256(data).hexdigest())


def join(parent: str, name: str) -> str:
    return parent.rstrip("/") + "/" + name


def walk(fs: FsClient, children: Callable[[FsClient, str], list[str]] | None = None,
         top: str = "/") -> dict[str, Entry]:
    """Every path below ``top`` with its entry, depth first. ``children``
    replaces ``fs.listdir`` (for a listing a gateway may refuse by design)."""
    listdir = children or (lambda client, path: client.listdir(path))
    found: dict[str, Entry] = {}
    pending = [top]
    while pending:  # ends: the tree is finite, and MAX_NODES guards a cycle
        path = pending.pop()
        for name in listdir(fs, path):
            child = join(path, name)
            assert child not in found, f"{child} listed twice"
            found[child] = describe(fs, child)
            if found[child][0] == "dir":
                pending.append(child)
        assert len(found) < MAX_NODES, "the walk does not end"
    return found


def outcome(probe: Callable[[], Any]) -> str:
    """How a probe ended: ``ok`` or the name of the exception type."""
    try:
        probe()
    except OSError as exc:
        return type(exc).__name__
    return "ok"


__all__ = ["GATEWAYS", "Entry", "Everything", "describe", "fuse_available", "join",
           "outcome", "start_everything", "walk"]
