"""Import of data an assetstore already holds (an S3 bucket prefix) as folders,
items and files, without copying bytes (Girder's ``assetstore/{id}/import``).

Directories become folders and files become one-file items, both reused when
a re-import finds them by name. Imported file records carry ``imported: True``:
they hold no reference count and their bytes are never deleted by Joist.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .. import acl
from ..acl import Principal
from ..assetstores.base import AssetstoreAdapter, ImportEntry
from ..assetstores.registry import AssetstoreRegistry
from ..clock import utcnow
from ..db.engine import Document
from ..errors import AccessDeniedError, CoreError, ExistsError, ValidationError
from ..validation import validate_name
from .files import FileService, guess_mime
from .folders import FolderService
from .items import ItemService
from .tree_access import TreeAccess

log = logging.getLogger("joist.imports")

MAX_ENTRIES = 10_000_000  # one import walks at most this many entries
_EDGE_SPACE = re.compile(r"^\s+|\s+$")


@dataclass
class ImportSummary:
    folders: int = 0
    items: int = 0
    files: int = 0
    updated: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ImportOptions:
    leaf_folders_as_items: bool = False
    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None

    @classmethod
    def build(cls, *, leaf_folders_as_items: bool = False, include: str | None = None,
              exclude: str | None = None) -> ImportOptions:
        return cls(leaf_folders_as_items, _regex(include, "fileIncludeRegex"),
                   _regex(exclude, "fileExcludeRegex"))

    def wants(self, name: str) -> bool:
        """Girder's rule: ``re.match`` on the base name, excludes win."""
        if self.exclude is not None and self.exclude.match(name):
            return False
        return self.include is None or bool(self.include.match(name))


class ImportService:
    def __init__(self, tree: TreeAccess, folders: FolderService, items: ItemService,
                 files: FileService, assetstores: AssetstoreRegistry) -> None:
        self.tree = tree
        self.store = tree.store
        self.folders = folders
        self.items = items
        self.files = files
        self.assetstores = assetstores

    def import_data(self, principal: Principal, assetstore_id: Any, path: str,
                    destination_type: str, destination_id: Any,
                    options: ImportOptions | None = None,
                    progress: Callable[[float | None, float | None, str | None], None]
                    | None = None) -> ImportSummary:
        """Import everything under ``path`` into the destination (a folder, or
        a user/collection for directories only). Site admins only, with ADMIN
        on the destination."""
        if not principal.is_site_admin:
            raise AccessDeniedError("Only site administrators may import data.")
        options = options or ImportOptions()
        doc = self.assetstores.get(assetstore_id)
        adapter = self.assetstores.adapter(doc["_id"])
        parent = self.tree.load_parent(principal, destination_type, destination_id, acl.ADMIN)
        summary = ImportSummary()
        stack: list[tuple[str, str, Document]] = [(path, destination_type, parent)]
        budget = MAX_ENTRIES
        while stack:
            prefix, parent_type, parent = stack.pop()
            entries = list(_bounded(adapter.list_import(prefix), budget))
            budget -= len(entries)
            if budget <= 0:
                raise ValidationError(f"Imports stop after {MAX_ENTRIES} entries.")
            files = [e for e in entries if e.kind == "file" and options.wants(e.name)]
            if files and parent_type != "folder":
                raise ValidationError("Files cannot be imported directly underneath a user "
                                      "or collection.", field="destinationType")
            for entry in files:
                self._import_file(principal, adapter, doc, parent, entry, summary)
                if progress is not None:  # the total is not known while listing
                    progress(summary.files + summary.updated, None, entry.path)
            for entry in sorted((e for e in entries if e.kind == "dir"),
                                key=lambda e: e.name, reverse=True):
                self._import_dir(principal, adapter, doc, parent_type, parent, entry,
                                 options, summary, stack)
        log.info("import of %r into %s %s: %s", path, destination_type, parent["_id"],
                 summary.as_dict())
        return summary

    # ------------------------------------------------------------ entries
    def _import_dir(self, principal: Principal, adapter: AssetstoreAdapter, doc: Document,
                    parent_type: str, parent: Document, entry: ImportEntry,
                    options: ImportOptions, summary: ImportSummary,
                    stack: list[tuple[str, str, Document]]) -> None:
        name = _clean(entry.name)
        if name is None:
            summary.skipped += 1
            return
        if options.leaf_folders_as_items and parent_type == "folder":
            children = list(_bounded(adapter.list_import(entry.path), MAX_ENTRIES))
            if children and all(c.kind == "file" for c in children):
                item = self.items.create(principal, parent, name, reuse_existing=True,
                                         check_access=False)
                summary.items += 1
                for child in children:
                    if options.wants(child.name):
                        self._add_file(adapter, doc, item, child, principal, summary)
                return
        try:
            folder = self.folders.create(principal, parent_type, parent["_id"], name,
                                         reuse_existing=True, check_access=False)
        except ExistsError:  # an item has that name: Girder appends a slash
            folder = self.folders.create(principal, parent_type, parent["_id"], name + "/",
                                         reuse_existing=True, check_access=False)
        summary.folders += 1
        stack.append((entry.path, "folder", folder))

    def _import_file(self, principal: Principal, adapter: AssetstoreAdapter, doc: Document,
                     folder: Document, entry: ImportEntry, summary: ImportSummary) -> None:
        name = _clean(entry.name)
        if name is None:
            summary.skipped += 1
            return
        item = self.items.create(principal, folder, name, reuse_existing=True,
                                 check_access=False)
        summary.items += 1
        self._add_file(adapter, doc, item, entry, principal, summary)

    def _add_file(self, adapter: AssetstoreAdapter, doc: Document, item: Document,
                  entry: ImportEntry, principal: Principal, summary: ImportSummary) -> None:
        name = _clean(entry.name)
        if name is None:
            summary.skipped += 1
            return
        blob = adapter.imported_blob(entry)
        existing = self.store.files.find_one({"itemId": item["_id"], "name": name})
        if existing is None:
            self.files.record(item, name=name, size=entry.size, mime_type=guess_mime(name),
                              assetstore_id=doc["_id"], blob=blob,
                              creator_id=principal.user_id)
            summary.files += 1
            return
        if not existing.get("imported") or existing.get("assetstoreId") != doc["_id"]:
            summary.skipped += 1  # uploaded bytes of the same name are left alone
            return
        delta = entry.size - int(existing.get("size") or 0)
        if delta == 0 and all(existing.get(k) == v for k, v in blob.items()):
            return
        update: dict[str, Any] = {"$set": {**blob, "updated": utcnow()}}
        if "sha512" not in blob and "sha512" in existing:
            update["$unset"] = {"sha512": ""}  # computed for the old bytes (hashsum_download)
        self.store.files.update_one({"_id": existing["_id"]}, update)
        if delta:
            self.tree.sizes.add_size(item, delta)
        summary.updated += 1


def _clean(name: str) -> str | None:
    """Girder keeps edge whitespace by turning it into ``_``; names no gateway
    could show are skipped."""
    name = _EDGE_SPACE.sub(lambda m: "_" * len(m.group()), name)
    try:
        return validate_name(name)
    except CoreError:
        log.warning("import: skipped the entry %r (not a valid name)", name)
        return None


def _regex(pattern: str | None, field: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValidationError(f"Invalid regular expression {pattern!r}: {exc}.",
                              field=field) from None


def _bounded(entries: Any, limit: int) -> Iterator[ImportEntry]:
    for count, entry in enumerate(entries):
        if count >= limit:
            raise ValidationError(f"Imports stop after {MAX_ENTRIES} entries.")
        yield entry
