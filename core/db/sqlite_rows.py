"""``RowCache``: documents read by id, kept while nobody commits anything.

A request reads a few documents by id (the file it downloads, the item and
folder whose access list governs it), and each read is a statement: several
microseconds. The same documents come back request after request, and between
two commits to the store (by any thread or process) a row cannot change. So a
row's JSON text is kept with the engine's change counter it was read at
(``SQLiteEngine.change_counter``: the WAL-index header, moved by every commit)
and reused while the counter still says the same; the caller decodes the text
again each time, so every caller gets its own document, as from a statement.

Rules that keep it exact:

* the counter is read *before* the statement: a commit landing in between
  leaves an entry that is already stale for the next reader, never one that
  looks fresher than its text;
* a thread inside a write or a group bypasses it both ways (its reads see its
  own uncommitted changes, which may be rolled back; see ``read_token``);
* bounded by bytes (``BUDGET``): the oldest entries go first; a large
  document is not kept at all.
"""

from __future__ import annotations

import threading

BUDGET = 4 << 20  # bytes of JSON text kept, all collections together
LARGEST = 16 << 10  # a longer text is not kept (a document with big metadata)


class RowCache:
    def __init__(self, budget: int = BUDGET) -> None:
        self._budget = budget
        self._rows: dict[tuple[str, str], tuple[int, str]] = {}  # (table, id) -> (token, text)
        self._size = 0
        self._lock = threading.Lock()  # guards writes to _rows and _size; reads take none

    def get(self, table: str, key: str, token: int) -> str | None:
        """The text of ``key`` if it was read at ``token``."""
        hit = self._rows.get((table, key))
        if hit is not None and hit[0] == token:
            return hit[1]
        return None

    def put(self, table: str, key: str, token: int, text: str) -> None:
        if len(text) > LARGEST:
            return
        with self._lock:
            old = self._rows.pop((table, key), None)
            if old is not None:
                self._size -= len(old[1])
            self._rows[(table, key)] = (token, text)
            self._size += len(text)
            while self._size > self._budget:  # insertion order: the oldest first
                oldest = next(iter(self._rows))
                self._size -= len(self._rows.pop(oldest)[1])

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self._size = 0


__all__ = ["BUDGET", "LARGEST", "RowCache"]
