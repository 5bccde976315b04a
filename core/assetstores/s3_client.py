"""S3 building blocks: the translation of botocore failures into core errors,
the body of a streamed PUT, and a ranged, retrying ``BlobReader``.

Nothing here knows about uploads or reference counts (see ``s3.py``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

import urllib3.exceptions
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    ReadTimeoutError,
)

from ..errors import CoreError, NotFoundError, QuotaError, StorageError, ValidationError
from .base import BLOCK_SIZE, BlobReader

__all__ = [
    "MAX_PART", "MIN_PART", "PartBody", "S3BlobReader", "error_for", "even_pieces",
    "read_exactly", "s3_errors",
]

log = logging.getLogger(__name__)

MIN_PART = 5 << 20
"""S3's smallest part but the last of a multipart upload."""
MAX_PART = 5 << 30
"""S3's largest part, and largest single PUT."""

_CREDENTIAL_CODES = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken",
    "ExpiredToken", "AuthorizationHeaderMalformed", "InvalidClientTokenId", "403",
    "Forbidden", "AllAccessDisabled"})
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_QUOTA_CODES = frozenset({"QuotaExceeded", "XMinioStorageFull", "InsufficientStorage"})
# Failures of a connection or a response body, worth a retry when reading.
_TRANSIENT = (BotoCoreError, urllib3.exceptions.HTTPError, OSError)


def error_for(exc: BaseException, what: str, bucket: str) -> CoreError:
    """The core error for a boto3 failure. Messages name no credentials and no
    endpoint (clients see them); the details go to the log."""
    if isinstance(exc, CoreError):
        return exc
    err: CoreError
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket":
            err = StorageError(f"{what}: the S3 bucket {bucket!r} does not exist.")
        elif code in _CREDENTIAL_CODES:
            err = StorageError(f"{what}: S3 refused the credentials or the access ({code}).")
        elif code == "NoSuchUpload":
            err = NotFoundError(f"{what}: the S3 multipart upload is gone "
                                "(finalized or aborted).")
        elif code in _MISSING_KEY_CODES:
            err = StorageError(f"{what}: the S3 object is missing.")
        elif code in _QUOTA_CODES:
            err = QuotaError(f"{what}: the S3 storage is full.")
        else:
            err = StorageError(f"{what}: S3 answered {code or 'an error'}.")
    elif isinstance(exc, NoCredentialsError):
        err = StorageError(f"{what}: no S3 credentials were found.")
    elif isinstance(exc, ConnectTimeoutError | ReadTimeoutError | TimeoutError
                    | urllib3.exceptions.TimeoutError):
        err = StorageError(f"{what}: the S3 endpoint did not answer in time.")
    else:
        err = StorageError(f"{what}: the S3 endpoint failed or cannot be reached.")
    log.warning("%s: %s: %s", what, type(exc).__name__, exc)
    err.__cause__ = exc
    return err


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


@contextlib.contextmanager
def s3_errors(what: str, bucket: str) -> Iterator[None]:
    """Turn boto3/botocore/connection failures into core errors."""
    try:
        yield
    except CoreError:
        raise
    except (ClientError, BotoCoreError, urllib3.exceptions.HTTPError, OSError) as exc:
        raise error_for(exc, what, bucket) from exc


def read_exactly(stream: BinaryIO, length: int, hasher: Any, *, done: int = 0) -> bytes:
    """``length`` bytes of ``stream`` (never more), fed to ``hasher``. A failing
    stream is ``StorageError``, a short one ``ValidationError`` (their messages
    count ``done`` bytes the caller took from the stream before)."""
    body = PartBody(b"", stream, length, hasher, done=done)
    chunks: list[bytes] = []
    while True:
        block = body.read(BLOCK_SIZE)
        if not block:
            return b"".join(chunks)
        chunks.append(block)


class PartBody:
    """The body of one streamed PUT: ``head`` (bytes already received and
    hashed), then exactly ``length`` bytes of ``stream``, hashed as they pass.

    botocore reports any exception raised here as a connection failure, so
    the real cause is kept in ``failure`` for the caller to raise instead.
    Deliberately not seekable: a half-sent body must fail, not be re-sent.
    """

    def __init__(self, head: bytes, stream: BinaryIO, length: int, hasher: Any, *,
                 done: int = 0) -> None:
        self._done = done
        self._head = memoryview(head)
        self._stream = stream
        self._length = length
        self._left = length
        self._hasher = hasher
        self.failure: CoreError | None = None

    @property
    def received(self) -> int:
        """Bytes taken from the stream so far."""
        return self._length - self._left

    def __len__(self) -> int:
        return len(self._head) + self._left

    def read(self, size: int | None = -1) -> bytes:
        if self._head:
            n = len(self._head) if size is None or size < 0 else min(size, len(self._head))
            out, self._head = bytes(self._head[:n]), self._head[n:]
            return out
        if self._left <= 0:
            return b""
        want = self._left if size is None or size < 0 else min(size, self._left)
        try:
            data = self._stream.read(want)
        except CoreError as exc:
            self.failure = exc
            raise
        except Exception as exc:
            self.failure = StorageError("The upload stream failed after "
                                        f"{self._done + self.received} bytes: {exc}")
            raise self.failure from exc
        if not data:
            self.failure = ValidationError(f"Expected {self._done + self._length} bytes, the "
                                           f"stream ended after {self._done + self.received}.")
            raise self.failure
        self._hasher.update(data)
        self._left -= len(data)
        return bytes(data)


