"""The job model (Girder's jobs plugin, ``girder_jobs/models/job.py``): job
records, their status machine, and the events other code binds to.

* ``jobs.status.validate`` (info: the status) may accept more statuses: a
  handler that prevents the default and responds True makes it valid.
* ``jobs.status.validTransitions`` (info ``{"job", "status"}``) may answer the
  statuses a job may move from.
* ``jobs.schedule`` (info: the job) is fired by ``schedule_job``; the runners
  bind it.
* ``jobs.job.update`` (info ``{"job", "params"}``) before an update: preventing
  the default leaves the job as it is. ``jobs.job.update.after`` (info
  ``{"job": the updated job, "updates": {"$set": ..., "$push": ...},
  "notify": bool}``) after a stored update.
* ``jobs.cancel`` (info: the job) before a cancel; preventing the default keeps
  the status.

A status change is stored only if the stored status is still one the
transition may start from (a conditional update): two writers cannot both move
a job out of one state.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from bson import ObjectId, json_util

from .. import acl
from ..acl import Principal
from ..db.engine import DESCENDING, Collection, CollectionSpec, Index
from ..errors import NotFoundError, ValidationError
from ..events import EventBus


class JobStatus:
    INACTIVE = 0
    QUEUED = 1
    RUNNING = 2
    SUCCESS = 3
    ERROR = 4
    CANCELED = 5
    CANCELING = 824  # Girder worker's: asked to stop, the runner has not yet

    BUILTIN = (INACTIVE, QUEUED, RUNNING, SUCCESS, ERROR, CANCELED, CANCELING)
    FINISHED = (SUCCESS, ERROR, CANCELED)
    # status -> the statuses it may be reached from (Girder's, plus CANCELING)
    VALID_TRANSITIONS: dict[int, list[int]] = {
        QUEUED: [INACTIVE],
        RUNNING: [QUEUED, INACTIVE],
        SUCCESS: [RUNNING],
        ERROR: [QUEUED, RUNNING, CANCELING],
        CANCELED: [INACTIVE, QUEUED, RUNNING, CANCELING],
        CANCELING: [INACTIVE, QUEUED, RUNNING],
    }


SPEC = CollectionSpec(
    "job",
    indexes=(
        Index((("userId", 1), ("created", DESCENDING), ("type", 1), ("status", 1))),
        Index((("created", 1),)), Index((("parentId", 1),)), Index((("type", 1),)),
        Index((("status", 1), ("handler", 1))), Index((("status", 1), ("userId", 1))),
    ),
    array_fields=frozenset({"access.users", "access.groups", "timestamps", "log"}))

# What anyone who may read a job sees (Girder's exposeFields READ), and what
# only site administrators see besides.
READ_FIELDS = ("_id", "title", "type", "created", "interval", "when", "status", "progress",
               "log", "meta", "public", "parentId", "asynchronous", "updated", "timestamps",
               "handler", "jobInfoSpec", "userId", "_modelType")
ADMIN_FIELDS = ("args", "kwargs", "lease", "rerunSafe", "runnable", "module", "function")
TRACEBACK = "Traceback (most recent call last):"
HIDDEN_TRACEBACK = "(A traceback was recorded; site administrators can see it.)"
MAX_LINE = 16 * 1024  # characters of one log line kept
LOG_ONLY = ("log",)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _line(text: Any) -> str:
    text = str(text)
    return text if len(text) <= MAX_LINE else text[:MAX_LINE] + "…"


def _array(value: Any, field: str) -> list[Any] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise ValidationError(f"Parameter {field} must be a JSON array.", field=field)
    return list(value)


class Jobs:
    """Job records of one store, with Girder's model operations."""

    def __init__(self, collection: Collection, events: EventBus) -> None:
        self.collection = collection
        self.events = events

    # ------------------------------------------------------------ statuses
    def is_valid_status(self, status: Any) -> bool:
        event = self.events.trigger("jobs.status.validate", status)
        if event.default_prevented and event.responses:
            return bool(event.responses[-1])
        return status in JobStatus.BUILTIN

    def valid_transitions(self, job: Mapping[str, Any], status: Any) -> list[Any] | None:
        event = self.events.trigger("jobs.status.validTransitions",
                                    {"job": job, "status": status})
        if event.default_prevented and event.responses:
            return list(event.responses[-1])
        return JobStatus.VALID_TRANSITIONS.get(status)

    def _check_status(self, status: Any) -> None:
        if not self.is_valid_status(status):
            raise ValidationError(f"Invalid job status {status}.", field="status")

    # ------------------------------------------------------------ records
    def create_job(self, title: str, type: str, args: Iterable[Any] = (),
                   kwargs: Mapping[str, Any] | None = None, user: Mapping[str, Any] | None = None,
                   when: dt.datetime | None = None, interval: float = 0, public: bool = False,
                   handler: str | None = None, asynchronous: bool = False, save: bool = True,
                   parent_job: Mapping[str, Any] | None = None,
                   other_fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
        now = _now()
        if not isinstance(title, str) or not isinstance(type, str) or not type:
            raise ValidationError("A job needs a title and a type.", field="type")
        owner = user["_id"] if user else None
        job: dict[str, Any] = {
            "title": title, "type": type, "args": list(args), "kwargs": dict(kwargs or {}),
            "created": now, "updated": now, "when": when or now, "interval": interval,
            "status": JobStatus.INACTIVE, "progress": None, "log": [], "meta": {},
            "handler": handler, "asynchronous": bool(asynchronous), "timestamps": [],
            "parentId": parent_job["_id"] if parent_job else None,
            "public": bool(public), "access": acl.new_access(owner), "userId": owner,
            "_modelType": "job"}
        job.update(other_fields or {})
        if save:
            self.save(job)
        return job

    def save(self, job: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace; kwargs are stored as JSON text (Girder's rule:
        keys with ``$`` or ``.`` are allowed)."""
        self._check_status(job["status"])
        stored = {**job, "kwargs": json_util.dumps(job.get("kwargs") or {})}
        if "_id" in job:
            self.collection.replace_one({"_id": job["_id"]}, stored, upsert=True)
        else:
            job["_id"] = self.collection.insert_one(stored)
        return job

    @staticmethod
    def _decoded(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        if doc is not None and isinstance(doc.get("kwargs"), str):
            doc["kwargs"] = json_util.loads(doc["kwargs"])
        return doc

    def load(self, job_id: Any, *, include_log: bool = True) -> dict[str, Any] | None:
        """The job, no access check; None when there is none."""
        try:
            oid = job_id if isinstance(job_id, ObjectId) else ObjectId(str(job_id))
        except Exception:
            return None
        doc = self.collection.find_one({"_id": oid})
        if doc is not None and not include_log:
            doc.pop("log", None)
        return self._decoded(doc)

    def get(self, principal: Principal, job_id: Any, level: int = acl.READ,
            *, include_log: bool = True) -> dict[str, Any]:
        """The job if ``principal`` has ``level`` on it. Girder's answers: an
        unknown id is a 400 (ValidationError), a denied one 403 (401 anonymous)."""
        job = self.load(job_id, include_log=include_log)
        if job is None:
            raise ValidationError(f"Invalid job id ({job_id}).", field="id")
        acl.require(job, principal, level, "job")
        return job

    def list_jobs(self, principal: Principal, *, user: Any = None, types: Any = None,
             statuses: Any = None, handlers: Any = None, parent_job: Any = None,
             limit: int = 50, offset: int = 0,
             sort: Iterable[tuple[str, int]] = (("created", DESCENDING),)) -> list[dict[str, Any]]:
        """``user``: a user record, ``"all"``, or ``"none"``/None (jobs of no user)."""
        query: dict[str, Any] = {}
        if user != "all":
            query["userId"] = user["_id"] if isinstance(user, Mapping) else None
        for field, values in (("type", types), ("status", statuses), ("handler", handlers)):
            values = _array(values, field + "s")
            if values is not None:
                query[field] = {"$in": values}
        if parent_job is not None:
            query["parentId"] = parent_job["_id"]
        query = acl.and_filter(query, acl.permission_filter(principal, acl.READ))
        docs = self.collection.find(query, sort=list(sort), skip=offset, limit=limit,
                                    projection=[f for f in (*READ_FIELDS, *ADMIN_FIELDS)
                                                if f not in LOG_ONLY])
        return [d for d in (self._decoded(doc) for doc in docs) if d is not None]

    def types_and_statuses(self, user: Any) -> dict[str, list[Any]]:
        query = {} if user == "all" else {"userId": user["_id"]}
        return {"types": sorted(self.collection.distinct("type", query), key=str),
                "statuses": sorted(self.collection.distinct("status", query), key=str)}

    def remove(self, job: Mapping[str, Any]) -> None:
        self.events.trigger("model.job.remove", job)
        self.collection.delete_one({"_id": job["_id"]})

    # ------------------------------------------------------------ lifecycle
    def schedule_job(self, job: dict[str, Any]) -> dict[str, Any]:
        """Fire ``jobs.schedule``; runners (or other plugins) take it from there."""
        self.events.trigger("jobs.schedule", job)
        return job

    def cancel_job(self, job: dict[str, Any]) -> dict[str, Any]:
        event = self.events.trigger("jobs.cancel", job)
        if event.default_prevented:
            return job
        return self.update_job(job, status=JobStatus.CANCELED)

    def update_job(self, job: dict[str, Any], log: Any = None, overwrite: bool = False,
                   status: Any = None, progress_total: Any = None,
                   progress_current: Any = None, notify: bool = True,
                   progress_message: Any = None,
                   other_fields: Mapping[str, Any] | None = None,
                   condition: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Girder's ``updateJob``: None leaves a field as it is. ``condition``
        adds to the stored-record match (a runner's lease); a miss raises."""
        params = {"log": log, "overwrite": overwrite, "status": status,
                  "progressTotal": progress_total, "progressCurrent": progress_current,
                  "progressMessage": progress_message, "otherFields": other_fields}
        if self.events.trigger("jobs.job.update", {"job": job, "params": params}) \
                .default_prevented:
            return job
        now = _now()
        query: dict[str, Any] = {"_id": job["_id"], **(condition or {})}
        sets: dict[str, Any] = {}
        pushes: dict[str, Any] = {}
        if log is not None:
            if overwrite:
                sets["log"] = [_line(log)]
                job["log"] = list(sets["log"])
            elif log != "":
                pushes["log"] = _line(log)
                job.setdefault("log", []).append(pushes["log"])
        if status is not None:
            status = self._status_change(job, status, query, sets, pushes, now)
        if progress_total is not None or progress_current is not None or \
                progress_message is not None:
            self._progress(job, progress_total, progress_current, progress_message, sets)
        for key, value in (other_fields or {}).items():
            job[key] = sets[key] = value
        if not sets and not pushes:
            return job
        job["updated"] = sets["updated"] = now
        update: dict[str, Any] = {"$set": sets}
        if pushes:
            update["$push"] = pushes
        if self.collection.update_one(query, update).matched != 1:
            current = self.load(job["_id"], include_log=False)
            if current is None:
                raise NotFoundError(f"Job {job['_id']} no longer exists.")
            raise ValidationError(f"Invalid state transition to '{status}', current state "
                                  f"is '{current['status']}'.", field="status")
        self.events.trigger("jobs.job.update.after",
                            {"job": job, "updates": update, "notify": notify})
        return job

    def _status_change(self, job: dict[str, Any], status: Any, query: dict[str, Any],
                       sets: dict[str, Any], pushes: dict[str, Any], now: dt.datetime) -> Any:
        with contextlib.suppress(TypeError, ValueError):
            status = int(status)  # else kept: Girder allows statuses other plugins validate
        self._check_status(status)
        if status == job["status"]:
            return status
        previous = self.valid_transitions(job, status)
        if previous is None:
            raise ValidationError(f"No valid state transition to '{status}'. Current state "
                                  f"is '{job['status']}'.", field="status")
        query["status"] = {"$in": previous}
        job["status"] = sets["status"] = status
        stamp = {"status": status, "time": now}
        job.setdefault("timestamps", []).append(stamp)
        pushes["timestamps"] = stamp
        return status

    @staticmethod
    def _progress(job: dict[str, Any], total: Any, current: Any, message: Any,
                  sets: dict[str, Any]) -> None:
        try:
            total = None if total is None else float(total)
            current = None if current is None else float(current)
        except (TypeError, ValueError):
            raise ValidationError("Progress values must be numbers.",
                                  field="progressCurrent") from None
        progress = dict(job.get("progress") or {"total": None, "current": None,
                                                "message": None})
        for key, value in (("total", total), ("current", current), ("message", message)):
            if value is not None:
                progress[key] = value if key != "message" else _line(value)
        job["progress"] = sets["progress"] = progress

    # ------------------------------------------------------------ showing
    def filter(self, job: Mapping[str, Any], principal: Principal) -> dict[str, Any]:
        """What ``principal`` may see of a job it may read: READ fields, plus
        args and kwargs for site administrators. Tracebacks in the log are
        for administrators only (they name server paths and code)."""
        admin = principal.is_site_admin
        keys = READ_FIELDS + (("args", "kwargs") if admin else ())
        out = {k: job[k] for k in keys if k in job}
        if "log" in out and not admin:
            out["log"] = [HIDDEN_TRACEBACK if str(line).startswith(TRACEBACK) else line
                          for line in out["log"]]
        return out

    def log_page(self, job: Mapping[str, Any], principal: Principal, offset: int,
                 limit: int) -> list[str]:
        lines = self.filter(job, principal).get("log") or []
        return lines[offset:offset + limit] if limit else lines[offset:]


__all__ = ["ADMIN_FIELDS", "READ_FIELDS", "SPEC", "TRACEBACK", "JobStatus", "Jobs"]
