"""Chunks of an upload to S3: the key layout, the journal that commits each
chunk, and the writer that turns chunks into parts, tails or a single PUT.
See ``s3.py``'s docstring for the design; ``S3Assetstore`` is the caller."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

from ..db.engine import CollectionSpec
from ..errors import ConflictError, CoreError, NotFoundError, StorageError, ValidationError
from .base import BLOCK_SIZE
from .s3_client import (
    MAX_PART,
    MIN_PART,
    PartBody,
    error_for,
    even_pieces,
    read_exactly,
)

if TYPE_CHECKING:
    from .s3 import S3Assetstore

__all__ = [
    "JOURNAL_SPEC", "TAIL_SPEC", "ChunkWriter", "Journal", "UploadKeys",
    "content_disposition", "multipart_uploads",
]

JOURNAL_SPEC = CollectionSpec("s3_upload_journal")
"""One document per upload in progress: ``{_id: "<assetstoreId>:<uploadId>",
assetstoreId, uploadId, gen, version, parts: [[etag, size]...], base, mpu,
done, sha512, tail, updated}``."""
TAIL_SPEC = CollectionSpec("s3_upload_tail")
"""Tail segments: ``{_id: "<assetstoreId>:<uploadId>:<gen>:<offset, 20 digits>",
data}``, the bytes not yet in a part, in order."""

MAX_PARTS = 10_000  # S3's limit per multipart upload
_PAGES = 10_000  # bound on paginated listings
_BLOB_RE = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{2})/([A-Za-z0-9_-]{1,128})\.([0-9a-f]{32})$")
_FANOUT_DIR_RE = re.compile(r"^[0-9a-f]{2}/([0-9a-f]{2}/)?$")


def content_disposition(name: str, disposition: str = "attachment") -> str:
    """The REST gateway's Content-Disposition (latin-1 name, plus an RFC 5987
    UTF-8 one when latin-1 cannot hold it), for S3 to send on a redirect."""
    if disposition not in ("attachment", "inline"):
        raise ValidationError(f'Unallowed contentDisposition type "{disposition}".')
    safe = name.encode("latin-1", "replace").decode("latin-1").replace('"', "")
    safe = "".join(ch if 32 <= ord(ch) < 127 or ord(ch) > 159 else "_" for ch in safe)
    value = f'{disposition}; filename="{safe}"'
    try:
        name.encode("latin-1")
    except UnicodeEncodeError:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


class UploadKeys:
    """Key layout under the assetstore's prefix (``""`` or ending in ``/``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @staticmethod
    def fanout(upload_id: str) -> str:
        h = hashlib.sha1(upload_id.encode(), usedforsecurity=False).hexdigest()
        # "ad" path segments upset browser ad blockers (presigned URLs show keys).
        pairs = ["da" if p == "ad" else p for p in (h[0:2], h[2:4])]
        return f"{pairs[0]}/{pairs[1]}/"

    def upload_prefix(self, upload_id: str) -> str:
        return f"{self.prefix}{self.fanout(upload_id)}{upload_id}."

    def blob(self, upload_id: str, generation: str) -> str:
        return self.upload_prefix(upload_id) + generation

    def parse_blob(self, key: str) -> str | None:
        """The upload id in a blob key of this layout, else None."""
        if not key.startswith(self.prefix):
            return None
        match = _BLOB_RE.match(key[len(self.prefix):])
        if match is None or self.fanout(match.group(3)) != f"{match[1]}/{match[2]}/":
            return None
        return match.group(3)

    def is_managed(self, key: str) -> bool:
        """Whether a key (or a ``/``-ended folder) belongs to this layout."""
        if not key.startswith(self.prefix):
            return False
        rel = key[len(self.prefix):]
        return bool(_FANOUT_DIR_RE.match(rel)) or self.parse_blob(key) is not None


