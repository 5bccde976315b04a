"""``joist check`` for the GridFS assetstore: compare ``fs.files``,
``fs.chunks`` and ``fs.uploads`` with each other and (when the caller gives
them) with the file records' true reference counts, and repair.

The listings are read chunks first, then uploads, then blobs: an upload's
document is written before its first chunk and deleted only after its chunks
became a blob or were dropped, so work in flight is never mistaken for chunks
that nothing owns. ``settled_before`` protects recent work, as in ``base.py``.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from bson.errors import InvalidId

from .base import Problem, ProblemKind
from .filesystem import SHA512_RE
from .gridfs_io import now_ms

if TYPE_CHECKING:
    from .gridfs import GridFSAssetstore

__all__ = ["GridFSChecker"]

CHUNK_SET = "chunks:"
"""``ref`` prefix of chunks no upload and no blob owns (ref: ``chunks:<files_id>``)."""

_BLOB_KINDS = frozenset(ProblemKind) - {ProblemKind.STALE_TEMP, ProblemKind.UNKNOWN_FILE}
_CONTENT_KINDS = frozenset({ProblemKind.SIZE_MISMATCH, ProblemKind.HASH_MISMATCH})


class GridFSChecker:
    """Check and repair one ``GridFSAssetstore``; see ``AssetstoreAdapter.check``."""

    def __init__(self, store: GridFSAssetstore) -> None:
        self.store = store

    # -- check ----------------------------------------------------------------
    def check(self, live_uploads: AbstractSet[str],
              live_references: Mapping[str, int] | None = None, *,
              settled_before: float | None = None, deep: bool = False) -> list[Problem]:
        s = self.store
        counts = {g["_id"]: int(g["n"]) for g in s.chunks.aggregate(
            [{"$group": {"_id": "$files_id", "n": {"$sum": 1}}}])}
        problems: list[Problem] = []
        owned: set[Any] = set()
        for up in s.uploads.find({}, projection=["filesId", "updated"], sort=[("_id", 1)]):
            owned.add(up.get("filesId"))
            if str(up["_id"]) in live_uploads or _recent(up.get("updated"), settled_before):
                continue
            problems.append(Problem(ProblemKind.STALE_TEMP,
                                    f"{counts.get(up.get('filesId'), 0)} chunk(s) of an "
                                    "upload that no longer exists", str(up["_id"])))
        by_digest: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for doc in s.files.find({}, projection=["length", "chunkSize", "metadata"],
                                sort=[("_id", 1)]):
            owned.add(doc["_id"])
            digest = (doc.get("metadata") or {}).get("sha512")
            if isinstance(digest, str) and SHA512_RE.match(digest):
                by_digest[digest].append(doc)
            else:
                problems.append(Problem(ProblemKind.UNKNOWN_FILE, "a GridFS file the "
                                        "assetstore did not write", f"files:{doc['_id']}"))
        for files_id, count in counts.items():
            if files_id in owned or (isinstance(files_id, ObjectId) and _recent(
                    files_id.generation_time, settled_before)):
                continue
            problems.append(Problem(ProblemKind.STALE_TEMP, f"{count} chunk(s) that no "
                                    "upload and no blob owns", f"{CHUNK_SET}{files_id}"))
        live_digests: set[str] = set()
        for digest in sorted(by_digest):
            live = None if live_references is None else live_references.get(digest, 0)
            for doc in by_digest[digest]:
                refs = int((doc.get("metadata") or {}).get("refs", 0))
                if refs > 0:
                    live_digests.add(digest)
                problem = self._judge(digest, doc, counts.get(doc["_id"], 0), live,
                                      settled_before, deep)
                if problem is not None:
                    problems.append(problem)
        for digest, count in (live_references or {}).items():
            if count > 0 and digest not in live_digests:
                problems.append(Problem(ProblemKind.MISSING_BLOB, f"{count} file record(s) "
                                        "point at bytes that are gone", digest))
        return problems

    def _judge(self, digest: str, doc: Mapping[str, Any], chunks: int, live: int | None,
               settled_before: float | None, deep: bool) -> Problem | None:
        meta = doc.get("metadata") or {}
        refs = int(meta.get("refs", 0))
        if _recent(meta.get("updated"), settled_before):
            return None  # a finalize, copy or delete may be between two steps
        if refs <= 0:
            return Problem(ProblemKind.STALE_REFS, "left at 0 references by an "
                           "interrupted delete", digest)
        expected = _chunk_count(doc)
        if chunks != expected:
            if chunks == 0:
                return Problem(ProblemKind.MISSING_BLOB, f"counted {refs} time(s) but the "
                               "bytes are gone", digest)
            return Problem(ProblemKind.SIZE_MISMATCH, f"{chunks} chunk(s) stored, "
                           f"{expected} for {doc.get('length')} bytes", digest)
        if deep:
            actual = self.content_hash(doc)
            if actual != digest:
                return Problem(ProblemKind.HASH_MISMATCH, "blob content does not match its "
                               "SHA-512" if actual else "blob chunks are damaged", digest)
        if live is not None and live != refs:
            return Problem(ProblemKind.REFCOUNT_MISMATCH,
                           f"counted {refs}, {live} file record(s)", digest)
        return None

    def content_hash(self, doc: Mapping[str, Any]) -> str | None:
        """SHA-512 of a blob read with pymongo's own GridFS reader (which also
        checks every chunk's number and length); None when damaged."""
        from gridfs import GridOut
        from gridfs.errors import CorruptGridFile, NoFile
        hasher = hashlib.sha512()
        try:
            reader = GridOut(self.store.db.get_collection(self.store.bucket),
                             file_document=dict(doc))
            while block := reader.readchunk():
                hasher.update(block)
        except (CorruptGridFile, NoFile):
            return None
        return hasher.hexdigest()

    # -- repair ---------------------------------------------------------------
    def repair(self, problems: Iterable[Problem], *, live_references: Mapping[str, int],
               settled_before: float | None = None) -> list[Problem]:
        left: list[Problem] = []
        by_digest: dict[str, list[Problem]] = {}
        for problem in problems:
            if problem.kind == ProblemKind.STALE_TEMP:
                done = (self._drop_chunk_set(problem.ref[len(CHUNK_SET):], settled_before)
                        if problem.ref.startswith(CHUNK_SET)
                        else self._drop_upload(problem.ref, settled_before))
                if not done:
                    left.append(problem)
            elif problem.kind in _BLOB_KINDS and SHA512_RE.match(problem.ref):
                by_digest.setdefault(problem.ref, []).append(problem)
            else:  # GridFS files we did not write are for a human to look at
                left.append(problem)
        for digest, found in by_digest.items():
            verify = any(p.kind in _CONTENT_KINDS for p in found)
            if not self._reconcile(digest, live_references.get(digest, 0), settled_before,
                                   verify):
                left.extend(found)
        return left

    # -- untracked uploads ----------------------------------------------------
    def untracked(self, known: AbstractSet[str], *, older_than: float | None,
                  delete: bool) -> list[dict[str, Any]]:
        """Upload documents (and their chunks) of uploads not in ``known``."""
        s = self.store
        out: list[dict[str, Any]] = []
        for up in s.uploads.find({}, projection=["received", "updated"], sort=[("_id", 1)]):
            upload_id, updated = str(up["_id"]), up.get("updated")
            if upload_id in known or _recent(updated, older_than):
                continue
            if delete and not self._drop_upload(upload_id, older_than):
                continue
            out.append({"assetstoreId": s.assetstore_id, "uploadId": upload_id,
                        "size": int(up.get("received") or 0), "updated": updated,
                        "untracked": True})
        return out

    def _drop_upload(self, upload_id: str, settled_before: float | None) -> bool:
        s = self.store
        doc = s.uploads.find_one({"_id": upload_id})
        if doc is None:
            return True
        if _recent(doc.get("updated"), settled_before):
            return False
        # The document first: a writer still at work fails its next renewal.
        s.uploads.delete_one({"_id": upload_id, "filesId": doc.get("filesId")})
        s.drop_chunks(doc.get("filesId"))
        s.hashes.forget(upload_id)
        return True

    def _drop_chunk_set(self, ref: str, settled_before: float | None) -> bool:
        s = self.store
        try:
            files_id: Any = ObjectId(ref)
        except (InvalidId, TypeError):
            files_id = ref
        if isinstance(files_id, ObjectId) and _recent(files_id.generation_time,
                                                      settled_before):
            return False
        if s.uploads.count_documents({"filesId": files_id}, limit=1):
            return False  # an upload owns them after all
        s.drop_chunks(files_id)
        return True

    def _reconcile(self, digest: str, live: int, settled_before: float | None,
                   verify: bool) -> bool:
        """Make the blob(s) of ``digest`` agree with ``live`` references; False
        when that cannot be done (bytes in use are gone or damaged, or a count
        changed too recently to judge)."""
        s, ok, kept = self.store, True, False
        for doc in s.files.find({"metadata.sha512": digest}):
            meta = doc.get("metadata") or {}
            refs = int(meta.get("refs", 0))
            if _recent(meta.get("updated"), settled_before) and (refs <= 0 or refs > live):
                ok = False  # a delete, copy or upload may be between two steps
                continue
            if refs > 0 and not self._damaged(doc, verify) and live > 0:
                if refs != live:
                    s.files.update_one({"_id": doc["_id"], "metadata.refs": refs},
                                       {"$set": {"metadata.refs": live,
                                                 "metadata.updated": now_ms()}})
                kept = True
                continue
            if refs > 0 and live > 0:
                ok = False  # damaged bytes still referenced: restore from a backup
                continue
            self._remove(doc)
        return ok and (kept or live == 0)

    def _damaged(self, doc: Mapping[str, Any], verify: bool) -> bool:
        count = self.store.chunks.count_documents({"files_id": doc["_id"]})
        if count != _chunk_count(doc):
            return True
        return verify and self.content_hash(doc) != doc["metadata"]["sha512"]

    def _remove(self, doc: Mapping[str, Any]) -> None:
        """Delete a blob nothing may count on: out of the live index first, then
        its bytes, then its document."""
        s = self.store
        s.files.update_one({"_id": doc["_id"]}, {"$set": {"metadata.refs": 0}})
        s.chunks.delete_many({"files_id": doc["_id"]})
        s.files.delete_one({"_id": doc["_id"], "metadata.refs": {"$lte": 0}})


def _chunk_count(doc: Mapping[str, Any]) -> int:
    size, chunk = int(doc.get("length") or 0), int(doc.get("chunkSize") or 1)
    return math.ceil(size / chunk)


def _recent(when: Any, settled_before: float | None) -> bool:
    return (settled_before is not None and isinstance(when, datetime)
            and when.timestamp() >= settled_before)
