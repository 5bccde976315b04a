"""``item``: the leaves of the tree, holding files."""

from __future__ import annotations

from typing import Any

from joist.core import acl

from ..app import Context
from ..request import RestError
from ..response import Page
from ..router import READ_SCOPE, WRITE_SCOPE, Param, RouteCollector
from . import metadata
from .common import PAGING, SORTDIR, load, paging, sort_param, total

items = RouteCollector("item", "Items: the leaves of the tree, holding files.")


# ---------------------------------------------------------------- items

LIST_ITEM_PARAMS = (Param("folderId"), Param("text"), Param("name"), sort_param("lowerName"))


@items.get("", "List or search items.", scope=READ_SCOPE, total_count=True,
           params=(*LIST_ITEM_PARAMS, *PAGING))
def list_items(ctx: Context, folder_id: str | None, text: str | None, name: str | None,
               sort: str, limit: int, offset: int, sortdir: int) -> Page:
    limit, offset, spec = paging(limit, offset, sortdir, sort, "lowerName", "item")
    if folder_id:
        folder = load(ctx, "folder", folder_id)
        service = ctx.services.items
        docs = service.listing(ctx.principal, folder, name=name, text=text, sort=spec,
                               skip=offset, limit=limit)
        known = ctx.services.tree.sizes.item_count(folder["_id"]) \
            if text is None and name is None else None
        if known is not None:  # core keeps the count: no count query on a big folder
            return Page(ctx.filter.many("item", docs, ctx.principal), known)
        return Page(ctx.filter.many("item", docs, ctx.principal),
                    total(lambda: service.listing_count(ctx.principal, folder, name=name,
                                                        text=text),
                          offset, limit, len(docs)))
    if text:
        return Page(_search_items(ctx, text, offset, limit))
    raise RestError("Invalid search mode.")


@items.get(":id/position", "The index of an item in a listing of its folder.",
           scope=READ_SCOPE, params=(*LIST_ITEM_PARAMS, SORTDIR))
def item_position(ctx: Context, id: str, folder_id: str | None, text: str | None,
                  name: str | None, sort: str, sortdir: int) -> int:
    doc = load(ctx, "item", id)
    spec = paging(0, 0, sortdir, sort, "lowerName", "item")[2]
    folder = load(ctx, "folder", folder_id or str(doc["folderId"]))
    return ctx.services.items.position(ctx.principal, doc, folder, name=name, text=text,
                                       sort=spec)


def _search_items(ctx: Context, text: str, offset: int, limit: int) -> list[dict[str, Any]]:
    """Global item search; core filters each match through its folder."""
    docs = ctx.services.search.by_name(ctx.principal, "item", text, offset=offset,
                                       limit=limit)
    return ctx.filter.many("item", docs, ctx.principal)


@items.post("", "Create an item.", access="user", scope=WRITE_SCOPE, params=(
    Param("folderId", required=True), Param("name", required=True, strip=True),
    Param("description", default="", strip=True),
    Param("reuseExisting", "boolean", default=False),
    Param("metadata", "jsonObject", location="formData",
          description="A JSON object containing the metadata keys to add")))
def create_item(ctx: Context, folder_id: str, name: str, description: str,
                reuse_existing: bool, metadata: dict[str, Any] | None) -> Any:
    folder = load(ctx, "folder", folder_id)
    doc = ctx.services.items.create(ctx.principal, folder, name, description=description,
                                    reuse_existing=reuse_existing, metadata=metadata)
    return ctx.filter("item", doc, ctx.principal)


@items.get(":id", "Get an item.", scope=READ_SCOPE)
def get_item(ctx: Context, id: str) -> Any:
    return ctx.filter("item", load(ctx, "item", id), ctx.principal)


@items.put(":id", "Edit or move an item.", access="user", scope=WRITE_SCOPE, params=(
    Param("name", strip=True), Param("description", strip=True), Param("folderId"),
    Param("metadata", "jsonObject", location="formData",
          description="A JSON object containing the metadata keys to add")))
def update_item(ctx: Context, id: str, name: str | None, description: str | None,
                folder_id: str | None, metadata: dict[str, Any] | None) -> Any:
    svc = ctx.services
    doc = load(ctx, "item", id, acl.WRITE)
    doc = svc.items.update(ctx.principal, doc, name=name, description=description,
                           metadata=metadata)
    if folder_id is not None:
        folder = load(ctx, "folder", folder_id, acl.WRITE)
        if folder["_id"] != doc["folderId"]:
            doc = svc.moves.move_item(ctx.principal, doc, folder)
    return ctx.filter("item", doc, ctx.principal)


@items.delete(":id", "Delete an item and its files.", access="user", scope=WRITE_SCOPE)
def delete_item(ctx: Context, id: str) -> dict[str, str]:
    doc = load(ctx, "item", id, acl.WRITE)
    ctx.services.removal.delete_item(ctx.principal, doc)
    return {"message": f"Deleted item {doc['name']}."}


@items.get(":id/files", "List an item's files.", scope=READ_SCOPE, total_count=True,
           params=(sort_param("name"), *PAGING))
def item_files(ctx: Context, id: str, sort: str, limit: int, offset: int,
               sortdir: int) -> Page:
    limit, offset, spec = paging(limit, offset, sortdir, sort, "name", "file")
    doc = load(ctx, "item", id)
    files = ctx.services.items.files(ctx.principal, doc, skip=offset, limit=limit,
                                     sort=spec, check_access=False)
    count = total(lambda: ctx.services.items.file_count(ctx.principal, doc,
                                                        check_access=False),
                  offset, limit, len(files))
    return Page(ctx.filter.many("file", files, ctx.principal), count)


@items.get(":id/rootpath", "The item's ancestors, root first.", scope=READ_SCOPE)
def item_rootpath(ctx: Context, id: str) -> list[dict[str, Any]]:
    doc = load(ctx, "item", id)
    return [{"type": a["type"], "object": ctx.filter(a["type"], a["object"], ctx.principal)}
            for a in ctx.services.items.root_path(ctx.principal, doc)]


@items.post(":id/copy", "Copy an item (files share their bytes).", access="user", scope=WRITE_SCOPE,
            params=(Param("folderId"), Param("name", strip=True),
                    Param("description", strip=True)))
def copy_item(ctx: Context, id: str, folder_id: str | None, name: str | None,
              description: str | None) -> Any:
    doc = load(ctx, "item", id)
    folder = load(ctx, "folder", folder_id or doc["folderId"], acl.WRITE)
    new = ctx.services.moves.copy_item(ctx.principal, doc, folder, name=name,
                                       description=description)
    return ctx.filter("item", new, ctx.principal)


metadata.register(items, "item")

__all__ = ["items"]
