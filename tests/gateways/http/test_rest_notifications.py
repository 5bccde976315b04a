"""Girder's notification stream over a real server: ``notification/stream``
(server-sent events, read by a streaming ``requests`` client), the list,
progress of ``progress=true`` operations, job notifications from the jobs
event, the per-user rule and the cap on open streams (503)."""

from __future__ import annotations

import contextlib
import datetime
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from bson import ObjectId

from joist.core.clock import utcnow
from tests.gateways.http.restsite import RestSite

DEADLINE = 20.0  # seconds any awaited event may take


class SseReader:
    """A streaming SSE client: events are collected on a thread, so a test
    waits for one with a deadline instead of blocking on the socket."""

    def __init__(self, site: RestSite, login: str | None, **params: Any) -> None:
        headers = {"Girder-Token": site.token(login)} if login else {}
        self.response = requests.get(site.url("notification/stream"), params=params,
                                     headers=headers, stream=True, timeout=(5, 30))
        self.events: list[dict[str, Any]] = []
        self.comments = 0
        self.ended = threading.Event()
        self._lock = threading.Lock()
        if self.response.status_code == 200:
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        else:
            self.ended.set()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines(chunk_size=1, decode_unicode=True):
                if line.startswith("data: "):
                    with self._lock:
                        self.events.append(json.loads(line[len("data: "):]))
                elif line.startswith(":"):
                    with self._lock:
                        self.comments += 1
        except (requests.RequestException, ValueError, AttributeError):
            pass  # closed by the test
        finally:
            self.ended.set()

    def wait_for(self, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            with self._lock:
                for event in self.events:
                    if check(event):
                        return event
            if self.ended.is_set() and not any(check(e) for e in list(self.events)):
                break
            time.sleep(0.02)
        raise AssertionError(f"no such event; got {self.events}")

    def wait_open(self) -> None:
        deadline = time.monotonic() + DEADLINE
        while self.comments == 0 and time.monotonic() < deadline and not self.ended.is_set():
            time.sleep(0.02)
        assert self.comments > 0, "the stream sent nothing"

    def close(self) -> None:
        """Hang up: shut the socket down so the reading thread wakes at once."""
        connection = getattr(self.response.raw, "_connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.response.close()
        assert self.ended.wait(DEADLINE)


@contextlib.contextmanager
def sse(site: RestSite, login: str | None, **params: Any) -> Iterator[SseReader]:
    reader = SseReader(site, login, **params)
    try:
        yield reader
    finally:
        reader.close()


@pytest.fixture(autouse=True)
def _quick_heartbeat(site: RestSite) -> None:
    """The server finds a client that left at its next keep-alive: make it soon."""
    site.app.services.notifications.heartbeat = 0.3


def _slots_free(site: RestSite) -> None:
    deadline = time.monotonic() + DEADLINE
    while site.app.services.notifications.open_streams and time.monotonic() < deadline:
        time.sleep(0.02)
    assert site.app.services.notifications.open_streams == 0


def test_a_progress_deletion_shows_on_the_stream(site: RestSite) -> None:
    folder = site.post("folder", "alice", params={
        "parentType": "folder", "parentId": site.id("data"), "name": "doomed"}).json()
    for n in range(3):
        site.upload("alice", folder["_id"], f"f{n}.txt", b"x" * n)
    with sse(site, "alice", timeout=30) as stream:
        stream.wait_open()
        gone = site.delete(f"folder/{folder['_id']}", "alice", params={"progress": "true"})
        assert gone.status_code == 200, gone.text
        done = stream.wait_for(lambda e: e["type"] == "progress"
                               and e["data"]["state"] == "success")
    data = done["data"]
    assert data["title"] == "Deleting folder doomed"
    assert data["total"] == 4 and data["current"] == 4  # 3 items and the folder
    assert data["resourceName"] == "folder" and data["resource"]["_id"] == folder["_id"]
    assert done["userId"] == site.id("alice") and isinstance(done["_girderTime"], int)
    # The list shows the same record; without progress=true nothing is recorded.
    listed = site.get("notification", "alice").json()
    assert [n["_id"] for n in listed if n["type"] == "progress"] == [done["_id"]]
    other = site.post("folder", "alice", params={
        "parentType": "folder", "parentId": site.id("data"), "name": "quiet"}).json()
    assert site.delete(f"folder/{other['_id']}", "alice").status_code == 200
    assert len(site.get("notification", "alice").json()) == len(listed)


def test_progress_of_a_failed_operation_ends_in_error(site: RestSite) -> None:
    """A copy into a folder's own subtree is refused: the record says error."""
    inner = site.post("folder", "alice", params={
        "parentType": "folder", "parentId": site.id("data"), "name": "inner"}).json()
    reply = site.post(f"folder/{site.id('data')}/copy", "alice", params={
        "parentType": "folder", "parentId": inner["_id"], "progress": "true"})
    assert reply.status_code == 400, reply.text
    records = [n for n in site.get("notification", "alice").json() if n["type"] == "progress"]
    assert len(records) == 1
    assert records[0]["data"]["state"] == "error"
    assert records[0]["data"]["message"].startswith("Error: You may not copy")


def test_a_user_sees_only_their_own_notifications(site: RestSite) -> None:
    service = site.app.services.notifications
    alice, bobby = ObjectId(site.id("alice")), ObjectId(site.id("bobby"))
    with sse(site, "bobby", timeout=30) as bob_stream, \
            sse(site, "alice", timeout=30) as alice_stream:
        bob_stream.wait_open()
        alice_stream.wait_open()
        service.create(alice, "hello", {"for": "alice"})
        service.create(bobby, "hello", {"for": "bobby"})
        assert alice_stream.wait_for(lambda e: e["type"] == "hello")["data"] == \
            {"for": "alice"}
        assert bob_stream.wait_for(lambda e: e["type"] == "hello")["data"] == {"for": "bobby"}
        assert len(alice_stream.events) == 1 and len(bob_stream.events) == 1
    assert [n["data"] for n in site.get("notification", "bobby").json()] == [{"for": "bobby"}]
    assert site.get("notification").status_code == 401
    assert site.get("notification/stream").status_code == 401


def test_since_and_timeout(site: RestSite) -> None:
    service = site.app.services.notifications
    alice = ObjectId(site.id("alice"))
    old = service.create(alice, "old", {})
    # since counts whole seconds: date the old one back rather than wait
    site.app.store.notifications.update_one(
        {"_id": old["_id"]}, {"$set": {"updated": utcnow() - datetime.timedelta(seconds=5)}})
    cut = time.time() - 2
    service.create(alice, "new", {})
    started = time.monotonic()
    with sse(site, "alice", timeout=1, since=int(cut)) as stream:
        assert stream.ended.wait(DEADLINE), "the stream did not end at its timeout"
    assert time.monotonic() - started < 10
    assert [e["type"] for e in stream.events] == ["new"]
    listed = site.get("notification", "alice", params={"since": int(cut)}).json()
    assert [n["type"] for n in listed] == ["new"]
    for bad in ({"timeout": -1}, {"timeout": "soon"}, {"since": "yesterday"}):
        reply = site.get("notification/stream", "alice", params=bad)
        assert reply.status_code == 400 and reply.json()["type"] in ("rest", "validation")


def test_streams_beyond_the_cap_get_503(site: RestSite) -> None:
    service = site.app.services.notifications
    service.max_streams = 1
    with sse(site, "alice", timeout=30) as first:
        first.wait_open()
        refused = site.get("notification/stream", "bobby", params={"timeout": 1})
        assert refused.status_code == 503, refused.text
        assert "Too many notification streams" in refused.json()["message"]
    _slots_free(site)  # the client left: its slot comes back
    with sse(site, "bobby", timeout=1) as again:
        assert again.response.status_code == 200
        again.wait_open()
    site.app.services.settings.set("core.enable_notification_stream", False)
    off = site.get("notification/stream", "alice", params={"timeout": 1})
    assert off.status_code == 503 and "not enabled" in off.json()["message"]


def test_job_updates_notify_the_job_owner(site: RestSite) -> None:
    """The jobs plugin fires ``jobs.job.update.after``; core turns it into
    Girder's job notifications for the job's owner only."""
    events = site.app.services.events
    job: dict[str, Any] = {"_id": ObjectId(), "userId": ObjectId(site.id("alice")),
                           "status": 2, "title": "Make thumbnails", "type": "thumbs",
                           "kwargs": {"secret": 1}, "log": ["started"], "progress": None}
    with sse(site, "alice", timeout=30) as stream:
        stream.wait_open()
        events.trigger("jobs.job.update.after", {"job": job, "updates": {"status": 2}})
        status = stream.wait_for(lambda e: e["type"] == "job_status")
        assert status["data"]["status"] == 2 and status["data"]["_id"] == str(job["_id"])
        assert "kwargs" not in status["data"] and "log" not in status["data"]
        job["progress"] = {"total": 10, "current": 4, "message": "4 of 10"}
        events.trigger("jobs.job.update.after", {"job": job, "updates": {
            "progress": job["progress"]}})
        active = stream.wait_for(lambda e: e["type"] == "progress")
        assert active["data"]["state"] == "active" and active["data"]["current"] == 4
        assert active["data"]["resourceName"] == "job"
        job.update(status=3, progress={"total": 10, "current": 10, "message": "done"})
        events.trigger("jobs.job.update.after", {"job": job, "updates": {"status": 3}})
        finished = stream.wait_for(lambda e: e["type"] == "progress"
                                   and e["data"]["state"] == "success")
        assert finished["_id"] == active["_id"] and finished["data"]["current"] == 10
    assert [n["type"] for n in site.get("notification", "bobby").json()] == []


def test_a_scoped_token_needs_the_data_read_scope(site: RestSite) -> None:
    """An API key's token with ``core.data.read`` may stream; one without it
    acts as anonymous there (401), as on every data route."""
    site.app.services.notifications.create(ObjectId(site.id("alice")), "hello", {})
    tokens = {}
    for scope in ('["core.data.read"]', '["core.user_info.read"]'):
        key = site.post("api_key", "alice", params={"scope": scope}).json()
        tokens[scope] = site.post("api_key/token", params={"key": key["key"]}).json()[
            "authToken"]["token"]
    allowed = site.get("notification", headers={"Girder-Token": tokens['["core.data.read"]']})
    assert allowed.status_code == 200 and [n["type"] for n in allowed.json()] == ["hello"]
    for path in ("notification", "notification/stream"):
        refused = site.get(path, headers={"Girder-Token": tokens['["core.user_info.read"]']},
                           params={"timeout": 1})
        assert refused.status_code == 401, refused.text
