"""Options of one mount, from the deployment settings (``[fuse]``) and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from joist.core.settings import Settings

ChunkCacheMode = Literal["auto", "always", "off"]

STATS_NAME = ".joist-stats"
"""A read-only file at the root of every mount: counters as JSON. It is not
listed (the root shows ``collection`` and ``user`` only, as everywhere) but can
be opened by name."""


@dataclass(frozen=True)
class MountOptions:
    mountpoint: Path
    direct_io: bool = False
    attr_timeout: float = 1.0
    entry_timeout: float = 1.0
    read_ahead_kb: int = 1024
    chunk_cache_bytes: int = 1 << 30
    chunk_cache: ChunkCacheMode = "auto"
    """``auto``: blobs with no local descriptor (S3, GridFS) are read through
    the on-disk chunk cache; ``always`` also local ones (a filesystem
    assetstore on a slow network disk); ``off``: never."""
    cache_lifetime: float = 30.0
    """Seconds looked-up nodes and listings are reused while the store's
    change counters stand still (a change by any process empties them at the
    next operation; ``HierarchyView.cache_generation``). 0, or a zero
    ``attr_timeout``/``entry_timeout``/core ``cache_ttl``: none kept."""
    chunk_size: int = 4 << 20
    """Bytes per chunk of the chunk cache: a fetch from the backend, a file
    of the cache, one descriptor kept open for warm reads."""
    chunk_read_ahead: int = 4
    """Chunks fetched in the background past a sequential read through the
    chunk cache (0: none)."""
    cache_dir: Path | None = None
    staging_dir: Path | None = None
    """Where ``--rw`` stages written bytes until the file is closed."""
    allow_other: bool = False
    idle_readers: int = 4096
    """Blob readers kept open after their file is closed, for the next open of
    the same version (each holds a descriptor, for at most a minute)."""
    debug: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, mountpoint: str | Path, **overrides: object
                      ) -> MountOptions:
        fuse = settings.fuse
        values: dict[str, object] = {
            "attr_timeout": float(fuse.attr_timeout),
            "entry_timeout": float(fuse.entry_timeout),
            "read_ahead_kb": int(fuse.read_ahead_kb),
            "chunk_cache_bytes": int(fuse.chunk_cache_mb) << 20,
            "cache_dir": settings.data_path / "fuse-cache",
            "staging_dir": settings.data_path / "fuse-staging",
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(mountpoint=Path(mountpoint).absolute(), **values)  # type: ignore[arg-type]


__all__ = ["STATS_NAME", "ChunkCacheMode", "MountOptions"]
