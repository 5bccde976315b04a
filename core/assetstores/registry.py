"""Assetstore documents and the adapters built from them.

An assetstore document (Girder's fields: ``name``, ``type`` 0 = filesystem,
1 = GridFS, 2 = S3, ``current``...) lives in the metadata store, so every
process builds the same adapters. New uploads go to the ``current`` one.
"""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..clock import utcnow
from ..db.engine import Collection, Document, DuplicateKeyError, Engine, SortSpec
from ..errors import ConflictError, ExistsError, NotFoundError, StorageError, ValidationError
from ..store import object_id
from ..validation import validate_name
from .base import AssetstoreAdapter

FILESYSTEM, GRIDFS, S3 = 0, 1, 2
TYPE_NAMES = {FILESYSTEM: "filesystem", GRIDFS: "gridfs", S3: "s3"}
_S3_LOCATION = ("bucket", "prefix", "service")  # where the objects of its files are
_TYPE_FIELDS = {  # what an edit may change, by type
    FILESYSTEM: ("root", "perms"),
    S3: ("bucket", "prefix", "service", "region", "accessKeyId", "secret", "inferCredentials",
         "readOnly", "serverSideEncryption", "allowS3AcceleratedTransfer"),
}

Factory = Callable[[Document, Engine], AssetstoreAdapter]


def _filesystem(doc: Document, engine: Engine, reserve_bytes: int,
                defer_hash_bytes: int) -> AssetstoreAdapter:
    from .filesystem import BLOB_REFS_SPEC, FilesystemAssetstore
    return FilesystemAssetstore(doc["root"], refs=engine.collection(BLOB_REFS_SPEC),
                                assetstore_id=str(doc["_id"]),
                                perms=int(doc.get("perms") or 0o600),
                                reserve_bytes=reserve_bytes,
                                defer_hash_bytes=defer_hash_bytes)


def _s3(doc: Document, engine: Engine) -> AssetstoreAdapter:
    from .s3 import S3Assetstore  # boto3 is the optional `s3` extra
    return S3Assetstore.from_document(doc, engine)


