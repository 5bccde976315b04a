"""Open files and directories of a mount, by the number the kernel holds.

A read handle keeps the blob's descriptor (filesystem assetstore: libfuse
``pread``s it directly) or reads through the chunk cache. A write handle
stages bytes in an unlinked temporary file and hands them to a core
``Writer`` when the file is flushed (closed), so a file appears at its path
whole or not at all.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from joist.core.hierarchy import HierarchyView, Node, Reader, Writer

from .chunkcache import CachedSource

COPY_BLOCK = 1 << 20


class ReaderPool:
    """Blob readers shared by every handle open on one content version, and
    kept open for a while after the last one closes.

    Opening a file then costs a path lookup (with its access check) but no
    ``open``/``fstat``/``close`` of the blob: for many small files that is a
    third of the work. Contents are immutable per version (content-addressed),
    so sharing is safe; ``read_at`` and the descriptor are positional. A
    reader is closed only when no handle holds it, so no read in flight ever
    sees its descriptor go.
    """

    def __init__(self, idle_max: int = 4096, idle_seconds: float = 60.0) -> None:
        self._live: dict[Any, tuple[Reader, int]] = {}
        self._idle: OrderedDict[Any, tuple[float, Reader]] = OrderedDict()
        self._paths: dict[str, Any] = {}   # path -> key of the reader last opened there
        self._idle_max = idle_max
        self._idle_seconds = idle_seconds  # bounds how long a deleted blob stays open
        self._lock = threading.Lock()  # guards _idle and _paths

    def known(self, path: str) -> bool:
        """Whether a reader was opened for ``path`` and may still be here."""
        with self._lock:
            key = self._paths.get(path)
            return key is not None and (key in self._live or key in self._idle)

    def take(self, key: Any) -> Reader | None:
        with self._lock:
            live = self._live.get(key)
            if live is not None:
                self._live[key] = (live[0], live[1] + 1)
                return live[0]
            idle = self._idle.pop(key, None)
            if idle is not None:
                self._live[key] = (idle[1], 1)
                return idle[1]
            return None

    def add(self, key: Any, reader: Reader, path: str) -> Reader:
        """Hold a newly opened reader (or the one another thread added first)."""
        with self._lock:
            self._paths[path] = key
            live = self._live.get(key)
            if live is None:
                self._live[key] = (reader, 1)
                return reader
            self._live[key] = (live[0], live[1] + 1)
        reader.close()
        return live[0]

    def give_back(self, key: Any) -> None:
        closing: list[Reader] = []
        now = time.monotonic()
        with self._lock:
            reader, refs = self._live[key]
            if refs > 1:
                self._live[key] = (reader, refs - 1)
                return
            del self._live[key]
            self._idle[key] = (now, reader)
            while self._idle and (len(self._idle) > self._idle_max or
                                  next(iter(self._idle.values()))[0] < now - self._idle_seconds):
                closing.append(self._idle.popitem(last=False)[1][1])
            if len(self._paths) > 4 * self._idle_max:
                self._paths.clear()  # only a hint: rebuilt as files are opened
        for old in closing:
            old.close()

    def clear(self) -> None:
        with self._lock:
            idle, self._idle = [r for _, r in self._idle.values()], OrderedDict()
            live, self._live = [r for r, _ in self._live.values()], {}
        for reader in idle + live:
            with contextlib.suppress(Exception):
                reader.close()


class ReadHandle:
    def __init__(self, path: str, node: Node, reader: Reader, *, fd: int | None,
                 source: CachedSource | None, cached: bool,
                 pool: ReaderPool | None = None, key: Any = None) -> None:
        self.path = path
        self.reader = reader
        self.node = node
        self.fd = fd
        self.source = source
        self.cached = cached          # reads go through the kernel page cache
        self.stale = False            # a newer version was opened: see operations.open
        self._pool = pool
        self._key = key

    @property
    def size(self) -> int:
        return self.reader.size

    def read(self, offset: int, size: int) -> bytes:
        if self.fd is not None:
            size = max(0, min(size, self.reader.size - offset))
            return os.pread(self.fd, size, offset) if size else b""
        if self.source is not None:
            return self.source.read(offset, size)
        return self.reader.read_at(offset, size)

    def close(self) -> None:
        if self.source is not None:
            self.source.close()  # no read-ahead uses the reader past here
        if self._pool is not None:
            self._pool.give_back(self._key)
        else:
            self.reader.close()


class StatsHandle:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, offset: int, size: int) -> bytes:
        return self.data[offset:offset + size]

    def close(self) -> None:
        pass


class WriteHandle:
    """Bytes for ``path`` staged until ``commit``; each commit is one atomic
    replacement of the file's contents."""

    def __init__(self, view: HierarchyView, path: str, staging_dir: Path | None, *,
                 writer: Writer | None = None, dirty: bool = True) -> None:
        self.view = view
        self.path = path
        self.writer = writer
        self.dirty = dirty            # a new empty file or O_TRUNC counts as a change
        self.cached = True            # writes go through the kernel page cache
        self.size = 0
        self.node: Node | None = None
        self.mtime_ns = time.time_ns()
        self.lock = threading.Lock()  # guards the staged bytes and size (writes, flush, release)
        if staging_dir is not None:
            staging_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Unlinked at once: a crash leaves no staged bytes behind.
        self._file = tempfile.TemporaryFile(dir=staging_dir, buffering=0)  # noqa: SIM115

    def load(self, reader: Reader) -> None:
        """Start from the current contents (an open without O_TRUNC)."""
        fd, pos = self._file.fileno(), 0
        # pwrite is done with each block before the next: a reused buffer is safe.
        for data in reader.iter_range(0, reader.size, COPY_BLOCK, reuse=True):
            os.pwrite(fd, data, pos)
            pos += len(data)
        self.size = pos
        self.dirty = False

    def write(self, data: bytes, offset: int) -> int:
        with self.lock:
            written = os.pwrite(self._file.fileno(), data, offset)
            self.size = max(self.size, offset + written)
            self.dirty = True
            self.mtime_ns = time.time_ns()
            return written

    def read(self, offset: int, size: int) -> bytes:
        with self.lock:
            size = max(0, min(size, self.size - offset))
            return os.pread(self._file.fileno(), size, offset) if size else b""

    def truncate(self, length: int) -> None:
        with self.lock:
            os.ftruncate(self._file.fileno(), length)
            self.size = length
            self.dirty = True

    def commit(self) -> Node | None:
        """Hand the staged bytes to core (first to the writer taken at create
        time, which checked the permission early). None when nothing changed."""
        with self.lock:
            if not self.dirty:
                return None
            writer, self.writer = self.writer, None
            if writer is None:
                writer = self.view.open_write(self.path)
            try:
                self._file.seek(0)
                writer.write_from(self._file, self.size)
                self.node = writer.commit()
            except BaseException:
                writer.abort()
                raise
            self.dirty = False
            return self.node

    def close(self) -> None:
        with self.lock:
            if self.writer is not None:
                with contextlib.suppress(Exception):
                    self.writer.abort()
                self.writer = None
            self._file.close()


