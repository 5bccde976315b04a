"""Fixtures of the revocation matrix: one store with REST + WebDAV (one cheroot
port) and SFTP served by this process, FUSE mounts in their own processes, and
one probe per gateway that tells whether a credential still reaches a path.

The subject is carol (world.py): member of group ``team`` (READ on
/collection/shared), owner of /user/carol/Private/mine.txt.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
import requests

from joist.admin.bootstrap import App
from joist.admin.server import Server
from joist.core.acl import Principal
from joist.gateways.sftp import SftpServer
from tests.gateways.fuse.fuse_harness import MountProc, cli_env, fuse_available
from tests.gateways.sftp.conftest import start_server as start_sftp
from tests.gateways.sftp.sftpfs import connect
from tests.gateways.webdav.conftest import start_site
from tests.world import World, build_world, upload_bytes

SUBJECT = "carol"
MINE = "/user/carol/Private/mine.txt"
MINE_BYTES = b"carol's own bytes\n"
SHARED = "/collection/shared/docs/report.txt"   # through the group
SECRET = "/collection/secret/vault/hidden.txt"  # admins only
NEW_PASSWORD = "a brand new password"
OTHER_PROCESS_DEADLINE = 1.0  # the bound for a change made elsewhere


def poll(predicate: Callable[[], bool], deadline: float) -> bool:
    """True once ``predicate`` holds, False if it still fails at ``deadline``
    (a ``time.monotonic()`` value). Never sleeps as synchronisation: it polls."""
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return predicate()
        time.sleep(0.02)


@dataclass
class Site:
    app: App
    world: World
    server: Server
    sftp_server: SftpServer
    base: Path
    closers: list[Callable[[], None]] = field(default_factory=list)

    # ------------------------------------------------------------ data
    @property
    def subject(self) -> dict[str, Any]:
        doc = self.app.store.users.find_one({"login": SUBJECT})
        assert doc is not None
        return doc

    def me(self) -> Principal:
        return Principal.from_user(self.subject)

    def token(self) -> str:
        return str(self.app.services.auth.login_token(self.subject)["_id"])

    def api_key(self) -> dict[str, Any]:
        return self.app.services.auth.api_keys.create(self.me(), name="revocation")

    # ------------------------------------------------------------ REST
    @property
    def api(self) -> str:
        return self.server.url + "/api/v1"

    def rest_reads(self, path: str, token: str) -> bool:
        resp = requests.get(f"{self.api}/resource/lookup", params={"path": path},
                            headers={"Girder-Token": token}, timeout=30)
        return resp.status_code == 200

    def rest_basic_login(self, password: str) -> int:
        return requests.get(f"{self.api}/user/authentication", auth=(SUBJECT, password),
                            timeout=30).status_code

    def rest_key_token(self, key: str) -> str | None:
        resp = requests.post(f"{self.api}/api_key/token", params={"key": key}, timeout=30)
        return resp.json()["authToken"]["token"] if resp.status_code == 200 else None

    # ------------------------------------------------------------ WebDAV
    def dav(self, secret: str | None = None, token: str | None = None) -> requests.Session:
        session = requests.Session()
        if secret is not None:
            session.auth = (SUBJECT, secret)
        if token is not None:
            session.headers["Girder-Token"] = token
        self.closers.append(session.close)
        return session

    def dav_reads(self, session: requests.Session, path: str) -> bool:
        resp = session.get(self.server.url + "/dav" + path, timeout=30)
        return resp.status_code == 200

    # ------------------------------------------------------------ SFTP
    def sftp(self, secret: str) -> paramiko.SFTPClient:
        transport = connect(self.sftp_server.address, SUBJECT, secret)
        self.closers.append(transport.close)
        client = paramiko.SFTPClient.from_transport(transport)
        assert client is not None
        return client

    @staticmethod
    def sftp_reads(client: paramiko.SFTPClient, path: str) -> bool:
        try:
            with client.open(path) as handle:
                handle.read(4)
            return True
        except OSError:
            return False

    # ------------------------------------------------------------ FUSE
    def mount(self, *, key: str | None = None, token: str | None = None) -> MountProc:
        point = self.base / f"mnt{len(self.closers)}"
        point.mkdir()
        extra = {"JOIST_API_KEY": key} if key is not None else {"JOIST_TOKEN": token or ""}
        env = cli_env(self.app.settings.data_path, self.base / "home", **extra)
        log_path = self.base / f"{point.name}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "joist.admin.cli", "mount", str(point), "--user",
                 SUBJECT], env=env, stdout=log, stderr=subprocess.STDOUT)
        mount = MountProc(point, proc, log_path)
        self.closers.append(mount.stop)
        mount.wait_mounted()
        return mount

    @staticmethod
    def fuse_reads(mount: MountProc, path: str) -> bool:
        try:
            with open(str(mount.root) + path, "rb") as handle:
                handle.read(4)
            return True
        except OSError:
            return False

    def close(self) -> None:
        for close in reversed(self.closers):
            with suppress(Exception):
                close()
        self.closers.clear()


@contextmanager
def revocation_site(base: Path) -> Iterator[Site]:
    base.mkdir(parents=True, exist_ok=True)
    (base / "home").mkdir(exist_ok=True)
    app, server = start_site(base / "data")
    site: Site | None = None
    try:
        world = build_world(app)
        carol = world.users[SUBJECT]
        private = app.services.folders.list(Principal.from_user(carol), "user", carol["_id"],
                                            name="Private")[0][0]
        upload_bytes(app, Principal.from_user(carol), "folder", private, "mine.txt",
                     MINE_BYTES)
        sftp = start_sftp(app)
        site = Site(app, world, server, sftp, base)
        yield site
    finally:
        if site is not None:
            site.close()
            site.sftp_server.stop()
        server.stop()
        app.close()


def cli(site: Site, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """A ``joist`` command in its own process, on the site's store."""
    env = cli_env(site.app.settings.data_path, site.base / "home")
    return subprocess.run([sys.executable, "-m", "joist.admin.cli", *args], input=stdin,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


FUSE = fuse_available()
__all__ = ["FUSE", "MINE", "MINE_BYTES", "NEW_PASSWORD", "OTHER_PROCESS_DEADLINE", "SECRET",
           "SHARED", "SUBJECT", "Site", "cli", "poll", "revocation_site"]
