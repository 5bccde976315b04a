"""``token`` and ``api_key``: sessions and long-lived keys."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from joist.core import acl
from joist.core.errors import ValidationError

from ..app import Context
from ..request import RestError
from ..response import Page
from ..router import FULL_LOGIN, Param, RouteCollector
from .common import PAGING, paging, sort_param
from .user import token_view

tokens = RouteCollector("token", "Authentication tokens.")
keys = RouteCollector("api_key", "API keys.")


@tokens.get("current", "The raw document of the current token.", scope=FULL_LOGIN)
def current(ctx: Context) -> Any:
    if not ctx.token:
        return None
    return ctx.services.auth.tokens.lookup(ctx.token)


@tokens.get("session", "Get a session token (an anonymous one if none was sent).", scope=FULL_LOGIN)
def session(ctx: Context) -> dict[str, Any]:
    auth = ctx.services.auth
    doc = auth.tokens.lookup(ctx.token) if ctx.token else None
    if doc is None:
        doc = auth.tokens.create(None, days=float(ctx.services.settings.get(
            "core.cookie_lifetime")), scopes=[acl.SCOPE_ANONYMOUS])
    return {"token": doc["_id"], "expires": doc["expires"]}


@tokens.delete("session", "Remove a session from the system.", scope=FULL_LOGIN,
                access="token")
def end_session(ctx: Context) -> dict[str, str]:
    if ctx.token:
        ctx.services.auth.tokens.delete(ctx.token)
    return {"message": "Session deleted."}


@tokens.get("scopes", "List the token scopes.", scope=FULL_LOGIN)
def list_scopes(ctx: Context) -> dict[str, Any]:
    return ctx.services.scopes.listing()


def _owner_id(ctx: Context, user_id: str | None) -> ObjectId | None:
    if user_id is None:
        return None
    try:
        return ObjectId(user_id)
    except Exception:
        raise ValidationError(f"Invalid ObjectId: {user_id}", field="userId") from None


@keys.get("", "List API keys.", scope=FULL_LOGIN, access="user",
          params=(Param("userId"), sort_param("name"), *PAGING))
def list_keys(ctx: Context, user_id: str | None, sort: str, limit: int, offset: int,
              sortdir: int) -> Page:
    limit, offset, spec = paging(limit, offset, sortdir, sort, "name", "api_key")
    docs = ctx.services.auth.api_keys.list(ctx.principal, user_id=_owner_id(ctx, user_id),
                                           skip=offset, limit=limit, sort=spec)
    return Page(ctx.filter.many("api_key", docs, ctx.principal))


# Girder declares it a string (a number of days, possibly fractional).
TOKEN_DURATION = Param("tokenDuration", description="Max number of days tokens created with "
                       "this key will last.")


def _days(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise RestError(f"Invalid value for tokenDuration: {value}.") from None


@keys.post("", "Create an API key.", scope=FULL_LOGIN, access="user", params=(
    Param("name", default=""), Param("scope", "json"), TOKEN_DURATION,
    Param("active", "boolean", default=True), Param("targetUserId")))
def create_key(ctx: Context, name: str, scope: Any, token_duration: str | None,
               active: bool, target_user_id: str | None) -> Any:
    if scope is not None and not isinstance(scope, list):
        raise ValidationError("Parameter scope must be a JSON array or null.", field="scope")
    doc = ctx.services.auth.api_keys.create(
        ctx.principal, name=name, scope=scope, token_duration=_days(token_duration),
        active=active,
        user_id=_owner_id(ctx, target_user_id))
    return ctx.filter("api_key", doc, ctx.principal)


@keys.put(":id", "Update an API key.", scope=FULL_LOGIN, access="user", params=(
    Param("name"), Param("scope", "json"), TOKEN_DURATION, Param("active", "boolean")))
def update_key(ctx: Context, id: str, name: str | None, scope: Any,
               token_duration: str | None, active: bool | None) -> Any:
    changes: dict[str, Any] = {"name": name, "token_duration": _days(token_duration),
                               "active": active}
    if "scope" in ctx.request.params():
        changes["scope"] = scope
    doc = ctx.services.auth.api_keys.update(ctx.principal, _owner_id(ctx, id), **changes)
    return ctx.filter("api_key", doc, ctx.principal)


@keys.delete(":id", "Delete an API key.", scope=FULL_LOGIN, access="user")
def delete_key(ctx: Context, id: str) -> dict[str, str]:
    ctx.services.auth.api_keys.delete(ctx.principal, _owner_id(ctx, id))
    return {"message": "Deleted API key."}


@keys.post("token", "Create a token from an API key.", scope=FULL_LOGIN, params=(
    Param("key", required=True), Param("duration", "number")))
def key_token(ctx: Context, key: str, duration: float | None) -> dict[str, Any]:
    token = ctx.services.auth.api_key_login(key, duration)
    return {"user": {"_id": token["userId"]}, "authToken": token_view(token)}
