"""``resource``: path lookup, paths, search, selections (zip, move, copy, delete)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from typing import Any

from joist.core import acl
from joist.core.errors import AccessDeniedError, NotFoundError, ValidationError

from ..app import Context
from ..archive import ArchiveWalker
from ..downloads import content_disposition
from ..request import RestError
from ..response import Raw
from ..router import FULL_LOGIN, OWN_SCOPE, READ_SCOPE, WRITE_SCOPE, Param, RouteCollector
from ..zipstream import ZipMember, safe_member, stream_zip, unique_name
from .common import load, progress_of

api = RouteCollector("resource", "Operations on any kind of resource.")
MODELS = ("collection", "file", "folder", "group", "item", "user")


@api.get("lookup", "Look up a resource by its path.", scope=READ_SCOPE, params=(
    Param("path", required=True), Param("test", "boolean", default=False,
                                 description="Return null instead of an error when "
                                             "nothing is at the path (older clients).")))
def lookup(ctx: Context, path: str, test: bool) -> Any:
    try:
        model, doc = ctx.hierarchy.lookup(ctx.principal, path)
    except NotFoundError:
        if test:
            return None
        raise ValidationError(f"Path not found: {path}", field="path") from None
    return ctx.filter(model, doc, ctx.principal)


@api.get(":id/path", "The path of a resource.", scope=READ_SCOPE, params=(
    Param("type", required=True, enum=MODELS),))
def resource_path(ctx: Context, id: str, type: str) -> str:
    return ctx.hierarchy.resource_path_by_id(ctx.principal, type, id)


@api.get(":id", "Get any resource by id and type (administrators).",
         scope=FULL_LOGIN, access="admin",
         params=(Param("type", required=True, enum=MODELS),))
def get_resource(ctx: Context, id: str, type: str) -> Any:
    return ctx.filter(type, load(ctx, type, id), ctx.principal)


@api.get("search", "Search by name (text or prefix).", scope=READ_SCOPE, params=(
    Param("q", required=True), Param("mode", default="text", enum=("text", "prefix")),
    Param("types", "jsonArray", required=True), Param("level", "integer", default=0),
    Param("limit", "integer", default=10), Param("offset", "integer", default=0)))
def search(ctx: Context, q: str, mode: str, types: list[Any], level: int, limit: int,
           offset: int) -> dict[str, list[Any]]:
    results: dict[str, list[Any]] = {}
    for model in types:
        if model not in MODELS:
            continue
        docs = ctx.services.search.by_name(ctx.principal, model, q, mode=mode,
                                           level=level, offset=offset, limit=limit)
        results[model] = ctx.filter.many(model, docs, ctx.principal)
    return results


# ---------------------------------------------------------------- selections

def _selection(ctx: Context, resources: Any, level: int) -> dict[str, list[dict[str, Any]]]:
    if not isinstance(resources, dict):
        raise RestError("Parameter resources must be a JSON object.")
    out: dict[str, list[dict[str, Any]]] = {}
    for model, ids in resources.items():
        if model not in ("item", "folder", "collection", "user", "file"):
            raise RestError(f"Invalid resource type: {model}.")
        if not isinstance(ids, list):
            raise RestError("Each resource type must map to a list of ids.")
        docs = []
        for doc_id in ids:
            try:
                docs.append(ctx.services.tree.load(ctx.principal, model, doc_id, level))
            except (NotFoundError, AccessDeniedError):
                raise RestError(f"Resource {model} {doc_id} not found.") from None
        out[model] = docs
    return out


def _zip_selection(ctx: Context, resources: Any, include_metadata: bool) -> Raw:
    chosen = _selection(ctx, resources, acl.READ)
    walker = ArchiveWalker(ctx.services, ctx.principal, include_metadata=include_metadata)

    def entries() -> Iterator[ZipMember]:
        taken: set[str] = set()
        for model in ("collection", "user", "folder", "item"):
            for doc in chosen.get(model, []):
                label = doc["login"] if model == "user" else doc["name"]
                if model == "item":
                    yield from walker.item(doc, "", taken)
                    continue
                prefix = unique_name(safe_member(label), taken) + "/"
                if model == "folder":
                    yield from walker.folder(doc, prefix)
                else:
                    yield from walker.root(model, doc, prefix)

    return Raw(200, [("Content-Type", "application/zip"),
                     ("Content-Disposition", content_disposition("Resources.zip"))],
               stream_zip(entries()))


ZIP_PARAMS = (Param("resources", "jsonObject", required=True),
              Param("includeMetadata", "boolean", default=False))


@api.get("download", "Download a selection as a zip.", scope=READ_SCOPE, cookie=True,
         params=ZIP_PARAMS)
def download(ctx: Context, resources: Any, include_metadata: bool) -> Raw:
    return _zip_selection(ctx, resources, include_metadata)


@api.post("download", "Download a selection as a zip (form body).", scope=READ_SCOPE,
          cookie=True, params=ZIP_PARAMS)
def download_post(ctx: Context, resources: Any, include_metadata: bool) -> Raw:
    return _zip_selection(ctx, resources, include_metadata)


@api.put("move", "Move items and folders.", access="user", scope=WRITE_SCOPE, params=(
    Param("resources", "jsonObject", required=True),
    Param("parentType", required=True, enum=("folder", "user", "collection")),
    Param("parentId", required=True), Param("progress", "boolean", default=False)))
def move(ctx: Context, resources: Any, parent_type: str, parent_id: str,
         progress: bool) -> None:
    chosen = _selection(ctx, resources, acl.WRITE)
    parent = load(ctx, parent_type, parent_id, acl.WRITE)
    if chosen.get("item") and parent_type != "folder":
        raise RestError("Invalid parentType.")
    count = len(chosen.get("item", [])) + len(chosen.get("folder", []))
    with progress_of(ctx, progress, "Moving resources", total=lambda: count) as steps:
        for item in chosen.get("item", []):
            ctx.services.moves.move_item(ctx.principal, item, parent)
            steps.update(increment=1, message=f"Moved item {item['name']}")
        for folder in chosen.get("folder", []):
            ctx.services.moves.move_folder(ctx.principal, folder, parent_type, parent)
            steps.update(increment=1, message=f"Moved folder {folder['name']}")


@api.post("copy", "Copy items and folders.", access="user", scope=WRITE_SCOPE, params=(
    Param("resources", "jsonObject", required=True),
    Param("parentType", required=True, enum=("folder", "user", "collection")),
    Param("parentId", required=True), Param("progress", "boolean", default=False)))
def copy(ctx: Context, resources: Any, parent_type: str, parent_id: str,
         progress: bool) -> None:
    chosen = _selection(ctx, resources, acl.READ)
    parent = load(ctx, parent_type, parent_id, acl.WRITE)
    if chosen.get("item") and parent_type != "folder":
        raise RestError("Invalid parentType.")
    svc = ctx.services

    def count() -> int:
        return len(chosen.get("item", [])) + sum(svc.removal.count("folder", f)
                                                 for f in chosen.get("folder", []))

    with progress_of(ctx, progress, "Copying resources", total=count) as steps:
        for item in chosen.get("item", []):
            svc.moves.copy_item(ctx.principal, item, parent)
            steps.update(increment=1, message=f"Copied item {item['name']}")
        for folder in chosen.get("folder", []):
            svc.moves.copy_folder(ctx.principal, folder, parent_type, parent,
                                  progress=steps)


@api.delete("", "Delete a selection of resources.", access="user", scope=OWN_SCOPE, params=(
    Param("resources", "jsonObject", required=True),
    Param("progress", "boolean", default=False)))
def delete(ctx: Context, resources: Any, progress: bool) -> None:
    svc = ctx.services
    chosen = _selection(ctx, resources, acl.ADMIN)  # Girder: deletes need ADMIN

    def count() -> int:
        return sum(svc.removal.count(model, doc) for model, docs in chosen.items()
                   for doc in docs)

    with progress_of(ctx, progress, "Deleting resources", total=count) as steps:
        for file in chosen.get("file", []):
            svc.files.delete(ctx.principal, file)
            steps.update(increment=1, message=f"Deleted file {file['name']}")
        for item in chosen.get("item", []):
            svc.removal.delete_item(ctx.principal, item, progress=steps)
        for folder in chosen.get("folder", []):
            svc.removal.delete_folder(ctx.principal, folder, progress=steps)
        for collection in chosen.get("collection", []):
            svc.removal.delete_collection(ctx.principal, collection, progress=steps)
        for user in chosen.get("user", []):
            svc.removal.delete_user(ctx.principal, user, progress=steps)


@api.put(":id/timestamp", "Set created/updated times (admin).",
         scope=FULL_LOGIN, access="admin", params=(
    Param("type", required=True, enum=MODELS), Param("created"), Param("updated")))
def timestamp(ctx: Context, id: str, type: str, created: str | None,
              updated: str | None) -> Any:
    doc = load(ctx, type, id, acl.WRITE)
    changes = {key: _parse_time(raw) for key, raw in (("created", created),
                                                       ("updated", updated)) if raw is not None}
    doc = ctx.services.tree.set_timestamps(ctx.principal, type, doc, changes)
    return ctx.filter(type, doc, ctx.principal)


def _parse_time(raw: str) -> _dt.datetime:
    try:
        value = _dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RestError(f"Invalid date: {raw}.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return value.astimezone(_dt.UTC)
