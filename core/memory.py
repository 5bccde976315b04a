"""Giving memory back after work: the allocator's arenas and cache sweeps.

A long-running server that lists a big folder allocates hundreds of MiB of
short-lived objects (documents, nodes, rendered entries). CPython frees them,
but glibc's malloc keeps freed memory in its arenas (one per thread, up to 8
per core) and only returns the top of each heap to the system, so RSS stays at
the peak. Two remedies, both no-ops where glibc is absent:

* ``limit_arenas``: fewer arenas (``M_ARENA_MAX``, the knob ``MALLOC_ARENA_MAX``
  sets) means less memory stranded in per-thread arenas; set before threads
  start.
* ``Reclaimer``: a daemon thread that, every ``interval`` seconds, lets caches
  drop their expired entries (``sweep`` callables) and then, if they dropped
  many or RSS grew since it last trimmed, calls ``malloc_trim(0)``, which returns the free pages of
  every arena (also those inside a heap, with ``MADV_DONTNEED``).
* ``freeze_startup``: what a long-running process built before serving lives
  as long as it does; taken out of the cyclic collector's reach, it is not
  traversed again by every full collection of the requests' garbage.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger("joist.memory")

M_ARENA_MAX = -8  # mallopt parameter (glibc malloc.h)
GROWTH_MIB = 16  # RSS growth since the last trim that makes the next one worth it
DROPPED = 1000  # cache entries swept that make a trim worth it (their memory is free now)


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _libc()


def limit_arenas(count: int) -> bool:
    """At most ``count`` malloc arenas (0 leaves glibc's default); True if set."""
    if count <= 0 or _LIBC is None:
        return False
    return bool(_LIBC.mallopt(M_ARENA_MAX, count))


def trim() -> bool:
    """Return free heap memory to the system; True if some was."""
    return _LIBC is not None and bool(_LIBC.malloc_trim(0))


def freeze_startup() -> None:
    """Move every object alive now to the collector's permanent generation
    (``gc.freeze``, which CPython's documentation recommends for servers).
    Call once a serving process is built: its modules, app and services are
    hundreds of thousands of objects, and a full collection traverses them
    all. During a cold WebDAV listing of 2,000 entries (about 100,000 new
    objects), collections took about a third of the request's CPU; frozen,
    about a tenth. Garbage is collected first, so none of it is kept."""
    gc.collect()
    gc.freeze()


def rss_mib() -> float:
    """This process's resident set, MiB (0 where /proc is absent)."""
    try:
        with open(f"/proc/{os.getpid()}/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


class Reclaimer:
    """Every ``interval`` seconds: run the sweeps, trim when RSS has grown."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.trims = 0
        self._sweeps: list[Callable[[], int]] = []
        self._lock = threading.Lock()  # guards _sweeps
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._trimmed_at = rss_mib()

    def add(self, sweep: Callable[[], int]) -> None:
        """``sweep`` drops what has expired and says how many entries it dropped."""
        with self._lock:
            self._sweeps.append(sweep)

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="joist-reclaimer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def run_once(self) -> None:
        with self._lock:
            sweeps = list(self._sweeps)
        dropped = 0
        for sweep in sweeps:
            try:
                dropped += sweep()
            except Exception:  # a failing sweep must not end reclaiming
                log.exception("cache sweep failed")
        if dropped >= DROPPED or rss_mib() - self._trimmed_at >= GROWTH_MIB:
            if trim():
                self.trims += 1
            self._trimmed_at = rss_mib()
        else:
            # RSS fell (or barely moved): the next growth is measured from here.
            self._trimmed_at = min(self._trimmed_at, rss_mib())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()


__all__ = ["Reclaimer", "freeze_startup", "limit_arenas", "rss_mib", "trim"]
