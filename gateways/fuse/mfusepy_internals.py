"""Every use the FUSE gateway makes of mfusepy beyond its public API: here and
nowhere else, each checked by ``check()`` before a mount starts.

``load``
    mfusepy picks its libfuse when imported, from the environment only
    (``FUSE_LIBRARY_PATH``, else ``FUSE_LIBRARY_NAME``, else ``fuse`` =
    libfuse2 when both are installed). There is no other way to configure it,
    so the path is resolved here (the operator's ``FUSE_LIBRARY_PATH``, else
    ``find_library("fuse3")``), set for the import only and the environment
    restored after it: nothing leaks to the rest of the process or its
    children.

``JoistFuse`` (``fuse_class``) -- overridden methods of ``mfusepy.FUSE``
    ``_wrapper(self, func, *args, **kwargs)``, the private method every libfuse
    callback goes through (``functools.partial(self._wrapper, method)``): kept
    for the thread state (``keep_thread_state``) and per-operation statistics.
    ``readdir_fuse_3`` (mfusepy never sets ``FUSE_FILL_DIR_PLUS``, so listed
    attributes were dropped), ``read_buf`` (mfusepy decodes a path that is NULL
    under ``nullpath_ok``), ``rename_fuse_3`` (mfusepy drops the flags:
    RENAME_NOREPLACE must not replace), ``truncate_fuse_3`` (NULL path),
    ``init_fuse_3`` (connection settings: ``want`` and ``capable`` of
    ``mfusepy.fuse_conn_info``) and ``destroy``: the callback names
    and signatures mfusepy dispatches to. ``set_st_attrs`` and ``c_stat`` fill
    a listing's ``struct stat`` once per entry.

``libfuse_handle`` -- ``mfusepy._libfuse``
    The loaded libfuse, for ``fuse_get_context`` and ``fuse_invalidate_path``
    (the kernel cache invalidations of ``libfuse.KernelLink``).

``keep_thread_state`` -- ``PyGILState_Ensure`` without a release
    A ctypes callback on a thread Python did not start (libfuse's workers)
    gets a fresh Python thread state per call, torn down on return: every
    ``threading.local`` (the store's per-thread SQLite connections,
    diskcache's) would be rebuilt per request, and finalizers run during that
    teardown crash CPython 3.11. One more ``PyGILState_Ensure`` per worker,
    never released, keeps the worker's thread state (and its thread-locals)
    for the thread's life. Why never released: libfuse3 >= 3.12 does not end
    idle workers (``max_idle_threads`` defaults to -1, and the mount does not
    set it), so a worker lives until the unmount and at most ``max_threads``
    (10) states are kept; the interpreter clears them at exit. ``check``
    refuses an older libfuse3, which ends idle workers and would leak a state
    (with its SQLite connection) per ended worker.

A mfusepy or libfuse that changes any of these fails ``check()`` (and so the
mount's start) with ``MfusepyInternalsError`` rather than misbehaving
silently; ``tests/gateways/fuse/test_mfusepy_internals.py`` probes each one.
``setup.py`` pins mfusepy to the range tested (``TESTED``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.metadata
import inspect
import os
import threading
import time
from types import ModuleType
from typing import Any

from joist.core.errors import UnsupportedError

TESTED = ">=3.1.1,<3.2"
"""mfusepy versions these internals were checked against (as in setup.py)."""
MIN_LIBFUSE = (3, 12)  # idle workers are never ended: see keep_thread_state

_C_STAT = "__c_stat__"  # an entry's attributes as a struct stat, kept in its dict
FUSE_READDIR_PLUS = 1 << 0
FUSE_FILL_DIR_PLUS = 1 << 1
FUSE_CAP_SPLICE_WRITE = 1 << 7
FUSE_CAP_READDIRPLUS = 1 << 13
FUSE_CAP_READDIRPLUS_AUTO = 1 << 14
FUSE_CAP_CACHE_SYMLINKS = 1 << 23

# Callbacks JoistFuse overrides: name -> the parameters mfusepy calls it with.
OVERRIDES = {
    "_wrapper": ["self", "func", "args", "kwargs"],
    "readdir_fuse_3": ["self", "path", "buf", "filler", "offset", "fip", "flags"],
    "read_buf": ["self", "path", "bufpp", "size", "offset", "fip"],
    "rename_fuse_3": ["self", "old", "new", "flags"],
    "truncate_fuse_3": ["self", "path", "length", "fip"],
    "init_fuse_3": ["self", "conn", "config"],
    "destroy": ["self", "private_data"],
}
LIBFUSE_SYMBOLS = ("fuse_get_context", "fuse_invalidate_path")
_ENV_LOCK = threading.Lock()  # guards os.environ while mfusepy is imported


class MfusepyInternalsError(UnsupportedError):
    """This mfusepy (or libfuse) is not one the FUSE gateway was built against."""


# ---------------------------------------------------------------- loading
def load() -> ModuleType:
    """Import mfusepy bound to libfuse3 (or fail with a clear message)."""
    with _ENV_LOCK:
        path = os.environ.get("FUSE_LIBRARY_PATH") or ctypes.util.find_library("fuse3")
        if not path:
            raise UnsupportedError("libfuse3 is needed for `joist mount` (Debian: apt-get "
                                   "install fuse3).")
        saved = {name: os.environ.get(name)
                 for name in ("FUSE_LIBRARY_PATH", "FUSE_LIBRARY_NAME")}
        os.environ["FUSE_LIBRARY_PATH"] = path  # mfusepy reads it at import, only then
        try:
            import mfusepy
        except (OSError, AttributeError) as exc:
            raise UnsupportedError(f"libfuse3 is needed for `joist mount` (Debian: apt-get "
                                   f"install fuse3): {exc}") from None
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    if mfusepy.fuse_version_major != 3:
        raise UnsupportedError("`joist mount` needs libfuse3; FUSE_LIBRARY_PATH points at "
                               f"libfuse {mfusepy.fuse_version_major}.")
    return mfusepy


def libfuse_handle(mfusepy: ModuleType) -> Any:
    """The libfuse mfusepy loaded (a ``ctypes.CDLL``)."""
    return mfusepy._libfuse


# ---------------------------------------------------------------- thread state
_kept = threading.local()
kept_states = 0
"""How many thread states ``keep_thread_state`` has kept (one per worker)."""


def keep_thread_state() -> None:
    """Keep the calling foreign thread's Python thread state for its life (see
    the module's docstring). Cheap when already kept: one thread-local read,
    which is gone whenever the thread state was torn down."""
    global kept_states
    if not getattr(_kept, "kept", False):
        ctypes.pythonapi.PyGILState_Ensure()
        _kept.kept = True
        kept_states += 1


# ---------------------------------------------------------------- the class
def fuse_class(mfusepy: ModuleType) -> type:
    """``mfusepy.FUSE`` with the callbacks it leaves out: readdirplus, a
    NULL-safe ``read_buf``, and the connection settings of ``init``."""

    base = mfusepy.FUSE
    c_stat = mfusepy.c_stat
    set_st_attrs = mfusepy.set_st_attrs

    class JoistFuse(base):  # type: ignore[misc, valid-type]
        def _wrapper(self, func: Any, *args: Any, **kwargs: Any) -> Any:
            if not getattr(_kept, "kept", False):  # inline: this runs for every request
                keep_thread_state()
            start = time.perf_counter_ns()
            result = super()._wrapper(func, *args, **kwargs)
            self.operations.stats.request(func.__name__, time.perf_counter_ns() - start,
                                          failed=isinstance(result, int) and result < 0)
            return result

        def _decode(self, path: bytes | None) -> str | None:
            return None if path is None else path.decode(self.encoding, self.errors)

        def readdir_fuse_3(self, path: bytes | None, buf: Any, filler: Any, offset: int,
                           fip: Any, flags: int) -> int:
            # libfuse3 forwards the attributes only for entries given with a
            # non-zero offset (the cookie).
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
                        set_st_attrs(st, attrs, use_ns=True)
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
            # SPLICE_WRITE: a reply naming a descriptor (a blob, a chunk file)
            # goes file -> pipe -> /dev/fuse by splice, one copy fewer than
            # pread into a buffer and write. libfuse falls back to the copy by
            # itself when its pipe cannot hold a reply (a full 1 MiB read
            # without CAP_SYS_RESOURCE). Capping requests to fit the pipe cost
            # more than the copy: two requests per MiB made `dd` and cold
            # chunk-cache reads slower on a quiet machine (fuse_bench).
            want = FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO | \
                FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_SPLICE_WRITE
            conn.contents.want |= want & conn.contents.capable
            lib = libfuse_handle(mfusepy)
            self.operations.kernel.bind(lib, lib.fuse_get_context().contents.fuse)
            super().init_fuse_3(conn, config)

        def destroy(self, private_data: Any) -> None:
            self.operations.kernel.unbind()
            return super().destroy(private_data)

    return JoistFuse


# ---------------------------------------------------------------- the check
def _parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def problems(mfusepy: ModuleType) -> list[str]:
    """What this mfusepy changed of the internals above (empty: none)."""
    found: list[str] = []
    base = getattr(mfusepy, "FUSE", None)
    if base is None:
        return ["mfusepy.FUSE is gone"]
    for name, expected in OVERRIDES.items():
        method = getattr(base, name, None)
        if method is None:
            found.append(f"FUSE.{name} is gone")
        elif _parameters(method) != expected:
            found.append(f"FUSE.{name}{inspect.signature(method)} is not "
                         f"({', '.join(expected)})")
    fields = {field[0] for field in getattr(mfusepy, "fuse_operations", type)._fields_} \
        if hasattr(getattr(mfusepy, "fuse_operations", None), "_fields_") else set()
    for callback in ("readdir", "read_buf", "rename", "truncate", "init", "destroy"):
        if callback not in fields:
            found.append(f"fuse_operations has no {callback} callback")
    conn = getattr(getattr(mfusepy, "fuse_conn_info", None), "_fields_", [])
    found += [f"fuse_conn_info has no {name}" for name in ("capable", "want")
              if name not in {field[0] for field in conn}]
    lib = getattr(mfusepy, "_libfuse", None)
    if not isinstance(lib, ctypes.CDLL):
        found.append("mfusepy._libfuse is no longer the loaded libfuse")
    else:
        found += [f"libfuse has no {symbol}" for symbol in LIBFUSE_SYMBOLS
                  if not hasattr(lib, symbol)]
    set_st_attrs = getattr(mfusepy, "set_st_attrs", None)
    if set_st_attrs is None or _parameters(set_st_attrs)[:3] != ["st", "attrs", "use_ns"]:
        found.append("mfusepy.set_st_attrs(st, attrs, use_ns) changed")
    elif not isinstance(getattr(mfusepy, "c_stat", None), type):
        found.append("mfusepy.c_stat is gone")
    else:
        st = mfusepy.c_stat()
        set_st_attrs(st, {"st_size": 7, "st_mtime": 1_500_000_000_123_456_789}, use_ns=True)
        if st.st_size != 7 or st.st_mtimespec.tv_nsec != 123_456_789:
            found.append("mfusepy.set_st_attrs no longer fills a c_stat in nanoseconds")
    version = (getattr(mfusepy, "fuse_version_major", 0), getattr(mfusepy, "fuse_version_minor", 0))
    if version < MIN_LIBFUSE:
        found.append(f"libfuse {version[0]}.{version[1]} ends idle workers (needs "
                     f"{MIN_LIBFUSE[0]}.{MIN_LIBFUSE[1]}+: see keep_thread_state)")
    if not hasattr(ctypes.pythonapi, "PyGILState_Ensure"):
        found.append("ctypes.pythonapi has no PyGILState_Ensure")
    return found


def check(mfusepy: ModuleType) -> None:
    """Raise ``MfusepyInternalsError`` naming every internal this mfusepy
    changed; called before a mount starts."""
    found = problems(mfusepy)
    if found:
        try:
            version = importlib.metadata.version("mfusepy")
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        raise MfusepyInternalsError(
            f"mfusepy {version} changed internals `joist mount` relies on (tested: "
            f"mfusepy{TESTED}; see gateways/fuse/mfusepy_internals.py): " + "; ".join(found))


__all__ = ["LIBFUSE_SYMBOLS", "MIN_LIBFUSE", "OVERRIDES", "TESTED", "MfusepyInternalsError",
           "check", "fuse_class", "keep_thread_state", "libfuse_handle", "load", "problems"]
