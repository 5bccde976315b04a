"""``group``: groups, members, invitations, moderators and admins."""

from __future__ import annotations

from typing import Any

from joist.core import acl

from ..app import Context
from ..response import Page
from ..router import FULL_LOGIN, Param, RouteCollector
from .common import PAGING, level_from, load, paging, sort_param

api = RouteCollector("group", "Groups of users.")


@api.get("", "List groups.",
         scope=FULL_LOGIN, params=(Param("text"), sort_param("lowerName"), *PAGING))
def list_groups(ctx: Context, text: str | None, sort: str, limit: int, offset: int,
                sortdir: int) -> Page:
    limit, offset, spec = paging(limit, offset, sortdir, sort, "lowerName")
    docs = ctx.services.groups.list(ctx.principal, skip=offset, limit=limit, sort=spec,
                                    text=text)
    return Page(ctx.filter.many("group", docs, ctx.principal))


@api.post("", "Create a group.", scope=FULL_LOGIN, access="user", params=(
    Param("name", required=True, strip=True), Param("description", default="", strip=True),
    Param("public", "boolean", default=False)))
def create_group(ctx: Context, name: str, description: str, public: bool) -> Any:
    doc = ctx.services.groups.create(ctx.principal, name, description=description,
                                     public=public)
    return ctx.filter("group", doc, ctx.principal)


@api.get(":id", "Get a group.", scope=FULL_LOGIN)
def get_group(ctx: Context, id: str) -> Any:
    return ctx.filter("group", load(ctx, "group", id), ctx.principal)


@api.put(":id", "Edit a group.", scope=FULL_LOGIN, access="user", params=(
    Param("name", strip=True), Param("description", strip=True), Param("public", "boolean")))
def update_group(ctx: Context, id: str, name: str | None, description: str | None,
                 public: bool | None) -> Any:
    doc = load(ctx, "group", id, acl.WRITE)
    doc = ctx.services.groups.update(ctx.principal, doc, name=name, description=description,
                                     public=public)
    return ctx.filter("group", doc, ctx.principal)


@api.delete(":id", "Delete a group.", scope=FULL_LOGIN, access="user")
def delete_group(ctx: Context, id: str) -> dict[str, str]:
    doc = load(ctx, "group", id, acl.ADMIN)
    ctx.services.groups.delete(ctx.principal, doc)
    return {"message": f"Deleted the group {doc['name']}."}


@api.get(":id/access", "A group's moderators and admins.", scope=FULL_LOGIN, access="user")
def group_access(ctx: Context, id: str) -> Any:
    doc = load(ctx, "group", id)
    return ctx.services.access.get(ctx.principal, "group", doc) \
        if ctx.services.tree.level(ctx.principal, "group", doc) >= acl.ADMIN \
        else {"users": [], "groups": []}


@api.get(":id/member", "List a group's members.", scope=FULL_LOGIN, params=PAGING)
def members(ctx: Context, id: str, limit: int, offset: int, sortdir: int) -> list[Any]:
    doc = load(ctx, "group", id)
    users = ctx.services.groups.members(ctx.principal, doc, skip=offset, limit=limit)
    return ctx.filter.many("user", users, ctx.principal)


@api.get(":id/invitation", "List pending invitations.",
         scope=FULL_LOGIN, access="user", params=PAGING)
def invitations(ctx: Context, id: str, limit: int, offset: int, sortdir: int) -> list[Any]:
    doc = load(ctx, "group", id, acl.READ)
    users = ctx.services.groups.invitations(ctx.principal, doc, skip=offset, limit=limit)
    return ctx.filter.many("user", users, ctx.principal)


@api.post(":id/invitation", "Invite a user (or add directly with force).",
          scope=FULL_LOGIN, access="user",
          params=(Param("userId", required=True), Param("level", "integer", default=0),
                  Param("quiet", "boolean", default=False),
                  Param("force", "boolean", default=False)))
def invite(ctx: Context, id: str, user_id: str, level: int, quiet: bool, force: bool) -> Any:
    group = load(ctx, "group", id, acl.WRITE)
    user = load(ctx, "user", user_id)
    ctx.services.groups.add_member(ctx.principal, group, user, level=level_from(level),
                                   force=force)
    return ctx.filter("group", ctx.services.groups.reload(group), ctx.principal)


@api.post(":id/member", "Join a group (accept an invitation, or request to join).",
          scope=FULL_LOGIN, access="user")
def join(ctx: Context, id: str) -> Any:
    group = load(ctx, "group", id)
    return ctx.filter("group", ctx.services.groups.join(ctx.principal, group), ctx.principal)


@api.delete(":id/member", "Remove a user from a group (or leave it).",
            scope=FULL_LOGIN, access="user",
            params=(Param("userId"),))
def remove_member(ctx: Context, id: str, user_id: str | None) -> Any:
    group = load(ctx, "group", id)
    user = load(ctx, "user", user_id) if user_id else ctx.user_doc()
    ctx.services.groups.remove_member(ctx.principal, group, user)
    return ctx.filter("group", ctx.services.groups.reload(group), ctx.principal)


def _role_routes(role: str, level: int) -> None:
    def promote(ctx: Context, id: str, user_id: str) -> Any:
        group = load(ctx, "group", id, acl.ADMIN)
        ctx.services.groups.set_role(ctx.principal, group, load(ctx, "user", user_id), level)
        return ctx.filter("group", ctx.services.groups.reload(group), ctx.principal)

    def demote(ctx: Context, id: str, user_id: str) -> Any:
        group = load(ctx, "group", id, acl.ADMIN)
        ctx.services.groups.set_role(ctx.principal, group, load(ctx, "user", user_id),
                                     acl.READ)
        return ctx.filter("group", ctx.services.groups.reload(group), ctx.principal)

    params = (Param("userId", required=True),)
    api.post(f":id/{role}", f"Make a member a group {role}.", access="user",
             scope=FULL_LOGIN, params=params)(promote)
    api.delete(f":id/{role}", f"Demote a group {role} to member.", access="user",
               scope=FULL_LOGIN, params=params)(demote)


_role_routes("moderator", acl.WRITE)
_role_routes("admin", acl.ADMIN)
