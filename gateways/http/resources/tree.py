"""``collection``, ``folder`` and ``item``: the data tree."""

from __future__ import annotations

from typing import Any

from joist.core import acl

from ..app import Context
from ..request import RestError
from ..response import Page
from ..router import OWN_SCOPE, READ_SCOPE, WRITE_SCOPE, Param, RouteCollector
from . import metadata
from .common import PAGING, SORTDIR, load, paging, progress_of, sort_param, total

collections = RouteCollector("collection", "Collections: top-level containers.")
folders = RouteCollector("folder", "Folders.")


# ---------------------------------------------------------------- collections

@collections.get("", "List collections you may read.", scope=READ_SCOPE, total_count=True,
                 params=(Param("text"), sort_param("name"), *PAGING))
def list_collections(ctx: Context, text: str | None, sort: str, limit: int, offset: int,
                     sortdir: int) -> Page:
    limit, offset, spec = paging(limit, offset, sortdir, sort, "name", "collection")
    docs = ctx.services.collections.list(ctx.principal, skip=offset, limit=limit, sort=spec,
                                         text=text)
    return Page(ctx.filter.many("collection", docs, ctx.principal),
                ctx.services.collections.count(ctx.principal, text))


@collections.get("details", "Count collections.", scope=READ_SCOPE)
def collections_details(ctx: Context) -> dict[str, int]:
    return {"nCollections": ctx.services.collections.count(ctx.principal)}


@collections.post("", "Create a collection.", access="user", scope=WRITE_SCOPE, params=(
    Param("name", required=True, strip=True), Param("description", default="", strip=True),
    Param("public", "boolean", default=False)))
def create_collection(ctx: Context, name: str, description: str, public: bool) -> Any:
    doc = ctx.services.collections.create(ctx.principal, name, description=description,
                                          public=public)
    return ctx.filter("collection", doc, ctx.principal)


@collections.get(":id", "Get a collection.", scope=READ_SCOPE)
def get_collection(ctx: Context, id: str) -> Any:
    return ctx.filter("collection", load(ctx, "collection", id), ctx.principal)


@collections.get(":id/details", "Count a collection's folders.", scope=READ_SCOPE)
def collection_details(ctx: Context, id: str) -> dict[str, int]:
    doc = load(ctx, "collection", id)
    return {"nFolders": ctx.services.folders.count(ctx.principal, doc)}


@collections.put(":id", "Edit a collection.", access="user", scope=WRITE_SCOPE, params=(
    Param("name", strip=True), Param("description", strip=True)))
def update_collection(ctx: Context, id: str, name: str | None,
                      description: str | None) -> Any:
    doc = load(ctx, "collection", id, acl.WRITE)
    doc = ctx.services.collections.update(ctx.principal, doc, name=name,
                                          description=description)
    return ctx.filter("collection", doc, ctx.principal)


# Girder reports the progress of long operations on the notification stream.
PROGRESS = Param("progress", "boolean", default=False,
                 description="Whether to record progress on this task (a progress "
                             "notification on notification/stream).")


@collections.delete(":id", "Delete a collection and everything in it.",
                    access="user", scope=OWN_SCOPE, params=(PROGRESS,))
def delete_collection(ctx: Context, id: str, progress: bool) -> dict[str, str]:
    doc = load(ctx, "collection", id, acl.ADMIN)
    removal = ctx.services.removal
    with progress_of(ctx, progress, f"Deleting collection {doc['name']}", "collection", doc,
                     lambda: removal.count("collection", doc)) as steps:
        removal.delete_collection(ctx.principal, doc, progress=steps)
    return {"message": f"Deleted collection {doc['name']}."}


# ---------------------------------------------------------------- folders

LIST_FOLDER_PARAMS = (Param("parentType", enum=("folder", "user", "collection")),
                      Param("parentId"), Param("text"), Param("name"), sort_param("lowerName"))


def _listed_parent(ctx: Context, parent_type: str | None, parent_id: str | None,
                   text: str | None) -> dict[str, Any] | None:
    """The parent whose children a listing covers, or None for a search by ``text``."""
    if parent_type and parent_id:
        return load(ctx, parent_type, parent_id)
    if text:
        return None
    raise RestError("Invalid search mode.")


@folders.get("", "List or search folders.", scope=READ_SCOPE, total_count=True,
             params=(*LIST_FOLDER_PARAMS, *PAGING))
def list_folders(ctx: Context, parent_type: str | None, parent_id: str | None,
                 text: str | None, name: str | None, sort: str, limit: int, offset: int,
                 sortdir: int) -> Page:
    limit, offset, spec = paging(limit, offset, sortdir, sort, "lowerName", "folder")
    parent = _listed_parent(ctx, parent_type, parent_id, text)
    service = ctx.services.folders
    docs = service.listing(ctx.principal, parent, name=name, text=text, sort=spec,
                           skip=offset, limit=limit)
    return Page(ctx.filter.many("folder", docs, ctx.principal),
                total(lambda: service.listing_count(ctx.principal, parent, name=name,
                                                    text=text), offset, limit, len(docs)))


@folders.get(":id/position", "The index of a folder in a listing of its siblings.",
             scope=READ_SCOPE, params=(*LIST_FOLDER_PARAMS, SORTDIR))
def folder_position(ctx: Context, id: str, parent_type: str | None, parent_id: str | None,
                    text: str | None, name: str | None, sort: str, sortdir: int) -> int:
    doc = load(ctx, "folder", id)
    spec = paging(0, 0, sortdir, sort, "lowerName", "folder")[2]
    parent = _listed_parent(ctx, parent_type or doc["parentCollection"],
                            parent_id or str(doc["parentId"]), text)
    return ctx.services.folders.position(ctx.principal, doc, parent, name=name, text=text,
                                         sort=spec)


