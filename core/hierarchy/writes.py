"""Writes through the hierarchy: mkdir, open_write, remove, move, copy, metadata.

Each translates a path operation into service calls (which check the ACL) and
drops the cache keys it changed. Paths name what WebDAV and a mount see, so a
one-file item shown as a file moves, copies and is removed as that file.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .. import acl
from ..errors import (
    AccessDeniedError,
    ContainerGoneError,
    ExistsError,
    InvalidPathError,
    IsDirectoryError,
    NotDirectoryError,
    NotEmptyError,
    NotFoundError,
    UnsupportedError,
    ValidationError,
)
from ..services.files import guess_mime
from ..validation import validate_mime_type, validate_name
from .io import Writer
from .nodes import COLLECTION, COLLECTIONS, FILE, FOLDER, ITEM, USER, VIRTUAL_KINDS, Node
from .paths import join_path, parent_and_name
from .resolver import Position

_OVERWRITE_ATTEMPTS = 16


class Replace(StrEnum):
    """What a move or copy may do to an existing destination."""

    NONE = "none"                        # nothing: ExistsError
    EMPTY_DIRECTORY = "empty-directory"  # POSIX rename(2): a file for a file, a
                                         # directory for an empty directory
    ANY = "any"                          # whatever stands there goes first (WebDAV)

if TYPE_CHECKING:
    from ..services import Services
    from .resolver import Resolver


class WriteOps:
    """Mixed into ``HierarchyView``; these are the view's members it uses."""

    services: Services
    resolver: Resolver
    _reader: Any
    _writer: Any
    _owner: Any

    def node_for(self, names: list[str], entry: Position) -> Node:
        raise NotImplementedError

    def _chain(self, path: str) -> tuple[list[str], list[Position]]:
        raise NotImplementedError

    def _entry(self, path: str) -> tuple[list[str], Position]:
        raise NotImplementedError

    # ------------------------------------------------------------ helpers
    def _parent(self, path: str) -> tuple[list[str], Position, str]:
        parent_names, name = parent_and_name(path)
        chain = self.resolver.resolve(parent_names, self._reader)
        parent = chain[-1]
        if not parent.is_dir:
            raise NotDirectoryError("Not a directory.")
        return parent_names, parent, validate_name(name)

    def _lookup(self, parent: Position, name: str) -> Position | None:
        try:
            return self.resolver.child(parent, name, self._reader, fresh=True)
        except NotFoundError:
            return None

    def _write_chain(self, path: str) -> tuple[list[str], list[Position]]:
        """The chain to what a write acts on, its last step read afresh."""
        names, chain = self._chain(path)
        if len(chain) > 1:
            chain[-1] = self.resolver.child(chain[-2], names[-1], self._reader, fresh=True)
        return names, chain

    def _forget(self, parent: Position, name: str) -> None:
        self.resolver.forget(parent, name)

    def stat(self, path: str) -> Node:
        raise NotImplementedError

    def _fresh(self, names: list[str]) -> Node:
        parent = self.resolver.resolve(names[:-1], self._reader)[-1]
        self._forget(parent, names[-1])
        return self.node_for(names, self.resolver.child(parent, names[-1], self._reader))

    # ------------------------------------------------------------ may write
    def require_writable(self, path: str) -> Node | None:
        """The write question, asked before writing: the node at ``path`` if
        the principal may change it; None if nothing is there (creating it is
        decided by its parent, at the write). Refusals are the write's own:
        ``ReadOnlyError`` from a read-only view, ``AuthenticationError`` for
        anonymous, ``AccessDeniedError`` otherwise; the virtual directories
        (``/``, ``/user``, ``/collection``) are never writable."""
        try:
            node = self.stat(path)
        except (NotFoundError, NotDirectoryError):
            return None
        if node.kind in VIRTUAL_KINDS or not node.writable:
            raise acl.denial(self._writer, acl.WRITE, str(node.kind), node.ref)
        return node

    # ------------------------------------------------------------ create
    def mkdir(self, path: str) -> Node:
        parent_names, parent, name = self._parent(path)
        if self._lookup(parent, name) is not None:
            raise ExistsError("File exists.")
        self._make_dir(parent, name)
        return self._fresh([*parent_names, name])

    def _make_dir(self, parent: Position, name: str, meta: dict[str, Any] | None = None) -> None:
        """A collection or folder named ``name`` in ``parent``, with ``meta``,
        in one commit where the engine can."""
        svc = self.services
        if parent.kind == COLLECTIONS:
            with self._atomically():
                new = svc.collections.create(self._writer, name)
                if meta:
                    svc.collections.set_metadata(self._writer, new, meta)
        elif parent.kind in (USER, COLLECTION, FOLDER):
            assert parent.doc is not None
            svc.folders.create(self._writer, parent.kind, parent.doc["_id"], name,
                               metadata=meta or None)
        elif parent.kind == ITEM:
            raise UnsupportedError("Items hold files, not folders.")
        else:
            raise AccessDeniedError("Folders cannot be created here.")

    def open_write(self, path: str, *, mime_type: str | None = None) -> Writer:
        """A writer whose bytes replace (or create) the file at ``path`` when
        committed: a new one-file item in a folder, or a file in an item."""
        parent_names, parent, name = self._parent(path)
        existing = self._lookup(parent, name)
        if existing is not None and existing.is_dir:
            raise IsDirectoryError("Is a directory.")
        uploads = self.services.uploads
        try:  # a path-based client's type is a hint: a bad one is dropped, not fatal
            mime_type = validate_mime_type(mime_type)
        except ValidationError:
            mime_type = None
        if existing is not None:
            assert existing.file is not None
            step = uploads.begin_replace(self._writer, existing.file, None)
        elif parent.kind in (FOLDER, ITEM):
            assert parent.doc is not None
            step = uploads.begin(self._writer, parent.kind, parent.doc["_id"], name, None,
                                 mime_type=mime_type or guess_mime(name),
                                 on_collision="replace")
        else:
            raise AccessDeniedError("Files must be inside a folder.")
        assert step.upload is not None
        names = [*parent_names, name]

        def committed(_file: dict[str, Any]) -> Node:
            self._forget(parent, name)
            return self._fresh(names)

        return Writer(uploads, self._writer, step.upload, committed)

    # ------------------------------------------------------------ remove
    def remove(self, path: str, *, recursive: bool = False) -> None:
        names, chain = self._write_chain(path)
        entry, parent = chain[-1], chain[-2] if len(chain) > 1 else None
        svc, who = self.services, self._owner
        doc = entry.doc
        if entry.kind == COLLECTION and doc is not None:
            if not recursive and svc.tree.store.folders.find_one({"parentId": doc["_id"]}):
                raise NotEmptyError("Collection is not empty.")
            svc.removal.delete_collection(who, doc)
        elif entry.kind == FOLDER and doc is not None:
            svc.removal.delete_folder(who, doc, recursive=recursive)
        elif entry.kind == ITEM and doc is not None:
            if entry.is_dir and not recursive and \
                    svc.tree.store.files.find_one({"itemId": doc["_id"]}):
                raise NotEmptyError("Directory not empty.")
            svc.removal.delete_item(self._writer, doc)
        elif entry.kind == FILE and doc is not None:
            svc.files.delete(self._writer, doc)
            if parent is not None and parent.doc is not None:
                self._forget(chain[-3], parent.doc["name"])  # its layout may change
        else:
            raise AccessDeniedError("This cannot be removed here.")
        assert parent is not None
        self._forget(parent, names[-1])

    # ------------------------------------------------------------ move/copy
    def _target(self, src: str, dst: str, replace: Replace
                ) -> tuple[list[str], Position, list[str], Position, Position, str]:
        src_names, chain = self._write_chain(src)
        if len(src_names) < 2:
            raise AccessDeniedError("This cannot be moved or copied.")
        dst_parent_names, dst_parent, dst_name = self._parent(dst)
        dst_names = [*dst_parent_names, dst_name]
        if dst_names == src_names:
            raise ValidationError("Source and destination are the same.")
        if dst_names[:len(src_names)] == src_names:
            raise InvalidPathError("Cannot move or copy a directory into itself.")
        existing = self._lookup(dst_parent, dst_name)
        if existing is not None:
            self._may_replace(chain[-1], existing, replace)
            try:
                self.remove(join_path(dst_names), recursive=True)
            except NotFoundError:
                self._forget(dst_parent, dst_name)  # a concurrent writer removed it
        return src_names, chain[-1], dst_names, chain[-2], dst_parent, dst_name

    def _may_replace(self, source: Position, existing: Position, replace: Replace) -> None:
        """May ``existing`` go to make room for ``source``?"""
        if replace is Replace.NONE:
            raise ExistsError("Destination exists.")
        if replace is Replace.EMPTY_DIRECTORY:  # POSIX rename(2)
            if existing.is_dir and not source.is_dir:
                raise IsDirectoryError("Is a directory.")
            if source.is_dir and not existing.is_dir:
                raise NotDirectoryError("Not a directory.")
            if existing.is_dir and not self._is_empty(existing):
                raise NotEmptyError("Directory not empty.")

    def _is_empty(self, entry: Position) -> bool:
        """Holds nothing at all, readable or not (a replace removes everything)."""
        store, doc = self.services.tree.store, entry.doc
        assert doc is not None
        if entry.kind == ITEM:
            return store.files.find_one({"itemId": doc["_id"]}, projection=["_id"]) is None
        if entry.kind == FOLDER and store.items.find_one(
                {"folderId": doc["_id"]}, projection=["_id"]) is not None:
            return False
        return store.folders.find_one({"parentId": doc["_id"]}, projection=["_id"]) is None

    def _overwriting(self, replace: Replace, act: Callable[[], Node]) -> Node:
        """``act`` again when, replacing, a concurrent writer took the freed
        destination first: last writer wins, as with PUT. Bounded: each retry
        means another writer committed."""
        for _ in range(_OVERWRITE_ATTEMPTS - 1):
            try:
                return act()
            except (ExistsError, ContainerGoneError):
                if replace is Replace.NONE:  # (a concurrent writer removed what we made)
                    raise
        return act()

    def move(self, src: str, dst: str, *, replace: Replace = Replace.NONE) -> Node:
        """Move (and rename) ``src`` to ``dst``; what may stand at ``dst``
        says ``replace``."""
        return self._overwriting(replace, lambda: self._move(src, dst, replace))

    def _move(self, src: str, dst: str, replace: Replace) -> Node:
        src_names, entry, dst_names, src_parent, dst_parent, name = \
            self._target(src, dst, replace)
        svc, who = self.services, self._writer
        doc = entry.doc
        assert doc is not None
        if entry.kind == COLLECTION and dst_parent.kind == COLLECTIONS:
            svc.collections.update(who, doc, name=name)
        elif entry.kind == FOLDER and dst_parent.kind in (USER, COLLECTION, FOLDER):
            assert dst_parent.doc is not None
            svc.moves.move_folder(who, doc, dst_parent.kind, dst_parent.doc, name=name)
        elif entry.kind in (ITEM, FILE) and dst_parent.kind in (FOLDER, ITEM):
            self._move_leaf(entry, dst_parent, name)
        else:
            raise AccessDeniedError("It cannot be moved there.")
        self._forget(src_parent, src_names[-1])
        if src_parent.kind == ITEM and src_parent.doc is not None:
            self._forget_item(src_parent)
        return self._fresh(dst_names)

    def _atomically(self) -> AbstractContextManager[None]:
        """One commit for a few writes where the engine can (SQLite): no one
        sees a half-made item (empty, or its file not yet renamed), which
        would show as a directory. On MongoDB the calls run one by one."""
        return self.services.tree.store.engine.grouped()

    def _forget_item(self, item_entry: Position) -> None:
        assert item_entry.doc is not None and item_entry.folder is not None
        self.resolver.cache.drop((FOLDER, item_entry.folder["_id"], item_entry.doc["name"]))

    def _move_leaf(self, entry: Position, dst_parent: Position, name: str) -> None:
        svc, who = self.services, self._writer
        doc, target = entry.doc, dst_parent.doc
        assert doc is not None and target is not None
        if entry.kind == ITEM and dst_parent.kind == FOLDER:
            with self._atomically():
                svc.moves.move_item(who, doc, target, name=name, rename=False)
                if not entry.is_dir and entry.file is not None:
                    svc.files.update(who, entry.file, name=name)  # stays one same-named file
            return
        file = entry.file
        if file is None:
            raise UnsupportedError("An item directory cannot go inside another item.")
        if dst_parent.kind == FOLDER:
            try:
                with self._atomically():
                    item = svc.items.create(who, target, name, rename=False)
                    svc.files.move_to_item(who, file, item, name=name)
            except NotFoundError:  # a concurrent move won: drop the empty item
                svc.removal.delete_item(who, item)  # (gone already on SQLite)
                raise
        else:
            svc.files.move_to_item(who, file, target, name=name)
            self._forget_item(dst_parent)
        if entry.kind == ITEM:  # the emptied one-file item goes with its file
            svc.removal.delete_item(who, doc)

    def copy(self, src: str, dst: str, *, replace: Replace = Replace.NONE,
             shallow: bool = False) -> Node:
        """Copy ``src`` to ``dst``. ``shallow``: a folder without its contents
        (its metadata only; WebDAV's Depth: 0), made in one step."""
        return self._overwriting(replace, lambda: self._copy(src, dst, replace, shallow))

    def _copy(self, src: str, dst: str, replace: Replace, shallow: bool) -> Node:
        _src_names, entry, dst_names, _src_parent, dst_parent, name = \
            self._target(src, dst, replace)
        svc, who = self.services, self._writer
        doc, target = entry.doc, dst_parent.doc
        assert doc is not None
        if shallow and entry.kind in (FOLDER, COLLECTION):
            self._make_dir(dst_parent, name, dict(doc.get("meta") or {}))
        elif entry.kind == FOLDER and dst_parent.kind in (USER, COLLECTION, FOLDER):
            assert target is not None
            svc.moves.copy_folder(who, doc, dst_parent.kind, target, name=name)
        elif entry.kind == ITEM and entry.is_dir and dst_parent.kind == FOLDER:
            assert target is not None
            svc.moves.copy_item(who, doc, target, name=name, rename=False)
        elif entry.kind in (ITEM, FILE) and entry.file is not None and \
                dst_parent.kind in (FOLDER, ITEM):
            assert target is not None
            if dst_parent.kind == FOLDER:
                with self._atomically():
                    if entry.kind == ITEM:
                        new = svc.moves.copy_item(who, doc, target, name=name, rename=False)
                        for file in svc.tree.store.files.find({"itemId": new["_id"]}):
                            svc.files.update(who, file, name=name)
                    else:
                        item = svc.items.create(who, target, name, rename=False)
                        svc.files.update(who, svc.files.copy(who, entry.file, item),
                                         name=name)
            else:
                svc.files.update(who, svc.files.copy(who, entry.file, target), name=name)
                self._forget_item(dst_parent)
        else:
            raise AccessDeniedError("It cannot be copied there.")
        return self._fresh(dst_names)

    # ------------------------------------------------------------ metadata
    def set_metadata(self, path: str, changes: dict[str, Any]) -> dict[str, Any]:
        names, entry = self._entry(path)
        svc, who, doc = self.services, self._writer, entry.doc
        if entry.kind == ITEM and doc is not None:
            meta = svc.items.set_metadata(who, doc, changes)["meta"]
        elif entry.kind == FOLDER and doc is not None:
            meta = svc.folders.set_metadata(who, doc, changes)["meta"]
        elif entry.kind == COLLECTION and doc is not None:
            meta = svc.collections.set_metadata(who, doc, changes)["meta"]
        else:
            raise UnsupportedError("This has no metadata.")
        if len(names) > 1:
            parent = self.resolver.resolve(names[:-1], self._reader)[-1]
            self._forget(parent, names[-1])
        return dict(meta)


__all__ = ["WriteOps"]
