"""Issue 16 item 3: with the ``jobs`` plugin, ``hashsum_download``'s
auto-compute of an imported file's SHA-512 runs as a job (type
``hashsum_download.compute``, rerun-safe) with progress, visible to
administrators through ``GET job/all``."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator

import pytest

from joist.core.jobs import JobStatus, runtime_of
from tests.gateways.http.restsite import RestSite
from tests.gateways.http.test_rest_s3 import make_s3
from tests.gateways.plugins.pluginsite import plugin_site
from tests.s3env import shared_moto


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestSite]:
    with plugin_site(tmp_path_factory.mktemp("jobhash") / "data",
                     ["hashsum_download", "jobs"]) as rest:
        yield rest


def test_auto_compute_runs_as_a_job(site: RestSite) -> None:
    runtime = runtime_of(site.app.services.events)
    assert runtime.types.get("hashsum_download.compute").rerun_safe  # type: ignore[union-attr]
    store = make_s3(site, "s3-hashjob")
    s3 = shared_moto().client()
    s3.put_object(Bucket=store["bucket"], Key="ext/later.bin", Body=b"computed in a job")
    assert site.put("system/setting", "admin", data={
        "key": "hashsum_download.auto_compute", "value": "true"}).status_code == 200
    into = site.post("folder", "alice", params={"parentType": "folder", "name": "ext",
                                                "parentId": site.id("public")}).json()
    assert site.post(f"assetstore/{store['_id']}/import", "admin", params={
        "importPath": "ext", "destinationType": "folder", "destinationId": into["_id"]}
    ).json()["files"] == 1
    types = json.dumps(["hashsum_download.compute"])

    def finished() -> list[dict]:
        found = site.get("job/all", "admin", params={"types": types}).json()
        return found if found and found[0]["status"] == JobStatus.SUCCESS else []

    deadline = time.monotonic() + 20
    while not finished() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the job, bounded by the deadline
    job = finished()[0]
    size = len(b"computed in a job")
    assert job["progress"] == {"total": float(size), "current": float(size),
                               "message": "computed"}
    item = site.get("item", "alice", params={"folderId": into["_id"]}).json()[0]
    file = site.get(f"item/{item['_id']}/files", "alice").json()[0]
    assert file["sha512"] == hashlib.sha512(b"computed in a job").hexdigest()
    # a system job: its owner is nobody, so only administrators list it
    assert site.get("job/all", "alice", params={"types": types}).json() == []
