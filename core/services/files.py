"""File records: creation with size bookkeeping, updates, reads, copies, deletion.

Write order keeps a crash harmless: bytes are committed to the assetstore before
the record that points at them exists, and a record is removed before its
reference is released. The worst a crash leaves is an extra reference, which
``joist check`` finds and repairs; never a record pointing at missing bytes.
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import urlparse

from bson import ObjectId

from .. import acl, faults
from ..acl import SYSTEM, Principal
from ..assetstores.base import BlobReader
from ..assetstores.registry import AssetstoreRegistry
from ..clock import utcnow
from ..db.engine import Document
from ..errors import (
    ConflictError,
    ContainerGoneError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from ..filenames import file_exts
from ..stored_settings import SettingsService
from ..validation import validate_mime_type, validate_name
from .handover import BlobHandover
from .sizes import DELETING
from .tree_access import TreeAccess

DEFAULT_MIME = "application/octet-stream"
_DELETE_ATTEMPTS = 16  # a record replaced this often meanwhile: give up
# ``pending``: a filesystem upload's bytes before their hand-over (no sha512 yet)
BLOB_FIELDS = ("sha512", "path", "relpath", "s3Key", "chunkUuid", "chunkSize", "imported",
               "pending")


def guess_mime(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or DEFAULT_MIME


class FileService:
    def __init__(self, tree: TreeAccess, assetstores: AssetstoreRegistry,
                 settings: SettingsService | None = None) -> None:
        self.tree = tree
        self.store = tree.store
        self.assetstores = assetstores
        self.settings = settings
        self.handover = BlobHandover(self.store.files, assetstores, tree.events)

    def get(self, principal: Principal, file_id: Any, level: int = acl.READ) -> Document:
        return self.tree.load(principal, "file", file_id, level)

    def record(self, item: Document, *, name: str, size: int, mime_type: str | None,
               assetstore_id: Any, blob: dict[str, Any], creator_id: ObjectId | None,
               extra: dict[str, Any] | None = None) -> Document:
        """Insert the record for committed bytes and account for its size."""
        name = validate_name(name, "File name")
        doc: dict[str, Any] = {
            "name": name, "mimeType": mime_type or DEFAULT_MIME, "size": int(size),
            "itemId": item["_id"], "exts": file_exts(name), "creatorId": creator_id,
            "created": utcnow(), "assetstoreId": assetstore_id,
            **{k: v for k, v in blob.items() if k in BLOB_FIELDS},
            **(extra or {}),
        }
        self.tree.saving("file", doc)
        self.store.files.insert_one(doc)
        self._touch(item["_id"], +1)
        self.tree.sizes.add_size(item, int(size))
        if self.store.items.find_one({"_id": item["_id"], DELETING: {"$exists": False}},
                                     projection=["_id"]) is None:
            # The item was deleted meanwhile. Its deleter sweeps its files again
            # after removing it (``RemovalService.delete_item``): whichever of us
            # removes this record releases its bytes, exactly once.
            self.delete(SYSTEM, doc, check_access=False, item=item)
            raise ContainerGoneError(f"The item of {name!r} was deleted meanwhile.")
        self.tree.saved("file", doc, created=True)
        return doc

    def _touch(self, item_id: ObjectId, files_delta: int = 0) -> None:
        # Girder leaves item.updated alone when files change, so localsync
        # misses content changes; bumping it is compatible and better.
        update: dict[str, Any] = {"$set": {"updated": utcnow()}}
        if files_delta:
            update["$inc"] = {"fileCount": files_delta}
        self.store.items.update_one({"_id": item_id}, update)

    def create_link(self, principal: Principal, item: Document, name: str,
                    url: str, *, mime_type: str | None = None) -> Document:
        self.tree.require(principal, "item", item, acl.WRITE)
        parsed = urlparse(url or "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValidationError("Linked file URL must start with http:// or https://.",
                                  field="linkUrl")
        doc: dict[str, Any] = {
            "name": validate_name(name, "File name"),
            "mimeType": validate_mime_type(mime_type) or DEFAULT_MIME,
            "size": 0, "itemId": item["_id"], "exts": file_exts(name),
            "creatorId": principal.user_id, "created": utcnow(), "assetstoreId": None,
            "linkUrl": url,
        }
        self.tree.saving("file", doc)
        self.store.files.insert_one(doc)
        self._touch(item["_id"], +1)
        self.tree.saved("file", doc, created=True)
        return doc

    def update(self, principal: Principal, file: Document, *, name: Any = None,
               mime_type: str | None = None) -> Document:
        self.tree.require(principal, "file", file, acl.WRITE)
        update: dict[str, Any] = {"updated": utcnow()}
        if name is not None:
            update["name"] = validate_name(name, "File name")
            update["exts"] = file_exts(update["name"])
        if mime_type is not None:
            update["mimeType"] = validate_mime_type(mime_type) or DEFAULT_MIME
        self.tree.saving("file", {**file, **update})
        self.store.files.update_one({"_id": file["_id"]}, {"$set": update})
        self.tree.saved("file", {**file, **update})
        return {**file, **update}

    def open_read(self, principal: Principal, file: Document,
                  check_access: bool = True) -> BlobReader:
        if check_access:
            self.tree.require(principal, "file", file, acl.READ)
        try:
            return self.assetstores.for_file(file).open_read(file)
        except StorageError:
            if not file.get("pending"):
                raise
            # Handed over since the caller read the record: read it again.
            current = self.store.files.find_one({"_id": file["_id"]})
            if current is None or current.get("pending") == file.get("pending"):
                raise
            return self.assetstores.for_file(current).open_read(current)

    def download_url(self, file: Document, *, disposition: str = "attachment") -> str | None:
        """Where to redirect a download of ``file`` (a presigned URL), when the
        setting ``joist.s3.redirect_downloads`` allows and its assetstore has
        one; None means: send the bytes. The caller checked READ access."""
        if not file.get("assetstoreId") or file.get("linkUrl") or self.settings is None \
                or not self.settings.get("joist.s3.redirect_downloads"):
            return None
        adapter = self.assetstores.for_file(file)
        if not adapter.capabilities.presigned_download:
            return None
        return adapter.download_url(file, str(file["name"]), disposition)

    def delete(self, principal: Principal, file: Document, *,
               check_access: bool = True, item: Document | None = None) -> None:
        """Remove the record, then release its bytes. ``item``: the file's item
        as the caller knows it (it may be gone from the store already), so
        that the sizes it was counted in are still corrected."""
        if check_access:
            self.tree.require(principal, "file", file, acl.WRITE)
        self.tree.removing("file", file)
        removed = self._delete_record(file)
        if removed is None:
            return  # already gone (a concurrent delete): nothing to release
        faults.point("file.delete.after_record")
        if item is None:
            item = self.store.items.find_one({"_id": removed["itemId"]})
        if item is not None:
            self._touch(item["_id"], -1)
            self.tree.sizes.add_size(item, -int(removed.get("size") or 0))
        self.release(removed)
        self.tree.removed("file", removed)

    def _delete_record(self, file: Document) -> Document | None:
        """Remove the record as it is now and return that: the bytes to release
        are the ones it names at its removal, not when the caller read it (a
        concurrent replace may have swapped and released those already)."""
        for _ in range(_DELETE_ATTEMPTS):
            guard = {"_id": file["_id"], "size": file.get("size"),
                     "assetstoreId": file.get("assetstoreId"),
                     **{k: file[k] for k in BLOB_FIELDS if k in file}}
            if self.store.files.delete_one(guard):
                return file
            current = self.store.files.find_one({"_id": file["_id"]})
            if current is None:
                return None
            file = current
        raise ConflictError(f"{file['name']!r} kept changing while being deleted; "
                            "try again.")

    def release(self, file: Document) -> None:
        """Drop this record's reference to its bytes (after the record is gone)."""
        if file.get("assetstoreId") and not file.get("imported"):
            self.assetstores.for_file(file).delete(file)

    def copy(self, principal: Principal, file: Document, item: Document, *,
             check_access: bool = True) -> Document:
        """A new record in ``item`` sharing the same stored bytes."""
        if check_access:
            self.tree.require(principal, "file", file, acl.READ)
            self.tree.require(principal, "item", item, acl.WRITE)
        if file.get("linkUrl"):
            return self.create_link(principal, item, file["name"], file["linkUrl"],
                                    mime_type=file.get("mimeType"))
        file = self._reference(file)
        faults.point("file.copy.after_reference")
        blob = {k: file[k] for k in BLOB_FIELDS if k in file}
        return self.record(item, name=file["name"], size=int(file.get("size") or 0),
                           mime_type=file.get("mimeType"),
                           assetstore_id=file.get("assetstoreId"), blob=blob,
                           creator_id=principal.user_id,
                           extra={"copied": utcnow(), "copierId": principal.user_id})

    def _reference(self, file: Document) -> Document:
        """Take one more reference to ``file``'s bytes, as the record is now:
        a concurrent replace or delete may have released what was read."""
        for _ in range(8):
            if not file.get("assetstoreId") or file.get("imported"):
                return file
            try:
                self.assetstores.for_file(file).add_reference(file)
                return file
            except StorageError:
                current = self.store.files.find_one({"_id": file["_id"]})
                if current is None:
                    raise NotFoundError(f"{file['name']!r} was deleted meanwhile.") from None
                if all(current.get(k) == file.get(k) for k in BLOB_FIELDS):
                    raise  # the record still names those bytes: a real fault
                file = current
        raise StorageError(f"{file['name']!r} kept changing while being copied.")

    def move_to_item(self, principal: Principal, file: Document, item: Document, *,
                     name: Any = None, check_access: bool = True) -> Document:
        """Re-home a file record (and rename it); its bytes do not move."""
        if check_access:
            self.tree.require(principal, "file", file, acl.WRITE)
            self.tree.require(principal, "item", item, acl.WRITE)
        new_name = validate_name(name, "File name") if name is not None else file["name"]
        update = {"itemId": item["_id"], "name": new_name, "exts": file_exts(new_name),
                  "updated": utcnow()}
        self.tree.saving("file", {**file, **update})
        moved = self.store.files.update_one(  # only from where the caller saw it
            {"_id": file["_id"], "itemId": file["itemId"], "name": file["name"]},
            {"$set": update})
        if not moved.matched:
            raise NotFoundError(f"{file['name']!r} was moved, renamed or deleted meanwhile.")
        if file["itemId"] == item["_id"]:
            self._touch(item["_id"])
            self.tree.saved("file", {**file, **update})
            return {**file, **update}
        old = self.store.get("item", file["itemId"])
        size = int(file.get("size") or 0)
        self._touch(old["_id"], -1)
        self._touch(item["_id"], +1)
        if size:
            self.store.items.update_one({"_id": old["_id"]}, {"$inc": {"size": -size}})
            self.store.items.update_one({"_id": item["_id"]}, {"$inc": {"size": size}})
            self.tree.sizes.shift_size(
                size, (old["folderId"], old["baseParentType"], old["baseParentId"]),
                (item["folderId"], item["baseParentType"], item["baseParentId"]))
        self.tree.saved("file", {**file, **update})
        return {**file, **update}
