"""``system``: version, settings, uploads and public settings."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from typing import Any

from joist.core import validation
from joist.core.auth import scopes
from joist.core.errors import NotFoundError
from joist.core.plugins import ENABLED_SETTING, RESTART_NOTE
from joist.core.services import status as system_status
from joist.core.services.abandoned import AbandonedUploads, UploadQuery, UploadStatus
from joist.core.services.check import Checker

from ..app import Context
from ..filters import upload_view
from ..request import RestError
from ..response import Page
from ..router import FULL_LOGIN, Param, RouteCollector
from .common import PAGING, check_window, paging, progress_of, sort_param

api = RouteCollector("system", "System utilities and settings.")
RELEASE = "5.0.0"  # girder-client compares the first component lexically: keep it 3-9
STARTED = _dt.datetime.now(_dt.UTC)
CHECK_SETTLE_SECONDS = 300.0


@api.get("version", "Get the version of the server.", scope=FULL_LOGIN)
def version(ctx: Context) -> dict[str, Any]:
    return {"release": RELEASE, "apiVersion": RELEASE, "serverStartDate": STARTED,
            "server": "joist"}


@api.get("endpoints", "Where this server's other protocols (WebDAV, SFTP) listen.",
         scope=FULL_LOGIN)
def endpoints(ctx: Context) -> dict[str, Any]:
    """For the web client's Connect panel: the WebDAV path (and its own port, if
    any) on this host, and the SFTP address; null for a protocol not served."""
    if ctx.endpoints is None:
        return {"webdav": None, "sftp": None}
    return ctx.endpoints()


@api.get("public_settings", "Settings anyone may read.", scope=FULL_LOGIN)
def public_settings(ctx: Context) -> dict[str, Any]:
    return ctx.services.settings.public()


@api.get("setting", "Get the value of a system setting, or a list of them.",
         scope=scopes.SETTINGS_READ, access="admin",
         params=(Param("key", description="The key identifying this setting."),
                 Param("list", "jsonArray", description="A JSON list of keys representing "
                       "a set of settings to return."),
                 Param("default", description="Girder 3's default=none|default: the stored "
                       "value only, or the schema default (ignored; values include "
                       "defaults).")))
def get_setting(ctx: Context, key: str | None, list: Any, default: str | None) -> Any:
    settings = ctx.services.settings
    if list is not None:
        return {k: settings.shown(k) for k in list}
    if key is None:
        raise RestError("You must specify a key or a list of keys to get.")
    return settings.shown(key)


@api.get("setting/definitions", "Every setting with its value, default, help and choices.",
         scope=scopes.SETTINGS_READ, access="admin",
         notes="Joist's addition, for the web client's settings page: the same list as "
               "`joist setting list`.")
def setting_definitions(ctx: Context) -> list[dict[str, Any]]:
    return ctx.services.settings.describe()


@api.put("setting", "Set the value of a system setting, or a list of them.",
         scope=FULL_LOGIN, access="admin",
         params=(Param("key", location="formData",
                       description="The key identifying this setting."),
                 Param("value", location="formData",
                       description="The value for this setting."),
                 Param("list", "jsonArray", location="formData",
                       description="A JSON list of objects with key and value "
                                   "representing a list of settings to set.")))
def set_setting(ctx: Context, key: str | None, value: str | None, list: Any) -> Any:
    settings = ctx.services.settings
    if list is not None and not all(isinstance(entry, dict) for entry in list):
        raise RestError("Parameter list must be a JSON array of objects with key and value.")
    pairs = [(entry.get("key"), entry.get("value")) for entry in list or []] \
        if list is not None else [(key, value)]
    if list is None and key is None:
        raise RestError("You must specify a key and value, or a list of them.")
    for k, v in pairs:
        settings.set(k, _json_or_text(v))
    return True


@api.delete("setting", "Unset a setting (restore its default).", scope=FULL_LOGIN, access="admin",
            params=(Param("key", required=True),))
def unset_setting(ctx: Context, key: str) -> None:
    ctx.services.settings.unset(key)


@api.get("ldap_server/status", "Test the connection to an LDAP server (Girder's LDAP "
         "plugin).", scope=FULL_LOGIN, access="admin",
         params=(Param("uri", required=True, description="The URI of the server."),
                 Param("bindName", required=True, description="The LDAP identity to bind "
                       "with."),
                 Param("password", required=True, description="Password to bind with; "
                       "empty: the one stored in ldap.servers for this uri and bindName.")))
def ldap_server_status(ctx: Context, uri: str, bind_name: str,
                       password: str) -> dict[str, Any]:
    return ctx.services.auth.directory.server_status(uri, bind_name, password)


UPLOAD_FILTERS = (
    Param("uploadId", "objectId", description="Only this upload."),
    Param("userId", "objectId", description="Only uploads started by this user."),
    Param("parentId", "objectId", description="Only uploads into this folder or item."),
    Param("assetstoreId", "objectId", description="Only uploads to this assetstore."),
    Param("minimumAge", "number",
          description="Only uploads idle for at least this many days (their record and "
                      "their temporary bytes)."),
    Param("includeUntracked", "boolean", default=True,
          description="Also temporary data in the assetstores that no upload record owns "
                      "(left by a killed upload), filtered by assetstoreId and minimumAge; "
                      "only when uploadId, userId and parentId are not given."),
)
DAY = 86400.0


def _query(upload_id: Any, user_id: Any, parent_id: Any, assetstore_id: Any,
           minimum_age: float | None, include_untracked: bool) -> UploadQuery:
    return UploadQuery(upload_id, user_id, parent_id, assetstore_id,
                       None if minimum_age is None else minimum_age * DAY, include_untracked)


@api.get("uploads", "Get a list of uploads that have not been finished.",
         scope=scopes.PARTIAL_UPLOAD_READ, access="admin",
         params=(*UPLOAD_FILTERS, *PAGING, sort_param("updated")),
         notes="Upload records first (sorted and paged); untracked temporary data fills "
               "what room the page has left, as in Girder; it continues the records' list, "
               "so offset pages through it too.")
def list_uploads(ctx: Context, upload_id: Any, user_id: Any, parent_id: Any,
                 assetstore_id: Any, minimum_age: float | None, include_untracked: bool,
                 limit: int, offset: int, sortdir: int, sort: str) -> Page:
    limit, offset, spec = paging(limit, offset, sortdir, sort, "updated")
    query = _query(upload_id, user_id, parent_id, assetstore_id, minimum_age,
                   include_untracked)
    found = AbandonedUploads.of(ctx.services).listing(query, sort=spec, limit=limit,
                                                      offset=offset)
    return Page([*map(_status_view, found.statuses), *found.untracked])


@api.delete("uploads", "Discard uploads that have not been finished.",
            scope=scopes.PARTIAL_UPLOAD_CLEAN, access="admin", params=UPLOAD_FILTERS,
            notes="Frees their temporary data and removes their records; an upload being "
                  "written at this moment is left alone. Answers what was discarded.")
def delete_uploads(ctx: Context, upload_id: Any, user_id: Any, parent_id: Any,
                   assetstore_id: Any, minimum_age: float | None,
                   include_untracked: bool) -> list[Any]:
    query = _query(upload_id, user_id, parent_id, assetstore_id, minimum_age,
                   include_untracked)
    removed = AbandonedUploads.of(ctx.services).discard(query)
    return [*map(_status_view, removed.statuses), *removed.untracked]


def _status_view(status: UploadStatus) -> dict[str, Any]:
    return {**upload_view(status.upload), "tempBytes": status.activity.temp_bytes,
            "abandoned": status.abandoned}


@api.get("access_flag", "List the access flags plugins registered.", scope=FULL_LOGIN)
def access_flags(ctx: Context) -> dict[str, Any]:
    return ctx.services.plugins.flags()


@api.get("plugins", "List installed, enabled, loaded (and failed) plugins.",
         scope=scopes.PLUGINS_READ, access="admin")
def plugins(ctx: Context) -> dict[str, Any]:
    return ctx.services.plugins.listing()


@api.put("plugins", "Set the plugins to load at the next start.", scope=FULL_LOGIN,
         access="admin", notes=RESTART_NOTE,
         params=(Param("plugins", "jsonArray", required=True,
                       description="JSON array of plugin names to enable."),))
def enable_plugins(ctx: Context, plugins: Any) -> dict[str, Any]:
    # Girder's answer (the stored setting), and when it takes effect.
    enabled = ctx.services.plugins.set_enabled(ctx.principal, plugins)
    return {"key": ENABLED_SETTING, "value": enabled, "restartRequired": True,
            "message": RESTART_NOTE}


@api.get("check", "Report the current system status.", scope=FULL_LOGIN,
         notes="Must be a system administrator to call this with any mode other than "
               "basic; slow mode adds the store and assetstore consistency check.",
         params=(Param("mode", default="basic", enum=system_status.MODES,
                       description='Select details to return. "quick" are the details '
                       'that can be answered without much load on the system. "slow" also '
                       'includes some resource-intensive queries.'),))
def check(ctx: Context, mode: str) -> dict[str, Any]:
    out = system_status.status(mode, anonymous=ctx.principal.is_anonymous,
                        site_admin=ctx.principal.is_site_admin, started=STARTED.timestamp())
    out["requestBase"] = ctx.request.base_url()
    if mode == "slow":
        findings = Checker(ctx.services).check(settled_before=_settled())
        out.update(problems=[str(f) for f in findings], ok=not findings)
    return out


@api.put("check", "Repair what a consistency check finds.", scope=FULL_LOGIN, access="admin",
         params=(Param("progress", "boolean", default=False),))
def repair(ctx: Context, progress: bool) -> dict[str, Any]:
    checker = Checker(ctx.services)
    settled = _settled()
    with progress_of(ctx, progress, "Repairing the store") as steps:
        found = checker.check(settled_before=settled)
        steps.update(force=True, total=len(found), message=f"Found {len(found)} problems")
        left = checker.repair(found, settled_before=settled)
        steps.update(force=True, current=len(found), message="Repaired")
    return {"repaired": len(found) - len(left), "problems": [str(f) for f in left],
            "ok": not left}


def _settled() -> float:
    # Work younger than this may be in flight on a live server: not judged.
    return time.time() - CHECK_SETTLE_SECONDS


@api.get("configuration", "Get the value of a system configuration option.",
         scope=scopes.SETTINGS_READ, access="admin", params=(
             Param("section", required=True,
                   description="The section identifying the configuration option."),
             Param("key", required=True,
                   description="The key identifying the configuration option.")))
def configuration(ctx: Context, section: str, key: str) -> Any:
    s = ctx.settings
    # The deployment configuration a client may see (no secrets, no paths).
    sections: dict[str, dict[str, Any]] = {
        "server": dataclasses.asdict(s.server), "webdav": dataclasses.asdict(s.webdav),
        "sftp": {"enabled": s.sftp.enabled, "host": s.sftp.host, "port": s.sftp.port},
        "database": {"engine": s.database.engine}}
    if section not in sections:
        raise NotFoundError("No section with that name exists.", field="section")
    if key not in sections[section]:
        raise NotFoundError("No key with that name exists.", field="key")
    return sections[section][key]


@api.get("plugin_static_files", "Static files of web client plugins (none).", scope=FULL_LOGIN)
def plugin_static_files(ctx: Context) -> dict[str, list[str]]:
    return {"css": [], "js": []}


@api.get("setting/collection_creation_policy/access",
         "Who may create collections, as an access list.", scope=FULL_LOGIN, access="admin")
def collection_policy_access(ctx: Context) -> dict[str, Any]:
    policy = ctx.services.settings.get("core.collection_create_policy") or {}
    members, groups = ctx.services.collections.creation_policy_members()
    users = [{"id": user["_id"], "login": user["login"],
              "name": f"{user.get('firstName', '')} {user.get('lastName', '')}".strip()}
             for user in members]
    return {"open": bool(policy.get("open")), "users": users,
            "groups": [{"id": group["_id"], "name": group["name"],
                        "description": group.get("description", "")} for group in groups]}


def _json_or_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return validation.loads_json(value)
    except ValueError:
        return value


@api.get("mail", "The mail outbox: messages waiting to be sent and those given up on.",
         scope=scopes.SETTINGS_READ, access="admin",
         params=(Param("limit", "integer", default=50, description="Failures to list."),
                 Param("offset", "integer", default=0, description="Offset into failures.")),
         notes="Failures are newest first: the message's kind (template), recipients, "
               "subject, attempts and the last errors. The newest 500 are kept, 30 days.")
def mail_status(ctx: Context, limit: int, offset: int) -> dict[str, Any]:
    check_window(limit, offset)
    mail = ctx.services.mail
    return {"queued": mail.outbox.pending(), "failureCount": mail.failure_count(),
            "failures": mail.failures(limit=limit, offset=offset)}


@api.delete("mail", "Forget the record of mail that could not be sent.", scope=FULL_LOGIN,
            access="admin")
def clear_mail_failures(ctx: Context) -> dict[str, Any]:
    return {"removed": ctx.services.mail.clear_failures()}
