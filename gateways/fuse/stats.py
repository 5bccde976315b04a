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
    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the counters
        self._counts: Counter[str] = Counter()
        self._requests: Counter[str] = Counter()
        self._request_ns: Counter[str] = Counter()
        self.started = time.time()
        self._extra: list[Callable[[], dict[str, Any]]] = []

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def request(self, operation: str, nanoseconds: int, *, failed: bool = False) -> None:
        """One kernel request served, by operation (``getattr_fuse_3`` ->
        ``getattr``), the time spent in it, and whether it was answered with
        an errno (ENOENT of a lookup included)."""
        name = operation.removesuffix("_fuse_3")
        with self._lock:
            self._requests[name] += 1
            self._request_ns[name] += nanoseconds
            if failed:
                self._counts["error_replies"] += 1

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def source(self, probe: Callable[[], dict[str, Any]]) -> None:
        """Add values read at render time (open handles, cache hits of core)."""
        self._extra.append(probe)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {name: self._counts[name] for name in COUNTERS}
            out["requests"] = dict(sorted(self._requests.items()))
            out["request_ms"] = {name: round(ns / 1e6, 3)
                                 for name, ns in sorted(self._request_ns.items())}
        for probe in self._extra:
            out.update(probe())
        out["uptime_seconds"] = round(time.time() - self.started, 3)
        return out

    def render(self) -> bytes:
        return (json.dumps(self.snapshot(), indent=2, sort_keys=True) + "\n").encode()


__all__ = ["COUNTERS", "Stats"]