class AssetstoreRegistry:
    def __init__(self, collection: Collection, engine: Engine, *,
                 reserve_bytes: int = 0, defer_hash_bytes: int = 0,
                 files: Collection | None = None,
                 generation: Callable[[], int] | None = None) -> None:
        self._coll = collection
        self._engine = engine
        self._files = files  # the file records: whether an assetstore holds any
        self._reserve = reserve_bytes
        self._defer_hash = defer_hash_bytes  # see FilesystemAssetstore
        self._factories: dict[int, Factory] = {
            FILESYSTEM: lambda doc, eng: _filesystem(doc, eng, self._reserve, self._defer_hash),
            S3: _s3}
        self._adapters: dict[Any, tuple[Document, AssetstoreAdapter]] = {}
        self._lock = threading.Lock()  # guards _adapters and _seen
        # The store's counter of assetstore changes (``Store.generations``):
        # an edit made by another process drops the adapters built before it.
        self._generation = generation
        self._seen: int | None = None

    def register_type(self, type_id: int, factory: Factory) -> None:
        """Add an assetstore kind (S3, GridFS) without this module knowing it."""
        self._factories[type_id] = factory

    # ------------------------------------------------------------ adapters
    def adapter(self, assetstore_id: Any) -> AssetstoreAdapter:
        oid = object_id(assetstore_id, "assetstore")
        generation = self._generation() if self._generation is not None else None
        with self._lock:
            if generation != self._seen:
                self._adapters.clear()
                self._seen = generation
            hit = self._adapters.get(oid)
        if hit is not None:
            return hit[1]
        doc = self.get(oid)
        factory = self._factories.get(int(doc.get("type", FILESYSTEM)))
        if factory is None:
            raise StorageError(f"Assetstore type {doc.get('type')} is not available here.")
        adapter = factory(doc, self._engine)
        with self._lock:
            if generation != self._seen:
                return adapter  # built from a document older than a change: not kept
            self._adapters.setdefault(oid, (doc, adapter))
            return self._adapters[oid][1]

    def for_file(self, file: Document) -> AssetstoreAdapter:
        if not file.get("assetstoreId"):
            raise StorageError("This file has no stored bytes (link file).")
        return self.adapter(file["assetstoreId"])

    def current(self) -> tuple[Document, AssetstoreAdapter]:
        doc = self._coll.find_one({"current": True})
        if doc is None:
            raise StorageError("No current assetstore is set.")
        return doc, self.adapter(doc["_id"])

    def forget(self, assetstore_id: Any) -> None:
        with self._lock:
            self._adapters.pop(object_id(assetstore_id), None)

    # ------------------------------------------------------------ documents
    def get(self, assetstore_id: Any) -> Document:
        doc = self._coll.find_one({"_id": object_id(assetstore_id, "assetstore")})
        if doc is None:
            raise NotFoundError(f"Invalid assetstore id ({assetstore_id}).")
        return doc

    def list(self, *, skip: int = 0, limit: int = 0,
             sort: SortSpec | None = None) -> list[Document]:
        return self._coll.find({}, sort=sort or [("name", 1), ("_id", 1)], skip=skip,
                               limit=limit)

    def create(self, doc: dict[str, Any]) -> Document:
        """Insert a validated document; the first assetstore becomes current."""
        doc["name"] = validate_name(doc.get("name"), "Assetstore name")
        doc.setdefault("created", utcnow())
        make_current = bool(doc.pop("current", False)) or \
            self._coll.find_one({}, projection=["_id"]) is None
        doc["current"] = False
        try:
            self._coll.insert_one(doc)
        except DuplicateKeyError:
            raise ExistsError("An assetstore with that name already exists.",
                              field="name") from None
        if make_current:
            self.set_current(doc["_id"])
            doc["current"] = True
        return doc

    def create_filesystem(self, name: str, root: str | os.PathLike[str], *,
                          perms: int = 0o600, current: bool = False) -> Document:
        return self.create({"type": FILESYSTEM, "name": name, "root": _usable_root(root),
                            "perms": _checked_perms(perms), "current": current})

    def create_s3(self, name: str, fields: Mapping[str, Any], *,
                  current: bool = False) -> Document:
        """An S3 assetstore (Girder's fields), once its bucket answered."""
        from .s3_config import s3_fields
        doc = {"type": S3, "name": name, **s3_fields(fields)}
        self.probe(doc)
        return self.create({**doc, "current": current})

    def probe(self, doc: Mapping[str, Any]) -> None:
        """``ValidationError`` unless the backend ``doc`` describes answers."""
        factory = self._factories.get(int(doc.get("type", FILESYSTEM)))
        if factory is None:
            raise ValidationError(f"Assetstore type {doc.get('type')} is not available here.",
                                  field="type")
        adapter = factory({**doc, "_id": doc.get("_id") or "probe"}, self._engine)
        probe = getattr(adapter, "probe", None)
        if probe is not None:
            try:
                probe()
            except StorageError as exc:
                raise ValidationError(exc.message) from exc

    def set_current(self, assetstore_id: Any) -> None:
        oid = object_id(assetstore_id, "assetstore")
        self.get(oid)
        # Set the new one first: a crash in between leaves two current, never none.
        self._coll.update_one({"_id": oid}, {"$set": {"current": True}})
        self._coll.update_many({"_id": {"$ne": oid}, "current": True},
                               {"$set": {"current": False}})

    def update(self, assetstore_id: Any, changes: dict[str, Any]) -> Document:
        """Girder's edit: ``name``, ``current`` and the fields of the assetstore's
        own type (those of another type are ignored, as Girder ignores them).
        Only the fields given change. ``current`` False on the current
        assetstore is refused: new uploads need one (make another current)."""
        doc = self.get(assetstore_id)
        kind = int(doc.get("type", FILESYSTEM))
        changes = {k: v for k, v in changes.items()
                   if k in ("name", "current") or k in _TYPE_FIELDS.get(kind, ())}
        if "name" in changes:
            changes["name"] = validate_name(changes["name"], "Assetstore name")
        if changes.get("current") is False and doc.get("current"):
            raise ValidationError("This is the current assetstore; make another one current "
                                  "instead.", field="current")
        if kind == FILESYSTEM:
            if "root" in changes:
                root = str(Path(os.path.expanduser(str(changes["root"]))).resolve())
                if root != doc.get("root") and self.holds_files(doc["_id"]):
                    raise ConflictError("The assetstore holds files: its root cannot change "
                                        "(move the files to another assetstore first).",
                                        field="root")
                changes["root"] = _usable_root(root)
            if "perms" in changes:
                changes["perms"] = _checked_perms(changes["perms"])
        if kind == S3 and changes.keys() & set(_TYPE_FIELDS[S3]):
            from .s3_config import s3_fields
            if not changes.get("secret"):
                changes.pop("secret", None)  # never shown, so usually not sent back
            merged = {**doc, **changes}
            changes.update(s3_fields(merged))
            moved = [k for k in _S3_LOCATION if changes.get(k) != doc.get(k)]
            if moved and self.holds_files(doc["_id"]):
                # The records name objects by key in this bucket: pointing the
                # assetstore elsewhere would orphan every one of them.
                raise ConflictError(f"The assetstore holds files: its {', '.join(moved)} "
                                    "cannot change (move the files to another assetstore "
                                    "first).", field=moved[0])
            self.probe({**merged, **changes})
        if changes.pop("current", None):
            self.set_current(doc["_id"])
        if changes:
            try:
                self._coll.update_one({"_id": doc["_id"]}, {"$set": changes})
            except DuplicateKeyError:
                raise ExistsError("An assetstore with that name already exists.",
                                  field="name") from None
        self.forget(doc["_id"])
        return self.get(doc["_id"])

    def holds_files(self, assetstore_id: Any) -> bool:
        return self._files is not None and self._files.find_one(
            {"assetstoreId": assetstore_id}, projection=["_id"]) is not None

    def files_in(self, assetstore_id: Any, *, skip: int = 0, limit: int = 50,
                 sort: SortSpec | None = None) -> builtins.list[Document]:
        """The file records whose bytes live in an assetstore, oldest first
        unless ``sort`` says otherwise (by an index on assetstoreId and it)."""
        if self._files is None:
            return []
        return self._files.find({"assetstoreId": assetstore_id}, sort=sort or [("_id", 1)],
                                skip=skip, limit=limit)

    def delete(self, assetstore_id: Any) -> None:
        doc = self.get(assetstore_id)
        if self.holds_files(doc["_id"]):
            raise ValidationError("You may not delete an assetstore that contains files.")
        self._coll.delete_one({"_id": doc["_id"]})
        self.forget(doc["_id"])
        if doc.get("current"):
            other = self._coll.find_one({}, sort=[("created", 1)])
            if other is not None:
                self.set_current(other["_id"])


def _usable_root(root: str | os.PathLike[str]) -> str:
    """A filesystem assetstore's root: absolute, made if missing, writable."""
    path = Path(os.path.expanduser(str(root))).resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationError(f"Could not make directory {path}: {exc.strerror}",
                              field="root") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValidationError(f"Unable to write into directory {path}.", field="root")
    return str(path)


def _checked_perms(perms: int) -> int:
    if isinstance(perms, bool) or not isinstance(perms, int) or not 0 <= perms <= 0o777:
        raise ValidationError("File permissions must be an octal mode such as 600.",
                              field="perms")
    if perms & 0o600 != 0o600:
        raise ValidationError("File permissions must keep owner read and write.",
                              field="perms")
    return perms
