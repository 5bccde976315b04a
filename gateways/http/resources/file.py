"""``file``: Girder's upload protocol, downloads and file records."""

from __future__ import annotations

from typing import Any

from joist.core import acl
from joist.core.hierarchy.nodes import file_etag
from joist.core.jobs import reported
from joist.core.services.uploads import UploadStep

from ..app import Context
from ..downloads import send_bytes
from ..filters import upload_view
from ..request import RestError
from ..response import Raw
from ..router import READ_SCOPE, WRITE_SCOPE, Param, RouteCollector
from .common import load, progress_of

api = RouteCollector("file", "Files: upload protocol and downloads.")


def _step(ctx: Context, step: UploadStep) -> Any:
    if step.file is not None:
        return ctx.filter("file", step.file, ctx.principal)
    assert step.upload is not None
    return upload_view(step.upload)


def _body_length(ctx: Context) -> int | None:
    if ctx.request.content_type.startswith("multipart/"):
        raise RestError("Multipart encoding is no longer supported. Send the chunk in the "
                        "request body, and other parameters in the query string.")
    return ctx.request.content_length


EXTRA_PARAMETERS = Param(
    "uploadExtraParameters", "json",
    description="Arbitrary data to send along with the upload request (JSON). Girder hands it "
                "to the assetstore; the one key any assetstore reads is "
                "use_S3_transfer_acceleration, refused by an S3 assetstore that does not "
                "allow accelerated transfer. Joist receives every byte itself, so nothing "
                "else changes; other keys are accepted and ignored.")


@api.post("", "Start an upload (or create a link file).", access="user", scope=WRITE_SCOPE,
          raw_body=True, params=(
              Param("parentType", required=True, enum=("folder", "item")),
              Param("parentId", required=True), Param("name", required=True, strip=True),
              Param("size", "integer"), Param("mimeType"), Param("reference"),
              Param("assetstoreId"), Param("linkUrl"), EXTRA_PARAMETERS),
          notes="A body sent with Content-Length is the first chunk.")
def init_upload(ctx: Context, parent_type: str, parent_id: str, name: str,
                size: int | None, mime_type: str | None, reference: str | None,
                assetstore_id: str | None, link_url: str | None,
                upload_extra_parameters: Any) -> Any:
    svc = ctx.services
    parent = load(ctx, parent_type, parent_id, acl.WRITE)
    if link_url is not None:
        item = parent if parent_type == "item" else svc.items.create(ctx.principal, parent,
                                                                    name)
        doc = svc.files.create_link(ctx.principal, item, name, link_url.strip(),
                                    mime_type=mime_type)
        return ctx.filter("file", doc, ctx.principal)
    if size is None:
        raise RestError("Parameter 'size' is required.")
    step = svc.uploads.begin(ctx.principal, parent_type, parent["_id"], name, size,
                             mime_type=mime_type, reference=reference,
                             assetstore_id=assetstore_id,
                             extra_parameters=upload_extra_parameters)
    if step.upload is not None and ctx.request.has_data_body:
        length = _body_length(ctx)
        step = svc.uploads.write(ctx.principal, step.upload["_id"], 0, ctx.request.body,
                                 length)
    return _step(ctx, step)


@api.post("chunk", "Upload a chunk at an offset (raw body).", access="user",
          scope=WRITE_SCOPE, raw_body=True, params=(
              Param("uploadId", required=True, location="formData",
                    description="The ID of the upload record."),
              Param("offset", "integer", default=0,
                    description="Offset of the chunk in the file: where the server is."),
              EXTRA_PARAMETERS),
          notes="The data for the chunk is the body of the request; the other parameters "
                "go in the query string.")
def upload_chunk(ctx: Context, upload_id: str, offset: int,
                 upload_extra_parameters: Any) -> Any:
    length = _body_length(ctx)
    if length is None and not ctx.request.chunked:
        length = 0
    step = ctx.services.uploads.write(ctx.principal, upload_id, offset, ctx.request.body,
                                      length, extra_parameters=upload_extra_parameters)
    return _step(ctx, step)


@api.get("offset", "Where to resume an upload.", access="user", scope=WRITE_SCOPE,
         params=(Param("uploadId", required=True, location="formData",
                       description="The ID of the upload record."),))
def upload_offset(ctx: Context, upload_id: str) -> dict[str, int]:
    return {"offset": ctx.services.uploads.offset(ctx.principal, upload_id)}


@api.post("completion", "Finalize an upload whose bytes have all arrived.", access="user",
          scope=WRITE_SCOPE, params=(Param("uploadId", required=True, location="formData",
                                           description="The ID of the upload record."),))
def complete_upload(ctx: Context, upload_id: str) -> Any:
    doc = ctx.services.uploads.complete(ctx.principal, upload_id)
    return ctx.filter("file", doc, ctx.principal)


@api.delete("upload/:id", "Cancel an upload.", access="user", scope=WRITE_SCOPE)
def cancel_upload(ctx: Context, id: str) -> dict[str, str]:
    ctx.services.uploads.cancel(ctx.principal, id)
    return {"message": "Upload canceled."}


@api.get(":id", "Get a file's record.", scope=READ_SCOPE)
def get_file(ctx: Context, id: str) -> Any:
    return ctx.filter("file", load(ctx, "file", id), ctx.principal)


