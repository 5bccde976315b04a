"""Issue 14 part B: Girder 5's parameters on the upload, ``system/uploads``,
assetstore, metadata and deletion routes, each through ``requests`` against a
real server, and as ``/api/v1/describe`` shows them.

Untracked uploads (temporary data no upload record owns) are made with the
assetstore's own temp API (``begin_upload`` + ``write_chunk`` without a
record). A real killed WebDAV PUT leaves its record behind (written before
the first temp byte), so it shows as a tracked, abandoned upload: tested too.
With ``JOIST_TEST_ASSETSTORE=s3`` the same tests run on an S3 assetstore;
``test_untracked_s3_uploads`` always does.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
import requests
from bson import ObjectId

from joist.admin.bootstrap import build_app
from joist.core.acl import Principal
from joist.core.assetstores.base import AssetstoreAdapter
from tests.conftest import make_settings
from tests.faults.killable import Rest, cli_env, serve
from tests.gateways.http.restsite import PASSWORD, RestSite
from tests.s3env import shared_moto

MiB = 1 << 20


def _operation(site: RestSite, method: str, path: str) -> dict[str, Any]:
    doc = site.get("describe").json()
    return doc["paths"][path][method]  # type: ignore[no-any-return]


def _params(site: RestSite, method: str, path: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in _operation(site, method, path)["parameters"]}


def _begin(site: RestSite, name: str, size: int, folder: str = "public",
           login: str = "alice", body: bytes | None = None, **params: Any) -> dict[str, Any]:
    reply = site.post("file", login, data=body, params={
        "parentType": "folder", "name": name, "parentId": site.id(folder), "size": size,
        **params})
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def _leftover(adapter: AssetstoreAdapter, data: bytes, size: int) -> str:
    """Temporary bytes without an upload record, written through the
    assetstore's own temp API (as a killed upload leaves them)."""
    upload: dict[str, Any] = {"_id": ObjectId(), "size": size}
    upload["state"] = adapter.begin_upload(upload)
    adapter.write_chunk(upload, 0, io.BytesIO(data), len(data))
    return str(upload["_id"])


# ---------------------------------------------------------------- file/chunk

def test_chunk_offset_is_optional_and_extra_parameters_are_judged(site: RestSite) -> None:
    site.app.services.settings.set("core.upload_minimum_chunk_size", 1)
    upload = _begin(site, "no-offset.txt", 10)
    # No offset: Girder's default 0.
    first = site.post("file/chunk", "alice", params={"uploadId": upload["_id"]},
                      data=b"01234")
    assert first.status_code == 200, first.text
    assert first.json()["received"] == 5
    # Defaulting to 0 on an upload at 5 bytes is a mismatch, not a silent overwrite.
    again = site.post("file/chunk", "alice", params={"uploadId": upload["_id"]},
                      data=b"56789")
    assert again.status_code == 400, again.text
    extra = '{"use_S3_transfer_acceleration": false, "anything": [1, 2]}'
    done = site.post("file/chunk", "alice", data=b"56789", params={
        "uploadId": upload["_id"], "offset": 5, "uploadExtraParameters": extra})
    assert done.status_code == 200, done.text
    assert done.json()["_modelType"] == "file" and done.json()["size"] == 10
    assert site.get(f"file/{done.json()['_id']}/download", "alice").content == b"0123456789"
    bad = _begin(site, "bad-extra.txt", 4)
    broken = site.post("file/chunk", "alice", data=b"abcd", params={
        "uploadId": bad["_id"], "uploadExtraParameters": "{not json"})
    assert broken.status_code == 400
    assert "uploadExtraParameters" in broken.json()["message"]
    assert site.get("file/offset", "alice", params={"uploadId": bad["_id"]}).json() == \
        {"offset": 0}  # refused before any byte was taken
    chunk = _params(site, "post", "/file/chunk")
    assert chunk["offset"]["required"] is False and chunk["offset"]["default"] == 0
    assert chunk["offset"]["type"] == "integer"
    assert chunk["uploadExtraParameters"]["required"] is False
    assert chunk["uploadExtraParameters"]["type"] == "string"  # JSON text, as Girder says
    assert "use_S3_transfer_acceleration" in chunk["uploadExtraParameters"]["description"]
    assert "uploadExtraParameters" in _params(site, "post", "/file")


