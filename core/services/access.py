"""Reading and replacing access lists (``GET/PUT <model>/{id}/access``)."""

from __future__ import annotations

from typing import Any

from .. import acl
from ..acl import Principal
from ..db.engine import Document
from ..errors import ValidationError
from .tree_access import TreeAccess

ACL_MODELS = ("collection", "folder", "user", "group")


class AccessService:
    def __init__(self, tree: TreeAccess) -> None:
        self.tree = tree
        self.store = tree.store

    def get(self, principal: Principal, model: str, doc: Document) -> dict[str, Any]:
        """The list with names filled in; entries for deleted principals are
        dropped (and the pruned list saved, as Girder does). ADMIN may read
        the list of a tree document; a group's is its moderators and
        administrators, shown to whoever may read the group (Girder)."""
        self.tree.require(principal, model, doc, acl.READ if model == "group" else acl.ADMIN)
        access = doc.get("access") or acl.new_access()
        users, groups = [], []
        for entry in access.get("users") or []:
            user = self.store.users.find_one({"_id": entry["id"]},
                                             projection=["login", "firstName", "lastName"])
            if user is not None:
                users.append({"id": entry["id"], "level": entry["level"],
                              "flags": entry.get("flags") or [], "login": user["login"],
                              "name": f"{user.get('firstName', '')} "
                                      f"{user.get('lastName', '')}".strip()})
        for entry in access.get("groups") or []:
            group = self.store.groups.find_one({"_id": entry["id"]},
                                               projection=["name", "description"])
            if group is not None:
                groups.append({"id": entry["id"], "level": entry["level"],
                               "flags": entry.get("flags") or [], "name": group["name"],
                               "description": group.get("description", "")})
        if len(users) != len(access.get("users") or []) or \
                len(groups) != len(access.get("groups") or []):
            pruned = {"users": [{k: e[k] for k in ("id", "level", "flags")} for e in users],
                      "groups": [{k: e[k] for k in ("id", "level", "flags")} for e in groups]}
            self.store.of(model).update_one({"_id": doc["_id"]}, {"$set": {"access": pruned}})
        return {"users": users, "groups": groups}

    def set(self, principal: Principal, model: str, doc: Document, access: Any, *,
            public: bool | None = None, public_flags: list[str] | None = None,
            recurse: bool = False) -> Document:
        """Replace the list; ``recurse`` applies it to descendant folders on which
        the caller has ADMIN (others are skipped with their subtrees)."""
        if model not in ACL_MODELS:
            raise ValidationError(f"{model} documents have no access list.")
        self.tree.require(principal, model, doc, acl.ADMIN)
        clean = acl.normalize_access_list(access)
        update: dict[str, Any] = {"access": clean}
        if public is not None:
            update["public"] = bool(public)
        if public_flags is not None:
            update["publicFlags"] = []  # no flags are registered, so none survive
        self.tree.saving(model, {**doc, **update})
        self.store.of(model).update_one({"_id": doc["_id"]}, {"$set": update})
        if recurse and model in ("folder", "collection"):
            self._recurse(principal, model, doc["_id"], update)
        self.tree.acl_changed()
        self.tree.saved(model, {**doc, **update})
        return {**doc, **update}

    def _recurse(self, principal: Principal, parent_type: str, parent_id: Any,
                 update: dict[str, Any]) -> None:
        frontier = [(parent_type, parent_id)]
        for _ in range(10**6):
            if not frontier:
                return
            ptype, pid = frontier.pop()
            for child in self.store.folders.find({"parentId": pid, "parentCollection": ptype}):
                if acl.effective_level(child, principal) < acl.ADMIN:
                    continue
                self.tree.saving("folder", {**child, **update})
                self.store.folders.update_one({"_id": child["_id"]}, {"$set": update})
                self.tree.saved("folder", {**child, **update})
                frontier.append(("folder", child["_id"]))

    def set_public(self, principal: Principal, model: str, doc: Document,
                   public: bool) -> Document:
        self.tree.require(principal, model, doc, acl.ADMIN)
        self.tree.saving(model, {**doc, "public": bool(public)})
        self.store.of(model).update_one({"_id": doc["_id"]}, {"$set": {"public": bool(public)}})
        self.tree.acl_changed()
        self.tree.saved(model, {**doc, "public": bool(public)})
        return {**doc, "public": bool(public)}

    def grant(self, principal: Principal, model: str, doc: Document, kind: str,
              principal_id: Any, level: int | None) -> Document:
        """Set (or with ``level`` None remove) one entry, keeping the rest. Works
        on the stored list (not the caller's copy), so grants do not race."""
        self.tree.require(principal, model, doc, acl.ADMIN)
        self.tree.saving(model, doc)
        key = {"user": "access.users", "group": "access.groups"}[kind]
        coll = self.store.of(model)
        coll.update_one({"_id": doc["_id"]}, {"$pull": {key: {"id": principal_id}}})
        if level is not None:
            coll.update_one({"_id": doc["_id"]}, {"$push": {key: {
                "id": principal_id, "level": int(level), "flags": []}}})
        self.tree.acl_changed()
        saved = self.store.get(model, doc["_id"])
        self.tree.saved(model, saved)
        return saved
