"""Chunks of an upload to S3: the key layout, the journal that commits each
chunk, and the writer that turns chunks into parts, tails or a single PUT.
See ``s3.py``'s docstring for the design; ``S3Assetstore`` is the caller."""

from __future__ import annotations

import base64
import dataclasses
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

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
from .s3_keys import multipart_uploads
from .s3_parts import PieceSender, part_size_for

if TYPE_CHECKING:
    from .s3 import S3Assetstore

__all__ = ["JOURNAL_SPEC", "TAIL_SPEC", "ChunkWriter", "Journal", "Part"]

JOURNAL_SPEC = CollectionSpec("s3_upload_journal")
"""One document per upload in progress: ``{_id: "<assetstoreId>:<uploadId>",
assetstoreId, uploadId, gen, version, parts: [[etag, size, crc32]...], base, mpu,
done, sha512, tail, updated}``."""
TAIL_SPEC = CollectionSpec("s3_upload_tail")
"""Tail segments: ``{_id: "<assetstoreId>:<uploadId>:<gen>:<offset, 20 digits>",
data}``, the bytes not yet in a part, in order."""

MAX_PARTS = 10_000  # S3's limit per multipart upload
_PAGES = 10_000  # bound on paginated listings


class Part(NamedTuple):
    etag: str
    size: int
    crc32: str  # base64, as S3 wants it: parts carry checksums S3 verifies


