"""The local runner: a small bounded thread pool in each ``joist serve``
process, and the lease keeper every running process has (local or Celery).

The pool polls the store for QUEUED jobs of the local handler (woken at once
when this process schedules one) and claims them one at a time while a worker
is free, so several processes on one store share the queue and never run one
job twice. The keeper renews this process's leases and sweeps expired ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .runner import LOCAL_HANDLER, MODULE_HANDLER, Executor, utc_now

log = logging.getLogger("joist.jobs")

POLL_INTERVAL = 1.0  # seconds between looks at the store when not woken


class LeaseKeeper:
    """Renew this process's leases and recover expired ones, every third of
    the lease."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="joist-job-leases",
                                            daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.executor.renew()
                self.executor.sweep()
            except Exception:
                log.exception("job lease upkeep failed")
            self._stop.wait(max(0.05, self.executor.lease_seconds() / 3))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


class LocalRunner:
    """``workers`` threads taking local jobs from the store."""

    def __init__(self, executor: Executor, workers: Callable[[], int]) -> None:
        self.executor = executor
        self.workers = workers
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for number in range(max(1, min(int(self.workers()), 32))):
            thread = threading.Thread(target=self._loop, name=f"joist-job-{number}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def _loop(self) -> None:
        query = {"handler": {"$in": [LOCAL_HANDLER, MODULE_HANDLER]}}
        while not self._stop.is_set():
            try:  # a job's ``when`` is the earliest it may start (Girder's field)
                job = self.executor.claim({**query, "when": {"$lte": utc_now()}})
            except Exception:
                log.exception("claiming a job failed")
                job = None
            if job is not None:
                self.executor.run(job)
                continue
            self._wake.wait(POLL_INTERVAL)
            self._wake.clear()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; wait up to ``timeout`` for those running (a job
        still running then is recovered by its lease after this process ends)."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads.clear()


__all__ = ["LeaseKeeper", "LocalRunner"]