@folders.post("", "Create a folder.", access="user", scope=WRITE_SCOPE, params=(
    Param("parentType", default="folder", enum=("folder", "user", "collection")),
    Param("parentId", required=True), Param("name", required=True, strip=True),
    Param("description", default="", strip=True), Param("reuseExisting", "boolean",
                                                        default=False),
    Param("public", "boolean"), Param("metadata", "jsonObject", location="formData",
                                      description="A JSON object containing the metadata "
                                                  "keys to add")))
def create_folder(ctx: Context, parent_type: str, parent_id: str, name: str,
                  description: str, reuse_existing: bool, public: bool | None,
                  metadata: dict[str, Any] | None) -> Any:
    load(ctx, parent_type, parent_id)
    doc = ctx.services.folders.create(ctx.principal, parent_type, parent_id, name,
                                      description=description, public=public,
                                      reuse_existing=reuse_existing, metadata=metadata)
    return ctx.filter("folder", doc, ctx.principal)


@folders.get(":id", "Get a folder.", scope=READ_SCOPE)
def get_folder(ctx: Context, id: str) -> Any:
    return ctx.filter("folder", load(ctx, "folder", id), ctx.principal)


@folders.put(":id", "Edit or move a folder.", access="user", scope=WRITE_SCOPE, params=(
    Param("name", strip=True), Param("description", strip=True),
    Param("parentType", enum=("folder", "user", "collection")), Param("parentId"),
    Param("metadata", "jsonObject", location="formData",
          description="A JSON object containing the metadata keys to add")))
def update_folder(ctx: Context, id: str, name: str | None, description: str | None,
                  parent_type: str | None, parent_id: str | None,
                  metadata: dict[str, Any] | None) -> Any:
    svc = ctx.services
    doc = load(ctx, "folder", id, acl.WRITE)
    doc = svc.folders.update(ctx.principal, doc, name=name, description=description,
                             metadata=metadata)
    if parent_id is not None:
        kind = parent_type or "folder"
        parent = load(ctx, kind, parent_id, acl.WRITE)
        if parent["_id"] != doc["parentId"]:
            doc = svc.moves.move_folder(ctx.principal, doc, kind, parent)
    return ctx.filter("folder", doc, ctx.principal)


@folders.delete(":id", "Delete a folder and everything in it.", access="user", scope=OWN_SCOPE,
                params=(PROGRESS,))
def delete_folder(ctx: Context, id: str, progress: bool) -> dict[str, str]:
    doc = load(ctx, "folder", id, acl.ADMIN)
    removal = ctx.services.removal
    with progress_of(ctx, progress, f"Deleting folder {doc['name']}", "folder", doc,
                     lambda: removal.count("folder", doc)) as steps:
        removal.delete_folder(ctx.principal, doc, progress=steps)
    return {"message": f"Deleted folder {doc['name']}."}


@folders.delete(":id/contents", "Delete everything inside a folder.",
                access="user", scope=OWN_SCOPE, params=(PROGRESS,))
def clear_folder(ctx: Context, id: str, progress: bool) -> dict[str, str]:
    doc = load(ctx, "folder", id, acl.ADMIN)
    removal = ctx.services.removal
    with progress_of(ctx, progress, f"Clearing folder {doc['name']}", "folder", doc,
                     lambda: removal.count("folder", doc) - 1) as steps:
        removal.clear_folder(doc, progress=steps)
    return {"message": f"Deleted contents of folder {doc['name']}."}


@folders.get(":id/details", "Count a folder's items and subfolders.", scope=READ_SCOPE)
def folder_details(ctx: Context, id: str) -> dict[str, int]:
    return ctx.services.folders.details(ctx.principal, load(ctx, "folder", id))


@folders.get(":id/rootpath", "The folder's ancestors, root first.", scope=READ_SCOPE)
def folder_rootpath(ctx: Context, id: str) -> list[dict[str, Any]]:
    doc = load(ctx, "folder", id)
    return [{"type": a["type"], "object": ctx.filter(a["type"], a["object"], ctx.principal)}
            for a in ctx.services.folders.root_path(ctx.principal, doc)]


@folders.post(":id/copy", "Copy a folder (deep; files share their bytes).",
              access="user", scope=WRITE_SCOPE, params=(
                  Param("parentType", enum=("folder", "user", "collection")),
                  Param("parentId"), Param("name", strip=True),
                  Param("description", strip=True), Param("public", default="original",
                        enum=("true", "false", "original")),
                  PROGRESS))
def copy_folder(ctx: Context, id: str, parent_type: str | None, parent_id: str | None,
                name: str | None, description: str | None, public: str,
                progress: bool) -> Any:
    doc = load(ctx, "folder", id)
    kind = parent_type or doc["parentCollection"]
    parent = load(ctx, kind, parent_id or doc["parentId"], acl.WRITE)
    flag: Any = public if public == "original" else public.lower() in ("true", "1", "yes")
    with progress_of(ctx, progress, f"Copying folder {doc['name']}", "folder", doc,
                     lambda: ctx.services.removal.count("folder", doc)) as steps:
        new = ctx.services.moves.copy_folder(ctx.principal, doc, kind, parent, name=name,
                                             description=description, public=flag,
                                             progress=steps)
    return ctx.filter("folder", new, ctx.principal)


metadata.register(collections, "collection")
metadata.register(folders, "folder")

__all__ = ["collections", "folders"]
