"""A change counter for the collections that decide who a principal is.

Caches of "who is this credential" (WebDAV logins, tokens, SFTP sessions,
mounts) must see a revocation at once in the process that made it. Every write
to a watched collection bumps ``AuthGeneration`` after the write, so a cache
entry remembers the generation it was checked at and re-checks when it moved.
Writes made by other processes are not seen here: caches bound those with a
short re-check interval instead (``core.auth.grants.RECHECK_SECONDS``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from ..db.engine import Collection, Document, Filter, SortSpec, Update, UpdateResult


class AuthGeneration:
    """A per-process counter; ``value`` only grows."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)  # next() is atomic under the GIL
        self.value = 0

    def bump(self) -> None:
        self.value = next(self._counter)


class WatchedCollection(Collection):
    """``inner`` with every write followed by ``generation.bump()``, except
    updates that only touch ``quiet`` fields (a user's ``size``, which every
    upload changes, says nothing about who the user is)."""

    def __init__(self, inner: Collection, generation: AuthGeneration,
                 quiet: frozenset[str] = frozenset()) -> None:
        self._inner = inner
        self._generation = generation
        self._quiet = quiet
        self.spec = inner.spec

    def __getattr__(self, name: str) -> Any:  # engine extras (tests, check)
        if name.startswith("__") or name in ("_inner", "_generation", "_quiet"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def _bumped(self, result: Any, update: Update | None = None) -> Any:
        if update is None or not self._only_quiet(update):
            self._generation.bump()
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
        return self._bumped(self._inner.insert_one(doc))

    def insert_many(self, docs: Iterable[Document]) -> list[Any]:
        return self._bumped(self._inner.insert_many(docs))  # type: ignore[no-any-return]

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
        return self._bumped(  # type: ignore[no-any-return]
            self._inner.update_one(filter, update, upsert=upsert), update)

    def update_many(self, filter: Filter, update: Update) -> UpdateResult:
        return self._bumped(self._inner.update_many(filter, update), update)  # type: ignore[no-any-return]

    def find_one_and_update(self, filter: Filter, update: Update, *,
                            sort: SortSpec | None = None, upsert: bool = False,
                            return_document: Literal["before", "after"] = "after",
                            projection: Sequence[str] | None = None
                            ) -> Document | None:
        return self._bumped(self._inner.find_one_and_update(  # type: ignore[no-any-return]
            filter, update, sort=sort, upsert=upsert, return_document=return_document,
            projection=projection), update)

    def replace_one(self, filter: Filter, doc: Document, *,
                    upsert: bool = False) -> UpdateResult:
        return self._bumped(self._inner.replace_one(filter, doc, upsert=upsert))  # type: ignore[no-any-return]

    def delete_one(self, filter: Filter) -> int:
        return self._bumped(self._inner.delete_one(filter))  # type: ignore[no-any-return]

    def delete_many(self, filter: Filter) -> int:
        return self._bumped(self._inner.delete_many(filter))  # type: ignore[no-any-return]
