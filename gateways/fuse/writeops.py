"""Writes of a ``--rw`` mount: create/write (staged, committed on close),
truncate, mkdir, unlink, rmdir, rename and metadata through xattrs.

On a read-only mount every one of them fails with EROFS (the view is a
``ReadOnlyView`` as well, so core refuses them even if a check here were
missing). Permissions are core's: the first call that needs WRITE asks the
view, so a denied create fails at open, not only at close.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

from joist.core.errors import NotFoundError, ReadOnlyError
from joist.core.hierarchy import Node, Replace

from . import attrs
from .cache import parent_of
from .errors import FuseError, guarded
from .handles import ReadHandle, WriteHandle
from .settings import STATS_NAME

if TYPE_CHECKING:
    from .operations import JoistOperations

    _Base = JoistOperations
else:
    _Base = object

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_STATS_PATH = "/" + STATS_NAME


class WriteOps(_Base):
    # ------------------------------------------------------------ helpers
    def _writable(self, path: str | None = None) -> None:
        if self.read_only:
            raise ReadOnlyError("This mount is read-only.")
        if path == _STATS_PATH:
            raise FuseError(errno.EACCES)

    def _changed(self, *paths: str) -> None:
        """Forget what the mount remembers of changed paths and their parents."""
        for path in paths:
            self._nodes.drop_tree(path)
            self._nodes.drop(parent_of(path))
            self._versions.drop_tree(path)
            self._listings.drop_tree(path)
            self._listings.drop(parent_of(path))

    def _retire_readers(self, path: str) -> None:
        # Writes through the mount share the kernel page cache with readers of
        # the old version: those readers must not mix in the new pages.
        for handle in self.handles.on_path(path):
            if isinstance(handle, ReadHandle) and handle.cached:
                handle.stale = True

    def _commit(self, handle: WriteHandle) -> Node | None:
        self.authorize_operation()  # a revoked mount commits nothing, even on release
        node = handle.commit()
        if node is not None:
            self.stats.add("commits")
            self._changed(handle.path)
        return node

    def _stage(self, path: str, fi: Any, handle: WriteHandle) -> int:
        # Written pages land in the file's one page cache: with readers (or
        # another writer) open on the path, this writer goes around the cache.
        busy = any(getattr(h, "cached", False) for h in self.handles.on_path(path))
        handle.cached = not (self.options.direct_io or busy)
        if busy:
            self._retire_readers(path)
            self.kernel.invalidate_now(path)
        fi.fh = self.handles.add(handle)
        fi.keep_cache, fi.direct_io = 0, int(not handle.cached)
        self.stats.add("opens")
        return 0

    # ------------------------------------------------------------ files
    @guarded
    def create(self, path: str, mode: int, fi: Any) -> int:
        self._writable(path)
        writer = self.view.open_write(path)  # checks WRITE on the parent now
        handle = WriteHandle(self.view, path, self.options.staging_dir, writer=writer,
                             dirty=True)
        self._changed(path)
        return self._stage(path, fi, handle)

    def _open_write(self, path: str, fi: Any) -> int:
        self._writable(path)
        node = self.view.stat(path)
        if node.is_dir:
            raise FuseError(errno.EISDIR)
        if attrs.is_link(node):
            raise FuseError(errno.EOPNOTSUPP)
        writer = self.view.open_write(path)  # checks WRITE now, not at close
        truncating = bool(fi.flags & os.O_TRUNC)
        handle = WriteHandle(self.view, path, self.options.staging_dir, writer=writer,
                             dirty=truncating)
        if not truncating:
            try:
                with self.view.open_read(path) as reader:
                    handle.load(reader)
            except BaseException:
                handle.close()
                raise
        return self._stage(path, fi, handle)

    @guarded
    def write(self, path: str | None, data: bytes, offset: int, fi: Any) -> int:
        handle = self._handle(fi)
        if not isinstance(handle, WriteHandle):
            raise FuseError(errno.EBADF)
        written = handle.write(data, offset)
        self.stats.add("writes")
        self.stats.add("bytes_written", written)
        return written

    @guarded
    def truncate(self, path: str | None, length: int, fh: Any = None) -> int:
        handle = self.handles.get(fh.fh) if fh is not None else None
        if handle is None and path is not None:
            handle = self._pending(path)
        if isinstance(handle, WriteHandle):
            handle.truncate(length)
            return 0
        if path is None:
            raise FuseError(errno.EBADF)
        self._writable(path)
        staged = WriteHandle(self.view, path, self.options.staging_dir)
        try:
            if length > 0:
                with self.view.open_read(path) as reader:
                    staged.load(reader)
            staged.truncate(length)
            self._retire_readers(path)
            self._commit(staged)
        finally:
            staged.close()
        return 0

    # ------------------------------------------------------------ namespace
    @guarded
    def mkdir(self, path: str, mode: int) -> int:
        self._writable(path)
        self.view.mkdir(path)
        self._changed(path)
        return 0

    @guarded
    def unlink(self, path: str) -> int:
        self._writable(path)
        pending = self._pending(path)
        try:
            node = self.view.stat(path)
        except NotFoundError:
            if pending is None:
                raise
            pending.dirty = False  # created here and never committed: just forget it
            return 0
        if node.is_dir:
            raise FuseError(errno.EISDIR)
        self.view.remove(path)
        if pending is not None:
            pending.dirty = False
        self._retire_readers(path)
        self._changed(path)
        return 0

    @guarded
    def rmdir(self, path: str) -> int:
        self._writable(path)
        if not self.view.stat(path).is_dir:
            raise FuseError(errno.ENOTDIR)
        self.view.remove(path, recursive=False)
        self._changed(path)
        return 0

    @guarded
    def rename(self, old: str, new: str, flags: int = 0) -> int:
        self._writable(old)
        self._writable(new)
        if flags & RENAME_EXCHANGE:
            raise FuseError(errno.EINVAL)
        pending = self._pending(old)
        if pending is not None:
            self._commit(pending)  # the bytes go where the file goes
        replace = Replace.NONE if flags & RENAME_NOREPLACE else Replace.EMPTY_DIRECTORY
        self.view.move(old, new, replace=replace)  # POSIX's rules are core's
        self.handles.repath(old, new)
        self._retire_readers(new)
        self._changed(old, new)
        return 0

    # ------------------------------------------------------------ metadata
    @guarded
    def setxattr(self, path: str, name: str, value: bytes, options: int,
                 position: int = 0) -> int:
        self._writable(path)
        if not name.startswith(attrs.XATTR_META) or len(name) == len(attrs.XATTR_META):
            raise FuseError(errno.EOPNOTSUPP if not name.startswith("user.")
                            else errno.EPERM)
        self.view.set_metadata(path, {name[len(attrs.XATTR_META):]:
                                      attrs.parse_meta_value(value)})
        self._nodes.drop(path)
        return 0

    @guarded
    def removexattr(self, path: str, name: str) -> int:
        self._writable(path)
        if not name.startswith(attrs.XATTR_META):
            raise FuseError(errno.EOPNOTSUPP if not name.startswith("user.")
                            else errno.EPERM)
        key = name[len(attrs.XATTR_META):]
        if key not in self.view.stat(path).meta:
            raise FuseError(errno.ENODATA)
        self.view.set_metadata(path, {key: None})  # null deletes (Girder's rule)
        self._nodes.drop(path)
        return 0

    # Modes, owners and times are not Joist's to change (access is core's ACL):
    # accepted and ignored on a writable mount so `cp -p` and `touch` work.
    @guarded
    def chmod(self, path: str | None, mode: int) -> int:
        self._writable(path)
        return 0

    @guarded
    def chown(self, path: str | None, uid: int, gid: int) -> int:
        self._writable(path)
        return 0

    @guarded
    def utimens(self, path: str | None, times: Any = None) -> int:
        self._writable(path)
        if path is not None and self._pending(path) is None:
            self._node(path)  # a missing path is ENOENT, as everywhere
        return 0


__all__ = ["WriteOps"]
