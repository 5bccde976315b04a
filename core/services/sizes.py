"""The size ledger: item counts and byte totals of items, folders and roots.

Girder's bookkeeping, kept with atomic increments so concurrent writers never
lose an update; ``joist check`` recomputes what a crash left behind.
"""

from __future__ import annotations

from bson import ObjectId

from ..db.engine import Document
from ..store import Store

DELETING = "_deleting"
"""Set on an item being deleted: no size is counted into it any more."""
ROOT_MODELS = ("user", "collection")


class SizeLedger:
    def __init__(self, store: Store) -> None:
        self.store = store

    # ------------------------------------------------------------ roots
    @staticmethod
    def root_of(doc: Document, model: str) -> tuple[str, ObjectId]:
        """(baseParentType, baseParentId) of any tree document."""
        if model in ROOT_MODELS:
            return model, doc["_id"]
        return doc["baseParentType"], doc["baseParentId"]

    # ------------------------------------------------------------ item counts
    def count_items(self, folder_id: ObjectId, delta: int) -> None:
        """Move a folder's item count (a folder without one is left alone:
        listings count its items instead, and ``check`` restores it)."""
        self.store.folder_counts.update_one({"_id": folder_id}, {"$inc": {"items": delta}})

    def item_count(self, folder_id: ObjectId) -> int | None:
        doc = self.store.folder_counts.find_one({"_id": folder_id})
        return None if doc is None else int(doc["items"])

    # ------------------------------------------------------------ sizes
    def add_size(self, item: Document, delta: int) -> None:
        """Girder's bookkeeping: the item, its folder (direct items only) and
        the root (user or collection, a recursive total) move together."""
        if not delta:
            return
        # Not into an item being deleted: its deleter subtracts the item's size
        # as it was when marked (``RemovalService.delete_item``), once.
        if not self.store.items.update_one({"_id": item["_id"], DELETING: {"$exists": False}},
                                           {"$inc": {"size": delta}}).matched:
            return
        self.store.folders.update_one({"_id": item["folderId"]}, {"$inc": {"size": delta}})
        self.store.of(item["baseParentType"]).update_one(
            {"_id": item["baseParentId"]}, {"$inc": {"size": delta}})

    def shift_size(self, size: int, old: tuple[ObjectId, str, ObjectId],
                   new: tuple[ObjectId, str, ObjectId]) -> None:
        """Move an item's bytes from (folder, root type, root id) to another."""
        if not size:
            return
        self.store.folders.update_one({"_id": old[0]}, {"$inc": {"size": -size}})
        self.store.folders.update_one({"_id": new[0]}, {"$inc": {"size": size}})
        if old[1:] != new[1:]:
            self.store.of(old[1]).update_one({"_id": old[2]}, {"$inc": {"size": -size}})
            self.store.of(new[1]).update_one({"_id": new[2]}, {"$inc": {"size": size}})


__all__ = ["DELETING", "ROOT_MODELS", "SizeLedger"]