DirRow = tuple[str, dict[str, Any], int]   # (name, stat attrs, cookie of the next entry)


class DirHandle:
    """A listing served in kernel-sized pages. Entries keep their position
    (the cookie the kernel hands back), so reading on is a step of the same
    iterator; only a seek backwards lists again."""

    WINDOW = 128  # a kernel readdir buffer (one page) holds some 25-100 entries

    def __init__(self, path: str, listing: Callable[[int], Iterator[DirRow]]) -> None:
        self.path = path
        self._listing = listing        # listing(first_index) -> entries from there
        self._window: deque[DirRow] = deque()
        self._iter: Iterator[DirRow] | None = None
        self._next = 0                 # index of the next entry the iterator yields
        self.lock = threading.Lock()  # guards _window, _iter and _next

    def page(self, offset: int) -> list[DirRow]:
        with self.lock:
            while self._window and self._window[0][2] <= offset:
                self._window.popleft()
            start = self._window[0][2] - 1 if self._window else self._next
            if start != offset:        # a seek (rewinddir): list again from there
                self._window.clear()
                self._iter = self._listing(offset)
                self._next = offset
            if self._iter is None:
                self._iter = self._listing(offset)
            while len(self._window) < self.WINDOW:
                entry = next(self._iter, None)
                if entry is None:
                    break
                self._window.append(entry)
                self._next = entry[2]
            return list(self._window)

    def close(self) -> None:
        self._iter = None
        self._window.clear()


class HandleTable:
    """fh -> handle, plus which read handles are open on each path."""

    def __init__(self) -> None:
        self._handles: dict[int, Any] = {}
        self._by_path: dict[str, set[int]] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()  # guards _handles and _by_path

    def add(self, handle: Any) -> int:
        with self._lock:
            fh = next(self._numbers)
            self._handles[fh] = handle
            path = getattr(handle, "path", None)
            if path is not None and not isinstance(handle, DirHandle):
                self._by_path.setdefault(path, set()).add(fh)
            return fh

    def get(self, fh: int) -> Any:
        with self._lock:
            return self._handles.get(fh)

    def pop(self, fh: int) -> Any:
        with self._lock:
            handle = self._handles.pop(fh, None)
            path = getattr(handle, "path", None)
            if path is not None and path in self._by_path:
                self._by_path[path].discard(fh)
                if not self._by_path[path]:
                    del self._by_path[path]
            return handle

    def on_path(self, path: str) -> list[Any]:
        with self._lock:
            return [self._handles[fh] for fh in self._by_path.get(path, ())]

    def repath(self, old: str, new: str) -> None:
        """A rename through the mount: open write handles follow the file."""
        with self._lock:
            for fh in self._by_path.pop(old, set()):
                handle = self._handles[fh]
                handle.path = new
                self._by_path.setdefault(new, set()).add(fh)

    def count(self) -> int:
        with self._lock:
            return len(self._handles)

    def all(self) -> list[Any]:
        with self._lock:
            return list(self._handles.values())


__all__ = ["DirHandle", "DirRow", "HandleTable", "ReadHandle", "ReaderPool", "StatsHandle",
           "WriteHandle"]
