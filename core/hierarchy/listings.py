"""Whole listings of folders, as nodes, kept for the next identical request.

File managers list the same folder several times in a row (a WebDAV client
asks Depth 0 then Depth 1, re-lists after every change it makes, walks back
up), and a listing costs a query per page and two decoded documents per entry.
A listing is kept per reading principal and path, stamped with the path
cache's generation read before it was derived (``PathCache.generation``). It
serves only while that generation stands still, i.e. while no process
committed a change to the tree's or the auth documents (an ACL, a group, a
setting such as the item layout) and nothing was dropped here, and for at
most the path cache's lifetime (``joist.hierarchy.cache_ttl``): no more stale
than a cached path. Only small listings are kept, bounded by the rows held in
all, so a folder of 100,000 items costs no memory here.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from .nodes import Node

ListingKey = tuple[Hashable, str]  # (reading principal, path)


class Listings:
    def __init__(self, ttl: Callable[[], float], max_rows: int = 20_000,
                 max_listing: int = 5_000) -> None:
        self._ttl = ttl
        self._max_rows = max_rows
        self.max_listing = max_listing
        self._data: OrderedDict[ListingKey, tuple[int, float, tuple[Node, ...]]] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()  # guards _data and _rows
        self.hits = 0
        self.misses = 0

    def get(self, key: ListingKey, generation: int) -> tuple[Node, ...] | None:
        now = time.monotonic()
        with self._lock:
            held = self._data.get(key)
            if held is None or held[0] != generation or held[1] < now:
                if held is not None:
                    self._remove(key)
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return held[2]

    def put(self, key: ListingKey, generation: int, nodes: list[Node]) -> None:
        """Keep a complete listing derived at ``generation`` (read before)."""
        ttl = self._ttl()
        if ttl <= 0 or len(nodes) > self.max_listing:
            return
        with self._lock:
            if key in self._data:
                self._remove(key)
            self._data[key] = (generation, time.monotonic() + ttl, tuple(nodes))
            self._rows += len(nodes)
            while self._rows > self._max_rows and self._data:
                self._remove(next(iter(self._data)))

    def sweep(self, now: float | None = None) -> int:
        """Drop expired listings (for ``core.memory.Reclaimer``); how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            expired = [key for key, (_, expiry, _) in self._data.items() if expiry < now]
            for key in expired:
                self._remove(key)
        return len(expired)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._rows = 0

    @property
    def rows(self) -> int:
        return self._rows

    def _remove(self, key: ListingKey) -> None:
        self._rows -= len(self._data.pop(key)[2])


__all__ = ["ListingKey", "Listings"]
