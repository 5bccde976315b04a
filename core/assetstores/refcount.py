"""Releasing one reference to content-addressed bytes: the same protocol for
every assetstore that counts its blobs in ``BLOB_REFS_SPEC`` documents
(filesystem, S3)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from ..db.engine import Collection, Document

__all__ = ["release_reference"]

log = logging.getLogger(__name__)


def release_reference(refs: Collection, ref_id: str, digest: str, assetstore_id: str,
                      delete_bytes: Callable[[Document], bool]) -> None:
    """One reference fewer; with the last one, ``delete_bytes(count document)``
    and, if it succeeded, the document.

    Bytes first, then the count: a crash or failure in between leaves a count
    at 0 naming the bytes (stale-refs, for ``joist check``), never a count for
    bytes that are gone. The guard on refs keeps a document that a finalize
    took over meanwhile (refs back at 1)."""
    doc = refs.find_one_and_update(
        {"_id": ref_id, "refs": {"$gt": 0}},
        {"$inc": {"refs": -1}, "$set": {"updated": datetime.now(UTC)}})
    if doc is None:
        log.warning("delete of blob %s in assetstore %s: no reference count; "
                    "left for `joist check`", digest, assetstore_id)
        return
    if doc["refs"] > 0:
        return
    if delete_bytes(doc):
        refs.delete_one({"_id": ref_id, "refs": {"$lte": 0}})
