"""``NotificationService``: Girder's ProgressContext (rate-limited writes, the
final state always written), the stream's cursor, its slots and its end."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from bson import ObjectId

from joist.admin.bootstrap import App
from joist.core.acl import SYSTEM, Principal
from joist.core.errors import UnavailableError, ValidationError
from joist.core.services.notifications import NotificationService

DEADLINE = 10.0


def _user(app: App) -> Principal:
    user = app.services.users.create(SYSTEM, login="nina", email="nina@example.org",
                                     first_name="Nina", last_name="N",
                                     password="correct horse", check_policy=False)
    return Principal.from_user(user)


def _stored(app: App, record: dict[str, Any]) -> dict[str, Any]:
    doc = app.store.notifications.find_one({"_id": record["_id"]})
    assert doc is not None
    return doc


def test_progress_writes_at_most_every_interval_and_always_the_end(app: App) -> None:
    service, nina = app.services.notifications, _user(app)
    with service.progress(nina, "Counting", 10, interval=3600) as progress:
        assert progress.record is not None
        first = _stored(app, progress.record)
        assert first["type"] == "progress" and first["userId"] == nina.user_id
        assert first["data"]["state"] == "active" and first["data"]["total"] == 10
        for _ in range(5):
            progress.update(increment=1, message="one more")
        assert _stored(app, progress.record)["data"]["current"] == 0  # rate-limited
        progress.update(force=True, increment=1)
        assert _stored(app, progress.record)["data"]["current"] == 6
    done = _stored(app, progress.record)
    assert done["data"]["state"] == "success" and done["data"]["message"] == "Done"
    assert done["expires"] < first["expires"]  # kept only briefly once finished


def test_progress_records_the_error_and_lets_it_through(app: App) -> None:
    service, nina = app.services.notifications, _user(app)
    with pytest.raises(ValidationError), service.progress(nina, "Failing") as progress:
        raise ValidationError("That will not do.")
    assert progress.record is not None
    data = _stored(app, progress.record)["data"]
    assert data["state"] == "error" and data["message"] == "Error: That will not do."
    with pytest.raises(KeyError), service.progress(nina, "Crashing") as progress:
        raise KeyError("internal detail")
    assert progress.record is not None
    assert _stored(app, progress.record)["data"]["message"] == "Error"  # no internals
    # Nobody to tell: no record at all.
    with service.progress(Principal.anonymous(), "Unseen") as quiet:
        quiet.update(current=1)
    assert quiet.record is None and not quiet.on


def test_a_stream_yields_each_notification_once_even_with_equal_times(app: App) -> None:
    service, nina = app.services.notifications, _user(app)
    made = [service.create(nina.user_id, "tick", {"n": n}) for n in range(3)]
    same = made[0]["updated"]
    app.store.notifications.update_many({}, {"$set": {"updated": same}})
    stream = service.stream(nina, timeout=0)
    seen = [doc["data"]["n"] for doc in stream if doc is not None]
    assert seen == [0, 1, 2]
    assert service.open_streams == 0  # the slot came back when it ended
    with pytest.raises(ValidationError):
        service.stream(Principal.anonymous())
    with pytest.raises(ValidationError):
        service.stream(nina, timeout=-1)


def test_stream_slots_and_close(app: App) -> None:
    service: NotificationService = app.services.notifications
    nina = _user(app)
    service.max_streams = 1
    first = service.stream(nina, timeout=60)
    with pytest.raises(UnavailableError):
        service.stream(nina, timeout=60)
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.extend(first), daemon=True)
    reader.start()
    service.create(nina.user_id, "hello", {})  # wakes the stream: no poll needed
    deadline = time.monotonic() + DEADLINE
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [d["type"] for d in got if d is not None] == ["hello"]
    service.close()  # the server stops: open streams end now, not after 60 s
    reader.join(DEADLINE)
    assert not reader.is_alive()
    assert service.open_streams == 0
    service.stream(nina, timeout=0).close()  # later streams may open again
    assert service.open_streams == 0


def test_job_events_for_a_job_without_an_owner_make_nothing(app: App) -> None:
    app.services.events.trigger("jobs.job.update.after", {
        "job": {"_id": ObjectId(), "userId": None, "status": 3}, "updates": {"status": 3}})
    app.services.events.trigger("jobs.job.update.after", {"nonsense": True})
    assert app.store.notifications.count({}) == 0


def test_job_updates_given_as_store_updates(app: App) -> None:
    """The jobs plugin may pass its store update ({"$set": ..., "$push": ...})."""
    nina = _user(app)
    job = {"_id": ObjectId(), "userId": nina.user_id, "status": 2, "title": "Job",
           "progress": {"total": 4, "current": 1, "message": "one"}}
    app.services.events.trigger("jobs.job.update.after", {"job": job, "updates": {
        "$set": {"status": 2, "progress.current": 1}, "$push": {"log": "started\n"}}})
    made = {n["type"]: n for n in app.services.notifications.list(nina)}
    assert set(made) == {"job_status", "job_log", "progress"}
    assert made["job_log"]["data"]["text"] == "started\n"
    assert made["progress"]["data"]["current"] == 1 and made["progress"]["data"]["total"] == 4
