"""Write locks (WebDAV class 2) kept in the metadata store.

Every record is a document of the ``lock`` collection, so all processes on one
store see the same locks; a record carries its expiry (``expires``, the TTL
field) and an expired record is treated as absent by every read. ``exclusive``
is a short cross-process mutex (a leased document) under which a caller checks
for conflicts and creates a lock as one step, so two processes cannot both
grant conflicting locks.

Lock roots are opaque path strings starting with ``/`` (the WebDAV gateway uses
its quoted reference URLs); a root's children are the roots below ``root + "/"``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from ..clock import utcnow
from ..db.engine import Collection, Document, DuplicateKeyError
from ..errors import LockedError, ValidationError

SCOPES = ("exclusive", "shared")
DEPTHS = ("0", "infinity")
GUARD_ID = "#guard"  # no lock token looks like this


def normalize_root(root: str) -> str:
    if not isinstance(root, str) or not root.startswith("/"):
        raise ValidationError("A lock root must be an absolute path.", field="root")
    return "/" + root.strip("/")


class LockService:
    DEFAULT_TIMEOUT = 7 * 86400.0
    MAX_TIMEOUT = 28 * 86400.0

    def __init__(self, collection: Collection,
                 clock: Callable[[], _dt.datetime] = utcnow) -> None:
        self._coll = collection
        self._clock = clock

    # ------------------------------------------------------------ records
    def _timeout(self, timeout: float | None) -> float:
        if timeout is None:
            return self.DEFAULT_TIMEOUT
        # Negative means "infinite" in WebDAV; nothing here lives forever.
        if timeout < 0 or timeout > self.MAX_TIMEOUT:
            return self.MAX_TIMEOUT
        return float(timeout)

    def create(self, root: str, *, scope: str, depth: str, principal: str,
               owner: str = "", timeout: float | None = None,
               lock_type: str = "write") -> Document:
        """A new lock; the caller has checked for conflicts (under
        ``exclusive``). Returns the record, with its ``_id`` as the token."""
        if scope not in SCOPES:
            raise ValidationError(f"Lock scope must be one of {', '.join(SCOPES)}.")
        if depth not in DEPTHS:
            raise ValidationError(f"Lock depth must be one of {', '.join(DEPTHS)}.")
        if lock_type != "write":
            raise ValidationError("Only write locks exist.")
        seconds = self._timeout(timeout)
        doc: Document = {
            "_id": f"opaquelocktoken:{uuid.uuid4()}", "root": normalize_root(root),
            "type": lock_type, "scope": scope, "depth": depth, "owner": str(owner or ""),
            "principal": str(principal), "timeout": seconds,
            "expires": self._clock() + _dt.timedelta(seconds=seconds),
        }
        self._coll.insert_one(doc)
        return doc

    def get(self, token: str) -> Document | None:
        """The live lock of ``token``, or None (unknown or expired)."""
        if not isinstance(token, str) or token == GUARD_ID:
            return None
        doc = self._coll.find_one({"_id": token})
        if doc is None or "root" not in doc:
            return None
        if doc["expires"] <= self._clock():
            self._coll.delete_one({"_id": token, "expires": {"$lte": self._clock()}})
            return None
        return doc

    def refresh(self, token: str, timeout: float | None = None) -> Document | None:
        """Restart a live lock's timeout; None when it is gone."""
        seconds = self._timeout(timeout)
        now = self._clock()
        return self._coll.find_one_and_update(
            {"_id": token, "root": {"$exists": True}, "expires": {"$gt": now}},
            {"$set": {"timeout": seconds,
                      "expires": now + _dt.timedelta(seconds=seconds)}})

    def delete(self, token: str) -> bool:
        if token == GUARD_ID:
            return False
        return self._coll.delete_one({"_id": token}) > 0

    def find(self, root: str, *, include_root: bool = True,
             include_children: bool = False) -> list[Document]:
        """Live locks rooted at ``root`` and/or below it, oldest first."""
        root = normalize_root(root)
        live: dict[str, Any] = {"expires": {"$gt": self._clock()}}
        clauses: list[dict[str, Any]] = []
        if include_root:
            clauses.append({"root": root})
        if include_children:
            if root == "/":
                clauses.append({"root": {"$gt": "/"}})
            else:  # every string starting with root + "/" sorts in [root/, root0)
                clauses.append({"root": {"$gt": root + "/", "$lt": root + "0"}})
        if not clauses:
            return []
        query = {"$and": [live, clauses[0] if len(clauses) == 1 else {"$or": clauses}]}
        return self._coll.find(query, sort=[("expires", 1), ("_id", 1)])

    def delete_under(self, root: str) -> int:
        """Remove the locks on ``root`` and below (the resource went away)."""
        tokens = [d["_id"] for d in self.find(root, include_children=True)]
        return self._coll.delete_many({"_id": {"$in": tokens}}) if tokens else 0

    # ------------------------------------------------------------ mutex
    @contextlib.contextmanager
    def exclusive(self, *, wait: float = 10.0, lease: float = 30.0) -> Iterator[None]:
        """Hold the store-wide lock mutex for the block (check-then-create).

        The mutex is a leased document: if its holder dies, it frees itself
        after ``lease`` seconds. ``LockedError`` after ``wait`` seconds.
        """
        holder = uuid.uuid4().hex
        deadline = time.monotonic() + wait
        pause = 0.001
        while True:
            now = self._clock()
            until = now + _dt.timedelta(seconds=lease)
            claimed = self._coll.find_one_and_update(
                {"_id": GUARD_ID, "$or": [{"holder": None}, {"expires": {"$lte": now}}]},
                {"$set": {"holder": holder, "expires": until}})
            if claimed is None:
                try:
                    self._coll.insert_one({"_id": GUARD_ID, "holder": holder,
                                           "expires": until})
                    claimed = {"_id": GUARD_ID}
                except DuplicateKeyError:
                    claimed = None
            if claimed is not None:
                break
            if time.monotonic() >= deadline:
                raise LockedError("The lock table is busy; try again.")
            time.sleep(pause)  # contention only: back off, bounded by the deadline
            pause = min(pause * 2, 0.05)
        try:
            yield
        finally:
            self._coll.update_one({"_id": GUARD_ID, "holder": holder},
                                  {"$set": {"holder": None}})


__all__ = ["LockService", "normalize_root"]
