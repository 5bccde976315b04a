"""Folders: creation with Girder's ACL inheritance, listing, updates, metadata."""

from __future__ import annotations

import builtins
import copy
from typing import Any

from bson import ObjectId

from .. import acl
from ..acl import Principal
from ..clock import utcnow
from ..db.engine import Document, DuplicateKeyError, SortSpec
from ..errors import ExistsError, ValidationError
from ..validation import validate_meta, validate_name
from .listing import before, name_filter, with_text
from .tree_access import TreeAccess

FOLDER_EXISTS = "A folder with that name already exists here."
ITEM_EXISTS = "An item with that name already exists here."


def merge_meta(meta: dict[str, Any] | None, changes: dict[str, Any],
               allow_null: bool = False) -> dict[str, Any]:
    """Girder's metadata merge: null deletes a key unless ``allow_null``."""
    if not isinstance(changes, dict):
        raise ValidationError("Metadata must be a JSON object.", field="metadata")
    merged = dict(meta or {})
    for key, value in changes.items():
        if value is None and not allow_null:
            merged.pop(key, None)
        else:
            merged[key] = value
    validate_meta(merged)
    return merged


def sort_spec(sort: str | None, sortdir: int, default: str) -> SortSpec:
    """A deterministic order: the requested field, then ``_id``."""
    field = sort or default
    if sortdir not in (1, -1):
        raise ValidationError("Invalid value for sortdir parameter.", field="sortdir")
    return [(field, sortdir)] if field == "_id" else [(field, sortdir), ("_id", sortdir)]


