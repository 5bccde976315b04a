"""``hashsum_download`` (Girder's plugin, for CMake's ExternalData): files
show their ``sha512``, can be downloaded by it, and each has a key file.

Every upload to a filesystem, GridFS or S3 assetstore already records the
SHA-512 of its bytes (it names the blob), so the plugin computes nothing for
them. Files without one (imported or link files) answer Girder's "does not
have the hash computed" error; Joist has no background computation for them
yet. Access is Girder's: a key file needs READ on the file; a download by hash
sends the first file with that hash the caller may read, else 404.
"""

from __future__ import annotations

from typing import Any

from .. import acl
from ..errors import AccessDeniedError, NotFoundError, ValidationError
from ..plugins import (
    FileDownload,
    Plugin,
    PluginInfo,
    Records,
    RouteError,
    RouteParam,
    TextAttachment,
)

SUPPORTED_ALGORITHMS = ("sha512",)
READ_SCOPE = "core.data.read"
MAX_CANDIDATES = 1000  # files with one hash examined per request (bounded work)
_ALGO = RouteParam("algo", required=True, location="path",
                   description="The hashsum algorithm (case insensitive).")
_HASH = RouteParam("hash", required=True, location="path",
                   description="The hexadecimal hashsum (case insensitive).")
_DOWNLOAD = (
    RouteParam("offset", "integer", default=0, description="Start downloading at this offset."),
    RouteParam("endByte", "integer", description="Stop before this offset (exclusive)."),
    RouteParam("contentDisposition", default="attachment", enum=("attachment", "inline"),
               description="The Content-Disposition disposition-type."),
)


def _algo(algo: str) -> str:
    algo = str(algo).lower()
    if algo not in SUPPORTED_ALGORITHMS:
        raise ValidationError(f'Invalid algorithm "{algo}". Supported algorithms: '
                              f'{", ".join(SUPPORTED_ALGORITHMS)}.', field="algo")
    return algo


class HashsumDownloadPlugin(Plugin):
    name = "hashsum_download"
    description = "Download files by their hashsum (CMake ExternalData)."
    url = "https://girder.readthedocs.io/en/latest/plugins.html#hashsum-download"

    def load(self, info: PluginInfo) -> None:
        services = info.services
        files = services.files
        info.expose_fields("file", SUPPORTED_ALGORITHMS)

        def readable(principal: Any, algo: str, digest: str, limit: int) -> list[dict[str, Any]]:
            """Files with that hash the principal may read, oldest first."""
            found: list[dict[str, Any]] = []
            query = {algo: str(digest).lower()}
            for doc in files.store.files.find(query, sort=[("_id", 1)], limit=MAX_CANDIDATES):
                try:
                    found.append(files.get(principal, doc["_id"], acl.READ))
                except (AccessDeniedError, NotFoundError):
                    continue  # a denied file is not revealed
                if len(found) >= limit:
                    break
            return found

        def key_file(ctx: Any, id: str, algo: str) -> TextAttachment:
            algo = _algo(algo)
            try:
                file = files.get(ctx.principal, id, acl.READ)
            except NotFoundError:
                raise ValidationError(f"Invalid file id ({id}).", field="id") from None
            if not file.get(algo):
                raise ValidationError(f"This file does not have the {algo} hash computed.")
            return TextAttachment(f"{file['name']}.{algo}", f"{file[algo]}\n")

        def by_hash(ctx: Any, algo: str, hash: str) -> Records:
            return Records("file", readable(ctx.principal, _algo(algo), hash, MAX_CANDIDATES))

        def download(ctx: Any, algo: str, hash: str, offset: int, end_byte: int | None,
                     content_disposition: str) -> FileDownload:
            first = readable(ctx.principal, _algo(algo), hash, 1)
            if not first:
                raise RouteError("File not found.", 404)
            return FileDownload(first[0], offset, end_byte, content_disposition)

        info.add_route("GET", "file/:id/hashsum_file/:algo", key_file, scope=READ_SCOPE,
                       summary="Download the hashsum key file for a given file.",
                       params=[RouteParam("id", required=True, location="path",
                                          description="The ID of the file."), _ALGO])
        info.add_route("GET", "file/hashsum/:algo/:hash", by_hash, scope=READ_SCOPE,
                       summary="Return a list of files matching a hashsum.",
                       params=[_ALGO, _HASH])
        info.add_route("GET", "file/hashsum/:algo/:hash/download", download, scope=READ_SCOPE,
                       summary="Download a file by its hashsum.",
                       params=[_ALGO, _HASH, *_DOWNLOAD])
