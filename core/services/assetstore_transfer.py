"""Moving a file's bytes to another assetstore; its id, name, item and sizes stay.

Crash-safe order, as everywhere in core: copy the bytes into the target (an
upload record exists meanwhile, so ``joist check`` tells a partial copy from
debris), switch the file record, then release the old bytes. A crash leaves
at worst bytes counted twice, never a record pointing at missing bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from ..acl import Principal
from ..assetstores.base import AssetstoreAdapter, BlobReader
from ..assetstores.registry import AssetstoreRegistry
from ..clock import utcnow
from ..db.engine import Document
from ..errors import AccessDeniedError, ConflictError, ValidationError
from .files import BLOB_FIELDS, FileService
from .tree_access import TreeAccess

log = logging.getLogger("joist.transfers")

MOVE_CHUNK = 64 << 20  # one chunk (an S3 part) per 64 MiB, as girder-client sends


class AssetstoreTransferService:
    def __init__(self, tree: TreeAccess, files: FileService,
                 assetstores: AssetstoreRegistry) -> None:
        self.tree = tree
        self.store = tree.store
        self.files = files
        self.assetstores = assetstores

    def move(self, principal: Principal, file: Document, assetstore_id: Any,
             progress: Callable[[float | None, float | None, str | None], None]
             | None = None) -> Document:
        """Put the bytes of ``file`` in the assetstore ``assetstore_id``; the
        updated record. Site admins only (Girder's rule)."""
        if not principal.is_site_admin:
            raise AccessDeniedError("Only site administrators may move files between "
                                    "assetstores.")
        target = self.assetstores.get(assetstore_id)
        if file.get("linkUrl") or not file.get("assetstoreId"):
            raise ValidationError("A link file has no bytes to move.", field="id")
        if file["assetstoreId"] == target["_id"]:
            return file
        source = self.assetstores.for_file(file)
        adapter = self.assetstores.adapter(target["_id"])
        blob = self._copy(principal, file, source, adapter, target, progress)
        try:
            moved = self._switch(file, target, blob)
        except BaseException:
            adapter.delete(blob)  # the record was not switched: the copy goes
            raise
        self.files.release(file)  # the old bytes, after the record left them
        self.files.handover.schedule(target["_id"], blob)  # a large file: hashed later
        log.info("moved file %s to assetstore %s", file["_id"], target["_id"])
        return moved

    def _copy(self, principal: Principal, file: Document, source: AssetstoreAdapter,
              adapter: AssetstoreAdapter, target: Document,
              progress: Callable[[float | None, float | None, str | None], None]
              | None = None) -> dict[str, Any]:
        size = int(file.get("size") or 0)
        now = utcnow()
        upload: dict[str, Any] = {
            "name": file["name"], "parentType": None, "parentId": None,
            "moveFileId": file["_id"], "created": now, "updated": now,
            "userId": principal.user_id, "assetstoreId": target["_id"], "size": size,
            "received": 0, "mimeType": file.get("mimeType"), "state": {},
        }
        self.store.uploads.insert_one(upload)
        try:
            upload["state"] = adapter.begin_upload(upload)
            self.store.uploads.update_one({"_id": upload["_id"]},
                                          {"$set": {"state": upload["state"]}})
            with source.open_read(file) as reader:
                for offset in range(0, size, MOVE_CHUNK):
                    length = min(MOVE_CHUNK, size - offset)
                    stream = cast(BinaryIO, _Slice(reader, offset, length))
                    upload["received"], upload["state"] = adapter.write_chunk(
                        upload, offset, stream, length)
                    if progress is not None:
                        progress(offset + length, size, file["name"])
            blob = adapter.finalize_upload(upload)
        except BaseException:
            try:
                adapter.abort_upload(upload)
            finally:
                self.store.uploads.delete_one({"_id": upload["_id"]})
            raise
        self.store.uploads.delete_one({"_id": upload["_id"]})
        adapter.forget_upload(upload)
        return blob

    def _switch(self, file: Document, target: Document, blob: dict[str, Any]) -> Document:
        """Point the record at the new bytes, if nobody replaced them meanwhile."""
        changes = {"assetstoreId": target["_id"], "updated": utcnow(),
                   **{k: v for k, v in blob.items() if k in BLOB_FIELDS}}
        unset = {k: "" for k in BLOB_FIELDS if k in file and k not in blob}
        guard = {"_id": file["_id"], "assetstoreId": file["assetstoreId"],
                 **{k: file[k] for k in BLOB_FIELDS if k in file}}
        update: dict[str, Any] = {"$set": changes}
        if unset:
            update["$unset"] = unset
        if not self.store.files.update_one(guard, update).matched:
            raise ConflictError("The file changed or was deleted while its bytes were "
                                "being moved; nothing was moved.")
        return {**{k: v for k, v in file.items() if k not in unset}, **changes}


class _Slice:
    """``length`` bytes of a blob from ``offset``, as a stream."""

    def __init__(self, reader: BlobReader, offset: int, length: int) -> None:
        self._reader, self._pos, self._end = reader, offset, offset + length

    def read(self, size: int = -1) -> bytes:
        want = self._end - self._pos if size is None or size < 0 else \
            min(size, self._end - self._pos)
        if want <= 0:
            return b""
        data = self._reader.read_at(self._pos, want)
        self._pos += len(data)
        return data
