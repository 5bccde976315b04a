"""A bounded on-disk cache of fixed-size chunks of file contents.

For assetstores whose blobs have no local descriptor (S3, GridFS), every read
would otherwise be a round trip to the backend. Chunks are keyed by content
(the sha512, else the file's etag: id, size and time), so a replaced file
never reads a chunk of its old bytes and identical files share chunks. The
store is ``diskcache`` (as Girder's mount uses): SQLite-indexed files, safe
across threads and processes, evicting the least recently used chunks beyond
``size_limit``.

Warm reads: a chunk's file is kept open (a bounded set of descriptors) and a
read that falls in one chunk is answered with that descriptor and offset, so
libfuse ``pread``s or splices the bytes itself, as for a local blob: no SQLite
query, no file open, no copy through Python per read. A chunk's bytes never
change under its key (content-addressed, and diskcache replaces a value by
writing a new file), so an open descriptor stays right even after diskcache
evicts its file. A descriptor handed to libfuse is used after the operation
returns, by the same worker thread, before that thread takes its next
request: it is leased to the thread until then, and closed only when no
thread holds it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

CHUNK_SIZE = 4 << 20  # four kernel read requests of the mount; 256 chunks a GiB
_STRIPES = 64
_OPEN_MAX = 1024  # open chunk descriptors (their files' disk may outlive eviction)


class RangeReader(Protocol):
    """What the cache reads from: ``hierarchy.Reader`` or any ``BlobReader``."""

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, size: int) -> bytes: ...


class _OpenChunk:
    __slots__ = ("fd", "leases", "length", "retired")

    def __init__(self, fd: int, length: int) -> None:
        self.fd = fd
        self.length = length
        self.leases = 0       # threads (or reads) using fd now
        self.retired = False  # out of the open set: closed at the last lease


class ChunkCache:
    def __init__(self, directory: Path, size_limit: int, *,
                 chunk_size: int = CHUNK_SIZE) -> None:
        import diskcache  # only mounts that need the cache pay for the import

        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.chunk_size = int(chunk_size)
        self.size_limit = int(size_limit)
        # disk_min_file_size=0: every chunk is a file, so every chunk can be
        # answered with a descriptor.
        self._cache = diskcache.Cache(str(directory), size_limit=self.size_limit,
                                      eviction_policy="least-recently-used",
                                      disk_min_file_size=0)
        # One fetch per chunk at a time: concurrent readers of a cold chunk wait
        # for the first instead of all going to the backend.
        self._locks = [threading.Lock() for _ in range(_STRIPES)]
        self._count_lock = threading.Lock()  # guards hits and misses
        self.hits = 0
        self.misses = 0
        self.bytes_fetched = 0
        # At most half the cache's bound pinned by open descriptors, and a
        # quarter of the process's descriptors.
        files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self._open_max = max(2, min(_OPEN_MAX, self.size_limit // self.chunk_size // 2,
                                    files // 4))
        self._open: OrderedDict[str, _OpenChunk] = OrderedDict()
        self._open_lock = threading.Lock()  # guards _open and every _OpenChunk
        self._held = threading.local()      # .chunk: the lease of this thread's last reply
        self._closed = False

    # ------------------------------------------------------------ reads
    def read(self, content_key: str, source: RangeReader, offset: int, size: int) -> bytes:
        """``size`` bytes of ``source`` at ``offset`` (short at the end)."""
        end = min(offset + size, source.size)
        if offset < 0 or offset >= end:
            return b""
        step = self.chunk_size
        parts: list[bytes] = []
        for index in range(offset // step, (end - 1) // step + 1):
            start = index * step
            lo, hi = max(offset - start, 0), min(end - start, step)
            got = self._acquire(content_key, source, index)
            if isinstance(got, bytes):
                parts.append(got[lo:hi])
                continue
            try:
                parts.append(os.pread(got.fd, max(0, min(hi, got.length) - lo), lo))
            finally:
                self._release(got)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def locate(self, content_key: str, source: RangeReader, offset: int, size: int
               ) -> tuple[int, int, int] | None:
        """(descriptor, position, length) of the range when it lies in one
        cached chunk file: the descriptor stays open until this thread's next
        ``locate`` (or ``release_thread``). None: use ``read``."""
        end = min(offset + size, source.size)
        step = self.chunk_size
        if offset < 0 or offset >= end or offset // step != (end - 1) // step:
            return None
        index = offset // step
        got = self._acquire(content_key, source, index)
        if isinstance(got, bytes):
            return None
        position = offset - index * step
        length = max(0, min(end - index * step, got.length) - position)
        self._stash(got)
        return got.fd, position, length

    def release_thread(self) -> None:
        """This thread is done with the descriptor of its last ``locate``."""
        self._stash(None)

    def prefetch(self, content_key: str, source: RangeReader, index: int) -> None:
        """Have chunk ``index`` on disk (for read-ahead): no descriptor kept."""
        key = self._key(content_key, index)
        with self._open_lock:
            if key in self._open:
                return
        if key in self._cache:
            return
        got = self._acquire(content_key, source, index)
        if not isinstance(got, bytes):
            self._release(got)

    def has(self, content_key: str, index: int) -> bool:
        key = self._key(content_key, index)
        with self._open_lock:
            if key in self._open:
                return True
        return key in self._cache

    # ------------------------------------------------------------ internals
    def _key(self, content_key: str, index: int) -> str:
        return f"{self.chunk_size}:{content_key}:{index}"

    def _acquire(self, content_key: str, source: RangeReader, index: int
                 ) -> _OpenChunk | bytes:
        """The chunk's open file, leased to the caller; bytes when it could
        not be stored (a blob shorter than its record)."""
        key = self._key(content_key, index)
        chunk = self._lease_open(key)
        if chunk is not None:
            self._count(hit=True)
            return chunk
        with self._locks[hash(key) % _STRIPES]:
            chunk = self._open_stored(key)
            if chunk is not None:
                self._count(hit=True)
                return chunk
            start = index * self.chunk_size
            data = source.read_at(start, self.chunk_size)
            self._count(hit=False, fetched=len(data))
            if not data or len(data) != min(self.chunk_size, source.size - start):
                return bytes(data)  # never a short chunk: it would stay short
            self._cache.set(key, bytes(data))
            chunk = self._open_stored(key)
            return chunk if chunk is not None else bytes(data)

    def _lease_open(self, key: str) -> _OpenChunk | None:
        with self._open_lock:
            chunk = self._open.get(key)
            if chunk is not None:
                self._open.move_to_end(key)
                chunk.leases += 1
            return chunk

    def _open_stored(self, key: str) -> _OpenChunk | None:
        """Open the stored chunk's file and add it to the open set, leased."""
        chunk = self._lease_open(key)  # another thread may have opened it
        if chunk is not None:
            return chunk
        handle = self._cache.get(key, read=True)
        if handle is None:
            return None
        try:
            fd = os.dup(handle.fileno())
        except (OSError, AttributeError, ValueError):
            return None  # held in SQLite (an older cache's small chunk): no file
        finally:
            handle.close()
        chunk = _OpenChunk(fd, os.fstat(fd).st_size)
        chunk.leases = 1
        closing: list[int] = []
        with self._open_lock:
            other = self._open.get(key)
            if other is not None:  # raced: use the first, drop ours
                other.leases += 1
                closing.append(fd)
                chunk = other
            else:
                self._open[key] = chunk
                while len(self._open) > self._open_max:
                    _, old = self._open.popitem(last=False)
                    old.retired = True
                    if old.leases == 0:
                        closing.append(old.fd)
        for old_fd in closing:
            os.close(old_fd)
        return chunk

    def _release(self, chunk: _OpenChunk) -> None:
        with self._open_lock:
            chunk.leases -= 1
            close = chunk.retired and chunk.leases == 0
        if close:
            os.close(chunk.fd)

    def _stash(self, chunk: _OpenChunk | None) -> None:
        """Make ``chunk`` this thread's held lease, ending the previous one."""
        previous = getattr(self._held, "chunk", None)
        self._held.chunk = chunk
        if previous is not None:
            self._release(previous)

    def _count(self, *, hit: bool, fetched: int = 0) -> None:
        with self._count_lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1
                self.bytes_fetched += fetched

    def volume(self) -> int:
        """Bytes the cache holds on disk now."""
        return int(self._cache.volume())

    def close(self) -> None:
        """At unmount: no request is in flight any more."""
        with self._open_lock:
            chunks, self._open = list(self._open.values()), OrderedDict()
        for chunk in chunks:
            with contextlib.suppress(OSError):
                os.close(chunk.fd)
        self._cache.close()


class CachedSource:
    """One open file read through the chunk cache."""

    def __init__(self, cache: ChunkCache, content_key: str, source: RangeReader,
                 read_ahead: Any = None) -> None:
        self.cache = cache
        self.content_key = content_key
        self.source = source
        self.read_ahead = read_ahead  # a readahead.ReadAhead, or None

    def read(self, offset: int, size: int) -> bytes:
        if self.read_ahead is not None:
            self.read_ahead.saw(offset, size)
        return self.cache.read(self.content_key, self.source, offset, size)

    def locate(self, offset: int, size: int) -> tuple[int, int, int] | None:
        if self.read_ahead is not None:
            self.read_ahead.saw(offset, size)
        return self.cache.locate(self.content_key, self.source, offset, size)

    def close(self) -> None:
        """Cancel read-ahead; returns once none of it uses ``source``."""
        if self.read_ahead is not None:
            self.read_ahead.cancel()


__all__ = ["CHUNK_SIZE", "CachedSource", "ChunkCache", "RangeReader"]
