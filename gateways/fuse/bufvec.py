"""Replies for libfuse's ``read_buf``: a ``struct fuse_bufvec`` that names a
file descriptor and an offset (libfuse then reads the bytes itself, without
the GIL and without a copy through Python), or one that holds bytes.

libfuse frees what it gets with ``free()``, so it is allocated with ``malloc``.
mfusepy's own ``fuse_bufvec`` declares ``buf`` as a pointer where the C struct
has an inline one-element array, so the layout is declared here.
"""

from __future__ import annotations

import ctypes
from typing import Any

FUSE_BUF_IS_FD = 1 << 1
FUSE_BUF_FD_SEEK = 1 << 2


class FuseBuf(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("flags", ctypes.c_int), ("mem", ctypes.c_void_p),
                ("fd", ctypes.c_int), ("pos", ctypes.c_int64)]


class FuseBufvec(ctypes.Structure):
    _fields_ = [("count", ctypes.c_size_t), ("idx", ctypes.c_size_t), ("off", ctypes.c_size_t),
                ("buf", FuseBuf * 1)]


_libc = ctypes.CDLL(None)
_malloc = _libc.malloc
_malloc.argtypes = [ctypes.c_size_t]
_malloc.restype = ctypes.c_void_p


def _give(bufpp: Any, size: int, flags: int, mem: int | None, fd: int, pos: int) -> None:
    address = _malloc(ctypes.sizeof(FuseBufvec))
    if not address:
        raise MemoryError
    vec = FuseBufvec.from_address(address)
    vec.count, vec.idx, vec.off = 1, 0, 0
    buf = vec.buf[0]
    buf.size, buf.flags, buf.mem, buf.fd, buf.pos = size, flags, mem, fd, pos
    ctypes.cast(bufpp, ctypes.POINTER(ctypes.c_void_p))[0] = address


def give_fd(bufpp: Any, fd: int, pos: int, size: int) -> int:
    """Answer with ``size`` bytes of ``fd`` at ``pos`` (libfuse ``pread``s them)."""
    _give(bufpp, size, FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK, None, fd, pos)
    return 0


def give_bytes(bufpp: Any, data: bytes | bytearray | memoryview) -> int:
    size = len(data)
    mem = _malloc(max(size, 1))
    if not mem:
        raise MemoryError
    if size:
        ctypes.memmove(mem, bytes(data), size)
    try:
        _give(bufpp, size, 0, mem, -1, 0)
    except BaseException:
        _libc.free(ctypes.c_void_p(mem))
        raise
    return 0


__all__ = ["FuseBuf", "FuseBufvec", "give_bytes", "give_fd"]
