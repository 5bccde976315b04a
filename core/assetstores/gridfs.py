"""The GridFS assetstore: blobs in a MongoDB database, in GridFS's own layout.

Collections of bucket ``fs`` (the default)::

    fs.files    one document per blob, GridFS's fields (_id, length, chunkSize,
                uploadDate, filename = the SHA-512) plus metadata {sha512, refs,
                updated}: the blob's reference count lives on the blob itself
    fs.chunks   {files_id, n, data}: 1 MiB pieces, unique on (files_id, n)
    fs.uploads  one document per upload in progress: {_id: upload id, filesId,
                received, state, lockToken, lockUntil, updated}

Any GridFS reader (pymongo's ``gridfs``, ``mongofiles``) can read a finished
blob. An upload writes its chunks under a fresh ``filesId`` (one per
``begin_upload``) straight into ``fs.chunks``; ``finalize_upload`` either
counts one more reference on a live blob of the same content (and drops its
chunks: dedup by SHA-512) or inserts the ``fs.files`` document, which makes
those chunks a blob without moving a byte.

Several processes share one upload safely: a writer holds a lease on the
upload document (``lockToken``/``lockUntil``, renewed as it goes), the
offset to resume from is ``received`` on that document, committed only when a
whole ``write_chunk`` has landed (so a failed or killed call leaves nothing
counted), and a unique index on live blobs' SHA-512 (``refs > 0``) lets one
of two concurrent identical finalizes insert the blob while the other counts
on it. Crash ordering follows ``base.py``: a crash can leave a count too high
or bytes nothing counts, which ``check``/``repair`` (``gridfs_check.py``) find
and fix, never a count on bytes that are gone.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import timedelta
from typing import Any, BinaryIO, ParamSpec, TypeVar

from bson import ObjectId
from bson.codec_options import CodecOptions
from pymongo import ReturnDocument
from pymongo import errors as mongo_errors

from ..db.engine import Document, Engine
from ..db.mongo import MongoEngine, mongo_errors_mapped
from ..errors import (
    ConflictError,
    CoreError,
    NotFoundError,
    QuotaError,
    StorageError,
    ValidationError,
)
from .base import BLOCK_SIZE, AssetstoreAdapter, BlobReader, Capabilities, Capacity, Problem
from .filesystem import _sha512, _upload_id, _upload_size
from .gridfs_io import GridFSBlobReader, Lease, UploadHashes, now_ms

__all__ = ["CHUNK_SIZE", "GridFSAssetstore", "GridFSBlobReader"]

log = logging.getLogger(__name__)

CHUNK_SIZE = BLOCK_SIZE  # 1 MiB: few documents, far below MongoDB's 16 MiB cap
_COMMIT_TRIES = 50  # finalize racing identical finalizes and deletes
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _mapped(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with mongo_errors_mapped("GridFS assetstore"):
            return fn(*args, **kwargs)
    return wrapper


class GridFSAssetstore(AssetstoreAdapter):
    """Blobs in ``database`` under ``bucket`` (see the module docstring).

    ``lease_s`` is how long a writer that stopped answering (a killed process)
    keeps others off its upload.
    """

    capabilities = Capabilities(local_path=False, range_reads=True, server_side_copy=True,
                                dedup=True, resumable=True, presigned_download=False)

    def __init__(self, database: Any, *, bucket: str = "fs", assetstore_id: str = "",
                 chunk_size: int = CHUNK_SIZE, lease_s: float = 30.0,
                 client_to_close: Any = None) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", bucket):
            raise ValidationError(f"Invalid GridFS bucket name {bucket!r}.", field="bucket")
        if not 1 <= chunk_size <= 8 * BLOCK_SIZE:
            raise ValidationError("GridFS chunk size must be between 1 byte and 8 MiB.")
        self.db = database
        self.bucket = bucket
        self.assetstore_id = str(assetstore_id)
        self.chunk_size = chunk_size
        self.lease = timedelta(seconds=lease_s)
        self.files = database.get_collection(f"{bucket}.files")
        self.chunks = database.get_collection(f"{bucket}.chunks")
        self.uploads = database.get_collection(f"{bucket}.uploads")
        self._client_to_close = client_to_close
        self.hashes = UploadHashes(self.chunks, chunk_size)
        with mongo_errors_mapped("GridFS assetstore"):
            self._ensure_indexes()

    @classmethod
    def from_document(cls, doc: Document, engine: Engine) -> GridFSAssetstore:
        """The adapter an assetstore document describes (Girder's fields: ``db``,
        ``mongohost``, ``replicaset``; ours: ``bucket``). Without ``mongohost``
        the metadata store's own MongoDB connection is used."""
        uri = str(doc.get("mongohost") or "")
        client: Any = None
        owned: Any = None
        if uri:
            import pymongo
            options: dict[str, Any] = {}
            if doc.get("replicaset"):
                options["replicaSet"] = str(doc["replicaset"])
            with mongo_errors_mapped("GridFS assetstore connection"):
                client = owned = pymongo.MongoClient(uri, tz_aware=True, retryWrites=True,
                                                     retryReads=True, appname="joist",
                                                     **options)
        elif isinstance(engine, MongoEngine):
            client = engine.client
        else:
            raise ValidationError("A GridFS assetstore needs a MongoDB URI (mongohost) when "
                                  "the metadata store is not MongoDB.", field="mongohost")
        default_db = engine.database_name if isinstance(engine, MongoEngine) else "joist"
        database = client.get_database(str(doc.get("db") or default_db),
                                       codec_options=CodecOptions(tz_aware=True))
        return cls(database, bucket=str(doc.get("bucket") or "fs"),
                   assetstore_id=str(doc["_id"]), client_to_close=owned)

    def probe(self) -> None:
        """``StorageError`` unless the MongoDB server answers (checked before an
        assetstore document is created)."""
        with mongo_errors_mapped("GridFS assetstore"):
            self.db.command("ping")

    def close(self) -> None:
        if self._client_to_close is not None:
            self._client_to_close.close()

    def _ensure_indexes(self) -> None:
        wanted: list[tuple[Any, list[tuple[str, int]], dict[str, Any]]] = [
            (self.chunks, [("files_id", 1), ("n", 1)], {"unique": True, "name": "files_id_1_n_1"}),
            (self.files, [("filename", 1), ("uploadDate", 1)], {"name": "filename_1_uploadDate_1"}),
            # One live blob per content: the arbiter of concurrent finalizes.
            (self.files, [("metadata.sha512", 1)],
             {"unique": True, "name": "live_sha512",
              "partialFilterExpression": {"metadata.refs": {"$gt": 0}}}),
        ]
        for coll, keys, opts in wanted:
            have = coll.index_information().get(opts["name"])
            if have is None or [(k, int(d)) for k, d in have["key"]] != keys:
                coll.create_index(keys, **opts)

    # -- uploads ------------------------------------------------------------
    @_mapped
    def begin_upload(self, upload: dict[str, Any]) -> dict[str, Any]:
        upload_id, size = _upload_id(upload), _upload_size(upload)
        free = self.capacity().free
        if free is not None and free < size:
            raise QuotaError(f"Not enough free space for {size} bytes "
                             f"({free} available on the assetstore).")
        files_id, generation = ObjectId(), uuid.uuid4().hex
        self.hashes.forget(upload_id)
        # The new attempt replaces the old one and its lease: a writer of the
        # old attempt fails its next renewal and stops.
        old = self.uploads.find_one_and_update(
            {"_id": upload_id},
            {"$set": {"filesId": files_id, "generation": generation, "received": 0,
                      "state": "open", "lockUntil": None, "updated": now_ms()},
             "$unset": {"lockToken": "", "sha512": ""}},
            upsert=True, return_document=ReturnDocument.BEFORE)
        if old is not None and old.get("filesId") is not None:
            self.drop_chunks(old["filesId"])
        return {"filesId": str(files_id), "generation": generation, "bucket": self.bucket}

    @_mapped
    def write_chunk(self, upload: dict[str, Any], offset: int, stream: BinaryIO,
                    length: int | None = None) -> tuple[int, dict[str, Any]]:
        upload_id, size = _upload_id(upload), _upload_size(upload)
        state = _state(upload)
        if offset < 0 or (length is not None and length < 0):
            raise ValidationError(f"Invalid offset {offset} or length {length}.")
        lease = self._claim(upload_id)
        try:
            received, files_id = int(lease.doc["received"]), lease.doc["filesId"]
            if offset != received:
                raise ConflictError(f"Server has received {received} bytes, "
                                    f"but client sent offset {offset}.")
            if length is not None and offset + length > size:
                raise ValidationError("Received too many bytes.")
            hasher = self.hashes.at(upload_id, files_id, offset).copy()
            end = self._copy(lease, files_id, offset, stream, length, size, hasher)
            # The commit point: until here, the chunks written are not counted.
            lease.renew({"received": end, "updated": now_ms()})
            self.hashes.remember(upload_id, files_id, end, hasher)
        finally:
            lease.release()
        return end, state

    def _copy(self, lease: Lease, files_id: Any, offset: int, stream: BinaryIO,
              length: int | None, size: int, hasher: Any) -> int:
        """Stream into chunks from ``offset``; returns the new end. A chunk is
        written whole; the partial chunk ``offset`` falls in is rewritten with
        its first bytes kept."""
        cs = self.chunk_size
        n, kept = divmod(offset, cs)
        buf = bytearray(self._chunk_prefix(files_id, n, kept)) if kept else bytearray()
        pos, remaining = offset, length
        while remaining is None or remaining > 0:
            want = cs - len(buf) if remaining is None else min(cs - len(buf), remaining)
            try:
                data = stream.read(want) or b""
            except CoreError:
                raise
            except Exception as exc:
                raise StorageError(f"The upload stream failed after {pos - offset} bytes: "
                                   f"{exc}") from exc
            if not data:
                break
            if pos + len(data) > size:
                raise ValidationError("Received too many bytes.")
            hasher.update(data)
            buf += data
            pos += len(data)
            if remaining is not None:
                remaining -= len(data)
            if len(buf) >= cs:
                self._put_chunk(lease, files_id, n, bytes(buf))
                n, buf = n + 1, bytearray()
        if remaining:
            raise ValidationError(f"Expected {length} bytes, the stream ended after "
                                  f"{pos - offset}.")
        if buf and n * cs + len(buf) > offset:
            self._put_chunk(lease, files_id, n, bytes(buf))
        return pos

    def _chunk_prefix(self, files_id: Any, n: int, kept: int) -> bytes:
        doc = self.chunks.find_one({"files_id": files_id, "n": n})
        data = bytes(doc["data"]) if doc is not None else b""
        if len(data) < kept:
            raise StorageError(f"Chunk {n} of an upload holds {len(data)} bytes, "
                               f"fewer than the {kept} counted.")
        return data[:kept]

    def _put_chunk(self, lease: Lease, files_id: Any, n: int, data: bytes) -> None:
        lease.keep()
        self.chunks.replace_one({"files_id": files_id, "n": n},
                                {"files_id": files_id, "n": n, "data": data}, upsert=True)

    @_mapped
    def upload_offset(self, upload: dict[str, Any]) -> int:
        upload_id = _upload_id(upload)
        doc = self.uploads.find_one({"_id": upload_id}, projection=["received", "state"])
        if doc is None or doc.get("state") != "open":
            raise NotFoundError(f"Upload {upload_id} has no data here: it was "
                                "finalized, aborted or never begun.")
        return int(doc["received"])

    @_mapped
    def finalize_upload(self, upload: dict[str, Any]) -> dict[str, Any]:
        upload_id, size = _upload_id(upload), _upload_size(upload)
        lease = self._claim(upload_id, finalizing=True)
        doc, files_id = lease.doc, lease.doc["filesId"]
        try:
            if int(doc["received"]) != size:
                raise ConflictError(f"Server has received {doc['received']} bytes, "
                                    f"but the upload is {size} bytes.")
            if doc["state"] == "open":
                digest = self.hashes.at(upload_id, files_id, size).hexdigest()
                self._trim(files_id, size)
                lease.renew({"state": "committing", "sha512": digest, "updated": now_ms()})
            else:  # a finalize that died past its commit point: finish its work
                digest = doc["sha512"]
        except BaseException:
            lease.release()
            raise
        # From "committing" on, no writer or abort touches these chunks; every
        # step below may be repeated by a retry (which resumes right away: the
        # lease is let go on failure).
        try:
            if doc.get("deduped") or (
                    self.files.count_documents({"_id": files_id}, limit=1) == 0
                    and self._commit(files_id, size, digest)):
                # Counted on an identical live blob: these chunks are not needed.
                self.uploads.update_one({"_id": upload_id}, {"$set": {"deduped": True}})
                self.drop_chunks(files_id)
            self.uploads.delete_one({"_id": upload_id})
        except BaseException:
            lease.release()
            raise
        self.hashes.forget(upload_id)
        return {"size": size, "sha512": digest}

    def _trim(self, files_id: Any, size: int) -> None:
        """Make the chunks exactly ``size`` bytes: calls that failed may have
        left bytes past the committed end."""
        count = math.ceil(size / self.chunk_size)
        self.chunks.delete_many({"files_id": files_id, "n": {"$gte": count}})
        if not count:
            return
        last, expected = count - 1, size - (count - 1) * self.chunk_size
        doc = self.chunks.find_one({"files_id": files_id, "n": last})
        data = bytes(doc["data"]) if doc is not None else b""
        if len(data) < expected:
            raise StorageError(f"Chunk {last} of the upload is missing bytes.")
        if len(data) > expected:
            self.chunks.replace_one({"_id": doc["_id"]},  # type: ignore[index]
                                    {"files_id": files_id, "n": last, "data": data[:expected]})

    def _commit(self, files_id: Any, size: int, digest: str) -> bool:
        """Count on a live blob of this content (True), or make the upload's
        chunks that blob (False)."""
        for _ in range(_COMMIT_TRIES):
            now = now_ms()
            if self.files.find_one_and_update(
                    {"metadata.sha512": digest, "metadata.refs": {"$gt": 0}},
                    {"$inc": {"metadata.refs": 1}, "$set": {"metadata.updated": now}},
                    projection=["_id"]) is not None:
                return True
            try:
                self.files.insert_one({
                    "_id": files_id, "length": size, "chunkSize": self.chunk_size,
                    "uploadDate": now, "filename": digest,
                    "metadata": {"sha512": digest, "refs": 1, "updated": now}})
                return False
            except mongo_errors.DuplicateKeyError:
                continue  # an identical finalize won meanwhile: count on its blob
        raise StorageError("Finalizing kept racing identical uploads; try again.")

    @_mapped
    def abort_upload(self, upload: dict[str, Any]) -> None:
        upload_id = _upload_id(upload)
        self.hashes.forget(upload_id)
        # A finalize past its commit point ("committing") owns the chunks now.
        doc = self.uploads.find_one_and_delete({"_id": upload_id, "state": "open"})
        if doc is not None:
            self.drop_chunks(doc["filesId"])

    def drop_chunks(self, files_id: Any) -> None:
        """Delete the chunks of an upload attempt, unless they became a blob."""
        if self.files.count_documents({"_id": files_id}, limit=1) == 0:
            self.chunks.delete_many({"files_id": files_id})

    # -- blobs --------------------------------------------------------------
    def live_blob(self, digest: str) -> Document | None:
        return self.files.find_one(  # type: ignore[no-any-return]
            {"metadata.sha512": digest, "metadata.refs": {"$gt": 0}})

    @_mapped
    def open_read(self, blob: Mapping[str, Any]) -> BlobReader:
        digest = _sha512(blob)
        doc = self.live_blob(digest)
        if doc is None:
            raise StorageError(f"The bytes of blob {digest[:16]}... are missing.")
        size = blob.get("size")
        if isinstance(size, int) and size != doc["length"]:
            raise StorageError(f"Blob {digest[:16]}... holds {doc['length']} bytes, "
                               f"the file record says {size}.")
        return GridFSBlobReader(self.chunks, doc)

    @_mapped
    def add_reference(self, blob: Mapping[str, Any]) -> None:
        digest = _sha512(blob)
        if self.files.find_one_and_update(
                {"metadata.sha512": digest, "metadata.refs": {"$gt": 0}},
                {"$inc": {"metadata.refs": 1}, "$set": {"metadata.updated": now_ms()}},
                projection=["_id"]) is None:
            raise StorageError(f"Blob {digest[:16]}... is not stored here any more.")

    @_mapped
    def delete(self, blob: Mapping[str, Any]) -> None:
        digest = _sha512(blob)
        doc = self.files.find_one_and_update(
            {"metadata.sha512": digest, "metadata.refs": {"$gt": 0}},
            {"$inc": {"metadata.refs": -1}, "$set": {"metadata.updated": now_ms()}},
            projection=["metadata.refs"], return_document=ReturnDocument.AFTER)
        if doc is None:
            log.warning("delete of blob %s in GridFS assetstore %s: not counted; left "
                        "for `joist check`", digest, self.assetstore_id)
            return
        if doc["metadata"]["refs"] > 0:
            return
        # Bytes first, then the document: a crash in between leaves a blob at
        # 0 references (stale-refs), never a counted blob without bytes.
        self.chunks.delete_many({"files_id": doc["_id"]})
        self.files.delete_one({"_id": doc["_id"], "metadata.refs": {"$lte": 0}})

    def capacity(self) -> Capacity:
        try:
            stats = self.db.command("dbStats")
            total, used = stats.get("fsTotalSize"), stats.get("fsUsedSize")
        except (mongo_errors.PyMongoError, NotImplementedError, TypeError):
            return Capacity(total=None, free=None, used=None)
        if not isinstance(total, int | float) or not isinstance(used, int | float):
            return Capacity(total=None, free=None, used=None)
        return Capacity(total=int(total), free=max(0, int(total - used)), used=int(used))

    # -- consistency (joist check) --------------------------------------------
    def check(self, live_uploads: AbstractSet[str],
              live_references: Mapping[str, int] | None = None, *,
              settled_before: float | None = None, deep: bool = False) -> list[Problem]:
        from .gridfs_check import GridFSChecker
        with mongo_errors_mapped("Checking the GridFS assetstore"):
            return GridFSChecker(self).check(live_uploads, live_references,
                                             settled_before=settled_before, deep=deep)

    def untracked_uploads(self, known: AbstractSet[str], *, older_than: float | None = None,
                          delete: bool = False) -> list[dict[str, Any]]:
        from .gridfs_check import GridFSChecker
        with mongo_errors_mapped("Listing untracked uploads"):
            return GridFSChecker(self).untracked(known, older_than=older_than, delete=delete)

    def repair(self, problems: Iterable[Problem], *, live_references: Mapping[str, int],
               settled_before: float | None = None) -> list[Problem]:
        from .gridfs_check import GridFSChecker
        with mongo_errors_mapped("Repairing the GridFS assetstore"):
            return GridFSChecker(self).repair(problems, live_references=live_references,
                                              settled_before=settled_before)

    # -- internals ------------------------------------------------------------
    def _claim(self, upload_id: str, *, finalizing: bool = False) -> Lease:
        return Lease.claim(self.uploads, upload_id, self.lease, finalizing=finalizing)


def _state(upload: Mapping[str, Any]) -> dict[str, Any]:
    state = upload.get("state")
    if not isinstance(state, dict) or not isinstance(state.get("filesId"), str):
        raise ValidationError("The upload has no valid GridFS assetstore state.")
    return state
