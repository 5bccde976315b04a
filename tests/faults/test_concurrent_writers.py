"""No lost byte under concurrent writers (issue 12, items 1 and 7).

Every write path (REST contents and uploads; WebDAV PUT, COPY, MOVE, DELETE)
churns names whose contents the KEEP files share, eight writers at once for
several rounds, on SQLite and on the MongoDB engine (mongomock, see
``writers.py``). Afterwards every KEEP file reads back byte-identical and
``joist check`` finds nothing. The FUSE and two-process runs live in
``test_concurrent_processes.py``.

Concurrent moves of one source: exactly one succeeds; the others are told the
source is gone (WebDAV 404, REST 400 as Girder's not-found), and nothing is
duplicated or lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from joist.core.services.check import Checker
from tests.faults.writers import (
    FOLDER,
    ROUNDS,
    WRITERS,
    Site,
    assert_intact,
    at_once,
    content,
    rest_replace,
    rest_upload,
    running_site,
    seed,
)


@pytest.fixture(params=["sqlite", "mongo"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    with running_site(tmp_path, request.param) as running:
        seed(running)
        yield running


def _ok(results: list[object], allowed: tuple[int, ...]) -> None:
    bad = [r for r in results if r not in allowed]
    assert not bad, f"unexpected outcomes: {bad}"


def test_webdav_put_overwrites(site: Site) -> None:
    """The reported case: 8 clients PUT T.txt at once, six rounds."""
    for rnd in range(ROUNDS):
        def put(i: int, rnd: int = rnd) -> int:
            with site.session() as s:
                return site.put(s, "T.txt", content(i + rnd))
        _ok(at_once(WRITERS, put), (201, 204))
    assert_intact(site)


def test_webdav_put_new_name(site: Site) -> None:
    """8 clients create the same new name at once: last writer wins, none fails."""
    for rnd in range(ROUNDS):
        def put(i: int, rnd: int = rnd) -> int:
            with site.session() as s:
                return site.put(s, f"NEW{rnd}.txt", content(i + rnd))
        _ok(at_once(WRITERS, put), (201, 204))
        with site.session() as s:
            resp = site.get(s, f"NEW{rnd}.txt")
            assert resp.status_code == 200 and resp.content in [content(i) for i in range(8)]
    assert_intact(site)


def test_webdav_copy_overwrites(site: Site) -> None:
    for rnd in range(ROUNDS):
        def copy(i: int, rnd: int = rnd) -> int:
            with site.session() as s:
                return s.request("COPY", site.dav + f"/KEEP{(i + rnd) % WRITERS}.txt",
                                 headers={"Destination": site.dav + "/T.txt",
                                          "Overwrite": "T"}, timeout=60).status_code
        # 404/409/412: a concurrent COPY replaced the destination in between.
        _ok(at_once(WRITERS, copy), (201, 204, 404, 409, 412))
    assert_intact(site)


def test_webdav_move_overwrites(site: Site) -> None:
    for rnd in range(ROUNDS):
        with site.session() as s:
            for i in range(WRITERS):
                assert site.put(s, f"src{i}.txt", content(i + rnd)) in (201, 204)

        def move(i: int) -> int:
            with site.session() as s:
                return s.request("MOVE", site.dav + f"/src{i}.txt",
                                 headers={"Destination": site.dav + "/T.txt",
                                          "Overwrite": "T"}, timeout=60).status_code
        _ok(at_once(WRITERS, move), (201, 204, 404, 409, 412))
    assert_intact(site)


def test_webdav_delete_while_writing(site: Site) -> None:
    for rnd in range(ROUNDS):
        def churn(i: int, rnd: int = rnd) -> int:
            with site.session() as s:
                if i % 2:
                    return s.delete(site.dav + "/T.txt", timeout=60).status_code
                return site.put(s, "T.txt", content(i + rnd))
        _ok(at_once(WRITERS, churn), (201, 204, 404))
    assert_intact(site)


def test_rest_contents_and_uploads(site: Site) -> None:
    """``PUT file/{id}/contents`` on one file by 8 clients, and 8 uploads of
    shared contents into the folder (then deleted) at once."""
    token = site.token()
    headers = {"Girder-Token": token}
    found = requests.get(site.api + "resource/lookup", headers=headers, timeout=30,
                         params={"path": FOLDER + "/T.txt/T.txt"})
    assert found.status_code == 200, found.text
    file_id = found.json()["_id"]
    folder = requests.get(site.api + "resource/lookup", headers=headers, timeout=30,
                          params={"path": FOLDER}).json()
    for rnd in range(ROUNDS):
        _ok(at_once(WRITERS, lambda i, rnd=rnd: rest_replace(
            site, token, file_id, content(i + rnd))), (200,))
        _ok(at_once(WRITERS, lambda i, rnd=rnd: rest_upload(
            site, token, folder["_id"], f"U{rnd}-{i}.txt", content(i + rnd))), (200,))
        items = requests.get(site.api + "item", headers=headers, timeout=30,
                             params={"folderId": folder["_id"], "limit": 0}).json()
        made = [it for it in items if it["name"].startswith(f"U{rnd}-")]
        assert len(made) == WRITERS
        _ok(at_once(WRITERS, lambda i, made=made: requests.delete(
            site.api + f"item/{made[i]['_id']}", headers=headers, timeout=60).status_code),
            (200,))
    assert_intact(site)


def test_concurrent_moves_of_one_source(site: Site) -> None:
    """Eight WebDAV MOVEs of one file to eight names: exactly one 201, the
    others 404 (the source is gone), and exactly one copy survives."""
    for rnd in range(3):
        with site.session() as s:
            assert site.put(s, "M.txt", content(rnd)) in (201, 204)

        def move(i: int, rnd: int = rnd) -> int:
            with site.session() as s:
                return s.request("MOVE", site.dav + "/M.txt", timeout=60, headers={
                    "Destination": site.dav + f"/moved{rnd}-{i}.txt"}).status_code
        results = at_once(WRITERS, move)
        assert sorted(results) == [201] + [404] * (WRITERS - 1), results
        with site.session() as s:
            present = [i for i in range(WRITERS)
                       if site.get(s, f"moved{rnd}-{i}.txt").status_code == 200]
            assert present == [results.index(201)]
            assert site.get(s, "M.txt").status_code == 404
    assert_intact(site)


def test_concurrent_rest_moves_of_one_item(site: Site) -> None:
    """REST ``PUT item/{id}`` with eight different target folders at once.
    By id, a request that loads the item after another moved it moves it on
    (a real move); two that saw the same place cannot both win: the loser gets
    Girder's not-found (400). Either way the item is in exactly one folder and
    every count and size is right (``joist check``)."""
    token = site.token()
    headers = {"Girder-Token": token}
    folder = requests.get(site.api + "resource/lookup", headers=headers, timeout=30,
                          params={"path": FOLDER}).json()
    targets = [requests.post(site.api + "folder", headers=headers, timeout=30, params={
        "parentType": "folder", "parentId": folder["_id"], "name": f"to{i}"}).json()
        for i in range(WRITERS)]
    item = requests.get(site.api + "resource/lookup", headers=headers, timeout=30,
                        params={"path": FOLDER + "/KEEP3.txt"}).json()
    for _ in range(3):
        responses = at_once(WRITERS, lambda i: requests.put(
            site.api + f"item/{item['_id']}", headers=headers, timeout=60,
            params={"folderId": targets[i]["_id"]}))
        assert {r.status_code for r in responses} <= {200, 400}, responses
        assert all("meanwhile" in r.json()["message"] for r in responses
                   if r.status_code == 400)
        homes = [t for t in targets if requests.get(
            site.api + "item", headers=headers, timeout=30,
            params={"folderId": t["_id"]}).json()]
        assert len(homes) == 1
        current = requests.get(site.api + f"item/{item['_id']}", headers=headers,
                               timeout=30).json()
        assert current["folderId"] == homes[0]["_id"]
        assert Checker(site.app.services).check() == []
    back = requests.put(site.api + f"item/{item['_id']}", headers=headers, timeout=30,
                        params={"folderId": folder["_id"]})
    assert back.status_code == 200
    assert_intact(site)
