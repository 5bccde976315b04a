"""Running jobs: the job-type registry, what a job function gets, the claim
that makes each queued job run once, and leases for restart recovery.

A runner (the local thread pool, or a Celery worker) runs a job only after
claiming it: one conditional update moves it from QUEUED to RUNNING and
records the lease (``lease.owner``: host, pid and a per-process token;
``lease.expires``: epoch seconds). Whoever loses the race finds nothing to run.
While it runs, the owning process renews the lease (``Leases.renew``). A job
whose lease expired was left by a dead process: any live runner's sweep marks
it ERROR with a log line saying so, or queues it again when its type is
``rerun_safe``. A live long job keeps its lease fresh and is never taken.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import CoreError, NotFoundError, ValidationError
from .model import TRACEBACK, Jobs, JobStatus

log = logging.getLogger("joist.jobs")

LOCAL_HANDLER = "jobs.local"          # run by the local thread pool of any serve process
CELERY_HANDLER = "jobs.celery"        # sent to Celery workers
MODULE_HANDLER = "jobs._local"        # Girder's: run ``module.function`` (Python API only)
CANCEL_CHECK_INTERVAL = 0.25          # seconds between reads of the stored status
MAX_LOG_LINES = 10_000                # lines one run may add (a runaway loop stops logging)
SWEEP_BATCH = 100


@dataclass(frozen=True)
class JobType:
    name: str
    fn: Callable[[JobContext], Any]
    rerun_safe: bool = False


class JobTypes:
    """The job types plugins register: ``register_type(name, fn, rerun_safe)``."""

    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}

    def register_type(self, name: str, fn: Callable[[JobContext], Any], *,
                      rerun_safe: bool = False) -> None:
        if not isinstance(name, str) or not name or not callable(fn):
            raise ValueError("A job type needs a name and a function.")
        self._types[name] = JobType(name, fn, rerun_safe)

    def unregister_type(self, name: str) -> None:
        self._types.pop(name, None)

    def get(self, name: str) -> JobType | None:
        return self._types.get(name)

    def names(self) -> list[str]:
        return sorted(self._types)


class JobCanceledError(Exception):
    """Raised by ``JobContext.check_canceled`` to leave a canceled job early."""


class JobContext:
    """What a job function gets: the job, the services, progress, log, cancel."""

    def __init__(self, job: dict[str, Any], services: Any, jobs: Jobs,
                 condition: dict[str, Any], notify: bool = True) -> None:
        self.job = job
        self.notify = notify
        self.services = services
        self._jobs = jobs
        self._condition = condition
        self._logged = 0
        self._checked = 0.0
        self._canceled = False

    @property
    def args(self) -> list[Any]:
        return list(self.job.get("args") or [])

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.job.get("kwargs") or {})

    def progress(self, current: float | None, total: float | None = None,
                 message: str | None = None) -> None:
        self._update(progress_current=current, progress_total=total, progress_message=message)

    def log(self, line: str) -> None:
        if self._logged >= MAX_LOG_LINES:
            return
        self._logged += 1
        self._update(log=str(line))

    def _update(self, **changes: Any) -> None:
        try:
            self._jobs.update_job(self.job, condition=self._condition, notify=self.notify,
                                  **changes)
        except (ValidationError, NotFoundError):
            self._canceled = True  # no longer ours: canceled, taken or deleted meanwhile

    @property
    def canceled(self) -> bool:
        """True once the job was canceled (read from the store, at most every
        quarter second): a long job checks it between steps and returns."""
        if self._canceled:
            return True
        now = time.monotonic()
        if now - self._checked >= CANCEL_CHECK_INTERVAL:
            self._checked = now
            stored = self._jobs.collection.find_one({"_id": self.job["_id"]},
                                                    projection=["status"])
            self._canceled = stored is None or stored["status"] in (
                JobStatus.CANCELED, JobStatus.CANCELING)
        return self._canceled

    def check_canceled(self) -> None:
        if self.canceled:
            raise JobCanceledError()


def process_owner() -> str:
    """This process's lease owner: host, pid and a token (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Executor:
    """Claims and runs jobs for one process (local pool or Celery worker)."""

    def __init__(self, jobs: Jobs, types: JobTypes, services: Any, *,
                 lease_seconds: Callable[[], float], owner: str | None = None) -> None:
        self.jobs = jobs
        self.types = types
        self.services = services
        self.lease_seconds = lease_seconds
        self.owner = owner or process_owner()
        self._running: set[Any] = set()
        self._lock = threading.Lock()

    def function_of(self, job: dict[str, Any]) -> Callable[[JobContext], Any] | None:
        if job.get("handler") == MODULE_HANDLER and job.get("module"):
            module = importlib.import_module(str(job["module"]))
            return getattr(module, str(job.get("function") or "run"))
        found = self.types.get(str(job.get("type")))
        return found.fn if found else None

    def claim(self, query: dict[str, Any], status: int = JobStatus.QUEUED,
              notify: bool = True) -> dict[str, Any] | None:
        """Atomically move one matching QUEUED job to RUNNING under our lease."""
        now = time.time()
        stamp = {"status": JobStatus.RUNNING, "time": utc_now()}
        # only jobs queued by schedule_job: a REST client may queue its own job
        # (PUT status=1) but cannot make a runner execute it with its arguments
        runnable = {"runnable": True} if status == JobStatus.QUEUED else {}
        doc = self.jobs.collection.find_one_and_update(
            {**query, **runnable, "status": status},
            {"$set": {"status": JobStatus.RUNNING, "updated": stamp["time"],
                      "lease": {"owner": self.owner, "expires": now + self.lease_seconds()}},
             "$push": {"timestamps": stamp}},
            sort=[("created", 1)])
        if doc is None:
            return None
        job = self.jobs._decoded(doc)
        assert job is not None
        self.jobs.events.trigger("jobs.job.update.after", {
            "job": job, "updates": {"$set": {"status": JobStatus.RUNNING}}, "notify": notify})
        return job

    def run_by_id(self, job_id: Any) -> bool:
        """Claim the job with this id and run it; False if it was not QUEUED."""
        job = self.jobs.load(job_id)
        if job is None:
            return False
        claimed = self.claim({"_id": job["_id"]})
        if claimed is None:
            return False
        self.run(claimed)
        return True

    def run(self, job: dict[str, Any]) -> None:
        """Run a claimed job to its end status."""
        def call(ctx: JobContext) -> Any:
            fn = self.function_of(job)
            if fn is None:
                raise CoreError(f"No job type {job.get('type')!r} is registered here.")
            return fn(ctx)
        with contextlib.suppress(Exception):  # recorded in the job
            self._execute(job, call)

    def run_inline(self, job: dict[str, Any], fn: Callable[[JobContext], Any], *,
                   notify: bool = True) -> Any:
        """Run ``fn`` now, in the caller's thread, as the INACTIVE ``job``
        (an operation that answers synchronously but shows its progress as a
        job); its result is returned and its exception raised."""
        if self.claim({"_id": job["_id"]}, JobStatus.INACTIVE, notify) is None:
            raise ValidationError("The job is no longer inactive.", field="status")
        job.update(status=JobStatus.RUNNING)
        return self._execute(job, fn, notify)

    def stream_inline(self, job: dict[str, Any], chunks: Iterator[bytes], total: int,
                      every: float) -> Iterator[bytes]:
        """Pass ``chunks`` through as the INACTIVE ``job`` (a response being
        streamed): progress in bytes at most every ``every`` seconds; SUCCESS
        at the end, CANCELED when the client goes away first, ERROR on failure."""
        if self.claim({"_id": job["_id"]}, JobStatus.INACTIVE, False) is None:
            yield from chunks
            return
        job.update(status=JobStatus.RUNNING)
        condition = {"lease.owner": self.owner}
        with self._lock:
            self._running.add(job["_id"])
        ctx = JobContext(job, self.services, self.jobs, condition, notify=False)
        sent, last, status, lines = 0, time.monotonic(), JobStatus.CANCELED, [
            "The client stopped the download before its end."]
        try:
            for chunk in chunks:
                yield chunk
                sent += len(chunk)
                if time.monotonic() - last >= every:  # total counts content, not framing
                    last = time.monotonic()
                    ctx.progress(min(sent, total), total, f"{sent} bytes sent")
            ctx.progress(total, total, f"{sent} bytes sent")
            status, lines = JobStatus.SUCCESS, []
        except Exception as exc:
            status, lines = JobStatus.ERROR, [f"Error: {type(exc).__name__}: {exc}"]
            raise
        finally:
            with self._lock:
                self._running.discard(job["_id"])
            self._finish(job, status, condition, False, lines)

    def _execute(self, job: dict[str, Any], fn: Callable[[JobContext], Any],
                 notify: bool = True) -> Any:
        condition = {"lease.owner": self.owner}
        with self._lock:
            self._running.add(job["_id"])
        ctx = JobContext(job, self.services, self.jobs, condition, notify)
        try:
            result = fn(ctx)
        except JobCanceledError:
            result = None
        except Exception as exc:
            # the traceback goes to the job's log (administrators only), not the server log
            log.warning("job %s (%s) failed: %s", job["_id"], job.get("type"),
                        type(exc).__name__)
            self._finish(job, JobStatus.ERROR, condition, notify,
                         [f"Error: {type(exc).__name__}: {exc}",
                          TRACEBACK + "\n" + "".join(traceback.format_tb(exc.__traceback__))])
            raise
        finally:
            with self._lock:
                self._running.discard(job["_id"])
        status = JobStatus.CANCELED if ctx.canceled else JobStatus.SUCCESS
        self._finish(job, status, condition, notify, [])
        return result

    def _finish(self, job: dict[str, Any], status: int, condition: dict[str, Any],
                notify: bool, lines: list[str]) -> None:
        try:
            for line in lines:
                self.jobs.update_job(job, log=line, condition=condition, notify=notify)
            if job.get("status") != status:
                self.jobs.update_job(job, status=status, condition=condition, notify=notify,
                                     other_fields={"lease": None})
        except NotFoundError:
            pass  # deleted meanwhile
        except ValidationError:
            # canceled or recovered meanwhile: that status stands; our lease ends
            self.jobs.collection.update_one({"_id": job["_id"], **condition},
                                            {"$set": {"lease": None}})

    # ------------------------------------------------------------ leases
    def renew(self) -> int:
        """Extend the leases of the jobs this process runs."""
        with self._lock:
            ids = list(self._running)
        if not ids:
            return 0
        expires = time.time() + self.lease_seconds()
        return self.jobs.collection.update_many(
            {"_id": {"$in": ids}, "lease.owner": self.owner, "status": JobStatus.RUNNING},
            {"$set": {"lease.expires": expires}}).matched

    def sweep(self) -> int:
        """Recover jobs left RUNNING by dead processes (expired leases)."""
        now = time.time()
        found = self.jobs.collection.find(
            {"status": JobStatus.RUNNING, "lease.expires": {"$lt": now}}, limit=SWEEP_BATCH)
        done = 0
        for doc in found:
            job = self.jobs._decoded(doc)
            assert job is not None
            lease = job.get("lease") or {}
            known = self.types.get(str(job.get("type")))
            rerun = bool(job.get("rerunSafe") or (known and known.rerun_safe))
            status = JobStatus.QUEUED if rerun else JobStatus.ERROR
            line = (f"The process running this job ({lease.get('owner')}) stopped without "
                    f"finishing it; " + ("it was queued again (its type is safe to rerun)."
                                         if rerun else "it is marked as failed."))
            stamp = {"status": status, "time": utc_now()}
            updates = {"$set": {"status": status, "updated": stamp["time"], "lease": None},
                       "$push": {"timestamps": stamp, "log": line}}
            # only if nobody renewed or recovered it since we read it
            if self.jobs.collection.update_one(
                    {"_id": job["_id"], "status": JobStatus.RUNNING,
                     "lease.expires": lease.get("expires")}, updates).matched != 1:
                continue
            done += 1
            log.warning("job %s: %s", job["_id"], line)
            job.update(status=status, lease=None)
            job.setdefault("log", []).append(line)
            self.jobs.events.trigger("jobs.job.update.after",
                                     {"job": job, "updates": updates, "notify": True})
        return done


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


__all__ = ["CELERY_HANDLER", "LOCAL_HANDLER", "MODULE_HANDLER", "Executor", "JobCanceledError",
           "JobContext", "JobType", "JobTypes", "process_owner", "utc_now"]
