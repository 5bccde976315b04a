"""Parts of the GridFS assetstore (``gridfs.py``) that stand on their own: a
writer's lease on an upload document, the running SHA-512 of uploads, and the
positional blob reader."""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo import errors as mongo_errors

from ..db.engine import Document
from ..db.mongo import mongo_errors_mapped
from ..errors import ConflictError, NotFoundError, StorageError
from .base import BlobReader

__all__ = ["GridFSBlobReader", "Lease", "UploadHashes", "now_ms"]

log = logging.getLogger(__name__)


def now_ms() -> datetime:
    """Now, UTC, to the millisecond (what BSON keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Lease:
    """One writer's hold on an upload document: ``lockToken`` and ``lockUntil``."""

    def __init__(self, uploads: Any, lease: timedelta, upload_id: str, token: str,
                 doc: Document) -> None:
        self.uploads, self.lease = uploads, lease
        self.upload_id, self.token, self.doc = upload_id, token, doc
        self._renew_at = time.monotonic() + lease.total_seconds() / 3

    @classmethod
    def claim(cls, uploads: Any, upload_id: str, lease: timedelta, *,
              finalizing: bool = False) -> Lease:
        """Take the upload's lease, waiting (bounded) for a writer to finish or
        for a dead one's lease to run out. ``finalizing`` also takes over a
        finalize that died past its commit point."""
        token = uuid.uuid4().hex
        states = ["open", "committing"] if finalizing else ["open"]
        deadline = time.monotonic() + lease.total_seconds() + 10
        pause = 0.005
        while True:
            now = now_ms()
            doc = uploads.find_one_and_update(
                {"_id": upload_id, "state": {"$in": states},
                 "$or": [{"lockUntil": None}, {"lockUntil": {"$lt": now}}]},
                {"$set": {"lockToken": token, "lockUntil": now + lease}},
                return_document=ReturnDocument.AFTER)
            if doc is not None:
                return cls(uploads, lease, upload_id, token, doc)
            current = uploads.find_one({"_id": upload_id}, projection=["state"])
            if current is None or current.get("state") not in states:
                raise NotFoundError(f"Upload {upload_id} has no data here: it was "
                                    "finalized, aborted or never begun.")
            if time.monotonic() > deadline:
                raise ConflictError("Another request is still writing this upload; "
                                    "try again later.")
            time.sleep(pause)  # a bounded wait for the lease, not synchronisation
            pause = min(pause * 2, 0.25)

    def renew(self, changes: dict[str, Any] | None = None) -> None:
        """Extend the lease (and apply ``changes``), or fail if it was lost."""
        result = self.uploads.update_one(
            {"_id": self.upload_id, "lockToken": self.token},
            {"$set": {"lockUntil": now_ms() + self.lease, **(changes or {})}})
        if result.matched_count == 0:
            raise ConflictError("The upload was aborted, restarted or taken over by "
                                "another request meanwhile.")
        self._renew_at = time.monotonic() + self.lease.total_seconds() / 3

    def keep(self) -> None:
        """Renew when a third of the lease is spent: before writing a chunk."""
        if time.monotonic() >= self._renew_at:
            self.renew()

    def release(self) -> None:
        try:
            self.uploads.update_one({"_id": self.upload_id, "lockToken": self.token},
                                          {"$set": {"lockUntil": None},
                                           "$unset": {"lockToken": ""}})
        except mongo_errors.PyMongoError:  # the lease runs out by itself
            log.warning("could not release the lease on upload %s", self.upload_id)


class GridFSBlobReader(BlobReader):
    """Positional reads of one blob: exactly the chunks a range needs, in one
    query (GridFS's own reader streams from a position onwards, which costs a
    whole cursor batch per seek), and the last chunk kept for sequential
    readers."""

    def __init__(self, chunks: Any, doc: Document) -> None:
        super().__init__()
        self._chunks = chunks
        self._id = doc["_id"]
        self._size = int(doc["length"])
        self._cs = int(doc["chunkSize"])
        self._last: tuple[int, bytes] = (-1, b"")
        self._lock = threading.Lock()  # guards _last (the chunk read most recently)

    @property
    def size(self) -> int:
        return self._size

    def _expected(self, n: int) -> int:
        return min(self._cs, self._size - n * self._cs)

    def _read_range(self, offset: int, size: int) -> bytes:
        first, last = offset // self._cs, (offset + size - 1) // self._cs
        with self._lock:
            cached = self._last
        if first == last == cached[0]:
            pieces = [cached[1]]
        else:
            with mongo_errors_mapped("Reading a GridFS blob"):
                docs = list(self._chunks.find(
                    {"files_id": self._id, "n": {"$gte": first, "$lte": last}},
                    sort=[("n", 1)]))
            pieces = []
            for n, doc in enumerate(docs, first):
                data = bytes(doc["data"])
                if doc["n"] != n or len(data) != self._expected(n):
                    break
                pieces.append(data)
            if len(pieces) != last - first + 1:
                raise StorageError("The bytes of this file are missing or damaged "
                                   f"(chunk {first + len(pieces)}).")
            with self._lock:
                self._last = (last, pieces[-1])
        start = offset - first * self._cs
        return b"".join(pieces)[start:start + size] if len(pieces) > 1 \
            else pieces[0][start:start + size]


class UploadHashes:
    """The SHA-512 of each upload's first ``offset`` bytes, kept between calls
    (bounded); another process's progress or a restart costs a read of the
    part this one lacks, never more."""

    def __init__(self, chunks: Any, chunk_size: int, keep: int = 4096) -> None:
        self._chunks, self._cs, self._keep = chunks, chunk_size, keep
        self._hashes: OrderedDict[str, tuple[Any, int, Any]] = OrderedDict()
        self._lock = threading.Lock()  # guards _hashes (upload id -> incremental hasher)

    def at(self, upload_id: str, files_id: Any, offset: int) -> Any:
        """A hasher over the first ``offset`` bytes (copy it before updating)."""
        with self._lock:
            cached = self._hashes.get(upload_id)
        if cached is not None and cached[0] == files_id and cached[1] == offset:
            return cached[2]
        if cached is not None and cached[0] == files_id and cached[1] < offset:
            hasher, pos = cached[2].copy(), cached[1]
        else:
            hasher, pos = hashlib.sha512(), 0
        cs, n = self._cs, pos // self._cs
        for doc in self._chunks.find(
                {"files_id": files_id, "n": {"$gte": n, "$lt": math.ceil(offset / cs)}},
                sort=[("n", 1)]):
            if doc["n"] != n:
                raise StorageError(f"Chunk {n} of an upload is missing.")
            data = bytes(doc["data"])[pos - n * cs:offset - n * cs]
            hasher.update(data)
            pos, n = pos + len(data), n + 1
        if pos != offset:
            raise StorageError("The upload's chunks hold fewer bytes than counted.")
        return hasher

    def remember(self, upload_id: str, files_id: Any, offset: int, hasher: Any) -> None:
        with self._lock:
            self._hashes[upload_id] = (files_id, offset, hasher)
            self._hashes.move_to_end(upload_id)
            while len(self._hashes) > self._keep:
                self._hashes.popitem(last=False)

    def forget(self, upload_id: str) -> None:
        with self._lock:
            self._hashes.pop(upload_id, None)
