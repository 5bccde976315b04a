"""The filesystem: fusepy-style operations over one ``HierarchyView``.

Each operation parses what the kernel asked, calls the view, and formats the
answer; every one is wrapped by ``errors.guarded``, the gateway's single
error choke point. Writes live in ``writeops.py``.

Kernel page cache: an open keeps the kernel's cached pages (``keep_cache``)
only when the file's content version (file id, etag, size) is the one opened
last time. When a newer version shows up, the kernel is told to drop what it
holds for the path, and read handles still on the old version that read
through the page cache fail with ESTALE from then on, so no reader ever gets
a mix of old and new bytes (``--direct-io`` handles bypass the cache and keep
reading their own version).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from joist.core.auth import LiveGrant
from joist.core.errors import StorageError
from joist.core.hierarchy import HierarchyView, Node, Reader

from . import attrs
from .bufvec import give_bytes, give_fd
from .cache import Listings, NodeCache, Stamp, Versions
from .chunkcache import CachedSource, ChunkCache
from .dirops import DirOps
from .errors import FuseError, guarded
from .handles import (
    HandleTable,
    ReaderPool,
    ReadHandle,
    StatsHandle,
    WriteHandle,
)
from .libfuse import KernelLink
from .readahead import Prefetcher, ReadAhead
from .settings import STATS_NAME, MountOptions
from .stats import Stats
from .writeops import WriteOps

log = logging.getLogger("joist.fuse")

STATS_PATH = "/" + STATS_NAME
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC


class JoistOperations(DirOps, WriteOps):
    """Mounted with ``raw_fi``: ``fi`` arguments are ``fuse_file_info``
    structs whose ``fh`` is a number from ``self.handles``.

    Attribute names matter: mfusepy registers a callback for every attribute
    named like a FUSE operation (``lock``, ``flush``, ``poll``...).
    """

    use_ns = True

    def __init__(self, view: HierarchyView, options: MountOptions, *,
                 kernel: KernelLink | None = None, live: LiveGrant | None = None) -> None:
        self._view = view
        # Core's holder of the mount's grant, asked before every operation:
        # revoked credentials get EACCES, changed rights a view to match.
        self._live = live
        self._view_lock = threading.Lock()  # guards _view, replaced when the grant's rights change
        self.options = options
        self.read_only = view.read_only  # the one flag: core's read-only view
        self.stats = Stats()
        self.kernel = kernel or KernelLink()
        self.handles = HandleTable()
        self.on_mounted: Callable[[], None] | None = None
        # Nodes and listings serve while the store's counters stand still
        # (stamped with the view's cache generation), so a lookup, getattr or
        # open of a path listed or seen before costs no path resolution: the
        # kernel's own 1 s timeouts then cost a dictionary read, not queries.
        lifetime = options.cache_lifetime if view.cache_ttl() > 0 else 0.0
        self._nodes = NodeCache(lifetime if options.attr_timeout > 0 else 0.0)
        self._listings = Listings(lifetime if options.entry_timeout > 0 else 0.0)
        self._versions = Versions()
        self._readers = ReaderPool(options.idle_readers)
        self._uid, self._gid = os.getuid(), os.getgid()
        self._chunks: ChunkCache | None = None
        self._prefetcher: Prefetcher | None = None
        self._chunks_lock = threading.Lock()  # guards _chunks and _prefetcher (made on first use)
        self.stats.source(self._live_counters)

    def sweep_caches(self, now: float | None = None) -> int:
        """Drop expired nodes and listings (for ``core.memory.Reclaimer``)."""
        return self._nodes.sweep(now) + self._listings.sweep(now)

    # ------------------------------------------------------------ principal
    @property
    def view(self) -> HierarchyView:
        return self._view

    def authorize_operation(self) -> None:
        """Cheap unless something auth-related changed (see core's grants)."""
        if self._live is None:
            return
        principal = self._live.principal()
        view = self._view
        if principal is not view.principal and principal != view.principal:
            with self._view_lock:
                if principal != self._view.principal:
                    self._view = view.for_principal(principal)
                    # What the old rights could see is not what the new ones can.
                    self._nodes.clear()
                    self._listings.clear()

    # ------------------------------------------------------------ helpers
    def _live_counters(self) -> dict[str, Any]:
        cache = self.view.cache_stats()
        out: dict[str, Any] = {
            "open_handles": self.handles.count(), "path_cache_hits": cache.hits,
            "path_cache_misses": cache.misses, "kernel_notifications": self.kernel.sent,
            "read_only": self.read_only, "direct_io": self.options.direct_io,
            "principal": self.view.principal.label(),
        }
        if self._chunks is not None:
            out.update(chunk_cache_hits=self._chunks.hits,
                       chunk_cache_misses=self._chunks.misses,
                       chunk_cache_bytes_fetched=self._chunks.bytes_fetched,
                       chunk_read_ahead=self._prefetcher.fetched if self._prefetcher else 0)
        return out

    def _stamp(self) -> Stamp:
        """The view to use for one operation, with its cache generation read
        before anything is derived through it (see ``cache.Stamped``)."""
        view = self.view
        return view, view.cache_generation()

    def _node(self, path: str) -> Node:
        stamp = self._stamp()
        node = self._nodes.fresh(path, stamp)
        if node is not None:
            self.stats.add("lookup_cache_hits")
            return node
        self.stats.add("lookups")
        node = stamp[0].stat(path)
        self._seen(path, node, stamp)
        return node

    def _seen(self, path: str, node: Node, stamp: Stamp) -> None:
        """Remember a fresh node (derived at ``stamp``); a newer version of a
        file the kernel may hold pages of makes it drop them (once per new
        version)."""
        self._nodes.keep(path, node, stamp)
        if node.is_dir:
            return
        known, current = self._versions.get(path), attrs.version(node)
        if known is not None and known != current and known != ("seen", current):
            self._superseded(path, current)
            self._versions.put(path, ("seen", current))  # not loaded: no keep_cache
            self.kernel.invalidate(path)

    def _superseded(self, path: str, current: Any) -> None:
        """Handles reading an older version through the page cache must not
        read further: the cache is about to hold other bytes."""
        self.stats.add("invalidations")
        for handle in self.handles.on_path(path):
            if isinstance(handle, ReadHandle) and handle.cached and \
                    attrs.version(handle.node) != current:
                handle.stale = True

    def _shares_cache_badly(self, path: str, current: Any) -> bool:
        """Whether a cached open of version ``current`` would share the file's
        one page cache with a live handle on other bytes (an older version, or
        a file being written): it must then bypass the cache."""
        for handle in self.handles.on_path(path):
            # Stale handles count too: cached pages reach them without asking us.
            if not getattr(handle, "cached", False):
                continue
            if isinstance(handle, WriteHandle) or attrs.version(handle.node) != current:
                return True
        return False

    def _attrs(self, node: Node) -> dict[str, Any]:
        writable = not self.read_only and node.writable
        return attrs.node_attrs(node, writable=writable, uid=self._uid, gid=self._gid)

    def _stats_attrs(self, size: int) -> dict[str, Any]:
        return attrs.file_attrs(size, writable=False, uid=self._uid, gid=self._gid,
                                ino=attrs.STATS_INODE, mtime_ns=int(self.stats.started * 1e9))

    def _pending(self, path: str) -> WriteHandle | None:
        for handle in self.handles.on_path(path):
            if isinstance(handle, WriteHandle):
                return handle
        return None

    def _handle(self, fi: Any) -> Any:
        handle = self.handles.get(fi.fh) if fi is not None else None
        if handle is None:
            raise FuseError(errno.EBADF)
        return handle

    def _chunk_cache(self) -> ChunkCache:
        with self._chunks_lock:
            if self._chunks is None:
                directory = self.options.cache_dir or (self.options.mountpoint.parent /
                                                       ".joist-fuse-cache")
                self._chunks = ChunkCache(directory / "chunks", self.options.chunk_cache_bytes,
                                          chunk_size=self.options.chunk_size)
                self._prefetcher = Prefetcher(self._chunks)
            return self._chunks

    def _cached_source(self, node: Node, reader: Reader) -> CachedSource:
        key = f"sha512:{node.sha512}" if node.sha512 else f"etag:{node.etag}"
        cache = self._chunk_cache()
        ahead = None
        if self._prefetcher is not None and self.options.chunk_read_ahead > 0 and \
                reader.size > cache.chunk_size:
            ahead = ReadAhead(self._prefetcher, key, reader, self.options.chunk_read_ahead)
        return CachedSource(cache, key, reader, ahead)

    # ------------------------------------------------------------ lifecycle
    def init_with_config(self, conn_info: Any, config: Any) -> None:
        if self.on_mounted is not None:
            # Off the request loop: the callback may touch the mount or the store.
            threading.Thread(target=self.on_mounted, name="fuse-mounted", daemon=True).start()

    def destroy(self, path: str) -> None:
        for handle in self.handles.all():
            if isinstance(handle, WriteHandle):
                try:
                    self.authorize_operation()  # revoked: nothing is committed
                    handle.commit()
                except Exception:
                    log.exception("could not commit %s at unmount", handle.path)
            handle.close()
        self._readers.clear()
        if self._prefetcher is not None:
            self._prefetcher.close()
        if self._chunks is not None:
            self._chunks.close()

    # ------------------------------------------------------------ attributes
    @guarded
    def getattr(self, path: str | None, fh: Any = None) -> dict[str, Any]:
        handle = self.handles.get(fh.fh) if fh is not None else None
        if isinstance(handle, WriteHandle):
            return self._write_attrs(handle)
        if path is None and handle is not None:
            path = handle.path
        if path == STATS_PATH:
            return self._stats_attrs(len(self.stats.render()))
        if path is None:
            raise FuseError(errno.ENOENT)
        pending = self._pending(path)
        if pending is not None:
            return self._write_attrs(pending)
        return self._attrs(self._node(path))

    def _write_attrs(self, handle: WriteHandle) -> dict[str, Any]:
        ino = attrs.inode(handle.node) if handle.node is not None else \
            attrs.path_inode(handle.path)
        return attrs.file_attrs(handle.size, writable=True, uid=self._uid, gid=self._gid,
                                ino=ino, mtime_ns=handle.mtime_ns)

    @guarded
    def access(self, path: str, amode: int) -> int:
        if path == STATS_PATH:
            if amode & (os.W_OK | os.X_OK):
                raise FuseError(errno.EACCES)
            return 0
        if self._pending(path) is not None:
            return 0
        node = self._node(path)
        if amode & os.W_OK:
            if self.read_only:
                raise FuseError(errno.EROFS)
            if not node.writable:
                raise FuseError(errno.EACCES)
        if amode & os.X_OK and not node.is_dir:
            raise FuseError(errno.EACCES)
        return 0

    @guarded
    def readlink(self, path: str) -> str:
        node = self._node(path)
        if not attrs.is_link(node):
            raise FuseError(errno.EINVAL)
        return str(node.link_url)

    @guarded
    def statfs(self, path: str) -> dict[str, int]:
        fs = self.view.statfs(path)  # below a user or collection: what its quota leaves
        size = fs.block_size
        return {"f_bsize": size, "f_frsize": size, "f_blocks": (fs.total or 0) // size,
                "f_bfree": (fs.free or 0) // size, "f_bavail": (fs.free or 0) // size,
                "f_files": 0, "f_ffree": 0, "f_favail": 0, "f_namemax": fs.max_name}

    # ------------------------------------------------------------ xattrs
    @guarded
    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        if not name.startswith("user."):
            # security.*, system.posix_acl_*: unsupported here. `ls -l` asks for
            # them on every file and stops asking for the whole mount on ENOTSUP.
            raise FuseError(errno.EOPNOTSUPP)
        self.stats.add("xattr_reads")
        if path == STATS_PATH or self._pending(path) is not None:
            raise FuseError(errno.ENODATA)
        value = attrs.xattr_value(self._node(path), name)
        if value is None:
            raise FuseError(errno.ENODATA)
        return value

    @guarded
    def listxattr(self, path: str) -> list[str]:
        if path == STATS_PATH or self._pending(path) is not None:
            return []
        return attrs.xattr_names(self._node(path))

    # ------------------------------------------------------------ files
    @guarded
    def open(self, path: str, fi: Any) -> int:
        if path == STATS_PATH:
            if fi.flags & _WRITE_FLAGS:
                raise FuseError(errno.EROFS if self.read_only else errno.EACCES)
            fi.fh = self.handles.add(StatsHandle(self.stats.render()))
            fi.direct_io, fi.keep_cache, fi.noflush = 1, 0, 1  # a snapshot per open
            return 0
        if fi.flags & _WRITE_FLAGS:
            return self._open_write(path, fi)
        node, reader, stamp = self._reader_for(path)
        current = attrs.version(node)
        try:
            return self._open_read(path, fi, node, reader, current, stamp)
        except BaseException:
            self._readers.give_back(current)
            raise

    def _open_read(self, path: str, fi: Any, node: Node, reader: Reader, current: Any,
                   stamp: Stamp) -> int:
        known = self._versions.get(path)
        if known is not None and known != current:
            self._superseded(path, current)
            self.kernel.invalidate_now(path)
        self._nodes.keep(path, node, stamp)
        # The kernel keeps one page cache per file: a handle shares it only with
        # handles on the same bytes, else it reads around it (direct I/O).
        direct = self.options.direct_io or self._shares_cache_badly(path, current)
        if not direct:
            self._versions.put(path, current)  # what the page cache will hold
        handle = ReadHandle(path, node, reader, fd=self._descriptor(reader), source=None,
                            cached=not direct, pool=self._readers, key=current)
        if handle.fd is None and self.options.chunk_cache != "off":
            handle.source = self._cached_source(node, reader)
        keep = known == current and not direct
        # noflush: closing a read-only file needs no FLUSH round trip.
        fi.keep_cache, fi.direct_io, fi.noflush = int(keep), int(direct), 1
        fi.fh = self.handles.add(handle)
        self.stats.add("opens")
        self.stats.add("page_cache_kept", int(keep))
        return 0

    def _reader_for(self, path: str) -> tuple[Node, Reader, Stamp]:
        """The node, a reader for ``path`` and the stamp read before either,
        with the view's access check either way: a pooled reader of the node's
        version (the node as listed or looked up at the current stamp, else
        from a ``stat``), else a new one from ``open_read`` (one path lookup,
        not two)."""
        stamp = self._stamp()
        view = stamp[0]
        node = self._nodes.fresh(path, stamp)
        if node is None and self._readers.known(path):
            node = view.stat(path)
        if node is not None:
            if node.is_dir:
                raise FuseError(errno.EISDIR)
            reader = self._readers.take(attrs.version(node))
            if reader is not None:
                return node, reader, stamp
        fresh = self._open_reader(view, path)
        return fresh.node, self._readers.add(attrs.version(fresh.node), fresh, path), stamp

    def _open_reader(self, view: HierarchyView, path: str) -> Any:
        try:
            # A cached entry naming bytes a replacement released is core's to
            # retry (``open_read`` looks the path up afresh once).
            return view.open_read(path)
        except StorageError:
            self._nodes.drop(path)  # this mount's attributes of it are as stale
            raise

    def _descriptor(self, reader: Any) -> int | None:
        if self.options.chunk_cache == "always":
            return None
        try:
            return int(reader.fileno())
        except (OSError, ValueError, io.UnsupportedOperation):
            return None

    def _read(self, fi: Any, size: int, offset: int) -> tuple[int, int, int] | bytes:
        """(fd, position, length) for libfuse to pread, or the bytes themselves."""
        handle = self._handle(fi)
        self.stats.add("reads")
        if isinstance(handle, ReadHandle):
            if handle.stale:
                self.stats.add("stale_reads")
                raise FuseError(errno.ESTALE)
            if handle.fd is not None:
                length = max(0, min(size, handle.size - offset))
                self.stats.add("fd_reads")
                self.stats.add("bytes_read", length)
                return handle.fd, offset, length
            if handle.source is not None:
                self.stats.add("chunk_reads")
                # A warm chunk is answered like a local blob: its file's
                # descriptor, for libfuse to read (see chunkcache).
                located = handle.source.locate(offset, size)
                if located is not None:
                    self.stats.add("bytes_read", located[2])
                    return located
        data = handle.read(offset, size)
        self.stats.add("bytes_read", len(data))
        return bytes(data)

    @guarded
    def read_buf(self, path: str | None, bufpp: Any, size: int, offset: int, fi: Any) -> int:
        got = self._read(fi, size, offset)
        if isinstance(got, bytes):
            return give_bytes(bufpp, got)
        fd, position, length = got
        return give_fd(bufpp, fd, position, length) if length else give_bytes(bufpp, b"")

    @guarded
    def read(self, path: str | None, size: int, offset: int, fi: Any) -> bytes:
        got = self._read(fi, size, offset)
        if isinstance(got, bytes):
            return got
        fd, position, length = got
        return os.pread(fd, length, position) if length else b""

    @guarded
    def flush(self, path: str | None, fi: Any) -> int:
        handle = self._handle(fi)
        if isinstance(handle, WriteHandle):
            self._commit(handle)
        return 0

    @guarded
    def release(self, path: str | None, fi: Any) -> int:
        handle = self.handles.pop(fi.fh)
        if handle is None:
            return 0
        try:
            if isinstance(handle, WriteHandle) and handle.dirty:
                try:
                    self._commit(handle)
                except Exception:
                    # Nobody waits for a release: the error can only be logged.
                    log.exception("could not commit %s on release", handle.path)
        finally:
            handle.close()
        return 0

    @guarded
    def fsync(self, path: str | None, datasync: int, fi: Any) -> int:
        handle = self._handle(fi)
        if isinstance(handle, WriteHandle):
            self._commit(handle)
        return 0


__all__ = ["STATS_PATH", "JoistOperations"]
