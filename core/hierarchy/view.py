"""``HierarchyView``: the one façade every gateway uses, bound to a principal.

Reads are here; writes are in ``writes.py`` (mixed in). Every path rule lives
in this package: traversal needs READ on every container and any failure
along the way is ``NotFoundError``; found-but-not-allowed is an access error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import acl
from ..acl import Principal
from ..errors import (
    AccessDeniedError,
    IsDirectoryError,
    NotFoundError,
    StorageError,
    UnsupportedError,
)
from . import lookup
from .io import Reader
from .nodes import (
    COLLECTION,
    COLLECTIONS,
    FILE,
    ITEM,
    ROOT,
    USER,
    USERS,
    FsStats,
    Node,
    epoch,
    file_etag,
)
from .paths import encode_name, join_path, split_path
from .resolver import Position
from .writes import WriteOps

SPACE_EVENT = "joist.space"
"""Fired by ``statfs`` with ``{model, doc}`` of the user or collection a path
is in; a handler (the ``user_quota`` plugin) answers ``{total, used, free}``."""

if TYPE_CHECKING:
    from . import Hierarchy


class CacheStats(NamedTuple):
    """The process-wide path cache's lookups so far (shared by every view)."""

    hits: int
    misses: int


class HierarchyView(WriteOps):
    """Cheap to make: hold one per connection or request."""

    def __init__(self, hierarchy: Hierarchy, principal: Principal) -> None:
        self.hierarchy = hierarchy
        self.services = hierarchy.services
        self.resolver = hierarchy.resolver
        self.principal = principal
        # A token without a data scope acts as anonymous for that kind of access.
        self._reader = principal.for_scope(acl.SCOPE_DATA_READ)
        self._writer = principal.for_scope(acl.SCOPE_DATA_WRITE)
        self._owner = principal.for_scope(acl.SCOPE_DATA_OWN)

    read_only = False

    # ------------------------------------------------------------ the view itself
    def for_principal(self, principal: Principal) -> HierarchyView:
        """A view of the same hierarchy, as read-only as this one, for another
        principal (a long-lived session whose grant changed)."""
        return self.hierarchy.view(principal, read_only=self.read_only)

    def cache_ttl(self) -> float:
        """Seconds a path lookup stays cached in core: a gateway's own caches
        of listings stay within it."""
        return float(self.services.settings.get("joist.hierarchy.cache_ttl"))

    def cache_generation(self) -> int:
        """A number that moves whenever what the path cache holds may be stale
        (the store's change counters moved, whichever process wrote; an entry
        was dropped). A gateway's own caches of nodes and listings, derived
        from this view at one generation, stay valid while it stands still:
        read it *before* deriving."""
        cache = self.hierarchy.cache
        cache.sync()
        return cache.generation

    def cache_stats(self) -> CacheStats:
        cache = self.hierarchy.cache
        return CacheStats(cache.hits, cache.misses)

    # ------------------------------------------------------------ helpers
    def _chain(self, path: str) -> tuple[list[str], list[Position]]:
        names = split_path(path)
        return names, self.resolver.resolve(names, self._reader)

    def _entry(self, path: str) -> tuple[list[str], Position]:
        names, chain = self._chain(path)
        return names, chain[-1]

    def node_for(self, names: list[str], entry: Position, *, path: str | None = None,
                 level: acl.AccessLevel | None = None) -> Node:
        """The node of ``entry`` at ``names``; a listing passes the ``path`` and
        ``level`` it already knows."""
        if path is None:
            path = join_path(names)
        name = names[-1] if names else ""
        if level is None:
            level = self.resolver.level(entry, self._reader)
        doc = entry.doc or {}
        if entry.kind in (ROOT, USERS, COLLECTIONS):
            return Node(path, name, entry.kind, True, level=level)
        created = epoch(doc.get("created"))
        mtime = epoch(doc.get("updated")) or created
        meta = dict(doc.get("meta") or {}) if entry.kind != FILE else {}
        if entry.is_dir:
            return Node(path, name, entry.kind, True, mtime=mtime, ctime=created,
                        ref=doc.get("_id"), level=level, meta=meta,
                        item_id=doc.get("_id") if entry.kind == ITEM else None)
        file = entry.file or {}
        file_mtime = epoch(file.get("updated")) or epoch(file.get("created"))
        return Node(
            path, name, entry.kind, False, size=int(file.get("size") or 0),
            mtime=max(mtime, file_mtime) if entry.kind == ITEM else file_mtime,
            ctime=created, mime_type=file.get("mimeType"), etag=file_etag(file),
            sha512=file.get("sha512"), ref=doc.get("_id"), file_id=file.get("_id"),
            item_id=file.get("itemId"), level=level, link_url=file.get("linkUrl"),
            meta=meta)

    # ------------------------------------------------------------ reads
    def stat(self, path: str) -> Node:
        names, entry = self._entry(path)
        return self.node_for(names, entry)

    def exists(self, path: str) -> bool:
        try:
            self._entry(path)
        except (NotFoundError, NotADirectoryError):
            return False
        return True

    def listdir(self, path: str, offset: int = 0, limit: int | None = None
                ) -> Iterator[Node]:
        """Readable children in a stable order (folders, then items, each by
        lower-case name), produced page by page as they are consumed."""
        generation = self.cache_generation()  # before anything is derived
        names, entry = self._entry(path)
        if limit is not None and limit <= 0:
            return
        prefix = join_path(names).rstrip("/") + "/"
        if offset:
            yield from self._derive_listing(names, entry, prefix, offset, limit)
            return
        listings = self.hierarchy.listings
        key = (self._reader, prefix)
        kept = listings.get(key, generation)
        if kept is not None:
            yield from kept[:limit]
            return
        nodes: list[Node] | None = []
        for node in self._derive_listing(names, entry, prefix, 0, limit):
            if nodes is not None:
                nodes.append(node)
                if len(nodes) > listings.max_listing:
                    nodes = None  # too big to keep: streamed, never held
            yield node
        # Complete (the consumer read it all, short of any limit): kept.
        if nodes is not None and (limit is None or len(nodes) < limit):
            listings.put(key, generation, nodes)

    def _derive_listing(self, names: list[str], entry: Position, prefix: str, offset: int,
                        limit: int | None) -> Iterator[Node]:
        children = self.resolver.children(entry, self._reader, offset)
        # Items and files take their folder's level: one ACL evaluation per
        # folder, not per child.
        levels: dict[Any, acl.AccessLevel] = {}
        for produced, (name, child) in enumerate(children, start=1):
            level = None
            if child.folder is not None and child.kind in (ITEM, FILE):
                governing = child.folder["_id"]
                level = levels.get(governing)
                if level is None:
                    level = levels[governing] = self.resolver.level(child, self._reader)
            yield self.node_for([*names, name], child, path=prefix + encode_name(name),
                                level=level)
            if limit is not None and produced >= limit:
                return  # before the generator fetches another page

    def open_read(self, path: str) -> Reader:
        names, chain = self._chain(path)
        entry = chain[-1]
        if entry.is_dir:
            raise IsDirectoryError("Is a directory.")
        assert entry.file is not None
        if entry.file.get("linkUrl"):
            raise UnsupportedError("A link file has no stored bytes.")
        try:
            blob = self.services.files.open_read(self._reader, entry.file, check_access=False)
        except StorageError:
            # The cached entry may name bytes a replace has just released (another
            # process wrote the file): look the path up afresh once.
            self.resolver.forget(chain[-2], names[-1])
            names, entry = self._entry(path)
            if entry.is_dir or entry.file is None:
                raise IsDirectoryError("Is a directory.") from None
            blob = self.services.files.open_read(self._reader, entry.file, check_access=False)
        return Reader(self.node_for(names, entry), blob)

    def metadata(self, path: str) -> dict[str, Any]:
        return dict(self.stat(path).meta)

    def statfs(self, path: str | None = None) -> FsStats:
        """Capacity of the current assetstore; below a user or collection, at
        most what its quota leaves (``SPACE_EVENT`` handlers answer that)."""
        _doc, adapter = self.services.assetstores.current()
        cap = adapter.capacity()
        stats = FsStats(total=cap.total, free=cap.free, used=cap.used)
        events = self.services.tree.events
        if path is None or not events.has_handlers(SPACE_EVENT):
            return stats
        try:
            chain = self._chain(path)[1]
        except (AccessDeniedError, NotFoundError):  # a gateway's own name (FUSE's stats file)
            return stats
        root = next((p for p in chain if p.kind in (USER, COLLECTION)), None)
        if root is None or root.doc is None:
            return stats
        event = events.trigger(SPACE_EVENT, {"model": str(root.kind.value), "doc": root.doc})
        for limit in event.responses:  # {"total", "used", "free"} of a quota
            if not isinstance(limit, dict):
                continue
            free = int(limit["free"]) if cap.free is None else min(cap.free, int(limit["free"]))
            stats = FsStats(total=int(limit["total"]), free=free, used=int(limit["used"]))
        return stats

    def path_of(self, model: str, doc_id: Any) -> str:
        """The path of a document as this principal sees it (``NotFoundError``
        when anything on the way is unreadable)."""
        try:
            doc = self.services.tree.store.get(model, doc_id)
            return lookup.path_of(self.services, self.resolver, self._reader, model, doc,
                                  collapse=True)
        except (AccessDeniedError, NotFoundError):
            raise NotFoundError("Path not found.") from None

    @staticmethod
    def child_path(parent: str, name: str) -> str:
        return parent.rstrip("/") + "/" + encode_name(name)