@dataclass(frozen=True)
class Journal:
    """An upload's committed state; ``version`` grows with every commit."""

    generation: str
    version: int = 0
    parts: tuple[tuple[str, int], ...] = ()  # (ETag, size) of parts 1..n
    base: int = 0  # bytes in those parts (or in the single PUT)
    multipart_id: str = ""
    done: str = ""  # ETag of the single PUT that holds the whole upload
    sha512: str = ""  # set by finalize just before it counts a reference
    tail: int = 0  # bytes kept as tail segments
    updated: datetime | None = None

    @property
    def received(self) -> int:
        return self.base + self.tail

    def but(self, **changes: Any) -> Journal:
        return dataclasses.replace(self, **changes)

    def fields(self) -> dict[str, Any]:
        return {"gen": self.generation, "version": self.version,
                "parts": [list(p) for p in self.parts], "base": self.base,
                "mpu": self.multipart_id, "done": self.done, "sha512": self.sha512,
                "tail": self.tail}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Journal:
        return cls(generation=doc["gen"], version=int(doc["version"]),
                   parts=tuple((str(e), int(s)) for e, s in doc.get("parts") or ()),
                   base=int(doc["base"]), multipart_id=doc.get("mpu") or "",
                   done=doc.get("done") or "", sha512=doc.get("sha512") or "",
                   tail=int(doc.get("tail") or 0), updated=doc.get("updated"))


