"""GridFS assetstore specifics: the stored layout is plain GridFS, leases keep
writers of one upload apart (and a writer that lost its upload stops), a
finalize that died past its commit point is finished by a retry, and what
``check``/``repair`` do with damage. The adapter contract itself is in
``tests/contract/test_assetstore_contract.py``.

No MongoDB server can be installed on the CI machine: these run on mongomock
(``tests/mongo_stand_in.py``).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gridfs
import pytest
from bson import ObjectId

from joist.admin.bootstrap import build_app
from joist.core.acl import SYSTEM, Principal
from joist.core.assetstores.base import ProblemKind
from joist.core.assetstores.gridfs import GridFSAssetstore
from joist.core.assetstores.registry import GRIDFS
from joist.core.db.sqlite import SQLiteEngine
from joist.core.errors import ConflictError, StorageError, ValidationError
from joist.core.services.check import Checker
from tests.conftest import make_settings
from tests.mongo_stand_in import LockedMongoClient, enable_gridfs, fresh_db_name
from tests.world import PASSWORD

MiB = 1 << 20


@pytest.fixture
def db() -> Any:
    enable_gridfs()  # pymongo's gridfs must accept mongomock's objects
    return LockedMongoClient().get_database(fresh_db_name("gridfs_unit"))


def open_store(db: Any, lease_s: float = 30.0) -> GridFSAssetstore:
    return GridFSAssetstore(db, assetstore_id="as-unit", lease_s=lease_s)


@pytest.fixture
def store(db: Any) -> GridFSAssetstore:
    return open_store(db)


def begin(store: GridFSAssetstore, size: int) -> dict[str, Any]:
    upload = {"_id": str(ObjectId()), "size": size, "received": 0, "state": {}}
    upload["state"] = store.begin_upload(upload)
    return upload


def upload(store: GridFSAssetstore, data: bytes) -> dict[str, Any]:
    up = begin(store, len(data))
    store.write_chunk(up, 0, io.BytesIO(data))
    return store.finalize_upload(up)


def kinds(problems: list[Any]) -> list[tuple[str, str]]:
    return sorted((str(p.kind), p.ref) for p in problems)


def test_blobs_are_plain_gridfs_files(db: Any, store: GridFSAssetstore) -> None:
    data = bytes(range(256)) * 9000  # 2.2 MiB: three chunks
    blob = upload(store, data)
    assert blob == {"size": len(data), "sha512": hashlib.sha512(data).hexdigest()}
    doc = db["fs.files"].find_one({"filename": blob["sha512"]})
    assert doc["length"] == len(data) and doc["chunkSize"] == MiB
    assert doc["metadata"] == {"sha512": blob["sha512"], "refs": 1,
                               "updated": doc["metadata"]["updated"]}
    # Any GridFS reader can read it: pymongo's own here.
    assert gridfs.GridFSBucket(db).open_download_stream(doc["_id"]).read() == data
    assert db["fs.uploads"].count_documents({}) == 0  # nothing left of the upload


def test_a_dead_writers_lease_runs_out_and_it_cannot_come_back(db: Any) -> None:
    data = bytes(3 * MiB)
    first, second = open_store(db, lease_s=0.3), open_store(db, lease_s=0.3)
    up = begin(first, len(data))
    first.write_chunk(up, 0, io.BytesIO(data[:MiB]))
    dead = first._claim(up["_id"])  # a writer that stopped answering, lease held
    assert second.upload_offset(up) == MiB  # the committed offset, meanwhile
    # The next writer waits for the lease to run out, then goes on.
    assert second.write_chunk(up, MiB, io.BytesIO(data[MiB:]))[0] == len(data)
    with pytest.raises(ConflictError, match="taken over"):
        dead.renew({"received": 123})  # the old writer cannot commit any more
    blob = second.finalize_upload(up)
    with second.open_read(blob) as reader:
        assert reader.read_at(0, len(data) + 1) == data


class _AbortingStream:
    """Aborts the upload (as another process would) after ``after`` bytes."""

    def __init__(self, data: bytes, after: int, abort: Any) -> None:
        self.data, self.pos, self.after, self.abort = data, 0, after, abort

    def read(self, size: int) -> bytes:
        if self.pos >= self.after and self.abort is not None:
            self.abort()
            self.abort = None
        block = self.data[self.pos:self.pos + size]
        self.pos += len(block)
        return block


def test_a_writer_whose_upload_was_aborted_stops(db: Any, store: GridFSAssetstore) -> None:
    data = bytes(range(256)) * (12 * 1024)  # 3 MiB
    up = begin(store, len(data))
    other = open_store(db)
    stream = _AbortingStream(data, MiB, lambda: other.abort_upload(up))
    with pytest.raises(ConflictError):
        store.write_chunk(up, 0, stream)
    # The writer may have put one more chunk down after the abort: bytes no
    # upload and no blob owns, which check reports and repair drops.
    problems = store.check(set(), {})
    assert problems and all(p.kind == ProblemKind.STALE_TEMP and p.ref.startswith("chunks:")
                            for p in problems)
    assert store.repair(problems, live_references={}) == []
    assert store.check(set(), {}) == []
    assert db["fs.chunks"].count_documents({}) == 0


class _FailOnce:
    """A collection whose ``delete_one`` fails once: a crash at that step."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.failed = inner, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def delete_one(self, *args: Any, **kwargs: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise RuntimeError("process killed here")
        return self.inner.delete_one(*args, **kwargs)


