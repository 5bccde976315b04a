"""Change counters kept in the store, for caches shared by nobody.

Every process (each ``joist serve`` worker, a mount, the CLI) caches things
derived from the store: who a credential speaks for (tokens, WebDAV logins,
SFTP sessions, mounts), stored settings, the path cache's documents, the
assetstore adapters. A write to a watched collection bumps a counter in one
store document (``specs.GENERATION``) in the same transaction as the write
(``Engine.grouped``: one SQLite transaction; on MongoDB the write then the
bump, in that order), so a cache entry remembers the counters it was derived
at and is re-derived once they moved, whichever process made the change.

Reading the counters is one indexed read; on SQLite it is skipped while
``Engine.change_counter`` (``PRAGMA data_version`` on a connection that never
writes) stands still, i.e. while nobody committed anything at all.

Counters:

``auth``
    users, groups, tokens, API keys, SSH keys and stored settings: who a
    principal is and what the policies are.
``tree``
    collections, folders, items and files: the path cache's documents.
``assetstore``
    assetstore documents: the registry's adapters.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from ..db.engine import Collection, Document, Engine, Filter, SortSpec, Update, UpdateResult

AUTH, TREE, ASSETSTORE = "auth", "tree", "assetstore"
NAMES = (AUTH, TREE, ASSETSTORE)
_DOC_ID = "generations"

Counters = dict[str, int]


class Generations:
    """The store's change counters, read cheaply."""

    def __init__(self, engine: Engine, collection: Collection) -> None:
        self._engine = engine
        self._coll = collection
        self._lock = threading.Lock()  # guards _seen
        # (engine change counter, counters read after it): valid while the
        # change counter has not moved.
        self._seen: tuple[int, Counters] | None = None

    def snapshot(self) -> Counters:
        """Every counter as committed now (the engine's change counter is read
        before the document: a commit landing in between moves it, so the
        next call reads again)."""
        token = self._engine.change_counter()
        if token is not None:
            seen = self._seen  # one tuple, replaced whole: read without the lock
            if seen is not None and seen[0] == token:
                return seen[1]
        doc = self._coll.find_one({"_id": _DOC_ID}) or {}
        counters = {name: int(doc.get(name, 0)) for name in NAMES}
        if token is not None:
            with self._lock:
                self._seen = (token, counters)
        return counters

    def value(self, name: str) -> int:
        return self.snapshot()[name]

    def bump(self, name: str) -> None:
        # Without upsert, an $inc by _id is one UPDATE statement on SQLite
        # (no read-modify-write); the document is made once, on the first bump.
        if not self._coll.update_one({"_id": _DOC_ID}, {"$inc": {name: 1}}).matched:
            self._coll.update_one({"_id": _DOC_ID}, {"$inc": {name: 1}}, upsert=True)

    def counter(self, name: str) -> Counter:
        return Counter(self, name)


class Counter:
    """One named counter: ``value`` only grows (a rolled-back group may leave a
    value its own thread saw and nobody else will; equality with a value read
    later then errs towards one more re-derivation, never fewer)."""

    def __init__(self, generations: Generations, name: str) -> None:
        self._generations = generations
        self.name = name

    @property
    def value(self) -> int:
        return self._generations.snapshot()[self.name]

    def bump(self) -> None:
        self._generations.bump(self.name)


class WatchedCollection(Collection):
    """``inner`` with every write bumping ``counter`` in the same transaction,
    except updates that only touch ``quiet`` fields (a user's ``size``, which
    every upload changes, says nothing about who the user is)."""

    def __init__(self, inner: Collection, engine: Engine, counter: Counter,
                 quiet: frozenset[str] = frozenset()) -> None:
        self._inner = inner
        self._engine = engine
        self._counter = counter
        self._quiet = quiet
        self.spec = inner.spec

    def __getattr__(self, name: str) -> Any:  # engine extras (tests, check)
        if name.startswith("__") or name in ("_inner", "_engine", "_counter", "_quiet"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def _write(self, call: Any, update: Update | None = None) -> Any:
        if update is not None and self._only_quiet(update):
            return call()
        with self._engine.grouped():
            result = call()
            self._counter.bump()
        return result

    def _only_quiet(self, update: Update) -> bool:
        if not self._quiet:
            return False
        for operator, fields in update.items():
            if not operator.startswith("$") or not isinstance(fields, dict):
                return False  # a replacement document
            if any(field not in self._quiet for field in fields):
                return False
        return True

    def insert_one(self, doc: Document) -> Any:
        return self._write(lambda: self._inner.insert_one(doc))

    def insert_many(self, docs: Iterable[Document]) -> list[Any]:
        docs = list(docs)
        return self._write(lambda: self._inner.insert_many(docs))  # type: ignore[no-any-return]

    def find(self, filter: Filter | None = None, *, sort: SortSpec | None = None,
             skip: int = 0, limit: int = 0,
             projection: Sequence[str] | None = None) -> list[Document]:
        return self._inner.find(filter, sort=sort, skip=skip, limit=limit,
                                projection=projection)

    def find_one(self, filter: Filter | None = None, *, sort: SortSpec | None = None,
                 projection: Sequence[str] | None = None) -> Document | None:
        return self._inner.find_one(filter, sort=sort, projection=projection)

    def count(self, filter: Filter | None = None) -> int:
        return self._inner.count(filter)

    def distinct(self, key: str, filter: Filter | None = None) -> list[Any]:
        return self._inner.distinct(key, filter)

    def update_one(self, filter: Filter, update: Update, *,
                   upsert: bool = False) -> UpdateResult:
        return self._write(  # type: ignore[no-any-return]
            lambda: self._inner.update_one(filter, update, upsert=upsert), update)

    def update_many(self, filter: Filter, update: Update) -> UpdateResult:
        return self._write(  # type: ignore[no-any-return]
            lambda: self._inner.update_many(filter, update), update)

    def find_one_and_update(self, filter: Filter, update: Update, *,
                            sort: SortSpec | None = None, upsert: bool = False,
                            return_document: Literal["before", "after"] = "after",
                            projection: Sequence[str] | None = None
                            ) -> Document | None:
        return self._write(lambda: self._inner.find_one_and_update(  # type: ignore[no-any-return]
            filter, update, sort=sort, upsert=upsert, return_document=return_document,
            projection=projection), update)

    def replace_one(self, filter: Filter, doc: Document, *,
                    upsert: bool = False) -> UpdateResult:
        return self._write(  # type: ignore[no-any-return]
            lambda: self._inner.replace_one(filter, doc, upsert=upsert))

    def delete_one(self, filter: Filter) -> int:
        return self._write(lambda: self._inner.delete_one(filter))  # type: ignore[no-any-return]

    def delete_many(self, filter: Filter) -> int:
        return self._write(lambda: self._inner.delete_many(filter))  # type: ignore[no-any-return]


__all__ = ["ASSETSTORE", "AUTH", "NAMES", "TREE", "Counter", "Generations",
           "WatchedCollection"]
