"""Fixtures of the WebDAV tests: a populated world behind a real server
(``admin.server.Server``: REST and WebDAV on one cheroot port, port 0)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from joist.admin.bootstrap import App
from joist.admin.server import Server
from tests.conftest import site_app
from tests.gateways.webdav.davclient import Dav
from tests.s3env import select_test_assetstore
from tests.world import PASSWORD, World, build_world


@dataclass
class DavSite:
    app: App
    world: World
    server: Server

    @property
    def base(self) -> str:
        return self.server.url + "/dav"

    def client(self, login: str | None = None, **kw: object) -> Dav:
        return Dav(self.base, None if login is None else (login, PASSWORD), **kw)  # type: ignore[arg-type]


def start_site(data_dir: Path, *, like: App | None = None,
               **overrides: object) -> tuple[App, Server]:
    app = site_app(data_dir, like=like,
                   **{"server.port": 0, "server.threads": 24, **overrides})
    server = Server(app)
    try:
        select_test_assetstore(app)  # JOIST_TEST_ASSETSTORE=s3: uploads go to S3
        server.start()
    except BaseException:
        app.close()
        raise
    return app, server


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DavSite]:
    app, server = start_site(tmp_path / "data")
    try:
        yield DavSite(app, build_world(app), server)
    finally:
        server.stop()
        app.close()


@pytest.fixture
def dav(site: DavSite) -> Iterator[Callable[[str | None], Dav]]:
    made: list[Dav] = []

    def make(login: str | None = None) -> Dav:
        client = site.client(login)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
