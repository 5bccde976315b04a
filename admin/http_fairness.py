"""What each client address may hold of the HTTP server (used by ``http_front``).

Two caps per address: open connections (beyond them a new one is refused),
and worker threads busy with a large request body, which a worker must read
at the client's pace. A request with a large body beyond the second cap waits
its turn on no thread, in arrival order, and starts as soon as an earlier one
of the same address is done: one address's uploads, however slow, can never
take every worker from the others.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


class PerAddress:
    def __init__(self, max_connections: int, max_body_workers: int) -> None:
        self.max_connections = max_connections  # 0: no cap
        self.max_body_workers = max(1, max_body_workers)
        self._lock = threading.Lock()  # guards _connections and _body_workers
        self._connections: dict[str, int] = {}
        self._body_workers: dict[str, int] = {}
        self._waiting: dict[str, deque[Any]] = {}

    # ------------------------------------------------ connections
    def admit(self, host: str) -> bool:
        """Count a new connection from ``host``, unless it is over the cap."""
        with self._lock:
            count = self._connections.get(host, 0)
            if self.max_connections and count >= self.max_connections:
                return False
            self._connections[host] = count + 1
            return True

    def leave(self, host: str) -> None:
        with self._lock:
            _decrement(self._connections, host)

    def connections(self, host: str) -> int:
        with self._lock:
            return self._connections.get(host, 0)

    # ------------------------------------------------ workers on large bodies
    def start_body(self, conn: Any) -> bool:
        """May ``conn`` (its head read, a large body to come) go to a worker now?
        If not, it waits here and ``end_body`` of an earlier one releases it."""
        host = conn.counted_as or ""
        with self._lock:
            busy = self._body_workers.get(host, 0)
            if busy >= self.max_body_workers:
                self._waiting.setdefault(host, deque()).append(conn)
                return False
            self._body_workers[host] = busy + 1
            conn.body_slot = True
            return True

    def end_body(self, conn: Any) -> Any | None:
        """``conn`` is done with its large body: the next waiting connection of
        its address, which now holds the freed place, if there is one."""
        if not conn.body_slot:
            return None
        conn.body_slot = False
        host = conn.counted_as or ""
        with self._lock:
            queue = self._waiting.get(host)
            while queue:
                nxt = queue.popleft()
                if not queue:
                    del self._waiting[host]
                if not nxt.closed:
                    nxt.body_slot = True  # the place passes on: the count stays
                    return nxt
            _decrement(self._body_workers, host)
            return None

    def body_load(self, host: str) -> tuple[int, int]:
        """(workers busy with large bodies, connections waiting) for ``host``."""
        with self._lock:
            return self._body_workers.get(host, 0), len(self._waiting.get(host, ()))

    def drop_waiting(self) -> list[Any]:
        """Every waiting connection, forgotten (the server is stopping)."""
        with self._lock:
            waiting = [conn for queue in self._waiting.values() for conn in queue]
            self._waiting.clear()
            return waiting


def _decrement(counts: dict[str, int], host: str) -> None:
    count = counts.get(host, 0) - 1
    if count > 0:
        counts[host] = count
    else:
        counts.pop(host, None)


__all__ = ["PerAddress"]
