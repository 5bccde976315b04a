"""Local-file building blocks for assetstores that keep bytes on a local disk:
a ``pread``-based ``BlobReader``, ``flock`` helpers, and durable directory
updates."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import queue
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

from .. import faults
from ..errors import CoreError, QuotaError, StorageError, ValidationError
from .base import BLOCK_SIZE, BlobReader

__all__ = [
    "LocalBlobReader", "copy_stream", "fsync_dir", "locked", "os_errors", "pwrite_all",
    "storage_error",
]

_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def storage_error(exc: BaseException, what: str) -> CoreError:
    """The core error for an OS failure: ``QuotaError`` when the disk or a
    quota is full, ``StorageError`` otherwise. The cause is kept."""
    if isinstance(exc, CoreError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _SPACE_ERRNOS:
        err: CoreError = QuotaError(f"{what}: no space left on the assetstore.")
    else:
        err = StorageError(f"{what}: {exc}")
    err.__cause__ = exc
    return err


@contextlib.contextmanager
def os_errors(what: str) -> Iterator[None]:
    """Turn OS failures inside the block into core errors (see ``storage_error``);
    core errors pass through untouched."""
    try:
        yield
    except CoreError:
        raise
    except OSError as exc:
        raise storage_error(exc, what) from exc


def fsync_dir(path: str) -> None:
    """Make a rename/create/unlink in ``path`` durable (POSIX needs the
    directory itself synced, not only the file)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pwrite_all(fd: int, data: Any, pos: int) -> None:
    """``os.pwrite`` until every byte is written (it may write less)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, pos)
        view, pos = view[written:], pos + written


PIPELINE_MIN = 4 * BLOCK_SIZE


def copy_stream(fd: int, offset: int, stream: BinaryIO, length: int | None, limit: int,
                hasher: Any) -> int:
    """Copy ``length`` bytes (None: to EOF) from ``stream`` into ``fd`` at
    ``offset`` in ``BLOCK_SIZE`` blocks, feeding ``hasher`` (None: no hash,
    the bytes are hashed after the upload's commit); returns the new
    end. Never goes past ``limit`` (``ValidationError``); a failing stream
    becomes ``StorageError``, a short one ``ValidationError``. The caller rolls
    back what was written.

    Large copies hash on a second thread while the next block is read and
    written (``hashlib`` and ``pwrite`` both release the GIL): SHA-512 is as
    slow as the disk, so overlapping them nearly doubles upload throughput.
    """
    if hasher is None:
        return _copy(fd, offset, stream, length, limit, _ignore)
    if length is not None and length < PIPELINE_MIN:
        return _copy(fd, offset, stream, length, limit, hasher.update)
    feed: queue.Queue[Any] = queue.Queue()
    free = threading.Semaphore(2)  # two buffers: one hashed while the other fills
    failure: list[BaseException] = []

    def hash_blocks() -> None:
        while True:  # ends at the None the copy always sends last (finally)
            block = feed.get()
            if block is None:
                return
            try:
                hasher.update(block)
            except BaseException as exc:  # reported after the copy
                failure.append(exc)
            finally:
                free.release()

    worker = threading.Thread(target=hash_blocks, name="upload-hash", daemon=True)
    worker.start()
    try:
        return _copy(fd, offset, stream, length, limit, feed.put, buffers=2,
                     before_fill=free.acquire)
    finally:
        feed.put(None)
        worker.join()
        if failure:
            raise StorageError(f"Hashing the upload failed: {failure[0]}")


def _ignore(_data: Any) -> None:
    return None


def _copy(fd: int, offset: int, stream: BinaryIO, length: int | None, limit: int,
          consume: Any, buffers: int = 1, before_fill: Any = None) -> int:
    bufs = [memoryview(bytearray(BLOCK_SIZE)) for _ in range(buffers)]
    readinto = getattr(stream, "readinto", None)
    pos, remaining, turn = offset, length, 0
    while remaining is None or remaining > 0:
        want = BLOCK_SIZE if remaining is None else min(BLOCK_SIZE, remaining)
        buf = bufs[turn % buffers]
        turn += 1
        if before_fill is not None:
            before_fill()  # wait until the hasher is done with this buffer
        try:
            if readinto is not None:
                data: Any = buf[:readinto(buf[:want]) or 0]
            else:
                data = stream.read(want) or b""
        except CoreError:
            raise
        except Exception as exc:
            raise StorageError(f"The upload stream failed after {pos - offset} bytes: "
                               f"{exc}") from exc
        if not data:
            break
        if pos + len(data) > limit:
            raise ValidationError("Received too many bytes.")
        pwrite_all(fd, data, pos)
        faults.point("upload.chunk.mid_write")
        consume(data)
        pos += len(data)
        if remaining is not None:
            remaining -= len(data)
    if remaining:
        raise ValidationError(f"Expected {length} bytes, the stream ended after "
                              f"{pos - offset}.")
    return pos


@contextlib.contextmanager
def locked(path: str, *, shared: bool = False) -> Iterator[int]:
    """Hold an ``flock`` on ``path`` (created if needed) for the block.

    ``flock`` locks belong to the open file description, so every call opens
    its own: threads of one process exclude each other as processes do.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


class LocalBlobReader(BlobReader):
    """A blob read from a kept descriptor with ``os.pread``: no shared file
    offset, so ``read_at`` is safe from any number of threads."""

    def __init__(self, path: str, *, expected_size: int | None = None) -> None:
        super().__init__()
        self._fd = -1  # close() (also run by __del__) must see a valid state
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise StorageError(f"The bytes of this file are missing ({path}).") from exc
        except OSError as exc:
            raise storage_error(exc, "Opening a blob") from exc
        self._size = os.fstat(self._fd).st_size
        if expected_size is not None and expected_size != self._size:
            os.close(self._fd)
            self._fd = -1
            raise StorageError(f"Blob {path} holds {self._size} bytes, "
                               f"the file record says {expected_size}.")
        self._path = path

    @property
    def size(self) -> int:
        return self._size

    @property
    def name(self) -> str:
        return self._path

    def fileno(self) -> int:
        self._checkClosed()
        return self._fd

    def _read_range(self, offset: int, size: int) -> bytes:
        chunks: list[bytes] = []
        while size > 0:
            try:
                data = os.pread(self._fd, size, offset)
            except OSError as exc:
                raise storage_error(exc, "Reading a blob") from exc
            if not data:  # the file shrank under us: report what is there
                break
            chunks.append(data)
            offset += len(data)
            size -= len(data)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _iter_range(self, offset: int, stop: int, block_size: int,
                    reuse: bool) -> Iterator[bytes | memoryview]:
        if reuse:
            return self._iter_reused(offset, stop, block_size)
        return super()._iter_range(offset, stop, block_size, reuse)

    def _iter_reused(self, offset: int, stop: int, block_size: int) -> Iterator[memoryview]:
        # One buffer for the whole range: no new bytes object (and no fresh
        # pages to fault in) per block; the caller said it keeps no block.
        stop = min(stop, self._size)
        if offset >= stop:
            return
        view = memoryview(bytearray(min(block_size, stop - offset)))
        while offset < stop:
            self._checkClosed()
            try:
                got = os.preadv(self._fd, [view[:min(block_size, stop - offset)]], offset)
            except OSError as exc:
                raise storage_error(exc, "Reading a blob") from exc
            if not got:  # the file shrank under us: end where it ends
                return
            offset += got
            yield view[:got]

    def readinto(self, buffer: Any) -> int:
        # Read straight into the caller's buffer: no intermediate bytes object.
        self._checkClosed()
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._size - self._pos)
        if want <= 0:
            return 0
        try:
            got = os.preadv(self._fd, [view[:want]], self._pos)
        except OSError as exc:
            raise storage_error(exc, "Reading a blob") from exc
        self._pos += got
        return got

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        super().close()
