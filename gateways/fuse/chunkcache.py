"""A bounded on-disk cache of fixed-size chunks of file contents.

For assetstores whose blobs have no local descriptor (S3, GridFS), every read
would otherwise be a round trip to the backend. Chunks are keyed by content
(the sha512, else the file's etag: id, size and time), so a replaced file
never reads a chunk of its old bytes and identical files share chunks. The
store is ``diskcache`` (as Girder's mount uses): SQLite-indexed files, safe
across threads and processes, evicting the least recently used chunks beyond
``size_limit``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

CHUNK_SIZE = 1 << 20  # one kernel read request of the mount
_STRIPES = 64


class RangeReader(Protocol):
    """What the cache reads from: ``hierarchy.Reader`` or any ``BlobReader``."""

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, size: int) -> bytes: ...


class ChunkCache:
    def __init__(self, directory: Path, size_limit: int, *,
                 chunk_size: int = CHUNK_SIZE) -> None:
        import diskcache  # only mounts that need the cache pay for the import

        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.chunk_size = int(chunk_size)
        self.size_limit = int(size_limit)
        self._cache = diskcache.Cache(str(directory), size_limit=self.size_limit,
                                      eviction_policy="least-recently-used")
        # One fetch per chunk at a time: concurrent readers of a cold chunk wait
        # for the first instead of all going to the backend.
        self._locks = [threading.Lock() for _ in range(_STRIPES)]
        self._count_lock = threading.Lock()  # guards hits and misses
        self.hits = 0
        self.misses = 0
        self.bytes_fetched = 0

    def read(self, content_key: str, source: RangeReader, offset: int, size: int) -> bytes:
        """``size`` bytes of ``source`` at ``offset`` (short at the end)."""
        end = min(offset + size, source.size)
        if offset < 0 or offset >= end:
            return b""
        step = self.chunk_size
        parts: list[Any] = []
        for index in range(offset // step, (end - 1) // step + 1):
            chunk = memoryview(self._chunk(content_key, source, index))
            start = index * step
            parts.append(chunk[max(offset - start, 0):min(end - start, len(chunk))])
        return parts[0].tobytes() if len(parts) == 1 else b"".join(parts)

    def _chunk(self, content_key: str, source: RangeReader, index: int) -> bytes:
        key = f"{self.chunk_size}:{content_key}:{index}"
        data = self._cache.get(key)
        if data is not None:
            self._count(hit=True)
            return bytes(data)
        with self._locks[hash(key) % _STRIPES]:
            data = self._cache.get(key)
            if data is not None:
                self._count(hit=True)
                return bytes(data)
            start = index * self.chunk_size
            data = source.read_at(start, self.chunk_size)
            self._count(hit=False, fetched=len(data))
            if len(data) == min(self.chunk_size, source.size - start):
                self._cache.set(key, data)  # never a short chunk: it would stay short
            return data

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
        self._cache.close()


class CachedSource:
    """One open file read through the chunk cache."""

    def __init__(self, cache: ChunkCache, content_key: str, source: RangeReader) -> None:
        self.cache = cache
        self.content_key = content_key
        self.source = source

    def read(self, offset: int, size: int) -> bytes:
        return self.cache.read(self.content_key, self.source, offset, size)


__all__ = ["CHUNK_SIZE", "CachedSource", "ChunkCache", "RangeReader"]
