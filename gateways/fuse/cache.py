"""The mount's memory of nodes it has just seen, and of the file versions the
kernel may hold in its page cache.

``NodeCache`` answers ``getattr``, lookups and opens for a path it listed or
looked up, and ``Stamped`` keeps whole listings, each entry stamped with the
view's cache generation read before it was derived (``HierarchyView.
cache_generation``): an entry serves only while that generation stands still,
i.e. while no process committed a change to the store's tree or auth
documents since, and for at most its lifetime. Only ever for this mount's one
principal (a change of rights empties them). ``Versions`` remembers, per path,
the content version last opened, which decides whether the kernel may keep
its cached pages on the next open.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Generic, TypeVar

from joist.core.hierarchy import Node

V = TypeVar("V")


class BoundedMap(Generic[V]):
    """A thread-safe LRU mapping with an optional time to live."""

    def __init__(self, max_entries: int, ttl: float | None = None) -> None:
        self._max = max_entries
        self._ttl = ttl
        self._data: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()  # guards _data

    def get(self, key: str) -> V | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return None
            if self._ttl is not None and hit[0] < time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return hit[1]

    def put(self, key: str, value: V) -> None:
        if self._ttl is not None and self._ttl <= 0:
            return
        expiry = time.monotonic() + (self._ttl or 0.0)
        with self._lock:
            self._data[key] = (expiry, value)
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def drop_tree(self, path: str) -> None:
        """``path`` and everything below it."""
        prefix = path.rstrip("/") + "/"
        with self._lock:
            for key in [k for k in self._data if k == path or k.startswith(prefix)]:
                del self._data[key]

    def sweep(self, now: float | None = None) -> int:
        """Drop expired entries (see ``core.memory.Reclaimer``); the number dropped."""
        if self._ttl is None:
            return 0
        now = time.monotonic() if now is None else now
        with self._lock:
            expired = [k for k, (expiry, _) in self._data.items() if expiry < now]
            for key in expired:
                del self._data[key]
        return len(expired)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


Stamp = tuple[Any, int]
"""(the view a value was derived through, its cache generation before)."""


class Stamped(BoundedMap[tuple[Stamp, V]]):
    """Values stamped with the view and generation they were derived at: a
    value serves only the same view (not one of other rights) at the same
    generation."""

    def fresh(self, key: str, stamp: Stamp) -> V | None:
        hit = self.get(key)
        if hit is None or hit[0][0] is not stamp[0] or hit[0][1] != stamp[1]:
            return None
        return hit[1]

    def keep(self, key: str, value: V, stamp: Stamp) -> None:
        self.put(key, (stamp, value))


class NodeCache(Stamped[Node]):
    # As many as core's path cache: nodes live for a lifetime now, not a second.
    def __init__(self, ttl: float, max_entries: int = 20_000) -> None:
        super().__init__(max_entries, ttl)


class Listings(Stamped[list[Any]]):
    """Whole listings, bounded by the rows they hold in all (about 1 KiB
    each with their attributes) as well as by their number."""

    def __init__(self, ttl: float, max_rows: int = 20_000, max_listings: int = 256) -> None:
        super().__init__(max_listings, ttl)
        self._max_rows = max_rows

    def put(self, key: str, value: tuple[Stamp, list[Any]]) -> None:
        if len(value[1]) > self._max_rows:
            self.drop(key)
            return
        super().put(key, value)
        with self._lock:
            rows = sum(len(hit[1][1]) for hit in self._data.values())
            while rows > self._max_rows and len(self._data) > 1:
                rows -= len(self._data.popitem(last=False)[1][1][1])


class Versions(BoundedMap[Any]):
    def __init__(self, max_entries: int = 200_000) -> None:
        super().__init__(max_entries, None)


def parent_of(path: str) -> str:
    head = path.rstrip("/").rsplit("/", 1)[0]
    return head or "/"


__all__ = ["BoundedMap", "Listings", "NodeCache", "Stamp", "Stamped", "Versions", "parent_of"]