@api.put(":id", "Rename a file or change its MIME type.", access="user", scope=WRITE_SCOPE,
         params=(Param("name", strip=True), Param("mimeType")))
def update_file(ctx: Context, id: str, name: str | None, mime_type: str | None) -> Any:
    doc = load(ctx, "file", id, acl.WRITE)
    doc = ctx.services.files.update(ctx.principal, doc, name=name, mime_type=mime_type)
    return ctx.filter("file", doc, ctx.principal)


@api.delete(":id", "Delete a file.", access="user", scope=WRITE_SCOPE)
def delete_file(ctx: Context, id: str) -> None:
    ctx.services.files.delete(ctx.principal, load(ctx, "file", id, acl.WRITE))


@api.put(":id/contents", "Replace a file's bytes (chunks follow).", access="user",
         scope=WRITE_SCOPE, params=(Param("size", "integer", required=True),
                                    Param("reference"), Param("assetstoreId")))
def replace_contents(ctx: Context, id: str, size: int, reference: str | None,
                     assetstore_id: str | None) -> Any:
    doc = load(ctx, "file", id, acl.WRITE)
    step = ctx.services.uploads.begin_replace(ctx.principal, doc, size, reference=reference,
                                              assetstore_id=assetstore_id)
    return _step(ctx, step)


@api.post(":id/copy", "Copy a file into an item (sharing its bytes).",
          access="user", scope=WRITE_SCOPE,
          params=(Param("itemId", required=True, location="formData",
                        description="The item to copy the file to."),))
def copy_file(ctx: Context, id: str, item_id: str) -> Any:
    doc = load(ctx, "file", id)
    item = load(ctx, "item", item_id, acl.WRITE)
    return ctx.filter("file", ctx.services.files.copy(ctx.principal, doc, item),
                      ctx.principal)


@api.put(":id/move", "Move a file's bytes to another assetstore (the id stays).",
         access="admin", scope=WRITE_SCOPE, params=(
             Param("assetstoreId", required=True, location="formData",
                   description="The destination assetstore."),
             Param("progress", "boolean", default=False)))
def move_file(ctx: Context, id: str, assetstore_id: str, progress: bool) -> Any:
    file = load(ctx, "file", id)
    with progress_of(ctx, progress, f"Moving file {file['name']}", "file", file,
                     lambda: int(file.get("size") or 0)) as steps:
        # the answer stays synchronous; with the jobs plugin a job shows it too
        doc = reported(ctx.services.events, ctx.principal, f"Move {file['name']}", "file.move",
                       steps, lambda report: ctx.services.transfers.move(
                           ctx.principal, file, assetstore_id, report), on=progress)
        steps.update(force=True, current=int(file.get("size") or 0),
                     message="Moved to the new assetstore")
    return ctx.filter("file", doc, ctx.principal)


DOWNLOAD_PARAMS = (
    Param("offset", "integer", default=0,
          description="Start downloading at this offset in bytes within the file."),
    Param("endByte", "integer", description="If you only wish to download part of the file, "
          "pass this as the index of the last byte to download. Unlike the HTTP Range "
          "header, the endByte parameter is non-inclusive, so you should set it to the "
          "index of the byte one past the final byte you wish to receive."),
    Param("contentDisposition", default="attachment", enum=("inline", "attachment"),
          description="Specify the Content-Disposition response header disposition-type "
                      "value."),
    Param("extraParameters", description="Arbitrary data to send along with the download "
          "request, only for new-style assetstore adapters (ignored by Joist's)."))


def download(ctx: Context, doc: dict[str, Any], offset: int, end_byte: int | None,
             content_disposition: str) -> Raw:
    if doc.get("linkUrl"):
        return Raw(303, [("Location", doc["linkUrl"]), ("Content-Length", "0")])
    if offset == 0 and end_byte is None:  # (a Range header follows the redirect)
        url = ctx.services.files.download_url(doc, disposition=content_disposition or
                                              "attachment")
        if url is not None:
            return Raw(303, [("Location", url), ("Content-Length", "0")])
    reader = ctx.services.files.open_read(ctx.principal, doc, check_access=False)
    return send_bytes(ctx.request, reader, size=int(doc.get("size") or 0), name=doc["name"],
                      mime_type=doc.get("mimeType"), etag=file_etag(doc),
                      modified=doc.get("updated") or doc.get("created"), offset=offset,
                      end_byte=end_byte, disposition=content_disposition or "attachment")


@api.get(":id/download", "Download a file (Range, offset/endByte).", scope=READ_SCOPE,
         cookie=True, params=DOWNLOAD_PARAMS)
def download_file(ctx: Context, id: str, offset: int, end_byte: int | None,
                  content_disposition: str, extra_parameters: str | None) -> Raw:
    return download(ctx, load(ctx, "file", id), offset, end_byte, content_disposition)


@api.get(":id/download/:name", "Download a file (the name is ignored).", scope=READ_SCOPE,
         cookie=True, params=DOWNLOAD_PARAMS)
def download_named(ctx: Context, id: str, name: str, offset: int, end_byte: int | None,
                   content_disposition: str, extra_parameters: str | None) -> Raw:
    return download(ctx, load(ctx, "file", id), offset, end_byte, content_disposition)
