"""The hierarchy: one path-based view of the tree for every gateway.

``Hierarchy`` is built once per process (it owns the path cache);
``hierarchy.view(principal)`` is cheap and is what gateways hold.
"""

from __future__ import annotations

from typing import Any

from ..acl import Principal
from ..errors import NotFoundError, ValidationError
from ..services import Services
from . import lookup
from .io import Reader, Writer
from .listings import Listings
from .nodes import FsStats, Node, NodeKind
from .paths import decode_name, encode_name, join_path, normalize, split_path
from .readonly import ReadOnlyView
from .resolver import PathCache, Resolver
from .view import HierarchyView
from .writes import Replace


class Hierarchy:
    def __init__(self, services: Services, *, cache_entries: int = 20_000) -> None:
        self.services = services
        settings = services.settings
        generations = services.tree.store.generations

        def epoch() -> tuple[int, int]:
            counters = generations.snapshot()
            return counters["auth"], counters["tree"]  # users, and the tree's documents

        def ttl() -> float:
            return float(settings.get("joist.hierarchy.cache_ttl"))

        self.cache = PathCache(ttl, cache_entries, epoch)
        self.listings = Listings(ttl, max_rows=cache_entries)
        self.resolver = Resolver(services.tree.store,
                                 lambda: str(settings.get("joist.hierarchy.item_layout")),
                                 self.cache)
        # An ACL change drops every cached document (their ACLs are stale).
        services.tree.on_acl_change(self.cache.clear)  # a new generation: listings too

    def sweep(self, now: float | None = None) -> int:
        """Drop expired paths and listings (for ``core.memory.Reclaimer``)."""
        return self.cache.sweep(now) + self.listings.sweep(now)

    def view(self, principal: Principal, *, read_only: bool = False) -> HierarchyView:
        return (ReadOnlyView if read_only else HierarchyView)(self, principal)

    def lookup(self, principal: Principal, path: str) -> tuple[str, dict[str, Any]]:
        """Girder's path lookup (items never collapsed): (model, document)."""
        return lookup.lookup(self.resolver, principal, path)

    def resource_path(self, principal: Principal, model: str, doc: dict[str, Any]) -> str:
        return lookup.resource_path(self.services, self.resolver, principal, model, doc)

    def resource_path_by_id(self, principal: Principal, model: str, doc_id: Any) -> str:
        """``resource_path`` of the document with that id: a missing one is a
        ``ValidationError`` (Girder's "Invalid resource id"), told apart from
        the not-found of an unreadable ancestor."""
        try:
            doc = self.services.tree.store.get(model, doc_id)
        except NotFoundError:
            raise ValidationError("Invalid resource id.", field="id") from None
        return self.resource_path(principal, model, doc)


__all__ = ["FsStats", "Hierarchy", "HierarchyView", "Node", "NodeKind", "ReadOnlyView", "Reader",
           "Replace", "Writer", "decode_name", "encode_name", "join_path", "normalize",
           "split_path"]