# ---------------------------------------------------------------- system/uploads

def _partial(site: RestSite, name: str, data: bytes, size: int,
             folder: str = "public") -> dict[str, Any]:
    upload = _begin(site, name, size, folder, body=data)  # the body is the first chunk
    assert upload["received"] == len(data), upload
    return upload


def test_system_uploads_filters_sort_and_paging(site: RestSite) -> None:
    site.app.services.settings.set("core.upload_minimum_chunk_size", 1)
    b = _partial(site, "b.bin", b"x" * 3, 30)
    a = _partial(site, "a.bin", b"x" * 2, 20)
    c = _partial(site, "c.bin", b"x" * 1, 10, folder="data")

    def ids(**params: Any) -> list[str]:
        reply = site.get("system/uploads", "admin",
                         params={"includeUntracked": "false", **params})
        assert reply.status_code == 200, reply.text
        return [u["_id"] for u in reply.json()]

    assert ids() == [b["_id"], a["_id"], c["_id"]]  # Girder's default: sort by updated
    assert ids(sort="name") == [a["_id"], b["_id"], c["_id"]]
    assert ids(sort="name", sortdir=-1) == [c["_id"], b["_id"], a["_id"]]
    assert ids(sort="size") == [c["_id"], a["_id"], b["_id"]]
    assert ids(sort="received", sortdir=-1) == [b["_id"], a["_id"], c["_id"]]
    assert ids(sort="name", limit=1, offset=1) == [b["_id"]]
    assert ids(parentId=site.id("data")) == [c["_id"]]
    assert ids(uploadId=a["_id"]) == [a["_id"]]
    assert ids(userId=site.id("alice"), sort="name", limit=2) == [a["_id"], b["_id"]]
    assert ids(userId=site.id("bobby")) == []
    store = a["assetstoreId"]
    assert ids(assetstoreId=store, sort="name") == [a["_id"], b["_id"], c["_id"]]
    assert ids(assetstoreId=str(ObjectId())) == []
    unknown = site.get("system/uploads", "admin", params={"sort": "state.tempPath"})
    assert unknown.status_code == 400 and "sort" in unknown.json()["message"]
    # minimumAge is in days of inactivity (record and temp bytes): make ``a``
    # look a year idle.
    old = site.app.store.uploads.find_one({"_id": ObjectId(a["_id"])})
    assert old is not None
    then = old["updated"].replace(year=old["updated"].year - 1)
    site.app.store.uploads.update_one({"_id": old["_id"]}, {"$set": {"updated": then}})
    temp = old["state"].get("tempPath")
    if temp:  # a filesystem assetstore: its temp file's time counts too
        root = site.app.assetstores.get(store)["root"]
        os.utime(os.path.join(root, temp), (then.timestamp(), then.timestamp()))
    assert ids(minimumAge=1) == [a["_id"]]
    assert ids(minimumAge=0.5, sort="name") == [a["_id"]]
    assert site.get("system/uploads", "admin", params={"minimumAge": "x"}).status_code == 400
    described = _params(site, "get", "/system/uploads")
    assert {"uploadId", "userId", "parentId", "assetstoreId", "minimumAge", "includeUntracked",
            "limit", "offset", "sort", "sortdir"} <= described.keys()
    assert described["sort"]["default"] == "updated"
    assert described["minimumAge"]["type"] == "number"
    assert described["includeUntracked"]["default"] is True
    # DELETE takes the same filters: the idle one only.
    removed = site.delete("system/uploads", "admin", params={"minimumAge": 1})
    assert [u["_id"] for u in removed.json()] == [a["_id"]]
    assert ids(sort="name") == [b["_id"], c["_id"]]
    removed = site.delete("system/uploads", "admin", params={"parentId": site.id("data")})
    assert [u["_id"] for u in removed.json()] == [c["_id"]]
    assert ids() == [b["_id"]]


