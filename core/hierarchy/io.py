"""Byte access through the hierarchy: seekable readers, atomic writers."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Literal, overload

from ..acl import Principal
from ..assetstores.base import BLOCK_SIZE, BlobReader
from ..db.engine import Document
from ..services.uploads import UploadService
from .nodes import Node


class Reader:
    """A file's bytes: ``read_at`` at any offset, ``iter_range`` for a span in
    blocks, or stream with ``read``."""

    def __init__(self, node: Node, blob: BlobReader) -> None:
        self.node = node
        self._blob = blob
        self._pos = 0
        # Guards the read position (read and seek from several threads).
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._blob.size

    def read_at(self, offset: int, size: int) -> bytes:
        return self._blob.read_at(offset, size)

    @overload
    def iter_range(self, offset: int, length: int, block_size: int = ..., *,
                   reuse: Literal[False] = ...) -> Iterator[bytes]: ...

    @overload
    def iter_range(self, offset: int, length: int, block_size: int = ..., *,
                   reuse: bool) -> Iterator[bytes | memoryview]: ...

    def iter_range(self, offset: int, length: int, block_size: int = BLOCK_SIZE, *,
                   reuse: bool = False) -> Iterator[bytes | memoryview]:
        """``BlobReader.iter_range``: blocks of the span, short at the end of the blob."""
        return self._blob.iter_range(offset, length, block_size, reuse=reuse)

    def read(self, size: int = -1) -> bytes:
        with self._lock:
            if size is None or size < 0:
                size = max(self.size - self._pos, 0)
            data = self._blob.read_at(self._pos, size)
            self._pos += len(data)
            return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        with self._lock:
            base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
            self._pos = max(base + offset, 0)
            return self._pos

    def tell(self) -> int:
        return self._pos

    def fileno(self) -> int:
        """A real descriptor when the bytes are a local file (sendfile), else
        ``OSError``."""
        return self._blob.fileno()

    def close(self) -> None:
        self._blob.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Writer:
    """New bytes for a path, committed atomically by ``commit()`` (or leaving
    the ``with`` block without an error); ``abort()`` leaves nothing behind.

    Appends stream straight into the assetstore; nothing is visible at the
    path until the commit writes the file record.
    """

    def __init__(self, uploads: UploadService, principal: Principal, upload: Document,
                 on_commit: Callable[[Document], Node]) -> None:
        self._uploads = uploads
        self._principal = principal
        self._upload = upload
        self._on_commit = on_commit
        self._lock = threading.Lock()  # guards the upload: appends, commit and abort one at a time
        self._done = False
        self.node: Node | None = None

    @property
    def size(self) -> int:
        return int(self._upload["received"])

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        self.write_from(io.BytesIO(view), len(view))
        return len(view)

    def write_from(self, stream: BinaryIO, length: int | None = None) -> int:
        """Append ``length`` bytes (None: until EOF) from ``stream``; all or
        nothing per call. Returns the total size so far."""
        with self._lock:
            self._check_open()
            return self._uploads.append(self._upload, stream, length)

    def commit(self) -> Node:
        with self._lock:
            self._check_open()
            self._done = True
            try:
                file = self._uploads.finish(self._upload)
            except BaseException:
                with contextlib.suppress(Exception):
                    self._uploads.discard(self._upload)
                raise
            self.node = self._on_commit(file)
            return self.node

    def abort(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
            self._uploads.discard(self._upload)

    def _check_open(self) -> None:
        if self._done:
            raise ValueError("I/O operation on a closed writer.")

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
