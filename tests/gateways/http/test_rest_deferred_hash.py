"""Issue 18 item 2: uploads over ``assetstore.defer_hash_bytes`` (small here)
are committed unhashed and handed over in the background. Through a real
server (girder-client, requests, WebDAV): byte-exact reads before and after
the hand-over, deduplication after it, copies and deletes racing it, the
hashsum plugin's answers, and a clean ``joist check`` at the end. The
hand-over runs as a job (the jobs plugin is on)."""

from __future__ import annotations

import hashlib
import io
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import girder_client
import pytest
import requests
from bson import ObjectId

from tests.gateways.http.restsite import PASSWORD, RestSite
from tests.gateways.plugins.pluginsite import plugin_site
from tests.s3env import local_blobs_only

pytestmark = local_blobs_only
THRESHOLD = 256 * 1024
BIG = random.Random(18).randbytes(THRESHOLD + 12_345)
DIGEST = hashlib.sha512(BIG).hexdigest()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestSite]:
    with plugin_site(tmp_path_factory.mktemp("defer") / "data", ["hashsum_download", "jobs"],
                     **{"assetstore.defer_hash_bytes": THRESHOLD,
                        "webdav.enabled": True}) as rest:
        yield rest


@pytest.fixture
def paused(site: RestSite, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    """Hand-overs queued by uploads are collected instead of run: the test
    runs them when it wants (``handover.run``)."""
    queued: list[tuple[Any, Any]] = []
    handover = site.app.services.files.handover
    monkeypatch.setattr(handover, "schedule",
                        lambda assetstore_id, blob: queued.append((assetstore_id, blob)))
    return queued


def record(site: RestSite, file_id: Any) -> dict[str, Any]:
    doc = site.app.store.get("file", file_id)
    assert doc is not None
    return doc


def hand_over(site: RestSite, file_id: Any) -> str | None:
    """Run the hand-over of the file's pending blob (if it still has one)."""
    doc = site.app.store.files.find_one({"_id": ObjectId(str(file_id))})
    if doc is None or not doc.get("pending"):  # deleted or handed over meanwhile
        return None
    return site.app.services.files.handover.run(doc["assetstoreId"], doc["pending"])


def blob_refs(site: RestSite, key: str) -> int | None:
    adapter = site.app.assetstores.current()[1]
    doc = adapter.refs.find_one({"_id": adapter.ref_id(key)})  # type: ignore[attr-defined]
    return None if doc is None else int(doc["refs"])


def pending_files(site: RestSite) -> list[Any]:
    return list(site.app.assetstores.current()[1].pending.files())  # type: ignore[attr-defined]


def dav_put(site: RestSite, path: str, data: bytes) -> None:
    reply = requests.put(f"{site.server.url}/dav{path}", data=data,
                         auth=("alice", PASSWORD), timeout=30)
    assert reply.status_code in (201, 204), reply.text


def dav_get(site: RestSite, path: str) -> bytes:
    reply = requests.get(f"{site.server.url}/dav{path}", auth=("alice", PASSWORD), timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.content


def test_rest_and_webdav_uploads_read_back_before_and_after(
        site: RestSite, paused: list[tuple[Any, Any]]) -> None:
    gc = girder_client.GirderClient(apiUrl=site.api)
    gc.authenticate("alice", PASSWORD)
    uploaded = gc.uploadStreamToFolder(site.id("public"), io.BytesIO(BIG), "big.bin", len(BIG))
    dav_put(site, "/user/alice/Public/big-dav.bin", BIG)
    dav_file = site.find_file("public", "big-dav.bin", "alice")
    assert len(paused) == 2
    for file_id in (uploaded["_id"], dav_file["_id"]):
        doc = record(site, file_id)
        assert doc.get("pending") and "sha512" not in doc  # committed, not hashed
        shown = site.get(f"file/{file_id}", "alice").json()
        assert "sha512" not in shown and "pending" not in shown  # Girder's JSON
        key = site.get(f"file/{file_id}/hashsum_file/sha512", "alice")
        assert key.status_code == 200 and key.text == DIGEST + "\n"  # handed over on demand
        assert record(site, file_id)["sha512"] == DIGEST
    # the second was not asked for: a plain read still serves the pending bytes
    third = gc.uploadStreamToFolder(site.id("public"), io.BytesIO(BIG), "big3.bin", len(BIG))
    assert record(site, third["_id"]).get("pending")
    got = site.get(f"file/{third['_id']}/download", "alice")
    assert got.content == BIG
    assert dav_get(site, "/user/alice/Public/big3.bin") == BIG
    assert hand_over(site, third["_id"]) == DIGEST
    assert site.get(f"file/{third['_id']}/download", "alice").content == BIG
    assert dav_get(site, "/user/alice/Public/big-dav.bin") == BIG
    # one blob for the three uploads of the same bytes; no pending file left
    assert blob_refs(site, DIGEST) == 3 and pending_files(site) == []
    assert site.get(f"file/hashsum/sha512/{DIGEST}", "alice").json()[0]["size"] == len(BIG)
    assert site.check() == []
    for file_id in (uploaded["_id"], dav_file["_id"], third["_id"]):
        assert site.delete(f"file/{file_id}", "alice").status_code == 200
    assert blob_refs(site, DIGEST) is None
    assert not os.path.exists(site.app.assetstores.current()[1].blob_path(DIGEST))  # type: ignore[attr-defined]


def test_copy_and_delete_race_the_hand_over(site: RestSite,
                                            paused: list[tuple[Any, Any]]) -> None:
    data = random.Random(5).randbytes(THRESHOLD * 2)
    digest = hashlib.sha512(data).hexdigest()
    originals = [site.upload("alice", site.id("public"), f"race{n}.bin", data)
                 for n in range(4)]
    copies_item = site.post("item", "alice", params={"folderId": site.id("public"),
                                                     "name": "race-copies"}).json()
    errors: list[BaseException] = []

    def hand_over_all() -> None:
        try:
            for file in originals:
                hand_over(site, file["_id"])
        except BaseException as exc:  # reported below
            errors.append(exc)

    worker = threading.Thread(target=hand_over_all)
    worker.start()
    copies = []
    for n, file in enumerate(originals):  # copies and deletes while it runs
        copy = site.post(f"file/{file['_id']}/copy", "alice",
                         params={"itemId": copies_item["_id"]})
        assert copy.status_code == 200, copy.text
        copies.append(copy.json())
        if n % 2:
            assert site.delete(f"file/{file['_id']}", "alice").status_code == 200
    worker.join(timeout=60)
    assert not worker.is_alive() and errors == []
    for file in originals + copies:  # what the race left pending, handed over now
        doc = site.app.store.files.find_one({"_id": ObjectId(file["_id"])})
        if doc is not None and doc.get("pending"):
            deadline = time.monotonic() + 10
            while hand_over(site, doc["_id"]) is None:  # no copy is in flight now
                assert time.monotonic() < deadline
    for copy in copies:
        assert site.get(f"file/{copy['_id']}/download", "alice").content == data
    assert blob_refs(site, digest) == 6 and pending_files(site) == []
    assert site.check() == []
    for file in originals[::2] + copies:
        assert site.delete(f"file/{file['_id']}", "alice").status_code == 200
    assert blob_refs(site, digest) is None


def test_the_hand_over_runs_by_itself(site: RestSite, tmp_path: Path) -> None:
    data = random.Random(9).randbytes(THRESHOLD)
    file = site.upload("alice", site.id("public"), "auto.bin", data)
    deadline = time.monotonic() + 30
    while "sha512" not in record(site, file["_id"]):  # a job hashes it
        assert time.monotonic() < deadline, record(site, file["_id"])
        time.sleep(0.05)
    doc = record(site, file["_id"])
    assert doc["sha512"] == hashlib.sha512(data).hexdigest() and "pending" not in doc
    assert site.get(f"file/{file['_id']}/download", "alice").content == data
    jobs = site.get("job/all", "admin", params={"types": '["assetstore.handover"]'}).json()
    assert jobs and all(j["status"] == 3 for j in jobs), jobs  # SUCCESS
    small = site.upload("alice", site.id("public"), "small.bin", data[:THRESHOLD - 1])
    assert record(site, small["_id"]).get("sha512")  # under the threshold: hashed inline
    assert site.check() == []
