"""Counters of one mount, shown as JSON by the read-only ``/.joist-stats`` file."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

COUNTERS = (
    "lookups", "lookup_cache_hits", "readdirs", "listed", "listing_cache_hits", "opens",
    "page_cache_kept", "reads", "bytes_read", "fd_reads", "chunk_reads", "writes",
    "bytes_written", "commits", "xattr_reads", "stale_reads", "invalidations", "error_replies",
)


class Stats:
    """Counted per thread, without a lock (every request adds to a few
    counters: a shared lock was contended by the mount's workers), and summed
    when read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _threads (the list, not the dicts)
        self._local = threading.local()
        # Per thread: (counters, requests, request nanoseconds); plain dicts,
        # copied whole when read (a copy of a dict is atomic under the GIL).
        self._threads: list[tuple[dict[str, int], dict[str, int], dict[str, int]]] = []
        self._names: dict[str, str] = {}
        self.started = time.time()
        self._extra: list[Callable[[], dict[str, Any]]] = []

    def _mine(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        try:
            return self._local.counts  # type: ignore[no-any-return]
        except AttributeError:
            counts: tuple[dict[str, int], dict[str, int], dict[str, int]] = ({}, {}, {})
            with self._lock:
                self._threads.append(counts)
            self._local.counts = counts
            return counts

    def add(self, name: str, amount: int = 1) -> None:
        counts = self._mine()[0]
        counts[name] = counts.get(name, 0) + amount

    def request(self, operation: str, nanoseconds: int, *, failed: bool = False) -> None:
        """One kernel request served, by operation (``getattr_fuse_3`` ->
        ``getattr``), the time spent in it, and whether it was answered with
        an errno (ENOENT of a lookup included)."""
        name = self._names.get(operation)
        if name is None:
            name = self._names[operation] = operation.removesuffix("_fuse_3")
        counts, requests, request_ns = self._mine()
        requests[name] = requests.get(name, 0) + 1
        request_ns[name] = request_ns.get(name, 0) + nanoseconds
        if failed:
            counts["error_replies"] = counts.get("error_replies", 0) + 1

    def _summed(self, which: int) -> Counter[str]:
        with self._lock:
            parts = [counts[which].copy() for counts in self._threads]
        total: Counter[str] = Counter()
        for part in parts:
            total.update(part)
        return total

    def get(self, name: str) -> int:
        return self._summed(0)[name]

    def source(self, probe: Callable[[], dict[str, Any]]) -> None:
        """Add values read at render time (open handles, cache hits of core)."""
        self._extra.append(probe)

    def snapshot(self) -> dict[str, Any]:
        counts, requests, request_ns = self._summed(0), self._summed(1), self._summed(2)
        out: dict[str, Any] = {name: counts[name] for name in COUNTERS}
        out["requests"] = dict(sorted(requests.items()))
        out["request_ms"] = {name: round(ns / 1e6, 3) for name, ns in sorted(request_ns.items())}
        for probe in self._extra:
            out.update(probe())
        out["uptime_seconds"] = round(time.time() - self.started, 3)
        return out

    def render(self) -> bytes:
        return (json.dumps(self.snapshot(), indent=2, sort_keys=True) + "\n").encode()


__all__ = ["COUNTERS", "Stats"]
