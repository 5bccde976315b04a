"""``assetstore``: administration of where bytes are stored (site admins)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from joist.core.assetstores.registry import FILESYSTEM, S3, TYPE_NAMES
from joist.core.auth import scopes
from joist.core.jobs import reported
from joist.core.services.imports import ImportOptions

from ..app import Context
from ..request import RestError, snake
from ..router import FULL_LOGIN, WRITE_SCOPE, Param, RouteCollector
from .common import paged, paging, progress_of

api = RouteCollector("assetstore", "Assetstores (administrators only).")


def _view(ctx: Context, doc: dict[str, Any], adapter: Any = None) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k not in ("secret",)}
    try:
        adapter = adapter or ctx.services.assetstores.adapter(doc["_id"])
        cap = adapter.capacity()
        out["capacity"] = {"free": cap.free, "total": cap.total}
    except Exception:  # an unreachable store still lists, without capacity
        out["capacity"] = None
    out["hasFiles"] = ctx.services.assetstores.holds_files(doc["_id"])
    out["_modelType"] = "assetstore"
    return out


@api.get("", "List assetstores.", scope=scopes.ASSETSTORES_READ, access="admin",
         params=paged("name"))
def list_assetstores(ctx: Context, sort: str, limit: int, offset: int,
                     sortdir: int) -> list[Any]:
    limit, offset, spec = paging(limit, offset, sortdir, sort, "name", "assetstore")
    return [_view(ctx, d) for d in ctx.services.assetstores.list(skip=offset, limit=limit,
                                                                 sort=spec)]


@api.get(":id", "Get an assetstore.", scope=scopes.ASSETSTORES_READ, access="admin")
def get_assetstore(ctx: Context, id: str) -> Any:
    return _view(ctx, ctx.services.assetstores.get(id))


S3_PARAMS = (
    Param("bucket", strip=True, description="The S3 bucket to store data in (for S3 type)."),
    Param("prefix", description="Optional path prefix within the bucket under which files "
                                "will be stored (for S3 type)."),
    Param("accessKeyId", strip=True,
          description="The AWS access key ID to use for authentication (for S3 type)."),
    Param("secret", description="The AWS secret key to use for authentication (for S3 type)."),
    Param("service", strip=True, description="The S3 service host (for S3 type), as "
                                             "[http[s]://](host domain)[:(port)]."),
    Param("region", strip=True, description="The AWS region to which the S3 bucket belongs."),
    Param("inferCredentials", "boolean",
          description="Let boto infer the credentials (ignores accessKeyId and secret)."),
    Param("readOnly", "boolean", description="If this assetstore is read-only, set this to "
                                             "true."),
    Param("serverSideEncryption", "boolean",
          description="Whether to use S3 SSE to encrypt the objects uploaded to this bucket "
                      "(for S3 type)."),
    Param("allowS3AcceleratedTransfer", "boolean",
          description="Whether to allow clients to request S3 transfer acceleration "
                      "(uploadExtraParameters use_S3_transfer_acceleration; for S3 type). "
                      "Joist carries every byte itself, so allowing it only stops the "
                      "refusal."),
)
# Girder's defaults on create. An update leaves them out: Joist changes only the
# fields sent (Girder would reset, say, the region of an S3 store to us-east-1).
S3_CREATE_DEFAULTS = {"prefix": "", "service": "", "region": "us-east-1", "readOnly": False,
                      "serverSideEncryption": False, "allowS3AcceleratedTransfer": False}
S3_CREATE_PARAMS = tuple(replace(p, default=S3_CREATE_DEFAULTS.get(p.name, p.default))
                         for p in S3_PARAMS)
# handler argument -> Girder's field name, for every S3 parameter
_S3_WIRE_NAMES = {snake(p.name): p.name for p in S3_PARAMS}
FS_PARAMS = (
    Param("root", description="Root path on disk (for filesystem type)."),
    Param("perms", description="File creation permissions, octal (for filesystem type)."),
)


def _s3_fields(**given: Any) -> dict[str, Any]:
    """Girder's field names for the S3 parameters that were sent."""
    return {_S3_WIRE_NAMES.get(k, k): v for k, v in given.items() if v is not None}


def _mode(perms: str) -> int:
    try:
        return int(perms, 8)
    except ValueError:
        raise RestError("perms must be an octal number such as 600.") from None


