"""Filesystem assetstore specifics: layout, permissions, atomic finalize, locks
across processes, ENOSPC, and what ``check``/``repair`` do with damage."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from joist.core.assetstores.filesystem import FilesystemAssetstore
from joist.core.db.engine import Collection
from joist.core.errors import (
    ConflictError,
    NotFoundError,
    QuotaError,
    StorageError,
    UnsupportedError,
    ValidationError,
)

MiB = 1 << 20


@pytest.fixture
def store(tmp_path: Path, refs: Collection) -> FilesystemAssetstore:
    return FilesystemAssetstore(tmp_path / "root", refs=refs, assetstore_id="as1")


def begin(store: FilesystemAssetstore, size: int) -> dict[str, Any]:
    upload = {"_id": str(ObjectId()), "size": size, "received": 0, "state": {}}
    upload["state"] = store.begin_upload(upload)
    return upload


def finalized(store: FilesystemAssetstore, upload: dict[str, Any]) -> dict[str, Any]:
    """Finalize as the upload service does: the adapter forgets the upload
    once its file record exists."""
    blob = store.finalize_upload(upload)
    store.forget_upload(upload)
    return blob


def put(store: FilesystemAssetstore, data: bytes, chunk: int = 4 * MiB) -> dict[str, Any]:
    upload = begin(store, len(data))
    for offset in range(0, len(data), chunk):
        store.write_chunk(upload, offset, io.BytesIO(data[offset:offset + chunk]))
    return finalized(store, upload)


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def kinds(problems: list[Any]) -> list[tuple[str, str]]:
    return sorted((str(p.kind), p.ref) for p in problems)


# -- layout and permissions ------------------------------------------------------
def test_layout_and_refs_document(store: FilesystemAssetstore, refs: Collection) -> None:
    data = payload(5000)
    digest = hashlib.sha512(data).hexdigest()
    upload = begin(store, len(data))
    assert upload["state"]["tempPath"] == f"temp/{upload['_id']}.part"
    assert os.listdir(store.temp_root) == [f"{upload['_id']}.part"]
    store.write_chunk(upload, 0, io.BytesIO(data))
    assert not os.path.exists(store.blob_path(digest))
    blob = finalized(store, upload)
    assert blob == {"size": 5000, "sha512": digest, "path": f"{digest[:2]}/{digest[2:4]}/{digest}"}
    assert store.local_path(blob) == os.path.join(store.root, blob["path"])
    assert Path(store.local_path(blob) or "").read_bytes() == data
    assert os.listdir(store.temp_root) == []
    doc = refs.find_one({"_id": f"as1:{digest}"})
    assert doc is not None and isinstance(doc.pop("updated"), datetime)
    assert doc == {"_id": f"as1:{digest}", "assetstoreId": "as1", "sha512": digest,
                   "size": 5000, "refs": 1}
    assert sorted(os.listdir(store.bucket_dir(digest))) == [".lock", digest]


@pytest.mark.parametrize("perms", [0o600, 0o640])
def test_permissions_ignore_umask(tmp_path: Path, refs: Collection, perms: int) -> None:
    store = FilesystemAssetstore(tmp_path / "p", refs=refs, assetstore_id="p", perms=perms)
    old = os.umask(0o077)
    try:
        upload = begin(store, 3)
        temp = os.path.join(store.root, upload["state"]["tempPath"])
        assert os.stat(temp).st_mode & 0o777 == perms
        store.write_chunk(upload, 0, io.BytesIO(b"abc"))
        blob = finalized(store, upload)
    finally:
        os.umask(old)
    assert os.stat(store.local_path(blob) or "").st_mode & 0o777 == perms


def test_begin_refused_when_space_is_reserved(tmp_path: Path, refs: Collection) -> None:
    total = FilesystemAssetstore(tmp_path / "r", refs=refs, assetstore_id="r").capacity().total
    store = FilesystemAssetstore(tmp_path / "r", refs=refs, assetstore_id="r",
                                 reserve_bytes=total or 0)
    assert store.capacity().free == 0
    with pytest.raises(QuotaError):
        begin(store, 1)
    assert os.listdir(store.temp_root) == []
    assert store.finalize_upload(begin(store, 0))["size"] == 0  # nothing needs no space


# -- atomic finalize -------------------------------------------------------------
def test_finalize_syncs_then_renames_the_temp_file(store: FilesystemAssetstore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    data = payload(3 * MiB)
    digest = hashlib.sha512(data).hexdigest()
    upload = begin(store, len(data))
    store.write_chunk(upload, 0, io.BytesIO(data))
    temp = os.path.join(store.root, upload["state"]["tempPath"])
    inode = os.stat(temp).st_ino
    events: list[tuple[str, str]] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def rename(src: str, dst: str) -> None:
        events.append(("rename", str(dst)))
        real_rename(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    finalized(store, upload)
    final = store.blob_path(digest)
    assert os.stat(final).st_ino == inode  # renamed, not copied
    at = events.index(("rename", final))
    assert ("fsync", temp) in events[:at]  # content durable before it gets its name
    assert ("fsync", store.bucket_dir(digest)) in events[at:]  # then the name itself


def test_no_partial_final_file_is_ever_visible(store: FilesystemAssetstore) -> None:
    data = payload(16 * MiB, seed=1)
    final = store.blob_path(hashlib.sha512(data).hexdigest())
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            with contextlib.suppress(FileNotFoundError):
                seen.append(os.stat(final).st_size)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        upload = begin(store, len(data))
        for offset in range(0, len(data), MiB):
            store.write_chunk(upload, offset, io.BytesIO(data[offset:offset + MiB]))
            assert not os.path.exists(final)
        finalized(store, upload)
    finally:
        done.set()
        watcher.join(timeout=60)
    assert set(seen) <= {len(data)}  # whenever the name existed, all bytes were there
    assert Path(final).read_bytes() == data


def test_failed_count_keeps_the_upload_retryable(store: FilesystemAssetstore,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    data = payload(1000)
    upload = begin(store, len(data))
    store.write_chunk(upload, 0, io.BytesIO(data))

    def broken(*args: Any) -> None:
        raise StorageError("metadata store down")

    monkeypatch.setattr(store, "_count_new_reference", broken)
    with pytest.raises(StorageError):
        store.finalize_upload(upload)
    assert not os.path.exists(store.blob_path(hashlib.sha512(data).hexdigest()))
    assert store.upload_offset(upload) == len(data)
    monkeypatch.undo()
    assert finalized(store, upload)["size"] == len(data)
    assert store.check(set()) == []


def test_finalize_replaces_a_damaged_copy(store: FilesystemAssetstore) -> None:
    data = payload(4000)
    digest = hashlib.sha512(data).hexdigest()
    os.makedirs(store.bucket_dir(digest))
    Path(store.blob_path(digest)).write_bytes(data[:100])  # truncated by a disk fault
    blob = put(store, data)
    with store.open_read(blob) as reader:
        assert reader.read_at(0, 5000) == data
    assert store.check(set(), {digest: 1}) == []


# -- locks -----------------------------------------------------------------------
LOCK_HOLDER = (
    "import sys\n"
    "from joist.core.assetstores.localio import locked\n"
    "with locked(sys.argv[1]):\n"
    "    print('locked', flush=True)\n"
    "    sys.stdin.readline()\n"
)


def lock_waiters(path: str) -> int:
    """Processes or threads blocked on an flock of ``path``, from /proc/locks."""
    st = os.stat(path)
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as f:
        return sum(1 for line in f if "->" in line.split() and key in line.split())


def read_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the child said nothing in time"
    return proc.stdout.readline().strip()


@pytest.mark.parametrize("operation", ["finalize", "delete"])
def test_bucket_lock_holds_across_processes(store: FilesystemAssetstore, refs: Collection,
                                            operation: str) -> None:
    if not os.path.exists("/proc/locks"):
        pytest.skip("needs /proc/locks to see a blocked flock")
    data = payload(2000)
    blob = put(store, data)
    digest = blob["sha512"]
    pending = begin(store, len(data))
    store.write_chunk(pending, 0, io.BytesIO(data))
    lock = store.bucket_lock(digest)
    child = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, lock], text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            if operation == "finalize":
                finalized(store, pending)
            else:
                store.delete(blob)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    try:
        assert read_line(child) == "locked"
        worker.start()
        deadline = time.monotonic() + 30
        while lock_waiters(lock) == 0:  # wait until the worker blocks on the flock
            assert time.monotonic() < deadline, "the worker never waited for the lock"
            time.sleep(0.005)
        assert worker.is_alive()
        assert refs.find_one({"_id": f"as1:{digest}"})["refs"] == 1
        assert os.path.exists(store.blob_path(digest))
        assert child.stdin is not None
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(timeout=30) == 0
        worker.join(timeout=30)
    finally:
        child.kill()
        child.wait()
    assert not worker.is_alive() and errors == []
    if operation == "finalize":
        assert refs.find_one({"_id": f"as1:{digest}"})["refs"] == 2
    else:
        assert refs.find_one({"_id": f"as1:{digest}"}) is None
        assert not os.path.exists(store.blob_path(digest))


def test_one_writer_per_upload(store: FilesystemAssetstore) -> None:
    data = payload(8 * MiB)
    upload = begin(store, len(data))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def write() -> None:
        barrier.wait()
        try:
            store.write_chunk(upload, 0, io.BytesIO(data[:4 * MiB]))
            outcomes.append("ok")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    assert store.upload_offset(upload) == 4 * MiB


def test_instances_share_upload_progress(tmp_path: Path, refs: Collection) -> None:
    """Two processes' adapters append in turn; each one's cached hash goes
    stale and must catch up on the other's bytes."""
    one = FilesystemAssetstore(tmp_path / "s", refs=refs, assetstore_id="s")
    two = FilesystemAssetstore(tmp_path / "s", refs=refs, assetstore_id="s")
    data = payload(5 * MiB + 9, seed=4)
    upload = begin(one, len(data))
    for i, offset in enumerate(range(0, len(data), MiB)):
        (one, two)[i % 2].write_chunk(upload, offset, io.BytesIO(data[offset:offset + MiB]))
    blob = finalized(two, upload)
    assert blob["sha512"] == hashlib.sha512(data).hexdigest()


