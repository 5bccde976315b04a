"""Items: Girder's auto-rename on collision, listing, updates, metadata, files."""

from __future__ import annotations

import builtins
import re
from typing import Any

from bson import ObjectId

from .. import acl
from ..acl import Principal
from ..clock import utcnow
from ..db.engine import Document, DuplicateKeyError, SortSpec
from ..errors import ExistsError
from ..validation import validate_name
from .folders import merge_meta
from .listing import before, with_text
from .tree_access import TreeAccess

_SUFFIX = re.compile(r"^(.*) \((\d+)\)$")
MAX_RENAMES = 10000


class ItemService:
    def __init__(self, tree: TreeAccess) -> None:
        self.tree = tree
        self.store = tree.store

    def _taken(self, folder_id: ObjectId, name: str, self_id: ObjectId | None) -> bool:
        item = self.store.items.find_one({"folderId": folder_id, "name": name},
                                         projection=["_id"])
        if item is not None and item["_id"] != self_id:
            return True
        return self.store.folders.find_one({"parentId": folder_id, "name": name},
                                           projection=["_id"]) is not None

    def free_name(self, folder_id: ObjectId, name: str,
                  self_id: ObjectId | None = None) -> str:
        """``name``, or ``name (n)`` with the smallest n not taken by a sibling
        item or folder (Girder's rule)."""
        if not self._taken(folder_id, name, self_id):
            return name
        match = _SUFFIX.match(name)
        base, n = (match.group(1), int(match.group(2))) if match else (name, 0)
        for i in range(n + 1, n + MAX_RENAMES):
            candidate = f"{base} ({i})"
            if not self._taken(folder_id, candidate, self_id):
                return candidate
        raise ExistsError(f"Too many items named {name!r} here.", field="name")

    def create(self, principal: Principal, folder: Document, name: Any, *,
               description: str = "", reuse_existing: bool = False,
               metadata: dict[str, Any] | None = None, rename: bool = True,
               creator_id: ObjectId | None = None, check_access: bool = True) -> Document:
        """A new item; ``rename`` False raises ``ExistsError`` on a collision
        instead of Girder's ``name (n)`` (path-based gateways need that)."""
        if check_access:
            self.tree.require(principal, "folder", folder, acl.WRITE)
        name = validate_name(name, "Item name")
        if reuse_existing:
            existing = self.store.items.find_one({"folderId": folder["_id"], "name": name})
            if existing is not None:
                if metadata:
                    return self.set_metadata(principal, existing, metadata, check_access=False)
                return existing
        now = utcnow()
        doc: dict[str, Any] = {
            "name": name, "lowerName": name.lower(),
            "description": (description or "").strip(), "folderId": folder["_id"],
            "baseParentType": folder["baseParentType"],
            "baseParentId": folder["baseParentId"],
            "creatorId": creator_id or principal.user_id, "created": now, "updated": now,
            "size": 0, "meta": merge_meta({}, metadata or {}), "fileCount": 0,
        }
        # The unique (folderId, name) index settles item-against-item collisions
        # (concurrent creates included); only sibling folders need a look first.
        self.tree.saving("item", doc)
        candidate = name
        for _ in range(MAX_RENAMES):
            if self.store.folders.find_one({"parentId": folder["_id"], "name": candidate},
                                           projection=["_id"]) is not None:
                if not rename:
                    raise ExistsError(f"{name!r} already exists here.", field="name")
                candidate = self.free_name(folder["_id"], name)
            doc.update(name=candidate, lowerName=candidate.lower())
            doc.pop("_id", None)
            try:
                with self.store.engine.grouped():  # one commit on SQLite
                    self.store.items.insert_one(doc)
                    self.tree.sizes.count_items(folder["_id"], 1)
            except DuplicateKeyError:
                if not rename:
                    raise ExistsError(f"{name!r} already exists here.",
                                      field="name") from None
                candidate = self.free_name(folder["_id"], name)
                continue
            self.tree.saved("item", doc, created=True)
            return doc
        raise ExistsError(f"Too many items named {name!r} here.", field="name")

    def get(self, principal: Principal, item_id: Any, level: int = acl.READ) -> Document:
        return self.tree.load(principal, "item", item_id, level)

    def list(self, principal: Principal, folder_id: Any, *, name: str | None = None,
             skip: int = 0, limit: int = 50,
             sort: SortSpec | None = None) -> tuple[list[Document], Document]:
        """Items need no per-item check: one READ check on the folder, then one
        indexed query."""
        folder = self.tree.load(principal, "folder", folder_id, acl.READ)
        query: dict[str, Any] = {"folderId": folder["_id"]}
        if name is not None:
            query["name"] = name
        docs = self.store.items.find(query, sort=sort or [("lowerName", 1), ("_id", 1)],
                                     skip=skip, limit=limit)
        return docs, folder

    # ------------------------------------------------------------ REST listings
    def _listing_filter(self, principal: Principal, folder: Document, name: str | None,
                        text: str | None) -> dict[str, Any]:
        """Items have no ACL of their own: READ on the folder covers them all
        (an in-memory check on the folder in hand, no query)."""
        self.tree.require(principal, "folder", folder, acl.READ)
        query: dict[str, Any] = {"folderId": folder["_id"]}
        if name is not None:
            query["name"] = name
        return with_text(query, text)

    def listing(self, principal: Principal, folder: Document, *, name: str | None = None,
                text: str | None = None, sort: SortSpec | None = None, skip: int = 0,
                limit: int = 50) -> builtins.list[Document]:
        """One page of a folder's items, ``name`` exact and ``text`` a substring."""
        return self.store.items.find(self._listing_filter(principal, folder, name, text),
                                     sort=sort or [("lowerName", 1), ("_id", 1)],
                                     skip=skip, limit=limit)

    def listing_count(self, principal: Principal, folder: Document, *,
                      name: str | None = None, text: str | None = None) -> int:
        """How many items ``listing`` covers without paging (a count query;
        ``SizeLedger.item_count`` is the kept count of an unfiltered folder)."""
        return self.store.items.count(self._listing_filter(principal, folder, name, text))

    def position(self, principal: Principal, item: Document, folder: Document, *,
                 name: str | None = None, text: str | None = None, sort: SortSpec) -> int:
        """How many items of the listing sort before ``item`` (Girder's ``position``)."""
        query = self._listing_filter(principal, folder, name, text)
        return self.store.items.count({"$and": [query, before(item, sort)]})

    def update(self, principal: Principal, item: Document, *, name: Any = None,
               description: str | None = None, metadata: dict[str, Any] | None = None,
               rename: bool = True) -> Document:
        self.tree.require(principal, "item", item, acl.WRITE)
        update: dict[str, Any] = {}
        if name is not None:
            new_name = validate_name(name, "Item name")
            if new_name != item["name"]:
                if rename:
                    new_name = self.free_name(item["folderId"], new_name, item["_id"])
                elif self._taken(item["folderId"], new_name, item["_id"]):
                    raise ExistsError(f"{new_name!r} already exists here.", field="name")
                update.update(name=new_name, lowerName=new_name.lower())
        if description is not None:
            update["description"] = description.strip()
        if metadata:
            update["meta"] = merge_meta(item.get("meta"), metadata)
        update["updated"] = utcnow()
        self.tree.saving("item", {**item, **update})
        try:
            self.store.items.update_one({"_id": item["_id"]}, {"$set": update})
        except DuplicateKeyError:
            raise ExistsError(f"{update.get('name')!r} already exists here.",
                              field="name") from None
        self.tree.saved("item", {**item, **update})
        return {**item, **update}

    def set_metadata(self, principal: Principal, item: Document, metadata: dict[str, Any],
                     *, allow_null: bool = False, check_access: bool = True) -> Document:
        return self.tree.set_meta(principal, "item", item, metadata, allow_null=allow_null,
                                  check_access=check_access)

    def delete_metadata(self, principal: Principal, item: Document,
                        keys: builtins.list[str]) -> Document:
        return self.tree.delete_meta(principal, "item", item, keys)

    def files(self, principal: Principal, item: Document, *, skip: int = 0, limit: int = 50,
              sort: SortSpec | None = None, check_access: bool = True) -> builtins.list[Document]:
        if check_access:
            self.tree.require(principal, "item", item, acl.READ)
        return self.store.files.find({"itemId": item["_id"]},
                                     sort=sort or [("name", 1), ("_id", 1)],
                                     skip=skip, limit=limit)

    def file_count(self, principal: Principal, item: Document, *,
                   check_access: bool = True) -> int:
        if check_access:
            self.tree.require(principal, "item", item, acl.READ)
        return self.store.files.count({"itemId": item["_id"]})

    def root_path(self, principal: Principal, item: Document) -> builtins.list[dict[str, Any]]:
        return self.tree.ancestors(principal, "folder", item["folderId"])