@api.post("", "Create an assetstore.", scope=FULL_LOGIN, access="admin", params=(
    Param("name", required=True, strip=True, description="Unique name for the assetstore."),
    Param("type", "integer", required=True,
          description="Type of the assetstore (0 filesystem, 2 S3)."),
    *FS_PARAMS, Param("current", "boolean", default=False,
                      description="Make it the current assetstore (Joist's addition)."),
    *S3_CREATE_PARAMS))
def create_assetstore(ctx: Context, name: str, type: int, root: str | None,
                      perms: str | None, current: bool, **s3: Any) -> Any:
    if type == S3:
        return _view(ctx, ctx.services.assetstores.create_s3(name, _s3_fields(**s3),
                                                             current=current))
    if type != FILESYSTEM:
        raise RestError(f"Assetstore type {TYPE_NAMES.get(type, type)} is not available.")
    if not root:
        raise RestError("Parameter 'root' is required for a filesystem assetstore.")
    doc = ctx.services.assetstores.create_filesystem(
        name, root, perms=_mode(perms or "600"), current=current)
    return _view(ctx, doc)


@api.put(":id", "Update an existing assetstore.", scope=FULL_LOGIN, access="admin", params=(
    Param("name", required=True, strip=True, description="Unique name for the assetstore."),
    *FS_PARAMS,
    Param("current", "boolean", required=True,
          description="Whether this is the current assetstore."),
    *S3_PARAMS),
    notes="Fields of the other assetstore types are ignored, as in Girder. Joist changes "
          "only the type's fields that are given (a secret left out is kept), and refuses "
          "to move the storage location (root; bucket, prefix, service) of an assetstore "
          "that holds files, or current=false on the current assetstore.")
def update_assetstore(ctx: Context, id: str, name: str, root: str | None, perms: str | None,
                      current: bool, **s3: Any) -> Any:
    changes: dict[str, Any] = {**_s3_fields(**s3), "name": name, "current": current}
    if root is not None:
        changes["root"] = root
    if perms is not None:
        changes["perms"] = _mode(perms)
    return _view(ctx, ctx.services.assetstores.update(id, changes))


@api.delete(":id", "Delete an empty assetstore.", scope=FULL_LOGIN, access="admin")
def delete_assetstore(ctx: Context, id: str) -> dict[str, str]:
    doc = ctx.services.assetstores.get(id)
    ctx.services.assetstores.delete(doc["_id"])
    return {"message": f"Deleted assetstore {doc['name']}."}


@api.get(":id/files", "List the files stored in an assetstore.",
         scope=scopes.ASSETSTORES_READ, access="admin",
         params=paged("_id"))
def assetstore_files(ctx: Context, id: str, sort: str, limit: int, offset: int,
                     sortdir: int) -> list[Any]:
    limit, offset, spec = paging(limit, offset, sortdir, sort, "_id", "assetstore_file")
    doc = ctx.services.assetstores.get(id)
    files = ctx.services.assetstores.files_in(doc["_id"], skip=offset, limit=limit,
                                              sort=spec)
    return ctx.filter.many("file", files, ctx.principal)


@api.post(":id/import", "Import existing data (an S3 bucket prefix) without copying it.",
          scope=WRITE_SCOPE, access="admin", params=(
              Param("importPath", default="",
                    description="Root path within the underlying storage system to import "
                                "(default: all of it)."),
              Param("destinationId", required=True),
              Param("destinationType", required=True, enum=("folder", "collection", "user")),
              Param("progress", "boolean", default=False),
              Param("leafFoldersAsItems", "boolean", default=False),
              Param("fileIncludeRegex"), Param("fileExcludeRegex")))
def import_data(ctx: Context, id: str, import_path: str, destination_id: str,
                destination_type: str, progress: bool, leaf_folders_as_items: bool,
                file_include_regex: str | None, file_exclude_regex: str | None) -> Any:
    options = ImportOptions.build(leaf_folders_as_items=leaf_folders_as_items,
                                  include=file_include_regex, exclude=file_exclude_regex)
    with progress_of(ctx, progress, "Importing data") as steps:
        # the answer stays synchronous; with the jobs plugin a job shows it too
        summary = reported(ctx.services.events, ctx.principal, f"Import {import_path or '/'}",
                           "assetstore.import", steps, lambda report: ctx.services.imports.
                           import_data(ctx.principal, id, import_path, destination_type,
                                       destination_id, options, report), on=progress)
        counts = summary.as_dict()
        steps.update(force=True, message=", ".join(f"{v} {k}" for k, v in counts.items()))
    return counts
