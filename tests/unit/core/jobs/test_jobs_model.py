"""Issue 16 item 3: the job model (Girder's statuses and transitions, the
events), the job-type registry and the local runner: claims, progress, log,
cancel, errors, leases and restart recovery, on a real store."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bson import ObjectId

from joist.admin.bootstrap import App, build_app
from joist.core.acl import SYSTEM, Principal
from joist.core.errors import ValidationError
from joist.core.jobs import JobContext, JobsRuntime, JobStatus, runtime_of
from joist.core.jobs.model import HIDDEN_TRACEBACK, TRACEBACK
from joist.core.plugins import ENABLED_SETTING
from joist.core.settings import Settings

DEADLINE = 20.0
SYSTEM_ID = ObjectId()  # a job owner


def wait_for(check: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def jobs_app(app: App, settings: Settings) -> App:
    """A second App on the same store, started with the jobs plugin enabled."""
    app.services.settings.set(ENABLED_SETTING, ["jobs"])
    second = build_app(settings, env={})
    assert second.services.plugins.loaded == ["jobs"], second.services.plugins.failed
    return second


@pytest.fixture
def japp(app: App, settings: Settings) -> Iterator[App]:
    second = jobs_app(app, settings)
    try:
        yield second
    finally:
        runtime_of(second.services.events).stop()
        second.close()


@pytest.fixture
def runtime(japp: App) -> JobsRuntime:
    return runtime_of(japp.services.events)


def _status(runtime: JobsRuntime, job: dict[str, Any]) -> int:
    found = runtime.jobs.load(job["_id"])
    assert found is not None
    return int(found["status"])


def test_status_transitions_follow_girder(runtime: JobsRuntime) -> None:
    jobs = runtime.jobs
    job = jobs.create_job("t", "nothing")
    assert job["status"] == JobStatus.INACTIVE and job["timestamps"] == []
    with pytest.raises(ValidationError, match="Invalid state transition"):
        jobs.update_job(dict(job), status=JobStatus.SUCCESS)  # SUCCESS only from RUNNING
    with pytest.raises(ValidationError, match="Invalid job status 77"):
        jobs.update_job(job, status=77)
    jobs.update_job(job, status=JobStatus.QUEUED)
    jobs.update_job(job, status=JobStatus.RUNNING)
    jobs.update_job(job, status="3")  # REST sends strings
    stored = jobs.load(job["_id"])
    assert stored is not None and stored["status"] == JobStatus.SUCCESS
    assert [t["status"] for t in stored["timestamps"]] == [1, 2, 3]
    with pytest.raises(ValidationError):
        jobs.update_job(stored, status=JobStatus.RUNNING)

    # a plugin accepts an extra status through jobs.status.validate
    def accept(event: Any) -> None:
        if event.info == 77:
            event.prevent_default().add_response(True)

    def from_anything(event: Any) -> None:
        if event.info["status"] == 77:
            event.prevent_default().add_response([JobStatus.INACTIVE])

    events = jobs.events
    with events.bound("jobs.status.validate", "test", accept), \
            events.bound("jobs.status.validTransitions", "test", from_anything):
        other = jobs.create_job("t", "nothing")
        assert jobs.update_job(other, status=77)["status"] == 77


def test_update_events_before_and_after(runtime: JobsRuntime) -> None:
    jobs = runtime.jobs
    job = jobs.create_job("title", "kind", user={"_id": SYSTEM_ID}, kwargs={"a.b": {"$x": 1}})
    seen: list[dict[str, Any]] = []
    with jobs.events.bound("jobs.job.update.after", "test", lambda e: seen.append(e.info)):
        jobs.update_job(job, progress_total=10, progress_current=3, progress_message="m")
        with jobs.events.bound("jobs.job.update", "veto", lambda e: e.prevent_default()):
            jobs.update_job(job, log="ignored")
    assert len(seen) == 1
    info = seen[0]
    assert set(info) >= {"job", "updates"}
    assert info["job"]["_id"] == job["_id"] and info["job"]["userId"] == SYSTEM_ID
    assert info["job"]["progress"] == {"total": 10.0, "current": 3.0, "message": "m"}
    assert info["job"]["title"] == "title" and info["job"]["type"] == "kind"
    assert info["updates"]["$set"]["progress"]["current"] == 3.0
    stored = jobs.load(job["_id"])
    assert stored is not None and stored["log"] == [] and stored["kwargs"] == {"a.b": {"$x": 1}}


def test_registered_type_runs_with_progress_and_log(japp: App, runtime: JobsRuntime) -> None:
    seen: dict[str, Any] = {}

    def work(ctx: JobContext) -> None:
        seen["services"] = ctx.services
        for step in range(3):
            ctx.progress(step + 1, 3, f"step {step + 1}")
        ctx.log(f"hello {ctx.kwargs['name']}")

    runtime.register_type("test.work", work)
    runtime.start_serving()
    job = runtime.create_and_schedule("Work", "test.work", kwargs={"name": "world"})
    wait_for(lambda: _status(runtime, job) == JobStatus.SUCCESS, "the job to succeed")
    done = runtime.jobs.load(job["_id"])
    assert done is not None
    assert done["progress"] == {"total": 3.0, "current": 3.0, "message": "step 3"}
    assert done["log"] == ["hello world"] and done["handler"] == "jobs.local"
    assert [t["status"] for t in done["timestamps"]] == [1, 2, 3]
    assert done["lease"] is None
    assert seen["services"] is japp.services


def test_failure_is_error_with_traceback_for_admins_only(japp: App,
                                                         runtime: JobsRuntime) -> None:
    def broken(ctx: JobContext) -> None:
        raise RuntimeError("disk on fire")

    runtime.register_type("test.broken", broken)
    runtime.start_serving()
    job = runtime.create_and_schedule("Broken", "test.broken")
    wait_for(lambda: _status(runtime, job) == JobStatus.ERROR, "the job to fail")
    done = runtime.jobs.load(job["_id"])
    assert done is not None
    assert done["log"][0] == "Error: RuntimeError: disk on fire"
    assert done["log"][1].startswith(TRACEBACK) and "broken" in done["log"][1]
    owner = Principal(user_id=SYSTEM_ID)
    assert runtime.jobs.filter(done, owner)["log"][1] == HIDDEN_TRACEBACK
    assert "args" not in runtime.jobs.filter(done, owner)
    assert runtime.jobs.filter(done, SYSTEM)["log"][1].startswith(TRACEBACK)


def test_cancel_is_cooperative(runtime: JobsRuntime) -> None:
    started = threading.Event()

    def patient(ctx: JobContext) -> None:
        started.set()
        end = time.monotonic() + DEADLINE
        while not ctx.canceled and time.monotonic() < end:
            time.sleep(0.01)

    runtime.register_type("test.patient", patient)
    runtime.start_serving()
    job = runtime.create_and_schedule("Patient", "test.patient")
    assert started.wait(DEADLINE)
    running = runtime.jobs.load(job["_id"])
    assert running is not None and running["status"] == JobStatus.RUNNING
    runtime.jobs.cancel_job(running)
    wait_for(lambda: not runtime.executor._running, "the job function to return")
    assert _status(runtime, job) == JobStatus.CANCELED
    # a queued job canceled before it runs never runs
    queued = runtime.jobs.create_job("Never", "test.never")
    runtime.jobs.cancel_job(queued)
    assert _status(runtime, queued) == JobStatus.CANCELED


def test_two_processes_run_each_job_once(app: App, settings: Settings, japp: App,
                                         runtime: JobsRuntime) -> None:
    other_app = build_app(settings, env={})
    other = runtime_of(other_app.services.events)
    runs: dict[str, int] = {}
    lock = threading.Lock()

    def count(ctx: JobContext) -> None:
        with lock:
            runs[str(ctx.job["_id"])] = runs.get(str(ctx.job["_id"]), 0) + 1

    try:
        for rt in (runtime, other):
            rt.register_type("test.count", count)
        created = [runtime.create_and_schedule(f"n{i}", "test.count") for i in range(40)]
        runtime.start_serving()
        other.start_serving()
        wait_for(lambda: all(_status(runtime, j) == JobStatus.SUCCESS for j in created),
                 "every job to succeed")
        assert runs == {str(j["_id"]): 1 for j in created}
    finally:
        other.stop()
        other_app.close()


def test_live_job_keeps_its_lease_and_a_dead_one_is_recovered(
        app: App, settings: Settings, japp: App, runtime: JobsRuntime) -> None:
    japp.services.settings.set("jobs.lease_seconds", 0.6)
    release = threading.Event()

    def long(ctx: JobContext) -> None:
        release.wait(DEADLINE)

    runtime.register_type("test.long", long)
    runtime.register_type("test.again", lambda ctx: None, rerun_safe=True)
    runtime.start_serving()
    job = runtime.create_and_schedule("Long", "test.long")
    wait_for(lambda: _status(runtime, job) == JobStatus.RUNNING, "the job to start")
    # another process sweeps for three lease periods: the live job stays
    other_app = build_app(settings, env={})
    try:
        sweeper = runtime_of(other_app.services.events)
        sweeper.register_type("test.again", lambda ctx: None, rerun_safe=True)
        end = time.monotonic() + 1.8
        while time.monotonic() < end:
            assert sweeper.executor.sweep() == 0
            time.sleep(0.1)
        assert _status(runtime, job) == JobStatus.RUNNING
        release.set()
        wait_for(lambda: _status(runtime, job) == JobStatus.SUCCESS, "the job to end")

        # jobs whose owner died: an expired lease of a process that is gone
        runtime.stop()
        dead = {"owner": "elsewhere:1:dead", "expires": time.time() - 1}
        lost = runtime.jobs.create_job("Lost", "test.long",
                                       other_fields={"status": JobStatus.RUNNING,
                                                     "lease": dead, "handler": "jobs.local",
                                                     "runnable": True})
        again = runtime.jobs.create_job("Again", "test.again",
                                        other_fields={"status": JobStatus.RUNNING,
                                                      "lease": dead, "handler": "jobs.local",
                                                      "runnable": True})
        assert sweeper.executor.sweep() == 2
        lost_now = runtime.jobs.load(lost["_id"])
        assert lost_now is not None and lost_now["status"] == JobStatus.ERROR
        assert "stopped without finishing it" in lost_now["log"][-1]
        again_now = runtime.jobs.load(again["_id"])
        assert again_now is not None and again_now["status"] == JobStatus.QUEUED
        assert "queued again" in again_now["log"][-1]
        sweeper.start_serving()  # the requeued job runs to the end
        wait_for(lambda: _status(runtime, again) == JobStatus.SUCCESS, "the rerun")
        sweeper.stop()
    finally:
        other_app.close()


def test_types_not_registered_are_left_to_other_plugins(runtime: JobsRuntime) -> None:
    job = runtime.create_and_schedule("Foreign", "someone.else")
    assert _status(runtime, job) == JobStatus.INACTIVE
    assert runtime.jobs.load(job["_id"])["handler"] is None  # type: ignore[index]


def test_unreachable_broker_leaves_the_job_queued(japp: App, runtime: JobsRuntime) -> None:
    from tests.ldap_server import free_port  # nothing listens there
    japp.services.settings.set("jobs.runner", "celery")
    japp.services.settings.set("jobs.celery_broker", f"redis://127.0.0.1:{free_port()}/0")
    runtime.register_type("test.remote", lambda ctx: None)
    job = runtime.create_and_schedule("Remote", "test.remote")  # does not raise
    stored = runtime.jobs.load(job["_id"])
    assert stored is not None and stored["status"] == JobStatus.QUEUED
    assert stored["handler"] == "jobs.celery"
    assert "broker could not be reached" in stored["log"][-1]


def test_a_job_does_not_start_before_its_when(runtime: JobsRuntime) -> None:
    import datetime as dt
    started: list[float] = []
    runtime.register_type("test.later", lambda ctx: started.append(time.monotonic()))
    runtime.start_serving()
    scheduled = time.monotonic()
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    job = runtime.create_and_schedule("Later", "test.later", when=when)
    wait_for(lambda: _status(runtime, job) == JobStatus.SUCCESS, "the job to run")
    assert started[0] - scheduled >= 1.4


def test_a_job_deleted_while_it_runs_ends_quietly(runtime: JobsRuntime) -> None:
    started, release = threading.Event(), threading.Event()
    seen: list[bool] = []

    def work(ctx: JobContext) -> None:
        started.set()
        release.wait(DEADLINE)
        ctx.progress(1, 1, "after the delete")
        seen.append(ctx.canceled)

    runtime.register_type("test.deleted", work)
    runtime.start_serving()
    job = runtime.create_and_schedule("Deleted", "test.deleted")
    assert started.wait(DEADLINE)
    runtime.jobs.remove(job)
    release.set()
    wait_for(lambda: seen, "the job function to return")
    assert seen == [True] and runtime.jobs.load(job["_id"]) is None
    wait_for(lambda: not runtime.executor._running, "the runner to let go")
