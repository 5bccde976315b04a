"""The Celery runner, for deployments that outgrow one machine (Girder's
remote worker plugin uses Celery too). Redis (or any Celery broker) carries
job ids only: the job itself stays in the store, and the worker (``joist
worker``) builds the same services from the same configuration, claims the
job there (so a task delivered twice runs once) and runs it as the local
runner would. Celery is an optional extra: ``pip install joist[celery]``.
"""

from __future__ import annotations

from typing import Any

from .runner import Executor

TASK = "joist.jobs.run"
QUEUE = "joist.jobs"


def celery_app(broker: str, executor: Executor | None = None) -> Any:
    """A Celery app on ``broker``; with ``executor`` (a worker) it also has
    the task that runs jobs."""
    try:
        from celery import Celery
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("jobs.runner is celery, but Celery is not installed "
                           "(pip install 'joist[celery]').") from exc
    app = Celery("joist", broker=broker, set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE, task_ignore_result=True, result_backend=None,
        # a job is acknowledged when it is taken: if the worker dies, the job's
        # lease expires and restart recovery decides (never run twice)
        task_acks_late=False, worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
        broker_transport_options={"socket_timeout": 10},
    )
    if executor is not None:
        @app.task(name=TASK)
        def run(job_id: str) -> bool:
            return executor.run_by_id(job_id)
    return app


class CelerySender:
    """Sends the ids of scheduled jobs to the broker (in a serve process)."""

    def __init__(self, broker: str) -> None:
        self.broker = broker
        self._app: Any = None

    def send(self, job_id: Any, eta: Any = None) -> None:
        """``eta``: the job's ``when``, the earliest it may start (a datetime)."""
        if self._app is None:
            self._app = celery_app(self.broker)
        # a broker outage costs the scheduling request about a second, not more
        self._app.send_task(TASK, args=[str(job_id)], queue=QUEUE, eta=eta, retry=True,
                            retry_policy={"max_retries": 2, "interval_start": 0.1,
                                          "interval_step": 0.3, "interval_max": 0.5})

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


def run_worker(broker: str, executor: Executor, concurrency: int,
               loglevel: str = "INFO") -> None:
    """Run a Celery worker in this process until it is stopped (SIGTERM)."""
    app = celery_app(broker, executor)
    app.worker_main(["worker", "--pool=threads", f"--concurrency={max(1, concurrency)}",
                     f"--queues={QUEUE}", f"--loglevel={loglevel}", "--without-gossip",
                     "--without-mingle", "--without-heartbeat", "--hostname=joist@%h"])


__all__ = ["QUEUE", "TASK", "CelerySender", "celery_app", "run_worker"]
