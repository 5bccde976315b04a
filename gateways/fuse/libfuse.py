"""libfuse3 through mfusepy: loading it, the callbacks mfusepy leaves out, and
messages to the kernel (cache invalidation, readahead).

Pitfalls of mfusepy measured here and handled in this module:

* with libfuse2 and libfuse3 both installed it loads libfuse2 unless
  ``FUSE_LIBRARY_NAME=fuse3`` is set before the import;
* its ``readdir`` never sets ``FUSE_FILL_DIR_PLUS``, so attributes listed with
  the names are dropped; ``JoistFuse.readdir_fuse_3`` passes them on (libfuse3
  forwards them only for entries given with a non-zero offset);
* its ``read_buf`` wrapper decodes a path that is NULL under ``nullpath_ok``;
* ``-o max_readahead=`` makes the libfuse3 mount fail: the readahead window is
  the mount's ``read_ahead_kb`` in sysfs, written once the mount is up.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import queue
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from joist.core.errors import UnsupportedError

log = logging.getLogger("joist.fuse")

_C_STAT = "__c_stat__"  # an entry's attributes as a struct stat, kept in its dict
FUSE_READDIR_PLUS = 1 << 0
FUSE_FILL_DIR_PLUS = 1 << 1
FUSE_CAP_READDIRPLUS = 1 << 13
FUSE_CAP_READDIRPLUS_AUTO = 1 << 14
FUSE_CAP_CACHE_SYMLINKS = 1 << 23


def load_mfusepy() -> ModuleType:
    """Import mfusepy bound to libfuse3 (or fail with a clear message)."""
    if not os.environ.get("FUSE_LIBRARY_PATH"):
        os.environ["FUSE_LIBRARY_NAME"] = "fuse3"
    try:
        import mfusepy
    except (OSError, AttributeError) as exc:
        raise UnsupportedError(f"libfuse3 is needed for `joist mount` (Debian: apt-get "
                               f"install fuse3): {exc}") from None
    if mfusepy.fuse_version_major != 3:
        raise UnsupportedError("`joist mount` needs libfuse3; FUSE_LIBRARY_PATH points at "
                               f"libfuse {mfusepy.fuse_version_major}.")
    return mfusepy


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


def fuse_class(mfusepy: ModuleType) -> type:
    """``mfusepy.FUSE`` with the callbacks it leaves out: readdirplus, a
    NULL-safe ``read_buf``, and the connection settings of ``init``."""

    base = mfusepy.FUSE
    c_stat = mfusepy.c_stat

    class JoistFuse(base):  # type: ignore[misc, valid-type]
        _threads: set[int] = set()

        def _wrapper(self, func: Any, *args: Any, **kwargs: Any) -> Any:
            # A ctypes callback on a libfuse worker thread gets a fresh Python
            # thread state per call, torn down on return: every threading.local
            # (the store's per-thread SQLite connections, diskcache's) would be
            # rebuilt per request, and finalizers run during that teardown crash
            # CPython 3.11. Taking the GIL state once more, never released, keeps
            # one thread state per worker for its lifetime.
            ident = threading.get_ident()
            if ident not in self._threads:
                ctypes.pythonapi.PyGILState_Ensure()
                self._threads.add(ident)
            start = time.perf_counter_ns()
            result = super()._wrapper(func, *args, **kwargs)
            self.operations.stats.request(func.__name__, time.perf_counter_ns() - start,
                                          failed=isinstance(result, int) and result < 0)
            return result

        def _decode(self, path: bytes | None) -> str | None:
            return None if path is None else path.decode(self.encoding, self.errors)

        def readdir_fuse_3(self, path: bytes | None, buf: Any, filler: Any, offset: int,
                           fip: Any, flags: int) -> int:
            plus = FUSE_FILL_DIR_PLUS if flags & FUSE_READDIR_PLUS else 0
            fh = fip.contents.fh
            ops = self.operations
            for _ in range(1_000_000):  # bounded: one kernel buffer never holds more
                entries = ops.readdir_page(fh, offset)
                if not entries:
                    return 0
                for name, attrs, cookie in entries:
                    st = attrs.get(_C_STAT)
                    if st is None:  # built once per entry, reused by cached listings
                        st = c_stat()
                        mfusepy.set_st_attrs(st, attrs, use_ns=True)
                        attrs[_C_STAT] = st
                    if filler(buf, os.fsencode(name), st, cookie, plus) != 0:
                        return 0  # the kernel buffer is full; resume from ``offset``
                    offset = cookie
            return 0

        def read_buf(self, path: bytes | None, bufpp: Any, size: int, offset: int,
                     fip: Any) -> int:
            return int(self.operations.read_buf(self._decode(path), bufpp, size, offset,
                                                fip.contents))

        def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
            # mfusepy drops the flags: RENAME_NOREPLACE must not become a replace.
            return int(self.operations.rename(self._decode(old), self._decode(new), flags))

        def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
            fi = fip.contents if fip else None
            return int(self.operations.truncate(self._decode(path), length, fi))

        def init_fuse_3(self, conn: Any, config: Any) -> None:
            cfg = config.contents
            cfg.use_ino = 1          # inode numbers from ids: stable across mounts
            cfg.hard_remove = 1      # no .fuse_hidden renames into the store
            cfg.nullpath_ok = 1      # handle operations work after an unlink
            cfg.kernel_cache = 0     # keep_cache is chosen per open (see operations)
            cfg.auto_cache = 0
            # (Splicing replies from the blob descriptor measured no faster here.)
            want = FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_CACHE_SYMLINKS
            conn.contents.want |= want & conn.contents.capable
            lib = mfusepy._libfuse
            self.operations.kernel.bind(lib, lib.fuse_get_context().contents.fuse)
            super().init_fuse_3(conn, config)

        def destroy(self, private_data: Any) -> None:
            self.operations.kernel.unbind()
            return super().destroy(private_data)

    return JoistFuse


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
    descriptor; glibc serves 1 MiB with mmap/munmap, so each request paid
    256 page faults and zeroed pages. Measured here: ``dd bs=1M`` on a
    ``--direct-io`` mount went from 1.3 to 4.6 GB/s, a first ``cat`` from 0.7
    to 1.8 GB/s.
    """
    libc = ctypes.CDLL(None)
    if hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 128 << 20)


def run(operations: Any, mountpoint: Path, options: dict[str, Any],
        on_error: Callable[[BaseException], None] | None = None) -> None:
    """Mount and serve until unmounted or signalled (SIGTERM, SIGINT, SIGHUP
    end the loop cleanly: libfuse installs its handlers)."""
    mfusepy = load_mfusepy()
    tune_malloc()
    # Everything built so far (modules, the app) lives as long as the process:
    # leave it out of every cyclic collection the requests will trigger.
    gc.freeze()
    cls = fuse_class(mfusepy)
    try:
        cls(operations, os.fspath(mountpoint), raw_fi=True, foreground=True, **options)
    except RuntimeError as exc:  # mfusepy: fuse_main_real failed (mount refused...)
        if on_error is not None:
            on_error(exc)
        raise


__all__ = ["KernelLink", "fuse_class", "load_mfusepy", "mount_device", "raise_file_limit",
           "run", "set_read_ahead", "tune_malloc"]
