"""The S3 assetstore's key layout, and listings of a bucket."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from .base import ImportEntry

__all__ = ["UploadKeys", "list_level", "multipart_uploads"]

_PAGES = 10_000_000  # bound on paginated listings (1000 keys a page)
_BLOB_RE = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{2})/([A-Za-z0-9_-]{1,128})\.([0-9a-f]{32})$")
_FANOUT_DIR_RE = re.compile(r"^[0-9a-f]{2}/([0-9a-f]{2}/)?$")


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


def list_level(client: Any, bucket: str, path: str,
               keys: UploadKeys) -> Iterator[ImportEntry]:
    """The folders and objects right under the key prefix ``path``, but the
    ones of ``keys``' layout."""
    prefix = path.strip("/")
    prefix = f"{prefix}/" if prefix else ""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
    for _ in range(_PAGES):
        page = client.list_objects_v2(**kwargs)
        for common in page.get("CommonPrefixes") or ():
            sub = common["Prefix"]
            if not keys.is_managed(sub):
                yield ImportEntry("dir", sub[len(prefix):].rstrip("/"), sub, 0, None)
        for obj in page.get("Contents") or ():
            key = obj["Key"]
            name = key[len(prefix):]
            if name and not key.endswith("/") and not keys.is_managed(key):
                yield ImportEntry("file", name, key, int(obj["Size"]), obj.get("LastModified"))
        if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
            return
        kwargs["ContinuationToken"] = page["NextContinuationToken"]


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
