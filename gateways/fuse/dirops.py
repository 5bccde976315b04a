"""Directories of the mount: ``opendir``/``readdir``/``releasedir``.

Listings are served in kernel-sized pages with the attributes of every entry
(``JoistFuse.readdir_fuse_3`` hands them to the kernel as readdirplus), and
each listed node primes the mount's node cache, so `ls -l` needs no lookups.
"""

from __future__ import annotations

import errno
import stat
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import attrs
from .cache import Stamp, parent_of
from .errors import FuseError, guarded
from .handles import DirHandle, DirRow

if TYPE_CHECKING:
    from .operations import JoistOperations

    _Base = JoistOperations
else:
    _Base = object

LISTING_LIMIT = 10_000
"""Complete listings up to this many entries are kept for reuse (see ``_listing``)."""


class DirOps(_Base):
    @guarded
    def opendir(self, path: str) -> int:
        node = self._node(path)
        if not node.is_dir:
            raise FuseError(errno.ENOTDIR)
        dir_attrs = self._attrs(node)
        return self.handles.add(DirHandle(path, lambda first: self._listing(path, dir_attrs,
                                                                             first)))

    def _listing(self, path: str, dir_attrs: dict[str, Any], first: int) -> Iterator[DirRow]:
        """Entries from position ``first`` (0 is ``.``, 1 ``..``); each carries
        the cookie of the next one, which the kernel hands back to go on.

        A complete listing of a folder of at most ``LISTING_LIMIT`` entries is
        kept while the store's counters stand still (see ``cache``), so `ls
        -lR` or `find` after another one costs no query."""
        stamp = self._stamp()
        cached = self._listings.fresh(path, stamp)
        if cached is not None:
            self.stats.add("listing_cache_hits")
            yield from cached[first:]
            return
        entries: list[DirRow] | None = [] if first == 0 else None
        for entry in self._list_fresh(path, dir_attrs, first, stamp):
            if entries is not None:
                entries.append(entry)
                if len(entries) > LISTING_LIMIT:
                    entries = None
            yield entry
        if entries is not None:
            self._listings.keep(path, entries, stamp)

    def _list_fresh(self, path: str, dir_attrs: dict[str, Any], first: int,
                    stamp: Stamp) -> Iterator[DirRow]:
        if first <= 0:
            yield ".", dir_attrs, 1
        if first <= 1:
            # A zero inode would make readdir(3) skip the entry.
            parent = self._node(parent_of(path)) if path != "/" else None
            yield "..", {"st_mode": stat.S_IFDIR,
                         "st_ino": attrs.inode(parent) if parent else 1}, 2
        start = max(first, 2)
        for index, node in enumerate(stamp[0].listdir(path, offset=start - 2), start=start):
            self._seen(node.path, node, stamp)
            self.stats.add("listed")
            yield node.segment, self._attrs(node), index + 1

    @guarded
    def readdir_page(self, fh: int, offset: int) -> list[DirRow]:
        """Entries after ``offset`` for ``JoistFuse.readdir_fuse_3``."""
        handle = self.handles.get(fh)
        if not isinstance(handle, DirHandle):
            raise FuseError(errno.EBADF)
        self.stats.add("readdirs")
        return handle.page(offset)

    def readdir(self, path: str, fh: int) -> list[tuple[str, dict[str, Any], int]]:
        """The whole listing (mfusepy's plain readdir; used without JoistFuse)."""
        out: list[DirRow] = []
        offset = 0
        for _ in range(10**7):
            page = self.readdir_page(fh, offset)
            if not page:
                break
            out.extend(page)
            offset = page[-1][2]
        return [(name, entry_attrs, 0) for name, entry_attrs, _ in out]

    @guarded
    def releasedir(self, path: str | None, fh: int) -> int:
        handle = self.handles.pop(fh)
        if handle is not None:
            handle.close()
        return 0


__all__ = ["LISTING_LIMIT", "DirOps"]
