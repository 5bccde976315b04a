"""The upload protocol (Girder's): init, chunks at exact offsets, resume, finalize.

An upload record exists from the first moment its temp bytes do, so ``joist
check`` can tell a live partial upload from debris. Bytes become visible only
when the file record is written, after the assetstore committed them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

from bson import ObjectId

from .. import acl, faults, processes
from ..acl import Principal
from ..assetstores.registry import AssetstoreRegistry
from ..clock import utcnow
from ..db.engine import Document
from ..errors import (
    AccessDeniedError,
    ConflictError,
    ContainerGoneError,
    ExistsError,
    NotFoundError,
    QuotaError,
    ValidationError,
)
from ..store import object_id
from ..stored_settings import SettingsService
from ..validation import validate_mime_type, validate_name
from .files import BLOB_FIELDS, DEFAULT_MIME, FileService
from .items import ItemService
from .tree_access import TreeAccess

log = logging.getLogger("joist.uploads")
_REPLACE_ATTEMPTS = 16  # rounds of the create/replace race before giving up
_IN_FLIGHT: Any = object()
PROGRESS_SECONDS = 2.0
"""A streaming upload records its length and activity at most this often."""
MAX_SIZE = 1 << 63  # BSON's widest integer; no assetstore holds more
ASSETSTORE_EVENT = "model.upload.assetstore"
"""Girder's hook choosing where an upload's bytes go: the info holds ``model``
and ``resource`` (the folder or item uploaded into, or the file replaced) and
``size`` (None while streaming); the last assetstore document a handler adds
as a response wins, else the current assetstore."""
FINALIZE_EVENT = "model.upload.finalize"
"""Fired before an upload's bytes are committed; a handler that raises refuses
the upload, which is then discarded."""


@dataclass(frozen=True)
class UploadStep:
    """What a step of the protocol produced: the live upload or the new file."""

    upload: Document | None = None
    file: Document | None = None


class UploadService:
    def __init__(self, tree: TreeAccess, items: ItemService, files: FileService,
                 assetstores: AssetstoreRegistry, settings: SettingsService) -> None:
        self.tree = tree
        self.store = tree.store
        self.items = items
        self.files = files
        self.assetstores = assetstores
        self.settings = settings

    # ------------------------------------------------------------ start
    def begin(self, principal: Principal, parent_type: str, parent_id: Any, name: Any,
              size: Any, *, mime_type: str | None = None, reference: str | None = None,
              assetstore_id: Any = None, on_collision: str = "rename",
              extra_parameters: Any = None) -> UploadStep:
        """Start an upload into a folder (a new item named after the file) or an item.

        ``on_collision`` says what finalize does when the folder already holds
        that name: ``rename`` (Girder's ``name (n)``), ``fail`` (``ExistsError``)
        or ``replace`` (new bytes for a one-file item of that name; path-based
        gateways: last writer wins). ``size`` None starts a streaming upload
        whose size is known only when ``finish`` is called. ``extra_parameters``
        (Girder's ``uploadExtraParameters``) go to the assetstore to judge."""
        if on_collision not in ("rename", "fail", "replace"):
            raise ValidationError("Invalid collision policy.")
        if parent_type not in ("folder", "item"):
            raise ValidationError("The parentType must be folder or item.", field="parentType")
        parent = self.tree.load(principal, parent_type, parent_id, acl.WRITE)
        name = validate_name(name, "File name")
        return self._start(principal, {
            "name": name, "parentType": parent_type, "parentId": parent["_id"],
            "onCollision": on_collision}, size, mime_type, reference, assetstore_id,
            extra_parameters, target=(parent_type, parent))

    def begin_replace(self, principal: Principal, file: Document, size: Any, *,
                      reference: str | None = None, assetstore_id: Any = None) -> UploadStep:
        """Start replacing the bytes of an existing file (``PUT file/{id}/contents``)."""
        self.tree.require(principal, "file", file, acl.WRITE)
        return self._start(principal, {
            "name": file["name"], "parentType": None, "parentId": None,
            "fileId": file["_id"]}, size, file.get("mimeType"), reference, assetstore_id,
            target=("file", file))

    def _start(self, principal: Principal, fields: dict[str, Any], size: Any,
               mime_type: str | None, reference: str | None,
               assetstore_id: Any, extra_parameters: Any = None, *,
               target: tuple[str, Document] | None = None) -> UploadStep:
        if principal.is_anonymous:
            raise acl.denial(principal, acl.WRITE, "upload", None)
        streaming = size is None
        if streaming:
            size = 0  # the adapter sees the size grow with each append
        elif isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValidationError("Upload size must be a non-negative integer.", field="size")
        elif size >= MAX_SIZE:
            raise ValidationError("Upload size is too large.", field="size")
        if assetstore_id is not None:
            if not principal.is_site_admin:
                raise AccessDeniedError("Only admins may choose the assetstore.")
            assetstore = self.assetstores.get(assetstore_id)
            adapter = self.assetstores.adapter(assetstore["_id"])
        else:
            assetstore, adapter = self._assetstore_for(target, None if streaming else size)
        adapter.check_upload_parameters(extra_parameters)
        total = adapter.capacity().total if size else None
        if total is not None and size > total:
            # Never storable: the client's mistake (400), unlike a full disk (507).
            raise ValidationError(f"Upload size exceeds the assetstore's capacity "
                                  f"({total} bytes).", field="size")
        now = utcnow()
        upload: dict[str, Any] = {
            **fields, "created": now, "updated": now, "userId": principal.user_id,
            "assetstoreId": assetstore["_id"], "size": size, "received": 0,
            "mimeType": validate_mime_type(mime_type) or DEFAULT_MIME, "state": {},
            "streaming": streaming,
        }
        if reference is not None:
            upload["reference"] = reference
        if streaming:  # only this process can finish it: say which one it is
            upload["owner"] = processes.identity()
        # Girder's hook: a quota refuses here, before bytes; for a streaming
        # upload it may set ``maxSize``, the most bytes ``append`` then accepts.
        self.tree.saving("upload", upload)
        self.store.uploads.insert_one(upload)
        try:
            upload["state"] = adapter.begin_upload(upload)
        except BaseException:
            self.store.uploads.delete_one({"_id": upload["_id"]})
            raise
        self.store.uploads.update_one({"_id": upload["_id"]},
                                      {"$set": {"state": upload["state"]}})
        if size == 0 and not streaming:
            return UploadStep(file=self.finalize(upload))
        return UploadStep(upload=upload)

    def _assetstore_for(self, target: tuple[str, Document] | None,
                        size: int | None) -> tuple[Document, Any]:
        """Where the bytes go: what a handler of ``ASSETSTORE_EVENT`` chose (a
        quota policy's preferred or fallback assetstore), else the current one."""
        if target is not None and self.tree.events.has_handlers(ASSETSTORE_EVENT):
            event = self.tree.events.trigger(ASSETSTORE_EVENT, {
                "model": target[0], "resource": target[1], "size": size})
            if event.responses:
                chosen = event.responses[-1]
                return chosen, self.assetstores.adapter(chosen["_id"])
        return self.assetstores.current()

    # ------------------------------------------------------------ streams
    def append(self, upload: Document, stream: BinaryIO, length: int | None) -> int:
        """Streaming uploads (WebDAV PUT, FUSE writes): append at the end without
        a store round trip per call; returns the new length."""
        offset = int(upload["received"])
        limit = upload.get("maxSize")  # set by a model.upload.save handler (a quota)
        if limit is not None and length is not None and offset + length > limit:
            raise QuotaError(f"Upload would exceed file storage quota ({limit} bytes "
                             f"available for this file).")
        upload["size"] = offset + length if length is not None else 1 << 62
        adapter = self.assetstores.adapter(upload["assetstoreId"])
        try:
            upload["received"], upload["state"] = adapter.write_chunk(
                upload, offset, stream, length)
        finally:
            upload["size"] = upload["received"]
        if limit is not None and upload["received"] > limit:  # a stream of unknown length
            raise QuotaError(f"Upload exceeded file storage quota ({limit} bytes "
                             f"available for this file).")
        now = utcnow()
        if (now - upload["updated"]).total_seconds() >= PROGRESS_SECONDS:
            # Shows `joist check` and system/uploads what the temp bytes are.
            upload["updated"] = now
            self.store.uploads.update_one({"_id": upload["_id"]}, {"$set": {
                "received": upload["received"], "updated": now}})
        faults.point("upload.stream.after_append")
        return int(upload["received"])

    def finish(self, upload: Document) -> Document:
        """Commit a streaming upload at its current length."""
        upload["size"] = upload["received"]
        self.store.uploads.update_one({"_id": upload["_id"]}, {"$set": {
            "size": upload["size"], "received": upload["received"],
            "state": upload["state"], "updated": utcnow()}})
        faults.point("upload.stream.at_finish")
        return self.finalize(upload)

    # ------------------------------------------------------------ chunks
    def get(self, principal: Principal, upload_id: Any) -> Document:
        """The upload, for the user who started it only (Girder's rule)."""
        upload = self.store.uploads.find_one({"_id": object_id(upload_id, "upload")})
        if upload is None:
            raise NotFoundError(f"Invalid upload id ({upload_id}).", field="uploadId")
        if upload["userId"] != principal.user_id or principal.is_anonymous:
            if principal.is_anonymous:
                raise acl.denial(principal, acl.WRITE, "upload", upload["_id"])
            raise AccessDeniedError("You did not initiate this upload.")
        return upload

    def write(self, principal: Principal, upload_id: Any, offset: Any, stream: BinaryIO,
              length: int | None = None, *, extra_parameters: Any = None) -> UploadStep:
        """Append one chunk at exactly ``offset``; the last byte finalizes.
        ``extra_parameters``: as for ``begin``."""
        upload = self.get(principal, upload_id)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValidationError("Offset must be a non-negative integer.", field="offset")
        if length is not None:
            if offset + length > upload["size"]:
                raise ValidationError("Received too many bytes.", field="offset")
            minimum = int(self.settings.get("core.upload_minimum_chunk_size"))
            if offset + length < upload["size"] and length < minimum:
                raise ValidationError("Chunk is smaller than the minimum size.",
                                      field="chunk")
        adapter = self.assetstores.adapter(upload["assetstoreId"])
        adapter.check_upload_parameters(extra_parameters)
        received, state = adapter.write_chunk(upload, offset, stream, length)
        faults.point("upload.chunk.after_write")
        upload.update(received=received, state=state, updated=utcnow())
        self.store.uploads.update_one({"_id": upload["_id"]}, {"$set": {
            "received": received, "state": state, "updated": upload["updated"]}})
        if received >= upload["size"]:
            return UploadStep(file=self.finalize(upload))
        return UploadStep(upload=upload)

    def offset(self, principal: Principal, upload_id: Any) -> int:
        upload = self.get(principal, upload_id)
        received = self.assetstores.adapter(upload["assetstoreId"]).upload_offset(upload)
        self.store.uploads.update_one({"_id": upload["_id"]},
                                      {"$set": {"received": received}})
        return received

    def complete(self, principal: Principal, upload_id: Any) -> Document:
        upload = self.get(principal, upload_id)
        if upload["received"] != upload["size"]:
            raise ConflictError("Server has only received {} bytes, but the file should be "
                                "{} bytes.".format(upload["received"], upload["size"]))
        return self.finalize(upload)

    def cancel(self, principal: Principal, upload_id: Any) -> None:
        upload = self.store.uploads.find_one({"_id": object_id(upload_id, "upload")})
        if upload is None:
            raise NotFoundError(f"Invalid upload id ({upload_id}).", field="uploadId")
        if upload["userId"] != principal.user_id and not principal.is_site_admin:
            raise AccessDeniedError("You did not initiate this upload.")
        self.discard(upload)

    def discard(self, upload: Document) -> None:
        try:
            self.assetstores.adapter(upload["assetstoreId"]).abort_upload(upload)
        finally:
            self.store.uploads.delete_one({"_id": upload["_id"]})

    def list(self, *, user_id: ObjectId | None = None, skip: int = 0,
             limit: int = 0) -> list[Document]:
        query = {} if user_id is None else {"userId": user_id}
        return self.store.uploads.find(query, sort=[("updated", 1), ("_id", 1)],
                                       skip=skip, limit=limit)

    # ------------------------------------------------------------ finish
    def finalize(self, upload: Document) -> Document:
        """Commit the bytes, then the record; on failure release the bytes.

        Safe to run again after a crash at any step: the adapter resumes an
        interrupted commit, and a file record already written (it carries the
        upload's id) is returned instead of making a second one."""
        adapter = self.assetstores.adapter(upload["assetstoreId"])
        if not upload.get("fileId"):
            done = self.store.files.find_one({"_id": upload["_id"]})
            if done is not None:
                self.store.uploads.delete_one({"_id": upload["_id"]})
                adapter.forget_upload(upload)
                self.files.handover.schedule(upload["assetstoreId"], done)
                return done
        if self.tree.events.has_handlers(FINALIZE_EVENT):
            try:  # Girder's hook: a quota checks again (uploads may run side by side)
                self.tree.events.trigger(FINALIZE_EVENT, upload)
            except BaseException:
                self.discard(upload)
                raise
        blob = adapter.finalize_upload(upload)
        faults.point("upload.finalize.after_refcount")
        try:
            if upload.get("fileId"):
                file = self._replace(upload, blob)
            else:
                file = self._create(upload, blob)
        except ContainerGoneError:
            self.discard(upload)  # the record held the reference, and released it
            raise
        except BaseException:
            adapter.delete(blob)
            self.discard(upload)
            raise
        faults.point("upload.finalize.after_record")
        self.store.uploads.delete_one({"_id": upload["_id"]})
        adapter.forget_upload(upload)
        # a large upload's bytes are hashed and deduplicated in the background
        self.files.handover.schedule(upload["assetstoreId"], blob)
        self._processed(upload, file)
        return file

    def _processed(self, upload: Document, file: Document) -> None:
        """Girder's ``data.process``: every gateway's upload (REST, WebDAV PUT,
        FUSE write) finalizes here, so each fires it exactly once, after the
        record is committed. A handler's failure is logged: the upload stands."""
        if not self.tree.events.has_handlers("data.process"):
            return
        info: dict[str, Any] = {
            "file": file, "upload": upload,
            "assetstore": self.store.assetstores.find_one({"_id": upload["assetstoreId"]}),
            "currentUser": self.store.users.find_one({"_id": upload.get("userId")}),
        }
        if upload.get("reference"):
            info["reference"] = upload["reference"]
        try:
            self.tree.events.trigger("data.process", info)
        except Exception:
            log.exception("a data.process handler failed for file %s", file.get("_id"))

    def _create(self, upload: Document, blob: dict[str, Any]) -> Document:
        policy = upload.get("onCollision", "rename")
        if policy == "replace":
            return self._create_or_replace(upload, blob)
        if upload["parentType"] == "folder":
            item = self._new_item(upload, rename=policy == "rename")
        else:
            item = self.store.get("item", upload["parentId"])
        return self._record(upload, blob, item)

    def _create_or_replace(self, upload: Document, blob: dict[str, Any]) -> Document:
        """Last writer wins: replace the bytes of the same-named file, or make
        it. Concurrent writers of one new name race on the item's unique name
        and the loser replaces the winner's file; a file deleted meanwhile is
        created again. Bounded: each retry means another writer committed."""
        name = upload["name"]
        for attempt in range(_REPLACE_ATTEMPTS):
            if upload["parentType"] == "folder":
                folder = self.store.get("folder", upload["parentId"])
                target = self._same_name_file(folder["_id"], name,
                                              settled=attempt == _REPLACE_ATTEMPTS - 1)
            else:
                item = self.store.get("item", upload["parentId"])
                target = self.store.files.find_one(
                    {"itemId": item["_id"], "name": name}, sort=[("_id", 1)])
            if target is _IN_FLIGHT:
                time.sleep(0.005 * (attempt + 1))  # its creator is recording the file
                continue
            if target is not None:
                try:
                    return self._replace({**upload, "fileId": target["_id"]}, blob)
                except NotFoundError:
                    continue  # deleted meanwhile: create it afresh
            if upload["parentType"] == "item":
                return self._record(upload, blob, item)
            try:
                # One commit on SQLite: no one sees the item without its file.
                with self.store.engine.grouped():
                    return self._record(upload, blob, self._new_item(upload, rename=False))
            except ExistsError:
                if self.store.items.find_one({"folderId": folder["_id"], "name": name},
                                             projection=["_id"]) is None:
                    raise  # a folder holds the name
        raise ConflictError(f"Too many concurrent writers of {name!r}; try again.")

    def _new_item(self, upload: Document, *, rename: bool) -> Document:
        creator = self.store.users.find_one({"_id": upload["userId"]})
        principal = Principal.from_user(creator) if creator else Principal.anonymous()
        folder = self.store.get("folder", upload["parentId"])
        return self.items.create(principal, folder, upload["name"], rename=rename,
                                 creator_id=upload["userId"], check_access=False)

    def _record(self, upload: Document, blob: dict[str, Any], item: Document) -> Document:
        # The upload's id names the record, so a finalize run again after a
        # crash finds it instead of making a second file.
        extra: dict[str, Any] = {"_id": upload["_id"]}
        if upload.get("reference"):
            extra["reference"] = upload["reference"]
        return self.files.record(item, name=upload["name"], size=int(blob["size"]),
                                 mime_type=upload.get("mimeType"),
                                 assetstore_id=upload["assetstoreId"], blob=blob,
                                 creator_id=upload["userId"], extra=extra)

    def _same_name_file(self, folder_id: ObjectId, name: str, *,
                        settled: bool = True) -> Any:
        """The file of a one-file item ``name`` whose file is also ``name``;
        None without such an item; ``_IN_FLIGHT`` for an empty item that a
        concurrent writer may be about to fill (unless ``settled``)."""
        item = self.store.items.find_one({"folderId": folder_id, "name": name})
        if item is None:
            return None
        files = self.store.files.find({"itemId": item["_id"]}, limit=2)
        if len(files) == 1 and files[0]["name"] == name:
            return files[0]
        if not files and not settled:
            return _IN_FLIGHT
        raise ExistsError(f"{name!r} already exists here and is not a single file.",
                          field="name")

    def _replace(self, upload: Document, blob: dict[str, Any]) -> Document:
        """Point the file record at the new bytes and release the old ones.

        The swap is one atomic update that returns the record as it was, so
        with concurrent replacers each releases exactly the bytes it displaced:
        reading the record first and releasing what was read would release one
        blob twice and leak the other (data loss for every file sharing it)."""
        new_size = int(blob["size"])
        changes: dict[str, Any] = {
            "size": new_size, "assetstoreId": upload["assetstoreId"],
            "creatorId": upload["userId"], "created": utcnow(),
            **{k: v for k, v in blob.items() if k in BLOB_FIELDS},
        }
        unset = {k: "" for k in BLOB_FIELDS if k not in blob}
        update: dict[str, Any] = {"$set": changes}
        if unset:
            update["$unset"] = unset
        if self.tree.events.has_handlers("model.file.save"):  # skip the read otherwise
            current = self.store.files.find_one({"_id": upload["fileId"]})
            if current is not None:
                self.tree.saving("file", {**current, **changes})
        old = self.store.files.find_one_and_update({"_id": upload["fileId"]}, update,
                                                   return_document="before")
        if old is None:
            raise NotFoundError("The file was deleted meanwhile.", field="fileId")
        faults.point("upload.replace.after_update")
        item = self.store.items.find_one({"_id": old["itemId"]})
        if item is not None:
            self.tree.sizes.add_size(item, new_size - int(old.get("size") or 0))
            self.store.items.update_one({"_id": item["_id"]},
                                        {"$set": {"updated": utcnow()}})
        self.files.release(old)
        log.debug("replaced contents of file %s", old["_id"])
        file = {**{k: v for k, v in old.items() if k not in unset}, **changes}
        self.tree.saved("file", file)
        return file