# -- disk full -------------------------------------------------------------------
@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, to run out of space for real (needs root)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to simulate a full disk: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_disk_full_rolls_back(tiny_fs: Path, refs: Collection) -> None:
    store = FilesystemAssetstore(tiny_fs / "root", refs=refs, assetstore_id="tiny")
    assert (store.capacity().total or 0) <= 4 * MiB
    data = payload(3 * MiB, seed=9)
    upload = begin(store, len(data))
    store.write_chunk(upload, 0, io.BytesIO(data[:MiB]))
    filler = tiny_fs / "filler"
    with open(filler, "wb") as f:  # leave room for about half of the next chunk
        f.write(b"\0" * max(0, os.statvfs(tiny_fs).f_bavail * os.statvfs(tiny_fs).f_frsize
                            - MiB // 2))
    with pytest.raises(QuotaError):
        store.write_chunk(upload, MiB, io.BytesIO(data[MiB:]))
    temp = os.path.join(store.root, upload["state"]["tempPath"])
    assert os.path.getsize(temp) == MiB
    assert store.upload_offset(upload) == MiB
    assert store.check({upload["_id"]}, {}) == []
    filler.unlink()
    store.write_chunk(upload, MiB, io.BytesIO(data[MiB:]))
    blob = finalized(store, upload)
    assert blob["sha512"] == hashlib.sha512(data).hexdigest()
    assert store.check(set(), {blob["sha512"]: 1}) == []


# -- reads -----------------------------------------------------------------------
def test_reader_descriptor_serves_sendfile(store: FilesystemAssetstore,
                                           tmp_path: Path) -> None:
    data = payload(MiB + 1)
    reader = store.open_read(put(store, data))
    with reader, open(tmp_path / "out", "wb") as out:
        sent = 0
        while sent < reader.size:
            sent += os.sendfile(out.fileno(), reader.fileno(), sent, reader.size - sent)
    assert (tmp_path / "out").read_bytes() == data
    with pytest.raises(ValueError):
        reader.read_at(0, 1)


def test_open_read_detects_size_mismatch(store: FilesystemAssetstore) -> None:
    blob = put(store, b"twelve bytes")
    with pytest.raises(StorageError):
        store.open_read(dict(blob, size=13))


@pytest.mark.parametrize("bad", [{"_id": "../escape"}, {"_id": ""}, {"_id": "a/b"}])
def test_upload_ids_cannot_escape_the_temp_dir(store: FilesystemAssetstore,
                                               bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        store.begin_upload({**bad, "size": 1})


def test_foreign_state_is_refused(store: FilesystemAssetstore) -> None:
    upload = begin(store, 10)
    upload["state"] = {"tempPath": "../../etc/passwd", "generation": "x"}
    with pytest.raises(ValidationError):
        store.write_chunk(upload, 0, io.BytesIO(b"0123456789"))
    with pytest.raises(ValidationError):
        store.open_read({"sha512": "../" * 10, "size": 1})


# -- references ------------------------------------------------------------------
def test_uncounted_blob_refuses_new_references(store: FilesystemAssetstore,
                                               refs: Collection) -> None:
    blob = put(store, b"counted once")
    refs.delete_one({"_id": f"as1:{blob['sha512']}"})  # the count was lost
    with pytest.raises(StorageError):
        store.add_reference(blob)
    store.delete(blob)  # must not delete bytes it cannot account for
    assert os.path.exists(store.local_path(blob) or "")
    assert kinds(store.check(set())) == [("orphan-blob", blob["sha512"])]


def test_missing_upload_temp(store: FilesystemAssetstore) -> None:
    upload = begin(store, 10)
    store.abort_upload(upload)
    for call in (lambda: store.upload_offset(upload), lambda: store.finalize_upload(upload)):
        with pytest.raises(NotFoundError):
            call()


def test_streams_are_read_in_bounded_blocks(store: FilesystemAssetstore) -> None:
    data = payload(5 * MiB + 3)
    asked: list[int] = []

    class Recording(io.BytesIO):
        def readinto(self, buffer: Any) -> int:
            asked.append(len(buffer))
            return super().readinto(buffer)

    upload = begin(store, len(data))
    assert store.write_chunk(upload, 0, Recording(data))[0] == len(data)
    assert asked and max(asked) <= MiB


def test_import_is_not_offered(store: FilesystemAssetstore) -> None:
    with pytest.raises(UnsupportedError):
        store.import_data("/srv/data")


# -- check and repair ------------------------------------------------------------
def _set_refs(refs: Collection, digest: str, count: int) -> None:
    refs.update_one({"_id": f"as1:{digest}"}, {"$set": {"refs": count}})


def _truncate(path: str) -> None:
    os.truncate(path, 10)


def _flip_byte(path: str) -> None:
    with open(path, "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 1]))


# name: (damage(store, refs, digest), live count, kind found, fixed?, bytes kept after)
SCENARIOS: dict[str, tuple[Any, int, str, bool, bool]] = {
    "orphan": (lambda s, r, d: r.delete_one({"_id": f"as1:{d}"}), 0,
               "orphan-blob", True, False),
    "count-lost": (lambda s, r, d: r.delete_one({"_id": f"as1:{d}"}), 2,
                   "refcount-mismatch", True, True),
    "count-too-high": (lambda s, r, d: None, 0, "refcount-mismatch", True, False),
    "count-too-low": (lambda s, r, d: None, 3, "refcount-mismatch", True, True),
    "delete-cut-before-unlink": (lambda s, r, d: _set_refs(r, d, 0), 0,
                                 "orphan-blob", True, False),
    "delete-cut-after-unlink": (lambda s, r, d: (_set_refs(r, d, 0),
                                                 os.unlink(s.blob_path(d))), 0,
                                "stale-refs", True, False),
    "bytes-lost-in-use": (lambda s, r, d: os.unlink(s.blob_path(d)), 1,
                          "missing-blob", False, False),
    "bytes-lost-unused": (lambda s, r, d: os.unlink(s.blob_path(d)), 0,
                          "missing-blob", True, False),
    "truncated-in-use": (lambda s, r, d: _truncate(s.blob_path(d)), 1,
                         "size-mismatch", False, True),
    "truncated-unused": (lambda s, r, d: _truncate(s.blob_path(d)), 0,
                         "size-mismatch", True, False),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_check_finds_and_repair_fixes(store: FilesystemAssetstore, refs: Collection,
                                      name: str) -> None:
    damage, live, kind, fixable, kept = SCENARIOS[name]
    blob = put(store, payload(3000, seed=len(name)))
    digest = blob["sha512"]
    damage(store, refs, digest)
    live_refs = {digest: live} if live else {}
    problems = store.check(set(), live_refs)
    assert kinds(problems) == [(kind, digest)]
    left = store.repair(problems, live_references=live_refs)
    assert left == ([] if fixable else problems)
    assert os.path.exists(store.blob_path(digest)) == kept
    if fixable:
        assert store.check(set(), live_refs) == []
        doc = refs.find_one({"_id": f"as1:{digest}"})
        assert (doc["refs"] if doc else 0) == live


def test_deep_check_finds_rot(store: FilesystemAssetstore) -> None:
    blob = put(store, payload(4000, seed=2))
    digest = blob["sha512"]
    _flip_byte(store.blob_path(digest))
    assert store.check(set(), {digest: 1}) == []  # same size: only a re-hash sees it
    problems = store.check(set(), {digest: 1}, deep=True)
    assert kinds(problems) == [("hash-mismatch", digest)]
    assert store.repair(problems, live_references={digest: 1}) == problems
    assert store.repair(problems, live_references={}) == []
    assert not os.path.exists(store.blob_path(digest))
    assert store.check(set(), {}, deep=True) == []


def test_work_in_flight_is_left_alone(store: FilesystemAssetstore) -> None:
    blob = put(store, payload(100))  # finalized; its file record is "not yet" created
    upload = begin(store, 50)  # its upload record is "not yet" visible
    settled = time.time() - 600
    assert store.check(set(), {}, settled_before=settled) == []
    problems = store.check(set(), {})
    assert kinds(problems) == sorted([("refcount-mismatch", blob["sha512"]),
                                      ("stale-temp", upload["_id"])])
    assert store.repair(problems, live_references={}, settled_before=settled) == problems
    assert os.path.exists(store.local_path(blob) or "")
    assert store.upload_offset(upload) == 0
    temp = os.path.join(store.root, upload["state"]["tempPath"])
    os.utime(temp, (settled - 60, settled - 60))  # abandoned long ago
    problems = store.check(set(), {blob["sha512"]: 1}, settled_before=settled)
    assert kinds(problems) == [("stale-temp", upload["_id"])]
    assert store.repair(problems, live_references={blob["sha512"]: 1}) == []
    assert not os.path.exists(temp)


def test_unknown_files_are_reported_not_removed(store: FilesystemAssetstore) -> None:
    strays = ["zz", "ab/cd/notes.txt", "temp/core"]
    for stray in strays:
        path = Path(store.root, stray)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("?")
    problems = store.check(set())
    assert kinds(problems) == sorted(("unknown-file", s) for s in strays)
    assert store.repair(problems, live_references={}) == problems
    assert all(Path(store.root, s).exists() for s in strays)


def test_check_pages_through_many_blobs(store: FilesystemAssetstore,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from joist.core.assetstores import filesystem_check
    monkeypatch.setattr(filesystem_check, "_PAGE", 3)
    blobs = [put(store, payload(10, seed=i)) for i in range(10)]
    live = {b["sha512"]: 1 for b in blobs}
    assert store.check(set(), live) == []
    gone = sorted(live)[7]
    del live[gone]
    assert kinds(store.check(set(), live)) == [("refcount-mismatch", gone)]
