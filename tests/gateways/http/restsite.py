"""A populated world behind a real server on 127.0.0.1:0, and the small helpers
the REST tests share (log in, build sessions, upload through the protocol)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from joist.admin.bootstrap import App
from joist.admin.server import Server
from joist.core.services.check import Checker
from tests.conftest import site_app
from tests.s3env import select_test_assetstore
from tests.world import PASSWORD, World, build_world


@dataclass
class RestSite:
    app: App
    world: World
    server: Server
    tokens: dict[str, str] = field(default_factory=dict)
    sessions: list[requests.Session] = field(default_factory=list)

    @property
    def api(self) -> str:
        """The API root, with the trailing slash girder-client uses."""
        return self.server.url + "/api/v1/"

    def url(self, path: str) -> str:
        return self.api + path.lstrip("/")

    def id(self, name: str) -> str:
        """The id of a world document (``alice``, ``data``, ``shared``...)."""
        doc = self.world.users.get(name) or self.world.docs[name]
        return str(doc["_id"])

    def token(self, login: str) -> str:
        """A full login token (Basic auth, as girder-client does it)."""
        if login not in self.tokens:
            reply = requests.get(self.url("user/authentication"), auth=(login, PASSWORD),
                                 timeout=10)
            assert reply.status_code == 200, reply.text
            self.tokens[login] = reply.json()["authToken"]["token"]
        return self.tokens[login]

    def session(self, login: str | None = None) -> requests.Session:
        """A session sending ``Girder-Token`` for ``login`` (None: anonymous)."""
        session = requests.Session()
        if login is not None:
            session.headers["Girder-Token"] = self.token(login)
        self.sessions.append(session)
        return session

    def call(self, method: str, path: str, login: str | None = None,
             **kw: Any) -> requests.Response:
        headers = dict(kw.pop("headers", None) or {})
        if login is not None:
            headers.setdefault("Girder-Token", self.token(login))
        kw.setdefault("timeout", 30)
        return requests.request(method, self.url(path), headers=headers, **kw)

    def get(self, path: str, login: str | None = None, **kw: Any) -> requests.Response:
        return self.call("GET", path, login, **kw)

    def post(self, path: str, login: str | None = None, **kw: Any) -> requests.Response:
        return self.call("POST", path, login, **kw)

    def put(self, path: str, login: str | None = None, **kw: Any) -> requests.Response:
        return self.call("PUT", path, login, **kw)

    def delete(self, path: str, login: str | None = None, **kw: Any) -> requests.Response:
        return self.call("DELETE", path, login, **kw)

    def find_file(self, folder: str, item_name: str, login: str = "admin") -> dict[str, Any]:
        """The first file of the item ``item_name`` in world folder ``folder``."""
        items = self.get("item", login, params={"folderId": self.id(folder),
                                                "name": item_name}).json()
        assert len(items) == 1, items
        files = self.get(f"item/{items[0]['_id']}/files", login).json()
        return files[0]  # type: ignore[no-any-return]

    def upload(self, login: str, folder_id: str, name: str, data: bytes) -> dict[str, Any]:
        """A one-shot upload (the body is the only chunk)."""
        reply = self.post("file", login, params={
            "parentType": "folder", "parentId": folder_id, "name": name,
            "size": len(data)}, data=data)
        assert reply.status_code == 200, reply.text
        return reply.json()  # type: ignore[no-any-return]

    def check(self) -> list[str]:
        """``joist check`` findings (empty when the store is consistent)."""
        return [str(f) for f in Checker(self.app.services).check()]

    def close(self) -> None:
        for session in self.sessions:
            session.close()


def start_server(data_dir: Path, **overrides: object) -> tuple[App, Server]:
    app = site_app(data_dir, **{"server.port": 0, "webdav.enabled": False, **overrides})
    try:
        select_test_assetstore(app)  # JOIST_TEST_ASSETSTORE=s3: uploads go to S3
        server = Server(app)
        # cheroot polls for shutdown every 0.5 s; tests start many servers.
        server.http.expiration_interval = 0.05
        server.start()
    except BaseException:
        app.close()
        raise
    return app, server


@contextlib.contextmanager
def running_site(data_dir: Path, **overrides: object) -> Iterator[RestSite]:
    app, server = start_server(data_dir, **overrides)
    site = RestSite(app, build_world(app), server)
    try:
        yield site
    finally:
        site.close()
        server.stop()
        app.close()


def open_fds() -> set[str]:
    """This process's open descriptors (the server runs in-process) as
    ``"fd -> target"``, leaving out the metadata store's files: each worker
    thread keeps its own SQLite connection, opened on first use."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # closed meanwhile
            continue
        if not os.path.basename(target).startswith("joist.db"):
            found.add(f"{name} -> {target}")
    return found


__all__ = ["PASSWORD", "RestSite", "open_fds", "running_site", "start_server"]