def test_untracked_uploads_are_listed_and_discarded(site: RestSite) -> None:
    site.app.services.settings.set("core.upload_minimum_chunk_size", 1)
    tracked = _partial(site, "tracked.bin", b"abc", 9)
    doc, adapter = site.app.assetstores.current()
    stray = _leftover(adapter, b"7 bytes", 20)

    def listed(**params: Any) -> list[tuple[str, bool]]:
        reply = site.get("system/uploads", "admin", params=params)
        assert reply.status_code == 200, reply.text
        return [(u.get("_id") or u["uploadId"], bool(u.get("untracked")))
                for u in reply.json()]

    both = [(tracked["_id"], False), (stray, True)]
    assert listed() == both
    found = site.get("system/uploads", "admin").json()[1]
    assert found["assetstoreId"] == str(doc["_id"]) and found["size"] == 7
    assert listed(includeUntracked="false") == [(tracked["_id"], False)]
    assert listed(assetstoreId=str(doc["_id"])) == both
    assert listed(assetstoreId=str(ObjectId())) == []
    # Girder's paging: untracked data only fills room the page has left.
    assert listed(limit=1) == [(tracked["_id"], False)]
    assert listed(limit=2) == both
    assert listed(limit=1, offset=1) == [(stray, True)]
    assert listed(limit=1, offset=2) == []  # paging walks on through the untracked data
    assert listed(offset=1) == [(stray, True)]
    # A filter only records have (upload, user, parent) leaves untracked data out.
    assert listed(uploadId=tracked["_id"]) == [(tracked["_id"], False)]
    assert listed(parentId=site.id("public")) == [(tracked["_id"], False)]
    assert listed(minimumAge=1) == []  # both are fresh
    kept = site.delete("system/uploads", "admin",
                       params={"includeUntracked": "false", "uploadId": tracked["_id"]})
    assert [u["_id"] for u in kept.json()] == [tracked["_id"]]
    assert listed() == [(stray, True)]
    assert site.delete("system/uploads", "admin", params={"minimumAge": 1}).json() == []
    gone = site.delete("system/uploads", "admin")
    assert [(u["uploadId"], u["untracked"]) for u in gone.json()] == [(stray, True)]
    assert listed() == []
    assert adapter.untracked_uploads(set()) == []
    assert site.check() == []


def test_untracked_s3_uploads(site: RestSite) -> None:
    """Girder's S3 adapter lists unfinished multipart uploads; Joist's S3
    assetstore also keeps a journal (and a tail) per upload, listed too. A
    multipart upload outside the assetstore's key layout is never touched."""
    moto = shared_moto()
    bucket = moto.new_bucket("untracked")
    made = site.post("assetstore", "admin", params={
        "name": "s3-untracked", "type": 2, **{k: v for k, v in moto.fields(bucket).items()
                                               if k in ("bucket", "service", "accessKeyId",
                                                        "secret", "region")}})
    assert made.status_code == 200, made.text
    store = made.json()["_id"]
    adapter = site.app.assetstores.adapter(store)
    s3 = moto.client()
    foreign = s3.create_multipart_upload(Bucket=bucket, Key="someone/else.bin")["UploadId"]
    parted = _leftover(adapter, os.urandom(6 * MiB), 12 * MiB)  # a multipart upload
    tailed = _leftover(adapter, b"tail only", 100)  # bytes kept as the journal's tail
    reply = site.get("system/uploads", "admin", params={"assetstoreId": store})
    assert reply.status_code == 200, reply.text
    found = {u["uploadId"]: u for u in reply.json()}
    assert found.keys() == {parted, tailed}
    assert found[parted]["untracked"] is True and found[parted]["size"] == 6 * MiB
    assert found[parted]["s3"]["uploadId"] and f"/{parted}." in found[parted]["s3"]["key"]
    assert found[tailed]["size"] == len(b"tail only") and "s3" not in found[tailed]
    gone = site.delete("system/uploads", "admin", params={"assetstoreId": store})
    assert {u["uploadId"] for u in gone.json()} == {parted, tailed}
    left = s3.list_multipart_uploads(Bucket=bucket).get("Uploads") or []
    assert [(u["Key"], u["UploadId"]) for u in left] == [("someone/else.bin", foreign)]
    assert site.get("system/uploads", "admin", params={"assetstoreId": store}).json() == []
    assert site.check() == []
    s3.abort_multipart_upload(Bucket=bucket, Key="someone/else.bin", UploadId=foreign)


