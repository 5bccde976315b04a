"""Path <-> entry resolution, child listing, and the path cache.

The cache maps ``(parent, name)`` to the child's documents (as rclone's
dircache maps directory to id), for a short TTL. It never holds a decision:
access is computed on every call, for the calling principal, from the cached
documents. A view's own writes drop the keys they touch.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .. import acl
from ..acl import AccessLevel, Principal
from ..db.engine import Collection, Document
from ..errors import NotDirectoryError, NotFoundError
from ..store import Store
from .nodes import COLLECTION, COLLECTIONS, FILE, FOLDER, ITEM, ROOT, USER, USERS, NodeKind

PAGE = 1000
CacheKey = tuple[str, Any, str]


@dataclass(frozen=True)
class Position:
    """A resolved position: its kind, its document, and for items and files
    the folder whose ACL governs them and the file holding the bytes."""

    kind: NodeKind
    doc: Document | None = None
    folder: Document | None = None   # ACL source for items and files
    file: Document | None = None     # bytes of a file node or a one-file item
    is_dir: bool = True

    @property
    def key(self) -> tuple[str, Any]:
        return (self.kind, self.doc["_id"] if self.doc else None)


ROOT_POSITION = Position(ROOT)
USERS_POSITION = Position(USERS)
COLLECTIONS_POSITION = Position(COLLECTIONS)


_REREADS = 3  # looks at an item caught between a writer's steps


class PathCache:
    """A bounded LRU of (parent key, name) -> Position with a TTL.

    An entry holds its documents (about 1 KiB); 20,000 of them cover the
    lookups that follow a listing within the TTL, while a listing of a much
    bigger folder takes longer than the TTL anyway, so a larger bound would
    only hold expired entries (100,000 of them were 100 MiB of RSS).

    ``epoch`` (the store's change counters of the documents it holds) is read
    on every lookup: once it moved, whichever process wrote, everything cached
    is dropped, so no process serves a document older than the last change."""

    def __init__(self, ttl: Callable[[], float], max_entries: int = 20_000,
                 epoch: Callable[[], Any] | None = None) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._epoch = epoch
        self._seen_epoch: Any = None
        self._data: OrderedDict[CacheKey, tuple[float, Position]] = OrderedDict()
        self._lock = threading.Lock()  # guards _data, hits, misses and generation
        self.hits = 0
        self.misses = 0
        # Bumped by every drop: documents read before a write may predate it,
        # so a put carrying an older generation is ignored (a listing running
        # alongside a write must not bring back what the write dropped).
        self.generation = 0

    def sync(self) -> None:
        """Drop everything if the store's counters moved since the last look."""
        epoch = self._epoch() if self._epoch is not None else None
        if epoch != self._seen_epoch:
            with self._lock:
                if epoch != self._seen_epoch:
                    self._data.clear()
                    self.generation += 1  # puts of documents read before: ignored
                    self._seen_epoch = epoch

    def get(self, key: CacheKey, *, synced: bool = False) -> Position | None:
        """``synced``: the caller ran ``sync`` for this lookup (a path resolved
        component by component looks at the store's counters once)."""
        if not synced:
            self.sync()
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
            if hit is None or hit[0] < now:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return hit[1]

    def put(self, key: CacheKey, entry: Position, generation: int | None = None) -> None:
        self.put_many([(key, entry)], generation)

    def put_many(self, entries: list[tuple[CacheKey, Position]],
                 generation: int | None = None) -> None:
        """Keep every (key, entry), unless a drop happened since ``generation``
        was read (one lifetime and one lock for a page of a listing)."""
        ttl = self._ttl()
        if ttl <= 0 or not entries:
            return
        expiry = time.monotonic() + ttl
        with self._lock:
            if generation is not None and generation != self.generation:
                return
            data = self._data
            for key, entry in entries:
                data[key] = (expiry, entry)
                data.move_to_end(key)
            while len(data) > self._max:
                data.popitem(last=False)

    def drop(self, key: CacheKey) -> None:
        with self._lock:
            self._data.pop(key, None)
            self.generation += 1

    def sweep(self, now: float | None = None) -> int:
        """Drop expired entries (a cache left alone after a big listing would
        hold them until the next one); the number dropped."""
        now = time.monotonic() if now is None else now
        with self._lock:
            expired = [k for k, (expiry, _) in self._data.items() if expiry < now]
            for key in expired:
                del self._data[key]
        return len(expired)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.generation += 1


def keyset_pages(coll: Collection, base: dict[str, Any], field: str, *,
                 page: int = PAGE, projection: list[str] | None = None, skip: int = 0
                 ) -> Iterator[list[Document]]:
    """All matches of ``base`` ordered by (``field``, ``_id``), page by page.

    Each page starts with ``field >= last value`` (an index range scan) and
    drops what the previous page already returned, so deep pages cost the same
    as the first, on every engine. ``skip`` is applied once, by the store, to
    the first page (an index walk, not documents decoded and dropped).
    """
    last_value: Any = None
    seen_at_last: set[Any] = set()
    while True:  # ends: each page starts past the last one, and a short page stops
        query = dict(base)
        if last_value is not None:
            query = {"$and": [base, {field: {"$gte": last_value}}]}
        docs = coll.find(query, sort=[(field, 1), ("_id", 1)], skip=skip,
                         limit=page + len(seen_at_last), projection=projection)
        skip = 0
        fresh = [d for d in docs
                 if not (d.get(field) == last_value and d["_id"] in seen_at_last)]
        if fresh:
            yield fresh
        if len(docs) < page + len(seen_at_last) or not fresh:
            return
        tail = fresh[-1].get(field)
        if tail != last_value:
            seen_at_last = set()
        last_value = tail
        seen_at_last |= {d["_id"] for d in fresh if d.get(field) == tail}


class Resolver:
    def __init__(self, store: Store, layout: Callable[[], str], cache: PathCache) -> None:
        self.store = store
        self.layout = layout
        self.cache = cache

    # ------------------------------------------------------------ access
    @staticmethod
    def readable(entry: Position, principal: Principal) -> bool:
        if entry.kind in (ROOT, USERS, COLLECTIONS):
            return True
        governing = entry.folder if entry.kind in (ITEM, FILE) else entry.doc
        assert governing is not None
        return acl.can_read(governing, principal)

    @staticmethod
    def level(entry: Position, principal: Principal) -> AccessLevel:
        if entry.kind in (ROOT, USERS, COLLECTIONS):
            return acl.READ
        if principal.admin:
            return acl.ADMIN
        governing = entry.folder if entry.kind in (ITEM, FILE) else entry.doc
        assert governing is not None
        return acl.effective_level(governing, principal)

    # ------------------------------------------------------------ lookup
    def resolve(self, names: list[str], principal: Principal) -> list[Position]:
        """The chain of entries from the root; ``NotFoundError`` when any step
        is missing or unreadable (the two are indistinguishable on purpose)."""
        chain = [ROOT_POSITION]
        self.cache.sync()  # once: the path as of the changes committed before it
        for name in names:
            chain.append(self.child(chain[-1], name, principal, synced=True))
        return chain

    def child(self, parent: Position, name: str, principal: Principal, *,
              fresh: bool = False, synced: bool = False) -> Position:
        """``fresh`` reads the store, not the cache: writes decide on what is
        there now (a concurrent writer may have changed it a moment ago)."""
        if not parent.is_dir:
            raise NotDirectoryError("Not a directory.")
        key: CacheKey = (parent.kind, parent.key[1], name)
        entry = None if fresh else self.cache.get(key, synced=synced)
        if entry is None:
            generation = self.cache.generation
            entry = self._find(parent, name)
            if entry is None:
                raise NotFoundError("Path not found.")
            self.cache.put(key, entry, generation)
        if not self.readable(entry, principal):
            raise NotFoundError("Path not found.")
        return entry

    def _find(self, parent: Position, name: str) -> Position | None:
        s = self.store
        if parent.kind == ROOT:
            return {"user": USERS_POSITION, "collection": COLLECTIONS_POSITION}.get(name)
        if parent.kind == USERS:
            doc = s.users.find_one({"login": name})
            return None if doc is None else Position(USER, doc)
        if parent.kind == COLLECTIONS:
            doc = s.collections.find_one({"name": name})
            return None if doc is None else Position(COLLECTION, doc)
        assert parent.doc is not None
        if parent.kind in (USER, COLLECTION, FOLDER):
            doc = s.folders.find_one({"parentId": parent.doc["_id"], "name": name})
            if doc is not None:
                return Position(FOLDER, doc)
            if parent.kind != FOLDER:
                return None
            natural = self.layout() == "natural"
            for _ in range(_REREADS):
                item = s.items.find_one({"folderId": parent.doc["_id"], "name": name})
                if item is None:
                    return None
                if not natural or item.get("fileCount") != 1:
                    return self.item_entry(item, parent.doc)
                sole = s.files.find_one({"itemId": item["_id"]})
                if sole is not None:
                    return self.item_entry(item, parent.doc, sole)
                # Counted one file that is not there: we read between the steps
                # of a concurrent delete or replace (each query is its own
                # snapshot). Read again.
            return None if item is None else self.item_entry(item, parent.doc)
        if parent.kind == ITEM:
            file = s.files.find_one({"itemId": parent.doc["_id"], "name": name},
                                    sort=[("_id", 1)])
            return None if file is None else Position(FILE, file, parent.folder, file, False)
        return None

    def item_entry(self, item: Document, folder: Document,
                   sole_file: Document | None = None) -> Position:
        """An item as a directory, or (natural layout) as its one same-named file."""
        if self.layout() == "natural" and item.get("fileCount") == 1:
            if sole_file is None:
                sole_file = self.store.files.find_one({"itemId": item["_id"]})
            if sole_file is not None and sole_file["name"] == item["name"]:
                return Position(ITEM, item, folder, sole_file, is_dir=False)
        return Position(ITEM, item, folder)

    # ------------------------------------------------------------ listing
    def children(self, parent: Position, principal: Principal,
                 offset: int = 0) -> Iterator[tuple[str, Position]]:
        """(name, entry) of every readable child from ``offset`` on, in a stable
        order (folders, then items, by lower-case name), fetched page by page."""
        if not parent.is_dir:
            raise NotDirectoryError("Not a directory.")
        s = self.store
        generation = self.cache.generation

        def primed(pairs: list[tuple[str, Position]]) -> list[tuple[str, Position]]:
            # A listing is usually followed by a stat of each child (ls -l, FUSE,
            # a WebDAV client's GETs): one put per page.
            kind, key = parent.kind, parent.key[1]
            self.cache.put_many([((kind, key, name), entry) for name, entry in pairs],
                                generation)
            return pairs

        if parent.kind == ROOT:
            yield from [("collection", COLLECTIONS_POSITION), ("user", USERS_POSITION)][offset:]
            return
        readable = acl.permission_filter(principal, acl.READ)
        if parent.kind == USERS:
            for page in keyset_pages(s.users, acl.and_filter({}, readable), "login",
                                     skip=offset):
                yield from primed([(doc["login"], Position(USER, doc)) for doc in page])
            return
        if parent.kind == COLLECTIONS:
            for page in keyset_pages(s.collections, acl.and_filter({}, readable), "name",
                                     skip=offset):
                yield from primed([(doc["name"], Position(COLLECTION, doc)) for doc in page])
            return
        assert parent.doc is not None
        if parent.kind == ITEM:
            previous = None
            for page in keyset_pages(s.files, {"itemId": parent.doc["_id"]}, "name",
                                     skip=offset):
                files = []
                for doc in page:
                    if doc["name"] != previous:  # duplicate names: the oldest wins
                        previous = doc["name"]
                        files.append((doc["name"], Position(FILE, doc, parent.folder, doc,
                                                            False)))
                yield from primed(files)
            return
        folders = acl.and_filter({"parentId": parent.doc["_id"]}, readable)
        item_offset, list_folders = 0, True
        if offset:  # an offset past the folders goes straight to the items
            n_folders = s.folders.count(folders)
            item_offset, list_folders = max(offset - n_folders, 0), offset < n_folders
        for page in keyset_pages(s.folders, folders, "lowerName", skip=offset) \
                if list_folders else ():
            yield from primed([(doc["name"], Position(FOLDER, doc)) for doc in page])
        if parent.kind != FOLDER:
            return
        natural = self.layout() == "natural"
        for page in keyset_pages(s.items, {"folderId": parent.doc["_id"]}, "lowerName",
                                 skip=item_offset):
            # One query per page finds the files of one-file items (natural layout).
            singles = [i["_id"] for i in page if i.get("fileCount") == 1] if natural else []
            sole = {f["itemId"]: f for f in s.files.find({"itemId": {"$in": singles}})} \
                if singles else {}
            items = []
            for item in page:
                file = sole.get(item["_id"])
                entry = Position(ITEM, item, parent.doc, file, is_dir=False) \
                    if file is not None and file["name"] == item["name"] \
                    else Position(ITEM, item, parent.doc)
                items.append((item["name"], entry))
            yield from primed(items)

    def forget(self, parent: Position, name: str) -> None:
        self.cache.drop((parent.kind, parent.key[1], name))
