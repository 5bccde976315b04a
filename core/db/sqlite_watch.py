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
``data_version``. Any unexpected state (no file, too short, not WAL) falls
back to ``data_version`` for good.

The descriptor behind a mapping is never closed while the ``-shm`` file is
still linked. SQLite marks "this process uses the WAL index" with a POSIX
advisory lock on the ``-shm`` file, and closing *any* descriptor of a file
drops every such lock the process holds on it (POSIX ``fcntl`` semantics;
https://www.sqlite.org/howtocorrupt.html, section 2.2). A process that then
opens the database believes it is alone, truncates and rebuilds the WAL
index under the others: they die of SIGBUS or read a stale index. So
mappings live in one table per process, shared by every engine on the same
file, and are let go only once SQLite has unlinked the file (its last
connection anywhere closed cleanly) or the process ends.
"""

from __future__ import annotations

import mmap
import os
import sqlite3
import threading
from collections.abc import Callable

HEADER = 48  # one copy of the WAL-index header
IS_INIT = 12  # offset of isInit in a copy

_Key = tuple[int, int]  # (st_dev, st_ino) of a -shm file


class _Mappings:
    """This process's read-only mappings of WAL-index headers, by file, with
    the descriptors that may not be closed yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[_Key, tuple[list[int], mmap.mmap | None]] = {}

    def get(self, path: str) -> mmap.mmap | None:
        with self._lock:
            self._sweep()
            try:
                st = os.stat(path)
            except OSError:
                return None
            held = self._held.get((st.st_dev, st.st_ino))
            if held is not None:  # no second descriptor: it could not be closed
                return held[1]
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return None
            st = os.fstat(fd)  # the file opened, should it have been replaced
            fds, mapped = self._held.setdefault((st.st_dev, st.st_ino), ([], None))
            fds.append(fd)
            if mapped is None and st.st_size >= 2 * HEADER:
                try:
                    mapped = mmap.mmap(fd, 2 * HEADER, mmap.MAP_SHARED, mmap.PROT_READ)
                except (OSError, ValueError):
                    return None
                self._held[(st.st_dev, st.st_ino)] = (fds, mapped)
            return mapped

    def sweep(self) -> None:
        with self._lock:
            self._sweep()

    def _sweep(self) -> None:
        """Let go of the files SQLite has unlinked: no process uses them now."""
        for key, (fds, mapped) in list(self._held.items()):
            try:
                gone = os.fstat(fds[0]).st_nlink == 0
            except OSError:
                gone = True
            if gone:
                del self._held[key]
                if mapped is not None:
                    mapped.close()  # and the mapping's own duplicate descriptor
                for fd in fds:
                    os.close(fd)


_MAPPINGS = _Mappings()


class WalIndexWatch:
    """A change token for the database of ``watch`` (an open connection that
    never writes and has read once, so the ``-shm`` file exists and is sized)."""

    def __init__(self, db_path: str, watch: sqlite3.Connection) -> None:
        self._watch = watch  # kept: it must stay open while the mapping is used
        self._map = _MAPPINGS.get(db_path + "-shm")

    def token(self, data_version: Callable[[], int]) -> int:
        """Moves on every commit since the last call (and sometimes without one,
        e.g. on a checkpoint; never the other way round)."""
        mapped = self._map
        if mapped is not None:
            try:
                first, second = mapped[:HEADER], mapped[HEADER:2 * HEADER]
            except ValueError:  # let go of meanwhile (the engine is closing)
                first, second = b"", b"-"
            if first == second and first[IS_INIT]:
                # Far above any data_version value: the two kinds never collide.
                return int.from_bytes(first, "little") << 1 | 1
        return data_version() << 1

    def close(self) -> None:
        """Stop using the mapping. Call after closing the watching connection:
        if it was the database's last, SQLite has unlinked the file and the
        mapping can go too."""
        self._map = None
        _MAPPINGS.sweep()


__all__ = ["WalIndexWatch"]
