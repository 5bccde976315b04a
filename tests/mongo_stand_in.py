"""mongomock as the stand-in for a MongoDB server, and the switch to a real one.

No MongoDB server can be installed on the CI machine, so the MongoDB engine
and the GridFS assetstore are tested against mongomock (an in-memory
imitation of pymongo's client) unless ``JOIST_TEST_MONGO_URI`` names a real
server, e.g. ``mongodb://127.0.0.1:27017/?replicaSet=rs0``. Tests then use a
fresh database per test and drop it afterwards.

mongomock has gaps that matter here; this module closes two of them, in test
code only, and states the others where tests meet them (one more, speed, is
helped by a pre-test in ``_iter_documents``):

* its compound calls are not atomic across threads (``find_one_and_update``
  finds, then updates by ``_id``; an update mutates the stored dict while
  another thread may be copying it): every call here holds one lock per
  client, as a server serialises writes to one document;
* pymongo's ``gridfs`` checks ``isinstance(..., pymongo.Collection)``:
  ``enable_gridfs`` applies mongomock's own patch of those checks.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from collections.abc import Iterator
from typing import Any

import mongomock
import mongomock.gridfs
from bson import ObjectId
from mongomock.database import Database as _MockDatabase
from mongomock.filtering import filter_applies

REAL_URI = os.environ.get("JOIST_TEST_MONGO_URI", "")
"""A real MongoDB server (a replica set for the full behaviour), or empty."""

_names = itertools.count()


def fresh_db_name(prefix: str = "joist_test") -> str:
    """A database name no other test of this run uses."""
    return f"{prefix}_{os.getpid()}_{next(_names)}"


def real_uri(db_name: str) -> str:
    """``REAL_URI`` with its path set to ``db_name`` (options kept)."""
    from urllib.parse import urlsplit, urlunsplit
    parts = urlsplit(REAL_URI)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db_name, parts.query, ""))


class _Listed:
    """A cursor already read to the end (under the client's lock)."""

    def __init__(self, docs: list[Any]) -> None:
        self._docs: Iterator[Any] = iter(docs)
        self.alive = True

    def __iter__(self) -> _Listed:
        return self

    def __next__(self) -> Any:
        return next(self._docs)

    next = __next__

    def close(self) -> None:
        self.alive = False


_CURSORS = ("find", "aggregate", "list_indexes")
_CALLS = ("insert_one", "insert_many", "update_one", "update_many", "replace_one",
          "delete_one", "delete_many", "find_one", "find_one_and_update",
          "find_one_and_delete", "find_one_and_replace", "count_documents",
          "bulk_write", "create_index", "create_indexes", "drop_index", "drop_indexes",
          "index_information", "drop", "estimated_document_count")


def _serialised(name: str) -> Any:
    original = getattr(mongomock.Collection, name)

    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self.database.client.lock:
            result = original(self, *args, **kwargs)
            return _Listed(list(result)) if name in _CURSORS else result

    return method


def _iter_documents(self: Any, filter: Any) -> Any:
    """mongomock's scan, with a cheap pre-test on plain top-level equalities:
    it evaluates every filter on every document in Python, so finds and
    unique-index checks grow with the square of a test's data without it.
    (Called under the client's lock, so the store's dict is not changing.)"""
    plain = [(k, v) for k, v in (filter or {}).items()
             if type(k) is str and k[:1] != "$" and "." not in k and type(v) in (str, ObjectId)]
    if not plain or self._store.is_empty:
        return mongomock.Collection._iter_documents(self, filter)
    plain.sort(key=lambda kv: type(kv[1]) is not str)  # strings compare fastest
    documents = self._store._documents
    if plain[0][0] == "_id":
        doc = documents.get(plain[0][1])
        found = [] if doc is None else [doc]
    else:
        found = []
        for doc in documents.values():
            for key, value in plain:
                have = doc.get(key)
                if have != value and type(have) is not list:
                    break
            else:
                found.append(doc)
    return (doc for doc in found if filter_applies(filter, doc))


def _distinct(self: Any, key: str, filter: Any = None, session: Any = None) -> Any:
    with self.database.client.lock:  # mongomock's own, on an unlisted cursor
        return mongomock.Collection.find(self, filter).distinct(key)


_LockedCollection = type("_LockedCollection", (mongomock.Collection,),
                         {"distinct": _distinct, "_iter_documents": _iter_documents,
                          **{name: _serialised(name) for name in _CURSORS + _CALLS}})


class _LockedDatabase(_MockDatabase):
    def get_collection(self, name: str, codec_options: Any = None, read_preference: Any = None,
                       write_concern: Any = None, read_concern: Any = None) -> Any:
        with self.client.lock:
            known = self._collection_accesses.get(name)
            if known is None:
                self._ensure_valid_collection_name(name)
                known = self._collection_accesses[name] = _LockedCollection(
                    self, name=name, read_concern=read_concern, write_concern=write_concern,
                    read_preference=read_preference or self.read_preference,
                    codec_options=codec_options or self._codec_options,
                    _db_store=self._store)
            return known

    def drop_collection(self, name_or_collection: Any, session: Any = None) -> None:
        with self.client.lock:
            super().drop_collection(name_or_collection, session=session)

    def command(self, command: Any, **kwargs: Any) -> Any:
        with self.client.lock:
            return super().command(command, **kwargs)


class LockedMongoClient(mongomock.MongoClient):  # type: ignore[misc]
    """A mongomock client whose calls are serialised (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.lock = threading.RLock()
        kwargs.setdefault("tz_aware", True)
        super().__init__(*args, **kwargs)

    def get_database(self, name: str | None = None, codec_options: Any = None,
                     read_preference: Any = None, write_concern: Any = None,
                     read_concern: Any = None) -> Any:
        with self.lock:
            if name is None:
                return super().get_database(None)
            db = self._database_accesses.get(name)
            if db is None:
                db = self._database_accesses[name] = _LockedDatabase(
                    self, name, read_preference=read_preference or self.read_preference,
                    codec_options=codec_options or self._codec_options,
                    _store=self._store[name], read_concern=read_concern)
            return db


@functools.cache
def enable_gridfs() -> None:
    """Let pymongo's gridfs accept mongomock objects (mongomock's own patch,
    applied once per test process)."""
    mongomock.gridfs.enable_gridfs_integration()
