"""Concurrent writers against real servers: the site, the shared contents and
the after-checks of ``test_concurrent_writers.py``.

Eight files ``KEEP0.txt`` ... ``KEEP7.txt`` hold eight distinct contents
``C0`` ... ``C7``; writers then churn one name (``T.txt``) with those same
contents, so every write takes and releases references to bytes that the KEEP
files share. Whatever the interleaving, afterwards every KEEP file must read
back byte-identical and ``joist check`` must find nothing.

The MongoDB engine runs here on mongomock (no MongoDB server can run on the CI
machine; ``JOIST_TEST_MONGO_URI`` is not needed for these in-process servers),
with the lock ``tests/mongo_stand_in.py`` adds so that each call is atomic as
on a server.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from joist.admin.bootstrap import App, build_app
from joist.admin.server import Server
from joist.core.services.check import Checker
from tests.conftest import make_settings
from tests.mongo_stand_in import LockedMongoClient, fresh_db_name
from tests.world import PASSWORD, build_world

WRITERS = 8
ROUNDS = 6
FOLDER = "/user/alice/Private"
CONTENTS = [hashlib.sha512(bytes([i])).digest() * (160 + 37 * i) for i in range(WRITERS)]
"""C0..C7: distinct, a few KiB each (one chunk), so the runs stay quick."""


def content(i: int) -> bytes:
    return CONTENTS[i % WRITERS]


@dataclass
class Site:
    app: App
    server: Server

    @property
    def dav(self) -> str:
        return self.server.url + "/dav" + FOLDER

    @property
    def api(self) -> str:
        return self.server.url + "/api/v1/"

    def session(self) -> requests.Session:
        s = requests.Session()
        s.auth = ("alice", PASSWORD)
        return s

    def token(self) -> str:
        resp = requests.get(self.api + "user/authentication", auth=("alice", PASSWORD),
                            timeout=30)
        resp.raise_for_status()
        return str(resp.json()["authToken"]["token"])

    def put(self, s: requests.Session, name: str, data: bytes) -> int:
        return s.put(self.dav + "/" + quote(name), data=data, timeout=60).status_code

    def get(self, s: requests.Session, name: str) -> requests.Response:
        return s.get(self.dav + "/" + quote(name), timeout=60)


@contextmanager
def running_site(base: Path, engine: str) -> Iterator[Site]:
    """A server (REST and WebDAV on one port) over the test world, on ``engine``."""
    overrides: dict[str, Any] = {"server.port": 0, "server.threads": 24}
    client = None
    if engine == "mongo":
        client = LockedMongoClient()
        overrides.update({"database.engine": "mongo",
                          "database.uri": f"mongodb://127.0.0.1:27017/{fresh_db_name()}"})
    app = build_app(make_settings(base / "data", **overrides), env={}, mongo_client=client)
    server = Server(app)
    try:
        build_world(app)
        server.start()
        yield Site(app, server)
    finally:
        server.stop()
        app.close()


def seed(site: Site) -> None:
    """KEEP0..7 with C0..C7, and T.txt."""
    with site.session() as s:
        for i in range(WRITERS):
            assert site.put(s, f"KEEP{i}.txt", content(i)) in (201, 204)
        assert site.put(s, "T.txt", content(0)) in (201, 204)


def at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` for ``i < count`` on threads released together; the
    results (or the exceptions) in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # reported by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), name=f"writer-{i}")
               for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a writer hung"
    return results


def assert_intact(site: Site, *, t_contents: bool = True) -> None:
    """Every KEEP file reads back byte-identical on WebDAV and REST; T.txt (if
    present) holds one whole content; ``joist check`` finds nothing."""
    with site.session() as s:
        for i in range(WRITERS):
            resp = site.get(s, f"KEEP{i}.txt")
            assert resp.status_code == 200, (i, resp.status_code, resp.text[:200])
            assert resp.content == content(i), f"KEEP{i}.txt changed"
        token = site.token()
        found = requests.get(site.api + "resource/lookup",
                             params={"path": FOLDER + "/KEEP0.txt/KEEP0.txt"},
                             headers={"Girder-Token": token}, timeout=30)
        if found.status_code == 200:  # Girder's path: item, then its file
            data = requests.get(site.api + f"file/{found.json()['_id']}/download",
                                headers={"Girder-Token": token}, timeout=30)
            assert data.status_code == 200 and data.content == content(0)
        if t_contents:
            resp = site.get(s, "T.txt")
            if resp.status_code != 404:
                assert resp.status_code == 200
                assert resp.content in CONTENTS, "T.txt holds a mix of writes"
    problems = Checker(site.app.services).check()
    assert problems == [], "\n".join(map(str, problems))


def rest_replace(site: Site, token: str, file_id: str, data: bytes) -> int:
    """Girder's ``PUT file/{id}/contents`` then one chunk: the status of the
    chunk (200 when it finalized)."""
    begin = requests.put(site.api + f"file/{file_id}/contents", params={"size": len(data)},
                         headers={"Girder-Token": token}, timeout=60)
    return _one_chunk(site, token, begin, data)


def rest_upload(site: Site, token: str, folder_id: str, name: str, data: bytes) -> int:
    """A new file in a folder through Girder's upload protocol (``POST file``)."""
    begin = requests.post(site.api + "file", headers={"Girder-Token": token}, timeout=60,
                          params={"parentType": "folder", "parentId": folder_id,
                                  "name": name, "size": len(data)})
    return _one_chunk(site, token, begin, data)


def _one_chunk(site: Site, token: str, begin: requests.Response, data: bytes) -> int:
    if begin.status_code != 200:
        return begin.status_code
    return requests.post(site.api + "file/chunk",
                         params={"uploadId": begin.json()["_id"], "offset": 0}, data=data,
                         headers={"Girder-Token": token}, timeout=60).status_code
