"""Zip downloads of items, folders, collections, users and selections.

The walk goes through core services, so every ACL rule is core's: subfolders
are filtered by READ, items inherit their folder's access. Layout follows
Girder: an item with exactly one file of its own name (and no metadata file to
add) is stored as that file, any other item as a directory of its files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

from joist.core.acl import Principal
from joist.core.hierarchy.nodes import epoch
from joist.core.services import Services

from .zipstream import ZipMember, safe_member, unique_name

PAGE = 500


class ArchiveWalker:
    def __init__(self, services: Services, principal: Principal, *,
                 include_metadata: bool = False, mime_filter: list[str] | None = None) -> None:
        self.svc = services
        self.principal = principal
        self.include_metadata = include_metadata
        self.mime_filter = set(mime_filter) if mime_filter else None

    def _files(self, item: dict[str, Any]) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:  # ends: the offset grows, and a short page stops
            page = self.svc.items.files(self.principal, item, skip=offset, limit=PAGE,
                                        check_access=False)
            for file in page:
                if self.mime_filter is None or file.get("mimeType") in self.mime_filter:
                    yield file
            if len(page) < PAGE:
                return
            offset += len(page)

    def _file_entry(self, path: str, file: dict[str, Any]) -> ZipMember:
        if file.get("linkUrl") or not file.get("assetstoreId"):
            data = (file.get("linkUrl") or "").encode()
            return ZipMember(path, len(data), data=data, mtime=epoch(file.get("created")))
        opener = partial(self.svc.files.open_read, self.principal, file, check_access=False)
        return ZipMember(path, int(file.get("size") or 0), open=opener,
                     mtime=epoch(file.get("updated") or file.get("created")))

    def item(self, item: dict[str, Any], prefix: str, taken: set[str]) -> Iterator[ZipMember]:
        files = list(self._files(item)) if item.get("fileCount", 2) <= PAGE else None
        meta = item.get("meta") or {}
        add_meta = self.include_metadata and bool(meta)
        if files is not None and len(files) == 1 and files[0]["name"] == item["name"] \
                and not add_meta:
            name = unique_name(safe_member(item["name"]), taken)
            yield self._file_entry(prefix + name, files[0])
            return
        folder = prefix + unique_name(safe_member(item["name"]), taken) + "/"
        yield from self.item_files(item, folder, files)

    def item_files(self, item: dict[str, Any], folder: str,
                   files: list[dict[str, Any]] | None = None) -> Iterator[ZipMember]:
        """Every file of an item under ``folder`` (and its metadata file)."""
        inner: set[str] = set()
        for file in files if files is not None else self._files(item):
            yield self._file_entry(folder + unique_name(safe_member(file["name"]), inner),
                                   file)
        meta = item.get("meta") or {}
        if self.include_metadata and meta and "girder-item-metadata.json" not in inner:
            yield _json_entry(folder + "girder-item-metadata.json", meta)

    def folder(self, folder: dict[str, Any], prefix: str) -> Iterator[ZipMember]:
        taken: set[str] = set()
        for child in self._subfolders("folder", folder):
            yield from self.folder(child, prefix + unique_name(safe_member(child["name"]),
                                                               taken) + "/")
        offset = 0
        while True:  # ends: the offset grows, and a short page stops
            items, _f = self.svc.items.list(self.principal, folder["_id"], skip=offset,
                                            limit=PAGE)
            for item in items:
                yield from self.item(item, prefix, taken)
            if len(items) < PAGE:
                break
            offset += len(items)
        meta = folder.get("meta") or {}
        if self.include_metadata and meta and "girder-folder-metadata.json" not in taken:
            yield _json_entry(prefix + "girder-folder-metadata.json", meta)

    def _subfolders(self, parent_type: str, parent: dict[str, Any]
                    ) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:  # ends: the offset grows, and a short page stops
            page, _p = self.svc.folders.list(self.principal, parent_type, parent["_id"],
                                             skip=offset, limit=PAGE)
            yield from page
            if len(page) < PAGE:
                return
            offset += len(page)

    def root(self, model: str, doc: dict[str, Any], prefix: str) -> Iterator[ZipMember]:
        """A user or collection: its top-level folders."""
        taken: set[str] = set()
        for child in self._subfolders(model, doc):
            yield from self.folder(child, prefix + unique_name(safe_member(child["name"]),
                                                               taken) + "/")


def _json_entry(path: str, value: Any) -> ZipMember:
    data = json.dumps(value, indent=2, sort_keys=True, default=str).encode()
    return ZipMember(path, len(data), data=data)
