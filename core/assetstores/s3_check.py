"""``joist check`` for the S3 assetstore: compare the bucket (blob objects,
unfinished multipart uploads) and the upload journals with the reference-count
documents and the callers' file records, and repair what is safe to repair.

Keys outside the assetstore's layout (an imported tree sharing the prefix)
are not judged: the assetstore did not write them and must never delete them.
Listing keeps one set of the assetstore's referenced keys in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import StorageError
from .base import Problem, ProblemKind
from .filesystem import SHA512_RE
from .s3_client import S3BlobReader, error_code
from .s3_keys import multipart_uploads

if TYPE_CHECKING:
    from .s3 import S3Assetstore

__all__ = ["S3Checker"]

_PAGE = 1000
_PAGES = 10_000_000  # bound on listing pages (1000 keys each)
_CONTENT_KINDS = frozenset({ProblemKind.SIZE_MISMATCH, ProblemKind.HASH_MISMATCH})


class S3Checker:
    def __init__(self, store: S3Assetstore) -> None:
        self.store = store
        self.keys = store.keys
        self.client = store.client
        self.bucket = store.bucket

    # -- check ----------------------------------------------------------------
    def check(self, live_uploads: AbstractSet[str],
              live_references: Mapping[str, int] | None = None, *,
              settled_before: float | None = None, deep: bool = False) -> list[Problem]:
        with self.store.errors("Checking the S3 assetstore"):
            docs = {doc["sha512"]: doc for doc in self._docs()}
            counted_keys = {doc.get("s3Key") for doc in docs.values()}
            journals = {doc["uploadId"]: doc.get("updated") for doc in self._journals()}
            objects = {key: (size, modified)
                       for key, size, modified in self._objects(self.keys.prefix)
                       if self.keys.parse_blob(key) is not None}
            multiparts: dict[str, Any] = {}
            for key, _, initiated in multipart_uploads(self.client, self.bucket,
                                                       self.keys.prefix):
                upload_id = self.keys.parse_blob(key)
                if upload_id is not None:
                    multiparts[upload_id] = initiated
            stale = {u for u in set(journals) | set(multiparts) if u not in live_uploads
                     and not _recent(journals.get(u), settled_before)
                     and not _recent(multiparts.get(u), settled_before)}
            problems: list[Problem] = []
            for key, (size, modified) in sorted(objects.items()):
                upload_id = self.keys.parse_blob(key)
                if key in counted_keys or upload_id in live_uploads \
                        or _recent(modified, settled_before):
                    continue
                if upload_id in journals:
                    stale.add(str(upload_id))  # debris of an upload, cleared with it
                else:
                    problems.append(Problem(ProblemKind.ORPHAN_BLOB,
                                            f"{size} bytes nothing counts", key))
            problems += [Problem(ProblemKind.STALE_TEMP, "data of an upload that no longer "
                                 "exists", upload_id) for upload_id in sorted(stale)]
            for digest, doc in sorted(docs.items()):
                live = None if live_references is None else live_references.get(digest, 0)
                problem = self._judge(digest, doc, objects.get(doc.get("s3Key", "")), live,
                                      settled_before, deep)
                if problem is not None:
                    problems.append(problem)
            for digest, count in sorted((live_references or {}).items()):
                if count > 0 and digest not in docs:
                    problems.append(Problem(ProblemKind.MISSING_BLOB,
                                            f"{count} file record(s) point at bytes that "
                                            "are not counted", digest))
        return problems

    def _judge(self, digest: str, doc: Mapping[str, Any], obj: tuple[int, Any] | None,
               live: int | None, settled_before: float | None, deep: bool) -> Problem | None:
        if _recent(doc.get("updated"), settled_before):
            return None  # a finalize, copy or delete may be between two steps
        counted = int(doc.get("refs") or 0)
        if obj is None:
            if live or counted > 0:
                return Problem(ProblemKind.MISSING_BLOB, f"counted {counted} time(s), "
                               f"{live or 0} file record(s), but the object is gone", digest)
            return Problem(ProblemKind.STALE_REFS, "count left at 0 by an interrupted delete",
                           digest)
        if doc.get("size") != obj[0]:
            return Problem(ProblemKind.SIZE_MISMATCH,
                           f"{obj[0]} bytes in S3, {doc.get('size')} recorded", digest)
        if deep and self._hash(str(doc["s3Key"]), obj[0]) != digest:
            return Problem(ProblemKind.HASH_MISMATCH, "object content does not match its "
                           "hash", digest)
        if live is not None and live != counted:
            return Problem(ProblemKind.REFCOUNT_MISMATCH,
                           f"counted {counted}, {live} file record(s)", digest)
        if counted <= 0:
            return Problem(ProblemKind.ORPHAN_BLOB, f"{obj[0]} bytes counted 0 times", digest)
        return None

    # -- untracked uploads ----------------------------------------------------
    def untracked(self, known: AbstractSet[str], *, older_than: float | None,
                  delete: bool) -> list[dict[str, Any]]:
        """Uploads this assetstore holds data of (a journal, an unfinished
        multipart upload) that are not in ``known``, as Girder's S3
        ``untrackedUploads`` lists multipart uploads; only keys of this
        assetstore's layout, never an imported tree's under the same prefix."""
        if self.store.location.read_only:
            return []  # it writes nothing, so holds no uploads (as Girder)
        found: dict[str, dict[str, Any]] = {}
        with self.store.errors("Listing untracked uploads"):
            for doc in self._journals(("uploadId", "updated", "base", "tail")):
                found[str(doc["uploadId"])] = {
                    "size": int(doc.get("base") or 0) + int(doc.get("tail") or 0),
                    "updated": doc.get("updated")}
            for key, mpu, initiated in multipart_uploads(self.client, self.bucket,
                                                         self.keys.prefix):
                upload_id = self.keys.parse_blob(key)
                if upload_id is None:
                    continue
                entry = found.setdefault(upload_id, {"size": None, "updated": initiated})
                entry["s3"] = {"uploadId": mpu, "key": key, "created": initiated}
                if _later(initiated, entry.get("updated")):
                    entry["updated"] = initiated
            out: list[dict[str, Any]] = []
            counted: set[Any] | None = None
            for upload_id, entry in sorted(found.items()):
                if upload_id in known or _recent(entry.get("updated"), older_than) \
                        or (older_than is not None and entry.get("updated") is None):
                    continue
                if delete:
                    if counted is None:  # keys that are blobs now: never deleted
                        counted = {d.get("s3Key") for d in self._docs()
                                   if d.get("refs", 0) > 0}
                    if not self._drop_upload(upload_id, counted, older_than):
                        continue
                out.append({"assetstoreId": self.store.assetstore_id, "uploadId": upload_id,
                            **entry, "untracked": True})
        return out

    # -- repair ---------------------------------------------------------------
    def repair(self, problems: Iterable[Problem], *, live_references: Mapping[str, int],
               settled_before: float | None = None) -> list[Problem]:
        left: list[Problem] = []
        with self.store.errors("Repairing the S3 assetstore"):
            counted = {doc.get("s3Key") for doc in self._docs() if doc.get("refs", 0) > 0}
            for problem in problems:
                if problem.kind == ProblemKind.STALE_TEMP:
                    fixed = self._drop_upload(problem.ref, counted, settled_before)
                elif SHA512_RE.match(problem.ref):
                    fixed = self._reconcile(problem.ref, live_references.get(problem.ref, 0),
                                            settled_before, problem.kind in _CONTENT_KINDS)
                elif problem.kind == ProblemKind.ORPHAN_BLOB and \
                        self.keys.parse_blob(problem.ref) is not None:
                    fixed = self._drop_orphan(problem.ref, counted, settled_before)
                else:
                    fixed = False
                if not fixed:
                    left.append(problem)
        return left

    def _drop_upload(self, upload_id: str, counted: set[Any],
                     settled_before: float | None) -> bool:
        writer = self.store.writer()
        journal = writer.journal(upload_id, missing_ok=True)
        if journal is not None and _recent(journal.updated, settled_before):
            return False
        for key in list(writer.upload_objects(upload_id)):
            if key not in counted:
                self.client.delete_object(Bucket=self.bucket, Key=key)
        writer.abort_multiparts(upload_id)
        writer.forget(upload_id)
        self.store._forget(upload_id)
        return True

    def _drop_orphan(self, key: str, counted: set[Any], settled_before: float | None) -> bool:
        if key in counted:
            return True  # counted meanwhile: no longer an orphan
        head = self._head(key)
        if head is None:
            return True
        if _recent(head.get("LastModified"), settled_before):
            return False
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def _reconcile(self, digest: str, live: int, settled_before: float | None,
                   verify: bool) -> bool:
        """Make the object and its count agree with ``live``; False when that
        cannot be done (bytes in use are gone or damaged, or too recent)."""
        refs, rid = self.store.refs, self.store.ref_id(digest)
        doc = refs.find_one({"_id": rid})
        if doc is None:
            return live == 0
        counted = int(doc.get("refs") or 0)
        if _recent(doc.get("updated"), settled_before) and counted > live:
            return False  # a copy or upload may be about to create its record
        key = str(doc.get("s3Key") or "")
        head = self._head(key) if key else None
        if head is not None and (verify or doc.get("size") != head["ContentLength"]) and \
                self._hash(key, int(head["ContentLength"])) != digest:
            if live > 0:
                return False  # damaged bytes still referenced: restore from a backup
            self.client.delete_object(Bucket=self.bucket, Key=key)
            head = None
        if head is None:
            if live > 0:
                return False  # referenced bytes are gone
            refs.delete_one({"_id": rid, "s3Key": doc.get("s3Key")})
            return True
        if live == 0:
            self.client.delete_object(Bucket=self.bucket, Key=key)
            refs.delete_one({"_id": rid, "s3Key": key})
            return True
        refs.update_one({"_id": rid, "s3Key": key},
                        {"$set": {"refs": live, "size": int(head["ContentLength"]),
                                  "updated": datetime.now().astimezone()}})
        return True

    # -- listings -------------------------------------------------------------
    def _docs(self) -> Iterator[dict[str, Any]]:
        store = self.store
        last, high = store.ref_id(""), store.ref_id("~")  # '~' sorts after hex
        for _ in range(_PAGES):
            page = store.refs.find({"_id": {"$gt": last, "$lt": high}},
                                   sort=[("_id", 1)], limit=_PAGE)
            yield from page
            if len(page) < _PAGE:
                return
            last = page[-1]["_id"]

    def _journals(self, fields: tuple[str, ...] = ("uploadId", "updated")
                  ) -> Iterator[dict[str, Any]]:
        last, high = f"{self.store.assetstore_id}:", f"{self.store.assetstore_id}:~"
        for _ in range(_PAGES):
            page = self.store.journals.find({"_id": {"$gt": last, "$lt": high}},
                                            sort=[("_id", 1)], limit=_PAGE,
                                            projection=list(fields))
            yield from page
            if len(page) < _PAGE:
                return
            last = page[-1]["_id"]

    def _objects(self, prefix: str) -> Iterator[tuple[str, int, Any]]:
        token: str | None = None
        for _ in range(_PAGES):
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self.client.list_objects_v2(**kwargs)
            for obj in page.get("Contents") or ():
                yield obj["Key"], int(obj["Size"]), obj.get("LastModified")
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)  # type: ignore[no-any-return]
        except Exception as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _hash(self, key: str, size: int) -> str | None:
        hasher = hashlib.sha512()
        try:
            with S3BlobReader(self.client, self.bucket, key, size=size) as reader:
                for data in reader.iter_range(0, size, 8 << 20, reuse=True):
                    hasher.update(data)
        except StorageError:
            return None
        return hasher.hexdigest()


def _recent(when: Any, settled_before: float | None) -> bool:
    return settled_before is not None and isinstance(when, datetime) \
        and when.timestamp() >= settled_before


def _later(when: Any, than: Any) -> bool:
    return isinstance(when, datetime) and (
        not isinstance(than, datetime) or when.timestamp() > than.timestamp())
