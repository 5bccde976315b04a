"""The REST gateway with S3 assetstores: administration (Girder's ``assetstore``
routes), girder-client's 64 MiB chunks as multipart parts, downloads
redirected to presigned URLs, import of a bucket prefix, files moved between
assetstores with their ids kept, and an S3 outage in the middle of an upload.

S3 is moto's server mode on 127.0.0.1 (``tests/s3env.py``): no S3 is
reachable here, and moto speaks the real protocol over HTTP.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import girder_client
import pytest
import requests

from tests.gateways.http.restsite import PASSWORD, RestSite, running_site
from tests.s3env import FaultProxy, MotoS3, shared_moto

MiB = 1 << 20


def make_s3(site: RestSite, name: str = "s3", url: str | None = None,
            **extra: Any) -> dict[str, Any]:
    """A new S3 assetstore made over REST; downloads redirect (the default)."""
    site.app.services.settings.set("joist.s3.redirect_downloads", True)
    moto = shared_moto()
    fields = moto.fields(moto.new_bucket("rest"), url, **extra)
    reply = site.post("assetstore", "admin", params={
        "name": name, "type": 2, **{k: v for k, v in fields.items()
                                    if k not in ("connectTimeout", "readTimeout",
                                                 "attempts")}})
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def test_s3_assetstore_administration(site: RestSite) -> None:
    moto = shared_moto()
    bucket = moto.new_bucket("admin")
    params = {"name": "objects", "type": 2, "bucket": bucket, "service": moto.url,
              "accessKeyId": "testing", "secret": "testing"}
    assert site.post("assetstore", "alice", params=params).status_code == 403
    missing = site.post("assetstore", "admin", params={**params, "bucket": "no-such-bucket"})
    assert missing.status_code == 400 and "does not exist" in missing.json()["message"]
    keyless = site.post("assetstore", "admin", params={**params, "secret": ""})
    assert keyless.status_code == 400 and keyless.json()["field"] == "accessKeyId"
    made = site.post("assetstore", "admin", params=params)
    assert made.status_code == 200, made.text
    doc = made.json()
    assert doc["type"] == 2 and doc["bucket"] == bucket and doc["current"] is False
    assert "secret" not in doc and doc["accessKeyId"] == "testing"
    assert doc["capacity"] == {"free": None, "total": None}
    bad = site.put(f"assetstore/{doc['_id']}", "admin", params={
        "name": "objects", "current": "false", "bucket": "gone-bucket-x"})
    assert bad.status_code == 400
    assert site.get(f"assetstore/{doc['_id']}", "admin").json()["bucket"] == bucket
    switched = site.put(f"assetstore/{doc['_id']}", "admin",
                        params={"name": "objects", "current": "true",
                                "prefix": "/joist/data/"})
    assert switched.status_code == 200, switched.text
    assert switched.json()["current"] is True and switched.json()["prefix"] == "joist/data"
    stores = site.get("assetstore", "admin").json()
    assert [s["current"] for s in stores].count(True) == 1
    file = site.upload("alice", site.id("public"), "to-s3.txt", b"stored in a bucket")
    listed = site.get(f"assetstore/{doc['_id']}/files", "admin").json()
    assert [f["_id"] for f in listed] == [file["_id"]]
    keys = [o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("joist/data/")
    assert site.delete(f"assetstore/{doc['_id']}", "admin").status_code == 400
    other = moto.new_bucket("other")
    for change in ({"bucket": other}, {"prefix": "elsewhere"}):
        moved = site.put(f"assetstore/{doc['_id']}", "admin",
                         params={"name": "objects", "current": "true", **change})
        assert moved.status_code == 400 and "holds files" in moved.json()["message"], moved.text
    kept = site.get(f"assetstore/{doc['_id']}", "admin").json()
    assert (kept["bucket"], kept["prefix"]) == (bucket, "joist/data")
    renamed = site.put(f"assetstore/{doc['_id']}", "admin", params={"name": "objects 2",
                                                                    "current": "true"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "objects 2"
    assert site.get(f"file/{file['_id']}/download", "alice").content == b"stored in a bucket"
    assert site.check() == []


def test_girder_client_chunks_become_parts_and_downloads_redirect(
        site: RestSite, tmp_path: Path) -> None:
    store = make_s3(site, current="true")
    source = tmp_path / "big.bin"
    data = os.urandom(1 << 20) * 65 + b"tail"  # 64 MiB chunk + the rest
    source.write_bytes(data)
    client = girder_client.GirderClient(apiUrl=site.api)
    client.authenticate("alice", PASSWORD)
    file = client.uploadFileToFolder(site.id("public"), str(source))
    record = site.app.store.get("file", __import__("bson").ObjectId(file["_id"]))
    assert record["assetstoreId"] == __import__("bson").ObjectId(store["_id"])
    head = shared_moto().client().head_object(Bucket=store["bucket"], Key=record["s3Key"])
    # Each chunk is sent as whole parts: the 64 MiB one as 8 parts of 8 MiB (4 at
    # a time), the last one as a ninth.
    assert head["ETag"].strip('"').endswith("-9")
    assert record["sha512"] == hashlib.sha512(data).hexdigest()
    reply = site.get(f"file/{file['_id']}/download", "alice", allow_redirects=False)
    assert reply.status_code == 303
    assert reply.headers["Location"].startswith(shared_moto().url)
    target = tmp_path / "back.bin"
    client.downloadFile(file["_id"], str(target))  # follows the redirect
    assert target.read_bytes() == data


def test_redirects_follow_the_setting_and_keep_the_acl(site: RestSite) -> None:
    make_s3(site, current="true")
    body = b"0123456789" * 1000
    file = site.upload("alice", site.id("data"), "digits.txt", body)
    url = f"file/{file['_id']}/download"
    assert site.get(url).status_code == 401  # no URL for whoever may not read
    assert site.get(url, "bobby", allow_redirects=False).status_code == 403
    moved = site.get(url, "alice", allow_redirects=False,
                     params={"contentDisposition": "inline"})
    assert moved.status_code == 303 and "Signature=" in moved.headers["Location"]
    direct = requests.get(moved.headers["Location"], timeout=10)
    assert direct.content == body
    assert direct.headers["Content-Disposition"] == 'inline; filename="digits.txt"'
    ranged = site.get(url, "alice", headers={"Range": "bytes=10-19"})  # S3 answers it
    assert ranged.status_code == 206 and ranged.content == body[10:20]
    offset = site.get(url, "alice", params={"offset": 5, "endByte": 9},
                      allow_redirects=False)  # Girder's parameters: served by us
    assert offset.status_code == 206 and offset.content == body[5:9]
    site.app.services.settings.set("joist.s3.redirect_downloads", False)
    proxied = site.get(url, "alice", allow_redirects=False)
    assert proxied.status_code == 200 and proxied.content == body
    assert proxied.headers["ETag"].strip('"') == file_sha(site, file)[:40]


def file_sha(site: RestSite, file: dict[str, Any]) -> str:
    from bson import ObjectId
    return str(site.app.store.get("file", ObjectId(file["_id"]))["sha512"])


def test_import_a_bucket_prefix(site: RestSite) -> None:
    store = make_s3(site)
    s3 = shared_moto().client()
    objects = {"survey/readme.txt": b"read me", "survey/2024/a.csv": b"a,b\n1,2\n",
               "survey/2024/raw/b.bin": os.urandom(3000), "other/skip.txt": b"no"}
    for key, content in objects.items():
        s3.put_object(Bucket=store["bucket"], Key=key, Body=content)
    route = f"assetstore/{store['_id']}/import"
    into = site.post("folder", "alice", params={"parentType": "folder", "name": "survey",
                                                "parentId": site.id("public")}).json()
    params = {"importPath": "survey", "destinationType": "folder", "destinationId": into["_id"]}
    assert site.post(route, "alice", params=params).status_code == 403
    onto_user = site.post(route, "admin", params={**params, "destinationType": "user",
                                                  "destinationId": site.id("alice")})
    assert onto_user.status_code == 400 and "directly underneath" in onto_user.text
    done = site.post(route, "admin", params=params)
    assert done.status_code == 200, done.text
    assert done.json() == {"folders": 2, "items": 3, "files": 3, "updated": 0, "skipped": 0}
    public = site.app.hierarchy.view(site.world.principal("alice"))
    names = sorted(n.name for n in public.listdir("/user/alice/Public/survey/2024"))
    assert names == ["a.csv", "raw"]
    assert public.open_read("/user/alice/Public/survey/2024/raw/b.bin").read() == \
        objects["survey/2024/raw/b.bin"]
    again = site.post(route, "admin", params=params).json()
    assert again == {"folders": 2, "items": 3, "files": 0, "updated": 0, "skipped": 0}
    s3.put_object(Bucket=store["bucket"], Key="survey/readme.txt", Body=b"read me, v2")
    assert site.post(route, "admin", params=params).json()["updated"] == 1
    item = site.get("item", "alice", params={"folderId": into["_id"],
                                             "name": "readme.txt"}).json()[0]
    assert item["size"] == len(b"read me, v2")
    files = site.get(f"item/{item['_id']}/files", "alice").json()
    download = site.get(f"file/{files[0]['_id']}/download", "alice")
    assert download.content == b"read me, v2"
    assert site.delete(f"item/{item['_id']}", "alice").status_code == 200
    left = s3.get_object(Bucket=store["bucket"], Key="survey/readme.txt")["Body"].read()
    assert left == b"read me, v2"  # imported bytes are never deleted by Joist
    assert site.check() == []


def test_move_files_between_assetstores_keeps_ids(site: RestSite) -> None:
    store = make_s3(site)
    body = os.urandom(200_000)
    fs = next(s for s in site.get("assetstore", "admin").json() if s["type"] == 0)
    fs_id = fs["_id"]
    site.put(f"assetstore/{fs_id}", "admin", params={"name": fs["name"], "current": "true"})
    file = site.upload("alice", site.id("data"), "mover.bin", body)
    fs_path = site.app.assetstores.adapter(fs_id).local_path(
        site.app.store.get("file", __import__("bson").ObjectId(file["_id"])))
    assert fs_path is not None and os.path.exists(fs_path)
    route = f"file/{file['_id']}/move"
    assert site.put(route, "alice", params={"assetstoreId": store["_id"]}).status_code == 403
    moved = site.put(route, "admin", params={"assetstoreId": store["_id"]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["_id"] == file["_id"] and moved.json()["assetstoreId"] == store["_id"]
    assert site.get(f"file/{file['_id']}/download", "alice").content == body
    record = site.app.store.get("file", __import__("bson").ObjectId(file["_id"]))
    assert "path" not in record and record["s3Key"]
    assert not os.path.exists(fs_path)  # the filesystem copy was released
    back = site.put(route, "admin", params={"assetstoreId": fs_id})
    assert back.status_code == 200 and back.json()["assetstoreId"] == fs_id
    assert site.get(f"file/{file['_id']}/download", "alice").content == body
    keys = shared_moto().client().list_objects_v2(Bucket=store["bucket"]).get("Contents")
    assert not keys  # the S3 copy was released too
    item = site.get("item", "alice", params={"folderId": site.id("data"),
                                             "name": "mover.bin"}).json()[0]
    assert item["size"] == len(body)
    assert site.check() == []


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[tuple[RestSite, MotoS3, FaultProxy]]:
    """A site whose current assetstore is an in-process moto behind a proxy
    (moto in this process keeps its buckets across a stop and a start)."""
    moto = MotoS3().start()
    proxy = FaultProxy(moto.port)
    try:
        with running_site(tmp_path / "data") as site:
            fields = moto.fields(moto.new_bucket("flaky"), proxy.url, readTimeout=2,
                                 connectTimeout=1)
            site.app.assetstores.create_s3("flaky", fields, current=True)
            yield site, moto, proxy
    finally:
        proxy.close()
        moto.stop()


def test_s3_outage_mid_chunk_fails_cleanly_and_resumes(
        flaky: tuple[RestSite, MotoS3, FaultProxy], caplog: pytest.LogCaptureFixture) -> None:
    site, moto, proxy = flaky
    data = os.urandom(12 * MiB)
    upload = site.post("file", "alice", params={
        "parentType": "folder", "parentId": site.id("public"), "name": "outage.bin",
        "size": len(data)}).json()
    first = site.post("file/chunk", "alice", params={"uploadId": upload["_id"], "offset": 0},
                      data=data[:6 * MiB])
    assert first.status_code == 200, first.text
    host, port = urlsplit(site.server.url).hostname, urlsplit(site.server.url).port
    conn = http.client.HTTPConnection(host or "127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", f"/api/v1/file/chunk?uploadId={upload['_id']}"
                                f"&offset={6 * MiB}")
        conn.putheader("Girder-Token", site.token("alice"))
        conn.putheader("Content-Length", str(6 * MiB))
        conn.endheaders()
        conn.send(data[6 * MiB:9 * MiB])
        moto.stop()  # S3 goes down while the chunk streams through to it
        proxy.cut()
        conn.send(data[9 * MiB:])
        reply = conn.getresponse()
        body = json.loads(reply.read())
    finally:
        conn.close()
    # The REST gateway answers 5xx generically and logs the cause under the uid.
    assert reply.status == 500 and body["uid"] and "Traceback" not in json.dumps(body)
    logged = [r for r in caplog.records if body["uid"] in r.getMessage()]
    assert logged and "S3 endpoint" in logged[0].getMessage()
    offset = site.get("file/offset", "alice", params={"uploadId": upload["_id"]})
    assert offset.json() == {"offset": 6 * MiB}  # nothing of the failed chunk counts
    moto.start()
    proxy.heal()
    done = site.post("file/chunk", "alice", params={"uploadId": upload["_id"],
                                                    "offset": 6 * MiB}, data=data[6 * MiB:])
    assert done.status_code == 200, done.text
    site.app.services.settings.set("joist.s3.redirect_downloads", False)
    assert site.get(f"file/{done.json()['_id']}/download", "alice").content == data
    assert site.check() == []
