"""``user_quota`` (Girder's plugin): a storage quota per user and collection.

A root's policy is stored on its record under ``quota`` with Girder's keys:
``fileSizeQuota`` (bytes, None for unlimited), ``useQuotaDefault`` (take the
site default, the settings ``user_quota.default_user_quota`` and
``user_quota.default_collection_quota``), ``preferredAssetstore`` and
``fallbackAssetstore``: where the root's uploads go (Girder's rule, through
``model.upload.assetstore``): the preferred assetstore, or the fallback one
when the preferred is missing, failing or full (free space below the upload's
size, or none left for a streaming one); blank or ``current`` means the current
assetstore, a fallback of ``none`` refuses the upload instead (507 when full,
503 when unavailable).

What a root holds is the size ledger's recursive total (``size``). Every
upload begins in ``UploadService._start``, which fires ``model.upload.save``
before any byte is taken: an upload of known size (REST) that would not fit
is refused there with Girder's message (400); a streaming one (WebDAV PUT, a
FUSE or SFTP write) gets ``maxSize``, the most its final size may be, which
core enforces on every append with ``QuotaError`` (WebDAV 507, ENOSPC).
Replacing a file counts the difference. As in Girder the final size is checked
again on ``model.upload.finalize`` (uploads running side by side each fitted
alone); a refused upload is discarded. ``joist.space`` answers ``statfs``
(FUSE, SFTP, WebDAV's quota properties) with what the quota leaves.
"""

from __future__ import annotations

import logging
from typing import Any

from bson import ObjectId

from .. import acl
from ..db.engine import Document
from ..errors import (
    AccessDeniedError,
    CoreError,
    QuotaError,
    UnavailableError,
    ValidationError,
)
from ..events import Event
from ..hierarchy.view import SPACE_EVENT
from ..plugins import Plugin, PluginInfo, RouteParam
from ..services.uploads import ASSETSTORE_EVENT, FINALIZE_EVENT

log = logging.getLogger("joist.plugins.user_quota")

FIELD = "quota"
DEFAULT_USER = "user_quota.default_user_quota"
DEFAULT_COLLECTION = "user_quota.default_collection_quota"
POLICY_KEYS = ("fallbackAssetstore", "fileSizeQuota", "preferredAssetstore", "useQuotaDefault")
_SCOPE_READ, _SCOPE_WRITE = "core.data.read", "core.data.write"
_SETTING_OF = {"user": DEFAULT_USER, "collection": DEFAULT_COLLECTION}


def size_quota(value: Any) -> int | None:
    """Blank or a non-negative integer number of bytes (Girder's rule)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("Invalid quota.  Must be blank or a non-negative integer "
                         "representing the limit in bytes.")
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0 or (isinstance(value, float) and value != number):
        raise ValueError("Invalid quota.  Must be blank or a non-negative integer "
                         "representing the limit in bytes.")
    return number


def format_size(size: int) -> str:
    """Girder's ``formatSize``: bytes below 20000, else kB, MB, GB, TB."""
    if size < 20000:
        return f"{size} bytes"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1024
        if value < 10:
            return f"{value:.2f} {unit}"
        if value < 100:
            return f"{value:.1f} {unit}"
        if value < 20000 or unit == "TB":
            return f"{value:.0f} {unit}"
    return f"{value:.0f} TB"  # pragma: no cover - the loop returns


