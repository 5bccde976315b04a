"""``group``: groups, members, invitations, moderators and admins."""

from __future__ import annotations

from typing import Any

from joist.core import acl

from ..app import Context
from ..response import Page
from ..router import FULL_LOGIN, Param, RouteCollector
from .common import level_from, load, paged, paging

api = RouteCollector("group", "Groups of users.")
USER_ID = Param("userId", required=True, location="formData",
                description="The ID of the user.")
ADD_ALLOWED = ("default", "no", "yesmod", "yesadmin")


@api.get("", "Search for groups or list all groups.", scope=FULL_LOGIN, params=(
    Param("text", description="Pass this to perform a full-text search for groups."),
    Param("exact", "boolean", default=False,
          description="If true, only return exact name matches. This is case sensitive."),
    *paged("name")))
def list_groups(ctx: Context, text: str | None, exact: bool, sort: str, limit: int,
                offset: int, sortdir: int) -> Page:
    limit, offset, spec = paging(limit, offset, sortdir, sort, "name", "group")
    docs = ctx.services.groups.list(ctx.principal, skip=offset, limit=limit, sort=spec,
                                    text=text, exact=exact)
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


@api.put(":id", "Update a group by ID.", scope=FULL_LOGIN, access="user", params=(
    Param("name", strip=True, description="The name to set on the group."),
    Param("description", strip=True, description="Description for the group."),
    Param("public", "boolean", description="Whether the group should be publicly visible"),
    Param("addAllowed", enum=ADD_ALLOWED,
          description="Can admins or moderators directly add members to this group? "
                      "Only system administrators are allowed to set this field")))
def update_group(ctx: Context, id: str, name: str | None, description: str | None,
                 public: bool | None, add_allowed: str | None) -> Any:
    doc = load(ctx, "group", id, acl.WRITE)
    doc = ctx.services.groups.update(ctx.principal, doc, name=name, description=description,
                                     public=public, add_allowed=add_allowed)
    return ctx.filter("group", doc, ctx.principal)


@api.delete(":id", "Delete a group.", scope=FULL_LOGIN, access="user")
def delete_group(ctx: Context, id: str) -> dict[str, str]:
    doc = load(ctx, "group", id, acl.ADMIN)
    ctx.services.groups.delete(ctx.principal, doc)
    return {"message": f"Deleted the group {doc['name']}."}


@api.get(":id/access", "A group's moderators and admins.", scope=FULL_LOGIN)
def group_access(ctx: Context, id: str) -> Any:
    return ctx.services.access.get(ctx.principal, "group", load(ctx, "group", id))


@api.get(":id/member", "List members of a group.", scope=FULL_LOGIN,
         params=paged("lastName"))
def members(ctx: Context, id: str, sort: str, limit: int, offset: int,
            sortdir: int) -> list[Any]:
    doc = load(ctx, "group", id)
    limit, offset, spec = paging(limit, offset, sortdir, sort, "lastName", "group_member")
    users = ctx.services.groups.members(ctx.principal, doc, skip=offset, limit=limit,
                                        sort=spec)
    return ctx.filter.many("user", users, ctx.principal)


@api.get(":id/invitation", "Show outstanding invitations for a group.",
         scope=FULL_LOGIN, params=paged("lastName"))
def invitations(ctx: Context, id: str, sort: str, limit: int, offset: int,
                sortdir: int) -> list[Any]:
    doc = load(ctx, "group", id, acl.READ)
    limit, offset, spec = paging(limit, offset, sortdir, sort, "lastName", "group_member")
    users = ctx.services.groups.invitations(ctx.principal, doc, skip=offset, limit=limit,
                                            sort=spec)
    return ctx.filter.many("user", users, ctx.principal)


@api.post(":id/invitation", "Invite a user to join a group, or accept a user's request "
          "to join.", scope=FULL_LOGIN, access="user", params=(
              Param("userId", required=True, location="formData",
                    description="The ID of the user to invite or accept."),
              Param("level", "integer", default=0, description="The access level the user "
                    "will be given when they accept the invitation."),
              Param("quiet", "boolean", default=False, description="If you do not want this "
                    "action to send an email to the target user, set this to true."),
              Param("force", "boolean", default=False, description="Add user directly rather "
                    "than sending an invitation (admin-only option).")))
def invite(ctx: Context, id: str, user_id: str, level: int, quiet: bool, force: bool) -> Any:
    group = load(ctx, "group", id, acl.WRITE)
    user = load(ctx, "user", user_id)
    ctx.services.groups.add_member(ctx.principal, group, user, level=level_from(level),
                                   force=force, quiet=quiet,
                                   origin=ctx.request.server_url())
    return ctx.filter("group", ctx.services.groups.reload(group), ctx.principal)


@api.post(":id/member", "Join a group (accept an invitation, or request to join).",
          scope=FULL_LOGIN, access="user")
def join(ctx: Context, id: str) -> Any:
    group = load(ctx, "group", id)
    return ctx.filter("group", ctx.services.groups.join(ctx.principal, group), ctx.principal)


@api.delete(":id/member", "Remove a user from a group (or leave it).",
            scope=FULL_LOGIN, access="user",
            params=(Param("userId", location="formData", description="The ID of the user "
                          "to remove. If not passed, removes the current user."),))
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

    params = (USER_ID,)
    api.post(f":id/{role}", f"Make a member a group {role}.", access="user",
             scope=FULL_LOGIN, params=params)(promote)
    api.delete(f":id/{role}", f"Demote a group {role} to member.", access="user",
               scope=FULL_LOGIN, params=params)(demote)


_role_routes("moderator", acl.WRITE)
_role_routes("admin", acl.ADMIN)
