"""Zip downloads of an item, a folder or a collection (streamed)."""

from __future__ import annotations

from typing import Any

from joist.core import validation
from joist.core.jobs import tracked_stream

from ..app import Context
from ..archive import ArchiveWalker
from ..downloads import content_disposition
from ..request import RestError
from ..response import Raw
from ..router import READ_SCOPE, Param
from ..zipstream import safe_member, stream_zip
from .common import load
from .file import DOWNLOAD_PARAMS
from .file import download as file_download
from .item import items
from .tree import collections, folders

OFFSET, _END_BYTE, DISPOSITION, EXTRA = DOWNLOAD_PARAMS
FORMAT = Param("format", description="If unspecified, items with one file are downloaded "
               "as that file, and other items are downloaded as a zip archive. If 'zip', a "
               "zip archive is always sent.")
MIME_FILTER = Param("mimeFilter", description="JSON list of MIME types to include.")


def _zip(name: str, entries: Any, ctx: Context | None = None, size: int = 0) -> Raw:
    """``ctx`` and ``size`` (the bytes below, from the size ledger): a large
    archive shows as a job with its progress when the jobs plugin is on."""
    chunks = stream_zip(entries)
    if ctx is not None:
        chunks = tracked_stream(ctx.services.events, ctx.principal, f"Download {name}.zip",
                                "archive.download", size, chunks)
    return Raw(200, [("Content-Type", "application/zip"),
                     ("Content-Disposition", content_disposition(name + ".zip"))], chunks)


def _mime_filter(raw: str | None) -> list[str] | None:
    if not raw:
        return None
    try:
        value = validation.loads_json(raw)
    except ValueError:
        raise RestError("Parameter mimeFilter must be valid JSON.") from None
    if not isinstance(value, list):
        raise RestError("Parameter mimeFilter must be a JSON array.")
    return [str(v) for v in value]


@items.get(":id/download", "Download an item: its one file, or a zip.", scope=READ_SCOPE,
           cookie=True, params=(OFFSET, FORMAT, DISPOSITION, EXTRA))
def download_item(ctx: Context, id: str, offset: int, format: str | None,
                  content_disposition: str | None, extra_parameters: str | None) -> Raw:
    item = load(ctx, "item", id)
    if format not in (None, "", "zip"):
        raise RestError(f"Unsupported format: {format}.")
    files = ctx.services.items.files(ctx.principal, item, limit=2, check_access=False)
    if len(files) == 1 and format != "zip":
        return file_download(ctx, files[0], offset, None, content_disposition or "attachment")
    walker = ArchiveWalker(ctx.services, ctx.principal)
    return _zip(item["name"], walker.item_files(item, safe_member(item["name"]) + "/"))


@folders.get(":id/download", "Download a folder as a zip.", scope=READ_SCOPE, cookie=True,
             params=(MIME_FILTER, DISPOSITION))
def download_folder(ctx: Context, id: str, mime_filter: str | None,
                    content_disposition: str | None) -> Raw:
    folder = load(ctx, "folder", id)
    walker = ArchiveWalker(ctx.services, ctx.principal, mime_filter=_mime_filter(mime_filter))
    return _zip(folder["name"], walker.folder(folder, folder["name"] + "/"), ctx,
                int(folder.get("size") or 0))


@collections.get(":id/download", "Download a collection as a zip.", scope=READ_SCOPE,
                 cookie=True, params=(MIME_FILTER,))
def download_collection(ctx: Context, id: str, mime_filter: str | None) -> Raw:
    doc = load(ctx, "collection", id)
    walker = ArchiveWalker(ctx.services, ctx.principal, mime_filter=_mime_filter(mime_filter))
    return _zip(doc["name"], walker.root("collection", doc, doc["name"] + "/"), ctx,
                int(doc.get("size") or 0))
