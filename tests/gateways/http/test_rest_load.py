"""32 concurrent clients doing 60 mixed reads, uploads and listings each: every
request succeeds or fails cleanly, no descriptor leaks, every
uploaded byte reads back identical, and ``joist check`` is clean afterwards."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.gateways.http.restsite import RestSite, open_fds, running_site
from tests.world import A_TXT, REPORT, X_BIN

CLIENTS = 32
# A fixed amount of work per client (each client's random choices are seeded, so
# the mix is the same every run), not a fixed time: the counts asserted below
# then hold however fast the machine or the assetstore (moto in S3 mode) is.
ACTIONS = 60
DEADLINE = 300.0  # seconds: a guard against a hang, not a speed target


@dataclass
class Tally:
    ok: int = 0
    refused: int = 0  # clean 4xx answers to requests meant to be refused
    problems: list[str] = field(default_factory=list)
    uploads: dict[str, str] = field(default_factory=dict)  # file id -> sha256
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bad(self, what: str) -> None:
        with self.lock:
            self.problems.append(what)


@pytest.fixture
def busy_site(tmp_path: Path) -> Iterator[RestSite]:
    with running_site(tmp_path / "data", **{"server.threads": CLIENTS}) as site:
        site.app.services.settings.set("core.upload_minimum_chunk_size", 32 << 10)
        yield site


def _client(site: RestSite, n: int, deadline: float, tally: Tally) -> None:
    rng = random.Random(n)
    login = ("alice", "carol", "bobby")[n % 3]
    session = requests.Session()
    session.headers["Girder-Token"] = site.token(login)
    mine = site.post("folder", "alice", params={"parentId": site.id("public"),
                                                "name": f"client {n}"}).json()["_id"]
    a_txt = site.find_file("data", "a.txt")["_id"]
    report = site.find_file("docs", "report.txt")["_id"]
    x_bin = site.get(f"item/{site.id('multi')}/files", "alice").json()[0]["_id"]
    files = {a_txt: A_TXT, report: REPORT, x_bin: X_BIN}
    readable = {"alice": set(files), "carol": {report}, "bobby": set()}[login]
    for _ in range(ACTIONS):
        if time.monotonic() > deadline:
            tally.bad(f"client {n}: not done by the deadline")
            break
        action = rng.random()
        try:
            if action < 0.35:
                _read(site, session, rng, files, readable, tally)
            elif action < 0.6:
                _list(site, session, rng, login, tally)
            elif action < 0.85 and login == "alice":
                _upload(site, session if rng.random() < 0.5 else requests.Session(), rng,
                        mine, tally)
            else:
                _refused(site, session, rng, tally)
        except requests.RequestException as exc:
            tally.bad(f"client {n}: {type(exc).__name__}: {exc}")
    session.close()


def _expect(tally: Tally, reply: requests.Response, status: int, what: str) -> bool:
    if reply.status_code != status:
        tally.bad(f"{what}: {reply.status_code} {reply.text[:200]}")
        return False
    with tally.lock:
        tally.ok += 1
    return True


def _read(site: RestSite, session: requests.Session, rng: random.Random,
          files: dict[str, bytes], readable: set[str], tally: Tally) -> None:
    file_id = rng.choice(sorted(files))
    data = files[file_id]
    start = rng.randrange(len(data))
    headers = {"Range": f"bytes={start}-"} if rng.random() < 0.5 else {}
    reply = session.get(site.url(f"file/{file_id}/download"), headers=headers, timeout=30)
    if file_id not in readable:
        _refusal(tally, reply, 403, "read denied")
        return
    expected = data[start:] if headers else data
    if _expect(tally, reply, 206 if headers else 200, "download") and \
            reply.content != expected:
        tally.bad(f"download {file_id}: wrong bytes")


def _list(site: RestSite, session: requests.Session, rng: random.Random, login: str,
          tally: Tally) -> None:
    if rng.random() < 0.5:
        reply = session.get(site.url("folder"), params={
            "parentType": "folder", "parentId": site.id("public"), "limit": 20}, timeout=30)
        _expect(tally, reply, 200, "list folders")
    else:
        reply = session.get(site.url("item"), params={"folderId": site.id("data")},
                            timeout=30)
        if login == "alice":
            _expect(tally, reply, 200, "list items")
        else:
            _refusal(tally, reply, 403, "list items denied")


def _upload(site: RestSite, session: requests.Session, rng: random.Random, folder: str,
            tally: Tally) -> None:
    size = rng.choice((0, 1, 1000, 40_000, 100_000))
    data = rng.randbytes(size)
    token = {"Girder-Token": site.token("alice")}
    params = {"parentType": "folder", "parentId": folder, "name": f"f{rng.random()}",
              "size": size}
    if size < 70_000 or rng.random() < 0.5:  # one-shot, as girder-client does
        reply = session.post(site.url("file"), params=params, data=data, headers=token,
                             timeout=30)
    else:  # chunked: two chunks and a resume query
        reply = session.post(site.url("file"), params=params, headers=token, timeout=30)
        if not _expect(tally, reply, 200, "init"):
            return
        upload = reply.json()["_id"]
        cut = 32 << 10
        first = session.post(site.url("file/chunk"), params={"uploadId": upload, "offset": 0},
                             data=data[:cut], headers=token, timeout=30)
        _expect(tally, first, 200, "chunk 1")
        offset = session.get(site.url("file/offset"), params={"uploadId": upload},
                             headers=token, timeout=30).json()["offset"]
        reply = session.post(site.url("file/chunk"), params={"uploadId": upload,
                                                             "offset": offset},
                             data=data[offset:], headers=token, timeout=30)
    if _expect(tally, reply, 200, "upload") and reply.json().get("_modelType") == "file":
        with tally.lock:
            tally.uploads[reply.json()["_id"]] = hashlib.sha256(data).hexdigest()
    elif reply.status_code == 200:
        tally.bad(f"upload did not finish: {reply.text[:200]}")


def _refused(site: RestSite, session: requests.Session, rng: random.Random,
             tally: Tally) -> None:
    path = rng.choice(("item/not-an-id", f"folder/{'0' * 24}", "item/a/b/c"))
    _refusal(tally, session.get(site.url(path), timeout=30), 400, path)


def _refusal(tally: Tally, reply: requests.Response, status: int, what: str) -> None:
    body = reply.json() if reply.headers.get("Content-Type") == "application/json" else {}
    if reply.status_code != status or not {"message", "type"} <= set(body):
        tally.bad(f"{what}: {reply.status_code} {reply.text[:200]}")
        return
    with tally.lock:
        tally.refused += 1


def _warm_up(site: RestSite) -> None:
    """Open what the server keeps open (worker threads' store connections)."""
    def hit(_: int) -> None:
        with requests.Session() as session:
            for _ in range(3):
                session.get(site.url("folder"), params={"parentType": "user",
                                                        "parentId": site.id("alice")},
                            timeout=30)
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(hit, range(CLIENTS * 2)))


def test_32_clients_mixed_load(busy_site: RestSite) -> None:
    site = busy_site
    for login in ("alice", "bobby", "carol"):
        site.token(login)
    _warm_up(site)
    baseline = open_fds()
    tally = Tally()
    deadline = time.monotonic() + DEADLINE
    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(_client, site, n, deadline, tally) for n in range(CLIENTS)]:
            future.result(timeout=DEADLINE + 60)
    assert tally.problems == [], tally.problems[:10]
    assert tally.ok > 500 and tally.refused > 50 and len(tally.uploads) > 50, tally
    for file_id, digest in tally.uploads.items():
        data = site.get(f"file/{file_id}/download", "alice").content
        assert hashlib.sha256(data).hexdigest() == digest, file_id
    give_up = time.monotonic() + 10
    while time.monotonic() < give_up and open_fds() - baseline:
        time.sleep(0.05)
    assert open_fds() - baseline == set()
    assert site.get("system/uploads", "admin").json() == []
    assert site.check() == []
