"""Issue 16 item 3: restart recovery with a real ``joist serve`` killed with
SIGKILL. Its running jobs keep their lease until it expires; the next server
marks the one that is not safe to rerun ERROR with a log line saying so, and
queues the rerun-safe one again and runs it to the end."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from joist.admin.bootstrap import build_app
from joist.core.jobs import JobStatus, runtime_of
from joist.core.plugins import ENABLED_SETTING
from tests.conftest import ENGINE, make_settings
from tests.serve_process import serve_process

pytestmark = pytest.mark.skipif(ENGINE == "mongo", reason="mongomock cannot be shared with "
                                "another process")
DEADLINE = 30.0
FNS = "tests.gateways.plugins.jobfns"


def wait_for(check: Callable[[], Any], what: str) -> Any:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def serve_env(data: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOIST_")}
    root = str(Path(__file__).resolve().parents[3])  # the job functions' package
    env.update(JOIST_DATA_DIR=str(data), JOIST_SECURITY__BCRYPT_ROUNDS="4",
               JOIST_ASSETSTORE__RESERVE_MB="0", JOIST_SFTP__ENABLED="false",
               HOME=str(home), PYTHONPATH=os.pathsep.join(
                   p for p in (root, env.get("PYTHONPATH")) if p))
    return env


def test_jobs_of_a_killed_server_fail_or_run_again(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    with build_app(settings, env={}) as seed:
        seed.services.settings.set(ENABLED_SETTING, ["jobs"])
    release = tmp_path / "release"
    with build_app(settings, env={}) as app:
        runtime = runtime_of(app.services.events)
        app.services.settings.set("jobs.lease_seconds", 1.0)
        jobs = runtime.jobs
        once = jobs.schedule_job(runtime.create_local_job(
            FNS, "until_file", title="Once", type="test.once",
            kwargs={"release": str(release)}))
        again = jobs.schedule_job(runtime.create_local_job(
            FNS, "until_file", rerun_safe=True, title="Again", type="test.again",
            kwargs={"release": str(release)}))

        def status(job: dict[str, Any]) -> dict[str, Any]:
            found = jobs.load(job["_id"])
            assert found is not None
            return found

        env = serve_env(tmp_path / "data", tmp_path / "home")
        # One process (not a supervisor and its workers): the one SIGKILL ends.
        with serve_process(env, "--workers", "1") as (first, _banner):
            # both running, their functions started (they log it first)
            wait_for(lambda: all(status(j)["status"] == JobStatus.RUNNING and status(j)["log"]
                                 for j in (once, again)), "both jobs to run")
            owner = status(once)["lease"]["owner"]
            assert f":{first.pid}:" in owner
            first.send_signal(signal.SIGKILL)
            assert first.wait(timeout=30) == -signal.SIGKILL
        assert status(once)["status"] == JobStatus.RUNNING  # nobody has looked yet

        with serve_process(env, "--workers", "1") as (second, _banner):
            failed = wait_for(lambda: (j := status(once))["status"] == JobStatus.ERROR and j,
                              "the lost job to fail")
            assert f"({owner}) stopped without finishing it" in failed["log"][-1]
            def started_twice() -> dict[str, Any] | None:
                j = status(again)
                runs = [line for line in j["log"] if line.startswith("started in process")]
                return j if len(runs) == 2 else None

            rerun = wait_for(started_twice, "the rerun-safe job to run again")
            assert rerun["status"] == JobStatus.RUNNING
            assert f":{second.pid}:" in rerun["lease"]["owner"]
            assert rerun["log"][-1] == f"started in process {second.pid}"
            assert any("queued again" in line for line in rerun["log"])
            release.touch()
            wait_for(lambda: status(again)["status"] == JobStatus.SUCCESS, "the rerun to end")
            assert status(once)["status"] == JobStatus.ERROR  # it is not run again
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0
