"""Jobs benchmark (issue 16): jobs per second through each runner.

For N no-op jobs (default 500) on the embedded SQLite store, prints:

* scheduling: ``create_job`` + ``schedule_job`` per second (the caller's cost);
* local runner: jobs per second from the first schedule until every job is
  SUCCESS, with the thread pool of one serving process (``jobs.local_workers``);
* Celery runner: the same through a Redis broker (Debian's ``redis-server``,
  started here on a free port) and one ``joist worker`` process with the same
  concurrency. Skipped when redis-server or Celery is missing.

Each job claims itself (one conditional update), stores RUNNING and SUCCESS
with their timestamps and fires the update events: the figures measure the
runner's overhead per job, not any work.

Run by hand:  .venv/bin/python benchmarks/jobs_bench.py [--jobs 500] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from joist.admin.bootstrap import App, build_app
from joist.core.jobs import JobContext, JobStatus, runtime_of
from joist.core.plugins import ENABLED_SETTING
from joist.core.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
DEADLINE = 300.0


def noop(ctx: JobContext) -> None:
    """The job every run schedules (imported by name in the Celery worker)."""


def _settings(data: Path) -> Any:
    return load_settings(env={}, search=False, overrides={
        "data_dir": str(data), "security.bcrypt_rounds": 4, "assetstore.reserve_mb": 0})


def _app(data: Path, **stored: Any) -> App:
    with build_app(_settings(data), env={}) as seed:
        seed.services.settings.set(ENABLED_SETTING, ["jobs"])
    app = build_app(_settings(data), env={})
    for key, value in stored.items():
        app.services.settings.set(key, value)
    return app


def _wait_all_done(app: App, count: int) -> None:
    jobs = runtime_of(app.services.events).jobs
    end = time.monotonic() + DEADLINE
    while jobs.collection.count({"status": JobStatus.SUCCESS}) < count:
        if time.monotonic() > end or jobs.collection.count({"status": JobStatus.ERROR}):
            raise SystemExit("jobs failed or did not finish in time")
        time.sleep(0.01)


def _schedule(app: App, count: int) -> float:
    runtime = runtime_of(app.services.events)
    start = time.perf_counter()
    for n in range(count):
        runtime.jobs.schedule_job(runtime.create_local_job(__name__.replace(
            "__main__", "benchmarks.jobs_bench"), "noop", title=f"n{n}", type="bench.noop"))
    return time.perf_counter() - start


def bench_local(data: Path, count: int, workers: int) -> tuple[float, float]:
    app = _app(data, **{"jobs.local_workers": workers})
    runtime = runtime_of(app.services.events)
    try:
        runtime.start_serving()
        start = time.perf_counter()
        scheduled = _schedule(app, count)
        _wait_all_done(app, count)
        return count / scheduled, count / (time.perf_counter() - start)
    finally:
        runtime.stop()
        app.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_celery(data: Path, count: int, workers: int) -> float | None:
    if shutil.which("redis-server") is None:
        print("celery: skipped (no redis-server)")
        return None
    try:
        import celery  # noqa: F401
    except ImportError:
        print("celery: skipped (pip install 'joist[celery]')")
        return None
    port = _free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", str(data.parent)],
                             stdout=subprocess.DEVNULL)
    worker = None
    app = _app(data, **{"jobs.runner": "celery",
                        "jobs.celery_broker": f"redis://127.0.0.1:{port}/0"})
    try:
        env = {**os.environ, "JOIST_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}
        output = data.parent / "worker.log"  # a file: a full pipe would stall the worker
        with output.open("w") as sink:
            worker = subprocess.Popen([sys.executable, "-m", "joist.admin.cli", "worker",
                                       "--concurrency", str(workers), "--loglevel", "WARNING"],
                                      env=env, stdout=sink, stderr=subprocess.STDOUT)
        end = time.monotonic() + 60
        while "ready" not in output.read_text() and time.monotonic() < end:
            time.sleep(0.05)  # until Celery says it is ready
        start = time.perf_counter()
        _schedule(app, count)
        _wait_all_done(app, count)
        return count / (time.perf_counter() - start)
    except SystemExit:
        failed = runtime_of(app.services.events).jobs.collection.find_one(
            {"status": JobStatus.ERROR})
        print("celery: a job failed:", failed and failed.get("log"))
        raise
    finally:
        runtime_of(app.services.events).stop()
        app.close()
        for proc in (worker, redis):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def main() -> None:
    sys.path.insert(0, str(ROOT))  # the jobs name this module as benchmarks.jobs_bench
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scheduling, local = bench_local(Path(tmp) / "local", args.jobs, args.workers)
        print(f"scheduling: {scheduling:8.0f} jobs/s (create + schedule, SQLite)")
        print(f"local:      {local:8.0f} jobs/s ({args.workers} threads, one process)")
        celery = bench_celery(Path(tmp) / "celery", args.jobs, args.workers)
        if celery is not None:
            print(f"celery:     {celery:8.0f} jobs/s (Redis broker, one worker, "
                  f"{args.workers} threads)")


if __name__ == "__main__":
    main()