@pytest.mark.parametrize("duplicate", [False, True])
def test_a_finalize_that_died_past_its_commit_point_is_finished_by_a_retry(
        db: Any, duplicate: bool) -> None:
    data = b"finalize me" * 100_000
    crashing = open_store(db, lease_s=0.2)
    if duplicate:
        upload(crashing, data)  # a live blob of the same content: the dedup path
    up = begin(crashing, len(data))
    crashing.write_chunk(up, 0, io.BytesIO(data))
    crashing.uploads = _FailOnce(crashing.uploads)
    with pytest.raises(RuntimeError):
        crashing.finalize_upload(up)
    assert db["fs.uploads"].find_one({"_id": up["_id"]})["state"] == "committing"
    crashing._claim(up["_id"], finalizing=True)  # killed, its lease left to run out
    retry = open_store(db, lease_s=0.2)  # a restarted process
    blob = retry.finalize_upload(up)
    assert blob["sha512"] == hashlib.sha512(data).hexdigest()
    live = db["fs.files"].find_one({"metadata.sha512": blob["sha512"]})
    assert live["metadata"]["refs"] == (2 if duplicate else 1)
    assert db["fs.files"].count_documents({}) == 1
    assert db["fs.uploads"].count_documents({}) == 0
    assert retry.check(set(), {blob["sha512"]: 2 if duplicate else 1}) == []


def test_check_and_repair(db: Any, store: GridFSAssetstore) -> None:
    one, two, three = (upload(store, bytes([i]) * (MiB + 10)) for i in (1, 2, 3))
    files, chunks = db["fs.files"], db["fs.chunks"]
    live = {one["sha512"]: 1, two["sha512"]: 1, three["sha512"]: 1}
    assert store.check(set(), live, deep=True) == []
    # one: left at 0 by an interrupted delete; two: a chunk lost; three: one
    # more file record than counted; plus chunks nothing owns.
    files.update_one({"metadata.sha512": one["sha512"]}, {"$set": {"metadata.refs": 0}})
    two_id = files.find_one({"metadata.sha512": two["sha512"]})["_id"]
    chunks.delete_one({"files_id": two_id, "n": 1})
    live[three["sha512"]] = 2
    del live[one["sha512"]]
    stray = ObjectId()
    chunks.insert_one({"files_id": stray, "n": 0, "data": b"stray"})
    problems = store.check(set(), live)
    assert kinds(problems) == sorted([
        ("stale-refs", one["sha512"]), ("size-mismatch", two["sha512"]),
        ("refcount-mismatch", three["sha512"]), ("stale-temp", f"chunks:{stray}")])
    left = store.repair(problems, live_references=live)
    assert kinds(left) == [("size-mismatch", two["sha512"])]  # referenced bytes are lost
    del live[two["sha512"]]  # the file record goes (restored from a backup, say)
    assert store.repair(store.check(set(), live), live_references=live) == []
    assert store.check(set(), live) == []
    assert files.find_one({"metadata.sha512": three["sha512"]})["metadata"]["refs"] == 2
    assert {d["metadata"]["sha512"] for d in files.find({})} == {three["sha512"]}


def test_deep_check_finds_bytes_that_changed(db: Any, store: GridFSAssetstore) -> None:
    blob = upload(store, b"a" * (MiB + 3))
    doc = db["fs.files"].find_one({})
    db["fs.chunks"].update_one({"files_id": doc["_id"], "n": 1}, {"$set": {"data": b"xyz"}})
    live = {blob["sha512"]: 1}
    assert store.check(set(), live) == []  # same sizes: only a re-hash sees it
    problems = store.check(set(), live, deep=True)
    assert kinds(problems) == [("hash-mismatch", blob["sha512"])]
    assert store.repair(problems, live_references=live) == problems  # still referenced
    assert store.repair(problems, live_references={}) == []
    assert store.check(set(), {}, deep=True) == []