def test_a_killed_webdav_put_is_listed_and_discarded(tmp_path: Path) -> None:
    """A real WebDAV PUT whose server is SIGKILLed mid-write (``joist serve``
    with a fault point armed): after the restart ``system/uploads`` shows the
    upload and its temporary bytes, abandoned (its process is gone), and
    ``DELETE system/uploads`` removes both."""
    data = tmp_path / "data"
    with build_app(make_settings(data), env={}) as app:
        app.services.users.create(Principal.anonymous(), login="alice",
                                  email="alice@example.org", first_name="A", last_name="L",
                                  password=PASSWORD, admin=True, check_policy=False)
    env = cli_env(data, tmp_path / "home")
    point = "upload.chunk.mid_write"
    with serve(env, (point,), graceful=False) as server:
        with pytest.raises(requests.RequestException):
            requests.put(f"{server.dav}/user/alice/Public/killed.bin", data=os.urandom(3 * MiB),
                         auth=("alice", PASSWORD), timeout=60)
        server.wait_killed_at(point)
    temp_dir = data / "assetstore" / "temp"
    assert [p.name.endswith(".part") for p in temp_dir.iterdir()] == [True]
    with serve(env, graceful=False) as server:
        rest = Rest(server, auth=("alice", PASSWORD))
        try:
            listed = rest.ok("GET", "system/uploads")
            assert [(u["name"], u["tempBytes"], u["abandoned"]) for u in listed] == \
                [("killed.bin", MiB, True)]
            removed = rest.ok("DELETE", "system/uploads")
            assert [u["_id"] for u in removed] == [listed[0]["_id"]]
            assert rest.ok("GET", "system/uploads") == []
            assert list(temp_dir.iterdir()) == []
        finally:
            rest.close()


# ---------------------------------------------------------------- assetstores

