"""libfuse3 through mfusepy: the mount loop, and messages to the kernel
(cache invalidation, readahead).

What Joist needs of mfusepy's internals (loading it bound to libfuse3, the
callbacks it leaves out, its libfuse handle) lives in ``mfusepy_internals``.
Handled here: ``-o max_readahead=`` makes the libfuse3 mount fail, so the
readahead window is the mount's ``read_ahead_kb`` in sysfs, written once the
mount is up.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from joist.core.memory import freeze_startup

from . import mfusepy_internals

log = logging.getLogger("joist.fuse")


class KernelLink:
    """Messages from the filesystem to the kernel; inert until a mount binds it.

    ``invalidate`` queues the path for a worker thread: libfuse forbids
    notifications from inside an operation on the same inode (getattr, read).
    ``invalidate_now`` is for ``open``, which libfuse allows.
    """

    def __init__(self) -> None:
        self._fuse: int | None = None
        self._lib: Any = None
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._bound = threading.Event()
        self.sent = 0

    def bind(self, lib: Any, fuse_ptr: int) -> None:
        self._lib, self._fuse = lib, fuse_ptr
        self._lib.fuse_invalidate_path.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        self._lib.fuse_invalidate_path.restype = ctypes.c_int
        self._bound.set()
        self._thread = threading.Thread(target=self._run, name="fuse-notify", daemon=True)
        self._thread.start()

    def unbind(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
        self._bound.clear()
        self._fuse = None

    def invalidate(self, path: str) -> None:
        if self._bound.is_set():
            self._queue.put(os.fsencode(path))

    def invalidate_now(self, path: str) -> None:
        if self._bound.is_set():
            self._send(os.fsencode(path))

    def _send(self, path: bytes) -> None:
        fuse = self._fuse
        if fuse is None:
            return
        # ENOENT only says the kernel holds nothing for the path: nothing to drop.
        self._lib.fuse_invalidate_path(fuse, path)
        self.sent += 1

    def _run(self) -> None:
        while True:
            path = self._queue.get()
            if path is None:
                return
            try:
                self._send(path)
            except Exception:  # never let the notifier die
                log.exception("kernel invalidation failed")


def mount_device(mountpoint: Path) -> str | None:
    """``major:minor`` of the filesystem mounted at ``mountpoint``, read from
    mountinfo (a stat of the mount point would be a request to ourselves)."""
    target = os.fsencode(os.path.abspath(mountpoint))
    try:
        lines = Path("/proc/self/mountinfo").read_bytes().splitlines()
    except OSError:
        return None
    found = None
    for line in lines:
        fields = line.split()
        if len(fields) > 4 and fields[4].replace(b"\\040", b" ") == target:
            found = fields[2].decode()  # the last one is the topmost mount
    return found


def set_read_ahead(mountpoint: Path, kib: int, *, wait: float = 5.0) -> bool:
    """Widen the mount's readahead window (sysfs ``read_ahead_kb`` of its bdi).
    The mount may take a moment to show in mountinfo after INIT: poll for it."""
    if kib <= 0:
        return False
    deadline = time.monotonic() + wait
    device = mount_device(mountpoint)
    while device is None and time.monotonic() < deadline:
        time.sleep(0.01)
        device = mount_device(mountpoint)
    if device is None:
        log.warning("%s does not show in mountinfo: readahead left as it is", mountpoint)
        return False
    try:
        Path(f"/sys/class/bdi/{device}/read_ahead_kb").write_text(f"{int(kib)}\n")
    except OSError as exc:
        log.warning("could not set read_ahead_kb of %s: %s", mountpoint, exc)
        return False
    return True


def raise_file_limit(target: int = 65536) -> int:
    """Lift the soft limit on open files toward the hard one (the mount keeps
    blob descriptors open for reuse); returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (OSError, ValueError):
            pass
    return int(soft) if soft != resource.RLIM_INFINITY else target


M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def tune_malloc() -> None:
    """Keep libfuse's 1 MiB reply buffers on the heap.

    libfuse mallocs and frees a buffer for every read it answers from a
    descriptor; glibc would serve 1 MiB with mmap/munmap, so each request
    would pay 256 page faults and zeroed pages: about a third of the large-read
    throughput (``benchmarks/fuse_bench.py`` shows it).
    """
    libc = ctypes.CDLL(None)
    if hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 128 << 20)


def run(operations: Any, mountpoint: Path, options: dict[str, Any],
        on_error: Callable[[BaseException], None] | None = None) -> None:
    """Mount and serve until unmounted or signalled (SIGTERM, SIGINT, SIGHUP
    end the loop cleanly: libfuse installs its handlers)."""
    mfusepy = mfusepy_internals.load()
    mfusepy_internals.check(mfusepy)  # a mfusepy we were not built for: say so now
    tune_malloc()
    # Everything built so far (modules, the app) lives as long as the process:
    # leave it out of every cyclic collection the requests will trigger.
    freeze_startup()
    cls = mfusepy_internals.fuse_class(mfusepy)
    try:
        cls(operations, os.fspath(mountpoint), raw_fi=True, foreground=True, **options)
    except RuntimeError as exc:  # mfusepy: fuse_main_real failed (mount refused...)
        if on_error is not None:
            on_error(exc)
        raise


__all__ = ["KernelLink", "mount_device", "raise_file_limit", "run", "set_read_ahead",
           "tune_malloc"]