_BULK_READ = 256 << 10  # a read this big at offset 0 starts a whole-object GET


class S3BlobReader(BlobReader):
    """A blob read with ranged GETs. Sequential reads share one open GET to the
    end of the object (no request per block): a big read at 0 or a read where
    the previous one ended opens it. Other reads fetch exactly their range. A
    body that fails midway is resumed from the last byte received, up to
    ``attempts`` times."""

    def __init__(self, client: Any, bucket: str, key: str, *, size: int,
                 attempts: int = 3) -> None:
        super().__init__()
        self._client, self._bucket, self._key = client, bucket, key
        self._size = size
        self._attempts = max(1, attempts)
        self._lock = threading.Lock()  # guards the open response body and its position
        self._body: Any = None
        self._body_pos = -1
        self._last_end = -1  # a second read where the first ended opens a stream

    @classmethod
    def open(cls, client: Any, bucket: str, key: str, *, expected_size: int | None = None,
             attempts: int = 3) -> S3BlobReader:
        """``StorageError`` when the object is missing or not ``expected_size``."""
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise error_for(exc, "Opening an S3 blob", bucket) from exc
        size = int(head["ContentLength"])
        if expected_size is not None and expected_size != size:
            raise StorageError(f"S3 object {key} holds {size} bytes, the file record says "
                               f"{expected_size}.")
        return cls(client, bucket, key, size=size, attempts=attempts)

    @property
    def size(self) -> int:
        return self._size

    def _read_range(self, offset: int, size: int) -> bytes:
        with self._lock:
            if offset == self._body_pos or (
                    self._body is None and size < self._size - offset and
                    (offset == self._last_end or (offset == 0 and size >= _BULK_READ))):
                return self._from_stream(offset, size)
        data = self._fetch(offset, size)
        self._last_end = offset + len(data)
        return data

    def _from_stream(self, offset: int, size: int) -> bytes:
        """Read at the open GET's position (opening one to the end if needed);
        the caller holds the lock."""
        chunks: list[bytes] = []
        got = 0
        for attempt in range(self._attempts + 1):
            try:
                if self._body is None or self._body_pos != offset + got:
                    self._open_body(offset + got)
                while got < size:
                    data = self._body.read(min(size - got, 8 * BLOCK_SIZE))
                    if not data:
                        break
                    chunks.append(data)
                    got += len(data)
                    self._body_pos += len(data)
                break
            except CoreError:
                self._close_body()
                raise
            except _TRANSIENT as exc:
                self._close_body()
                if attempt >= self._attempts:
                    raise error_for(exc, "Reading an S3 blob", self._bucket) from exc
        self._last_end = offset + got
        return b"".join(chunks)

    def _open_body(self, start: int) -> None:
        self._close_body()
        # No Range from 0: some servers (moto) work harder for any ranged GET.
        extra = {"Range": f"bytes={start}-"} if start else {}
        try:
            reply = self._client.get_object(Bucket=self._bucket, Key=self._key, **extra)
        except ClientError as exc:
            raise error_for(exc, "Reading an S3 blob", self._bucket) from exc
        self._body, self._body_pos = reply["Body"], start

    def _fetch(self, offset: int, size: int) -> bytes:
        chunks: list[bytes] = []
        got = 0
        for attempt in range(self._attempts + 1):
            try:
                reply = self._client.get_object(
                    Bucket=self._bucket, Key=self._key,
                    Range=f"bytes={offset + got}-{offset + size - 1}")
                with contextlib.closing(reply["Body"]) as body:
                    while got < size:
                        data = body.read(size - got)
                        if not data:
                            break
                        chunks.append(data)
                        got += len(data)
                break
            except ClientError as exc:
                raise error_for(exc, "Reading an S3 blob", self._bucket) from exc
            except _TRANSIENT as exc:
                if attempt >= self._attempts:
                    raise error_for(exc, "Reading an S3 blob", self._bucket) from exc
        return b"".join(chunks)

    def _close_body(self) -> None:
        body, self._body, self._body_pos = self._body, None, -1
        if body is not None:
            with contextlib.suppress(Exception):
                body.close()

    def close(self) -> None:
        with self._lock:
            self._close_body()
        super().close()


def even_pieces(total: int, limit: int = MAX_PART, minimum: int = MIN_PART) -> list[int]:
    """``total`` split into near-equal pieces of about ``limit`` at most, each
    at least ``minimum`` (when ``total`` is: S3's smallest non-final part)."""
    count = max(1, math.ceil(total / limit))
    if total >= minimum:
        count = max(1, min(count, total // minimum))
    base, extra = divmod(total, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


