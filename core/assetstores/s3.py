"""The S3 assetstore: blobs as objects in a bucket (AWS, MinIO, Ceph RGW...).

Blob keys, under the assetstore's ``prefix``, name the upload that wrote them
(``<h0h1>/<h2h3>/<uploadId>.<generation>``, h = sha1(uploadId) in hex), so
``check`` can tell debris of a dead upload from a blob, and every object of
one upload shares one key prefix.

**Uploads.** Each chunk of the upload protocol becomes one multipart part
(created lazily), streamed from the client's request to S3 without buffering.
S3 wants every part but the last to be at least 5 MiB; girder-client's 64 MiB
chunks meet that. A smaller non-final chunk (other clients, a lowered
``core.upload_minimum_chunk_size``, appends of a streaming upload) is kept as
the upload's *tail* in the metadata store, and the next chunk is sent as one
part holding tail + chunk; a tail left at the end becomes the last part. An
upload sent in one chunk is a single PUT.

A **journal** document in the metadata store commits each chunk: the parts
(ETag and size), the tail length, the multipart id. A chunk commits when its
journal update does, conditionally on the version it started from (two
writers of one upload cannot both win), so a chunk that fails midway commits
nothing: a part it sent is past the committed ones and the retry overwrites
it. The offset to resume at comes from the journal, shared by every process,
never from process memory.

**Blobs** are deduplicated by SHA-512 (hashed as bytes stream through; re-read
from S3 only when some chunks went through another process), with reference
counts in ``BLOB_REFS_SPEC``: one document per content, naming the key that
holds it. Copies count a reference; no bytes move.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, BinaryIO

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from ..db.engine import Collection, Engine
from ..errors import ConflictError, CoreError, StorageError, UnsupportedError, ValidationError
from ..filenames import content_disposition
from .base import (
    AssetstoreAdapter,
    BlobReader,
    Capabilities,
    Capacity,
    ImportEntry,
    Problem,
)
from .filesystem import BLOB_REFS_SPEC, SHA512_RE, _upload_id, _upload_size
from .s3_client import MIN_PART, S3BlobReader, error_code, error_for, s3_errors
from .s3_config import S3Location, make_client
from .s3_keys import UploadKeys, list_level
from .s3_refs import RefCounts
from .s3_upload import JOURNAL_SPEC, TAIL_SPEC, ChunkWriter, Journal

__all__ = ["S3Assetstore"]

log = logging.getLogger(__name__)

PRESIGN_SECONDS = 3600  # boto's default, as Girder uses
_HASH_CACHE_MAX = 4096


@dataclass
class _Hashing:
    """SHA-512 of the bytes of one journal version (committed here)."""

    generation: str
    version: int
    hasher: Any


class S3Assetstore(AssetstoreAdapter):
    capabilities = Capabilities(local_path=False, range_reads=True, server_side_copy=True,
                                dedup=True, resumable=True, presigned_download=True)

    def __init__(self, location: S3Location, *, refs: Collection, journals: Collection,
                 tails: Collection, assetstore_id: str, part_size: int = 8 << 20,
                 window: int = 4) -> None:
        if not location.bucket:
            raise ValidationError("The S3 bucket name is required.", field="bucket")
        self.location = location
        self.bucket = location.bucket
        self.refs = refs
        self.counts = RefCounts(refs, str(assetstore_id))
        self.journals = journals
        self.tails = tails
        self.assetstore_id = str(assetstore_id)
        self.client = make_client(location)
        self.stream_client = make_client(location, retries=False)
        self.keys = UploadKeys(location.key_prefix)
        # A chunk is sent as whole parts of about ``part_size`` bytes (more for
        # uploads that would need too many), ``window`` of them at a time.
        self.part_size = max(MIN_PART, part_size)
        self.window = window
        self._hashes: OrderedDict[str, _Hashing] = OrderedDict()
        self._hash_lock = threading.Lock()  # guards _hashes

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], engine: Engine) -> S3Assetstore:
        return cls(S3Location.from_document(doc), refs=engine.collection(BLOB_REFS_SPEC),
                   journals=engine.collection(JOURNAL_SPEC),
                   tails=engine.collection(TAIL_SPEC), assetstore_id=str(doc["_id"]))

    def ref_id(self, sha512: str) -> str:
        return self.counts.ref_id(sha512)

    def errors(self, what: str) -> Any:
        return s3_errors(what, self.bucket)

    def probe(self) -> None:
        """Fail with a clear error unless the bucket is reachable and, for a
        writable store, writable: run before an assetstore document is saved."""
        what = "Checking the S3 bucket"
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise self._bucket_error(what, exc) from exc
        with self.errors(what):
            if not self.location.read_only:
                key = self.keys.prefix + "joist-probe-" + uuid.uuid4().hex
                self.client.put_object(Bucket=self.bucket, Key=key, Body=b"")
                self.client.delete_object(Bucket=self.bucket, Key=key)

    # -- uploads ------------------------------------------------------------
    def check_upload_parameters(self, extra: Any) -> None:
        """Girder's rule on ``use_S3_transfer_acceleration``. Where allowed it
        changes nothing: the bytes come through this server, never client-to-S3."""
        if isinstance(extra, Mapping) and extra.get("use_S3_transfer_acceleration") \
                and not self.location.accelerated_transfer:
            raise ValidationError("Accelerated transfer is not allowed on this assetstore.",
                                  field="uploadExtraParameters")

    def begin_upload(self, upload: dict[str, Any]) -> dict[str, Any]:
        if self.location.read_only:
            raise UnsupportedError("This S3 assetstore is read-only.")
        upload_id, _ = _upload_id(upload), _upload_size(upload)
        writer = self.writer()
        old = writer.journal(upload_id, missing_ok=True)
        if old is not None:  # begun again: start afresh
            self._drop_upload(upload_id, old, protect=self._counted_key(old))
        journal = writer.start(upload_id, uuid.uuid4().hex)
        self._remember(upload_id, _Hashing(journal.generation, 0, hashlib.sha512()))
        return self._state(upload_id, journal)

    def write_chunk(self, upload: dict[str, Any], offset: int, stream: BinaryIO,
                    length: int | None = None) -> tuple[int, dict[str, Any]]:
        upload_id, size = _upload_id(upload), _upload_size(upload)
        if offset < 0 or (length is not None and length < 0):
            raise ValidationError(f"Invalid offset {offset} or length {length}.")
        writer = self.writer()
        journal = writer.journal(upload_id)
        assert journal is not None
        if offset != journal.received:
            raise ConflictError(f"Server has received {journal.received} bytes, "
                                f"but client sent offset {offset}.")
        if length is not None and offset + length > size:
            raise ValidationError("Received too many bytes.")
        if journal.done and length != 0:
            raise ValidationError("Received too many bytes.")
        hashing = self._hashing_for(upload_id, journal)
        hasher = hashing.hasher.copy() if hashing else _NullHasher()
        try:
            new, _ = writer.write(upload_id, journal, stream, length, size=size,
                                  final_allowed=not upload.get("streaming"), hasher=hasher)
        except BaseException:
            if hashing is not None:  # the chunk may have committed a multipart id
                self._keep_hashing(upload_id, journal, hashing)
            raise
        if hashing is not None:
            self._remember(upload_id, _Hashing(new.generation, new.version, hasher))
        return new.received, self._state(upload_id, new)

    def upload_offset(self, upload: dict[str, Any]) -> int:
        journal = self.writer().journal(_upload_id(upload))
        assert journal is not None
        return journal.received

    def finalize_upload(self, upload: dict[str, Any]) -> dict[str, Any]:
        upload_id, size = _upload_id(upload), _upload_size(upload)
        writer = self.writer()
        journal = writer.journal(upload_id)
        assert journal is not None
        if journal.received != size:
            raise ConflictError(f"Server has received {journal.received} bytes, "
                                f"but the upload is {size} bytes.")
        key = self.keys.blob(upload_id, journal.generation)
        hashing = self._hashing_for(upload_id, journal)
        digest = hashing.hasher.hexdigest() if hashing is not None else None
        if digest is not None:
            claimed = self.counts.claim(digest)
            if claimed is not None:  # the content is stored already: send nothing more
                self._drop_upload(upload_id, journal, protect=claimed)
                return self._blob(size, digest, claimed)
        if not writer.install(upload_id, journal, key):
            digest = None  # completed by an earlier attempt: hash what S3 holds
        if digest is None:  # some chunks went through another process: re-read
            digest = self._hash_object(key, size)
        journal = writer.commit(upload_id, journal, sha512=digest)
        final_key = self.counts.count_new(digest, size, key)
        try:
            self._drop_upload(upload_id, journal.but(multipart_id=""), protect=final_key)
        except StorageError:  # counted already: leftovers are for `joist check`
            log.warning("upload %s: leftovers stay for `joist check`", upload_id)
        return self._blob(size, digest, final_key)

    def abort_upload(self, upload: dict[str, Any]) -> None:
        upload_id = _upload_id(upload)
        journal = self.writer().journal(upload_id, missing_ok=True)
        self._forget(upload_id)
        if journal is None:  # finalized or aborted already
            self.writer().drop_tail(upload_id)
            return
        self._drop_upload(upload_id, journal, protect=self._counted_key(journal))

    # -- blobs --------------------------------------------------------------
    def open_read(self, blob: Mapping[str, Any]) -> BlobReader:
        size = blob.get("size")
        return S3BlobReader.open(self.client, self.bucket, _s3_key(blob),
                                 expected_size=size if isinstance(size, int) else None,
                                 attempts=self.location.attempts)

    def add_reference(self, blob: Mapping[str, Any]) -> None:
        digest = _sha512(blob)
        if not self.counts.add(digest, _s3_key(blob)):
            raise StorageError(f"Blob {digest[:16]}... has no live reference count; "
                               "run `joist check --repair`.")

    def delete(self, blob: Mapping[str, Any]) -> None:
        def delete_object(key: str) -> bool:
            try:
                with self.errors("Deleting an S3 blob"):
                    self.client.delete_object(Bucket=self.bucket, Key=key)
            except StorageError:
                return False  # the count stays at 0, for `joist check`
            return True

        self.counts.release(_sha512(blob), delete_object)

    def capacity(self) -> Capacity:
        return Capacity(total=None, free=None, used=None)  # S3 does not say

    def download_url(self, blob: Mapping[str, Any], name: str,
                     disposition: str = "attachment") -> str | None:
        params = {"Bucket": self.bucket, "Key": _s3_key(blob),
                  "ResponseContentDisposition": content_disposition(name, disposition)}
        if blob.get("mimeType"):
            params["ResponseContentType"] = str(blob["mimeType"])
        with self.errors("Signing a download URL"):
            url: str = self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=PRESIGN_SECONDS)
        return url

    def list_import(self, path: str) -> Iterator[ImportEntry]:
        """One level of the bucket under the key prefix ``path``; the objects
        this assetstore manages itself are left out."""
        with self.errors("Listing the S3 bucket"):
            yield from list_level(self.client, self.bucket, path, self.keys)

    def imported_blob(self, entry: ImportEntry) -> dict[str, Any]:
        """The blob fields of a file record for an imported object."""
        return {"size": entry.size, "s3Key": entry.path, "imported": True,
                "relpath": f"/{self.bucket}/{entry.path}"}

    # -- consistency ----------------------------------------------------------
    def untracked_uploads(self, known: AbstractSet[str], *, older_than: float | None = None,
                          delete: bool = False) -> list[dict[str, Any]]:
        from .s3_check import S3Checker
        return S3Checker(self).untracked(known, older_than=older_than, delete=delete)

    def check(self, live_uploads: AbstractSet[str],
              live_references: Mapping[str, int] | None = None, *,
              settled_before: float | None = None, deep: bool = False) -> list[Problem]:
        from .s3_check import S3Checker
        return S3Checker(self).check(live_uploads, live_references,
                                     settled_before=settled_before, deep=deep)

    def repair(self, problems: Iterable[Problem], *, live_references: Mapping[str, int],
               settled_before: float | None = None) -> list[Problem]:
        from .s3_check import S3Checker
        return S3Checker(self).repair(problems, live_references=live_references,
                                      settled_before=settled_before)

    # -- internals ------------------------------------------------------------
    def explain(self, what: str, exc: BaseException) -> CoreError:
        """The error for a failed streamed send. S3 may answer an early error
        (bad credentials, no bucket) and close the connection while the body
        is still going, which looks like a network failure: ask about the
        bucket, whose answer usually says why."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as probe:
            return self._bucket_error(what, probe)
        except Exception:  # unreachable indeed
            pass
        return error_for(exc, what, self.bucket)

    def _bucket_error(self, what: str, exc: BaseException) -> CoreError:
        if error_code(exc) in ("404", "NotFound", "NoSuchBucket"):  # HEAD has no body
            err: CoreError = StorageError(f"{what}: the S3 bucket {self.bucket!r} does "
                                          "not exist.")
            err.__cause__ = exc
            return err
        return error_for(exc, what, self.bucket)

    def writer(self) -> ChunkWriter:
        return ChunkWriter(self)

    def _state(self, upload_id: str, journal: Journal) -> dict[str, Any]:
        """What the upload record shows: a copy of the journal (which stays the
        truth; see the module docstring)."""
        return {"key": self.keys.blob(upload_id, journal.generation),
                "generation": journal.generation, "version": journal.version,
                "multipartId": journal.multipart_id or None,
                "parts": [{"partNumber": i + 1, "etag": part.etag, "size": part.size}
                          for i, part in enumerate(journal.parts)],
                "tail": journal.tail}

    def _counted_key(self, journal: Journal) -> str | None:
        """The key counted for the upload's content, if its finalize got that far."""
        return self.counts.counted_key(journal.sha512)

    def _drop_upload(self, upload_id: str, journal: Journal, *,
                     protect: str | None = None) -> None:
        """Delete what the journal says the upload holds in S3 (its object but
        ``protect``, its multipart upload), its tail and, last, the journal:
        an interruption leaves the journal for ``check`` to find."""
        key = self.keys.blob(upload_id, journal.generation)
        with self.errors("Deleting upload data"):
            if key != protect and (journal.done or journal.sha512 or journal.parts):
                self.client.delete_object(Bucket=self.bucket, Key=key)
            if journal.multipart_id:
                try:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=key,
                                                       UploadId=journal.multipart_id)
                except Exception as exc:
                    if error_code(exc) != "NoSuchUpload":  # (completed or aborted)
                        raise
        self.writer().forget(upload_id)
        self._forget(upload_id)

    def _hash_object(self, key: str, size: int) -> str:
        hasher = hashlib.sha512()
        with S3BlobReader(self.client, self.bucket, key, size=size,
                          attempts=self.location.attempts) as reader:
            position = 0
            for data in reader.iter_range(0, size, 8 << 20, reuse=True):
                hasher.update(data)
                position += len(data)
        if position != size:
            raise StorageError(f"S3 object {key} holds {position} bytes, expected {size}.")
        return hasher.hexdigest()

    def _blob(self, size: int, digest: str, key: str) -> dict[str, Any]:
        return {"size": size, "sha512": digest, "s3Key": key,
                "relpath": f"/{self.bucket}/{key}"}

    def _hashing_for(self, upload_id: str, journal: Journal) -> _Hashing | None:
        with self._hash_lock:
            cached = self._hashes.get(upload_id)
        if cached is None or cached.generation != journal.generation \
                or cached.version != journal.version:
            return None
        return cached

    def _keep_hashing(self, upload_id: str, before: Journal, hashing: _Hashing) -> None:
        """After a failed chunk: the hash still holds if the bytes did not change."""
        try:
            now = self.writer().journal(upload_id, missing_ok=True)
        except Exception:
            return
        if now is not None and now.generation == before.generation \
                and now.received == before.received:
            self._remember(upload_id, _Hashing(now.generation, now.version, hashing.hasher))

    def _remember(self, upload_id: str, state: _Hashing) -> None:
        with self._hash_lock:
            self._hashes[upload_id] = state
            self._hashes.move_to_end(upload_id)
            while len(self._hashes) > _HASH_CACHE_MAX:
                self._hashes.popitem(last=False)

    def _forget(self, upload_id: str) -> None:
        with self._hash_lock:
            self._hashes.pop(upload_id, None)


class _NullHasher:
    """Stands in when the upload's hash state lives in another process."""

    def update(self, data: Any) -> None:
        pass


def _sha512(blob: Mapping[str, Any]) -> str:
    digest = blob.get("sha512")
    if not isinstance(digest, str) or not SHA512_RE.match(digest):
        raise ValidationError("The file record has no valid sha512.")
    return digest


def _s3_key(blob: Mapping[str, Any]) -> str:
    key = blob.get("s3Key")
    if not isinstance(key, str) or not key:
        raise ValidationError("The file record has no S3 key.")
    return key

