"""One process's jobs: the model, the type registry, and the runner the
setting ``jobs.runner`` names (``local``: a thread pool in each serve process;
``celery``: Celery workers, ``joist worker``).

Scheduling (``jobs.schedule``) queues a job whose handler is ours (or unset,
for a registered type): QUEUED, handler ``jobs.local`` or ``jobs.celery``, the
type's ``rerunSafe`` recorded for restart recovery; then the local pool is
woken, or the id is sent to the broker. Runners start only in a serving
process (``start_serving``) or a worker (``run_celery_worker``), so a CLI
command that schedules a job never runs it itself.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from ..acl import Principal
from ..events import Event, EventBus
from ..stored_settings import SettingsService
from .celery_runner import CelerySender, run_worker
from .local import LeaseKeeper, LocalRunner
from .model import Jobs, JobStatus
from .runner import (
    CELERY_HANDLER,
    LOCAL_HANDLER,
    MODULE_HANDLER,
    Executor,
    JobContext,
    JobTypes,
)

log = logging.getLogger("joist.jobs")

RUNNER = "jobs.runner"
BROKER = "jobs.celery_broker"
WORKERS = "jobs.local_workers"
LEASE = "jobs.lease_seconds"
ARCHIVE = "jobs.archive_job_bytes"
RUNTIME_EVENT = "jobs.runtime"  # answered by the jobs plugin with its JobsRuntime
JOBS_LOADED = "jobs.loaded"  # fired once the runtime exists (info: it), for job types
OURS = (None, LOCAL_HANDLER, CELERY_HANDLER, MODULE_HANDLER)
INLINE_HANDLER = "jobs.inline"  # a synchronous operation shown as a job (``tracked``)
T = TypeVar("T")


class JobsRuntime:
    def __init__(self, jobs: Jobs, services: Any, settings: SettingsService) -> None:
        self.jobs = jobs
        self.types = JobTypes()
        self.settings = settings
        self.executor = Executor(jobs, self.types, services,
                                 lease_seconds=lambda: float(settings.get(LEASE)))
        self.keeper = LeaseKeeper(self.executor)
        self.local: LocalRunner | None = None
        self.sender: CelerySender | None = None

    # ------------------------------------------------------------ for plugins
    def register_type(self, name: str, fn: Callable[[JobContext], Any], *,
                      rerun_safe: bool = False) -> None:
        self.types.register_type(name, fn, rerun_safe=rerun_safe)

    def create_and_schedule(self, title: str, type: str, **kwargs: Any) -> dict[str, Any]:
        job = self.jobs.create_job(title, type, **kwargs)
        return self.jobs.schedule_job(job)

    def create_local_job(self, module: str, function: str | None = None, *,
                         rerun_safe: bool = False, **kwargs: Any) -> dict[str, Any]:
        """Girder's ``createLocalJob``: run ``module.function(ctx)`` (Python
        callers only: the REST API cannot name code to run)."""
        job = self.jobs.create_job(handler=MODULE_HANDLER, save=False, **kwargs)
        job["module"] = module
        if function is not None:
            job["function"] = function
        job["rerunSafe"] = bool(rerun_safe)
        return self.jobs.save(job)

    # ------------------------------------------------------------ scheduling
    def runner(self) -> str:
        return str(self.settings.get(RUNNER))

    def on_schedule(self, event: Event) -> None:
        job = event.info
        handler = job.get("handler")
        known = self.types.get(str(job.get("type")))
        if handler not in OURS or (handler is None and known is None):
            return  # another plugin's job
        celery = self.runner() == "celery"
        if handler != MODULE_HANDLER:
            handler = CELERY_HANDLER if celery else LOCAL_HANDLER
        fields = {"handler": handler, "runnable": True,
                  "rerunSafe": bool(job.get("rerunSafe") or (known and known.rerun_safe))}
        status = JobStatus.QUEUED if job.get("status") == JobStatus.INACTIVE else None
        self.jobs.update_job(job, status=status, other_fields=fields)
        if celery:
            if self.sender is None:
                self.sender = CelerySender(str(self.settings.get(BROKER)))
            try:
                when = job.get("when")
                self.sender.send(job["_id"], when if isinstance(when, dt.datetime) and
                                 when > dt.datetime.now(dt.UTC) else None)
            except Exception as exc:  # the broker is down: the caller's operation stands
                log.error("job %s stays queued: the Celery broker could not be reached (%s)",
                          job["_id"], type(exc).__name__)
                self.jobs.update_job(job, log="Not sent to the Celery workers: the broker "
                                     "could not be reached.")
        elif self.local is not None:
            self.local.wake()

    # ------------------------------------------------------------ processes
    def start_serving(self, _event: Event | None = None) -> None:
        """In ``joist serve``: the lease keeper, and the local pool unless
        Celery runs the jobs."""
        self.keeper.start()
        if self.runner() == "local" and self.local is None:
            self.local = LocalRunner(self.executor, lambda: int(self.settings.get(WORKERS)))
            self.local.start()

    def stop(self, _event: Event | None = None) -> None:
        if self.local is not None:
            self.local.stop()
            self.local = None
        self.keeper.stop()
        if self.sender is not None:
            self.sender.close()
            self.sender = None

    def run_celery_worker(self, concurrency: int, loglevel: str = "INFO") -> None:
        """``joist worker``: run jobs sent to the broker until stopped."""
        self.keeper.start()
        try:
            run_worker(str(self.settings.get(BROKER)), self.executor, concurrency, loglevel)
        finally:
            self.keeper.stop()


Progress = Callable[[float | None, float | None, str | None], None]
PROGRESS_INTERVAL = 0.5  # seconds between stored progress updates of a tracked operation


def tracked(events: EventBus, principal: Principal, title: str, type: str,
            fn: Callable[[Progress], T], *, notify: bool = True) -> T:
    """Run ``fn(progress)`` now and return its result. With the jobs plugin it
    runs as a job owned by ``principal`` (status, progress at most every half
    second, the error in its log, and restart recovery if the process dies);
    without, ``progress`` does nothing. For operations that answer
    synchronously (as Girder's do) but whose progress should show.
    ``notify=False``: its updates ask for no notifications (the caller has
    Girder's own progress record for it)."""
    runtime = jobs_runtime(events)
    if runtime is None:
        return fn(lambda current, total, message: None)
    owner = None if principal.user_id is None else {"_id": principal.user_id}
    job = runtime.jobs.create_job(title, type, user=owner, handler=INLINE_HANDLER)

    def run(ctx: JobContext) -> T:
        last = [0.0]

        def progress(current: float | None, total: float | None, message: str | None) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL or (total and current == total):
                last[0] = now
                ctx.progress(current, total, message)
        return fn(progress)
    return cast(T, runtime.executor.run_inline(job, run, notify=notify))


def reported(events: EventBus, principal: Principal, title: str, type: str, steps: Any,
             fn: Callable[[Progress | None], T], *, on: bool) -> T:
    """A synchronous ``progress=true`` operation: ``fn(report)`` runs now, and
    each ``report(current, total, message)`` updates both the caller's progress
    record ``steps`` (Girder's ProgressContext) and, with the jobs plugin, a job
    tracking it (which sends no notifications of its own: ``steps`` does).
    Progress off: ``fn(None)``, no record and no job."""
    if not on:
        return fn(None)

    def run(job: Progress) -> T:
        def report(current: float | None, total: float | None, message: str | None) -> None:
            steps.update(current=current, total=total, message=message)
            job(current, total, message)
        return fn(report)
    return tracked(events, principal, title, type, run, notify=False)


def tracked_stream(events: EventBus, principal: Principal, title: str, type: str,
                   total: int, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` as they are; with the jobs plugin and ``total`` at least the
    setting ``jobs.archive_job_bytes`` (0: never), sent as a job of
    ``principal`` whose progress counts the bytes (zip downloads)."""
    runtime = jobs_runtime(events)
    threshold = 0 if runtime is None else int(runtime.settings.get(ARCHIVE))
    if runtime is None or not threshold or total < threshold:
        return chunks
    owner = None if principal.user_id is None else {"_id": principal.user_id}
    job = runtime.jobs.create_job(title, type, user=owner, handler=INLINE_HANDLER)
    return runtime.executor.stream_inline(job, chunks, total, PROGRESS_INTERVAL)


def runtime_of(events: EventBus) -> JobsRuntime:
    """The jobs plugin's runtime (for plugins that depend on ``jobs``)."""
    found = jobs_runtime(events)
    if found is None:
        raise RuntimeError("The jobs plugin is not loaded.")
    return found


def jobs_runtime(events: EventBus) -> JobsRuntime | None:
    """The runtime, or None when the jobs plugin is not loaded."""
    if not events.has_handlers(RUNTIME_EVENT):
        return None
    responses = events.trigger(RUNTIME_EVENT).responses
    return responses[0] if responses else None


__all__ = ["ARCHIVE", "BROKER", "INLINE_HANDLER", "JOBS_LOADED", "LEASE", "RUNNER", "RUNTIME_EVENT",
           "WORKERS", "JobsRuntime", "Progress", "jobs_runtime", "runtime_of", "tracked",
           "tracked_stream"]
