"""``SQLiteEngine.change_counter``: has anyone committed since I last looked?

Caches in every process ask this before each use (``core/store/watch.py``),
several times a request, so it must cost next to nothing. ``PRAGMA
data_version`` on a connection that never writes answers it exactly (it moves
on every commit made by any other connection, in any process), but a statement
costs several microseconds. The answer is also in memory every process
already shares: in WAL mode, a commit becomes visible to readers when the
writer rewrites the WAL-index header at the start of the ``-shm`` file (SQLite's
documented file format, https://www.sqlite.org/walformat.html, "The WAL-Index
Header": two 48-byte copies, the second written first; ``iChange``, ``mxFrame``
and the salts in it change with every commit). Reading those 96 bytes through
a shared read-only mapping costs a fraction of a microsecond.

Rules kept, as SQLite's own readers keep them: the two copies must match and
the header must be initialised (``isInit``), else the answer comes from
``data_version``. The mapping stays valid because the watching connection
stays open: while any connection holds the database open, SQLite neither
deletes nor re-initialises the ``-shm`` file. Any unexpected state (no file,
too short, not WAL) falls back to ``data_version`` for good.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import sqlite3
from collections.abc import Callable

HEADER = 48  # one copy of the WAL-index header
IS_INIT = 12  # offset of isInit in a copy


class WalIndexWatch:
    """A change token for the database of ``watch`` (an open connection that
    never writes and has read once, so it holds the ``-shm`` file open)."""

    def __init__(self, db_path: str, watch: sqlite3.Connection) -> None:
        self._watch = watch  # kept: it must stay open while the mapping is used
        self._map: mmap.mmap | None = None
        with contextlib.suppress(OSError, ValueError):
            fd = os.open(db_path + "-shm", os.O_RDONLY)
            try:
                if os.fstat(fd).st_size >= 2 * HEADER:
                    self._map = mmap.mmap(fd, 2 * HEADER, mmap.MAP_SHARED, mmap.PROT_READ)
            finally:
                os.close(fd)

    def token(self, data_version: Callable[[], int]) -> int:
        """Moves on every commit since the last call (and sometimes without one,
        e.g. on a checkpoint; never the other way round)."""
        mapped = self._map
        if mapped is not None:
            try:
                first, second = mapped[:HEADER], mapped[HEADER:2 * HEADER]
            except ValueError:  # closed meanwhile (the engine is closing)
                first, second = b"", b"-"
            if first == second and first[IS_INIT]:
                # Far above any data_version value: the two kinds never collide.
                return int.from_bytes(first, "little") << 1 | 1
        return data_version() << 1

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


__all__ = ["WalIndexWatch"]