@dataclass(frozen=True)
class Journal:
    """An upload's committed state; ``version`` grows with every commit."""

    generation: str
    version: int = 0
    parts: tuple[Part, ...] = ()  # parts 1..n
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
                   parts=tuple(Part(str(e), int(s), str(c)) for e, s, c in doc.get("parts") or ()),
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
            # The whole upload in one request: one PUT, streamed as it arrives.
            body = PartBody(self.tail_bytes(upload_id, journal), stream, length, hasher)
            etag = self._put_object(key, body, total)
            return self.commit(upload_id, journal, base=journal.base + total, tail=0,
                               done=etag), [etag]
        # (a streaming upload's size is unknown: this append is a lower bound)
        part_size = part_size_for(size if final_allowed else journal.received + length,
                                  self.store.part_size)
        if not final and total < MIN_PART:
            self.add_tail(upload_id, journal, read_exactly(stream, length, hasher))
            return self.commit(upload_id, journal, tail=total), []
        pieces = even_pieces(total, part_size)  # each >= 5 MiB unless total is (final)
        self._check_parts(len(journal.parts) + len(pieces))
        head = self.tail_bytes(upload_id, journal)
        journal = self._multipart(upload_id, journal, key)
        sender = PieceSender(self, key, journal.multipart_id, len(journal.parts) + 1,
                             self.store.window)
        try:
            done = 0
            for piece in pieces:
                sender.send(head + read_exactly(stream, piece - len(head), hasher, done=done))
                done += piece - len(head)
                head = b""
            sent = sender.finish()
        finally:
            sender.close()
        new = self.commit(upload_id, journal, parts=journal.parts + tuple(sent),
                          base=journal.base + total, tail=0)
        return new, [part.etag for part in sent]

    def _write_unknown(self, upload_id: str, journal: Journal, stream: BinaryIO, *,
                       size: int, final_allowed: bool,
                       hasher: Any) -> tuple[Journal, list[str]]:
        """A chunk read to EOF, cut into parts as they fill up. The stored tail
        is fetched only when it goes into a part (small appends re-read nothing)."""
        key = self.keys.blob(upload_id, journal.generation)
        limit, part_size = size - journal.received, self.store.part_size
        buf, unloaded = bytearray(), journal.tail  # unloaded: tail bytes not in buf
        got, base = 0, journal.base
        sender: PieceSender | None = None

        def load() -> None:
            nonlocal unloaded
            if unloaded:
                buf[0:0] = self.tail_bytes(upload_id, journal)
                unloaded = 0

        def send(data: bytes) -> None:
            nonlocal journal, sender, base
            if sender is None:
                journal = self._multipart(upload_id, journal, key)
                sender = PieceSender(self, key, journal.multipart_id, len(journal.parts) + 1,
                                     self.store.window)
            self._check_parts(sender.next_number)
            sender.send(data)
            base += len(data)

        try:
            for block in _blocks(stream):
                got += len(block)
                if got > limit:
                    raise ValidationError("Received too many bytes.")
                hasher.update(block)
                buf += block
                if unloaded + len(buf) >= part_size:
                    load()
                    send(bytes(buf[:part_size]))
                    del buf[:part_size]
            if got == 0:
                return journal, []
            final = final_allowed and journal.received + got == size
            if final and not journal.parts and sender is None:
                load()
                etag = self._put_object(key, bytes(buf), len(buf))
                return self.commit(upload_id, journal, base=base + len(buf), tail=0,
                                   done=etag), [etag]
            if unloaded + len(buf) and (final or unloaded + len(buf) >= MIN_PART):
                load()
                send(bytes(buf))
                buf = bytearray()
            sent = sender.finish() if sender is not None else []
        finally:
            if sender is not None:
                sender.close()
        if buf:  # after a part, what is left starts a new tail (old segments lie
            # below the new base, where tail_bytes does not look)
            self.add_tail(upload_id, journal if not sent else journal.but(base=base, tail=0),
                          bytes(buf))
        new = self.commit(upload_id, journal, parts=journal.parts + tuple(sent), base=base,
                          tail=unloaded + len(buf))
        return new, [part.etag for part in sent]

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
        parts = [{"PartNumber": i + 1, "ETag": part.etag, "ChecksumCRC32": part.crc32}
                 for i, part in enumerate(journal.parts)]
        try:
            if journal.tail:
                tail = self.tail_bytes(upload_id, journal)
                last = self.upload_part(key, journal.multipart_id, len(parts) + 1, tail)
                parts.append({"PartNumber": len(parts) + 1, "ETag": last.etag,
                              "ChecksumCRC32": last.crc32})
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

    def _multipart(self, upload_id: str, journal: Journal, key: str) -> Journal:
        """The journal with a multipart upload, started (and committed, so that
        nothing S3 holds is unknown to the journal) if there was none."""
        if journal.multipart_id:
            return journal
        with self.store.errors("Starting an S3 multipart upload"):
            mpu = str(self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ChecksumAlgorithm="CRC32",
                **self.put_extra)["UploadId"])
        try:
            return self.commit(upload_id, journal, multipart_id=mpu)
        except ConflictError:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=mpu)
            raise

    def _put_object(self, key: str, body: PartBody | bytes, length: int) -> str:
        return self._send("Storing an upload in S3", body, lambda client: client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentLength=length, **self.put_extra))

    def upload_part(self, key: str, mpu: str, number: int, data: bytes) -> Part:
        """One buffered part (so botocore may re-send it), with its CRC32."""
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        etag = self._send("Sending an upload chunk to S3", data, lambda client: (
            client.upload_part(Bucket=self.bucket, Key=key, UploadId=mpu, PartNumber=number,
                               Body=data, ContentLength=len(data), ChecksumCRC32=crc)))
        return Part(etag, len(data), crc)

    def _send(self, what: str, body: PartBody | bytes, call: Any) -> str:
        # A streamed body cannot be sent twice: its client never retries.
        streamed = isinstance(body, PartBody)
        try:
            reply = call(self.store.stream_client if streamed else self.client)
        except Exception as exc:
            if isinstance(body, PartBody) and body.failure is not None:
                raise body.failure from None  # the client's stream failed, not S3
            if not isinstance(exc, CoreError | ClientError):
                raise self.store.explain(what, exc) from exc  # (see explain)
            raise error_for(exc, what, self.bucket) from exc
        return str(reply["ETag"])


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
