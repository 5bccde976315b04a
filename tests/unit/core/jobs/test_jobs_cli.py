"""Issue 16 item 3 through the CLI: ``joist check --deep`` runs as a job with
progress when the jobs plugin is enabled (and as before when it is not), and
``joist worker`` refuses to start without the plugin."""

from __future__ import annotations

import subprocess
from pathlib import Path

from joist.admin.bootstrap import build_app
from joist.core.acl import SYSTEM
from joist.core.jobs import JobStatus, runtime_of
from tests.conftest import make_settings
from tests.serve_process import JOIST


def joist(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*JOIST, *args], env=env, text=True, capture_output=True,
                          timeout=120)


def test_deep_check_is_a_job_and_worker_needs_the_plugin(cli_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    refused = joist(cli_env, "worker")
    assert refused.returncode == 2 and "jobs plugin is not enabled" in refused.stdout
    assert joist(cli_env, "check", "--deep").returncode == 0  # no plugin: no job
    assert joist(cli_env, "plugin", "enable", "jobs").returncode == 0
    checked = joist(cli_env, "check", "--deep")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "consistent" in checked.stdout
    with build_app(make_settings(tmp_path / "data"), env={}) as app:
        runtime = runtime_of(app.services.events)
        found = runtime.jobs.list_jobs(SYSTEM, user="all", types=["check.deep"])
        assert len(found) == 1
        job = found[0]
        assert job["status"] == JobStatus.SUCCESS and job["userId"] is None
        assert job["progress"]["current"] == job["progress"]["total"] == 3.0  # one assetstore
        assert job["progress"]["message"].startswith("assetstore ")
