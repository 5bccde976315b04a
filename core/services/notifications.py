"""Notifications: Girder's per-user stream of events (progress, job status).

A notification is a store document ``{_id, userId, type, data, time, updated,
startTime, updatedTime, expires}``, so a client connected to any process sees
what every process wrote. Readers find new ones by ``updated`` on the
(userId, updated) index. A write in this process wakes this process's streams
at once; a write in another process is seen at the next poll (at most
``MAX_POLL`` seconds later), each poll being one indexed query.

``progress()`` is Girder's ``ProgressContext``: it writes a ``progress``
notification whose ``data`` holds title, total, current, state (active,
success, error), message and estimateTime; updates are rate-limited and the
final state is always written when the block ends.

Streams hold a worker thread of the HTTP server for their whole life, so their
number per process is capped (``StreamLimitError`` beyond, a 503 over REST) and
each ends after a bounded time; a client reconnects with ``since``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from bson import ObjectId

from ..acl import Principal
from ..clock import utcnow
from ..db.engine import Collection, Document
from ..errors import CoreError, UnavailableError, ValidationError
from ..events import Event, EventBus
from ..jobs.model import READ_FIELDS as JOB_READ_FIELDS
from ..stored_settings import SettingsService

log = logging.getLogger("joist.notifications")

PROGRESS = "progress"
ACTIVE, QUEUED, SUCCESS, ERROR = "active", "queued", "success", "error"
ACTIVE_LIFE = _dt.timedelta(hours=1)   # a progress record not updated for this long goes
FINISHED_LIFE = _dt.timedelta(seconds=30)  # time for listeners to see a final state
DEFAULT_STREAM_TIMEOUT = 300  # Girder's default, seconds without a notification
MAX_STREAM_TIMEOUT = 300      # the most a client may ask for
MAX_STREAM_SECONDS = 900      # a stream's whole life, events or not
MIN_POLL, MAX_POLL = 0.5, 2.0  # Girder's poll interval: short after events, then backing off
HEARTBEAT = 10.0  # seconds of quiet before a keep-alive (finds clients that left)
LIST_LIMIT = 1000  # notifications one list answer holds at most
JOB_EVENT = "jobs.job.update.after"
# Girder's JobStatus -> ProgressState (INACTIVE, QUEUED, RUNNING, SUCCESS, ERROR, CANCELED)
_JOB_STATE = {0: QUEUED, 1: QUEUED, 2: ACTIVE, 3: SUCCESS}


class StreamLimitError(UnavailableError):
    """Every notification stream slot of this process is taken."""


class NotificationService:
    def __init__(self, collection: Collection, events: EventBus, *,
                 max_streams: int = 8, settings: SettingsService | None = None) -> None:
        self.coll = collection
        self._settings = settings  # Girder's core.enable_notification_stream
        self.max_streams = max_streams
        self.heartbeat = HEARTBEAT
        self._changed = threading.Condition()
        self._generation = 0  # bumped by each local write: wakes local streams
        self._streams = 0
        self._epoch = 0  # bumped by close(): streams of an earlier epoch end
        events.bind(JOB_EVENT, "notifications", self._job_updated)

    # ------------------------------------------------------------ writing
    def create(self, user_id: ObjectId, type: str, data: Any,
               expires: _dt.datetime | None = None) -> Document:
        """A notification for one user (Girder's ``createNotification``)."""
        if not isinstance(type, str) or not type:
            raise ValidationError("A notification needs a type.", field="type")
        now = utcnow()
        doc: dict[str, Any] = {"userId": user_id, "type": type, "data": data, "time": now,
                               "updated": now, "startTime": now.timestamp(),
                               "updatedTime": now.timestamp()}
        if expires is not None:
            doc["expires"] = expires
        self.coll.insert_one(doc)
        self._wake()
        return doc

    def update_progress(self, record: Document, *, save: bool = True,
                        expires: _dt.datetime | None = None,
                        increment: float | None = None, **fields: Any) -> Document:
        """Change a progress record's total, current, state or message
        (Girder's ``updateProgress``); ``save=False`` only changes it in memory."""
        data = record["data"]
        if increment is not None:
            data["current"] = data.get("current", 0) + increment
        for key in ("total", "current", "state", "message"):
            if key in fields and fields[key] is not None:
                data[key] = fields[key]
        now = utcnow()
        record["updated"] = now
        record["updatedTime"] = now.timestamp()
        record["expires"] = expires or now + ACTIVE_LIFE
        if not save:
            return record
        record.pop("estimatedTotalTime", None)
        try:
            total, current = float(data.get("total") or 0), float(data.get("current") or 0)
        except (TypeError, ValueError):
            total = current = 0.0
        elapsed = record["updatedTime"] - record["startTime"]
        if data.get("estimateTime") and elapsed > 0 and 0 < current <= total:
            record["estimatedTotalTime"] = total * elapsed / current
        changes = {k: record[k] for k in ("data", "updated", "updatedTime", "expires")}
        update: dict[str, Any] = {"$set": changes}
        if "estimatedTotalTime" in record:
            changes["estimatedTotalTime"] = record["estimatedTotalTime"]
        else:
            update["$unset"] = {"estimatedTotalTime": ""}
        self.coll.update_one({"_id": record["_id"]}, update)
        self._wake()
        return record

    def progress(self, principal: Principal, title: str, total: float = 0, *,
                 on: bool = True, interval: float = 0.5, message: str = "",
                 resource: Mapping[str, Any] | None = None, resource_name: str | None = None,
                 estimate_time: bool = True) -> ProgressContext:
        """Girder's ``ProgressContext``; a no-op when ``on`` is false or nobody
        is logged in (a notification belongs to a user)."""
        user_id = principal.user_id if on and not principal.is_anonymous else None
        return ProgressContext(self, user_id, interval, {
            "title": title, "total": total, "current": 0, "state": ACTIVE,
            "message": message, "estimateTime": estimate_time,
            "resource": dict(resource) if resource is not None else None,
            "resourceName": resource_name})

    # ------------------------------------------------------------ reading
    def list(self, principal: Principal, since: _dt.datetime | None = None,
             *, limit: int = LIST_LIMIT) -> list[Document]:
        """The principal's notifications updated after ``since``, oldest first;
        at most ``limit`` (the caller asks again with the last one's time)."""
        if principal.is_anonymous or principal.user_id is None:
            return []
        query: dict[str, Any] = {"userId": principal.user_id}
        if since is not None:
            query["updated"] = {"$gt": since}
        return self.coll.find(query, sort=[("updated", 1), ("_id", 1)], limit=limit)

    def stream(self, principal: Principal, since: _dt.datetime | None = None,
               timeout: float = DEFAULT_STREAM_TIMEOUT) -> NotificationStream:
        """Take a stream slot (``StreamLimitError`` when none is left) for an
        iterator of the principal's notifications: documents as they are
        written, None as a keep-alive after ``heartbeat`` quiet seconds (a
        write to a client that left ends the stream and frees its slot). It ends
        after ``timeout`` seconds without a notification (Girder's rule),
        after ``MAX_STREAM_SECONDS`` in all, or when the service closes."""
        if self._settings is not None and \
                not self._settings.get("core.enable_notification_stream"):
            raise UnavailableError("The notification stream is not enabled.")
        if principal.is_anonymous or principal.user_id is None:
            raise ValidationError("Notifications belong to a user.")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
            raise ValidationError("timeout must be a non-negative number of seconds.",
                                  field="timeout")
        with self._changed:
            if self._streams >= self.max_streams:
                raise StreamLimitError(
                    f"Too many notification streams are open ({self.max_streams}); "
                    "try again later.")
            self._streams += 1
            epoch = self._epoch
        return NotificationStream(self, principal.user_id, since,
                                  min(float(timeout), MAX_STREAM_TIMEOUT), epoch)

    @property
    def open_streams(self) -> int:
        return self._streams

    def close(self) -> None:
        """End every open stream now (the server is stopping); later ones may open."""
        with self._changed:
            self._epoch += 1
            self._changed.notify_all()

    # ------------------------------------------------------------ internals
    def _wake(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _release(self) -> None:
        with self._changed:
            self._streams -= 1

    def _wait(self, generation: int, seconds: float) -> int:
        """Sleep until a local write or ``seconds``; the current generation."""
        with self._changed:
            if self._generation == generation and seconds > 0:
                self._changed.wait(seconds)
            return self._generation

    def _job_updated(self, event: Event) -> None:
        """Girder's jobs plugin notifications for the job's owner: ``job_status``
        when the status changes, a ``progress`` record (resourceName ``job``)
        when progress is reported, ``job_log`` for log lines."""
        info = event.info if isinstance(event.info, Mapping) else {}
        if info.get("notify") is False:
            return  # Girder's updateJob(notify=False)
        job, updates = info.get("job"), _flat(info.get("updates"))
        if not isinstance(job, Mapping) or not isinstance(job.get("userId"), ObjectId):
            return
        user_id, now = job["userId"], utcnow()
        if "status" in updates:
            self.create(user_id, "job_status", _job_for_owner(job), now + FINISHED_LIFE)
        if updates.get("log"):
            lines = updates["log"] if isinstance(updates["log"], list) else [updates["log"]]
            self.create(user_id, "job_log", {"_id": job.get("_id"), "overwrite": False,
                                             "text": "".join(map(str, lines))},
                        now + FINISHED_LIFE)
        progress = job.get("progress")
        if "progress" in updates or ("status" in updates and isinstance(progress, Mapping)):
            self._job_progress(job, progress if isinstance(progress, Mapping) else {})

    def _job_progress(self, job: Mapping[str, Any], progress: Mapping[str, Any]) -> None:
        state = _JOB_STATE.get(job.get("status"), ERROR)  # type: ignore[arg-type]
        record = self.coll.find_one({"userId": job["userId"], "type": PROGRESS,
                                     "data.resourceName": "job",
                                     "data.resource._id": job.get("_id")})
        if record is None:
            resource = _job_for_owner(job)
            record = self.create(job["userId"], PROGRESS, {
                "title": job.get("title", ""), "total": progress.get("total") or 0,
                "current": progress.get("current") or 0, "state": state,
                "message": progress.get("message") or "", "estimateTime": False,
                "resource": resource, "resourceName": "job"},
                utcnow() + ACTIVE_LIFE)
            if state == ACTIVE:
                return
        finished = state in (SUCCESS, ERROR)
        self.update_progress(record, state=state, total=progress.get("total"),
                             current=progress.get("current"),
                             message=progress.get("message"),
                             expires=utcnow() + FINISHED_LIFE if finished else None)


def _flat(updates: Any) -> dict[str, Any]:
    """A job update as field -> value, whether given plainly ({"status": 3}) or as
    a store update ({"$set": {"progress.current": 4}, "$push": {"log": "..."}}):
    top-level field names only, which is all the handler looks at."""
    out: dict[str, Any] = {}
    if not isinstance(updates, Mapping):
        return out
    for key, value in updates.items():
        if isinstance(key, str) and key.startswith("$") and isinstance(value, Mapping):
            for inner, item in value.items():
                out.setdefault(str(inner).split(".")[0], item)
        else:
            out.setdefault(str(key).split(".")[0], value)
    return out


class NotificationStream:
    """One open stream; iterate it, and close it (the slot comes back once)."""

    def __init__(self, service: NotificationService, user_id: ObjectId,
                 since: _dt.datetime | None, timeout: float, epoch: int) -> None:
        self._service = service
        self._epoch = epoch
        self._user_id = user_id
        self._since = since
        self._timeout = timeout
        self._released = False
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[Document | None]:
        try:
            yield from self._run()
        finally:
            self.close()

    def _run(self) -> Iterator[Document | None]:
        service = self._service
        start = last_event = last_sent = time.monotonic()
        # The cursor: the last ``updated`` sent, and the ids sent at exactly that
        # time (two notifications may share a millisecond).
        after: _dt.datetime | None = self._since
        sent_at_after: set[ObjectId] = set()
        wait = MIN_POLL
        while service._epoch == self._epoch:
            generation = service._generation
            query: dict[str, Any] = {"userId": self._user_id}
            if after is not None:
                query["updated"] = {"$gte": after} if sent_at_after else {"$gt": after}
            found = False
            for doc in service.coll.find(query, sort=[("updated", 1), ("_id", 1)], limit=100):
                if doc["updated"] == after and doc["_id"] in sent_at_after:
                    continue
                if doc["updated"] != after:
                    after, sent_at_after = doc["updated"], set()
                sent_at_after.add(doc["_id"])
                found = True
                yield doc
            now = time.monotonic()
            if now - start >= MAX_STREAM_SECONDS:
                return  # however busy: the client reconnects with since
            if found:
                last_event = last_sent = now
                wait = MIN_POLL
                continue  # there may be more than one page
            if now - last_event >= self._timeout:
                return
            if now - last_sent >= service.heartbeat:
                last_sent = now
                yield None
            left = min(self._timeout - (now - last_event), MAX_STREAM_SECONDS - (now - start),
                       service.heartbeat - (now - last_sent))
            service._wait(generation, min(wait, max(left, 0.0)))
            wait = min(wait + MIN_POLL, MAX_POLL)

    def close(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._service._release()


class ProgressContext:
    """Girder's ``ProgressContext``; see ``NotificationService.progress``."""

    def __init__(self, service: NotificationService | None, user_id: ObjectId | None,
                 interval: float, data: dict[str, Any]) -> None:
        self.on = user_id is not None
        self.interval = interval
        self._service = service
        self.record: Document | None = None
        if service is not None and user_id is not None:
            self._last_save = time.monotonic()
            self.record = service.create(user_id, PROGRESS, data, utcnow() + ACTIVE_LIFE)

    def __enter__(self) -> ProgressContext:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.record is None:
            return
        if exc is None:
            state, message = SUCCESS, "Done"
        else:
            state, message = ERROR, "Error"
            if isinstance(exc, CoreError):  # a refusal worth showing, never a traceback
                message = f"Error: {exc.message}"
        try:
            assert self._service is not None
            self._service.update_progress(self.record, state=state, message=message,
                                          expires=utcnow() + FINISHED_LIFE)
        except Exception:  # reporting must not mask the operation's own outcome
            log.warning("could not record the end of progress %s", self.record["_id"],
                        exc_info=True)

    def update(self, *, force: bool = False, **fields: Any) -> None:
        """``current``, ``total``, ``increment``, ``message``: written at most
        every ``interval`` seconds unless ``force``."""
        if self.record is None:
            return
        save = force or time.monotonic() - self._last_save >= self.interval
        assert self._service is not None
        self._service.update_progress(self.record, save=save, **fields)
        if save:
            self._last_save = time.monotonic()


NO_PROGRESS = ProgressContext(None, None, 0.0, {})  # Girder's ``noProgress``

__all__ = ["DEFAULT_STREAM_TIMEOUT", "LIST_LIMIT", "MAX_STREAM_TIMEOUT", "NO_PROGRESS",
           "NotificationService", "NotificationStream", "ProgressContext",
           "StreamLimitError"]


def _job_for_owner(job: Mapping[str, Any]) -> dict[str, Any]:
    """What the owner may read of a job (no arguments, lease or runner
    internals: those are for site admins), less its log, which has its own
    notifications."""
    return {k: job[k] for k in JOB_READ_FIELDS if k in job and k != "log"}
