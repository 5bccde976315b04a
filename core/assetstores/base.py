"""The assetstore adapter contract: where the bytes of files live.

An adapter stores and serves blobs; it knows nothing of items, folders or ACLs.
The metadata store keeps two kinds of records that point at it:

* an **upload** record (a plain dict with at least ``_id``, ``size``,
  ``received`` and ``state``): ``state`` belongs to the adapter; it is returned
  by ``begin_upload``/``write_chunk`` and the caller persists it unchanged;
* a **file** record, whose blob fields (``size``, and e.g. ``sha512``/``path``)
  come from ``finalize_upload``. ``open_read``, ``add_reference``, ``delete``
  and ``local_path`` take that record (or any dict holding those fields).

Crash safety rests on the order in which callers and adapters write. Each
adapter call leaves either no visible change or a state ``check()`` reports and
``repair()`` fixes, provided the caller keeps to this order:

* upload: ``begin_upload`` -> persist state -> ``write_chunk``... ->
  ``finalize_upload`` -> create the file record -> delete the upload record
  -> ``forget_upload``. An adapter that can (the filesystem one) completes
  an upload whose finalize a crash interrupted when ``finalize_upload`` runs
  again, counting again a reference it may already have taken (too high,
  never too low);
* copy: ``add_reference(blob)`` first, then create the copy's file record;
* removal: delete the file record first, then ``delete(blob)``.

So a crash can only leave a reference count that is too *high* (bytes kept
too long, repairable), never one that is too low (bytes deleted under a file
record). Every method raises only ``joist.core.errors`` classes.
"""

from __future__ import annotations

import abc
import io
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, BinaryIO, ClassVar, Literal, overload

from ..errors import UnsupportedError, ValidationError

__all__ = [
    "BLOCK_SIZE", "AssetstoreAdapter", "BlobReader", "Capabilities", "Capacity",
    "ImportEntry", "Problem", "ProblemKind", "UploadActivity", "blob_key",
]

BLOCK_SIZE = 1 << 20
"""Adapters read upload streams in blocks of this size, never whole."""


@dataclass(frozen=True)
class Capabilities:
    """What an adapter can do beyond the contract's minimum (rclone's Features).

    ``local_path``: blobs are plain local files (FUSE/sendfile may use them).
    ``range_reads``: ``read_at`` is cheap at any offset.
    ``server_side_copy``: ``add_reference`` copies without moving bytes.
    ``dedup``: identical content is stored once.
    ``resumable``: ``upload_offset`` survives a restart of the process.
    ``presigned_download``: the backend can hand clients a direct URL.
    """

    local_path: bool
    range_reads: bool
    server_side_copy: bool
    dedup: bool
    resumable: bool
    presigned_download: bool


@dataclass(frozen=True)
class Capacity:
    """Space of an assetstore in bytes; ``None`` means unknown."""

    total: int | None
    free: int | None
    used: int | None


class ProblemKind(StrEnum):
    """What ``check()`` can find. Values are the strings ``joist check`` prints."""

    ORPHAN_BLOB = "orphan-blob"            # bytes nothing counts (or counts as 0)
    MISSING_BLOB = "missing-blob"          # counted or referenced bytes that are gone
    SIZE_MISMATCH = "size-mismatch"        # blob size differs from its refs document
    HASH_MISMATCH = "hash-mismatch"        # blob content differs from its name (deep check)
    REFCOUNT_MISMATCH = "refcount-mismatch"  # refs document disagrees with file records
    STALE_REFS = "stale-refs"              # refs document at 0 left by an interrupted delete
    STALE_TEMP = "stale-temp"              # temp upload data with no live upload record
    UNKNOWN_FILE = "unknown-file"          # something in the store the adapter did not write
    PENDING_HANDOVER = "pending-handover"  # bytes not hashed/deduplicated yet (settled)


@dataclass(frozen=True)
class Problem:
    """One inconsistency: ``ref`` is the blob key (sha512; for bytes no
    document counts, an adapter without content-addressed names may give its
    own object key instead), the upload id for ``stale-temp``, or the path
    relative to the root for ``unknown-file``."""

    kind: ProblemKind
    detail: str
    ref: str


@dataclass(frozen=True)
class ImportEntry:
    """One entry of ``list_import``: a ``dir`` (listed again with ``path``) or a
    ``file`` whose bytes stay where they are (``imported_blob`` describes them)."""

    kind: str
    name: str
    path: str
    size: int
    modified: Any


def blob_key(file: Mapping[str, Any]) -> str | None:
    """The key a file record's counted bytes go by in ``live_references``: its
    ``sha512``, or ``pending/<uuid>`` for a filesystem upload not hashed yet."""
    if file.get("pending"):
        return f"pending/{file['pending']}"
    digest = file.get("sha512")
    return str(digest) if digest else None


