"""``hashsum_download`` (Girder's plugin, for CMake's ExternalData): files
show their ``sha512``, can be downloaded by it, and each has a key file.

Every upload to a filesystem, GridFS or S3 assetstore already records the
SHA-512 of its bytes (it names the blob), so nothing is computed on
``data.process``; a large filesystem upload gets it from its hand-over moments
after its commit (``core.services.handover``), and asking for it meanwhile
runs that hand-over at once. The only other files without one are imported
S3 objects (and link files, which have no bytes): ``POST file/:id/hashsum`` (Girder's manual
computation, WRITE access) reads the bytes once and stores the digest, and with
Girder's setting ``hashsum_download.auto_compute`` an import queues that on the
event bus's bounded background queue, or in a job when the ``jobs`` plugin is
loaded (with progress, and rerun if its process dies). Until then
their key file answers Girder's "does not have the hash computed" error.
Access is Girder's: a key file needs READ on the file; a download by hash sends
the first file with that hash the caller may read, else 404.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bson import ObjectId

from .. import acl
from ..acl import SYSTEM
from ..errors import AccessDeniedError, NotFoundError, ValidationError
from ..events import Event
from ..jobs.runtime import JOBS_LOADED, jobs_runtime
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
CHUNK = 1 << 20
MAX_CANDIDATES = 1000  # files with one hash examined per request (bounded work)
AUTO_COMPUTE = "hashsum_download.auto_compute"  # Girder's setting
COMPUTE_EVENT = "hashsum_download.compute"
JOB_TYPE = "hashsum_download.compute"
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


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("Auto-compute hash setting must be true or false.")
    return value


def _compute(files: Any, file: dict[str, Any]) -> dict[str, str] | None:
    """Read the bytes once, store the missing digests; None if none was missing.
    A pending blob is handed over instead (its content address is its sha512)."""
    if file.get("pending"):
        settled = files.handover.settle(file)
        if settled.get("sha512"):
            return {"sha512": settled["sha512"]}
        # copies in flight still hold the pending blob: hash, but store nothing
        # (only the hand-over may give the record its content address)
        return _digests(files, settled, list(SUPPORTED_ALGORITHMS))
    missing = [a for a in SUPPORTED_ALGORITHMS if not file.get(a)]
    if not missing or file.get("linkUrl") or not file.get("assetstoreId"):
        return None
    digests = _digests(files, file, missing)
    # only if the bytes were not replaced (re-imported) meanwhile
    same: dict[str, Any] = {k: file[k] for k in ("size", "s3Key", "path") if k in file}
    files.store.files.update_one({"_id": file["_id"], **same}, {"$set": digests})
    return digests


def _digests(files: Any, file: dict[str, Any], algorithms: list[str]) -> dict[str, str]:
    hashers = {a: hashlib.new(a) for a in algorithms}
    with files.open_read(SYSTEM, file, check_access=False) as reader:
        # each block is hashed before the next is read: the buffer may be reused
        for block in reader.iter_range(0, int(file.get("size") or 0), CHUNK, reuse=True):
            for hasher in hashers.values():
                hasher.update(block)
    return {a: h.hexdigest() for a, h in hashers.items()}


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
            if file.get("pending"):  # hashed moments after its upload: now, then
                file = {**file, **(_compute(files, file) or {})}
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

        def compute(ctx: Any, id: str) -> dict[str, str] | None:
            """Girder's answer: the digests computed now, None if none was missing."""
            try:
                file = files.get(ctx.principal, id, acl.WRITE)
            except NotFoundError:
                raise ValidationError(f"Invalid file id ({id}).", field="id") from None
            no_bytes = file.get("linkUrl") or not file.get("assetstoreId")
            if no_bytes and any(not file.get(a) for a in SUPPORTED_ALGORITHMS):
                raise ValidationError("A link file has no bytes to hash.")
            return _compute(files, file)

        def imported(event: Event) -> None:
            """An imported object has no digest: with auto-compute on, compute
            it in a job (with the jobs plugin), else on the bus's bounded
            background queue."""
            file = event.info
            if not (file.get("imported") and not file.get("sha512") and
                    services.settings.get(AUTO_COMPUTE)):
                return
            runtime = jobs_runtime(info.events)
            if runtime is None:
                info.events.trigger_async(COMPUTE_EVENT, {"fileId": file["_id"]})
                return
            register(runtime)
            runtime.create_and_schedule(f"Compute the hashsum of {file.get('name')}", JOB_TYPE,
                                        kwargs={"fileId": str(file["_id"])})

        def compute_later(event: Event) -> None:
            file = files.store.files.find_one({"_id": event.info["fileId"]})
            if file is not None:  # deleted meanwhile: nothing to do
                _compute(files, file)

        def compute_job(ctx: Any) -> None:
            file = files.store.files.find_one({"_id": ObjectId(ctx.kwargs["fileId"])})
            if file is None:
                ctx.log("The file was deleted before its hashsum was computed.")
                return
            ctx.progress(0, int(file.get("size") or 0), "reading")
            _compute(files, file)
            ctx.progress(int(file.get("size") or 0), None, "computed")

        def register(runtime: Any) -> None:
            # reading the bytes again is harmless: a job lost with its process reruns
            runtime.register_type(JOB_TYPE, compute_job, rerun_safe=True)

        # every process (servers, Celery workers) knows the job type, whichever
        # of the two plugins loads first
        if (loaded := jobs_runtime(info.events)) is not None:
            register(loaded)
        info.bind(JOBS_LOADED, lambda event: register(event.info))

        info.register_setting(AUTO_COMPUTE, False, _boolean,
                              "Compute the SHA-512 of imported files in the background.")
        info.bind("model.file.save.created", imported)
        info.bind(COMPUTE_EVENT, compute_later)
        info.add_route("POST", "file/:id/hashsum", compute, scope="core.data.write",
                       access="user", summary="Manually compute the checksum values for a "
                       "given file.", params=[RouteParam("id", required=True, location="path",
                                                         description="The ID of the file.")])
        info.add_route("GET", "file/:id/hashsum_file/:algo", key_file, scope=READ_SCOPE,
                       cookie=True,
                       summary="Download the hashsum key file for a given file.",
                       params=[RouteParam("id", required=True, location="path",
                                          description="The ID of the file."), _ALGO])
        info.add_route("GET", "file/hashsum/:algo/:hash", by_hash, scope=READ_SCOPE, cookie=True,
                       summary="Return a list of files matching a hashsum.",
                       params=[_ALGO, _HASH])
        info.add_route("GET", "file/hashsum/:algo/:hash/download", download, scope=READ_SCOPE,
                       cookie=True,
                       summary="Download a file by its hashsum.",
                       params=[_ALGO, _HASH, *_DOWNLOAD])
