"""Cascade deletes that release assetstore bytes, bottom-up.

Deletion goes leaves first (items, then the deepest folders), so a crash midway
leaves a smaller tree; an item goes before its files (see ``delete_item``), and
each file record is removed before its bytes are released, so a crash leaves
at worst orphan records and extra references that ``joist check --repair``
removes, never a record pointing at missing bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bson import ObjectId

from .. import acl
from ..acl import SYSTEM, Principal
from ..db.engine import Document
from ..errors import NotEmptyError, StorageError
from .files import FileService
from .notifications import NO_PROGRESS, ProgressContext
from .sizes import DELETING
from .tree_access import TreeAccess
from .uploads import UploadService

PAGE = 500


class RemovalService:
    def __init__(self, tree: TreeAccess, files: FileService, uploads: UploadService) -> None:
        self.tree = tree
        self.store = tree.store
        self.files = files
        self.uploads = uploads

    def _pages(self, coll_name: str, query: dict[str, object]) -> Iterator[list[Document]]:
        # Always re-query the first page: what we delete drops out of it. A page
        # that comes back unchanged means nothing was deleted: stop, loudly.
        coll = self.store.of(coll_name)
        previous: list[Any] = []
        while True:
            page = coll.find(query, sort=[("_id", 1)], limit=PAGE)
            if not page:
                return
            ids = [doc["_id"] for doc in page]
            if ids == previous:
                raise StorageError(f"Deleting from {coll_name} made no progress.")
            previous = ids
            yield page

    def _uploads_into(self, parent_id: ObjectId) -> None:
        for upload in self.store.uploads.find({"parentId": parent_id}):
            self.uploads.discard(upload)

    def count(self, model: str, doc: Document) -> int:
        """How many folders and items deleting ``doc`` removes, itself
        included: the total of a deletion's progress (Girder's subtreeCount)."""
        if model in ("item", "file"):
            return 1
        if model == "folder":
            ids = [f["_id"] for f in self.tree.walk_folders(doc["_id"])]
            return len(ids) + self.store.items.count({"folderId": {"$in": ids}})
        query = {"baseParentId": doc["_id"]}
        return 1 + self.store.folders.count(query) + self.store.items.count(query)

    def delete_item(self, principal: Principal, item: Document, *,
                    check_access: bool = True,
                    progress: ProgressContext = NO_PROGRESS) -> None:
        if check_access:
            self.tree.require(principal, "item", item, acl.WRITE)
        self.tree.removing("item", item)
        # Marked first, atomically: from then on no size is counted into it
        # (``SizeLedger.add_size``), so its size as marked is what its folder and
        # root lose, once, whatever writers do meanwhile.
        marked = self.store.items.find_one_and_update(
            {"_id": item["_id"], DELETING: {"$exists": False}}, {"$set": {DELETING: True}})
        first = marked is not None
        if marked is None:  # another deleter has it, or one was interrupted:
            marked = self.store.items.find_one({"_id": item["_id"]})  # finish it
            if marked is None:
                return
        self._uploads_into(item["_id"])
        size = int(marked.get("size") or 0)
        if first and size:
            self.store.folders.update_one({"_id": marked["folderId"]},
                                          {"$inc": {"size": -size}})
            self.store.of(marked["baseParentType"]).update_one(
                {"_id": marked["baseParentId"]}, {"$inc": {"size": -size}})
        # The item goes before its files: no one sees it empty (a directory)
        # while it goes, and a file recorded into it concurrently either finds
        # it gone or is found by this sweep (``FileService.record``). A crash
        # in between leaves orphan files, which ``joist check --repair`` removes.
        gone = bool(self.store.items.delete_one({"_id": item["_id"]}))
        if gone:
            self.tree.sizes.count_items(marked["folderId"], -1)
        self._delete_files(marked)
        if gone:
            self.tree.removed("item", marked)
        progress.update(increment=1, message=f"Deleted item {marked['name']}")

    def _delete_files(self, item: Document) -> None:
        for page in self._pages("file", {"itemId": item["_id"]}):
            for file in page:
                self.files.delete(SYSTEM, file, check_access=False, item=item)

    def delete_folder(self, principal: Principal, folder: Document, *,
                      check_access: bool = True, recursive: bool = True,
                      progress: ProgressContext = NO_PROGRESS) -> None:
        if check_access:
            self.tree.require(principal, "folder", folder, acl.ADMIN)
        if not recursive and (
                self.store.items.find_one({"folderId": folder["_id"]}, projection=["_id"])
                or self.store.folders.find_one({"parentId": folder["_id"]},
                                               projection=["_id"])):
            raise NotEmptyError(f"Folder {folder['name']!r} is not empty.")
        self.tree.removing("folder", folder)
        self.clear_folder(folder, progress=progress)
        self._drop_folder(folder, progress)

    def _drop_folder(self, folder: Document, progress: ProgressContext) -> None:
        self.store.folders.delete_one({"_id": folder["_id"]})
        self.store.folder_counts.delete_one({"_id": folder["_id"]})
        self.tree.removed("folder", folder)
        progress.update(increment=1, message=f"Deleted folder {folder['name']}")

    def clear_folder(self, folder: Document, *,
                     progress: ProgressContext = NO_PROGRESS) -> None:
        """Delete everything inside ``folder`` (Girder's ``folder/{id}/contents``)."""
        for page in self._pages("folder", {"parentId": folder["_id"],
                                           "parentCollection": "folder"}):
            for child in page:
                self.tree.removing("folder", child)
                self.clear_folder(child, progress=progress)
                self._drop_folder(child, progress)
        self._uploads_into(folder["_id"])
        for page in self._pages("item", {"folderId": folder["_id"]}):
            for item in page:
                self.delete_item(Principal.anonymous(), item, check_access=False,
                                 progress=progress)

    def _delete_root_folders(self, root_type: str, root_id: ObjectId,
                             progress: ProgressContext = NO_PROGRESS) -> None:
        for page in self._pages("folder", {"parentId": root_id,
                                           "parentCollection": root_type}):
            for folder in page:
                self.delete_folder(Principal.anonymous(), folder, check_access=False,
                                   progress=progress)

    def delete_collection(self, principal: Principal, collection: Document, *,
                          progress: ProgressContext = NO_PROGRESS) -> None:
        self.tree.require(principal, "collection", collection, acl.ADMIN)
        self.tree.removing("collection", collection)
        self._delete_root_folders("collection", collection["_id"], progress)
        self.store.collections.delete_one({"_id": collection["_id"]})
        self.tree.removed("collection", collection)
        progress.update(increment=1, message=f"Deleted collection {collection['name']}")

    def delete_user(self, principal: Principal, user: Document, *,
                    progress: ProgressContext = NO_PROGRESS) -> None:
        """The user's tree, credentials, and every ACL entry naming them."""
        principal.require_full_login()
        self.tree.require(principal, "user", user, acl.ADMIN)
        self.tree.removing("user", user)
        uid = user["_id"]
        self._delete_root_folders("user", uid, progress)
        for upload in self.store.uploads.find({"userId": uid}):
            self.uploads.discard(upload)
        self.store.tokens.delete_many({"userId": uid})
        self.store.api_keys.delete_many({"userId": uid})
        self.store.ssh_keys.delete_many({"userId": uid})
        for coll in (self.store.collections, self.store.folders, self.store.groups):
            coll.update_many({"access.users.id": uid}, {"$pull": {"access.users": {"id": uid}}})
        self.tree.acl_changed()
        self.store.groups.update_many({"requests": uid}, {"$pull": {"requests": uid}})
        for model in ("collection", "folder", "item", "file"):
            self.store.of(model).update_many({"creatorId": uid}, {"$set": {"creatorId": None}})
        self.store.users.delete_one({"_id": uid})
        self.tree.removed("user", user)