class BlobReader(io.RawIOBase):
    """A seekable, read-only view of one blob.

    ``read_at`` and ``iter_range`` are positional and thread-safe (no shared
    position), so many threads may serve ranges of one reader.
    ``read``/``readinto``/``seek`` use the reader's own position and, like any
    file object, are not meant to be shared between threads. Reading past the
    end returns short or empty bytes.
    ``fileno()`` answers only where a real descriptor exists (local files), so
    callers may try ``os.sendfile`` and fall back on ``io.UnsupportedOperation``.
    Using a closed reader raises ``ValueError``, as every ``io`` object does.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pos = 0

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Length of the blob in bytes."""

    @abc.abstractmethod
    def _read_range(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``; both already clamped into the blob
        (``0 <= offset < self.size``, ``size > 0``)."""

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes starting at ``offset``, without moving the position."""
        self._checkClosed()
        if offset < 0 or size < 0:
            raise ValidationError(f"Invalid range: offset {offset}, size {size}.")
        size = min(size, self.size - offset)
        if size <= 0:
            return b""
        return self._read_range(offset, size)

    @overload
    def iter_range(self, offset: int, length: int, block_size: int = ..., *,
                   reuse: Literal[False] = ...) -> Iterator[bytes]: ...

    @overload
    def iter_range(self, offset: int, length: int, block_size: int = ..., *,
                   reuse: bool) -> Iterator[bytes | memoryview]: ...

    def iter_range(self, offset: int, length: int, block_size: int = BLOCK_SIZE, *,
                   reuse: bool = False) -> Iterator[bytes | memoryview]:
        """The ``length`` bytes at ``offset``, in blocks of at most ``block_size``.

        Every byte-streaming loop (downloads, archives, digests, copies) reads
        through this. It ends early, without an error, where the blob ends or
        turns out shorter than it said (a file that shrank): callers that need
        every byte count them. Blocks are ``bytes`` a consumer may keep, unless
        it passes ``reuse=True``: then an adapter may hand out a ``memoryview``
        of one buffer that the next block overwrites (only for consumers that
        are done with a block before asking for the next, e.g. hashing).
        Arguments are checked at the call, not at the first block.
        """
        self._checkClosed()
        if offset < 0 or length < 0 or block_size <= 0:
            raise ValidationError(f"Invalid range: offset {offset}, length {length}, "
                                  f"block size {block_size}.")
        return self._iter_range(offset, offset + length, block_size, reuse)

    def _iter_range(self, offset: int, stop: int, block_size: int,
                    reuse: bool) -> Iterator[bytes | memoryview]:
        """``iter_range`` once its arguments are checked; adapters override it
        for speed. Each block is clamped to the size as it is then."""
        while offset < stop:
            self._checkClosed()
            size = min(block_size, stop - offset, self.size - offset)
            data = self._read_range(offset, size) if size > 0 else b""
            if not data:
                return
            offset += len(data)
            yield data

    # -- io.RawIOBase -------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read_at(self._pos, len(view))
        view[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def readall(self) -> bytes:
        data = self.read_at(self._pos, max(0, self.size - self._pos))
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checkClosed()
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self.size + offset
        else:
            raise ValidationError(f"Invalid whence: {whence}.")
        if target < 0:
            raise ValidationError(f"Negative seek position {target}.")
        self._pos = target
        return target

    def tell(self) -> int:
        self._checkClosed()
        return self._pos


@dataclass(frozen=True)
class UploadActivity:
    """What the backend holds for one upload record, for telling a live upload
    from an abandoned one: ``temp_bytes`` of temporary data and the time
    (``time.time()``) of its ``last_write`` (None: unknown); ``busy`` when a
    process is writing or finalizing it at this moment; ``blob``: the blob
    fields when a finalize stored the bytes and was interrupted before the
    file record was written (the upload then holds one reference to them)."""

    temp_bytes: int | None = None
    last_write: float | None = None
    busy: bool = False
    blob: dict[str, Any] | None = None


class AssetstoreAdapter(abc.ABC):
    """One backend that stores blobs. Instances are thread-safe, and several
    processes may use the same backend at once; anything shared lives in the
    backend or the metadata store, never in process memory."""

    capabilities: ClassVar[Capabilities]

    # -- uploads ------------------------------------------------------------
    @abc.abstractmethod
    def begin_upload(self, upload: dict[str, Any]) -> dict[str, Any]:
        """Prepare to receive ``upload["size"]`` bytes; returns the adapter
        state to store on the upload record. Starts afresh when called again
        for the same upload. ``QuotaError`` when the space is not there."""

    @abc.abstractmethod
    def write_chunk(self, upload: dict[str, Any], offset: int, stream: BinaryIO,
                    length: int | None = None) -> tuple[int, dict[str, Any]]:
        """Append ``length`` bytes (``None``: until EOF) read from ``stream`` at
        ``offset``; returns ``(received, state)``.

        ``offset`` must equal ``upload_offset(upload)``, else ``ConflictError``.
        More bytes than the upload's size: ``ValidationError``. All or nothing:
        if the stream fails or ends early, or the backend fails (full:
        ``QuotaError``), the data received so far by this call is dropped, the
        upload stays at ``offset`` and the error is raised."""

    @abc.abstractmethod
    def upload_offset(self, upload: dict[str, Any]) -> int:
        """Where to resume: the bytes the backend holds durably for the upload.
        This, not the record's ``received``, is the truth after a crash."""

    @abc.abstractmethod
    def finalize_upload(self, upload: dict[str, Any]) -> dict[str, Any]:
        """Turn the complete upload into a blob holding one reference; returns
        the blob fields for the file record (at least ``size``). The upload's
        temporary data is gone afterwards, except what the adapter keeps until
        ``forget_upload`` to resume a finalize a crash interrupted.
        ``ConflictError`` when incomplete or being finalized elsewhere."""

    @abc.abstractmethod
    def abort_upload(self, upload: dict[str, Any]) -> None:
        """Drop the upload's temporary data. Idempotent."""

    def forget_upload(self, upload: dict[str, Any]) -> None:
        """The upload's file record is written and its upload record deleted:
        drop what the adapter kept to resume an interrupted ``finalize_upload``."""
        return None

    def upload_activity(self, upload: dict[str, Any]) -> UploadActivity:
        """What the backend holds for ``upload`` (``joist check``, system/uploads)."""
        return UploadActivity()

    def check_upload_parameters(self, extra: Any) -> None:
        """Judge a client's ``uploadExtraParameters`` (Girder passes them to the
        adapter with every upload step). Joist receives every byte itself, so
        by default they change nothing and are accepted; an adapter refuses
        what it cannot honour (``ValidationError``)."""
        return None

    def untracked_uploads(self, known: AbstractSet[str], *, older_than: float | None = None,
                          delete: bool = False) -> list[dict[str, Any]]:
        """Temporary data of uploads not in ``known`` (upload ids) and last
        written before ``older_than`` (``time.time()``; None: any age), as
        Girder's ``untrackedUploads``; ``delete`` removes it as well."""
        return []

    # -- blobs --------------------------------------------------------------
    @abc.abstractmethod
    def open_read(self, blob: Mapping[str, Any]) -> BlobReader:
        """A reader for the blob; ``StorageError`` when its bytes are missing."""

    @abc.abstractmethod
    def add_reference(self, blob: Mapping[str, Any]) -> None:
        """Count one more file record sharing the blob (a copy). Call it before
        creating that record. ``StorageError`` when the blob is not live."""

    @abc.abstractmethod
    def delete(self, blob: Mapping[str, Any]) -> None:
        """Release one reference, after the file record is gone; the bytes go
        with the last reference."""

    @abc.abstractmethod
    def capacity(self) -> Capacity:
        """Space usable for new uploads (a configured reserve excluded)."""

    def local_path(self, blob: Mapping[str, Any]) -> str | None:
        """An absolute local path holding the blob's bytes, if the backend has one."""
        return None

    def download_url(self, blob: Mapping[str, Any], name: str,
                     disposition: str = "attachment") -> str | None:
        """A URL a client may fetch the blob's bytes from directly (served as
        ``name`` with that Content-Disposition), or None: proxy the bytes."""
        return None

    def list_import(self, path: str) -> Iterable[ImportEntry]:
        """One level of existing backend data under ``path``, for imports."""
        raise UnsupportedError("Importing existing data is not supported by this kind of "
                               "assetstore.")

    def imported_blob(self, entry: ImportEntry) -> dict[str, Any]:
        """The blob fields of a file record for an imported ``file`` entry
        (``imported: True``: never counted, never deleted)."""
        raise UnsupportedError("Importing existing data is not supported by this kind of "
                               "assetstore.")

    def import_data(self, *args: Any, **kwargs: Any) -> Any:
        """Register existing backend data without copying it (optional)."""
        raise UnsupportedError(f"{type(self).__name__} cannot import data.")

    # -- consistency (joist check) --------------------------------------------
    @abc.abstractmethod
    def check(self, live_uploads: AbstractSet[str],
              live_references: Mapping[str, int] | None = None, *,
              settled_before: float | None = None, deep: bool = False) -> list[Problem]:
        """Compare the backend with the adapter's bookkeeping; change nothing.

        ``live_uploads``: ids of the upload records that exist. Temp data of
        any other upload is reported ``stale-temp``.

        ``live_references``: blob key (sha512) -> number of file records in
        this assetstore pointing at it, counted by the caller. When given,
        reference counts are compared with it as well.

        ``settled_before``: a ``time.time()`` value for checks of a live
        system. Work touched at or after it (temp files, reference counts) may
        be in flight and is not judged; take it some minutes before the moment
        the caller listed ``live_uploads``/counted ``live_references``.
        ``None`` judges everything: only for a store nobody is writing to.

        ``deep`` also re-hashes every blob (slow: reads everything).
        """

    @abc.abstractmethod
    def repair(self, problems: Iterable[Problem], *, live_references: Mapping[str, int],
               settled_before: float | None = None) -> list[Problem]:
        """Fix what ``check()`` found; returns the problems left unfixed.

        ``live_references`` is authoritative (same meaning as in ``check``;
        missing key = 0): reference counts are set to it, and blobs nothing
        references are deleted. Every fix re-reads the current state under the
        adapter's locks first, so a problem that has gone away since ``check``
        is left alone, and ``settled_before`` protects in-flight work as in
        ``check``. Bytes that file records need but that are gone or corrupt
        cannot be repaired here and are returned.
        """
