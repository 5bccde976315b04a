"""A filesystem finalize interrupted after its rename: a retry resumes it only
when the finalizer is gone (its `.done` lock free), never beside a live one.
Two adapters on one root stand for two processes (flocks are per open file)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from joist.core.assetstores.filesystem import BLOB_REFS_SPEC, FilesystemAssetstore
from joist.core.db.engine import Collection
from joist.core.db.sqlite import SQLiteEngine
from joist.core.errors import ConflictError, NotFoundError, StorageError

DATA = os.urandom(70_000)
DIGEST = hashlib.sha512(DATA).hexdigest()


@pytest.fixture
def refs(tmp_path: Path) -> Iterator[Collection]:
    with SQLiteEngine(tmp_path / "meta.db") as engine:
        yield engine.collection(BLOB_REFS_SPEC)


def _store(tmp_path: Path, refs: Collection) -> FilesystemAssetstore:
    return FilesystemAssetstore(tmp_path / "root", refs=refs, assetstore_id="as1")


def _uploaded(store: FilesystemAssetstore) -> dict[str, Any]:
    upload = {"_id": str(ObjectId()), "size": len(DATA), "received": 0, "state": {}}
    upload["state"] = store.begin_upload(upload)
    store.write_chunk(upload, 0, io.BytesIO(DATA))
    return upload


def _refs(refs: Collection) -> int:
    doc = refs.find_one({"_id": f"as1:{DIGEST}"})
    return 0 if doc is None else int(doc["refs"])


def test_retry_beside_a_live_finalizer_is_refused(tmp_path: Path, refs: Collection) -> None:
    one, two = _store(tmp_path, refs), _store(tmp_path, refs)
    upload = _uploaded(one)
    blob = one.finalize_upload(upload)  # the file record is not written yet
    assert blob["sha512"] == DIGEST and _refs(refs) == 1
    assert two.upload_activity(upload).busy  # not abandoned, whatever its age
    assert two.upload_offset(upload) == len(DATA)
    with pytest.raises(ConflictError):
        two.finalize_upload(upload)
    assert _refs(refs) == 1
    one.forget_upload(upload)  # the record exists: nothing is left to resume
    assert os.listdir(one.temp_root) == []
    with pytest.raises(NotFoundError):
        two.finalize_upload(upload)
    assert two.check(set(), {DIGEST: 1}) == []


def test_retry_after_the_finalizer_died_resumes(tmp_path: Path, refs: Collection) -> None:
    one, two = _store(tmp_path, refs), _store(tmp_path, refs)
    upload = _uploaded(one)
    one.finalize_upload(upload)
    # The finalizing process dies: the kernel drops its lock, the file stays.
    fd = one._recovery._held.pop(str(upload["_id"]))
    os.close(fd)
    activity = two.upload_activity(upload)
    assert not activity.busy and activity.blob is not None
    assert activity.blob["sha512"] == DIGEST
    # Counted again: the first count may not have happened (a crash between
    # the rename and the count); too high is what check repairs.
    assert two.finalize_upload(upload)["sha512"] == DIGEST
    assert _refs(refs) == 2
    assert two.upload_activity(upload).busy  # the resumer holds it now
    two.forget_upload(upload)
    problems = two.check(set(), {DIGEST: 1})
    assert [p.kind for p in problems] == ["refcount-mismatch"]
    assert two.repair(problems, live_references={DIGEST: 1}) == []
    assert _refs(refs) == 1 and two.check(set(), {DIGEST: 1}) == []


def test_lost_bytes_can_only_be_cancelled(tmp_path: Path, refs: Collection) -> None:
    store = _store(tmp_path, refs)
    upload = _uploaded(store)
    store.finalize_upload(upload)
    os.close(store._recovery._held.pop(str(upload["_id"])))
    os.unlink(store.blob_path(DIGEST))  # e.g. repaired away as an orphan meanwhile
    with pytest.raises(NotFoundError, match="lost"):
        store.upload_offset(upload)
    with pytest.raises(NotFoundError, match="lost"):
        store.finalize_upload(upload)
    store.abort_upload(upload)
    assert os.listdir(store.temp_root) == []


def test_a_failure_after_the_rename_leaves_it_resumable(
        tmp_path: Path, refs: Collection, monkeypatch: pytest.MonkeyPatch) -> None:
    from joist.core.assetstores import filesystem
    store = _store(tmp_path, refs)
    upload = _uploaded(store)
    real = filesystem.fsync_dir

    def failing(path: str) -> None:
        if path == store.temp_root:
            raise OSError(5, "I/O error")
        real(path)

    monkeypatch.setattr(filesystem, "fsync_dir", failing)
    with pytest.raises(StorageError):
        store.finalize_upload(upload)
    monkeypatch.undo()
    # The same process retries: it holds nothing any more, so it resumes.
    assert store.finalize_upload(upload)["sha512"] == DIGEST
    store.forget_upload(upload)
    assert os.listdir(store.temp_root) == []
