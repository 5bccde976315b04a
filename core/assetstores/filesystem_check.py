"""``joist check`` for the filesystem assetstore: find and repair disagreements
between the blob tree, the temp directory, the reference-count documents and
(when the caller supplies them) the file records' true reference counts.

The walk is a merge of two sorted streams (bucket directories in name order,
refs documents in ``_id`` order), so memory stays flat at millions of blobs.
Anything that looks wrong is re-read under its bucket lock before it is
reported or changed, so finalizes and deletes running meanwhile are not
mistaken for damage.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..errors import CoreError
from .base import BLOCK_SIZE, Problem, ProblemKind
from .filesystem import (
    DONE_SUFFIX,
    LOCK_NAME,
    SHA512_RE,
    TEMP_DIR,
    TEMP_SUFFIX,
    _now,
    _upload_id,
)
from .filesystem_pending import PENDING_DIR, PENDING_KEY_RE
from .filesystem_pending_check import check_pending, count_problem, repair_pending
from .localio import locked, os_errors

if TYPE_CHECKING:
    from .filesystem import FilesystemAssetstore

__all__ = ["FilesystemChecker"]

_PAGE = 1000
_BLOB_KINDS = frozenset(ProblemKind) - {ProblemKind.STALE_TEMP, ProblemKind.UNKNOWN_FILE}
_CONTENT_KINDS = frozenset({ProblemKind.SIZE_MISMATCH, ProblemKind.HASH_MISMATCH})


class FilesystemChecker:
    """Check and repair one ``FilesystemAssetstore``; see ``AssetstoreAdapter.check``."""

    def __init__(self, store: FilesystemAssetstore) -> None:
        self.store = store
        self._unknown: list[str] = []  # filled by the walk, relative paths

    # -- check ----------------------------------------------------------------
    def check(self, live_uploads: AbstractSet[str],
              live_references: Mapping[str, int] | None = None, *,
              settled_before: float | None = None, deep: bool = False) -> list[Problem]:
        with os_errors("Checking the assetstore"):
            problems = self._check_temp(live_uploads, settled_before)
            seen_live: set[str] = set()
            for digest, size, doc in self._merged():
                live = None if live_references is None else live_references.get(digest, 0)
                if live_references is not None and digest in live_references:
                    seen_live.add(digest)
                actual = self._hash(digest) if deep and size is not None else None
                if actual is not None and actual != digest:  # None: deleted meanwhile
                    problems.append(Problem(ProblemKind.HASH_MISMATCH,
                                            "blob content does not match its name", digest))
                    continue
                problem = _judge(digest, size, doc, live, settled_before)
                if problem is not None:  # confirm against a quiet bucket
                    with locked(self.store.bucket_lock(digest)):
                        size, doc = self._exact(digest)
                        problem = _judge(digest, size, doc, live, settled_before)
                if problem is not None:
                    problems.append(problem)
            problems += check_pending(self.store, live_references, settled_before, seen_live)
            for digest, count in (live_references or {}).items():
                if count > 0 and digest not in seen_live:
                    problems.append(Problem(ProblemKind.MISSING_BLOB,
                                            f"{count} file record(s) point at bytes that "
                                            "are gone", digest))
            problems.extend(Problem(ProblemKind.UNKNOWN_FILE, "not written by the assetstore",
                                    path) for path in self._unknown)
            self._unknown = []
        return problems

    def _check_temp(self, live_uploads: AbstractSet[str],
                    settled_before: float | None) -> list[Problem]:
        problems: list[Problem] = []
        for upload_id, size, mtime, unknown in self._temp_entries():
            if unknown is not None:
                problems.append(Problem(ProblemKind.UNKNOWN_FILE, "not an upload's temp file",
                                        f"{TEMP_DIR}/{unknown}"))
            elif upload_id not in live_uploads and not _recent(mtime, settled_before):
                problems.append(Problem(ProblemKind.STALE_TEMP,
                                        f"{size} bytes of an upload that no longer exists",
                                        upload_id))
        return problems

    def _temp_entries(self) -> Iterator[tuple[str, int, float, str | None]]:
        """(upload id, temp bytes, last change, None) per upload with data in
        the temp folder (its ``.part`` file and/or the ``.done`` link of an
        interrupted finalize); (name, 0, 0.0, name) for anything else."""
        found: dict[str, tuple[int, float]] = {}
        with os.scandir(self.store.temp_root) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                name = entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # finalized or aborted meanwhile
                if name.endswith(TEMP_SUFFIX) and entry.is_file(follow_symlinks=False):
                    upload_id, size = name.removesuffix(TEMP_SUFFIX), st.st_size
                elif name.endswith(DONE_SUFFIX) and entry.is_file(follow_symlinks=False):
                    upload_id, size = name.removesuffix(DONE_SUFFIX), 0
                else:
                    yield name, 0, 0.0, name
                    continue
                before = found.get(upload_id, (0, 0.0))
                found[upload_id] = (before[0] + size, max(before[1], st.st_mtime))
        for upload_id, (size, mtime) in sorted(found.items()):
            yield upload_id, size, mtime, None

    def untracked(self, known: AbstractSet[str], *, older_than: float | None,
                  delete: bool) -> list[dict[str, Any]]:
        """Temp data of uploads without a record (``untracked_uploads``)."""
        out: list[dict[str, Any]] = []
        with os_errors("Listing untracked uploads"):
            for upload_id, size, mtime, unknown in self._temp_entries():
                if unknown is not None or upload_id in known \
                        or (older_than is not None and mtime >= older_than):
                    continue
                if delete and not self._drop_temp(upload_id, older_than):
                    continue
                out.append({"assetstoreId": self.store.assetstore_id, "uploadId": upload_id,
                            "size": size, "updated": datetime.fromtimestamp(mtime, UTC),
                            "untracked": True})
        return out

    def _merged(self) -> Iterator[tuple[str, int | None, dict[str, Any] | None]]:
        """(digest, blob size or None, refs document or None) for every digest
        on disk or in the refs collection, in digest order."""
        blobs, docs = self._blobs(), self._docs()
        blob, doc = next(blobs, None), next(docs, None)
        while blob is not None or doc is not None:
            doc_digest = doc["_id"].split(":", 1)[1] if doc is not None else None
            if blob is not None and (doc_digest is None or blob[0] < doc_digest):
                yield blob[0], blob[1], None
                blob = next(blobs, None)
            elif blob is None or (doc_digest is not None and doc_digest < blob[0]):
                assert doc_digest is not None and doc is not None
                yield doc_digest, None, doc
                doc = next(docs, None)
            else:
                yield blob[0], blob[1], doc
                blob, doc = next(blobs, None), next(docs, None)

    def _blobs(self) -> Iterator[tuple[str, int]]:
        root = self.store.root
        for top in _sorted_dir(root):
            if top in (TEMP_DIR, PENDING_DIR):
                continue
            top_path = os.path.join(root, top)
            if not (_is_bucket(top) and os.path.isdir(top_path)):
                self._unknown.append(top)
                continue
            for sub in _sorted_dir(top_path):
                sub_path = os.path.join(top_path, sub)
                if not (_is_bucket(sub) and os.path.isdir(sub_path)):
                    self._unknown.append(f"{top}/{sub}")
                    continue
                for name in _sorted_dir(sub_path):
                    if name == LOCK_NAME:
                        continue
                    path = os.path.join(sub_path, name)
                    if SHA512_RE.match(name) and name.startswith(top + sub) \
                            and os.path.isfile(path):
                        try:
                            yield name, os.stat(path).st_size
                        except FileNotFoundError:  # deleted meanwhile
                            continue
                    else:
                        self._unknown.append(f"{top}/{sub}/{name}")

    def _docs(self) -> Iterator[dict[str, Any]]:
        store = self.store
        # 'g' sorts after hex digits and before the keys of pending blobs
        last, high = store.ref_id(""), store.ref_id("g")
        while True:
            page = store.refs.find({"_id": {"$gt": last, "$lt": high}},
                                   sort=[("_id", 1)], limit=_PAGE)
            yield from page
            if len(page) < _PAGE:
                return
            last = page[-1]["_id"]

    def _exact(self, digest: str) -> tuple[int | None, dict[str, Any] | None]:
        try:
            size: int | None = os.stat(self.store.blob_path(digest)).st_size
        except FileNotFoundError:
            size = None
        return size, self.store.refs.find_one({"_id": self.store.ref_id(digest)})

    def _hash(self, digest: str) -> str | None:
        hasher = hashlib.sha512()
        try:
            with open(self.store.blob_path(digest), "rb", buffering=0) as f:
                while block := f.read(BLOCK_SIZE):
                    hasher.update(block)
        except FileNotFoundError:
            return None
        return hasher.hexdigest()

    # -- repair ---------------------------------------------------------------
    def repair(self, problems: Iterable[Problem], *, live_references: Mapping[str, int],
               settled_before: float | None = None) -> list[Problem]:
        left: list[Problem] = []
        by_digest: dict[str, list[Problem]] = {}
        for problem in problems:
            if problem.kind in _BLOB_KINDS and SHA512_RE.match(problem.ref):
                by_digest.setdefault(problem.ref, []).append(problem)
            elif problem.kind in _BLOB_KINDS and PENDING_KEY_RE.match(problem.ref):
                if problem.kind == ProblemKind.PENDING_HANDOVER or not repair_pending(
                        self.store, problem.ref, live_references.get(problem.ref, 0),
                        settled_before):
                    left.append(problem)  # a hand-over is the caller's to run
            elif problem.kind == ProblemKind.STALE_TEMP:
                if not self._drop_temp(problem.ref, settled_before):
                    left.append(problem)
            else:  # unknown files are for a human to look at
                left.append(problem)
        with os_errors("Repairing the assetstore"):
            for digest, found in by_digest.items():
                verify = any(p.kind in _CONTENT_KINDS for p in found)
                if not self._reconcile(digest, live_references.get(digest, 0),
                                       settled_before, verify):
                    left.extend(found)
        return left

    def _drop_temp(self, upload_id: str, settled_before: float | None) -> bool:
        try:
            upload_id = _upload_id({"_id": upload_id})
        except CoreError:
            return False  # not a name the assetstore would have written
        with os_errors("Removing a stale temp file"):
            for path in (self.store.temp_path(upload_id), self.store.done_path(upload_id)):
                with contextlib.suppress(FileNotFoundError):
                    if _recent(os.lstat(path).st_mtime, settled_before):
                        return False
                    os.unlink(path)
        self.store._forget_hash(upload_id)
        return True

    def _reconcile(self, digest: str, live: int, settled_before: float | None,
                   verify: bool) -> bool:
        """Make the blob and its count agree with ``live`` under the bucket lock;
        False when that cannot be done (bytes in use are gone or corrupt, or the
        count changed too recently to judge)."""
        store, key = self.store, self.store.ref_id(digest)
        with locked(store.bucket_lock(digest)):
            size, doc = self._exact(digest)
            recent = doc is not None and _recent(_timestamp(doc.get("updated")),
                                                 settled_before)
            if size is not None and (verify or (doc is not None and doc.get("size") != size)) \
                    and self._hash(digest) != digest:
                if live > 0:
                    return False  # corrupt bytes still referenced: restore from backup
                store._unlink_blob(digest)
                size = None
            if size is None:
                if live > 0:
                    return False  # referenced bytes are gone
                if doc is not None:
                    store.refs.delete_one({"_id": key})
                return True
            counted = doc.get("refs", 0) if doc is not None else 0
            if recent and counted > live:
                return False  # a copy or upload may be about to create its record
            if live == 0:
                store._unlink_blob(digest)
                store.refs.delete_one({"_id": key})
                return True
            store.refs.update_one(
                {"_id": key},
                {"$set": {"refs": live, "size": size, "assetstoreId": store.assetstore_id,
                          "sha512": digest, "updated": _now()}},
                upsert=True)
            return True


def _judge(digest: str, size: int | None, doc: Mapping[str, Any] | None, live: int | None,
           settled_before: float | None) -> Problem | None:
    """The problem with one digest, or None. ``live`` None: counts unknown."""
    counted = doc.get("refs", 0) if doc is not None else None
    if doc is not None and _recent(_timestamp(doc.get("updated")), settled_before):
        return None  # a finalize, copy or delete may be between two steps
    if size is None:
        if live:
            return Problem(ProblemKind.MISSING_BLOB,
                           f"{live} file record(s) point at bytes that are gone", digest)
        if counted is not None and counted > 0:
            return Problem(ProblemKind.MISSING_BLOB,
                           f"counted {counted} time(s) but the bytes are gone", digest)
        return Problem(ProblemKind.STALE_REFS, "count left at 0 by an interrupted delete",
                       digest)
    return count_problem(digest, size, doc, live, counted, "bytes")



def _recent(when: float | None, settled_before: float | None) -> bool:
    return settled_before is not None and when is not None and when >= settled_before


def _timestamp(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def _is_bucket(name: str) -> bool:
    return len(name) == 2 and all(c in "0123456789abcdef" for c in name)


def _sorted_dir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []

