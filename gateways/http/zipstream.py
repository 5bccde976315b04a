"""Streamed zip archives (item, folder, collection and resource downloads).

``zipfile`` writes to a non-seekable sink with data descriptors and ZIP64 as
needed; we hand it a sink that collects what it wrote, and yield that between
entries and blocks, so nothing is built in memory beyond one block.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from joist.core.assetstores.base import BlobReader

BLOCK = 1 << 20
ZIP64_LIMIT = (1 << 31) - 1


class _Sink:
    """A write-only, non-seekable file for zipfile; drained by the generator."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


@dataclass
class ZipMember:
    """One member: a path inside the archive and how to get its bytes."""

    path: str
    size: int
    open: Callable[[], BlobReader] | None = None  # None: inline data
    data: bytes = b""
    mtime: float | None = None


def stream_zip(entries: Iterable[ZipMember]) -> Iterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED,  # type: ignore[arg-type]
                         allowZip64=True) as archive:
        for entry in entries:
            info = zipfile.ZipInfo(entry.path, date_time=time.localtime(
                entry.mtime if entry.mtime else time.time())[:6])
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.file_size = entry.size
            with archive.open(info, mode="w", force_zip64=entry.size > ZIP64_LIMIT) as member:
                if entry.open is None:
                    member.write(entry.data)
                else:
                    reader = entry.open()
                    try:
                        offset = 0
                        # Fresh blocks, not a reused buffer: the sink keeps what
                        # zipfile writes, and bytes are kept without a copy.
                        for block in reader.iter_range(0, entry.size, BLOCK):
                            member.write(block)
                            offset += len(block)
                            chunk = sink.drain()
                            if chunk:
                                yield chunk
                        if offset < entry.size:
                            raise OSError(f"{entry.path}: stored bytes end early")
                    finally:
                        reader.close()
            chunk = sink.drain()
            if chunk:
                yield chunk
    tail = sink.drain()
    if tail:
        yield tail


def unique_name(name: str, taken: set[str]) -> str:
    """Zip member names must not repeat inside one directory."""
    if name not in taken:
        taken.add(name)
        return name
    stem, dot, ext = name.rpartition(".")
    for n in range(1, 100000):
        candidate = f"{stem} ({n}).{ext}" if dot and stem else f"{name} ({n})"
        if candidate not in taken:
            taken.add(candidate)
            return candidate
    raise ValueError("too many entries with one name")


def safe_member(name: str) -> str:
    """A path segment that cannot climb out of its directory in an archive."""
    name = name.replace("/", "_").replace("\\", "_")
    return "_" + name if name in (".", "..") else name


__all__ = ["ZipMember", "safe_member", "stream_zip", "unique_name"]
