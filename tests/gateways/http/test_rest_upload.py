"""Contract section 2.6: the upload protocol (init, chunks, resume, cancel,
replace, one-shot and zero-byte bodies, link files)."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateways.http.restsite import RestSite

INTERNAL = {"state", "streaming", "onCollision", "tempFile", "tempPath", "sha512state",
            "generation"}


@pytest.fixture
def small_chunks(site: RestSite) -> RestSite:
    """Non-final chunks of 1 KiB allowed, so protocol tests stay small."""
    site.app.services.settings.set("core.upload_minimum_chunk_size", 1024)
    return site


def _init(site: RestSite, size: int, name: str = "up.bin", login: str = "alice",
          parent: str = "public", parent_type: str = "folder", data: object = None,
          **params: object):  # type: ignore[no-untyped-def]
    return site.post("file", login, data=data, params={
        "parentType": parent_type, "parentId": site.id(parent), "name": name, "size": size,
        **params})


def _chunk(site: RestSite, upload_id: str, offset: int, data: bytes,
           login: str = "alice"):  # type: ignore[no-untyped-def]
    return site.post("file/chunk", login, params={"uploadId": upload_id, "offset": offset},
                     data=data)


def _download(site: RestSite, file_id: str, login: str = "alice") -> bytes:
    reply = site.get(f"file/{file_id}/download", login)
    assert reply.status_code == 200, reply.text
    return reply.content


def test_chunked_upload_into_a_folder(small_chunks: RestSite) -> None:
    site = small_chunks
    data = os.urandom(2500)
    init = _init(site, len(data), mimeType="application/x-test", reference="ref")
    assert init.status_code == 200
    upload = init.json()
    assert upload["size"] == 2500 and upload["received"] == 0
    assert "_modelType" not in upload and not INTERNAL & set(upload), set(upload)
    step = _chunk(site, upload["_id"], 0, data[:1024]).json()
    assert step["received"] == 1024 and step["_id"] == upload["_id"]
    assert site.get("file/offset", "alice", params={"uploadId": upload["_id"]}).json() == \
        {"offset": 1024}
    step = _chunk(site, upload["_id"], 1024, data[1024:2048]).json()
    done = _chunk(site, upload["_id"], 2048, data[2048:]).json()
    assert done["_modelType"] == "file" and done["size"] == 2500
    assert done["name"] == "up.bin" and done["mimeType"] == "application/x-test"
    assert _download(site, done["_id"]) == data
    item = site.get(f"item/{done['itemId']}", "alice").json()
    assert item["name"] == "up.bin" and item["size"] == 2500
    assert site.get("system/uploads", "admin").json() == []
    assert site.check() == []


def test_wrong_offset_is_refused_and_changes_nothing(small_chunks: RestSite) -> None:
    site = small_chunks
    data = os.urandom(3000)
    upload = _init(site, len(data)).json()
    _chunk(site, upload["_id"], 0, data[:1500])
    for offset in (0, 1000, 2000):
        reply = _chunk(site, upload["_id"], offset, data[offset:offset + 1500])
        assert reply.status_code == 400
        assert reply.json()["message"] == \
            f"Server has received 1500 bytes, but client sent offset {offset}."
    assert site.get("file/offset", "alice", params={"uploadId": upload["_id"]}).json() == \
        {"offset": 1500}
    done = _chunk(site, upload["_id"], 1500, data[1500:]).json()
    assert _download(site, done["_id"]) == data
    assert site.check() == []


def test_chunk_size_rules(site: RestSite) -> None:
    upload = _init(site, 10).json()
    small = _chunk(site, upload["_id"], 0, b"12345")  # default minimum: 5 MiB
    assert small.status_code == 400
    assert small.json()["message"] == "Chunk is smaller than the minimum size."
    too_many = _chunk(site, upload["_id"], 0, b"x" * 11)
    assert too_many.status_code == 400 and too_many.json()["message"] == \
        "Received too many bytes."
    assert site.get("file/offset", "alice", params={"uploadId": upload["_id"]}).json() == \
        {"offset": 0}
    multipart = site.post("file/chunk", "alice", params={"uploadId": upload["_id"],
                                                         "offset": 0},
                          files={"chunk": ("c", b"0123456789")})
    assert multipart.status_code == 400
    assert multipart.json()["message"].startswith("Multipart encoding is no longer supported")
    assert _chunk(site, upload["_id"], 0, b"0123456789").json()["size"] == 10


def test_only_the_initiator_may_send_chunks(small_chunks: RestSite) -> None:
    site = small_chunks
    upload = _init(site, 4).json()
    assert _chunk(site, upload["_id"], 0, b"abcd", login="bobby").status_code == 403
    anonymous = site.post("file/chunk", params={"uploadId": upload["_id"], "offset": 0},
                          data=b"abcd")
    assert anonymous.status_code == 401
    assert site.get("file/offset", "bobby", params={"uploadId": upload["_id"]}) \
        .status_code == 403
    assert _chunk(site, upload["_id"], 0, b"abcd").status_code == 200


def test_init_rules(site: RestSite) -> None:
    assert site.post("file", params={"parentType": "folder", "parentId": site.id("public"),
                                     "name": "a", "size": 1}).status_code == 401
    assert _init(site, 1, login="bobby").status_code == 403
    assert _init(site, -1).status_code == 400
    assert _init(site, 1, parent_type="collection", parent="shared").status_code == 400
    assert site.post("file", "alice", params={"parentType": "folder",
                                              "parentId": site.id("public"),
                                              "name": "a"}).status_code == 400
    chosen = _init(site, 1, assetstoreId=str(site.app.services.assetstores.current()[0]["_id"]))
    assert chosen.status_code == 403
    assert site.get("system/uploads", "admin").json() == []


def test_zero_byte_file_is_finalized_at_once(site: RestSite) -> None:
    reply = _init(site, 0, name="empty.txt")
    doc = reply.json()
    assert doc["_modelType"] == "file" and doc["size"] == 0
    assert _download(site, doc["_id"]) == b""
    # girder-client's one-shot path sends an empty chunked body for empty files

    def nothing() -> Iterator[bytes]:
        yield from ()
    chunked = _init(site, 0, name="empty2.txt", data=nothing())
    assert chunked.status_code == 200 and chunked.json()["size"] == 0


def test_one_shot_body_and_short_body(site: RestSite) -> None:
    data = os.urandom(70_000)
    doc = _init(site, len(data), name="once.bin", data=data).json()
    assert doc["_modelType"] == "file"
    assert _download(site, doc["_id"]) == data
    # a body shorter than size is the first chunk; the upload waits for the rest
    site.app.services.settings.set("core.upload_minimum_chunk_size", 1000)
    partial = _init(site, 3000, name="twice.bin", data=data[:1000]).json()
    assert partial["received"] == 1000 and "_modelType" not in partial
    done = _chunk(site, partial["_id"], 1000, data[1000:3000]).json()
    assert _download(site, done["_id"]) == data[:3000]
    # a form-encoded body is parameters, not bytes
    form = site.post("file", "alice", data={"parentType": "folder", "name": "form.bin",
                                            "parentId": site.id("public"), "size": 5})
    assert form.status_code == 200 and form.json()["received"] == 0


def test_upload_into_an_item_and_name_collisions(site: RestSite) -> None:
    multi = site.id("multi")
    doc = _init(site, 3, name="z.bin", parent="multi", parent_type="item", data=b"zzz").json()
    assert doc["itemId"] == multi
    names = [f["name"] for f in site.get(f"item/{multi}/files", "alice").json()]
    assert names == ["x.bin", "y.bin", "z.bin"]
    again = _init(site, 2, name="readme.txt", data=b"hi").json()
    item = site.get(f"item/{again['itemId']}", "alice").json()
    assert item["name"] == "readme.txt (1)"


def test_cancel_discards_the_partial_upload(small_chunks: RestSite) -> None:
    site = small_chunks
    upload = _init(site, 4096).json()
    _chunk(site, upload["_id"], 0, b"a" * 1024)
    assert site.delete(f"file/upload/{upload['_id']}", "bobby").status_code == 403
    reply = site.delete(f"file/upload/{upload['_id']}", "alice")
    assert reply.json() == {"message": "Upload canceled."}
    assert _chunk(site, upload["_id"], 1024, b"b" * 1024).status_code == 400
    assert site.get("system/uploads", "admin").json() == []
    other = _init(site, 4096).json()
    assert site.delete(f"file/upload/{other['_id']}", "admin").status_code == 200
    assert site.check() == []
    assert site.get("item", "alice", params={"folderId": site.id("public"),
                                             "name": "up.bin"}).json() == []


def test_completion_needs_every_byte(small_chunks: RestSite) -> None:
    site = small_chunks
    upload = _init(site, 2048).json()
    _chunk(site, upload["_id"], 0, b"a" * 1024)
    early = site.post("file/completion", "alice", params={"uploadId": upload["_id"]})
    assert early.status_code == 400
    assert site.post("file/completion", "bobby",
                     params={"uploadId": upload["_id"]}).status_code == 403


def test_replace_contents(small_chunks: RestSite) -> None:
    site = small_chunks
    file = site.find_file("data", "a.txt")
    before = site.get(f"item/{file['itemId']}", "alice").json()
    data = os.urandom(2000)
    assert site.put(f"file/{file['_id']}/contents", "bobby",
                    params={"size": 2000}).status_code == 403
    upload = site.put(f"file/{file['_id']}/contents", "alice", params={"size": 2000}).json()
    assert upload["fileId"] == file["_id"] and "_modelType" not in upload
    _chunk(site, upload["_id"], 0, data[:1024])
    done = _chunk(site, upload["_id"], 1024, data[1024:]).json()
    assert done["_id"] == file["_id"] and done["size"] == 2000
    assert done["name"] == "a.txt" and done["mimeType"] == file["mimeType"]
    assert _download(site, file["_id"]) == data
    item = site.get(f"item/{file['itemId']}", "alice").json()
    assert item["size"] == 2000 and item["updated"] > before["updated"]
    empty = site.put(f"file/{file['_id']}/contents", "alice", params={"size": 0}).json()
    assert empty["_modelType"] == "file" and empty["size"] == 0
    assert _download(site, file["_id"]) == b""
    assert site.check() == []


def test_link_files(site: RestSite) -> None:
    reply = site.post("file", "alice", params={
        "parentType": "folder", "parentId": site.id("public"), "name": "site",
        "linkUrl": "https://example.org/x"})
    doc = reply.json()
    assert doc["linkUrl"] == "https://example.org/x" and doc["_modelType"] == "file"
    redirect = site.get(f"file/{doc['_id']}/download", "alice", allow_redirects=False)
    assert redirect.status_code == 303
    assert redirect.headers["Location"] == "https://example.org/x"
    bad = site.post("file", "alice", params={
        "parentType": "folder", "parentId": site.id("public"), "name": "bad",
        "linkUrl": "file:///etc/passwd"})
    assert bad.status_code == 400


def test_file_record_edits(site: RestSite) -> None:
    file = site.find_file("data", "a.txt")
    renamed = site.put(f"file/{file['_id']}", "alice", params={
        "name": "b.tar.GZ", "mimeType": "application/gzip"}).json()
    assert renamed["name"] == "b.tar.GZ" and renamed["exts"] == ["tar", "gz"]
    assert "updated" in renamed
    copy = site.post(f"file/{file['_id']}/copy", "alice",
                     params={"itemId": site.id("multi")}).json()
    assert copy["itemId"] == site.id("multi") and copy["_id"] != file["_id"]
    assert _download(site, copy["_id"]) == _download(site, file["_id"])
    assert site.delete(f"file/{file['_id']}", "alice").text == "null"
    assert _download(site, copy["_id"]).startswith(b"alpha")
    assert site.check() == []


def test_upload_bodies_are_streamed_not_held_in_memory(site: RestSite,
                                                       tmp_path: Path) -> None:
    size = 48 << 20
    source = tmp_path / "big.bin"
    with source.open("wb") as out:
        block = hashlib.sha512(b"seed").digest() * 1024
        for _ in range(size // len(block)):
            out.write(block)
    tracemalloc.start()
    try:
        with source.open("rb") as body:  # requests streams a real file in blocks
            reply = site.post("file", "alice", data=body, params={
                "parentType": "folder", "parentId": site.id("public"), "name": "big.bin",
                "size": size})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.status_code == 200, reply.text
    assert reply.json()["size"] == size
    # A few 1 MiB blocks in flight (client, server, the hashing pipeline), never
    # the whole body.
    assert peak < 16 << 20, peak
    got = hashlib.sha512(site.get(f"file/{reply.json()['_id']}/download", "alice").content)
    assert got.hexdigest() == hashlib.sha512(source.read_bytes()).hexdigest()
