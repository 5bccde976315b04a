"""Pending blobs of the filesystem assetstore: uploads of at least
``defer_hash_bytes`` committed unhashed, and their hand-over (hash, link or
dedup, records moved, tombstone) in each state a race or crash can leave."""

from __future__ import annotations

import hashlib
import io
import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from joist.core.assetstores.base import ProblemKind, blob_key
from joist.core.assetstores.filesystem import FilesystemAssetstore
from joist.core.db.engine import Collection
from joist.core.errors import StorageError

THRESHOLD = 64 * 1024
DATA = random.Random(7).randbytes(300 * 1024)
DIGEST = hashlib.sha512(DATA).hexdigest()


class Records:
    """File records by id, as the hand-over sees them (``RecordMover``)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.refuse: set[str] = set()  # ids a concurrent replace takes first

    def add(self, blob: dict[str, Any]) -> str:
        record_id = str(ObjectId())
        self.docs[record_id] = dict(blob)
        return record_id

    def pointing(self, key: str, limit: int) -> list[Any]:
        uuid = key.rsplit("/", 1)[1]
        return [i for i, d in self.docs.items() if d.get("pending") == uuid][:limit]

    def move(self, record_id: Any, key: str, fields: dict[str, Any]) -> bool:
        doc = self.docs.get(record_id)
        if record_id in self.refuse or doc is None \
                or doc.get("pending") != key.rsplit("/", 1)[1]:
            return False
        doc.pop("pending")
        doc.update(fields)
        return True

    def live(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for doc in self.docs.values():
            key = blob_key(doc)
            assert key is not None
            out[key] = out.get(key, 0) + 1
        return out


@pytest.fixture
def store(tmp_path: Path, refs: Collection) -> FilesystemAssetstore:
    return FilesystemAssetstore(tmp_path / "root", refs=refs, assetstore_id="as1",
                                defer_hash_bytes=THRESHOLD)


def put(store: FilesystemAssetstore, data: bytes) -> dict[str, Any]:
    upload = {"_id": str(ObjectId()), "size": len(data), "received": 0, "state": {}}
    upload["state"] = store.begin_upload(upload)
    half = len(data) // 2
    store.write_chunk(upload, 0, io.BytesIO(data[:half]))
    store.write_chunk(upload, half, io.BytesIO(data[half:]))
    blob = store.finalize_upload(upload)
    store.forget_upload(upload)
    return {"size": len(data), **{k: v for k, v in blob.items() if k != "size"}}


def count(refs: Collection, key: str) -> int | None:
    doc = refs.find_one({"_id": f"as1:{key}"})
    return None if doc is None else int(doc["refs"])


def read(store: FilesystemAssetstore, blob: dict[str, Any]) -> bytes:
    with store.open_read(blob) as reader:
        return reader.read_at(0, reader.size)


def test_large_upload_is_pending_small_one_is_hashed(store: FilesystemAssetstore,
                                                     refs: Collection) -> None:
    blob = put(store, DATA)
    assert "sha512" not in blob and set(blob) == {"size", "pending"}
    key = blob_key(blob)
    assert key is not None and os.path.isfile(store.key_path(key))
    assert read(store, blob) == DATA and count(refs, key) == 1
    assert store.local_path(blob) == store.key_path(key)
    small = put(store, DATA[:THRESHOLD - 1])
    assert small["sha512"] == hashlib.sha512(DATA[:THRESHOLD - 1]).hexdigest()
    live = {key: 1, small["sha512"]: 1}
    assert store.check(set(), live) == []  # healthy while its hand-over is queued
    refs.update_one({"_id": f"as1:{key}"}, {"$set": {"updated": datetime(2020, 1, 1,
                                                                         tzinfo=UTC)}})
    problems = store.check(set(), live)  # not handed over in ten minutes
    assert [(p.kind, p.ref) for p in problems] == [(ProblemKind.PENDING_HANDOVER, key)]
    assert store.repair(problems, live_references=live) == problems  # the caller's


def test_hand_over_moves_records_dedups_and_keeps_a_redirect(
        store: FilesystemAssetstore, refs: Collection) -> None:
    records = Records()
    first, second = put(store, DATA), put(store, DATA)  # same content, both pending
    one, two = records.add(first), records.add(second)
    store.add_reference(first)  # a copy of the first
    records.add(first)
    assert store.hand_over(first, records) == DIGEST
    assert store.hand_over(second, records) == DIGEST
    assert store.hand_over(second, records) == DIGEST  # again: nothing more to do
    assert count(refs, DIGEST) == 3 and list(store.pending.files()) == []
    assert all(d == {"size": len(DATA), "sha512": DIGEST, "path": store.blob_fields(DIGEST)[
        "path"]} for d in records.docs.values())
    assert os.stat(store.blob_path(DIGEST)).st_nlink == 1  # one blob: deduplicated
    assert read(store, records.docs[one]) == DATA
    # a reader holding the record from before the hand-over reads the same bytes
    assert read(store, first) == DATA and read(store, second) == DATA
    with pytest.raises(StorageError):  # a copier re-reads its record instead
        store.add_reference(first)
    assert store.check(set(), records.live()) == []  # tombstones are no problem
    store.delete(records.docs.pop(two))
    assert count(refs, DIGEST) == 2
    assert store.prune_tombstones() == 0  # still in their grace period
    for blob in (first, second):
        refs.update_one({"_id": f"as1:{blob_key(blob)}"},
                        {"$set": {"updated": datetime(2020, 1, 1, tzinfo=UTC)}})
    assert store.prune_tombstones() == 2 and count(refs, blob_key(first) or "") is None
    assert store.check(set(), records.live()) == []


def test_hand_over_onto_a_blob_uploaded_hashed(store: FilesystemAssetstore,
                                               refs: Collection, tmp_path: Path) -> None:
    inline = FilesystemAssetstore(tmp_path / "root", refs=refs, assetstore_id="as1")
    hashed = put(inline, DATA)  # the same root, hashing every upload
    records = Records()
    records.add(hashed)
    pending = put(store, DATA)
    records.add(pending)
    inode = os.stat(store.blob_path(DIGEST)).st_ino
    assert store.hand_over(pending, records) == DIGEST
    assert os.stat(store.blob_path(DIGEST)).st_ino == inode and count(refs, DIGEST) == 2
    assert store.check(set(), records.live()) == []


def test_delete_before_and_replace_during_hand_over(store: FilesystemAssetstore,
                                                    refs: Collection) -> None:
    records = Records()
    gone = put(store, DATA)
    store.delete(gone)  # its only record was deleted before the hand-over ran
    assert list(store.pending.files()) == [] and count(refs, blob_key(gone) or "") is None
    assert store.hand_over(gone, records) is None
    blob = put(store, DATA)
    replaced = records.add(blob)
    kept = records.add(blob)
    store.add_reference(blob)
    records.refuse.add(replaced)  # a replace swaps it first: its count comes back
    assert store.hand_over(blob, records) is None  # the replacer has yet to release
    assert count(refs, DIGEST) == 1 and count(refs, blob_key(blob) or "") == 1
    del records.docs[replaced]
    store.delete(blob)  # the replacer releases the bytes it displaced
    assert list(store.pending.files()) == []
    assert read(store, records.docs[kept]) == DATA and count(refs, DIGEST) == 1
    assert store.check(set(), records.live()) == []


def test_in_flight_copy_holds_the_pending_blob(store: FilesystemAssetstore,
                                               refs: Collection) -> None:
    records = Records()
    blob = put(store, DATA)
    records.add(blob)
    store.add_reference(blob)  # a copy whose record is not written yet
    assert store.hand_over(blob, records) is None
    key = blob_key(blob) or ""
    assert os.path.isfile(store.key_path(key)) and count(refs, key) == 1
    assert read(store, blob) == DATA
    records.add(blob)  # the copy's record arrives; the next hand-over moves it
    assert store.hand_over(blob, records) == DIGEST
    assert count(refs, DIGEST) == 2 and store.check(set(), records.live()) == []


def test_interrupted_hand_over_is_finished_by_repair(store: FilesystemAssetstore,
                                                     refs: Collection) -> None:
    """The states a crash leaves between the hand-over's steps: counts too
    high, never too low; check + repair + the hand-over set them right."""
    records = Records()
    blob = put(store, DATA)
    key = blob_key(blob) or ""
    first, second = records.add(blob), records.add(blob)
    store.add_reference(blob)
    store.bucket_lock(DIGEST)  # (makes the bucket)
    os.link(store.key_path(key), store.blob_path(DIGEST))  # after_link
    store._count_new_reference(DIGEST, len(DATA))          # after_count
    records.move(first, key, store.blob_fields(DIGEST))    # after_record
    live = records.live()
    assert live == {key: 1, DIGEST: 1}
    problems = store.check(set(), live)
    # the pending count is one too high (the crash came before its decrement)
    assert [(str(p.kind), p.ref) for p in problems] == [("refcount-mismatch", key)]
    assert store.repair(problems, live_references=live) == []
    assert count(refs, key) == 1 and count(refs, DIGEST) == 1
    assert store.hand_over(blob, records) == DIGEST
    assert records.docs[second]["sha512"] == DIGEST and count(refs, DIGEST) == 2
    assert store.check(set(), records.live()) == []
    # an orphan pending file (a crash before its count) goes with repair
    stray = store.pending.path(store.pending.new_key())
    Path(stray).write_bytes(b"debris")
    problems = store.check(set(), records.live())
    assert [p.kind for p in problems] == [ProblemKind.ORPHAN_BLOB]
    assert store.repair(problems, live_references=records.live()) == []
    assert not os.path.exists(stray) and read(store, records.docs[first]) == DATA
