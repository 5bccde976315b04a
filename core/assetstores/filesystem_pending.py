"""Pending blobs of the filesystem assetstore: large uploads committed before
their SHA-512 is known, and the hand-over that later gives them their content
address.

Hashing every byte inline halves upload throughput (SHA-512 runs at about disk
speed on one core), so an upload of at least ``defer_hash_bytes`` is not hashed
while it arrives. Its finalize renames the temp file to ``pending/<uuid>`` and
counts one reference under the key ``pending/<uuid>``; the file record names it
with ``pending: <uuid>`` (no ``sha512``) and is served at once.

The hand-over (``hand_over``, run in the background) hashes the bytes, then,
under the pending blob's lock and then its bucket's lock:

1. hard-links the bytes to ``ab/cd/<sha512>``, or keeps the blob already there
   (deduplication); the pending name stays;
2. moves the file records one by one: one more reference on the content
   blob, the record's switch (``sha512``/``path`` set, ``pending`` unset, only
   if it still names the pending blob), one reference fewer on the pending
   blob. A crash between two steps leaves a count too high, never too low;
3. when no reference to the pending blob is left, turns its count document
   into a tombstone ``{refs: 0, movedTo: <sha512>}`` and unlinks the pending
   name. A reader that resolved the pending name just before reads the
   content blob through the tombstone, kept ``GRACE`` seconds: later
   hand-overs, the sweep at start and ``joist check --repair`` prune older
   ones (``prune``).

Deletes of a pending blob's records take the pending lock, so they wait for a
hand-over in progress; copies take no lock (their conditional increment fails
on a tombstone, and the copier re-reads the record, as for any replace).
References still held by in-flight copies or finalizes leave the pending blob
in place; the next hand-over (queued again, the sweep at start, or ``joist
check --repair``) moves what is left.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from .. import faults
from ..errors import StorageError
from .base import BLOCK_SIZE, BlobReader
from .localio import LocalBlobReader, fsync_dir, locked, os_errors

if TYPE_CHECKING:
    from .filesystem import FilesystemAssetstore

__all__ = ["GRACE", "PENDING_DIR", "PENDING_KEY_RE", "PendingBlobs", "RecordMover",
           "pending_key"]

PENDING_DIR = "pending"
PENDING_KEY_RE = re.compile(r"^pending/[0-9a-f]{32}$")
_UUID_RE = re.compile(r"^[0-9a-f]{32}$")
_LOCK_PREFIX = ".lock-"  # 256 lock stripes: lock files are never removed
_HASH_BLOCK = 4 * BLOCK_SIZE
_MOVE_PAGE = 500
_MOVE_ROUNDS = 64  # pages of records per hand-over: bounded even under a copy storm
GRACE = 600.0
"""Seconds a tombstone stays for readers of the pending name, and a pending
blob may wait for its hand-over before ``joist check`` reports it."""


class RecordMover(Protocol):
    """The file records of one assetstore, as the hand-over needs them."""

    def pointing(self, key: str, limit: int) -> list[Any]:
        """Ids of (at most ``limit``) records naming the pending blob ``key``."""

    def move(self, record_id: Any, key: str, fields: dict[str, Any]) -> bool:
        """Point the record at ``fields`` if it still names ``key``."""


def pending_key(blob: Mapping[str, Any]) -> str | None:
    """``pending/<uuid>`` for a record of a pending blob, else None."""
    value = blob.get("pending")
    if isinstance(value, str) and _UUID_RE.match(value):
        return f"{PENDING_DIR}/{value}"
    return None


class PendingBlobs:
    """The ``pending/`` directory of one filesystem assetstore."""

    def __init__(self, store: FilesystemAssetstore) -> None:
        self.store = store
        self.root = os.path.join(store.root, PENDING_DIR)
        with os_errors(f"Creating {self.root}"):
            os.makedirs(self.root, exist_ok=True)

    # -- naming ---------------------------------------------------------------
    @staticmethod
    def new_key() -> str:
        return f"{PENDING_DIR}/{uuid.uuid4().hex}"

    def path(self, key: str) -> str:
        return os.path.join(self.store.root, key)

    def lock(self, key: str) -> str:
        return os.path.join(self.root, _LOCK_PREFIX + key.rsplit("/", 1)[1][:2])

    @staticmethod
    def fields(key: str) -> dict[str, Any]:
        return {"pending": key.rsplit("/", 1)[1]}

    # -- finalize -------------------------------------------------------------
    def install(self, key: str, temp: str, size: int) -> None:
        """Rename a complete, synced temp file to the pending name and count
        its first reference (renamed before counted, as ``_install``)."""
        final = self.path(key)
        with locked(self.lock(key)):
            os.rename(temp, final)
            fsync_dir(self.root)
            faults.point("upload.finalize.after_rename")
            try:
                self.store._count_new_reference(key, size)
            except BaseException:
                os.rename(final, temp)  # keep the upload retryable
                raise

    # -- blobs ----------------------------------------------------------------
    def open_read(self, key: str, size: int | None) -> BlobReader:
        try:
            return LocalBlobReader(self.path(key), expected_size=size)
        except StorageError:
            moved = self.moved_to(key)
            if moved is None:
                raise
        # Handed over since the caller read its record: the same bytes.
        return LocalBlobReader(self.store.blob_path(moved), expected_size=size)

    def local_path(self, key: str) -> str:
        path = self.path(key)
        if not os.path.exists(path) and (moved := self.moved_to(key)) is not None:
            return self.store.blob_path(moved)
        return path

    def moved_to(self, key: str) -> str | None:
        doc = self.store.refs.find_one({"_id": self.store.ref_id(key)})
        moved = doc.get("movedTo") if doc is not None else None
        return moved if isinstance(moved, str) else None

    def add_reference(self, key: str) -> None:
        with os_errors("Adding a blob reference"):
            if not os.path.exists(self.path(key)):
                raise StorageError(f"The bytes of blob {key} are missing or were handed "
                                   "over to their content address.")
        result = self.store.refs.update_one(
            {"_id": self.store.ref_id(key), "refs": {"$gt": 0}},
            {"$inc": {"refs": 1}, "$set": {"updated": _now()}})
        if result.matched == 0:  # a tombstone: the copier re-reads its record
            raise StorageError(f"Blob {key} has no live reference count.")

    def delete(self, key: str) -> None:
        from .refcount import release_reference

        def unlink(_doc: Mapping[str, Any]) -> bool:
            self.unlink(key)
            return True

        with os_errors("Deleting a blob"), locked(self.lock(key)):
            release_reference(self.store.refs, self.store.ref_id(key), key,
                              self.store.assetstore_id, unlink)

    def unlink(self, key: str) -> None:
        try:
            os.unlink(self.path(key))
        except FileNotFoundError:
            return
        fsync_dir(self.root)

    # -- the hand-over --------------------------------------------------------
    def hand_over(self, key: str, records: RecordMover) -> str | None:
        """Give the pending blob ``key`` its content address (see the module
        docstring). Returns the digest once no reference to the pending blob
        is left (done, now or before), None while some remain (or when the
        blob is gone). Safe to run again at any point, and concurrently."""
        with os_errors("Handing a pending blob over"):
            hashed = self._hash(key)
            if hashed is None:
                return self.moved_to(key)
            digest, size = hashed
            with locked(self.lock(key)):
                doc = self.store.refs.find_one({"_id": self.store.ref_id(key)})
                if doc is None or doc.get("movedTo"):
                    return doc.get("movedTo") if doc is not None else None
                with locked(self.store.bucket_lock(digest)):
                    self._link(key, digest, size)
                    faults.point("blob.handover.after_link")
                    self._move_records(key, digest, size, records)
                    return self._retire(key, digest)

    def _hash(self, key: str) -> tuple[str, int] | None:
        """SHA-512 and size of the pending bytes (no lock: they never change)."""
        try:
            fd = os.open(self.path(key), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            with contextlib.suppress(OSError):  # only a hint
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            hasher, pos = hashlib.sha512(), 0
            buf = memoryview(bytearray(_HASH_BLOCK))
            while got := os.preadv(fd, [buf], pos):
                hasher.update(buf[:got])
                pos += got
                if pos % (16 * _HASH_BLOCK) == 0 and os.fstat(fd).st_nlink == 0:
                    return None  # deleted meanwhile: nothing to hand over
            return hasher.hexdigest(), pos
        finally:
            os.close(fd)

    def _link(self, key: str, digest: str, size: int) -> None:
        """Make ``ab/cd/<digest>`` hold the bytes: keep a blob of the right
        size already there (dedup), else hard-link the pending file (a damaged
        copy of the wrong size is replaced atomically)."""
        final = self.store.blob_path(digest)
        try:
            existing: int | None = os.stat(final).st_size
        except FileNotFoundError:
            existing = None
        if existing == size:
            return
        if existing is None:
            os.link(self.path(key), final)
        else:
            spare = f"{final}.{uuid.uuid4().hex}.link"
            os.link(self.path(key), spare)
            os.rename(spare, final)
        fsync_dir(self.store.bucket_dir(digest))

    def _move_records(self, key: str, digest: str, size: int, records: RecordMover) -> None:
        from .filesystem import _relpath
        fields = {"sha512": digest, "path": _relpath(digest)}
        refs, pending_id, blob_id = self.store.refs, self.store.ref_id(key), \
            self.store.ref_id(digest)
        for _ in range(_MOVE_ROUNDS):
            ids = records.pointing(key, _MOVE_PAGE)
            for record_id in ids:
                self.store._count_new_reference(digest, size)  # first: never too low
                faults.point("blob.handover.after_count")
                if records.move(record_id, key, fields):
                    faults.point("blob.handover.after_record")
                    refs.update_one({"_id": pending_id, "refs": {"$gt": 0}},
                                    {"$inc": {"refs": -1}, "$set": {"updated": _now()}})
                else:  # replaced or deleted meanwhile: take the count back (at 0,
                    # the link is an orphan `check` removes; the pending name stays)
                    refs.update_one({"_id": blob_id, "refs": {"$gt": 0}},
                                    {"$inc": {"refs": -1}, "$set": {"updated": _now()}})
            if len(ids) < _MOVE_PAGE:
                return

    def _retire(self, key: str, digest: str) -> str | None:
        """With no reference left, the count becomes a tombstone naming the
        content blob, then the pending name goes."""
        done = self.store.refs.update_one(
            {"_id": self.store.ref_id(key), "refs": {"$lte": 0}},
            {"$set": {"movedTo": digest, "refs": 0, "updated": _now()}})
        if not done.matched:
            return None  # an in-flight copy or finalize still holds it
        self.unlink(key)
        return digest

    def prune(self, limit: int = _MOVE_PAGE) -> int:
        """Drop tombstones older than ``GRACE`` (at most ``limit`` looked at);
        returns how many went."""
        cutoff = datetime.fromtimestamp(time.time() - GRACE, UTC)
        dropped = 0
        for seen, doc in enumerate(self.docs()):
            if seen >= limit:
                break
            if not doc.get("movedTo") or not isinstance(doc.get("updated"), datetime) \
                    or doc["updated"].replace(tzinfo=doc["updated"].tzinfo or UTC) >= cutoff:
                continue
            with locked(self.lock(doc["sha512"])):
                self.unlink(doc["sha512"])  # (a crash may have left the name)
                dropped += self.store.refs.delete_one(
                    {"_id": doc["_id"], "movedTo": {"$exists": True}})
        return dropped

    # -- listing (sweeps, joist check) ----------------------------------------
    def files(self) -> Iterator[tuple[str, int, float]]:
        """(key, size, mtime) of every pending file, and ("", 0, 0) per
        unexpected name (reported by ``check``)."""
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return
        for name in names:
            if name.startswith(_LOCK_PREFIX):
                continue
            path = os.path.join(self.root, name)
            if not _UUID_RE.match(name):
                yield name, -1, 0.0
                continue
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            yield f"{PENDING_DIR}/{name}", st.st_size, st.st_mtime

    def docs(self) -> Iterator[dict[str, Any]]:
        """The count documents (and tombstones) of pending blobs, in key order."""
        store = self.store
        last, high = store.ref_id(f"{PENDING_DIR}/"), store.ref_id(f"{PENDING_DIR}0")
        while True:
            page = store.refs.find({"_id": {"$gt": last, "$lt": high}},
                                   sort=[("_id", 1)], limit=_MOVE_PAGE)
            yield from page
            if len(page) < _MOVE_PAGE:
                return
            last = page[-1]["_id"]


def _now() -> Any:
    from .filesystem import _now as now
    return now()
