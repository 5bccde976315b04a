"""Issue 16 item 3: the ``jobs`` plugin's REST routes through requests and
girder-client against a real server: Girder's declarations, access (owner,
administrators, the public flag), status transitions, progress, the log, cancel
and delete; jobs of a registered type run by the server's local runner; and no
route when the plugin is disabled."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import girder_client
import pytest
from bson import ObjectId
from openapi_spec_validator import OpenAPIV2SpecValidator

from joist.core.jobs import JobContext, JobsRuntime, JobStatus, runtime_of
from joist.gateways.http import plugin_collectors
from joist.gateways.http.resources import COLLECTORS
from joist.gateways.http.router import table_from
from tests.gateways.http.girder_routes import GIRDER_JOBS_ROUTES
from tests.gateways.http.restsite import PASSWORD, RestSite, running_site
from tests.gateways.http.test_rest_girder_params import _differences
from tests.gateways.plugins.pluginsite import plugin_site

DEADLINE = 20.0
# Joist-only: a page of a job's log (Girder sends the whole log with the job)
JOIST_ONLY = {("GET", "job/:id/log")}


def wait_for(check: Callable[[], Any], what: str) -> Any:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestSite]:
    with plugin_site(tmp_path_factory.mktemp("jobs") / "data", ["jobs"]) as rest:
        yield rest


@pytest.fixture(scope="module")
def runtime(site: RestSite) -> JobsRuntime:
    return runtime_of(site.app.services.events)


def _create(site: RestSite, login: str, **params: Any) -> dict[str, Any]:
    reply = site.post("job", login, params={"title": "A job", "type": "test.rest", **params})
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_routes_declare_what_girder_declares(site: RestSite) -> None:
    core = table_from(COLLECTORS)
    ours = {(r.method, r.path): r
            for r in table_from(plugin_collectors(site.app.services, core)).routes
            if r.resource == "job"}
    assert set(ours) == set(GIRDER_JOBS_ROUTES) | JOIST_ONLY
    report = [f"{m} {p}: {d}" for (m, p) in sorted(GIRDER_JOBS_ROUTES)
              for d in _differences((m, p), ours[(m, p)], GIRDER_JOBS_ROUTES)]
    assert not report, "\n".join(report)
    doc = site.get("describe").json()
    OpenAPIV2SpecValidator(doc).validate()
    described = doc["paths"]
    assert "get" in described["/job/{id}"] and "put" in described["/job/{id}/cancel"]


def test_access_owner_admin_public(site: RestSite) -> None:
    job = _create(site, "alice", kwargs=json.dumps({"secret": "k"}), args="[1, 2]")
    assert job["status"] == JobStatus.INACTIVE and job["userId"] == site.id("alice")
    assert "kwargs" not in job and "args" not in job  # site administrators only
    path = f"job/{job['_id']}"
    assert site.get(path, "alice").json()["title"] == "A job"
    admin_view = site.get(path, "admin").json()
    assert admin_view["kwargs"] == {"secret": "k"} and admin_view["args"] == [1, 2]
    assert site.get(path, "bobby").status_code == 403
    assert site.get(path).status_code == 401
    assert site.get("job/000000000000000000000000", "alice").status_code == 400
    assert site.get("job/not-an-id", "alice").status_code == 400
    assert site.put(f"{path}/cancel", "bobby").status_code == 403
    assert site.delete(path, "bobby").status_code == 403
    assert site.put(path, "bobby", params={"log": "x"}).status_code == 403

    public = _create(site, "alice", public="true", title="Public job")
    assert site.get(f"job/{public['_id']}", "bobby").status_code == 200
    assert site.get(f"job/{public['_id']}").status_code == 200
    assert site.put(f"job/{public['_id']}", "bobby", params={"log": "x"}).status_code == 403

    mine = {j["_id"] for j in site.get("job", "alice", params={"limit": 100}).json()}
    assert {job["_id"], public["_id"]} <= mine
    theirs = {j["_id"] for j in site.get("job", "bobby").json()}
    assert not theirs & {job["_id"], public["_id"]}
    # another user's list shows what the caller may read of it: the public job only
    of_alice = site.get("job", "bobby", params={"userId": site.id("alice")}).json()
    assert [j["_id"] for j in of_alice] == [public["_id"]]
    everything = {j["_id"] for j in site.get("job/all", "admin", params={"limit": 0}).json()}
    assert {job["_id"], public["_id"]} <= everything
    bobby_all = {j["_id"] for j in site.get("job/all", "bobby", params={"limit": 0}).json()}
    assert public["_id"] in bobby_all and job["_id"] not in bobby_all
    assert site.get("job/all").status_code == 401
    assert site.get("job/typeandstatus", "alice").json() == {"types": ["test.rest"],
                                                             "statuses": [0]}
    assert site.get("job/typeandstatus", "bobby").json() == {"types": [], "statuses": []}


def test_update_log_progress_cancel_delete(site: RestSite) -> None:
    job = _create(site, "alice")
    path = f"job/{job['_id']}"
    refused = site.put(path, "alice", params={"status": JobStatus.SUCCESS})
    assert refused.status_code == 400 and "transition" in refused.json()["message"]
    assert site.put(path, "alice", params={"status": 99}).status_code == 400
    assert site.put(path, "alice", params={"progressTotal": "many"}).status_code == 400
    for status in (JobStatus.QUEUED, JobStatus.RUNNING):
        assert site.put(path, "alice", params={"status": status}).status_code == 200
    for n in range(5):
        site.put(path, "alice", params={"log": f"line {n}"})
    updated = site.put(path, "alice", params={"progressTotal": 10, "progressCurrent": 4,
                                              "progressMessage": "working"}).json()
    assert updated["progress"] == {"total": 10.0, "current": 4.0, "message": "working"}
    assert site.get(f"{path}/log", "alice", params={"offset": 1, "limit": 2}).json() == \
        ["line 1", "line 2"]
    assert site.get(f"{path}/log", "bobby").status_code == 403
    assert site.get(f"{path}/log", "alice", params={"offset": -1}).status_code == 400
    canceled = site.put(f"{path}/cancel", "alice")
    assert canceled.status_code == 200 and canceled.json()["status"] == JobStatus.CANCELED
    assert [t["status"] for t in site.get(path, "alice").json()["timestamps"]] == [1, 2, 5]
    assert site.get("job", "alice", params={"statuses": "[5]"}).json()[0]["_id"] == job["_id"]
    assert site.get("job", "alice", params={"statuses": "5]"}).status_code == 400
    assert site.get("job", "alice", params={"sort": "kwargs"}).status_code == 400
    assert site.post("job", "alice", params={
        "title": "t", "type": "x", "otherFields": json.dumps({"module": "os"})}
    ).status_code == 400
    assert site.post("job", params={"title": "t", "type": "x"}).status_code == 401
    assert site.delete(path, "alice").status_code == 200
    assert site.get(path, "alice").status_code == 400


def test_registered_type_runs_on_the_server(site: RestSite, runtime: JobsRuntime) -> None:
    def steps(ctx: JobContext) -> None:
        for n in range(1, 4):
            ctx.progress(n, 3, f"step {n}")
        ctx.log("done")

    def broken(ctx: JobContext) -> None:
        raise ValueError("bad input file")

    runtime.register_type("test.steps", steps)
    runtime.register_type("test.broken", broken)
    alice = {"_id": ObjectId(site.id("alice"))}
    # a client may queue its own job, but runners only take jobs scheduled in the server
    sneaky = _create(site, "alice", type="test.steps", handler="jobs.local")
    assert site.put(f"job/{sneaky['_id']}", "alice", params={"status": 1}).status_code == 200
    job = runtime.create_and_schedule("Steps", "test.steps", user=alice)
    bad = runtime.create_and_schedule("Broken", "test.broken", user=alice)

    client = girder_client.GirderClient(apiUrl=site.api)
    client.authenticate("alice", PASSWORD)
    done = wait_for(lambda: (j := client.get(f"job/{job['_id']}"))["status"] ==
                    JobStatus.SUCCESS and j, "the job to succeed")
    assert done["progress"] == {"total": 3.0, "current": 3.0, "message": "step 3"}
    assert done["log"] == ["done"] and done["handler"] == "jobs.local"
    failed = wait_for(lambda: (j := client.get(f"job/{bad['_id']}"))["status"] ==
                      JobStatus.ERROR and j, "the job to fail")
    assert failed["log"][0] == "Error: ValueError: bad input file"
    assert "Traceback" not in json.dumps(failed["log"])  # not to its owner
    assert "Traceback" in json.dumps(site.get(f"job/{bad['_id']}", "admin").json()["log"])
    listed = client.get("job", parameters={"types": json.dumps(["test.steps"])})
    assert [j["_id"] for j in listed] == [str(job["_id"]), sneaky["_id"]]
    assert client.get(f"job/{sneaky['_id']}")["status"] == JobStatus.QUEUED
    with pytest.raises(girder_client.HttpError) as denied:
        client.put(f"job/{job['_id']}/cancel")  # finished: no valid transition
    assert denied.value.status == 400


def test_no_job_routes_without_the_plugin(tmp_path: Path) -> None:
    with running_site(tmp_path / "data") as plain:
        reply = plain.get("job", "alice")
        assert reply.status_code in (400, 404), reply.text
        assert "job" not in {p.strip("/").split("/")[0]
                             for p in plain.get("describe").json()["paths"]}


def test_job_updates_become_the_owners_notifications(site: RestSite,
                                                     runtime: JobsRuntime) -> None:
    """Real job updates reach the notification service (core binds
    ``jobs.job.update.after``): status and progress for the owner; an update
    sent with ``notify=false`` makes none (Girder's rule)."""
    runtime.register_type("test.notified", lambda ctx: ctx.progress(2, 2, "all done"))
    alice = {"_id": ObjectId(site.id("alice"))}
    job = runtime.create_and_schedule("Notified", "test.notified", user=alice)

    def of_job(login: str) -> list[dict[str, Any]]:
        return [n for n in site.get("notification", login).json()
                if (n["data"].get("_id") == str(job["_id"]) or
                    (n["data"].get("resource") or {}).get("_id") == str(job["_id"]))]

    statuses = wait_for(lambda: [n["data"]["status"] for n in of_job("alice")
                                 if n["type"] == "job_status"] == [1, 2, 3] and of_job("alice"),
                        "the job's notifications")
    progress = [n for n in statuses if n["type"] == "progress"]
    assert progress and progress[-1]["data"]["message"] == "all done"
    # The owner is no admin: what only admins read of a job stays out.
    for note in statuses:
        shown = note["data"] if note["type"] == "job_status" else note["data"]["resource"]
        assert not {"args", "kwargs", "lease", "log"} & set(shown), note
    assert of_job("bobby") == []
    quiet = _create(site, "alice", title="Quiet")
    before = len(site.get("notification", "alice").json())
    assert site.put(f"job/{quiet['_id']}", "alice",
                    params={"status": 1, "notify": "false"}).status_code == 200
    assert len(site.get("notification", "alice").json()) == before
    site.put(f"job/{quiet['_id']}", "alice", params={"status": 2})
    assert len(site.get("notification", "alice").json()) == before + 1
