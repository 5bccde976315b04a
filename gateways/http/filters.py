"""Which stored fields the REST API shows, to whom (Girder's field exposure).

Only whitelisted fields leave the server; ``_modelType`` is always added and
access-controlled models also get ``_accessLevel``.
"""

from __future__ import annotations

from typing import Any

from joist.core import acl
from joist.core.acl import Principal
from joist.core.services import Services

READ_FIELDS: dict[str, tuple[str, ...]] = {
    "user": ("_id", "login", "public", "firstName", "lastName", "admin", "created"),
    "collection": ("_id", "name", "description", "public", "publicFlags", "created",
                   "updated", "size", "meta"),
    "folder": ("_id", "name", "public", "publicFlags", "description", "created", "updated",
               "size", "meta", "parentId", "parentCollection", "creatorId", "baseParentType",
               "baseParentId"),
    "item": ("_id", "size", "updated", "description", "created", "meta", "creatorId",
             "folderId", "name", "baseParentType", "baseParentId", "copyOfItem"),
    "file": ("_id", "mimeType", "itemId", "exts", "name", "created", "creatorId", "size",
             "updated", "linkUrl"),
    "group": ("_id", "name", "public", "description", "created", "updated"),
    "api_key": ("_id", "active", "created", "key", "lastUse", "name", "scope",
                "tokenDuration", "userId"),
}
ADMIN_FIELDS: dict[str, tuple[str, ...]] = {
    "user": ("size", "email", "groups", "groupInvites", "status", "emailVerified"),
    "group": ("requests",),
}
SITE_ADMIN_FIELDS: dict[str, tuple[str, ...]] = {"file": ("assetstoreId",)}
ACCESS_CONTROLLED = ("user", "collection", "folder", "group", "api_key")
ALWAYS_PRESENT = {"meta": dict, "public": bool, "description": str}


class Filter:
    def __init__(self, services: Services) -> None:
        self.services = services

    def __call__(self, model: str, doc: dict[str, Any] | None, principal: Principal,
                 level: int | None = None) -> dict[str, Any] | None:
        if doc is None:
            return None
        if model in ACCESS_CONTROLLED and level is None:
            level = self.services.tree.level(principal, model, doc) if model != "api_key" \
                else acl.ADMIN
        out: dict[str, Any] = {}
        for key in READ_FIELDS.get(model, ()):
            if key in doc:
                out[key] = doc[key]
        for key in self.services.plugins.exposed_fields.get(model, ()):
            if key in doc:  # what an enabled plugin shows (hashsum_download: sha512)
                out[key] = doc[key]
        if level is not None and level >= acl.ADMIN:
            for key in ADMIN_FIELDS.get(model, ()):
                if key in doc:
                    out[key] = doc[key]
            if model == "user":
                out["otp"] = bool((doc.get("otp") or {}).get("enabled"))
        if principal.is_site_admin:
            for key in SITE_ADMIN_FIELDS.get(model, ()):
                if key in doc:
                    out[key] = doc[key]
        for key, kind in ALWAYS_PRESENT.items():
            if key in READ_FIELDS.get(model, ()) and key not in out:
                out[key] = kind()
        if model == "group":
            out["_addToGroupPolicy"] = self.services.settings.get("core.add_to_group_policy")
            # The group's own direct-add policy as stored (PUT group/:id addAllowed).
            out["addAllowed"] = doc.get("addAllowed", "default")
        out["_modelType"] = model
        if model in ACCESS_CONTROLLED and level is not None:
            out["_accessLevel"] = int(level)
        return out

    def many(self, model: str, docs: list[dict[str, Any]],
             principal: Principal) -> list[dict[str, Any]]:
        return [d for d in (self(model, doc, principal) for doc in docs) if d is not None]


def upload_view(upload: dict[str, Any]) -> dict[str, Any]:
    """Upload documents go out raw (Girder), minus the adapter's private state
    (Girder leaks the server's temp path here; we do not)."""
    return {k: v for k, v in upload.items()
            if k not in ("state", "streaming", "onCollision")}