class FolderService:
    def __init__(self, tree: TreeAccess) -> None:
        self.tree = tree
        self.store = tree.store

    def create(self, principal: Principal, parent_type: str, parent_id: Any, name: Any,
               *, description: str = "", public: bool | None = None,
               reuse_existing: bool = False, metadata: dict[str, Any] | None = None,
               creator: Document | None = None, check_access: bool = True) -> Document:
        parent = (self.tree.load_parent(principal, parent_type, parent_id, acl.WRITE)
                  if check_access else self.store.get(parent_type, parent_id))
        name = validate_name(name, "Folder name")
        if reuse_existing:
            existing = self.store.folders.find_one({"parentId": parent["_id"], "name": name})
            if existing is not None:
                if metadata:
                    return self.set_metadata(principal, existing, metadata, check_access=False)
                return existing
        if parent_type == "folder" and \
                self.store.items.find_one({"folderId": parent["_id"], "name": name}):
            raise ExistsError(ITEM_EXISTS, field="name")
        now = utcnow()
        root_type, root_id = self.tree.sizes.root_of(parent, parent_type)
        if parent_type == "user":
            access, is_public = acl.new_access(), False
        else:
            access = copy.deepcopy(parent.get("access") or acl.new_access())
            is_public = bool(parent.get("public", False))
        creator_id = creator["_id"] if creator else principal.user_id
        if creator_id is not None:
            access = acl.grant(access, "user", creator_id, acl.ADMIN)
        doc: dict[str, Any] = {
            "name": name, "lowerName": name.lower(),
            "description": (description or "").strip(),
            "parentCollection": parent_type, "parentId": parent["_id"],
            "baseParentType": root_type, "baseParentId": root_id,
            "creatorId": creator_id, "created": now, "updated": now, "size": 0,
            "meta": merge_meta({}, metadata or {}),
            "public": is_public if public is None else bool(public),
            "publicFlags": list(parent.get("publicFlags") or []) if parent_type != "user"
            else [],
            "access": access,
        }
        self.tree.saving("folder", doc)
        try:
            with self.store.engine.grouped():
                self.store.folders.insert_one(doc)
                self.store.folder_counts.insert_one({"_id": doc["_id"], "items": 0})
        except DuplicateKeyError:
            if reuse_existing:
                found = self.store.folders.find_one({"parentId": parent["_id"], "name": name})
                if found is not None:
                    return found
            raise ExistsError(FOLDER_EXISTS, field="name") from None
        self.tree.saved("folder", doc, created=True)
        return doc

    def get(self, principal: Principal, folder_id: Any, level: int = acl.READ) -> Document:
        return self.tree.load(principal, "folder", folder_id, level)

    def children_filter(self, principal: Principal, parent: Document,
                        name: str | None = None, level: int = acl.READ) -> dict[str, Any]:
        base: dict[str, Any] = {"parentId": parent["_id"]}
        if name is not None:
            base["name"] = name
        return acl.and_filter(base, acl.permission_filter(principal, level))

    def list(self, principal: Principal, parent_type: str, parent_id: Any, *,
             name: str | None = None, skip: int = 0, limit: int = 50,
             sort: SortSpec | None = None) -> tuple[list[Document], Document]:
        """One page of the child folders ``principal`` may read (one query)."""
        parent = self.tree.load_parent(principal, parent_type, parent_id, acl.READ)
        query = self.children_filter(principal, parent, name)
        docs = self.store.folders.find(query, sort=sort or [("lowerName", 1), ("_id", 1)],
                                       skip=skip, limit=limit)
        return docs, parent

    def count(self, principal: Principal, parent: Document) -> int:
        return self.store.folders.count(self.children_filter(principal, parent))

    # ------------------------------------------------------------ REST listings
    def _listing_filter(self, principal: Principal, parent: Document | None,
                        name: str | None, text: str | None) -> dict[str, Any]:
        """The readable folders a listing covers: the children of ``parent``
        (``name`` exact, ``text`` a substring), or with no parent a search of
        every readable folder by ``text``."""
        if parent is not None:
            return with_text(self.children_filter(principal, parent, name), text)
        if not text:
            raise ValidationError("Invalid search mode.")
        return acl.and_filter(name_filter(text), acl.permission_filter(principal, acl.READ))

    def listing(self, principal: Principal, parent: Document | None, *,
                name: str | None = None, text: str | None = None,
                sort: SortSpec | None = None, skip: int = 0,
                limit: int = 50) -> builtins.list[Document]:
        """One page of a listing (see ``_listing_filter``); ``parent`` was loaded
        READ-checked by the caller."""
        return self.store.folders.find(self._listing_filter(principal, parent, name, text),
                                       sort=sort or [("lowerName", 1), ("_id", 1)],
                                       skip=skip, limit=limit)

    def listing_count(self, principal: Principal, parent: Document | None, *,
                      name: str | None = None, text: str | None = None) -> int:
        """How many folders ``listing`` covers without paging."""
        return self.store.folders.count(self._listing_filter(principal, parent, name, text))

    def position(self, principal: Principal, folder: Document, parent: Document | None, *,
                 name: str | None = None, text: str | None = None,
                 sort: SortSpec) -> int:
        """How many folders of the listing sort before ``folder`` (Girder's
        ``position``)."""
        query = self._listing_filter(principal, parent, name, text)
        return self.store.folders.count({"$and": [query, before(folder, sort)]})

    def update(self, principal: Principal, folder: Document, *, name: Any = None,
               description: str | None = None,
               metadata: dict[str, Any] | None = None) -> Document:
        self.tree.require(principal, "folder", folder, acl.WRITE)
        update: dict[str, Any] = {}
        if name is not None:
            new_name = validate_name(name, "Folder name")
            if new_name != folder["name"]:
                self._check_free(folder["parentCollection"], folder["parentId"], new_name,
                                 folder["_id"])
                update.update(name=new_name, lowerName=new_name.lower())
        if description is not None:
            update["description"] = description.strip()
        if metadata:
            update["meta"] = merge_meta(folder.get("meta"), metadata)
        if not update:
            return folder
        update["updated"] = utcnow()
        self.tree.saving("folder", {**folder, **update})
        try:
            self.store.folders.update_one({"_id": folder["_id"]}, {"$set": update})
        except DuplicateKeyError:
            raise ExistsError(FOLDER_EXISTS, field="name") from None
        self.tree.saved("folder", {**folder, **update})
        return {**folder, **update}

    def _check_free(self, parent_type: str, parent_id: ObjectId, name: str,
                    self_id: ObjectId | None = None) -> None:
        other = self.store.folders.find_one({"parentId": parent_id, "name": name})
        if other is not None and other["_id"] != self_id:
            raise ExistsError(FOLDER_EXISTS, field="name")
        if parent_type == "folder" and \
                self.store.items.find_one({"folderId": parent_id, "name": name}):
            raise ExistsError(ITEM_EXISTS, field="name")

    def set_metadata(self, principal: Principal, folder: Document, metadata: dict[str, Any],
                     *, allow_null: bool = False, check_access: bool = True) -> Document:
        return self.tree.set_meta(principal, "folder", folder, metadata, allow_null=allow_null,
                                  check_access=check_access)

    def delete_metadata(self, principal: Principal, folder: Document,
                        keys: builtins.list[str]) -> Document:
        return self.tree.delete_meta(principal, "folder", folder, keys)

    def details(self, principal: Principal, folder: Document) -> dict[str, int]:
        return {"nItems": self.store.items.count({"folderId": folder["_id"]}),
                "nFolders": self.count(principal, folder)}

    def root_path(self, principal: Principal, folder: Document) -> builtins.list[dict[str, Any]]:
        """Ancestors from the root down (Girder's ``rootpath``), READ required."""
        return self.tree.ancestors(principal, folder["parentCollection"], folder["parentId"])
