"""The metadata-store port: a small MongoDB-shaped document API.

Core talks to the store only through ``Engine`` and ``Collection``. Two engines
implement it: SQLite (embedded default, ``core/db/sqlite.py``) and MongoDB
(``core/db/mongo.py``). Both must give the same results for the query subset
documented in ``core/db/query.py``; ``tests/contract/`` checks that.

Values stored in documents are JSON-like: ``dict``, ``list``, ``str``, ``int``,
``float``, ``bool``, ``None``, plus ``bson.ObjectId`` and timezone-aware UTC
``datetime`` (kept to millisecond precision, as MongoDB does). Datetimes come
back timezone-aware (UTC).

Each call is atomic on its own (one document for ``*_one`` calls). There are no
multi-call transactions a service may rely on: services order their writes so
that a crash between two calls leaves a state that ``joist check`` can detect
and repair. ``Engine.grouped`` lets an engine that can do better (SQLite: one
transaction, one commit) run a few calls as one unit; a speed-up, not a rule.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from bson import ObjectId

from ..errors import ExistsError

Document = dict[str, Any]
Filter = Mapping[str, Any]
Update = Mapping[str, Any]
SortSpec = Sequence[tuple[str, int]]
ASCENDING = 1
DESCENDING = -1

__all__ = [
    "ASCENDING", "DESCENDING", "Collection", "CollectionSpec", "Document",
    "DuplicateKeyError", "Engine", "Filter", "Index", "ObjectId", "SortSpec",
    "Update", "UpdateResult",
]


class DuplicateKeyError(ExistsError):
    """A write would break a unique index. ``field`` names the index."""


@dataclass(frozen=True)
class Index:
    """A declared index: ``keys`` are ``(dotted_field, 1|-1)`` pairs.

    ``unique`` makes the engine refuse a second document with the same key.
    ``sparse`` limits the index (and its uniqueness) to documents that have the
    first key field and where it is not null.
    """

    keys: tuple[tuple[str, int], ...]
    unique: bool = False
    sparse: bool = False
    name: str = ""

    @property
    def index_name(self) -> str:
        return self.name or "_".join(f"{k}_{d}" for k, d in self.keys).replace(".", "_")


@dataclass(frozen=True)
class CollectionSpec:
    """Everything an engine must know about one collection before using it.

    ``array_fields`` lists the dotted fields that hold arrays (``groups``,
    ``access.users``...). MongoDB needs no such list; the SQLite engine uses it
    to apply MongoDB's "match any element" rule with ``json_each``. A query on
    a path through an undeclared array field is refused there.

    ``ttl_field`` names a datetime field after which a document may be removed
    by the engine at any time (as MongoDB's TTL indexes do). Readers must still
    check the field themselves.
    """

    name: str
    indexes: tuple[Index, ...] = ()
    array_fields: frozenset[str] = field(default_factory=frozenset)
    ttl_field: str | None = None


@dataclass(frozen=True)
class UpdateResult:
    matched: int
    modified: int
    upserted_id: Any = None


class Collection(abc.ABC):
    """One named set of documents, each with a unique ``_id``."""

    spec: CollectionSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @abc.abstractmethod
    def insert_one(self, doc: Document) -> Any:
        """Insert ``doc`` (its ``_id`` is set to a new ObjectId when missing, in
        place). Returns the ``_id``. Raises ``DuplicateKeyError``."""

    @abc.abstractmethod
    def insert_many(self, docs: Iterable[Document]) -> list[Any]:
        """Insert in order, all or nothing. Raises ``DuplicateKeyError``."""

    @abc.abstractmethod
    def find(self, filter: Filter | None = None, *, sort: SortSpec | None = None,
             skip: int = 0, limit: int = 0,
             projection: Sequence[str] | None = None) -> list[Document]:
        """Matching documents, sorted, then ``skip``ped and ``limit``ed
        (``limit=0`` means no limit). ``projection`` lists the fields to keep
        (``_id`` is always kept); dotted names keep sub-fields."""

    @abc.abstractmethod
    def find_one(self, filter: Filter | None = None, *, sort: SortSpec | None = None,
                 projection: Sequence[str] | None = None) -> Document | None:
        """The first match in ``sort`` order (any match without it), or None."""

    @abc.abstractmethod
    def count(self, filter: Filter | None = None) -> int:
        """Number of matching documents."""

    @abc.abstractmethod
    def distinct(self, key: str, filter: Filter | None = None) -> list[Any]:
        """Distinct values of ``key`` among matches; array values are unwound."""

    @abc.abstractmethod
    def update_one(self, filter: Filter, update: Update, *,
                   upsert: bool = False) -> UpdateResult:
        """Apply ``update`` to the first match (or insert when ``upsert``)."""

    @abc.abstractmethod
    def update_many(self, filter: Filter, update: Update) -> UpdateResult:
        """Apply ``update`` to every match."""

    @abc.abstractmethod
    def find_one_and_update(self, filter: Filter, update: Update, *,
                            sort: SortSpec | None = None, upsert: bool = False,
                            return_document: Literal["before", "after"] = "after",
                            projection: Sequence[str] | None = None
                            ) -> Document | None:
        """Atomically update the first match in ``sort`` order and return it as
        it was ``before`` or is ``after``; None when nothing matched and no
        upsert happened. This is the primitive for claims and counters."""

    @abc.abstractmethod
    def replace_one(self, filter: Filter, doc: Document, *,
                    upsert: bool = False) -> UpdateResult:
        """Replace the first match with ``doc`` (keeping its ``_id``)."""

    @abc.abstractmethod
    def delete_one(self, filter: Filter) -> int:
        """Delete the first match; returns 0 or 1."""

    @abc.abstractmethod
    def delete_many(self, filter: Filter) -> int:
        """Delete every match; returns how many."""


class Engine(abc.ABC):
    """A connection to one metadata store, shared by all threads of a process.

    Engines are safe to use from many threads at once, and several processes
    may open the same store.
    """

    @abc.abstractmethod
    def collection(self, spec: CollectionSpec) -> Collection:
        """The collection described by ``spec``, its indexes created if needed.
        Calling it again with the same spec returns an equivalent object."""

    @abc.abstractmethod
    def drop_collection(self, name: str) -> None:
        """Delete a collection and all its documents (tests and migrations)."""

    @abc.abstractmethod
    def purge_expired(self) -> int:
        """Remove documents past their ``ttl_field``; returns how many. MongoDB
        does this by itself; the SQLite engine also does it now and then."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The engine must not be used afterwards."""

    def change_counter(self) -> int | None:
        """A number that moves whenever a write was committed to the store by
        anyone (any thread, any process) since it was last read, so that a
        cache of store-derived values may skip re-reading a change counter
        document while it stands still. None: the engine cannot tell cheaply
        (callers then read the document every time)."""
        return None

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """Run this thread's calls inside the block as one unit where the
        engine can (SQLite: one transaction; an exception leaving the block
        undoes them all). The default runs them one by one, as MongoDB must
        without a replica set, so callers order their writes as if there were
        no group."""
        yield

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
