"""Reference counts of the S3 assetstore's blobs, in the metadata store.

One document per content (``BLOB_REFS_SPEC``, ``_id = "<assetstoreId>:<sha512>"``)
names the key holding it and counts the file records sharing it. Every change
is one atomic update, so processes race safely:

* a finalize *claims* live content (refs > 0) and drops its own copy; failing
  that, it *takes over* a document at 0 (a copy being deleted: the deleter
  still removes the old key, whose name it already read) or inserts one;
* a delete decrements; at 0 it removes the object, then the document unless
  someone took it over meanwhile (``refcount.release_reference``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..db.engine import Collection, DuplicateKeyError
from ..errors import StorageError
from .refcount import release_reference

__all__ = ["RefCounts"]

_COUNT_ATTEMPTS = 32  # rounds of the claim/insert race before giving up


class RefCounts:
    def __init__(self, refs: Collection, assetstore_id: str) -> None:
        self.refs = refs
        self.assetstore_id = assetstore_id

    def ref_id(self, sha512: str) -> str:
        return f"{self.assetstore_id}:{sha512}"

    def claim(self, digest: str) -> str | None:
        """Count one more reference to live content; its key, or None."""
        doc = self.refs.find_one_and_update(
            {"_id": self.ref_id(digest), "refs": {"$gt": 0}},
            {"$inc": {"refs": 1}, "$set": {"updated": _now()}})
        return None if doc is None else str(doc["s3Key"])

    def add(self, digest: str, key: str) -> bool:
        """One more reference to live content held at ``key`` (a copy)."""
        return self.refs.update_one(
            {"_id": self.ref_id(digest), "refs": {"$gt": 0}, "s3Key": key},
            {"$inc": {"refs": 1}, "$set": {"updated": _now()}}).matched > 0

    def count_new(self, digest: str, size: int, key: str) -> str:
        """Count a reference for content just installed at ``key``: share the
        live copy if there is one, else make ``key`` the copy. Returns the key
        the content is counted at."""
        rid = self.ref_id(digest)
        for _ in range(_COUNT_ATTEMPTS):
            claimed = self.claim(digest)
            if claimed is not None:
                return claimed
            taken = self.refs.update_one(
                {"_id": rid, "refs": {"$lte": 0}},
                {"$set": {"refs": 1, "s3Key": key, "size": size, "updated": _now()}})
            if taken.matched:
                return key
            try:
                self.refs.insert_one({"_id": rid, "assetstoreId": self.assetstore_id,
                                      "sha512": digest, "size": size, "s3Key": key,
                                      "refs": 1, "updated": _now()})
                return key
            except DuplicateKeyError:
                continue  # someone counted first: claim theirs
        raise StorageError(f"Could not count blob {digest[:16]}...: too much contention.")

    def counted_key(self, digest: str) -> str | None:
        """The key live content ``digest`` is counted at, if any."""
        if not digest:
            return None
        doc = self.refs.find_one({"_id": self.ref_id(digest)})
        return str(doc["s3Key"]) if doc and doc.get("refs", 0) > 0 else None

    def release(self, digest: str, delete_object: Callable[[str], bool]) -> None:
        """One reference fewer; with the last one, ``delete_object(key)`` and,
        if it succeeded, the document."""
        release_reference(self.refs, self.ref_id(digest), digest, self.assetstore_id,
                          lambda doc: delete_object(str(doc["s3Key"])))


def _now() -> Any:
    return datetime.now(UTC)