def test_assetstore_edit_takes_girders_parameters(site: RestSite, tmp_path: Any) -> None:
    stores = site.get("assetstore", "admin").json()
    current = next(s for s in stores if s["current"])
    made = site.post("assetstore", "admin", params={
        "name": "spare", "type": 0, "root": str(tmp_path / "spare"), "perms": "640"})
    assert made.status_code == 200, made.text
    spare = made.json()
    route = f"assetstore/{spare['_id']}"
    for missing in ({"current": "false"}, {"name": "spare"}):
        reply = site.put(route, "admin", params=missing)
        assert reply.status_code == 400 and "required" in reply.json()["message"]
    moved = site.put(route, "admin", params={
        "name": "spare 2", "current": "false", "root": str(tmp_path / "elsewhere"),
        "perms": "600", "bucket": "ignored-for-filesystem", "allowS3AcceleratedTransfer": "true"})
    assert moved.status_code == 200, moved.text
    doc = moved.json()
    assert (doc["name"], doc["current"], doc["root"], doc["perms"]) == \
        ("spare 2", False, str(tmp_path / "elsewhere"), 0o600)
    assert "bucket" not in doc and "allowS3AcceleratedTransfer" not in doc
    assert (tmp_path / "elsewhere").is_dir()
    for bad in ({"perms": "999"}, {"perms": "400"}):
        reply = site.put(route, "admin", params={"name": "spare 2", "current": "false", **bad})
        assert reply.status_code == 400 and "perm" in reply.json()["message"].lower()
    pinned = site.put(route, "admin", params={"name": "spare 2", "current": "true"})
    assert pinned.json()["current"] is True
    assert pinned.json()["root"] == str(tmp_path / "elsewhere")
    site.upload("alice", site.id("public"), "pinned.txt", b"in spare 2")
    holding = site.put(route, "admin", params={
        "name": "spare 2", "current": "true", "root": str(tmp_path / "not-there")})
    assert holding.status_code == 400 and "holds files" in holding.json()["message"]
    assert not (tmp_path / "not-there").exists()
    unset = site.put(route, "admin", params={"name": "spare 2", "current": "false"})
    assert unset.status_code == 400 and "current" in unset.json()["message"]
    back = site.put(f"assetstore/{current['_id']}", "admin",
                    params={"name": current["name"], "current": "true"})
    assert back.status_code == 200 and back.json()["current"] is True
    assert site.get(route, "admin").json()["current"] is False
    described = _params(site, "put", "/assetstore/{id}")
    assert described["name"]["required"] is True and described["current"]["required"] is True
    assert {"root", "perms", "bucket", "prefix", "accessKeyId", "secret", "service",
            "readOnly", "region", "inferCredentials", "serverSideEncryption",
            "allowS3AcceleratedTransfer"} <= described.keys()
    assert not any(described[k]["required"] for k in ("root", "perms", "bucket"))
    assert "allowS3AcceleratedTransfer" in _params(site, "post", "/assetstore")
    imports = _params(site, "post", "/assetstore/{id}/import")
    assert imports["importPath"]["required"] is False
    assert imports["destinationId"]["required"] is True


def test_s3_acceleration_flag_and_import_without_path(site: RestSite) -> None:
    moto = shared_moto()
    bucket = moto.new_bucket("accel")
    fields = {k: v for k, v in moto.fields(bucket).items()
              if k in ("bucket", "service", "accessKeyId", "secret", "region")}
    made = site.post("assetstore", "admin", params={
        "name": "fast", "type": 2, "current": "true", "allowS3AcceleratedTransfer": "false",
        **fields})
    assert made.status_code == 200, made.text
    store = made.json()
    assert store["allowS3AcceleratedTransfer"] is False
    accel = '{"use_S3_transfer_acceleration": true}'
    refused = site.post("file", "alice", params={
        "parentType": "folder", "parentId": site.id("public"), "name": "fast.bin",
        "size": 4, "uploadExtraParameters": accel}, data=b"fast")
    assert refused.status_code == 400
    assert refused.json()["message"] == "Accelerated transfer is not allowed on this assetstore."
    allowed = site.put(f"assetstore/{store['_id']}", "admin", params={
        "name": "fast", "current": "true", "allowS3AcceleratedTransfer": "true"})
    assert allowed.status_code == 200 and allowed.json()["allowS3AcceleratedTransfer"] is True
    upload = _begin(site, "fast.bin", 4, uploadExtraParameters=accel)
    done = site.post("file/chunk", "alice", data=b"fast", params={
        "uploadId": upload["_id"], "uploadExtraParameters": accel})
    assert done.status_code == 200 and done.json()["size"] == 4, done.text
    # importPath left out: the whole bucket (but the assetstore's own blobs).
    moto.client().put_object(Bucket=bucket, Key="top.txt", Body=b"top")
    moto.client().put_object(Bucket=bucket, Key="sub/inner.txt", Body=b"inner")
    into = site.post("folder", "admin", params={"parentType": "collection", "name": "all",
                                                "parentId": site.id("shared")}).json()
    imported = site.post(f"assetstore/{store['_id']}/import", "admin", params={
        "destinationType": "folder", "destinationId": into["_id"]})
    assert imported.status_code == 200, imported.text
    assert imported.json()["files"] == 2
    names = sorted(i["name"] for i in site.get("item", "admin",
                                               params={"folderId": into["_id"]}).json())
    assert names == ["top.txt"]
    assert site.check() == []


