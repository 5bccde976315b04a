"""Moves and copies of items and folders, keeping roots, sizes and names right."""

from __future__ import annotations

import copy
from typing import Any

from bson import ObjectId

from .. import acl
from ..acl import Principal
from ..clock import utcnow
from ..db.engine import Document, DuplicateKeyError
from ..errors import ExistsError, NotFoundError, ValidationError
from ..validation import validate_name
from .files import FileService
from .folders import FOLDER_EXISTS, FolderService
from .items import ItemService
from .notifications import NO_PROGRESS, ProgressContext
from .tree_access import TreeAccess

MAX_COPY_DEPTH = 1000
MOVED_MEANWHILE = "{!r} was moved, renamed or deleted meanwhile."


class MoveCopyService:
    def __init__(self, tree: TreeAccess, folders: FolderService, items: ItemService,
                 files: FileService) -> None:
        self.tree = tree
        self.store = tree.store
        self.folders = folders
        self.items = items
        self.files = files

    # ------------------------------------------------------------ items
    def move_item(self, principal: Principal, item: Document, folder: Document, *,
                  name: str | None = None, rename: bool = True) -> Document:
        """Into ``folder`` (optionally renamed); ``rename`` picks ``name (n)`` on
        a collision, else the collision is an ``ExistsError``."""
        self.tree.require(principal, "item", item, acl.WRITE)
        self.tree.require(principal, "folder", folder, acl.WRITE)
        new_name = validate_name(name, "Item name") if name is not None else item["name"]
        if rename:
            new_name = self.items.free_name(folder["_id"], new_name, item["_id"])
        elif self.items._taken(folder["_id"], new_name, item["_id"]):
            raise ExistsError(f"{new_name!r} already exists here.", field="name")
        update = {"folderId": folder["_id"], "baseParentType": folder["baseParentType"],
                  "baseParentId": folder["baseParentId"], "name": new_name,
                  "lowerName": new_name.lower(), "updated": utcnow()}
        self.tree.saving("item", {**item, **update})
        try:
            # Only from where the caller saw it: of concurrent moves one wins,
            # the others find the source gone (and count nothing twice).
            moved = self.store.items.update_one(
                {"_id": item["_id"], "folderId": item["folderId"], "name": item["name"]},
                {"$set": update})
        except DuplicateKeyError:
            raise ExistsError(f"{new_name!r} already exists here.", field="name") from None
        if not moved.matched:
            raise NotFoundError(MOVED_MEANWHILE.format(item["name"]))
        if folder["_id"] != item["folderId"]:
            self.tree.sizes.count_items(item["folderId"], -1)
            self.tree.sizes.count_items(folder["_id"], 1)
            self.tree.sizes.shift_size(int(item.get("size") or 0),
                                 (item["folderId"], item["baseParentType"], item["baseParentId"]),
                                 (folder["_id"], folder["baseParentType"], folder["baseParentId"]))
        self.tree.saved("item", {**item, **update})
        return {**item, **update}

    def copy_item(self, principal: Principal, item: Document, folder: Document, *,
                  name: str | None = None, description: str | None = None,
                  rename: bool = True) -> Document:
        self.tree.require(principal, "item", item, acl.READ)
        self.tree.require(principal, "folder", folder, acl.WRITE)
        new = self.items.create(principal, folder, name or item["name"],
                                description=item.get("description", "")
                                if description is None else description,
                                metadata=copy.deepcopy(item.get("meta") or {}),
                                rename=rename, check_access=False)
        self.store.items.update_one({"_id": new["_id"]},
                                    {"$set": {"copyOfItem": item["_id"]}})
        for file in self.store.files.find({"itemId": item["_id"]}, sort=[("_id", 1)]):
            self.files.copy(principal, file, new, check_access=False)
        return self.store.get("item", new["_id"])

    # ------------------------------------------------------------ folders
    def move_folder(self, principal: Principal, folder: Document, parent_type: str,
                    parent: Document, *, name: str | None = None) -> Document:
        self.tree.require(principal, "folder", folder, acl.WRITE)
        self.tree.require(principal, parent_type, parent, acl.WRITE)
        if parent_type == "folder" and self.tree.is_descendant(parent["_id"], folder["_id"]):
            raise ValidationError("You may not move a folder underneath itself.",
                                  field="parentId")
        new_name = validate_name(name, "Folder name") if name is not None else folder["name"]
        same_place = parent["_id"] == folder["parentId"]
        if not same_place or new_name != folder["name"]:
            self.folders._check_free(parent_type, parent["_id"], new_name, folder["_id"])
        root_type, root_id = self.tree.sizes.root_of(parent, parent_type)
        update = {"parentId": parent["_id"], "parentCollection": parent_type,
                  "baseParentType": root_type, "baseParentId": root_id,
                  "name": new_name, "lowerName": new_name.lower(), "updated": utcnow()}
        self.tree.saving("folder", {**folder, **update})
        try:
            moved = self.store.folders.update_one(
                {"_id": folder["_id"], "parentId": folder["parentId"],
                 "name": folder["name"]}, {"$set": update})
        except DuplicateKeyError:
            raise ExistsError(FOLDER_EXISTS, field="name") from None
        if not moved.matched:
            raise NotFoundError(MOVED_MEANWHILE.format(folder["name"]))
        if (root_type, root_id) != (folder["baseParentType"], folder["baseParentId"]):
            self._rebase(folder["_id"], root_type, root_id,
                         (folder["baseParentType"], folder["baseParentId"]))
        self.tree.saved("folder", {**folder, **update})
        return {**folder, **update}

    def _rebase(self, folder_id: ObjectId, root_type: str, root_id: ObjectId,
                old_root: tuple[str, ObjectId]) -> None:
        """Point a moved subtree at its new root and move its bytes between roots."""
        subtree = self.tree.walk_folders(folder_id)
        ids = [f["_id"] for f in subtree]
        total = sum(int(f.get("size") or 0) for f in subtree)
        rebase = {"$set": {"baseParentType": root_type, "baseParentId": root_id}}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            self.store.folders.update_many({"_id": {"$in": chunk}}, rebase)
            self.store.items.update_many({"folderId": {"$in": chunk}}, rebase)
        if total:
            self.store.of(old_root[0]).update_one({"_id": old_root[1]},
                                                  {"$inc": {"size": -total}})
            self.store.of(root_type).update_one({"_id": root_id}, {"$inc": {"size": total}})

    def copy_folder(self, principal: Principal, folder: Document, parent_type: str,
                    parent: Document, *, name: str | None = None,
                    description: str | None = None, public: Any = "original",
                    progress: ProgressContext = NO_PROGRESS, _depth: int = 0) -> Document:
        """A deep copy; files share their stored bytes with the originals."""
        self.tree.require(principal, "folder", folder, acl.READ)
        if _depth == 0:
            self.tree.require(principal, parent_type, parent, acl.WRITE)
            if parent_type == "folder" and \
                    self.tree.is_descendant(parent["_id"], folder["_id"]):
                raise ValidationError("You may not copy a folder into itself.",
                                      field="parentId")
        if _depth > MAX_COPY_DEPTH:
            raise ValidationError("Folder tree too deep to copy.")
        is_public = folder.get("public", False) if public == "original" else bool(public)
        new = self.folders.create(
            principal, parent_type, parent["_id"], name or folder["name"],
            description=folder.get("description", "") if description is None
            else description, public=is_public,
            metadata=copy.deepcopy(folder.get("meta") or {}), check_access=False)
        access = copy.deepcopy(folder.get("access") or acl.new_access())
        if principal.user_id is not None:
            access = acl.grant(access, "user", principal.user_id, acl.ADMIN)
        self.store.folders.update_one({"_id": new["_id"]}, {"$set": {"access": access}})
        for child in self.store.folders.find({"parentId": folder["_id"],
                                              "parentCollection": "folder"},
                                             sort=[("_id", 1)]):
            if self.tree.level(principal, "folder", child) >= acl.READ:
                self.copy_folder(principal, child, "folder", new, progress=progress,
                                 _depth=_depth + 1)
        for item in self.store.items.find({"folderId": folder["_id"]}, sort=[("_id", 1)]):
            self.copy_item(principal, item, new)
            progress.update(increment=1, message=f"Copied item {item['name']}")
        progress.update(increment=1, message=f"Copied folder {folder['name']}")
        return self.store.get("folder", new["_id"])
