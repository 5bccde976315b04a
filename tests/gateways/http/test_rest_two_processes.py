"""Two real ``joist serve`` processes on one data directory (one SQLite store,
one filesystem assetstore) behave as one server: a token from one works on the
other, an upload begun on one finishes on the other, failed logins count on
both, and a WebDAV lock taken on one holds on the other.

Each process listens on 127.0.0.1, port 0; its banner line tells the port.
With ``JOIST_TEST_ENGINE=mongo`` and ``JOIST_TEST_MONGO_URI`` set, the two
share a MongoDB database instead (mongomock lives in one process's memory, so
without a real server that variant is skipped).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from joist.admin.bootstrap import build_app
from tests.conftest import ENGINE, make_settings
from tests.mongo_stand_in import REAL_URI, fresh_db_name, real_uri
from tests.world import A_TXT, PASSWORD, build_world

JOIST = [sys.executable, "-m", "joist.admin.cli"]
BANNER = re.compile(r"REST API: (http://127\.0\.0\.1:\d+)/api/v1")
START_TIMEOUT = 60.0
MiB = 1 << 20

pytestmark = pytest.mark.skipif(
    ENGINE == "mongo" and not REAL_URI,
    reason="mongomock keeps its data in one process's memory: two processes cannot share "
           "it (set JOIST_TEST_MONGO_URI to run this on a real server)")


@dataclass
class Process:
    proc: subprocess.Popen[str]
    url: str
    log: list[str]

    @property
    def api(self) -> str:
        return self.url + "/api/v1/"


def _start(env: dict[str, str], name: str) -> Process:
    proc = subprocess.Popen([*JOIST, "serve", "--host", "127.0.0.1", "--port", "0",
                             "--workers", "1"],  # two single-process servers
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []
    assert proc.stdout is not None
    stdout = proc.stdout

    def pump() -> None:
        for line in stdout:
            log.append(line)
            lines.put(line)

    threading.Thread(target=pump, name=f"{name}-stdout", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            _stop(proc)
            raise AssertionError(f"{name} printed no banner: {''.join(log)}") from None
        match = BANNER.search(line)
        if match:
            return Process(proc, match.group(1), log)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


@dataclass
class Pair:
    one: Process
    two: Process
    world_ids: dict[str, str]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("two")
    data = tmp / "data"
    store = {} if ENGINE == "sqlite" else {"database.engine": "mongo",
                                           "database.uri": real_uri(fresh_db_name())}
    settings = make_settings(data, **store)
    with build_app(settings, env={}) as app:  # the world, then closed
        world = build_world(app)
        app.services.settings.set("joist.throttle.max_failures", 3)
        ids = {name: str(doc["_id"]) for name, doc in world.docs.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOIST_")}
    env.update(JOIST_DATA_DIR=str(data), JOIST_SECURITY__BCRYPT_ROUNDS="4",
               JOIST_ASSETSTORE__RESERVE_MB="0", JOIST_SFTP__ENABLED="false",
               HOME=str(tmp / "home"))
    if store:
        env.update(JOIST_DATABASE__ENGINE="mongo", JOIST_DATABASE__URI=store["database.uri"])
    started: list[Process] = []
    try:
        started.append(_start(env, "one"))
        started.append(_start(env, "two"))
        yield Pair(started[0], started[1], ids)
    finally:
        for process in started:
            _stop(process.proc)
        if store:
            with build_app(settings, env={}) as app:
                app.engine.client.drop_database(app.engine.database_name)  # type: ignore[attr-defined]
    for process in started:  # both shut down cleanly on SIGTERM
        assert process.proc.returncode == 0, "".join(process.log)


def _token(process: Process, login: str, password: str = PASSWORD) -> requests.Response:
    return requests.get(process.api + "user/authentication", auth=(login, password),
                        timeout=30)


def test_the_two_are_distinct_processes(pair: Pair) -> None:
    assert pair.one.proc.pid != pair.two.proc.pid and pair.one.url != pair.two.url
    for process in (pair.one, pair.two):
        assert requests.get(process.url + "/healthz", timeout=10).json() == {"status": "ok"}


def test_a_token_from_one_works_on_the_other(pair: Pair) -> None:
    reply = _token(pair.one, "alice")
    assert reply.status_code == 200, reply.text
    token = reply.json()["authToken"]["token"]
    me = requests.get(pair.two.api + "user/me", headers={"Girder-Token": token}, timeout=30)
    assert me.status_code == 200 and me.json()["login"] == "alice"
    # Logging out on the second ends the token on the first too.
    out = requests.delete(pair.two.api + "user/authentication",
                          headers={"Girder-Token": token}, timeout=30)
    assert out.status_code == 200, out.text
    again = requests.get(pair.one.api + "user/me", headers={"Girder-Token": token}, timeout=30)
    assert again.status_code == 200 and again.json() is None  # anonymous now


def test_an_upload_begun_on_one_finishes_on_the_other(pair: Pair) -> None:
    token = _token(pair.one, "alice").json()["authToken"]["token"]
    auth = {"Girder-Token": token}
    data = os.urandom(5 * MiB + 1234)  # the first chunk must be at least 5 MiB
    begun = requests.post(pair.one.api + "file", headers=auth, timeout=30, params={
        "parentType": "folder", "parentId": pair.world_ids["data"], "name": "split.bin",
        "size": len(data)})
    assert begun.status_code == 200, begun.text
    upload_id = begun.json()["_id"]
    first = requests.post(pair.one.api + "file/chunk", headers=auth, timeout=60,
                          params={"uploadId": upload_id, "offset": 0}, data=data[:5 * MiB])
    assert first.status_code == 200, first.text
    offset = requests.get(pair.two.api + "file/offset", headers=auth, timeout=30,
                          params={"uploadId": upload_id})
    assert offset.status_code == 200 and offset.json()["offset"] == 5 * MiB
    last = requests.post(pair.two.api + "file/chunk", headers=auth, timeout=60,
                         params={"uploadId": upload_id, "offset": 5 * MiB},
                         data=data[5 * MiB:])
    assert last.status_code == 200, last.text
    file = last.json()
    assert file["_modelType"] == "file" and file["size"] == len(data)
    got = requests.get(pair.one.api + f"file/{file['_id']}/download", headers=auth,
                       timeout=60)
    assert got.status_code == 200 and got.content == data


def test_a_webdav_lock_holds_on_the_other(pair: Pair) -> None:
    path = "/dav/user/alice/Private/data/a.txt"
    body = ('<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
            "<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
            "<D:owner>test</D:owner></D:lockinfo>")
    auth = ("alice", PASSWORD)
    locked = requests.request("LOCK", pair.one.url + path, auth=auth, data=body, timeout=30,
                              headers={"Timeout": "Second-60", "Depth": "0",
                                       "Content-Type": "application/xml"})
    assert locked.status_code == 200, locked.text
    token = locked.headers["Lock-Token"]
    try:
        refused = requests.put(pair.two.url + path, auth=auth, data=b"overwritten", timeout=30)
        assert refused.status_code == 423
        assert requests.get(pair.two.url + path, auth=auth, timeout=30).content == A_TXT
        allowed = requests.put(pair.two.url + path, auth=auth, data=A_TXT, timeout=30,
                               headers={"If": f"({token})"})
        assert allowed.status_code in (200, 204), allowed.text
    finally:
        with contextlib.suppress(requests.RequestException):
            requests.request("UNLOCK", pair.two.url + path, auth=auth, timeout=30,
                             headers={"Lock-Token": token})
    after = requests.put(pair.one.url + path, auth=auth, data=A_TXT, timeout=30)
    assert after.status_code in (200, 204), after.text


def test_failed_logins_count_on_both(pair: Pair) -> None:
    # Last in this module: the client address (127.0.0.1) is throttled as well
    # as the login. max_failures is 3 (set before the processes started).
    for process in (pair.one, pair.two, pair.one):
        assert _token(process, "bobby", "wrong password").status_code == 401
    throttled = _token(pair.two, "bobby")  # the right password, too late
    assert throttled.status_code == 429, throttled.text
    assert _token(pair.one, "bobby").status_code == 429


def test_a_stream_on_one_shows_progress_made_on_the_other(pair: Pair) -> None:
    """Notifications live in the store: a stream on the first process shows the
    progress of a deletion run by the second."""
    token = _token(pair.one, "alice").json()["authToken"]["token"]
    auth = {"Girder-Token": token}
    made = requests.post(pair.two.api + "folder", headers=auth, timeout=30, params={
        "parentType": "folder", "parentId": pair.world_ids["data"], "name": "far away"})
    assert made.status_code == 200, made.text
    events: list[dict[str, object]] = []
    with requests.get(pair.one.api + "notification/stream", headers=auth, stream=True,
                      params={"timeout": 15}, timeout=(10, 30)) as stream:
        assert stream.status_code == 200, stream.text
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        lines = stream.iter_lines(chunk_size=1, decode_unicode=True)
        assert next(lines).startswith(":")  # the stream is open before the deletion
        gone = requests.delete(pair.two.api + f"folder/{made.json()['_id']}", headers=auth,
                               params={"progress": "true"}, timeout=30)
        assert gone.status_code == 200, gone.text
        deadline = time.monotonic() + 20  # the stream itself ends after 15 s quiet
        for line in lines:
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["data"]["state"] == "success":  # type: ignore[index]
                    break
            assert time.monotonic() < deadline
    assert events and events[-1]["type"] == "progress"
    assert events[-1]["data"]["title"] == "Deleting folder far away"  # type: ignore[index]
