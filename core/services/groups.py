"""Groups: membership lives on the user (``groups``, ``groupInvites``); group
moderators (WRITE) and admins (ADMIN) in the group's ``access.users``."""

from __future__ import annotations

import builtins
import re
from typing import TYPE_CHECKING, Any

from bson import ObjectId

from .. import acl
from ..acl import Principal
from ..clock import utcnow
from ..db.engine import Document, DuplicateKeyError, SortSpec
from ..errors import AccessDeniedError, ExistsError, ValidationError
from ..stored_settings import SettingsService
from ..validation import validate_name
from .tree_access import TreeAccess

if TYPE_CHECKING:
    from ..mail import Notices

GROUP_EXISTS = "A group with that name already exists."
# A group's own say on direct adds (Girder's ``addAllowed``): "default" defers
# to the site's core.add_to_group_policy; the others only count where that
# policy lets groups decide (see ``_may_add_directly``).
ADD_ALLOWED = ("default", "no", "yesmod", "yesadmin")


class GroupService:
    def __init__(self, tree: TreeAccess, settings: SettingsService, *,
                 notices: Notices | None = None) -> None:
        self.tree = tree
        self.store = tree.store
        self.settings = settings
        self.notices = notices

    def create(self, principal: Principal, name: Any, *, description: str = "",
               public: bool = True) -> Document:
        if principal.is_anonymous and not principal.admin:
            raise acl.denial(principal, acl.WRITE, "group", None)
        name = validate_name(name, "Group name")
        now = utcnow()
        doc: dict[str, Any] = {
            "name": name, "lowerName": name.lower(),
            "description": (description or "").strip(), "creatorId": principal.user_id,
            "created": now, "updated": now, "public": bool(public), "requests": [],
            "access": acl.new_access(principal.user_id),
        }
        self.tree.saving("group", doc)
        try:
            self.store.groups.insert_one(doc)
        except DuplicateKeyError:
            raise ExistsError(GROUP_EXISTS, field="name") from None
        if principal.user_id is not None:
            # The creator is a member too (membership is on the user document).
            self.store.users.update_one({"_id": principal.user_id},
                                        {"$addToSet": {"groups": doc["_id"]}})
        self.tree.saved("group", doc, created=True)
        return doc

    def get(self, principal: Principal, group_id: Any, level: int = acl.READ) -> Document:
        return self.tree.load(principal, "group", group_id, level)

    def by_name(self, name: str) -> Document | None:
        return self.store.groups.find_one({"lowerName": str(name).strip().lower()})

    def list(self, principal: Principal, *, skip: int = 0, limit: int = 50,
             sort: SortSpec | None = None, text: str | None = None,
             exact: bool = False) -> builtins.list[Document]:
        """Groups the principal may see; ``text`` matches names (case-insensitive),
        or with ``exact`` the whole name, case-sensitively (Girder's ``exact``)."""
        member_of: dict[str, Any] = {"_id": {"$in": sorted(principal.groups)}}
        visible = acl.permission_filter(principal, acl.READ)
        query: dict[str, Any] = {} if visible is None else {"$or": [visible, member_of]}
        if text is not None and exact:
            query = acl.and_filter(query, {"name": text})
        elif text:
            query = acl.and_filter(query, {"lowerName": {
                "$regex": re.escape(text.strip().lower())}})
        return self.store.groups.find(query, sort=sort or [("lowerName", 1), ("_id", 1)],
                                      skip=skip, limit=limit)

    def update(self, principal: Principal, group: Document, *, name: Any = None,
               description: str | None = None, public: bool | None = None,
               add_allowed: str | None = None) -> Document:
        self.tree.require(principal, "group", group, acl.WRITE)
        update: dict[str, Any] = {"updated": utcnow()}
        if add_allowed is not None:
            # Only site admins choose a group's direct-add policy (Girder's rule).
            if not principal.is_site_admin:
                raise AccessDeniedError("Only administrators may set addAllowed.")
            if add_allowed not in ADD_ALLOWED:
                raise ValidationError(f"addAllowed must be one of {', '.join(ADD_ALLOWED)}.",
                                      field="addAllowed")
            update["addAllowed"] = add_allowed
        if name is not None:
            new_name = validate_name(name, "Group name")
            update.update(name=new_name, lowerName=new_name.lower())
        if description is not None:
            update["description"] = description.strip()
        if public is not None:
            update["public"] = bool(public)
        self.tree.saving("group", {**group, **update})
        try:
            self.store.groups.update_one({"_id": group["_id"]}, {"$set": update})
        except DuplicateKeyError:
            raise ExistsError(GROUP_EXISTS, field="name") from None
        self.tree.saved("group", {**group, **update})
        return {**group, **update}

    def delete(self, principal: Principal, group: Document) -> None:
        self.tree.require(principal, "group", group, acl.ADMIN)
        self.tree.removing("group", group)
        gid = group["_id"]
        self.store.users.update_many({"groups": gid}, {"$pull": {"groups": gid}})
        self.store.users.update_many({"groupInvites.groupId": gid},
                                     {"$pull": {"groupInvites": {"groupId": gid}}})
        for coll in (self.store.collections, self.store.folders):
            coll.update_many({"access.groups.id": gid},
                             {"$pull": {"access.groups": {"id": gid}}})
        self.store.groups.delete_one({"_id": gid})
        self.tree.acl_changed()
        self.tree.removed("group", group)

    # ------------------------------------------------------------ members
    def members(self, principal: Principal, group: Document, *, skip: int = 0,
                limit: int = 50, sort: SortSpec | None = None) -> builtins.list[Document]:
        self.tree.require(principal, "group", group, acl.READ)
        return self.store.users.find(
            {"groups": group["_id"]},
            sort=sort or [("lastName", 1), ("firstName", 1), ("_id", 1)],
            skip=skip, limit=limit)

    def invitations(self, principal: Principal, group: Document, *, skip: int = 0,
                    limit: int = 50, sort: SortSpec | None = None) -> builtins.list[Document]:
        """The users with a pending invitation to ``group`` (READ on it required)."""
        self.tree.require(principal, "group", group, acl.READ)
        return self.store.users.find({"groupInvites.groupId": group["_id"]},
                                     sort=sort or [("lastName", 1), ("_id", 1)],
                                     skip=skip, limit=limit)

    def reload(self, group: Document) -> Document:
        """``group`` as stored now: after a membership change the caller made
        (and was allowed to make), whatever it may still read of it."""
        return self.store.get("group", group["_id"])

    def _may_add_directly(self, principal: Principal, group: Document, level: int) -> bool:
        """Girder's rule for adding a member without an invitation. The site
        policy says who may (``yesmod``: group moderators and admins,
        ``yesadmin``: group admins, ``never``: site admins only) and whether a
        group may decide otherwise: ``no...`` policies are off by default but
        let a group turn it on, ``yes...`` ones let a group turn it off."""
        if principal.is_site_admin:
            return True
        policy = self.settings.get("core.add_to_group_policy")
        own = group.get("addAllowed", "default")
        effective = own if own in ("no", "yesmod", "yesadmin") else policy
        if level >= acl.ADMIN and ("mod" in policy or "admin" in policy) and \
                effective.startswith("yes"):
            return True
        return level >= acl.WRITE and "mod" in policy and effective == "yesmod"

    def add_member(self, principal: Principal, group: Document, user: Document, *,
                   level: int = acl.READ, force: bool = False, quiet: bool = True,
                   origin: str = "") -> Document:
        """Invite ``user`` (Girder's default), or add directly when ``force``d by
        someone allowed to (site admins; group admins/moderators per policy).
        An invitation is mailed to the user unless ``quiet`` (REST: Girder's
        ``quiet`` parameter, false by default there)."""
        my_level = self.tree.require(principal, "group", group, acl.WRITE)
        if level not in (acl.READ, acl.WRITE, acl.ADMIN):
            raise ValidationError("Invalid access level", field="level")
        if level > my_level and not principal.is_site_admin:
            raise AccessDeniedError("You may not grant a level above your own.")
        if force:
            if not self._may_add_directly(principal, group, my_level):
                raise AccessDeniedError("Adding members directly is not allowed here.")
            self._join(group, user, level)
        elif user["_id"] in (self.store.get("group", group["_id"]).get("requests") or []):
            self._join(group, user, level)  # they asked to join: inviting them accepts (Girder)
        else:
            self.store.users.update_one({"_id": user["_id"]}, {"$pull": {
                "groupInvites": {"groupId": group["_id"]}}})
            self.store.users.update_one({"_id": user["_id"]}, {"$push": {
                "groupInvites": {"groupId": group["_id"], "level": int(level)}}})
            if not quiet and self.notices is not None and principal.user_id is not None:
                inviter = self.store.users.find_one({"_id": principal.user_id}) or {}
                self.notices.group_invite(inviter, user, group, origin)
        return self.store.get("user", user["_id"])

    def join(self, principal: Principal, group: Document) -> Document:
        """Accept an invitation (or ask to join when there is none)."""
        user = self.store.get("user", principal.user_id)
        invite = next((i for i in user.get("groupInvites") or []
                       if i.get("groupId") == group["_id"]), None)
        if invite is None:
            self.store.groups.update_one({"_id": group["_id"]},
                                         {"$addToSet": {"requests": user["_id"]}})
        else:
            self._join(group, user, int(invite.get("level", acl.READ)))
        return self.store.get("group", group["_id"])

    def _join(self, group: Document, user: Document, level: int) -> None:
        self.store.users.update_one({"_id": user["_id"]}, {
            "$addToSet": {"groups": group["_id"]},
            "$pull": {"groupInvites": {"groupId": group["_id"]}}})
        self.store.groups.update_one({"_id": group["_id"]},
                                     {"$pull": {"requests": user["_id"]}})
        self._set_role(group, user["_id"], level)

    def _set_role(self, group: Document, user_id: ObjectId, level: int) -> None:
        fresh = self.store.get("group", group["_id"])
        role = level if level >= acl.WRITE else None  # plain members have no entry
        access = acl.grant(fresh.get("access"), "user", user_id, role)
        self.store.groups.update_one({"_id": group["_id"]}, {"$set": {"access": access}})

    def set_role(self, principal: Principal, group: Document, user: Document,
                 level: int) -> None:
        """Promote or demote a member (moderator = WRITE, admin = ADMIN)."""
        self.tree.require(principal, "group", group, acl.ADMIN)
        if group["_id"] not in (user.get("groups") or []):
            raise ValidationError("That user is not a member of the group.", field="userId")
        self._set_role(group, user["_id"], level)

    def remove_member(self, principal: Principal, group: Document, user: Document) -> None:
        if principal.user_id != user["_id"]:
            self.tree.require(principal, "group", group, acl.WRITE)
        gid = group["_id"]
        self.store.users.update_one({"_id": user["_id"]}, {
            "$pull": {"groups": gid, "groupInvites": {"groupId": gid}}})
        self.store.groups.update_one({"_id": gid}, {"$pull": {"requests": user["_id"]}})
        self._set_role(group, user["_id"], acl.READ)
