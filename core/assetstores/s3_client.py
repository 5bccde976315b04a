"""S3 building blocks: where a bucket is (from an assetstore document), boto3
clients configured for streaming, the translation of botocore failures into
core errors, the body of a streamed PUT, and a ranged, retrying ``BlobReader``.

Nothing here knows about uploads or reference counts (see ``s3.py``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import boto3
import botocore.loaders
import botocore.session
import urllib3.exceptions
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    ReadTimeoutError,
)

from ..errors import CoreError, NotFoundError, QuotaError, StorageError, ValidationError
from .base import BLOCK_SIZE, BlobReader

__all__ = [
    "MAX_PART", "MIN_PART", "S3_FIELDS", "PartBody", "S3BlobReader", "S3Location",
    "make_client", "read_exactly", "s3_errors", "s3_fields",
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


@dataclass(frozen=True)
class S3Location:
    """Where one S3 assetstore keeps its objects, and how to reach them.

    Field names of the assetstore document are Girder's (``bucket``,
    ``prefix``, ``service``, ``region``, ``accessKeyId``, ``secret``,
    ``inferCredentials``, ``readOnly``, ``serverSideEncryption``), plus ours
    for timeouts and attempts."""

    bucket: str
    prefix: str = ""
    region: str = "us-east-1"
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret: str | None = None
    infer_credentials: bool = False
    read_only: bool = False
    server_side_encryption: bool = False
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    attempts: int = 3

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> S3Location:
        service = str(doc.get("service") or "").strip()
        if service and "://" not in service:
            service = "https://" + service  # Girder accepts host[:port]
        return cls(
            bucket=str(doc.get("bucket") or ""),
            prefix=str(doc.get("prefix") or "").strip("/"),
            region=str(doc.get("region") or "us-east-1"),
            endpoint_url=service or None,
            access_key_id=doc.get("accessKeyId") or None,
            secret=doc.get("secret") or None,
            infer_credentials=bool(doc.get("inferCredentials")),
            read_only=bool(doc.get("readOnly")),
            server_side_encryption=bool(doc.get("serverSideEncryption")),
            connect_timeout=float(doc.get("connectTimeout") or 10.0),
            read_timeout=float(doc.get("readTimeout") or 60.0),
            attempts=max(1, int(doc.get("attempts") or 3)),
        )

    @property
    def key_prefix(self) -> str:
        """The prefix as keys start with it: ``""`` or ``"a/b/"``."""
        return f"{self.prefix}/" if self.prefix else ""


def make_client(loc: S3Location, *, retries: bool = True) -> Any:
    """A thread-safe boto3 S3 client.

    Payloads are not SHA-256 signed and no checksums are computed: a streamed
    part is read once, straight from the client's request. Streamed bodies
    cannot be rewound, so their client (``retries=False``) never re-sends.
    """
    core = botocore.session.Session()
    core.register_component("data_loader", _data_loader())
    if loc.infer_credentials:  # boto3's default chain: environment, profile, role...
        session = boto3.session.Session(botocore_session=core, region_name=loc.region)
    else:
        session = boto3.session.Session(botocore_session=core,
                                        aws_access_key_id=loc.access_key_id or "",
                                        aws_secret_access_key=loc.secret or "",
                                        region_name=loc.region)
    config = Config(
        connect_timeout=loc.connect_timeout, read_timeout=loc.read_timeout,
        retries={"mode": "standard", "total_max_attempts": loc.attempts if retries else 1},
        s3={"addressing_style": "path" if loc.endpoint_url else "auto",
            "payload_signing_enabled": False},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=64, signature_version="s3v4")
    return session.client("s3", endpoint_url=loc.endpoint_url, config=config)


@functools.cache
def _data_loader() -> Any:
    """botocore's loader of its JSON data files (service models, endpoints).
    They are static, and parsing them costs ~0.1 s per new session: every
    client shares one loader, as every client of boto3's default session does."""
    return botocore.loaders.create_loader()


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


def read_exactly(stream: BinaryIO, length: int, hasher: Any) -> bytes:
    """``length`` bytes of ``stream`` (never more), fed to ``hasher``. A failing
    stream is ``StorageError``, a short one ``ValidationError``."""
    body = PartBody(b"", stream, length, hasher)
    chunks = []
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

    def __init__(self, head: bytes, stream: BinaryIO, length: int, hasher: Any) -> None:
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
            self.failure = StorageError(f"The upload stream failed after {self.received} "
                                        f"bytes: {exc}")
            raise self.failure from exc
        if not data:
            self.failure = ValidationError(f"Expected {self._length} bytes, the stream ended "
                                           f"after {self.received}.")
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
        self._lock = threading.Lock()
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


def even_pieces(total: int, limit: int = MAX_PART) -> list[int]:
    """``total`` split into the fewest near-equal pieces of at most ``limit``."""
    count = max(1, math.ceil(total / limit))
    base, extra = divmod(total, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


S3_FIELDS = ("bucket", "prefix", "service", "region", "accessKeyId", "secret",
             "inferCredentials", "readOnly", "serverSideEncryption", "connectTimeout",
             "readTimeout", "attempts")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
_SERVICE_RE = re.compile(r"^(https?://)?[A-Za-z0-9.-]+(:\d{1,5})?/?$")


def s3_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The validated S3 fields of an assetstore document (Girder's names)."""
    out: dict[str, Any] = {}
    bucket = str(fields.get("bucket") or "").strip()
    if not _BUCKET_RE.match(bucket):
        raise ValidationError("A valid S3 bucket name is required.", field="bucket")
    out["bucket"] = bucket
    out["prefix"] = str(fields.get("prefix") or "").strip().strip("/")
    service = str(fields.get("service") or "").strip()
    if service and not _SERVICE_RE.match(service):
        raise ValidationError("The S3 service must look like [http[s]://]host[:port].",
                              field="service")
    out["service"] = service.rstrip("/")
    out["region"] = str(fields.get("region") or "").strip() or "us-east-1"
    for flag in ("inferCredentials", "readOnly", "serverSideEncryption"):
        out[flag] = _flag(fields.get(flag), flag)
    out["accessKeyId"] = str(fields.get("accessKeyId") or "").strip()
    out["secret"] = str(fields.get("secret") or "").strip()
    if not out["inferCredentials"] and not (out["accessKeyId"] and out["secret"]):
        raise ValidationError("Give accessKeyId and secret, or set inferCredentials to use "
                              "the default credential chain.", field="accessKeyId")
    for name, low, high in (("connectTimeout", 0.1, 600), ("readTimeout", 0.1, 3600),
                            ("attempts", 1, 10)):
        if fields.get(name) in (None, ""):
            continue
        try:
            value = float(fields[name])
        except (TypeError, ValueError):
            raise ValidationError(f"{name} must be a number.", field=name) from None
        if not low <= value <= high:
            raise ValidationError(f"{name} must be between {low} and {high}.", field=name)
        out[name] = int(value) if name == "attempts" else value
    return out


def _flag(value: Any, name: str) -> bool:
    if value in (None, ""):
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValidationError(f"{name} must be true or false.", field=name)
