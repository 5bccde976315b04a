"""Read-ahead for files read through the chunk cache.

A cold read through the cache waits for its chunk's fetch (an S3 or GridFS
round trip). When a file is read sequentially, the next chunks are fetched in
the background meanwhile, so the fetches overlap with the reads. Bounded: a
few worker threads for the whole mount, a bounded queue (a chunk not queued
now is queued by a later read), each fetch holding one chunk in memory until
it is on disk. A release cancels what its file queued and waits for what is
running, so no fetch uses a reader after it was given back. Chunks are keyed
by content, so a fetch of an old version never stands in for a new one.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from .chunkcache import ChunkCache, RangeReader

log = logging.getLogger("joist.fuse")

CANCEL_WAIT = 60.0  # a fetch's own timeouts (S3's, GridFS's) end it well before


class Prefetcher:
    """The mount's read-ahead workers."""

    def __init__(self, cache: ChunkCache, *, workers: int = 2, queued_max: int = 16) -> None:
        self.cache = cache
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="fuse-readahead")
        self._slots = threading.BoundedSemaphore(queued_max)  # queued + running fetches
        self.fetched = 0   # chunks fetched ahead of their first read
        self._count_lock = threading.Lock()  # guards fetched

    def submit(self, job: Any) -> Future[Any] | None:
        """``job`` queued, or None when the queue is full."""
        if not self._slots.acquire(blocking=False):
            return None
        try:
            future = self._pool.submit(job)
        except RuntimeError:  # shut down: the mount is going
            self._slots.release()
            return None
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def count_fetched(self) -> None:
        with self._count_lock:
            self.fetched += 1

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class ReadAhead:
    """The read-ahead of one open file: ``depth`` chunks past a sequential read."""

    def __init__(self, prefetcher: Prefetcher, content_key: str, source: RangeReader,
                 depth: int) -> None:
        self._prefetcher = prefetcher
        self._key = content_key
        self._source = source
        self._depth = depth
        self._last_index = -1   # chunk of the latest read
        self._until = 0         # highest chunk queued (chunk 0 is always read first)
        self._futures: set[Future[Any]] = set()
        self._cancelled = False
        # Reentrant: a future done already runs its callback (_done) at once.
        self._lock = threading.RLock()  # guards every field above but the first four

    def saw(self, offset: int, size: int) -> None:
        """A read at ``offset``: queue the chunks after it if reads go forward."""
        step = self._prefetcher.cache.chunk_size
        index = offset // step
        with self._lock:
            # The kernel's own read-ahead runs in several threads: reads of one
            # pass arrive a little out of order, in the same or the next chunk.
            forward = index in (self._last_index, self._last_index + 1)
            self._last_index = index
            if self._cancelled or not forward:
                return
            last = min(index + self._depth, (self._source.size - 1) // step)
            for ahead in range(max(index + 1, self._until + 1), last + 1):
                future = self._prefetcher.submit(lambda i=ahead: self._fetch(i))
                if future is None:
                    break
                self._until = ahead
                self._futures.add(future)
                future.add_done_callback(self._done)

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._futures.discard(future)

    def _fetch(self, index: int) -> None:
        if self._cancelled:
            return
        cache = self._prefetcher.cache
        try:
            if not cache.has(self._key, index):
                cache.prefetch(self._key, self._source, index)
                self._prefetcher.count_fetched()
        except Exception as exc:  # a read of it will fetch again and report
            log.debug("read-ahead of chunk %d failed: %s", index, exc)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            futures = list(self._futures)
        for future in futures:
            future.cancel()
        wait(futures, timeout=CANCEL_WAIT)


__all__ = ["Prefetcher", "ReadAhead"]