class UserQuotaPlugin(Plugin):
    name = "user_quota"
    description = "Storage quotas for users and collections."
    url = "https://girder.readthedocs.io/en/latest/plugins.html#user-and-collection-quotas"

    def load(self, info: PluginInfo) -> None:
        services = info.services
        store = services.tree.store
        info.register_setting(DEFAULT_USER, None, size_quota,
                              "The default storage quota of a user, in bytes (blank: none).")
        info.register_setting(DEFAULT_COLLECTION, None, size_quota,
                              "The default storage quota of a collection, in bytes (blank: none).")

        def limit(model: str, root: Document) -> int | None:
            policy = root.get(FIELD) or {}
            quota = policy.get("fileSizeQuota")
            if policy.get("useQuotaDefault", True):
                quota = services.settings.get(_SETTING_OF[model])
            return quota if isinstance(quota, int) and quota >= 0 else None

        def root_of(model: str, doc_id: Any) -> tuple[str, Document] | None:
            """The user or collection (freshly read: its size moves) holding a doc."""
            doc = store.of(model).find_one({"_id": doc_id})
            if doc is None:
                return None
            if model == "file":
                return root_of("item", doc["itemId"])
            if model not in ("user", "collection"):
                model, doc = doc["baseParentType"], store.of(doc["baseParentType"]).find_one(
                    {"_id": doc["baseParentId"]})
            return None if doc is None else (model, doc)

        def room(upload: Document) -> tuple[int, int, int] | None:
            """(quota, used, size of the file being replaced) of the upload's
            root, None when it has no quota."""
            old_size = 0
            if upload.get("fileId") is not None:
                file = store.files.find_one({"_id": upload["fileId"]})
                if file is None:
                    return None
                old_size = int(file.get("size") or 0)
                found = root_of("item", file["itemId"])
            else:
                found = root_of(upload["parentType"], upload["parentId"])
            quota = None if found is None else limit(*found)
            if found is None or quota is None:
                return None
            return quota, int(found[1].get("size") or 0), old_size

        def refusal(upload: Document, verb: str) -> str | None:
            """Girder's message when the upload's size does not fit, else None."""
            found = room(upload)
            if found is None:
                return None
            quota, used, old_size = found
            size = int(upload["size"])
            if used + size - old_size <= quota or size < old_size:
                return None  # Girder always allows replacing with something smaller
            return (f"Upload {verb} file storage quota (need {format_size(size - old_size)}, "
                    f"only {format_size(max(quota - used, 0))} available - used "
                    f"{format_size(used)} out of {format_size(quota)})")

        def upload_started(event: Event) -> None:
            upload = event.info
            if not upload.get("streaming"):
                message = refusal(upload, "would exceed")
                if message:
                    raise ValidationError(message, field="size")
                return
            found = room(upload)  # the final size is not known yet
            if found is not None:
                quota, used, old_size = found
                upload["maxSize"] = max(quota - used + old_size, 0)  # append enforces it
                if used - old_size > quota:  # already over: not even an empty file
                    raise QuotaError(f"Upload would exceed file storage quota (only "
                                     f"{format_size(max(quota - used, 0))} available - used "
                                     f"{format_size(used)} out of {format_size(quota)})")

        def upload_finishing(event: Event) -> None:
            """Checked again: uploads running side by side each fitted alone."""
            upload = event.info
            message = refusal(upload, "exceeded")
            if message:
                raise (QuotaError if upload.get("streaming") else ValidationError)(message)

        def usable(spec: Any, size: int | None) -> tuple[Document | None, str]:
            """(assetstore, "") to use, (None, "") for the current one, or
            (None, why) when ``spec`` allows none ("full", "unavailable")."""
            if not spec or spec == "current":
                return None, ""
            doc = None if spec == "none" else store.assetstores.find_one(
                {"_id": ObjectId(spec)})
            if doc is None:
                return None, "unavailable"
            try:
                free = services.assetstores.adapter(doc["_id"]).capacity().free
            except CoreError:  # its disk or bucket is gone, or cannot be reached
                return None, "unavailable"
            if free is not None and (free <= 0 if size is None else size > free):
                return None, "full"
            return doc, ""

        def choose_assetstore(event: Event) -> None:
            """Girder's ``getUploadAssetstore``: preferred, else fallback."""
            found = root_of(event.info["model"], event.info["resource"]["_id"])
            if found is None:
                return
            policy, size = found[1].get(FIELD) or {}, event.info.get("size")
            chosen, why = usable(policy.get("preferredAssetstore"), size)
            if why:
                fallback = policy.get("fallbackAssetstore")
                chosen, why_fallback = usable(fallback, size)
                if why_fallback:  # "none": the preferred one's reason is the answer
                    reason = why if fallback == "none" else why_fallback
                    raise (QuotaError if reason == "full" else UnavailableError)(
                        f"Required assetstore is {reason}.")
                log.info("preferred assetstore of %s %s is %s: using the fallback",
                         found[0], found[1]["_id"], why)
            if chosen is not None:
                event.add_response(chosen)

        def space(event: Event) -> None:
            found = root_of(event.info["model"], event.info["doc"]["_id"])
            if found is None:
                return
            quota = limit(*found)
            if quota is not None:
                used = int(found[1].get("size") or 0)
                event.add_response({"total": quota, "used": used,
                                    "free": max(quota - used, 0)})

        # ------------------------------------------------------------ routes
        def show(model: str, root: Document) -> dict[str, Any]:
            policy = dict(root.get(FIELD) or {})
            policy["_currentFileSizeQuota"] = limit(model, root)
            used = int(root.get("size") or 0)
            left = None if policy["_currentFileSizeQuota"] is None else \
                max(policy["_currentFileSizeQuota"] - used, 0)
            return {"_id": str(root["_id"]), "_modelType": model, FIELD: policy,
                    "used": used, "left": left}

        def load_root(ctx: Any, model: str, id: str) -> Document:
            if model == "user":
                return services.users.get(ctx.principal, id, acl.ADMIN)
            return services.collections.get(ctx.principal, id, acl.ADMIN)

        def validate(policy: Any) -> dict[str, Any]:
            if not isinstance(policy, dict):
                raise ValidationError("policy must be a JSON object.", field="policy")
            out: dict[str, Any] = {}
            for key, value in policy.items():
                if str(key).startswith("_"):
                    continue
                if key not in POLICY_KEYS:
                    raise ValidationError(f"{key} is not a valid quota policy key.  Valid keys "
                                          f"are {', '.join(POLICY_KEYS)}.", field="policy")
                out[key] = check[key](value)
            return out

        def assetstore(value: Any, *, allow_none: bool) -> str | None:
            if not value or value == "current":
                return None
            if allow_none and value == "none":
                return "none"
            if isinstance(value, str) and ObjectId.is_valid(value) and \
                    store.assetstores.find_one({"_id": ObjectId(value)}) is not None:
                return value
            raise ValidationError("Invalid assetstore.  Must be an assetstore ID, or be blank "
                                  "or \"current\" to use the current assetstore"
                                  + (", or \"none\"." if allow_none else "."),
                                  field="policy")

        def use_default(value: Any) -> bool:
            text = str(value).lower()
            if text in ("none", "true", "yes", "1"):
                return True
            if text in ("false", "no", "0"):
                return False
            raise ValidationError("Invalid useQuotaDefault.  Must either be true or false.",
                                  field="policy")

        def file_size(value: Any) -> int | None:
            try:
                return size_quota(value)
            except ValueError as exc:
                raise ValidationError(str(exc), field="policy") from None

        check = {"fileSizeQuota": file_size, "useQuotaDefault": use_default,
                 "preferredAssetstore": lambda v: assetstore(v, allow_none=False),
                 "fallbackAssetstore": lambda v: assetstore(v, allow_none=True)}

        def getter(model: str) -> Any:
            def get(ctx: Any, id: str) -> dict[str, Any]:
                return show(model, load_root(ctx, model, id))
            return get

        def setter(model: str) -> Any:
            def put(ctx: Any, id: str, policy: Any) -> dict[str, Any]:
                if not ctx.principal.is_site_admin:  # Girder: @access.admin
                    raise AccessDeniedError("Administrator access required.")
                root = load_root(ctx, model, id)
                changes = {f"{FIELD}.{k}": v for k, v in validate(policy).items()}
                if changes:
                    store.of(model).update_one({"_id": root["_id"]}, {"$set": changes})
                return show(model, store.of(model).find_one({"_id": root["_id"]}) or root)
            return put

        info.bind("model.upload.save", upload_started)
        info.bind(FINALIZE_EVENT, upload_finishing)
        info.bind(ASSETSTORE_EVENT, choose_assetstore)
        info.bind(SPACE_EVENT, space)
        for model in ("user", "collection"):
            id_param = RouteParam("id", required=True, location="path",
                                  description=f"The {model} ID")
            info.add_route("GET", f"{model}/:id/quota", getter(model), scope=_SCOPE_READ,
                           access="user", params=[id_param],
                           summary=f"Get quota and assetstore policies for the {model}.")
            info.add_route("PUT", f"{model}/:id/quota", setter(model), scope=_SCOPE_WRITE,
                           access="admin", params=[id_param, RouteParam(
                               "policy", "jsonObject", required=True,
                               description="A JSON object containing the policies. Any key "
                                           "that is not specified does not change.")],
                           summary=f"Set quota and assetstore policies for the {model}.")
