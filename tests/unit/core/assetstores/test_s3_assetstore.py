"""What the S3 assetstore does beyond the shared adapter contract: parts that
follow the upload's chunks, small chunks buffered into parts, single PUTs,
resumes in another process, presigned URLs, imports, ``check``/``repair``.

Every test talks to a real S3 endpoint over HTTP: moto's server mode on
127.0.0.1 (``tests/s3env.py``), since no S3 is reachable here.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from bson import ObjectId

from joist.core.assetstores.base import ProblemKind
from joist.core.assetstores.s3 import S3Assetstore
from joist.core.assetstores.s3_keys import UploadKeys
from joist.core.db.sqlite import SQLiteEngine
from joist.core.errors import ConflictError, NotFoundError, StorageError, ValidationError
from tests.s3env import BucketStore as Store
from tests.s3env import MotoProcess, shared_moto

MiB = 1 << 20


def data_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    made = Store(tmp_path, shared_moto())
    try:
        yield made
    finally:
        made.close()


def new_upload(adapter: S3Assetstore, size: int) -> dict[str, Any]:
    upload = {"_id": str(ObjectId()), "size": size, "received": 0, "state": {}}
    upload["state"] = adapter.begin_upload(upload)
    return upload


def send(adapter: S3Assetstore, upload: dict[str, Any], data: bytes, chunk: int,
         start: int = 0) -> None:
    for offset in range(start, len(data), chunk):
        piece = data[offset:offset + chunk]
        upload["received"], upload["state"] = adapter.write_chunk(
            upload, offset, io.BytesIO(piece), len(piece))


def read_all(adapter: S3Assetstore, blob: dict[str, Any]) -> bytes:
    with adapter.open_read(blob) as reader:
        return reader.read_at(0, reader.size)


def test_parts_follow_the_chunks_and_the_state_carries_them(store: Store) -> None:
    adapter = store.open()
    data = data_of(3 * 6 * MiB + 12345)
    upload = new_upload(adapter, len(data))
    send(adapter, upload, data[:18 * MiB], 6 * MiB)
    state = upload["state"]
    assert state["multipartId"] and [p["size"] for p in state["parts"]] == [6 * MiB] * 3
    listed = store.s3().list_parts(Bucket=store.bucket, Key=state["key"],
                                   UploadId=state["multipartId"])["Parts"]
    assert [p["ETag"] for p in listed] == [p["etag"] for p in state["parts"]]
    send(adapter, upload, data, 6 * MiB, start=18 * MiB)  # a small last chunk
    blob = adapter.finalize_upload(upload)
    assert blob["sha512"] == hashlib.sha512(data).hexdigest()
    head = store.s3().head_object(Bucket=store.bucket, Key=blob["s3Key"])
    assert head["ETag"].strip('"').endswith("-4")  # four parts, one per chunk
    assert read_all(adapter, blob) == data
    assert store.multiparts() == []
    assert adapter.check(set(), {blob["sha512"]: 1}) == []


def test_a_big_chunk_is_sent_as_several_whole_parts(store: Store) -> None:
    adapter = store.open()
    data = data_of(21 * MiB + 5, seed=6)
    upload = new_upload(adapter, len(data))
    send(adapter, upload, data[:20 * MiB], 20 * MiB)  # 3 parts, sent concurrently
    sizes = [p["size"] for p in upload["state"]["parts"]]
    assert len(sizes) == 3 and sum(sizes) == 20 * MiB and min(sizes) >= 5 * MiB
    send(adapter, upload, data, MiB + 5, start=20 * MiB)
    blob = adapter.finalize_upload(upload)
    assert read_all(adapter, blob) == data
    assert blob["sha512"] == hashlib.sha512(data).hexdigest()


@pytest.mark.parametrize("total", [1, 5 * MiB - 1, 5 * MiB, 8 * MiB + 1, 9 * MiB, 10 * MiB,
                                   17 * MiB, 64 * MiB, 1 << 34])
def test_pieces_are_whole_parts_s3_accepts(total: int) -> None:
    from joist.core.assetstores.s3_client import MAX_PART, MIN_PART, even_pieces
    from joist.core.assetstores.s3_parts import part_size_for
    pieces = even_pieces(total, part_size_for(total, 8 * MiB))
    assert sum(pieces) == total and max(pieces) <= MAX_PART
    assert total < MIN_PART or min(pieces) >= MIN_PART
    assert len(pieces) <= 9000


def test_small_chunks_are_buffered_into_five_mib_parts(store: Store) -> None:
    adapter = store.open()
    data = data_of(12 * MiB, seed=1)
    upload = new_upload(adapter, len(data))
    send(adapter, upload, data[:11 * MiB], MiB)
    state = upload["state"]
    assert [p["size"] for p in state["parts"]] == [5 * MiB, 5 * MiB]
    assert state["tail"] == MiB and upload["received"] == 11 * MiB
    assert adapter.upload_offset(upload) == 11 * MiB
    send(adapter, upload, data, MiB, start=11 * MiB)
    assert [p["size"] for p in upload["state"]["parts"]] == [5 * MiB, 5 * MiB, 2 * MiB]
    blob = adapter.finalize_upload(upload)
    assert read_all(adapter, blob) == data
    assert adapter.check(set(), {blob["sha512"]: 1}) == []


def test_a_streaming_upload_ends_its_tail_as_the_last_part(store: Store) -> None:
    adapter = store.open()
    data = data_of(7 * MiB + 3, seed=2)
    upload = {"_id": str(ObjectId()), "size": 1 << 62, "received": 0, "state": {},
              "streaming": True}  # appends of unknown total (WebDAV, FUSE)
    upload["state"] = adapter.begin_upload(upload)
    for offset in range(0, len(data), 3 * MiB):  # each append could be the last
        upload["received"], upload["state"] = adapter.write_chunk(
            upload, offset, io.BytesIO(data[offset:offset + 3 * MiB]))
    upload["size"] = upload["received"]
    assert [p["size"] for p in upload["state"]["parts"]] == [6 * MiB]
    blob = adapter.finalize_upload(upload)
    assert read_all(adapter, blob) == data


def test_an_upload_in_one_chunk_is_a_single_put(store: Store) -> None:
    adapter = store.open()
    data = data_of(3 * MiB, seed=3)
    upload = new_upload(adapter, len(data))
    send(adapter, upload, data, len(data))
    assert upload["state"]["multipartId"] is None and store.multiparts() == []
    blob = adapter.finalize_upload(upload)
    assert read_all(adapter, blob) == data


def test_another_process_resumes_and_rehashes(store: Store) -> None:
    first, second = store.open(), store.open()
    data = data_of(13 * MiB, seed=4)
    upload = new_upload(first, len(data))
    send(first, upload, data[:6 * MiB], 6 * MiB)
    stale = {**upload, "received": 0, "state": {}}  # its record update was lost
    assert second.upload_offset(stale) == 6 * MiB
    with pytest.raises(ConflictError):
        second.write_chunk(stale, 0, io.BytesIO(data[:6 * MiB]), 6 * MiB)
    send(second, stale, data, 6 * MiB, start=6 * MiB)
    blob = second.finalize_upload(stale)  # it saw only part of the bytes: re-reads
    assert blob["sha512"] == hashlib.sha512(data).hexdigest()
    assert read_all(first, blob) == data


def test_cancel_aborts_the_multipart_upload(store: Store) -> None:
    adapter = store.open()
    upload = new_upload(adapter, 20 * MiB)
    send(adapter, upload, data_of(12 * MiB), 6 * MiB)
    assert len(store.multiparts()) == 1
    adapter.abort_upload(upload)
    assert store.multiparts() == [] and store.keys() == set()
    with pytest.raises(NotFoundError):
        adapter.upload_offset(upload)
    adapter.abort_upload(upload)  # idempotent
    assert adapter.check(set(), {}) == []


def test_copies_share_one_object_until_the_last_goes(store: Store) -> None:
    adapter = store.open()
    data = data_of(MiB, seed=5)
    first = new_upload(adapter, len(data))
    send(adapter, first, data, len(data))
    blob = adapter.finalize_upload(first)
    again = new_upload(store.open(), len(data))  # the same content, elsewhere
    send(adapter, again, data, len(data))
    assert adapter.finalize_upload(again) == blob  # deduplicated
    adapter.add_reference(blob)  # a copy
    assert len(store.keys()) == 1
    for _ in range(2):
        adapter.delete(blob)
        assert read_all(adapter, blob) == data
    adapter.delete(blob)
    assert store.keys() == set()
    with pytest.raises(StorageError):
        adapter.add_reference(blob)
    assert adapter.check(set(), {}) == []


def test_presigned_download_url(store: Store) -> None:
    adapter = store.open()
    data = b"signed bytes\n" * 100
    upload = new_upload(adapter, len(data))
    send(adapter, upload, data, len(data))
    blob = {**adapter.finalize_upload(upload), "mimeType": "text/plain"}
    url = adapter.download_url(blob, "notes (1).txt", "inline")
    assert url is not None and url.startswith(store.moto.url)
    reply = requests.get(url, timeout=10)
    assert reply.status_code == 200 and reply.content == data
    assert reply.headers["Content-Disposition"] == 'inline; filename="notes (1).txt"'
    assert reply.headers["Content-Type"] == "text/plain"
    ranged = requests.get(url, headers={"Range": "bytes=4-9"}, timeout=10)
    assert ranged.status_code == 206 and ranged.content == data[4:10]
    with pytest.raises(ValidationError):
        adapter.download_url(blob, "x", "evil")


def test_import_listing_leaves_out_the_managed_layout(store: Store) -> None:
    adapter = store.open()
    upload = new_upload(adapter, 5)
    send(adapter, upload, b"blob!", 5)
    adapter.finalize_upload(upload)
    s3 = store.s3()
    for key in ("data/a.txt", "data/sub/b.bin", "top.txt"):
        s3.put_object(Bucket=store.bucket, Key=key, Body=key.encode())
    root = {(e.kind, e.name) for e in adapter.list_import("")}
    assert root == {("dir", "data"), ("file", "top.txt")}  # no fan-out directories
    data = sorted((e.kind, e.name, e.path, e.size) for e in adapter.list_import("/data/"))
    assert data == [("dir", "sub", "data/sub/", 0), ("file", "a.txt", "data/a.txt", 10)]
    entry = next(e for e in adapter.list_import("data") if e.kind == "file")
    blob = {**adapter.imported_blob(entry), "size": entry.size}
    assert blob["imported"] is True and read_all(adapter, blob) == b"data/a.txt"


def test_check_finds_and_repair_clears_debris_but_not_foreign_keys(store: Store) -> None:
    adapter = store.open()
    keys = UploadKeys("")
    s3 = store.s3()
    s3.put_object(Bucket=store.bucket, Key="imported/keep.txt", Body=b"not ours")
    dead = new_upload(adapter, 20 * MiB)  # its record is gone: debris
    send(adapter, dead, data_of(6 * MiB), 6 * MiB)
    orphan = keys.blob(str(ObjectId()), "0" * 32)  # bytes nothing counts
    s3.put_object(Bucket=store.bucket, Key=orphan, Body=b"orphan")
    kept = new_upload(adapter, 3)
    send(adapter, kept, b"abc", 3)
    blob = adapter.finalize_upload(kept)
    problems = adapter.check(set(), {blob["sha512"]: 2})
    found = {(p.kind, p.ref) for p in problems}
    assert found == {(ProblemKind.STALE_TEMP, dead["_id"]), (ProblemKind.ORPHAN_BLOB, orphan),
                     (ProblemKind.REFCOUNT_MISMATCH, blob["sha512"])}
    assert adapter.repair(problems, live_references={blob["sha512"]: 2}) == []
    assert adapter.check(set(), {blob["sha512"]: 2}) == []
    assert store.keys() == {"imported/keep.txt", blob["s3Key"]}
    assert store.multiparts() == []
    adapter.delete(blob)
    adapter.delete(blob)
    assert store.keys() == {"imported/keep.txt"}


def test_deep_check_rehashes_objects(store: Store) -> None:
    """``check(deep=True)`` reads every object in blocks (``iter_range``) and
    finds content that no longer matches its name."""
    adapter = store.open()
    data = data_of(9 * MiB + 7, seed=3)  # more than one 8 MiB block
    upload = new_upload(adapter, len(data))
    send(adapter, upload, data, 6 * MiB)
    blob = adapter.finalize_upload(upload)
    live = {blob["sha512"]: 1}
    assert adapter.check(set(), live, deep=True) == []
    damaged = data[:-1] + bytes([data[-1] ^ 1])  # same size, one bit off
    store.s3().put_object(Bucket=store.bucket, Key=blob["s3Key"], Body=damaged)
    assert [(p.kind, p.ref) for p in adapter.check(set(), live, deep=True)] == \
        [(ProblemKind.HASH_MISMATCH, blob["sha512"])]
    assert adapter.check(set(), live) == []  # a shallow check compares sizes only


def test_bad_configuration_is_refused_before_use(tmp_path: Path) -> None:
    from joist.core.assetstores.registry import AssetstoreRegistry
    from joist.core.assetstores.s3_config import s3_fields
    moto = shared_moto()
    engine = SQLiteEngine(tmp_path / "meta.db")
    try:
        from joist.core.store import Store as MetaStore
        registry = AssetstoreRegistry(MetaStore(engine).assetstores, engine)
        with pytest.raises(ValidationError, match="does not exist"):
            registry.create_s3("nope", moto.fields("no-such-bucket-here"))
        for bad in ({"bucket": "UPPER"}, {"bucket": "ok-bucket", "service": "ftp://x"},
                    {"bucket": "ok-bucket"}, {"bucket": "ok-bucket", **moto.fields("b"),
                                              "attempts": 99}):
            with pytest.raises(ValidationError):
                s3_fields(bad)
        assert registry.list() == []
    finally:
        engine.close()


def test_moto_in_a_child_process_is_a_real_endpoint() -> None:
    """The shared endpoint is a separate process speaking HTTP (sanity)."""
    moto = shared_moto()
    assert isinstance(moto, MotoProcess)
    reply = requests.get(moto.url, timeout=10)
    assert reply.status_code == 200 and b"ListAllMyBucketsResult" in reply.content
