"""Sending the parts of one chunk to S3, a few at a time.

A chunk arrives as one sequential stream; it is cut into whole parts that are
uploaded concurrently (``window`` in flight) while the next one is read, as
boto3's transfer manager does. Parts are buffered, so a failed request can be
re-sent by botocore's retries; memory is bounded by ``window + 1`` parts.
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from .s3_client import MAX_PART

if TYPE_CHECKING:
    from .s3_upload import ChunkWriter, Part

__all__ = ["PieceSender", "part_size_for"]

PART_TARGET = 9_000  # parts an upload of known size should need at most (S3: 10,000)


def part_size_for(size: int | None, preferred: int) -> int:
    """The part size for an upload of ``size`` bytes (None: unknown): the
    preferred one, grown when the upload would need too many parts."""
    if size is None:
        return preferred
    return min(MAX_PART, max(preferred, math.ceil(size / PART_TARGET)))


class PieceSender:
    """Upload parts ``first``, ``first + 1``... of one multipart upload."""

    def __init__(self, writer: ChunkWriter, key: str, multipart_id: str, first: int,
                 window: int) -> None:
        self.writer, self.key, self.mpu = writer, key, multipart_id
        self.next_number = first
        self.window = max(1, window)
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: deque[Future[Part]] = deque()
        self.sent: list[Part] = []  # in part order

    def send(self, data: bytes) -> None:
        """Queue one part; blocks while ``window`` parts are in flight."""
        number, self.next_number = self.next_number, self.next_number + 1
        if self.window == 1:
            self.sent.append(self._upload(number, data))
            return
        while len(self._inflight) >= self.window:
            self._collect_one()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.window, thread_name_prefix="s3-part")
        self._inflight.append(self._pool.submit(self._upload, number, data))

    def finish(self) -> list[Part]:
        """Wait for every part; the first failure is raised."""
        try:
            while self._inflight:
                self._collect_one()
        finally:
            self.close()
        return self.sent

    def close(self) -> None:
        """Stop: wait for the parts in flight (their results are dropped)."""
        pool, self._pool = self._pool, None
        for future in self._inflight:
            future.cancel()
        self._inflight.clear()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _collect_one(self) -> None:
        self.sent.append(self._inflight.popleft().result())

    def _upload(self, number: int, data: bytes) -> Part:
        return self.writer.upload_part(self.key, self.mpu, number, data)
