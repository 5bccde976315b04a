"""``system``: version, settings, uploads and public settings."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

from ..app import Context
from ..filters import upload_view
from ..request import RestError
from ..response import Page
from ..router import Param, RouteCollector
from .common import PAGING

api = RouteCollector("system", "System utilities and settings.")
RELEASE = "5.0.0"  # girder-client compares the first component lexically: keep it 3-9
STARTED = _dt.datetime.now(_dt.UTC)


@api.get("version", "Get the version of the server.")
def version(ctx: Context) -> dict[str, Any]:
    return {"release": RELEASE, "apiVersion": RELEASE, "serverStartDate": STARTED,
            "server": "joist"}


@api.get("public_settings", "Settings anyone may read.")
def public_settings(ctx: Context) -> dict[str, Any]:
    return ctx.services.settings.public()


@api.get("setting", "Get the value of a system setting, or a list of them.", access="admin",
         params=(Param("key"), Param("list", "jsonArray"), Param("default")))
def get_setting(ctx: Context, key: str | None, list: Any, default: str | None) -> Any:
    settings = ctx.services.settings
    if list is not None:
        return {k: settings.get(k) for k in list}
    if key is None:
        raise RestError("You must specify a key or a list of keys to get.")
    return settings.get(key)


@api.put("setting", "Set the value of a system setting, or a list of them.", access="admin",
         params=(Param("key"), Param("value"), Param("list", "jsonArray")))
def set_setting(ctx: Context, key: str | None, value: str | None, list: Any) -> Any:
    settings = ctx.services.settings
    pairs = [(entry.get("key"), entry.get("value")) for entry in list or []] \
        if list is not None else [(key, value)]
    if list is None and key is None:
        raise RestError("You must specify a key and value, or a list of them.")
    for k, v in pairs:
        settings.set(k, _json_or_text(v))
    return True


@api.delete("setting", "Unset a setting (restore its default).", access="admin",
            params=(Param("key", required=True),))
def unset_setting(ctx: Context, key: str) -> None:
    ctx.services.settings.unset(key)


@api.get("uploads", "List partial uploads.", access="admin",
         params=(Param("userId", "objectId"), *PAGING))
def list_uploads(ctx: Context, user_id: Any, limit: int, offset: int, sortdir: int) -> Page:
    uploads = ctx.services.uploads.list(user_id=user_id, skip=offset, limit=limit)
    return Page([upload_view(u) for u in uploads])


@api.delete("uploads", "Discard partial uploads.", access="admin",
            params=(Param("uploadId", "objectId"), Param("userId", "objectId")))
def delete_uploads(ctx: Context, upload_id: Any, user_id: Any) -> list[Any]:
    uploads = ctx.services.uploads.list(user_id=user_id)
    if upload_id is not None:
        uploads = [u for u in uploads if u["_id"] == upload_id]
    for upload in uploads:
        ctx.services.uploads.discard(upload)
    return [upload_view(u) for u in uploads]


@api.get("access_flag", "List access flags (none are registered).")
def access_flags(ctx: Context) -> dict[str, Any]:
    return {}


@api.get("plugins", "List plugins (Joist has none).", access="admin")
def plugins(ctx: Context) -> dict[str, Any]:
    return {"all": {}, "enabled": [], "loaded": []}


@api.get("check", "Check the consistency of the store and assetstores.", access="admin")
def check(ctx: Context) -> dict[str, Any]:
    from joist.core.services.check import Checker
    findings = Checker(ctx.services).check()
    return {"problems": [str(f) for f in findings], "ok": not findings}



def _json_or_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
