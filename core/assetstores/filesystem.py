"""The filesystem assetstore: content-addressed blobs on a local disk.

Layout under ``root``::

    temp/<uploadId>.part        bytes of an upload in progress
    temp/<uploadId>.done        the blob key a finalize installs, kept (and
                                flocked) until the file record exists
    ab/cd/<sha512>              a blob, named by the SHA-512 of its content
    pending/<uuid>              a large upload's blob not hashed yet, until its
                                hand-over (``filesystem_pending``)
    ab/cd/.lock                 flock target serialising changes to that bucket

Reference counts live in the metadata store (``BLOB_REFS_SPEC``), one document
per blob, so several processes can share one root. Every change of a blob's
existence or count from or to zero happens under its bucket's ``flock``, which
holds across processes of one machine (and over NFS where the server supports
locks); adding a reference to a live blob is one conditional increment.
Uploads of at least ``defer_hash_bytes`` are not hashed on the request's path:
they become pending blobs, hashed and deduplicated in the background.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from .. import faults
from ..db.engine import Collection, CollectionSpec, Index
from ..errors import (
    ConflictError,
    CoreError,
    NotFoundError,
    QuotaError,
    StorageError,
    ValidationError,
)
from .base import (
    AssetstoreAdapter,
    BlobReader,
    Capabilities,
    Capacity,
    Problem,
    UploadActivity,
)
from .filesystem_hashes import UploadHashes
from .filesystem_pending import PENDING_KEY_RE, PendingBlobs, RecordMover, pending_key
from .localio import LocalBlobReader, copy_stream, fsync_dir, locked, os_errors, storage_error
from .refcount import release_reference

__all__ = ["BLOB_REFS_SPEC", "FilesystemAssetstore"]

BLOB_REFS_SPEC = CollectionSpec(
    "blob_ref",
    indexes=(Index((("assetstoreId", 1), ("sha512", 1)), unique=True,
                   name="assetstoreId_sha512_unique"),),
)
"""Reference counts: ``{_id: "<assetstoreId>:<sha512>", assetstoreId, sha512,
size, refs, updated}``. ``updated`` (UTC) tells ``check`` what may be in flight."""

SHA512_RE = re.compile(r"^[0-9a-f]{128}$")
_UPLOAD_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
TEMP_DIR = "temp"
TEMP_SUFFIX = ".part"
DONE_SUFFIX = ".done"
LOCK_NAME = ".lock"
class FilesystemAssetstore(AssetstoreAdapter):
    """Blobs under ``root``; see the module docstring for the layout.

    ``perms`` applies to temp files and blobs. ``reserve_bytes`` of free space
    are kept: uploads that would eat into them are refused. ``sync_chunks``
    fdatasyncs every chunk so that ``upload_offset`` survives power loss, not
    only a process crash. Uploads of ``defer_hash_bytes`` or more (0: none)
    are hashed after their commit, by ``hand_over``.
    """

    capabilities = Capabilities(local_path=True, range_reads=True, server_side_copy=True,
                                dedup=True, resumable=True, presigned_download=False)

    def __init__(self, root: str | Path, *, refs: Collection, assetstore_id: str,
                 perms: int = 0o600, reserve_bytes: int = 0,
                 sync_chunks: bool = True, defer_hash_bytes: int = 0) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.refs = refs
        self.assetstore_id = str(assetstore_id)
        self.perms = perms
        self.reserve_bytes = max(0, int(reserve_bytes))
        self.sync_chunks = sync_chunks
        self.defer_hash_bytes = max(0, int(defer_hash_bytes))
        self.temp_root = os.path.join(self.root, TEMP_DIR)
        with os_errors(f"Creating assetstore root {self.root}"):
            os.makedirs(self.temp_root, exist_ok=True)
        self._hashes = UploadHashes()
        from .filesystem_recovery import FinalizeRecovery
        self._recovery = FinalizeRecovery(self)
        self.pending = PendingBlobs(self)

    # -- naming ---------------------------------------------------------------
    def ref_id(self, sha512: str) -> str:
        return f"{self.assetstore_id}:{sha512}"

    def bucket_dir(self, sha512: str) -> str:
        return os.path.join(self.root, sha512[:2], sha512[2:4])

    def blob_path(self, sha512: str) -> str:
        return os.path.join(self.bucket_dir(sha512), sha512)

    def bucket_lock(self, sha512: str) -> str:
        """The lock file for ``sha512``'s bucket (created with the bucket)."""
        bucket = self.bucket_dir(sha512)
        os.makedirs(bucket, exist_ok=True)
        return os.path.join(bucket, LOCK_NAME)

    def key_path(self, key: str) -> str:
        """Where the blob with key ``key`` (a sha512 or ``pending/<uuid>``) lives."""
        return self.pending.path(key) if PENDING_KEY_RE.match(key) else self.blob_path(key)

    def key_lock(self, key: str) -> str:
        return self.pending.lock(key) if PENDING_KEY_RE.match(key) else self.bucket_lock(key)

    def blob_fields(self, key: str) -> dict[str, Any]:
        """The file record's blob fields for the blob ``key``."""
        if PENDING_KEY_RE.match(key):
            return self.pending.fields(key)
        return {"sha512": key, "path": _relpath(key)}

    def _defers(self, size: int) -> bool:
        return 0 < self.defer_hash_bytes <= size

    def temp_path(self, upload_id: str) -> str:
        return os.path.join(self.temp_root, upload_id + TEMP_SUFFIX)

    def done_path(self, upload_id: str) -> str:
        return os.path.join(self.temp_root, upload_id + DONE_SUFFIX)

    # -- uploads --------------------------------------------------------------
    def begin_upload(self, upload: dict[str, Any]) -> dict[str, Any]:
        upload_id, size = _upload_id(upload), _upload_size(upload)
        free = self.capacity().free
        if free is not None and free < size:
            raise QuotaError(f"Not enough free space for {size} bytes "
                             f"({free} available on the assetstore).")
        path = self.temp_path(upload_id)
        self._forget_hash(upload_id)
        with os_errors("Starting an upload"):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, self.perms)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # wait out a writer of a previous attempt
                os.ftruncate(fd, 0)
                os.fchmod(fd, self.perms)  # the umask must not decide
            finally:
                os.close(fd)
            fsync_dir(self.temp_root)
        # A fresh generation invalidates every process's cached hasher, even
        # when the kernel reuses the inode number.
        return {"tempPath": f"{TEMP_DIR}/{upload_id}{TEMP_SUFFIX}",
                "generation": uuid.uuid4().hex}

    def write_chunk(self, upload: dict[str, Any], offset: int, stream: BinaryIO,
                    length: int | None = None) -> tuple[int, dict[str, Any]]:
        upload_id, size = _upload_id(upload), _upload_size(upload)
        state = self._state(upload)
        if offset < 0 or (length is not None and length < 0):
            raise ValidationError(f"Invalid offset {offset} or length {length}.")
        fd = self._open_temp(upload_id)
        try:
            current = self._lock_temp(fd)
            if offset != current:
                raise ConflictError(f"Server has received {current} bytes, "
                                    f"but client sent offset {offset}.")
            if length is not None and offset + length > size:
                raise ValidationError("Received too many bytes.")
            # A large upload is hashed after its commit (a streaming one of
            # unknown length counts as large); a cached hasher lags harmlessly.
            hasher = None if self._defers(size) else \
                self._hashes.at(upload_id, state["generation"], fd, offset).copy()
            try:
                end = copy_stream(fd, offset, stream, length, size, hasher)
                if self.sync_chunks:
                    os.fdatasync(fd)
            except BaseException as exc:
                self._roll_back(fd, offset, exc)
                if isinstance(exc, OSError) and not isinstance(exc, CoreError):
                    raise storage_error(exc, "Writing an upload chunk") from exc
                raise
            if hasher is not None:
                self._hashes.remember(upload_id, state["generation"], end, hasher)
        finally:
            os.close(fd)
        return end, state

    def upload_offset(self, upload: dict[str, Any]) -> int:
        try:
            fd = self._open_temp(_upload_id(upload))
        except NotFoundError:
            # A finalize installed every byte and was interrupted: complete
            # the upload to resume it.
            self._recovery.installed(upload)
            return _upload_size(upload)
        try:
            return self._lock_temp(fd, shared=True)  # waits for a chunk in flight
        finally:
            os.close(fd)

    def finalize_upload(self, upload: dict[str, Any]) -> dict[str, Any]:
        upload_id, size = _upload_id(upload), _upload_size(upload)
        state = self._state(upload)
        try:
            fd = self._open_temp(upload_id)
        except NotFoundError:  # no temp file: perhaps a finalize to resume
            return self._recovery.resume(upload)
        try:
            received = self._lock_temp(fd)
            if received != size:
                raise ConflictError(f"Server has received {received} bytes, "
                                    f"but the upload is {size} bytes.")
            if self._defers(size):
                key = self.pending.new_key()
            else:  # (re-read when deferred chunks were not hashed: it is small)
                key = self._hashes.at(upload_id, state["generation"], fd, size).hexdigest()
            with os_errors("Finalizing an upload"):
                os.fchmod(fd, self.perms)
                os.fsync(fd)  # the content must be durable before its name is
                self._recovery.mark(upload_id, key)
                try:
                    faults.point("upload.finalize.before_rename")
                    if PENDING_KEY_RE.match(key):
                        self.pending.install(key, self.temp_path(upload_id), size)
                    else:
                        self._install(key, self.temp_path(upload_id), size)
                except BaseException:
                    self._recovery.release(upload_id)  # the temp file is still the truth
                    raise
                try:
                    fsync_dir(self.temp_root)
                except BaseException:
                    self._recovery.unhold(upload_id)  # installed: a retry resumes
                    raise
        finally:
            os.close(fd)
        self._forget_hash(upload_id)
        return {"size": size, **self.blob_fields(key)}

    def abort_upload(self, upload: dict[str, Any]) -> None:
        upload_id = _upload_id(upload)
        self._forget_hash(upload_id)
        with os_errors("Aborting an upload"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp_path(upload_id))
            self._recovery.release(upload_id)

    def forget_upload(self, upload: dict[str, Any]) -> None:
        with os_errors("Ending an upload"):
            self._recovery.release(_upload_id(upload))

    def upload_activity(self, upload: dict[str, Any]) -> UploadActivity:
        return self._recovery.activity(upload)

    def untracked_uploads(self, known: AbstractSet[str], *, older_than: float | None = None,
                          delete: bool = False) -> list[dict[str, Any]]:
        from .filesystem_check import FilesystemChecker
        return FilesystemChecker(self).untracked(known, older_than=older_than, delete=delete)

    # -- blobs ----------------------------------------------------------------
    def open_read(self, blob: Mapping[str, Any]) -> BlobReader:
        size = blob.get("size")
        if (key := pending_key(blob)) is not None:
            return self.pending.open_read(key, size if isinstance(size, int) else None)
        return LocalBlobReader(self.blob_path(_sha512(blob)),
                               expected_size=size if isinstance(size, int) else None)

    def add_reference(self, blob: Mapping[str, Any]) -> None:
        """One more reference to live bytes. No bucket lock: the conditional
        increment alone is atomic against a release (a count at 0 is never
        raised again here), and a caller may hold a store transaction, which
        must never wait for a lock whose holder waits for the store."""
        if (key := pending_key(blob)) is not None:
            return self.pending.add_reference(key)
        digest = _sha512(blob)
        with os_errors("Adding a blob reference"):
            if not os.path.exists(self.blob_path(digest)):
                raise StorageError(f"The bytes of blob {digest[:16]}... are missing.")
        result = self.refs.update_one(
            {"_id": self.ref_id(digest), "refs": {"$gt": 0}},
            {"$inc": {"refs": 1}, "$set": {"updated": _now()}})
        if result.matched == 0:
            # Counting from an unknown base could undercount and later delete
            # bytes still in use; ``joist check`` restores the count first.
            raise StorageError(f"Blob {digest[:16]}... has no reference count; "
                               "run `joist check --repair`.")

    def delete(self, blob: Mapping[str, Any]) -> None:
        if (key := pending_key(blob)) is not None:
            return self.pending.delete(key)
        digest = _sha512(blob)
        def unlink(_doc: Mapping[str, Any]) -> bool:
            self._unlink_blob(digest)
            return True

        with os_errors("Deleting a blob"), locked(self.bucket_lock(digest)):
            release_reference(self.refs, self.ref_id(digest), digest, self.assetstore_id,
                              unlink)

    def capacity(self) -> Capacity:
        with os_errors("Reading assetstore capacity"):
            usage = shutil.disk_usage(self.root)
        return Capacity(total=usage.total, free=max(0, usage.free - self.reserve_bytes),
                        used=usage.used)

    def local_path(self, blob: Mapping[str, Any]) -> str | None:
        if (key := pending_key(blob)) is not None:
            return self.pending.local_path(key)
        return self.blob_path(_sha512(blob))

    # -- pending blobs ----------------------------------------------------------
    def hand_over(self, blob: Mapping[str, Any], records: RecordMover) -> str | None:
        """Hash a pending blob and move its records to its content address
        (``filesystem_pending``); the digest when done, None while references
        to the pending blob remain. A blob that is not pending: its sha512."""
        key = pending_key(blob)
        return _sha512(blob) if key is None else self.pending.hand_over(key, records)

    def prune_tombstones(self) -> int:
        """Drop the redirects of hand-overs older than ``filesystem_pending.GRACE``."""
        return self.pending.prune()

    def pending_blobs(self) -> list[dict[str, Any]]:
        """Blob fields of every pending blob with a live count (for sweeps)."""
        return [self.pending.fields(doc["sha512"]) for doc in self.pending.docs()
                if doc.get("refs", 0) > 0 and not doc.get("movedTo")
                and PENDING_KEY_RE.match(str(doc.get("sha512")))]

    # -- consistency ----------------------------------------------------------
    def check(self, live_uploads: AbstractSet[str],
              live_references: Mapping[str, int] | None = None, *,
              settled_before: float | None = None, deep: bool = False) -> list[Problem]:
        from .filesystem_check import FilesystemChecker
        return FilesystemChecker(self).check(live_uploads, live_references,
                                             settled_before=settled_before, deep=deep)

    def repair(self, problems: Iterable[Problem], *, live_references: Mapping[str, int],
               settled_before: float | None = None) -> list[Problem]:
        from .filesystem_check import FilesystemChecker
        return FilesystemChecker(self).repair(problems, live_references=live_references,
                                              settled_before=settled_before)

    # -- internals ------------------------------------------------------------
    def _install(self, digest: str, temp: str, size: int) -> None:
        """Move a complete, synced temp file into place and count a reference,
        under the bucket lock. Crash-wise: dedup counts before dropping the temp
        file, a new blob is renamed before it is counted, so an interruption
        leaves at worst an uncounted blob or a count too high (both repaired by
        ``check``), never a count for bytes that are not there."""
        final = self.blob_path(digest)
        with locked(self.bucket_lock(digest)):
            try:
                existing: int | None = os.stat(final).st_size
            except FileNotFoundError:
                existing = None
            if existing == size:
                self._count_new_reference(digest, size)
                os.unlink(temp)
                return
            # Absent, or a damaged copy of wrong length: replace atomically.
            os.rename(temp, final)
            fsync_dir(self.bucket_dir(digest))
            faults.point("upload.finalize.after_rename")
            try:
                self._count_new_reference(digest, size)
            except BaseException:
                if existing is None:  # (a healed damaged copy stays healed)
                    os.rename(final, temp)  # keep the upload retryable
                raise

    def _count_new_reference(self, digest: str, size: int) -> None:
        self.refs.update_one(
            {"_id": self.ref_id(digest)},
            {"$inc": {"refs": 1}, "$set": {"updated": _now()},
             "$setOnInsert": {"assetstoreId": self.assetstore_id, "sha512": digest,
                              "size": size}},
            upsert=True)

    def _unlink_blob(self, digest: str) -> None:
        try:
            os.unlink(self.blob_path(digest))
        except FileNotFoundError:
            return
        fsync_dir(self.bucket_dir(digest))

    def _state(self, upload: Mapping[str, Any]) -> dict[str, Any]:
        state = upload.get("state")
        upload_id = _upload_id(upload)
        if not isinstance(state, dict) or not isinstance(state.get("generation"), str) \
                or state.get("tempPath") != f"{TEMP_DIR}/{upload_id}{TEMP_SUFFIX}":
            raise ValidationError("The upload has no valid filesystem assetstore state.")
        return state

    def _open_temp(self, upload_id: str) -> int:
        try:
            return os.open(self.temp_path(upload_id), os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise NotFoundError(f"Upload {upload_id} has no data here: it was "
                                "finalized, aborted or never begun.") from exc
        except OSError as exc:
            raise storage_error(exc, "Opening an upload") from exc

    @staticmethod
    def _lock_temp(fd: int, *, shared: bool = False) -> int:
        """Lock the temp file (one writer per upload, across processes) and
        return its size: the bytes received."""
        with os_errors("Locking an upload"):
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            st = os.fstat(fd)
        if st.st_nlink == 0:  # aborted or finalized while we waited
            raise NotFoundError("The upload was finalized or aborted meanwhile.")
        return st.st_size

    def _roll_back(self, fd: int, offset: int, cause: BaseException) -> None:
        try:
            os.ftruncate(fd, offset)
            if self.sync_chunks:
                os.fdatasync(fd)
        except OSError as exc:
            raise StorageError(f"Rolling back a failed chunk ({cause}) failed too: "
                               f"{exc}") from cause

    def _forget_hash(self, upload_id: str) -> None:
        self._hashes.forget(upload_id)


def _now() -> datetime:
    return datetime.now(UTC)


def _relpath(digest: str) -> str:
    return f"{digest[:2]}/{digest[2:4]}/{digest}"


def _upload_id(upload: Mapping[str, Any]) -> str:
    upload_id = str(upload.get("_id", ""))
    if not _UPLOAD_ID_RE.match(upload_id):
        raise ValidationError(f"Invalid upload id {upload_id!r}.")
    return upload_id


def _upload_size(upload: Mapping[str, Any]) -> int:
    size = upload.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValidationError(f"Invalid upload size {size!r}.")
    return size


def _sha512(blob: Mapping[str, Any]) -> str:
    digest = blob.get("sha512")
    if not isinstance(digest, str) or not SHA512_RE.match(digest):
        raise ValidationError("The file record has no valid sha512.")
    return digest
