"""Issue 16 item 3: the Celery runner. A real Redis (Debian's redis-server)
on a free 127.0.0.1 port is the broker; a real ``joist worker`` process runs
the jobs this process schedules (it only sends their ids), builds the same
services from the same configuration, claims each job so a task delivered
twice runs once, and honours a cancel. Both are stopped even on failure."""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from joist.admin.bootstrap import build_app
from joist.core.jobs import JobStatus, runtime_of
from joist.core.plugins import ENABLED_SETTING
from tests.conftest import ENGINE, make_settings
from tests.gateways.plugins.test_jobs_restart import FNS, serve_env
from tests.redis_server import redis_available, redis_server
from tests.serve_process import JOIST

pytestmark = [
    pytest.mark.skipif(ENGINE == "mongo",
                       reason="mongomock cannot be shared with another process"),
    pytest.mark.skipif(not redis_available(),
                       reason="redis-server is not installed (make system-deps)"),
]
DEADLINE = 40.0


def wait_for(check: Callable[[], Any], what: str) -> Any:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def joist_worker(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([*JOIST, "worker", "--concurrency", "2"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        seen = ""
        deadline = time.monotonic() + DEADLINE
        while "ready" not in seen and time.monotonic() < deadline:
            try:
                seen += output.get(timeout=1)
            except queue.Empty:
                assert proc.poll() is None, seen
        assert "ready" in seen, seen
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # Celery's warm shutdown
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def test_celery_worker_runs_jobs_sent_through_redis(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with redis_server(tmp_path / "redis") as broker:
        with build_app(settings, env={}) as seed:
            seed.services.settings.set(ENABLED_SETTING, ["jobs"])
        with build_app(settings, env={}) as app:
            app.services.settings.set("jobs.runner", "celery")
            app.services.settings.set("jobs.celery_broker", broker)
            runtime = runtime_of(app.services.events)
            jobs = runtime.jobs

            def load(job: dict[str, Any]) -> dict[str, Any]:
                found = jobs.load(job["_id"])
                assert found is not None
                return found

            def local(function: str, **kwargs: Any) -> dict[str, Any]:
                job = runtime.create_local_job(FNS, function, title=function,
                                               type=f"test.{function}", **kwargs)
                return jobs.schedule_job(job)

            try:
                quick = [local("quick") for _ in range(5)]  # queued before a worker runs
                with joist_worker(serve_env(tmp_path / "data", tmp_path / "home")) as worker:
                    for job in quick:
                        done = wait_for(lambda j=job: (d := load(j))["status"] ==
                                        JobStatus.SUCCESS and d, "a quick job")
                        assert done["progress"]["message"] == f"ran in process {worker.pid}"
                    # a task delivered twice: the second finds nothing to claim
                    stamps = load(quick[0])["timestamps"]
                    runtime.sender.send(quick[0]["_id"])  # type: ignore[union-attr]
                    waiting = local("until_file", kwargs={"release": str(tmp_path / "no")})
                    wait_for(lambda: load(waiting)["status"] == JobStatus.RUNNING,
                             "the waiting job to start")
                    assert load(quick[0])["timestamps"] == stamps
                    jobs.cancel_job(load(waiting))
                    wait_for(lambda: load(waiting)["lease"] is None,
                             "the canceled job to return")
                    assert load(waiting)["status"] == JobStatus.CANCELED
                    assert load(waiting)["handler"] == "jobs._local"
                    assert load(quick[1])["handler"] == "jobs._local"
            finally:
                runtime.stop()
