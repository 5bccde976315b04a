"""The metadata store: one typed handle per collection over an ``Engine``.

This layer knows documents and indexes, not rules: ACL checks, name rules and
size bookkeeping live in ``core.services``.
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from ..db.engine import Collection, CollectionSpec, Document, Engine
from ..errors import NotFoundError, ValidationError
from . import specs
from .watch import ASSETSTORE, AUTH, TREE, Counter, Generations, WatchedCollection

MODELS = ("user", "group", "collection", "folder", "item", "file")


def object_id(value: Any, model: str = "") -> ObjectId:
    """Parse an id; a malformed one is a ``ValidationError`` (Girder's 400)."""
    if isinstance(value, ObjectId):
        return value
    try:
        return ObjectId(str(value))
    except (InvalidId, TypeError):
        raise ValidationError(f"Invalid ObjectId: {value}", field="id") from None


class Store:
    """Handles on every collection of one metadata store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Change counters in the store, bumped with the writes they count, so
        # that every process's caches see a change made by any other (watch.py).
        self.generations = Generations(engine, engine.collection(specs.GENERATION))
        # Bumped by every write that may change who a credential speaks for.
        self.auth_generation: Counter = self.generations.counter(AUTH)
        tree = self.generations.counter(TREE)

        def watched(spec: CollectionSpec, *quiet: str,
                    counter: Counter | None = None) -> Collection:
            return WatchedCollection(engine.collection(spec), engine,
                                     counter or self.auth_generation, frozenset(quiet))

        self.users: Collection = watched(specs.USER, "size", "otp.lastStep")
        self.groups: Collection = watched(specs.GROUP)
        # Sizes and touch times are bookkeeping every upload changes: a cached
        # document may show them a path-cache TTL late, nothing else.
        self.collections: Collection = watched(specs.COLLECTION, "size", "updated",
                                               counter=tree)
        self.folders: Collection = watched(specs.FOLDER, "size", "updated", counter=tree)
        # A new item counts too: gateways keep whole listings (the mount) while
        # the tree's counter stands still, and an empty item shows in them.
        self.items: Collection = watched(specs.ITEM, counter=tree)
        self.files: Collection = watched(specs.FILE, counter=tree)
        self.uploads: Collection = engine.collection(specs.UPLOAD)
        self.tokens: Collection = watched(specs.TOKEN)
        self.api_keys: Collection = watched(specs.API_KEY, "lastUse")
        self.ssh_keys: Collection = watched(specs.SSH_KEY)
        self.settings: Collection = watched(specs.SETTING)  # anonymous access, policies
        self.assetstores: Collection = watched(
            specs.ASSETSTORE, counter=self.generations.counter(ASSETSTORE))
        self.throttles: Collection = engine.collection(specs.THROTTLE)
        self.locks: Collection = engine.collection(specs.LOCK)
        self.mounts: Collection = engine.collection(specs.MOUNT)
        self.folder_counts: Collection = engine.collection(specs.FOLDER_COUNT)
        self.mail_failures: Collection = engine.collection(specs.MAIL_FAILURE)
        self.notifications: Collection = engine.collection(specs.NOTIFICATION)
        self._models: dict[str, Collection] = {
            "user": self.users, "group": self.groups, "collection": self.collections,
            "folder": self.folders, "item": self.items, "file": self.files,
            "upload": self.uploads, "api_key": self.api_keys, "assetstore": self.assetstores}

    def of(self, model: str) -> Collection:
        """The collection holding documents of ``model`` (Girder's names)."""
        try:
            return self._models[model]
        except (KeyError, TypeError):
            raise ValidationError(f"Invalid model: {model}", field="type") from None

    def get(self, model: str, doc_id: Any) -> Document:
        """Load by id or raise ``NotFoundError`` (Girder: "Invalid <model> id")."""
        oid = object_id(doc_id, model)
        doc = self.of(model).find_one({"_id": oid})
        if doc is None:
            raise NotFoundError(f"Invalid {model} id ({oid}).", field="id")
        return doc

    def find_by_id(self, model: str, doc_id: Any) -> Document | None:
        return self.of(model).find_one({"_id": object_id(doc_id, model)})


__all__ = ["MODELS", "Counter", "Generations", "Store", "object_id", "specs"]
