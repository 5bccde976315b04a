"""``authorized_upload`` (Girder's plugin): a user with WRITE on a folder makes
a single-use link through which someone without an account uploads one file.

``POST authorized_upload?folderId=&duration=`` creates a token of the caller
holding only the scopes ``authorized_upload`` and
``authorized_upload_folder_<id>`` (so on every other route it is anonymous)
and answers ``{"url": ".../#authorized_upload/<folderId>/<token>"}``, the
web client's upload page.

The upload itself is Girder's REST protocol sent with that token. Handlers
on the upload routes' ``before`` events let the request act as the token's
creator, limited to ``core.data.write``, only when:

* ``POST file`` targets that folder (no link files) and the token still holds
  ``authorized_upload``, which is removed atomically right then (so a second
  ``POST file`` is refused; a refused first attempt gives it back);
* ``POST file/chunk``, ``GET file/offset``, ``POST file/completion`` name the
  upload that token started, and the creator still has WRITE on the folder.

When the upload's file exists, the token is deleted. An expired token, one
whose creator was disabled or deleted, is nothing: the route sees anonymous.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from bson import ObjectId

from .. import acl
from ..acl import Principal
from ..auth.scopes import DATA_WRITE
from ..errors import CoreError, ValidationError
from ..events import Event
from ..plugins import Plugin, PluginInfo, RouteParam

log = logging.getLogger("joist.plugins.authorized_upload")

SCOPE = "authorized_upload"  # Girder's TOKEN_SCOPE_AUTHORIZED_UPLOAD
MARK = "authorizedUpload"  # event info key: this request acts through a token
MAX_DAYS = 3650


def folder_scope(folder_id: Any) -> str:
    return f"authorized_upload_folder_{folder_id}"


class AuthorizedUploadPlugin(Plugin):
    name = "authorized_upload"
    description = "Create authorized upload URLs allowing users without accounts to " \
                  "upload data into a specific folder."
    url = "https://girder.readthedocs.io/en/latest/plugins.html#authorized-upload"

    def load(self, info: PluginInfo) -> None:
        services = info.services
        tokens = services.auth.tokens

        def create(ctx: Any, folder_id: str, duration: int | None) -> dict[str, str]:
            folder = services.folders.get(ctx.principal, folder_id, acl.WRITE)
            if duration is None:
                days = float(services.settings.get("core.cookie_lifetime"))
            elif 0 < duration <= MAX_DAYS:
                days = float(duration)
            else:
                raise ValidationError(f"Token duration must be between 1 and {MAX_DAYS} days.",
                                      field="duration")
            user = services.users.me(ctx.principal)
            doc = tokens.create(user, days=days, scopes=[SCOPE, folder_scope(folder["_id"])])
            tokens.update(doc["_id"], {"$set": {"authorizedUploadFolderId": folder["_id"]}})
            # core.email_host / server_root when set, else the address the
            # creator used (Girder's rule; the link goes back only to them)
            link = services.mail.link(ctx.request.base_url(),
                                      f"authorized_upload/{folder['_id']}/{doc['_id']}")
            return {"url": link}

        def creator(token: str) -> Principal | None:
            """The token's creator as the upload routes see it: a user whose
            only authority is writing data (its ACL decides where)."""
            grant = tokens.grant(token)
            if grant is None:
                return None
            plain = dataclasses.replace(grant.principal, scopes=frozenset({DATA_WRITE}),
                                        admitted=False)
            return plain.admit(DATA_WRITE)

        def init_before(event: Event) -> None:
            ctx, params = event.info["context"], event.info["params"]
            token = ctx.token
            if not token or params.get("parentType") != "folder" or "linkUrl" in params:
                return
            if tokens.lookup_scoped(token, SCOPE, folder_scope(params.get("parentId", ""))) \
                    is None:
                return
            principal = creator(token)
            if principal is None:
                return
            # the one claim: whoever removes the scope first starts the upload
            if tokens.update(token, {"$pull": {"scope": SCOPE}},
                             {"scope": SCOPE}) is None:
                return
            event.info["principal"] = principal
            event.info[MARK] = token

        def init_failed(event: Event) -> None:
            token = event.info.get(MARK)
            if token:  # the attempt made nothing: the link stays usable
                tokens.update(token, {"$addToSet": {"scope": SCOPE}},
                              {"authorizedUploadId": {"$exists": False}})

        def init_after(event: Event) -> None:
            token = event.info.get(MARK)
            if not token:
                return
            value = event.info.get("returnVal") or {}
            if value.get("_modelType") == "file":  # the whole file came at once
                tokens.delete(token)
            else:
                tokens.update(token, {"$set": {"authorizedUploadId": ObjectId(value["_id"])}})

        def step_before(event: Event) -> None:
            ctx, params = event.info["context"], event.info["params"]
            token = ctx.token
            if not token:
                return
            doc = tokens.lookup(token)
            upload_id = str(params.get("uploadId", ""))
            if doc is None or str(doc.get("authorizedUploadId", "")) != upload_id or \
                    not upload_id:
                return
            principal = creator(token)
            if principal is None:
                return
            try:  # the creator must still be allowed to write there
                services.folders.get(principal, doc["authorizedUploadFolderId"], acl.WRITE)
            except CoreError:
                log.info("authorized upload refused: its creator lost write access")
                return
            event.info["principal"] = principal
            event.info[MARK] = token

        def step_after(event: Event) -> None:
            token = event.info.get(MARK)
            value = event.info.get("returnVal")
            if token and isinstance(value, dict) and value.get("_modelType") == "file":
                tokens.delete(token)  # done: the link is dead

        info.bind("rest.post.file.before", init_before)
        info.bind("rest.post.file.failed", init_failed)
        info.bind("rest.post.file.after", init_after)
        for route in ("post.file/chunk", "get.file/offset", "post.file/completion"):
            info.bind(f"rest.{route}.before", step_before)
            info.bind(f"rest.{route}.after", step_after)
        info.add_route(
            "POST", "authorized_upload", create, scope=DATA_WRITE, access="user",
            summary="Create an authorized upload URL.",
            description="Single-use upload links for people without an account.",
            params=[RouteParam("folderId", required=True,
                               description="Destination folder ID for the upload."),
                    RouteParam("duration", kind="integer",
                               description="How many days the token should last.")])
