"""Where an S3 assetstore is and how to reach it: the assetstore document's
fields (Girder's names), their validation, and boto3 clients configured for
streaming."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3  # type: ignore[import-untyped]
import botocore.loaders  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]

from ..errors import ValidationError

__all__ = ["S3_FIELDS", "S3Location", "make_client", "s3_fields"]


@dataclass(frozen=True)
class S3Location:
    """Where one S3 assetstore keeps its objects, and how to reach them.

    Field names of the assetstore document are Girder's (``bucket``,
    ``prefix``, ``service``, ``region``, ``accessKeyId``, ``secret``,
    ``inferCredentials``, ``readOnly``, ``serverSideEncryption``,
    ``allowS3AcceleratedTransfer``), plus ours
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
    accelerated_transfer: bool = False  # Girder's allowS3AcceleratedTransfer
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
            accelerated_transfer=bool(doc.get("allowS3AcceleratedTransfer")),
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


S3_FIELDS = ("bucket", "prefix", "service", "region", "accessKeyId", "secret",
             "inferCredentials", "readOnly", "serverSideEncryption",
             "allowS3AcceleratedTransfer", "connectTimeout",
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
    for flag in ("inferCredentials", "readOnly", "serverSideEncryption",
                 "allowS3AcceleratedTransfer"):
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
