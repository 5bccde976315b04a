"""Open handles of one SFTP session.

A file handle keeps the core ``Reader`` and ``Node`` it was opened with, so
reads and ``fstat`` never resolve the path again. Reads are served from a
read-ahead buffer: a miss fetches the run of contiguous READs the client has
pipelined (what the session sees queued), capped by ``SftpTuning.read_ahead``.
For a remote blob (S3, GridFS: a round trip per call) that is the point; for
a local one it turns a pipeline's preads into one.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

from paramiko.sftp import SFTP_FAILURE

from joist.core.hierarchy import Node, Reader

from .errors import SftpStatusError, bad_handle


class FileHandle:
    __slots__ = ("_buf", "_buf_start", "_depth", "_next", "node", "path", "reader", "size")

    def __init__(self, path: str, reader: Reader) -> None:
        self.path = path
        self.reader = reader
        self.node = reader.node
        self.size = reader.size
        self._buf = memoryview(b"")
        self._buf_start = 0
        self._depth = 0   # widest run of queued READs seen: the client's pipeline
        self._next = -1   # where a sequential reader asks next

    def read(self, offset: int, length: int, run_end: int, limit: int) -> memoryview:
        """Up to ``length`` bytes at ``offset`` (empty at or past the end).

        ``run_end``: where the contiguous READs the client has queued from
        here end; ``limit``: most bytes fetched at once. A buffer miss fetches
        the queued run, and for a sequential reader as far ahead as its widest
        run so far, since its pipeline refills as replies go out.
        """
        end = min(offset + length, self.size)
        if end <= offset:
            return memoryview(b"")
        self._depth = max(self._depth, run_end - offset)
        sequential = offset == self._next
        self._next = end
        start = self._buf_start
        if start <= offset and end <= start + len(self._buf):
            return self._buf[offset - start:end - start]
        target = max(run_end, offset + self._depth) if sequential else run_end
        fetch_end = min(self.size, max(end, min(target, offset + limit)))
        data = self.reader.read_at(offset, fetch_end - offset)
        if len(data) < end - offset:  # the blob is shorter than its record
            end = offset + len(data)
        self._buf = memoryview(data)
        self._buf_start = offset
        return self._buf[:end - offset]

    def close(self) -> None:
        self._buf = memoryview(b"")
        self.reader.close()


class DirHandle:
    __slots__ = ("_entries", "node", "path")

    def __init__(self, path: str, node: Node, entries: Iterator[Node]) -> None:
        self.path = path
        self.node = node
        self._entries = entries

    def page(self, size: int) -> list[Node]:
        """The next ``size`` entries; empty once the listing is done."""
        return list(itertools.islice(self._entries, size))

    def close(self) -> None:
        close = getattr(self._entries, "close", None)
        if close is not None:
            close()


Handle = FileHandle | DirHandle


class HandleTable:
    """Handles of one session by id; ids are never reused within it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._handles: dict[bytes, Handle] = {}
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._handles)

    def add(self, handle: Handle) -> bytes:
        if len(self._handles) >= self.limit:
            handle.close()
            raise SftpStatusError(SFTP_FAILURE, f"Too many open handles (at most {self.limit})")
        key = b"%x" % next(self._ids)
        self._handles[key] = handle
        return key

    def get(self, key: bytes) -> Handle:
        handle = self._handles.get(key)
        if handle is None:
            raise bad_handle()
        return handle

    def size_of(self, key: bytes) -> int | None:
        """The size of the file behind ``key``; None if it is no file handle."""
        handle = self._handles.get(key)
        return handle.size if isinstance(handle, FileHandle) else None

    def file(self, key: bytes) -> FileHandle:
        handle = self.get(key)
        if not isinstance(handle, FileHandle):
            raise bad_handle()
        return handle

    def directory(self, key: bytes) -> DirHandle:
        handle = self.get(key)
        if not isinstance(handle, DirHandle):
            raise bad_handle()
        return handle

    def pop(self, key: bytes) -> Handle:
        handle = self._handles.pop(key, None)
        if handle is None:
            raise bad_handle()
        return handle

    def close_all(self) -> None:
        handles, self._handles = list(self._handles.values()), {}
        for handle in handles:
            with contextlib.suppress(Exception):  # teardown: release what we can
                handle.close()


__all__ = ["DirHandle", "FileHandle", "Handle", "HandleTable"]