class ChunkWriter:
    """Journal bookkeeping and the S3 operations of one upload step."""

    def __init__(self, store: S3Assetstore) -> None:
        self.store = store
        self.client = store.client
        self.bucket = store.bucket
        self.keys = store.keys
        self.journals = store.journals
        self.tails = store.tails
        sse = store.location.server_side_encryption
        self.put_extra: dict[str, str] = {"ServerSideEncryption": "AES256"} if sse else {}

    # -- the journal ----------------------------------------------------------
    def journal_id(self, upload_id: str) -> str:
        return f"{self.store.assetstore_id}:{upload_id}"

    def journal(self, upload_id: str, *, missing_ok: bool = False) -> Journal | None:
        doc = self.journals.find_one({"_id": self.journal_id(upload_id)})
        if doc is None:
            if missing_ok:
                return None
            raise NotFoundError(f"Upload {upload_id} has no data here: it was "
                                "finalized, aborted or never begun.")
        return Journal.from_doc(doc)

    def start(self, upload_id: str, generation: str) -> Journal:
        journal = Journal(generation)
        self.journals.replace_one(
            {"_id": self.journal_id(upload_id)},
            {"assetstoreId": self.store.assetstore_id, "uploadId": upload_id,
             **journal.fields(), "updated": _now()}, upsert=True)
        return journal

    def commit(self, upload_id: str, old: Journal, **changes: Any) -> Journal:
        """Write the journal's next version, if nobody else did since ``old``."""
        new = old.but(version=old.version + 1, **changes)
        result = self.journals.update_one(
            {"_id": self.journal_id(upload_id), "gen": old.generation,
             "version": old.version}, {"$set": {**new.fields(), "updated": _now()}})
        if not result.matched:
            raise ConflictError("Another request changed this upload meanwhile; ask for "
                                "its offset and resume.")
        if new.tail == 0 and old.tail:
            self.drop_tail(upload_id)
        return new

    def forget(self, upload_id: str) -> None:
        self.drop_tail(upload_id)
        self.journals.delete_one({"_id": self.journal_id(upload_id)})

    # -- tail segments ---------------------------------------------------------
    def _tail_range(self, upload_id: str, generation: str | None = None) -> dict[str, Any]:
        stem = f"{self.journal_id(upload_id)}:" + (f"{generation}:" if generation else "")
        return {"_id": {"$gte": stem, "$lt": stem + "~"}}

    def add_tail(self, upload_id: str, journal: Journal, data: bytes) -> None:
        sid = f"{self.journal_id(upload_id)}:{journal.generation}:{journal.received:020d}"
        self.tails.replace_one({"_id": sid}, {"data": data}, upsert=True)

    def tail_bytes(self, upload_id: str, journal: Journal) -> bytes:
        if not journal.tail:
            return b""
        chunks, position = [], journal.base
        for doc in self.tails.find(self._tail_range(upload_id, journal.generation),
                                   sort=[("_id", 1)]):
            offset = int(doc["_id"].rsplit(":", 1)[1])
            if offset == position and position < journal.received:
                chunks.append(doc["data"])
                position += len(doc["data"])
        if position != journal.received:
            raise StorageError(f"The buffered tail of upload {upload_id} is incomplete.")
        return b"".join(chunks)

    def drop_tail(self, upload_id: str) -> None:
        self.tails.delete_many(self._tail_range(upload_id))

    # -- chunks ---------------------------------------------------------------
    def write(self, upload_id: str, journal: Journal, stream: BinaryIO, length: int | None,
              *, size: int, final_allowed: bool, hasher: Any) -> tuple[Journal, list[str]]:
        """Send one chunk and commit it; returns the new journal and the ETags
        this chunk produced (see ``S3Assetstore.write_chunk``)."""
        if length is None:
            return self._write_unknown(upload_id, journal, stream, size=size,
                                       final_allowed=final_allowed, hasher=hasher)
        if length == 0:
            return journal, []
        key = self.keys.blob(upload_id, journal.generation)
        total = journal.tail + length
        final = final_allowed and journal.received + length == size
        if final and not journal.parts and total <= MAX_PART:
            body = PartBody(self.tail_bytes(upload_id, journal), stream, length, hasher)
            etag = self._put_object(key, body, total)
            return self.commit(upload_id, journal, base=journal.base + total, tail=0,
                               done=etag), [etag]
        if final or total >= MIN_PART:
            pieces = even_pieces(total)
            self._check_parts(len(journal.parts) + len(pieces))
            head = self.tail_bytes(upload_id, journal)
            mpu = journal.multipart_id or self._create_multipart(key)
            sent: list[tuple[str, int]] = []
            for piece in pieces:
                body = PartBody(head, stream, piece - len(head), hasher)
                number = len(journal.parts) + len(sent) + 1
                sent.append((self._upload_part(key, mpu, number, body, piece), piece))
                head = b""
            new = self.commit(upload_id, journal, parts=journal.parts + tuple(sent),
                              base=journal.base + total, tail=0, multipart_id=mpu)
            return new, [etag for etag, _ in sent]
        self.add_tail(upload_id, journal, read_exactly(stream, length, hasher))
        return self.commit(upload_id, journal, tail=total), []

    def _write_unknown(self, upload_id: str, journal: Journal, stream: BinaryIO, *,
                       size: int, final_allowed: bool,
                       hasher: Any) -> tuple[Journal, list[str]]:
        """A chunk read to EOF: parts of ``buffer_part`` bytes as they fill up.
        The stored tail is fetched only when it goes into a part (so small
        appends cost no re-reading)."""
        key = self.keys.blob(upload_id, journal.generation)
        limit, part_size = size - journal.received, self.store.buffer_part
        buf, unloaded = bytearray(), journal.tail  # unloaded: tail bytes not in buf
        got, base, mpu = 0, journal.base, journal.multipart_id
        sent: list[tuple[str, int]] = []

        def load() -> None:
            nonlocal unloaded
            if unloaded:
                buf[0:0] = self.tail_bytes(upload_id, journal)
                unloaded = 0

        for block in _blocks(stream):
            got += len(block)
            if got > limit:
                raise ValidationError("Received too many bytes.")
            hasher.update(block)
            buf += block
            if unloaded + len(buf) >= part_size:
                load()
                self._check_parts(len(journal.parts) + len(sent) + 1)
                mpu = mpu or self._create_multipart(key)
                number = len(journal.parts) + len(sent) + 1
                sent.append((self._upload_part(key, mpu, number, bytes(buf[:part_size]),
                                               part_size), part_size))
                del buf[:part_size]
                base += part_size
        if got == 0:
            return journal, []
        final = final_allowed and journal.received + got == size
        parts = journal.parts + tuple(sent)
        if final and not parts:
            load()
            etag = self._put_object(key, bytes(buf), len(buf))
            return self.commit(upload_id, journal, base=base + len(buf), tail=0,
                               done=etag), [etag]
        left = unloaded + len(buf)
        if left and (final or left >= MIN_PART):
            load()
            self._check_parts(len(parts) + 1)
            mpu = mpu or self._create_multipart(key)
            etag = self._upload_part(key, mpu, len(parts) + 1, bytes(buf), len(buf))
            sent.append((etag, len(buf)))
            parts = (*parts, (etag, len(buf)))
            base += len(buf)
            buf = bytearray()
        if buf:  # after a part, what is left starts a new tail (old segments lie
            # below the new base, where tail_bytes does not look)
            self.add_tail(upload_id, journal if not sent else journal.but(base=base, tail=0),
                          bytes(buf))
        new = self.commit(upload_id, journal, parts=parts, base=base,
                          tail=unloaded + len(buf), multipart_id=mpu)
        return new, [etag for etag, _ in sent]

    # -- finalize ---------------------------------------------------------------
    def install(self, upload_id: str, journal: Journal, key: str) -> bool:
        """Make ``key`` hold the whole upload. False when an earlier finalize,
        interrupted, had already completed it (the bytes are then re-read)."""
        if journal.done:
            return True
        if not journal.parts:
            tail = self.tail_bytes(upload_id, journal)
            self._put_object(key, tail, len(tail))
            return True
        parts = [{"PartNumber": i + 1, "ETag": etag} for i, (etag, _) in
                 enumerate(journal.parts)]
        try:
            if journal.tail:
                tail = self.tail_bytes(upload_id, journal)
                etag = self._upload_part(key, journal.multipart_id, len(parts) + 1, tail,
                                         len(tail))
                parts.append({"PartNumber": len(parts) + 1, "ETag": etag})
            with self.store.errors("Completing an S3 multipart upload"):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=journal.multipart_id,
                    MultipartUpload={"Parts": parts})
            return True
        except NotFoundError:  # completed by an earlier, interrupted finalize?
            with self.store.errors("Finalizing an S3 upload"):
                head = self.client.head_object(Bucket=self.bucket, Key=key)
            if int(head["ContentLength"]) != journal.received:
                raise
            return False

    # -- listing and cleanup --------------------------------------------------------
    def upload_objects(self, upload_id: str) -> Iterator[str]:
        token: str | None = None
        for _ in range(_PAGES):
            kwargs: dict[str, Any] = {"Bucket": self.bucket,
                                      "Prefix": self.keys.upload_prefix(upload_id)}
            if token:
                kwargs["ContinuationToken"] = token
            with self.store.errors("Listing upload data"):
                page = self.client.list_objects_v2(**kwargs)
            yield from (obj["Key"] for obj in page.get("Contents") or ())
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def abort_multiparts(self, upload_id: str) -> None:
        prefix = self.keys.upload_prefix(upload_id)
        with self.store.errors("Aborting an S3 multipart upload"):
            for key, mpu, _ in list(multipart_uploads(self.client, self.bucket, prefix)):
                try:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=key,
                                                       UploadId=mpu)
                except Exception as exc:
                    if _code(exc) != "NoSuchUpload":
                        raise

    # -- S3 calls -----------------------------------------------------------------
    def _check_parts(self, count: int) -> None:
        if count > MAX_PARTS:
            raise ValidationError(f"This upload needs more than {MAX_PARTS} S3 parts: "
                                  "send bigger chunks.")

    def _create_multipart(self, key: str) -> str:
        with self.store.errors("Starting an S3 multipart upload"):
            return str(self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, **self.put_extra)["UploadId"])

    def _put_object(self, key: str, body: PartBody | bytes, length: int) -> str:
        return self._send("Storing an upload in S3", body, lambda client: client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentLength=length, **self.put_extra))

    def _upload_part(self, key: str, mpu: str, number: int, body: PartBody | bytes,
                     length: int) -> str:
        return self._send("Sending an upload chunk to S3", body, lambda client: (
            client.upload_part(Bucket=self.bucket, Key=key, UploadId=mpu, PartNumber=number,
                               Body=body, ContentLength=length)))

    def _send(self, what: str, body: PartBody | bytes, call: Any) -> str:
        # A streamed body cannot be sent twice: its client never retries.
        streamed = isinstance(body, PartBody)
        try:
            reply = call(self.store.stream_client if streamed else self.client)
        except Exception as exc:
            if isinstance(body, PartBody) and body.failure is not None:
                raise body.failure from None  # the client's stream failed, not S3
            raise error_for(exc, what, self.bucket) from exc
        return str(reply["ETag"])


def multipart_uploads(client: Any, bucket: str,
                      prefix: str) -> Iterator[tuple[str, str, datetime | None]]:
    """(key, multipart id, initiated) of the unfinished uploads under ``prefix``."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    for _ in range(_PAGES):
        page = client.list_multipart_uploads(**kwargs)
        for up in page.get("Uploads") or ():
            yield up["Key"], up["UploadId"], up.get("Initiated")
        if not page.get("IsTruncated"):
            return
        kwargs.update(KeyMarker=page.get("NextKeyMarker") or "",
                      UploadIdMarker=page.get("NextUploadIdMarker") or "")


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    """Blocks of ``stream`` until EOF; a failing stream is ``StorageError``."""
    got = 0
    while True:
        try:
            block = stream.read(BLOCK_SIZE)
        except CoreError:
            raise
        except Exception as exc:
            raise StorageError(f"The upload stream failed after {got} bytes: {exc}") from exc
        if not block:
            return
        got += len(block)
        yield bytes(block)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _now() -> datetime:
    return datetime.now(UTC)
