"""Issue 16 item 3: with the ``jobs`` plugin, ``hashsum_download``'s
auto-compute of an imported file's SHA-512 runs as a job (type
``hashsum_download.compute``, rerun-safe) with progress, visible to
administrators through ``GET job/all``."""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
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


def test_progress_operations_answer_synchronously_and_show_as_jobs(site: RestSite) -> None:
    """``progress=true`` on an import and a file move: the answer is Girder's
    (synchronous); the operation is a job of its caller with its progress."""
    store = make_s3(site, "s3-progress")
    s3 = shared_moto().client()
    for n in range(3):
        s3.put_object(Bucket=store["bucket"], Key=f"many/f{n}.bin", Body=b"x" * n)
    into = site.post("folder", "admin", params={"parentType": "folder", "name": "many",
                                                "parentId": site.id("public")}).json()
    summary = site.post(f"assetstore/{store['_id']}/import", "admin", params={
        "importPath": "many", "destinationType": "folder", "destinationId": into["_id"],
        "progress": "true"}).json()
    assert summary["files"] == 3
    job = site.get("job", "admin", params={"types": '["assetstore.import"]'}).json()[0]
    assert job["status"] == JobStatus.SUCCESS and job["userId"] == site.id("admin")
    assert job["handler"] == "jobs.inline" and job["title"] == "Import many"
    assert job["progress"]["current"] >= 1  # the first file's report at least

    data = b"move me" * 1000
    file = site.upload("admin", into["_id"], "moved.bin", data)
    moved = site.put(f"file/{file['_id']}/move", "admin",
                     data={"assetstoreId": store["_id"], "progress": "true"})
    assert moved.status_code == 200 and moved.json()["assetstoreId"] == store["_id"]
    move = site.get("job", "admin", params={"types": '["file.move"]'}).json()[0]
    assert move["status"] == JobStatus.SUCCESS
    assert move["progress"] == {"total": float(len(data)), "current": float(len(data)),
                                "message": "moved.bin"}
    # a refused operation is a failed job with the error in its log
    refused = site.put(f"file/{file['_id']}/move", "admin",
                       data={"assetstoreId": "000000000000000000000000", "progress": "true"})
    assert refused.status_code == 400
    failed = site.get("job", "admin", params={"types": '["file.move"]'}).json()[0]
    assert failed["status"] == JobStatus.ERROR and "log" not in failed  # lists leave it out
    assert site.get(f"job/{failed['_id']}/log", "admin").json()[0].startswith(
        "Error: NotFoundError")


def test_large_zip_downloads_show_as_jobs(site: RestSite) -> None:
    """A folder zip of at least ``jobs.archive_job_bytes`` is streamed as
    before and shows as a job of the downloader with its progress."""
    folder = site.id("data")
    plain = site.get(f"folder/{folder}/download", "alice")
    assert plain.status_code == 200
    types = '["archive.download"]'
    assert site.get("job", "alice", params={"types": types}).json() == []  # under 1 GiB
    assert site.put("system/setting", "admin", data={
        "key": "jobs.archive_job_bytes", "value": "1"}).status_code == 200
    try:
        reply = site.get(f"folder/{folder}/download", "alice")
        assert reply.status_code == 200
        names = zipfile.ZipFile(io.BytesIO(reply.content)).namelist()
        assert names == zipfile.ZipFile(io.BytesIO(plain.content)).namelist()
        job = site.get("job", "alice", params={"types": types}).json()[0]
        assert job["status"] == JobStatus.SUCCESS and job["title"] == "Download data.zip"
        size = float(site.get(f"folder/{folder}", "alice").json()["size"])
        assert job["progress"]["current"] == job["progress"]["total"] == size
        assert job["progress"]["message"] == f"{len(reply.content)} bytes sent"
    finally:
        site.put("system/setting", "admin", data={"key": "jobs.archive_job_bytes",
                                                  "value": str(1 << 30)})