def test_recent_work_is_left_alone(store: GridFSAssetstore) -> None:
    import time
    settled = time.time() - 600
    up = begin(store, 10)
    store.write_chunk(up, 0, io.BytesIO(b"12345"))
    assert store.check(set(), {}, settled_before=settled) == []
    problems = store.check(set(), {})
    assert kinds(problems) == [("stale-temp", up["_id"])]
    assert store.repair(problems, live_references={}, settled_before=settled) == problems
    assert store.repair(problems, live_references={}) == []
    assert store.check(set(), {}) == []


def test_reads_refuse_damaged_blobs(db: Any, store: GridFSAssetstore) -> None:
    blob = upload(store, b"z" * (2 * MiB + 1))
    reader = store.open_read(blob)
    assert reader.read_at(MiB - 1, 2) == b"zz"
    db["fs.chunks"].delete_one({"n": 2})
    with pytest.raises(StorageError):
        reader.read_at(2 * MiB, 1)
    with pytest.raises(StorageError):
        store.open_read({**blob, "size": 5})  # the record disagrees with the blob


def test_a_gridfs_assetstore_needs_mongodb(tmp_path: Path) -> None:
    engine = SQLiteEngine(tmp_path / "meta.db")
    try:
        with pytest.raises(ValidationError, match="mongohost"):
            GridFSAssetstore.from_document({"_id": ObjectId(), "type": GRIDFS}, engine)
    finally:
        engine.close()
    with pytest.raises(ValidationError):
        GridFSAssetstore(LockedMongoClient().get_database("x"), bucket="no/slash")


@pytest.fixture
def mongo_app(tmp_path: Path) -> Iterator[Any]:
    settings = make_settings(tmp_path / "data", **{
        "database.engine": "mongo", "database.uri": f"mongodb://127.0.0.1/{fresh_db_name()}"})
    with build_app(settings, env={}, mongo_client=LockedMongoClient()) as app:
        yield app


def test_the_registry_builds_it_and_uploads_go_through_it(mongo_app: Any) -> None:
    app = mongo_app
    app.assetstores.probe({"type": GRIDFS, "name": "grid"})  # the server answers
    doc = app.assetstores.create({"type": GRIDFS, "name": "grid", "current": True})
    assert isinstance(app.assetstores.adapter(doc["_id"]), GridFSAssetstore)
    svc = app.services
    user = svc.users.create(SYSTEM, login="gina", email="g@example.org", first_name="G",
                            last_name="F", password=PASSWORD)
    me = Principal.from_user(user)
    folder = svc.folders.list(me, "user", user["_id"], name="Private")[0][0]
    data = bytes(range(256)) * 5000
    step = svc.uploads.begin(me, "folder", folder["_id"], "g.bin", len(data))
    done = svc.uploads.write(me, step.upload["_id"], 0, io.BytesIO(data), len(data))
    assert done.file is not None and done.file["assetstoreId"] == doc["_id"]
    with app.hierarchy.view(me).open_read("/user/gina/Private/g.bin") as reader:
        assert reader.read_at(0, len(data)) == data
    db = app.engine.database  # the GridFS collections live beside the metadata
    assert db["fs.files"].count_documents({"metadata.refs": 1}) == 1
    assert Checker(svc).check() == []


def test_untracked_uploads_are_listed_and_discarded(db: Any, store: GridFSAssetstore) -> None:
    """``system/uploads?includeUntracked``: an upload document with chunks and
    no upload record (a killed upload) is listed, then dropped with its chunks;
    a known upload and one too recent for ``older_than`` are left alone."""
    known, stray = begin(store, 3 * MiB), begin(store, 3 * MiB)
    for up in (known, stray):
        store.write_chunk(up, 0, io.BytesIO(b"s" * (MiB + 5)), MiB + 5)
    listed = store.untracked_uploads({known["_id"]})
    assert [(u["uploadId"], u["size"], u["untracked"]) for u in listed] == \
        [(stray["_id"], MiB + 5, True)]
    assert listed[0]["assetstoreId"] == "as-unit"
    assert store.untracked_uploads({known["_id"]}, older_than=0.0, delete=True) == []
    gone = store.untracked_uploads({known["_id"]}, delete=True)
    assert [u["uploadId"] for u in gone] == [stray["_id"]]
    files_id = ObjectId(stray["state"]["filesId"])
    assert db["fs.chunks"].count_documents({"files_id": files_id}) == 0
    assert db["fs.uploads"].count_documents({"_id": stray["_id"]}) == 0
    assert store.upload_offset(known) == MiB + 5  # the tracked one is intact
    assert store.untracked_uploads({known["_id"]}) == []
