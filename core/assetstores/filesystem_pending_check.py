"""``joist check`` for the pending blobs of a filesystem assetstore (see
``filesystem_pending``): their files under ``pending/``, their count documents
and tombstones, against the references the file records hold.

A pending blob with the right count is healthy: its hand-over is queued or
under way. One whose count has not changed for ``GRACE`` seconds (the
hand-over of a process that died with it queued, not yet swept) is reported
``pending-handover``, and the caller's repair runs the hand-over (it moves
file records, which an adapter does not see); a hand-over interrupted half way
shows as counts too high, here or on the content blob. Tombstones are no
problem (``PendingBlobs.prune`` drops them after ``GRACE``), but a pending
name left beside one is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .base import Problem, ProblemKind
from .filesystem_pending import GRACE, PENDING_DIR, PENDING_KEY_RE
from .localio import locked

if TYPE_CHECKING:
    from .filesystem import FilesystemAssetstore

__all__ = ["check_pending", "count_problem", "repair_pending"]


def check_pending(store: FilesystemAssetstore, live_references: Mapping[str, int] | None,
                  settled_before: float | None, seen_live: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    for key, size, mtime, doc in _merged(store):
        if key is None:  # a name the assetstore did not write
            problems.append(Problem(ProblemKind.UNKNOWN_FILE, "not a pending blob",
                                    f"{PENDING_DIR}/{doc}"))
            continue
        live = None if live_references is None else live_references.get(key, 0)
        if live_references is not None and key in live_references:
            seen_live.add(key)
        problem = _judge(key, size, mtime, doc, live, settled_before)
        if problem is not None:  # confirm against a quiet blob
            with locked(store.pending.lock(key)):
                size, mtime, doc = _exact(store, key)
                problem = _judge(key, size, mtime, doc, live, settled_before)
        if problem is not None:
            problems.append(problem)
    return problems


def repair_pending(store: FilesystemAssetstore, key: str, live: int,
                   settled_before: float | None) -> bool:
    """Make a pending blob's file and count agree with ``live`` (a
    ``pending-handover`` is left to the caller: False)."""
    if not PENDING_KEY_RE.match(key):
        return False
    with locked(store.pending.lock(key)):
        size, mtime, doc = _exact(store, key)
        ref_id = store.ref_id(key)
        if doc is not None and doc.get("movedTo"):
            if size is not None:
                store.pending.unlink(key)  # the content blob holds the bytes
            if _settled(doc):
                store.refs.delete_one({"_id": ref_id, "movedTo": {"$exists": True}})
            return True
        recent = _recent(_stamp(doc) if doc is not None else mtime, settled_before)
        if size is None:
            if live > 0:
                return False  # referenced bytes are gone
            if doc is not None and not recent:
                store.refs.delete_one({"_id": ref_id})
            return not recent
        counted = doc.get("refs", 0) if doc is not None else 0
        if recent and counted > live:
            return False  # a copy or finalize may be about to write its record
        if live == 0:
            store.pending.unlink(key)
            store.refs.delete_one({"_id": ref_id})
            return True
        store.refs.update_one({"_id": ref_id}, {"$set": {
            "refs": live, "size": size, "assetstoreId": store.assetstore_id, "sha512": key,
            "updated": _now()}}, upsert=True)
        return True  # the caller then runs the hand-over


def _judge(key: str, size: int | None, mtime: float, doc: Mapping[str, Any] | None,
           live: int | None, settled_before: float | None) -> Problem | None:
    if doc is not None and doc.get("movedTo"):
        if size is not None and not _recent(_stamp(doc), settled_before):
            return Problem(ProblemKind.ORPHAN_BLOB, "a pending name left after its hand-over",
                           key)
        return None  # a redirect for readers, pruned after GRACE
    if _recent(_stamp(doc) if doc is not None else mtime, settled_before):
        return None  # a finalize, copy, delete or hand-over may be between two steps
    counted = doc.get("refs", 0) if doc is not None else None
    if size is None:
        if live or counted:
            return Problem(ProblemKind.MISSING_BLOB,
                           f"{live or counted} reference(s) to pending bytes that are gone",
                           key)
        return Problem(ProblemKind.STALE_REFS, "count left at 0 by an interrupted delete",
                       key)
    problem = count_problem(key, size, doc, live, counted, "pending bytes")
    if problem is not None:
        return problem
    if doc is not None and _settled(doc):
        return Problem(ProblemKind.PENDING_HANDOVER,
                       f"{size} bytes not hashed and deduplicated after {GRACE:.0f} s", key)
    return None


def count_problem(key: str, size: int, doc: Mapping[str, Any] | None, live: int | None,
                  counted: int | None, what: str) -> Problem | None:
    """What is wrong between bytes that are there and their count document
    (shared with pending blobs): a size or a count that disagrees, or no
    count at all."""
    if doc is not None and doc.get("size") != size:
        return Problem(ProblemKind.SIZE_MISMATCH,
                       f"{size} bytes on disk, {doc.get('size')} recorded", key)
    if live is not None and live != (counted or 0):
        return Problem(ProblemKind.REFCOUNT_MISMATCH,
                       f"counted {counted or 0}, {live} file record(s)", key)
    if not counted:
        return Problem(ProblemKind.ORPHAN_BLOB, f"{size} {what} nothing counts", key)
    return None


def _merged(store: FilesystemAssetstore) -> Iterator[tuple[Any, int | None, float, Any]]:
    """(key, size or None, mtime, count document or None) for every pending
    file or document, in key order; (None, None, 0, name) for a stray name."""
    files = iter(sorted(store.pending.files()))
    docs = store.pending.docs()
    entry, doc = next(files, None), next(docs, None)
    while entry is not None or doc is not None:
        if entry is not None and entry[1] < 0:
            yield None, None, 0.0, entry[0]
            entry = next(files, None)
            continue
        doc_key = doc["sha512"] if doc is not None else None
        if entry is not None and (doc_key is None or entry[0] < doc_key):
            yield entry[0], entry[1], entry[2], None
            entry = next(files, None)
        elif entry is None or (doc_key is not None and doc_key < entry[0]):
            yield doc_key, None, 0.0, doc
            doc = next(docs, None)
        else:
            yield entry[0], entry[1], entry[2], doc
            entry, doc = next(files, None), next(docs, None)


def _exact(store: FilesystemAssetstore, key: str) -> tuple[int | None, float, Any]:
    try:
        st = os.stat(store.pending.path(key))
        size: int | None = st.st_size
        mtime = st.st_mtime
    except FileNotFoundError:
        size, mtime = None, 0.0
    return size, mtime, store.refs.find_one({"_id": store.ref_id(key)})


def _settled(doc: Mapping[str, Any]) -> bool:
    """Unchanged for ``GRACE`` seconds."""
    stamp = _stamp(doc)
    return stamp is None or stamp < time.time() - GRACE


def _recent(when: float | None, settled_before: float | None) -> bool:
    return settled_before is not None and when is not None and when >= settled_before


def _stamp(doc: Mapping[str, Any] | None) -> float | None:
    value = doc.get("updated") if doc is not None else None
    return value.timestamp() if isinstance(value, datetime) else None


def _now() -> Any:
    from .filesystem import _now as now
    return now()
