"""Collections: top-level containers with their own ACL and globally unique names."""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from .. import acl
from ..acl import Principal
from ..clock import utcnow
from ..db.engine import Document, DuplicateKeyError, SortSpec
from ..errors import AccessDeniedError, ExistsError
from ..stored_settings import SettingsService
from ..validation import validate_name
from .folders import merge_meta
from .tree_access import TreeAccess

COLLECTION_EXISTS = "A collection with that name already exists."


class CollectionService:
    def __init__(self, tree: TreeAccess, settings: SettingsService) -> None:
        self.tree = tree
        self.store = tree.store
        self.settings = settings

    def may_create(self, principal: Principal) -> bool:
        if principal.is_site_admin:
            return True
        if principal.is_anonymous:
            return False
        policy = self.settings.get("core.collection_create_policy") or {}
        if not policy.get("open"):
            return False
        users = {str(u) for u in policy.get("users") or []}
        groups = {str(g) for g in policy.get("groups") or []}
        return str(principal.user_id) in users or \
            any(str(g) in groups for g in principal.groups)

    def creation_policy_members(self) -> tuple[builtins.list[Document],
                                               builtins.list[Document]]:
        """The users and groups the collection creation policy names, in its
        order; ids that are malformed or gone are left out."""
        policy = self.settings.get("core.collection_create_policy") or {}
        users = [self.store.users.find_one({"_id": oid})
                 for oid in _object_ids(policy.get("users"))]
        groups = [self.store.groups.find_one({"_id": oid})
                  for oid in _object_ids(policy.get("groups"))]
        return [u for u in users if u is not None], [g for g in groups if g is not None]

    def create(self, principal: Principal, name: Any, *, description: str = "",
               public: bool = False, check_access: bool = True) -> Document:
        if check_access and not self.may_create(principal):
            if principal.is_anonymous:
                raise acl.denial(principal, acl.ADMIN, "collection", None)
            raise AccessDeniedError("You are not authorized to create collections.")
        name = validate_name(name, "Collection name")
        now = utcnow()
        doc: dict[str, Any] = {
            "name": name, "lowerName": name.lower(),
            "description": (description or "").strip(), "creatorId": principal.user_id,
            "created": now, "updated": now, "size": 0, "meta": {}, "public": bool(public),
            "publicFlags": [],
            "access": acl.new_access(principal.user_id),
        }
        self.tree.saving("collection", doc)
        try:
            self.store.collections.insert_one(doc)
        except DuplicateKeyError:
            raise ExistsError(COLLECTION_EXISTS, field="name") from None
        self.tree.saved("collection", doc, created=True)
        return doc

    def get(self, principal: Principal, collection_id: Any,
            level: int = acl.READ) -> Document:
        return self.tree.load(principal, "collection", collection_id, level)

    def by_name(self, name: str) -> Document | None:
        return self.store.collections.find_one({"name": name})

    @staticmethod
    def _visible(principal: Principal, text: str | None) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if text:
            query["lowerName"] = {"$regex": re.escape(text.strip().lower())}
        return acl.and_filter(query, acl.permission_filter(principal, acl.READ))

    def list(self, principal: Principal, *, skip: int = 0, limit: int = 50,
             sort: SortSpec | None = None, text: str | None = None) -> builtins.list[Document]:
        return self.store.collections.find(
            self._visible(principal, text), sort=sort or [("name", 1), ("_id", 1)],
            skip=skip, limit=limit)

    def count(self, principal: Principal, text: str | None = None) -> int:
        """How many collections ``list`` would return without paging."""
        return self.store.collections.count(self._visible(principal, text))

    def update(self, principal: Principal, collection: Document, *, name: Any = None,
               description: str | None = None,
               metadata: dict[str, Any] | None = None) -> Document:
        self.tree.require(principal, "collection", collection, acl.WRITE)
        update: dict[str, Any] = {}
        if name is not None:
            new_name = validate_name(name, "Collection name")
            update.update(name=new_name, lowerName=new_name.lower())
        if description is not None:
            update["description"] = description.strip()
        if metadata:
            update["meta"] = merge_meta(collection.get("meta"), metadata)
        update["updated"] = utcnow()
        self.tree.saving("collection", {**collection, **update})
        try:
            self.store.collections.update_one({"_id": collection["_id"]}, {"$set": update})
        except DuplicateKeyError:
            raise ExistsError(COLLECTION_EXISTS, field="name") from None
        self.tree.saved("collection", {**collection, **update})
        return {**collection, **update}

    def set_metadata(self, principal: Principal, collection: Document, metadata: dict[str, Any],
                     *, allow_null: bool = False, check_access: bool = True) -> Document:
        return self.tree.set_meta(principal, "collection", collection, metadata,
                                  allow_null=allow_null, check_access=check_access)

    def delete_metadata(self, principal: Principal, collection: Document,
                        keys: builtins.list[str]) -> Document:
        return self.tree.delete_meta(principal, "collection", collection, keys)


def _object_ids(raw: Any) -> Iterator[ObjectId]:
    for value in raw or ():
        try:
            yield ObjectId(str(value))
        except (InvalidId, TypeError):
            continue
