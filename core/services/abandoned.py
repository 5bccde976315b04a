"""Unfinished uploads: which are still being worked on, which are abandoned.

An upload record lives from the first temp byte to the file record. A crash
(or a client that never comes back) leaves it behind with its temp bytes.
An upload is **abandoned** when nothing is writing it at this moment (the
assetstore says so: the filesystem writer holds the temp file's ``flock``) and

* it is a streaming upload (WebDAV PUT, FUSE write), which only the process
  that started it can finish, and that process is gone; or
* it showed no activity (record or temp bytes) for ``max_idle`` seconds
  (setting ``joist.uploads.abandoned_after``). A streaming upload whose
  process is known to be alive never ages out: that process may finish it.

Used by ``joist check`` and by ``GET/DELETE system/uploads``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import processes
from ..assetstores.base import UploadActivity, blob_key
from ..db.engine import Document
from ..errors import CoreError, ValidationError

if TYPE_CHECKING:
    from ..assetstores.registry import AssetstoreRegistry
    from ..store import Store
    from ..stored_settings import SettingsService
    from . import Services
    from .uploads import UploadService

__all__ = ["AbandonedUploads", "UploadListing", "UploadQuery", "UploadStatus"]

SORTABLE = frozenset({"_id", "updated", "created", "name", "size", "received", "userId",
                      "parentId", "parentType", "assetstoreId", "mimeType"})
"""Fields ``system/uploads`` sorts by: the upload record's own (Girder sorts
by any; these are the ones an upload record has)."""


@dataclass(frozen=True)
class UploadStatus:
    upload: Document
    activity: UploadActivity
    idle: float                # seconds since the last sign of activity
    owner_alive: bool | None   # streaming uploads' process; None: cannot tell
    abandoned: bool

    def describe(self) -> str:
        u, a = self.upload, self.activity
        temp = "unknown" if a.temp_bytes is None else str(a.temp_bytes)
        why = ", its process is gone" if self.owner_alive is False else ""
        held = ", holds the stored bytes of an interrupted finalize" if a.blob else ""
        return (f"upload {u['_id']} ({u.get('name')!r}): record says {u.get('received')} of "
                f"{'a stream' if u.get('streaming') else u.get('size')} bytes, {temp} bytes "
                f"of temporary data{held}, idle {self.idle:.0f} s{why}")


@dataclass(frozen=True)
class UploadQuery:
    """Which unfinished uploads ``system/uploads`` means (Girder's filters).

    Untracked temporary data has no record, so nothing ties it to a user or a
    parent: it is included (``include_untracked``) only when the query names
    no upload, user or parent, filtered by assetstore and age alone. (Girder
    includes it whatever the other filters; a ``DELETE`` of one upload would
    then discard every untracked upload as well.)"""

    upload_id: Any = None
    user_id: Any = None
    parent_id: Any = None
    assetstore_id: Any = None
    minimum_age: float | None = None  # seconds idle
    include_untracked: bool = True

    def __post_init__(self) -> None:
        age = self.minimum_age
        if age is not None and not (0 <= age < float("inf")):
            raise ValidationError("minimumAge must be a non-negative number of days.",
                                  field="minimumAge")

    @property
    def untracked_too(self) -> bool:
        return self.include_untracked and self.upload_id is None \
            and self.user_id is None and self.parent_id is None

    def filters(self) -> dict[str, Any]:
        return {"upload_id": self.upload_id, "user_id": self.user_id,
                "parent_id": self.parent_id, "assetstore_id": self.assetstore_id,
                "minimum_age": self.minimum_age}


@dataclass(frozen=True)
class UploadListing:
    """Upload records (with how they stand) and untracked temporary data."""

    statuses: list[UploadStatus]
    untracked: list[dict[str, Any]]


class AbandonedUploads:
    def __init__(self, store: Store, uploads: UploadService,
                 assetstores: AssetstoreRegistry, settings: SettingsService) -> None:
        self.store = store
        self.uploads = uploads
        self.assetstores = assetstores
        self.settings = settings

    @classmethod
    def of(cls, services: Services) -> AbandonedUploads:
        return cls(services.tree.store, services.uploads, services.assetstores,
                   services.settings)

    def max_idle(self) -> float:
        return float(self.settings.get("joist.uploads.abandoned_after"))

    def find(self, *, upload_id: Any = None, user_id: Any = None, parent_id: Any = None,
             assetstore_id: Any = None,
             sort: list[tuple[str, int]] | None = None) -> list[Document]:
        """Upload records matching every filter given, oldest activity first
        unless ``sort`` says otherwise."""
        query: dict[str, Any] = {}
        for key, value in (("_id", upload_id), ("userId", user_id),
                           ("parentId", parent_id), ("assetstoreId", assetstore_id)):
            if value is not None:
                query[key] = value
        for field, direction in sort or ():
            if field not in SORTABLE or direction not in (1, -1):
                raise ValidationError(f"Uploads cannot be sorted by {field!r}; use one of "
                                      f"{', '.join(sorted(SORTABLE))}.", field="sort")
        order = list(sort or [("updated", 1)])
        if all(field != "_id" for field, _ in order):
            order.append(("_id", order[0][1]))  # ties in a stable order
        return self.store.uploads.find(query, sort=order)

    def status(self, upload: Document, *, max_idle: float | None = None,
               settled_before: float | None = None) -> UploadStatus:
        """How ``upload`` stands now. ``settled_before`` (``time.time()``):
        activity at or after it keeps an upload alive whatever its age."""
        limit = self.max_idle() if max_idle is None else max_idle
        try:
            activity = self.assetstores.adapter(upload["assetstoreId"]) \
                .upload_activity(upload)
        except CoreError:  # its assetstore is gone or unreachable: judge by the record
            activity = UploadActivity()
        updated = upload.get("updated")
        last = max(updated.timestamp() if updated is not None else 0.0,
                   activity.last_write or 0.0)
        idle = max(0.0, time.time() - last)
        owner = processes.is_alive(upload.get("owner")) if upload.get("streaming") else None
        if activity.busy or owner is True:
            abandoned = False
        elif owner is False:
            abandoned = True
        else:
            abandoned = idle >= limit and (settled_before is None or last < settled_before)
        return UploadStatus(upload, activity, idle, owner, abandoned)

    def remove(self, upload: Document, *, max_idle: float | None = None,
               settled_before: float | None = None, force: bool = False) -> bool:
        """Discard ``upload`` if it is (still) abandoned, or with ``force`` if
        nothing is writing it right now; False when it was left alone."""
        current = self.store.uploads.find_one({"_id": upload["_id"]})
        if current is None:
            return False
        status = self.status(current, max_idle=max_idle, settled_before=settled_before)
        if status.activity.busy or not (force or status.abandoned):
            return False
        self.uploads.discard(current)
        return True

    def held_blobs(self, assetstore_id: Any, *, max_idle: float | None = None,
                   settled_before: float | None = None) -> dict[str, int]:
        """sha512 -> references held by live uploads whose finalize stopped
        after storing the bytes (they are resumed by completing the upload)."""
        held: dict[str, int] = {}
        for upload in self.store.uploads.find({"assetstoreId": assetstore_id}):
            status = self.status(upload, max_idle=max_idle, settled_before=settled_before)
            blob = status.activity.blob
            key = blob_key(blob) if blob is not None else None
            if key and not status.abandoned:
                held[key] = held.get(key, 0) + 1
        return held

    # ------------------------------------------------------------ system/uploads
    def select(self, *, upload_id: Any = None, user_id: Any = None, parent_id: Any = None,
               assetstore_id: Any = None, minimum_age: float | None = None,
               sort: list[tuple[str, int]] | None = None) -> list[UploadStatus]:
        """Upload records matching the filters, idle ``minimum_age`` seconds or more."""
        out = []
        for upload in self.find(upload_id=upload_id, user_id=user_id, parent_id=parent_id,
                                assetstore_id=assetstore_id, sort=sort):
            status = self.status(upload)
            if minimum_age is None or status.idle >= minimum_age:
                out.append(status)
        return out

    def listing(self, query: UploadQuery, *, sort: list[tuple[str, int]] | None = None,
                limit: int = 0, offset: int = 0) -> UploadListing:
        """``GET system/uploads`` (Girder's rule): one page of the upload records;
        when that page has room, untracked temporary data fills it. The
        untracked list continues the records', so ``offset`` pages through both
        (Girder starts it afresh on every page past the records)."""
        statuses = self.select(sort=sort, **query.filters())
        page = statuses[offset:offset + limit] if limit else statuses[offset:]
        untracked: list[dict[str, Any]] = []
        if query.untracked_too and (limit == 0 or len(page) < limit):
            found = self.untracked(assetstore_id=query.assetstore_id,
                                   minimum_age=query.minimum_age)
            start = max(0, offset - len(statuses))
            untracked = found[start:start + limit - len(page)] if limit else found[start:]
        return UploadListing(page, untracked)

    def discard(self, query: UploadQuery) -> UploadListing:
        """``DELETE system/uploads``: discard the matching upload records (but one
        being written at this moment) and, asked to, untracked temporary data."""
        removed = [status for status in self.select(**query.filters())
                   if self.remove(status.upload, force=True)]
        untracked = self.untracked(assetstore_id=query.assetstore_id,
                                   minimum_age=query.minimum_age,
                                   delete=True) if query.untracked_too else []
        return UploadListing(removed, untracked)

    def untracked(self, *, assetstore_id: Any = None, minimum_age: float | None = None,
                  delete: bool = False) -> list[dict[str, Any]]:
        """Temporary data no upload record owns (Girder's untracked uploads)."""
        listed = time.time()
        # Temp data written after the records were listed may belong to an
        # upload begun since: never judged.
        older_than = listed if minimum_age is None else min(listed, listed - minimum_age)
        out: list[dict[str, Any]] = []
        for doc in self.assetstores.list():
            if assetstore_id is not None and doc["_id"] != assetstore_id:
                continue
            known = {str(u["_id"]) for u in self.store.uploads.find(
                {"assetstoreId": doc["_id"]}, projection=["_id"])}
            try:
                adapter = self.assetstores.adapter(doc["_id"])
            except CoreError:
                continue  # unreachable: nothing to list there
            out += adapter.untracked_uploads(known, older_than=older_than, delete=delete)
        return out
