"""The scale-out metadata store: MongoDB (pymongo), ideally a replica set.

Several Joist processes on several machines share one database; everything
that must be shared (tokens, uploads, locks, throttles...) is a document, so
nothing here is kept in process memory but the connection pool.

The query subset is MongoDB's own, so filters, sorts and updates go to the
server as they are, after the same validation the SQLite engine applies
(``query.py``): both engines refuse the same things. Where the server's
behaviour differs from the port's, the engine makes up for it
(``mongo_collection.py``): upserts seed documents as ``query.upsert_seed``
does, ``insert_many`` and ``update_many`` are all or nothing, and a duplicate
key names its index.

Datetimes come back timezone-aware (UTC); BSON keeps milliseconds. Writes are
retryable (``retryWrites``): a primary stepping down mid-write is retried once
by the driver; a failure beyond that is a ``StorageError`` and changes nothing
the caller can see, so the operation can be retried.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import pymongo
from bson.codec_options import CodecOptions
from pymongo import errors as mongo_errors

from ..errors import StorageError, ValidationError
from .engine import CollectionSpec, Engine, Index
from .mongo_collection import MongoCollection, mongo_errors_mapped
from .query import split_path

__all__ = ["DEFAULT_DATABASE", "MongoCollection", "MongoEngine", "database_name",
           "mongo_errors_mapped"]

DEFAULT_DATABASE = "joist"
_SCHEMES = ("mongodb", "mongodb+srv")
_FORBIDDEN_IN_DB_NAME = set('/\\. "$*<>:|?')
# Every BSON type a stored value can have, except null: the partial filter
# that makes a unique index ignore missing *and null* keys (the port's sparse).
_NON_NULL_TYPES = ["double", "string", "object", "array", "binData", "objectId", "bool",
                   "date", "int", "long", "decimal"]


def database_name(uri: str) -> str:
    """The database a MongoDB URI names in its path (``joist`` when none)."""
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise ValidationError(f"Invalid MongoDB URI: {exc}", field="uri") from None
    if parts.scheme not in _SCHEMES or not parts.netloc:
        raise ValidationError("A MongoDB URI looks like mongodb://host[:port]/database.",
                              field="uri")
    name = unquote(parts.path.lstrip("/")) or DEFAULT_DATABASE
    if len(name) > 63 or _FORBIDDEN_IN_DB_NAME & set(name) or "\x00" in name:
        raise ValidationError(f"Invalid MongoDB database name {name!r}.", field="uri")
    return name


class MongoEngine(Engine):
    """One MongoDB database, shared by every thread of this process and by
    other processes. ``client`` replaces the connection ``uri`` would open
    (tests pass a mongomock client); the database name still comes from
    ``uri``'s path."""

    def __init__(self, uri: str, *, client: Any = None,
                 server_selection_timeout_s: float = 30.0) -> None:
        self.database_name = database_name(uri)
        self._owns_client = client is None
        if client is None:
            with mongo_errors_mapped("MongoDB connection"):
                client = pymongo.MongoClient(
                    uri, tz_aware=True, retryWrites=True, retryReads=True,
                    serverSelectionTimeoutMS=int(server_selection_timeout_s * 1000),
                    appname="joist")
        self.client = client
        # tz_aware alone (no tzinfo): what mongomock also understands.
        self.database = client.get_database(self.database_name,
                                            codec_options=CodecOptions(tz_aware=True))
        self._lock = threading.Lock()  # guards _collections and _closed
        self._collections: dict[str, MongoCollection] = {}
        self._closed = False

    def collection(self, spec: CollectionSpec) -> MongoCollection:
        if self._closed:
            raise StorageError("the metadata store is closed")
        with self._lock:
            known = self._collections.get(spec.name)
        if known is not None and known.spec == spec:
            return known
        if not spec.name or "$" in spec.name or "\x00" in spec.name \
                or spec.name.startswith("system."):
            raise ValidationError(f"invalid collection name {spec.name!r}")
        for path in spec.array_fields:
            split_path(path)
        coll = MongoCollection(self.database.get_collection(spec.name), spec)
        with mongo_errors_mapped():
            self._ensure_indexes(coll)
        with self._lock:
            self._collections[spec.name] = coll
        return coll

    # -- indexes ------------------------------------------------------------------

    def _wanted_indexes(self, spec: CollectionSpec) -> dict[str, tuple[list[Any], dict[str, Any]]]:
        wanted: dict[str, tuple[list[Any], dict[str, Any]]] = {}
        ttl, ttl_done = spec.ttl_field, False
        for ix in spec.indexes:
            keys = _index_keys(ix, spec)
            if keys == [("_id", 1)]:
                continue  # MongoDB's own
            opts: dict[str, Any] = {}
            if ix.unique:
                opts["unique"] = True
                if ix.sparse:  # null counts as absent: a partial index, not sparse
                    opts["partialFilterExpression"] = {keys[0][0]: {"$type": _NON_NULL_TYPES}}
            elif ix.sparse:
                opts["sparse"] = True  # only a size optimisation: keep it planner-friendly
            if ttl and not ttl_done and [k for k, _ in keys] == [ttl] and not ix.unique:
                opts["expireAfterSeconds"] = 0  # TTL needs a single-field index
                ttl_done = True
            wanted[ix.index_name] = (keys, opts)
        if ttl and not ttl_done:
            split_path(ttl)
            wanted["ttl"] = ([(ttl, 1)], {"expireAfterSeconds": 0})
        return wanted

    def _ensure_indexes(self, coll: MongoCollection) -> None:
        raw = coll.raw
        existing = raw.index_information()
        for name, (keys, opts) in self._wanted_indexes(coll.spec).items():
            have = existing.get(name)
            if have is not None and _same_index(have, keys, opts):
                continue  # (re-creating would re-check existing data for nothing)
            if have is not None:
                raw.drop_index(name)  # the declaration changed
            try:
                raw.create_index(keys, name=name, **opts)
            except mongo_errors.OperationFailure as exc:
                if exc.code not in (85, 86):  # IndexOptions/KeySpecsConflict
                    raise
                # An index on the same keys under another name or options.
                for other, info in raw.index_information().items():
                    if other != "_id_" and _key_list(info) == keys:
                        raw.drop_index(other)
                raw.create_index(keys, name=name, **opts)

    # -- the rest of the port ------------------------------------------------------

    def drop_collection(self, name: str) -> None:
        with self._lock:
            self._collections.pop(name, None)
        with mongo_errors_mapped():
            self.database.drop_collection(name)

    def purge_expired(self) -> int:
        # The server's TTL monitor does this every minute; this is for callers
        # that need it now. ``$lt`` a datetime matches datetimes only.
        with self._lock:
            colls = [c for c in self._collections.values() if c.spec.ttl_field]
        now = datetime.now(UTC)
        return sum(c.delete_many({c.spec.ttl_field: {"$lt": now}}) for c in colls
                   if c.spec.ttl_field)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._collections.clear()
        if self._owns_client:
            self.client.close()


def _index_keys(ix: Index, spec: CollectionSpec) -> list[Any]:
    if not ix.keys:
        raise ValidationError(f"index {ix.index_name} has no keys")
    keys = []
    for path, direction in ix.keys:
        segs = split_path(path)
        if direction not in (1, -1):
            raise ValidationError(f"index {ix.index_name}: direction must be 1 or -1")
        if ix.unique and any(".".join(segs[:k]) in spec.array_fields
                             for k in range(1, len(segs) + 1)):
            # As the SQLite engine: uniqueness over array elements is not in the port.
            raise ValidationError(f"unique index {ix.index_name} on an array field "
                                  "is not supported")
        keys.append((path, direction))
    return keys


def _key_list(info: dict[str, Any]) -> list[Any]:
    return [(k, int(d)) for k, d in info.get("key", [])]


def _same_index(info: dict[str, Any], keys: list[Any], opts: dict[str, Any]) -> bool:
    return (_key_list(info) == keys
            and bool(info.get("unique")) == bool(opts.get("unique"))
            and bool(info.get("sparse")) == bool(opts.get("sparse"))
            and info.get("partialFilterExpression") == opts.get("partialFilterExpression")
            and info.get("expireAfterSeconds") == opts.get("expireAfterSeconds"))
