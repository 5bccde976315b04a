"""The incremental SHA-512 of each filesystem upload in progress, kept between
its chunks so that finalize need not read the bytes again."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..errors import StorageError
from .base import BLOCK_SIZE
from .localio import os_errors

__all__ = ["UploadHashes"]

_HASH_CACHE_MAX = 4096  # incremental hashers kept; a miss only costs a re-read


@dataclass
class _HashState:
    """SHA-512 of the first ``offset`` bytes of one temp-file generation."""

    generation: str
    offset: int
    hasher: Any  # hashlib's hash object; its class is private


class UploadHashes:
    """Hashers by upload id (least recently used dropped first); thread-safe."""

    def __init__(self) -> None:
        self._hashes: OrderedDict[str, _HashState] = OrderedDict()
        self._lock = threading.Lock()  # guards _hashes

    def at(self, upload_id: str, generation: str, fd: int, offset: int) -> Any:
        """A SHA-512 of the temp file's first ``offset`` bytes; callers copy it
        before updating. The cache may lag (another process appended, or chunks
        of a large upload were not hashed): only the tail is read then; a whole
        re-read only after a restart or cache miss."""
        with self._lock:
            cached = self._hashes.get(upload_id)
        if cached is not None and cached.generation == generation \
                and cached.offset == offset:
            return cached.hasher
        if cached is not None and cached.generation == generation \
                and cached.offset < offset:
            hasher, pos = cached.hasher.copy(), cached.offset
        else:
            hasher, pos = hashlib.sha512(), 0
        with os_errors("Hashing an upload"):
            while pos < offset:
                data = os.pread(fd, min(BLOCK_SIZE, offset - pos), pos)
                if not data:
                    raise StorageError("The upload's temp file shrank while hashing.")
                hasher.update(data)
                pos += len(data)
        return hasher

    def remember(self, upload_id: str, generation: str, offset: int, hasher: Any) -> None:
        with self._lock:
            self._hashes[upload_id] = _HashState(generation, offset, hasher)
            self._hashes.move_to_end(upload_id)
            while len(self._hashes) > _HASH_CACHE_MAX:
                self._hashes.popitem(last=False)

    def forget(self, upload_id: str) -> None:
        with self._lock:
            self._hashes.pop(upload_id, None)
