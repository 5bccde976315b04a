"""``joist serve --workers N``: N server processes sharing the HTTP and SFTP ports.

One CPython process runs Python on one core at a time; N worker processes use N.

Pre-forked listeners, not ``SO_REUSEPORT``: the supervisor (the process the
user started) binds every port once (so ``--port 0`` picks one port for all)
and hands the listening sockets to each worker it starts (inherited file
descriptors, named in ``JOIST_WORKER``). All workers accept from the one
queue of each port, so

- a connection waiting in the queue of a worker that dies is taken by
  another worker (with ``SO_REUSEPORT`` each socket has its own queue, and a
  dead worker's queued connections are reset);
- an idle worker takes the next connection (``SO_REUSEPORT`` spreads them by
  a hash of the addresses, busy worker or not);
- a restarted worker listens at once, with nothing to re-bind.

The supervisor starts the workers, prints where to connect once they all
serve, restarts one that dies (backing off if it keeps dying at start), and on
SIGTERM or SIGINT stops them all (SIGTERM, then SIGKILL after a grace period)
before it exits. A worker dies with its supervisor (``PR_SET_PDEATHSIG``), so
none is orphaned. Caches stay coherent across workers through the store's
change counters (``core/store/watch.py``). FUSE mounts are not served here.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("joist.serve")

ENV = "JOIST_WORKER"  # "http=3,dav=4,sftp=5,ready=6,parent=PID" in a worker
READY_DEADLINE = 120.0  # for the first workers to start serving
STOP_GRACE = 30.0  # seconds workers get to finish before SIGKILL
QUICK_DEATH = 5.0  # a worker dying sooner than this after its start backs off
MAX_BACKOFF = 10.0
_PR_SET_PDEATHSIG = 1


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    ready_fd: int  # read end of the pipe the worker reports readiness on; -1 once closed
    started: float = field(default_factory=time.monotonic)

    def close_ready(self) -> None:
        if self.ready_fd >= 0:
            os.close(self.ready_fd)
            self.ready_fd = -1


def bind_listener(host: str, port: int, *, backlog: int, resolve: bool = True
                  ) -> socket.socket:
    """A listening socket for ``host``:``port``; ``resolve``: the address family
    the name resolves to first, as cheroot binds in one process (the SFTP
    server goes by the literal form)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address: tuple[str, int] = (host, port)
    if resolve:
        try:
            found = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                                       socket.AI_PASSIVE)
        except socket.gaierror:
            found = []
        if found:
            family, address = found[0][0], found[0][4][:2]
    return socket.create_server(address, family=family, backlog=backlog)


def worker_listeners() -> tuple[dict[str, socket.socket], int | None] | None:
    """In a worker: the listening sockets handed down, and the descriptor to
    report readiness on; None in any other process. Also ties the worker's
    life to its supervisor's."""
    spec = os.environ.pop(ENV, None)
    if not spec:
        return None
    fds = dict(part.split("=", 1) for part in spec.split(","))
    parent = int(fds.pop("parent", "0"))
    _die_with_parent(parent)
    ready = fds.pop("ready", None)
    listeners = {name: socket.socket(fileno=int(fd)) for name, fd in fds.items()}
    return listeners, int(ready) if ready is not None else None


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if parent and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)  # the supervisor is already gone


def report_ready(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.write(fd, b"1")
        os.close(fd)


class Supervisor:
    """Starts ``count`` workers running ``argv`` (``joist`` arguments) with the
    ``listeners`` handed down; see the module doc."""

    def __init__(self, count: int, argv: Sequence[str],
                 listeners: dict[str, socket.socket]) -> None:
        self.count = count
        self.argv = list(argv)
        self.listeners = listeners
        self.workers: list[Worker | None] = [None] * count
        self._backoff = [0.0] * count
        self._wake = threading.Event()  # a child exited, or a stop was asked for

    # ------------------------------------------------------------ workers
    def spawn(self, slot: int) -> Worker:
        read_fd, write_fd = os.pipe()
        fds = {name: sock.fileno() for name, sock in self.listeners.items()}
        spec = ",".join(f"{name}={fd}" for name, fd in fds.items())
        env = dict(os.environ)
        env[ENV] = f"{spec},ready={write_fd},parent={os.getpid()}"
        try:
            proc = subprocess.Popen([sys.executable, "-m", "joist.admin.cli", *self.argv],
                                    env=env, pass_fds=[*fds.values(), write_fd])
        finally:
            os.close(write_fd)
        worker = Worker(proc, read_fd)
        self.workers[slot] = worker
        log.info("worker %d started (pid %d)", slot, proc.pid)
        return worker

    def start(self) -> bool:
        """Start every worker; True once all serve, False if one failed first
        (then all are stopped)."""
        for slot in range(self.count):
            self.spawn(slot)
        waiting = {w.ready_fd: w for w in self.workers if w is not None}
        deadline = time.monotonic() + READY_DEADLINE
        poller = select.poll()
        for fd in waiting:
            poller.register(fd, select.POLLIN)
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                log.error("workers did not start within %.0f s", READY_DEADLINE)
                self.stop()
                return False
            for fd, _ in poller.poll(left * 1000):
                data = os.read(fd, 1)
                poller.unregister(fd)
                worker = waiting.pop(fd)
                worker.close_ready()
                if not data:  # closed unwritten: the worker died while starting
                    log.error("worker pid %d failed to start (exit status %s)",
                              worker.proc.pid, worker.proc.wait())
                    self.stop()
                    return False
        return True

    def supervise(self, stop: threading.Event) -> None:
        """Restart workers that die, until ``stop`` is set."""
        previous = signal.signal(signal.SIGCHLD, lambda *_: self._wake.set())
        try:
            while not stop.is_set():
                self._wake.wait(1.0)
                self._wake.clear()
                for slot, worker in enumerate(self.workers):
                    if stop.is_set():
                        break
                    if worker is not None and worker.proc.poll() is not None:
                        self._replace(slot, worker, stop.wait)
        finally:
            signal.signal(signal.SIGCHLD, previous)

    def _replace(self, slot: int, worker: Worker, wait: Callable[[float], bool]) -> None:
        lived = time.monotonic() - worker.started
        log.warning("worker %d (pid %d) exited with status %s after %.1f s; restarting",
                    slot, worker.proc.pid, worker.proc.returncode, lived)
        if lived < QUICK_DEATH:  # dying at start: do not spin
            self._backoff[slot] = min(MAX_BACKOFF, max(0.5, self._backoff[slot] * 2))
            if wait(self._backoff[slot]):
                self.workers[slot] = None
                return
        else:
            self._backoff[slot] = 0.0
        self.spawn(slot).close_ready()  # nobody waits for a replacement to be ready

    def stop(self) -> int:
        """SIGTERM every worker, SIGKILL those still running after the grace
        period; returns 0 if every worker stopped cleanly."""
        self._wake.set()
        live = [w for w in self.workers if w is not None]
        for worker in live:
            if worker.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.send_signal(signal.SIGTERM)
        status = 0
        deadline = time.monotonic() + STOP_GRACE
        for worker in live:
            try:
                code = worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d did not stop in time; killing it", worker.proc.pid)
                worker.proc.kill()
                code = worker.proc.wait()
            # SIGTERM before a fresh worker set its handler also counts as clean
            status = status or code not in (0, -signal.SIGTERM)
            worker.close_ready()
        self.workers = [None] * self.count
        return int(status)

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w is not None]


__all__ = ["ENV", "Supervisor", "Worker", "bind_listener", "report_ready",
           "worker_listeners"]