# ---------------------------------------------------------------- metadata bodies

@pytest.mark.parametrize("model", ["item", "folder", "collection"])
def test_metadata_body_is_required_and_described(site: RestSite, model: str) -> None:
    doc_id = {"item": lambda: site.find_file("data", "a.txt")["itemId"],
              "folder": lambda: site.id("data"), "collection": lambda: site.id("shared")}[model]()
    login = "admin" if model == "collection" else "alice"
    route = f"{model}/{doc_id}/metadata"
    missing = site.put(route, login)
    assert missing.status_code == 400
    assert missing.json()["message"] == "JSON parameter metadata must be passed in request body."
    wrong = site.put(route, login, data="[1]", headers={"Content-Type": "application/json"})
    assert wrong.status_code == 400 and "metadata" in wrong.json()["message"]
    done = site.put(route, login, json={"colour": "red", "size": 3})
    assert done.status_code == 200 and done.json()["meta"] == {"colour": "red", "size": 3}
    assert site.delete(route, login).json()["message"] == \
        "JSON parameter fields must be passed in request body."
    bad = site.delete(route, login, json={"colour": 1})
    assert bad.status_code == 400 and "fields" in bad.json()["message"]
    kept = site.delete(route, login, json=["colour"])
    assert kept.status_code == 200 and kept.json()["meta"] == {"size": 3}
    put = _params(site, "put", f"/{model}/{{id}}/metadata")
    assert put["metadata"] == {
        "name": "metadata", "in": "body", "required": True, "schema": {"type": "object"},
        "description": "A JSON object containing the metadata keys to add"}
    assert put["allowNull"]["type"] == "boolean" and put["allowNull"]["default"] is False
    assert "body" not in put  # no anonymous raw body beside the declared one
    fields = _params(site, "delete", f"/{model}/{{id}}/metadata")["fields"]
    assert fields["in"] == "body" and fields["required"] is True
    assert fields["schema"] == {"type": "array", "items": {"type": "string"}}


# ---------------------------------------------------------------- progress

def test_deletions_accept_progress(site: RestSite) -> None:
    for method, path in (("delete", "/collection/{id}"), ("delete", "/folder/{id}"),
                         ("delete", "/folder/{id}/contents"), ("put", "/file/{id}/move"),
                         ("post", "/folder/{id}/copy"), ("delete", "/resource"),
                         ("put", "/resource/move"), ("post", "/resource/copy"),
                         ("put", "/folder/{id}/access"), ("put", "/collection/{id}/access"),
                         ("post", "/assetstore/{id}/import")):
        progress = _params(site, method, path).get("progress")
        assert progress is not None, (method, path)
        assert progress["type"] == "boolean" and progress["default"] is False
        assert progress["required"] is False
    deep = site.app.services.folders.list(site.world.principal("alice"), "folder",
                                          ObjectId(site.id("data")), name="deep")[0][0]
    cleared = site.delete(f"folder/{deep['_id']}/contents", "alice",
                          params={"progress": "true"})
    assert cleared.status_code == 200, cleared.text
    assert site.get("folder", "alice", params={"parentType": "folder",
                                               "parentId": str(deep["_id"])}).json() == []
    gone = site.delete(f"folder/{deep['_id']}", "alice", params={"progress": "true"})
    assert gone.status_code == 200, gone.text
    assert site.get(f"folder/{deep['_id']}", "alice").status_code == 400
    dropped = site.delete(f"collection/{site.id('secret')}", "admin",
                          params={"progress": "false"})
    assert dropped.status_code == 200, dropped.text
    assert site.get(f"collection/{site.id('secret')}", "admin").status_code == 400
    assert site.check() == []
