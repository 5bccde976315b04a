"""Fixtures of the SFTP tests: a populated world behind a real ``SftpServer``
on 127.0.0.1, port 0, stopped by the fixture even when a test fails."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
import pytest

from joist.admin.bootstrap import App
from joist.gateways.sftp import SftpServer, SftpTuning
from tests.conftest import site_app
from tests.gateways.sftp.sftpfs import RawSftp, SftpFs, connect
from tests.s3env import select_test_assetstore
from tests.world import PASSWORD, World, build_world

# Short timers so tests about stalls and logins finish quickly.
TEST_TUNING = SftpTuning(stall_timeout=5.0, login_grace=5.0, housekeeping=0.1, keepalive=0)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@dataclass
class SftpSite:
    app: App
    world: World
    server: SftpServer
    transports: list[paramiko.Transport] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    def transport(self, login: str | None = "alice", password: str = PASSWORD,
                  key: paramiko.PKey | None = None) -> paramiko.Transport:
        transport = connect(self.address, login, password, key)
        self.transports.append(transport)
        return transport

    def client(self, login: str | None = "alice", **kw: object) -> paramiko.SFTPClient:
        return paramiko.SFTPClient.from_transport(self.transport(login, **kw))  # type: ignore[arg-type, return-value]

    def raw(self, login: str | None = "alice") -> RawSftp:
        return RawSftp(self.transport(login))

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        self.transports.clear()


def start_server(app: App, tuning: SftpTuning = TEST_TUNING, **kw: object) -> SftpServer:
    server = SftpServer(app.hierarchy, app.services.auth, host="127.0.0.1", port=0,
                        host_key_path=app.settings.sftp_host_key, tuning=tuning, **kw)  # type: ignore[arg-type]
    server.start()
    return server


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SftpSite]:
    app = site_app(tmp_path / "data")
    try:
        select_test_assetstore(app)  # JOIST_TEST_ASSETSTORE=s3: uploads go to S3
        world = build_world(app)
        server = start_server(app)
        site = SftpSite(app, world, server)
        try:
            yield site
        finally:
            site.close()
            server.stop()
    finally:
        app.close()


@pytest.fixture
def fs(site: SftpSite) -> Callable[[str | None], SftpFs]:
    clients: dict[str | None, SftpFs] = {}

    def make(login: str | None) -> SftpFs:
        if login not in clients:
            clients[login] = SftpFs(site.client(login))
        return clients[login]

    return make
