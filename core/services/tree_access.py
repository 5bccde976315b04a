"""Access to the data tree: loading documents with access checks, metadata
writes, and the size ledger (``sizes.py``) every writer moves.

Access-controlled documents (user, collection, folder) carry their own ACL;
items take their folder's, files their item's folder's. Every service loads
through here so that the rule is written once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bson import ObjectId

from .. import acl
from ..acl import AccessLevel, Principal
from ..clock import utcnow
from ..db.engine import Document
from ..errors import ValidationError
from ..events import EventBus
from ..store import Store, object_id
from ..validation import validate_meta, validate_meta_keys
from .sizes import DELETING, ROOT_MODELS, SizeLedger

PARENT_MODELS = ("folder", "user", "collection")
log = logging.getLogger("joist.events")


class TreeAccess:
    """What every service builds on: the store, the ACL rule for each kind of
    tree document, and the size ledger."""

    def __init__(self, store: Store, events: EventBus | None = None) -> None:
        self.store = store
        self.events = events if events is not None else EventBus()
        self.sizes = SizeLedger(store)
        self._acl_listeners: list[Callable[[], None]] = []

    # ------------------------------------------------------------ model events
    # Girder's names, fired by the services for a change through any gateway:
    # ``model.<type>.save`` before (a handler may refuse: prevent_default, or
    # raise a CoreError of its own), ``.save.created`` and ``.save.after`` after,
    # and ``model.<type>.remove`` / ``.remove.after`` likewise. Refusing is an
    # error rather than Girder's silent skip, so no gateway reports a write as
    # done that was not.
    def saving(self, model: str, doc: Document) -> None:
        self._before(f"model.{model}.save", model, doc, "saved")

    def saved(self, model: str, doc: Document, *, created: bool = False) -> None:
        if created:
            self._after(f"model.{model}.save.created", doc)
        self._after(f"model.{model}.save.after", doc)

    def removing(self, model: str, doc: Document) -> None:
        self._before(f"model.{model}.remove", model, doc, "removed")

    def removed(self, model: str, doc: Document) -> None:
        self._after(f"model.{model}.remove.after", doc)

    def _after(self, name: str, doc: Document) -> None:
        # The change is made: a failing handler is logged, not reported to the
        # client as if the change had failed.
        try:
            self.events.trigger(name, doc)
        except Exception:
            log.exception("a handler of %s failed for %s", name, doc.get("_id"))

    def _before(self, name: str, model: str, doc: Document, verb: str) -> None:
        event = self.events.trigger(name, doc)
        if event.default_prevented:
            said = [r for r in event.responses if isinstance(r, str)]
            raise ValidationError(said[-1] if said else
                                  f"This {model} may not be {verb} (refused by "
                                  f"{event.prevented_by}).")

    # ------------------------------------------------------------ ACL changes
    def on_acl_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after any access list or ``public`` flag changes:
        the hierarchy's path cache holds documents, their ACLs included, and a
        revoked grant must not outlive the change in this process."""
        self._acl_listeners.append(listener)

    def acl_changed(self) -> None:
        for listener in self._acl_listeners:
            listener()

    # ------------------------------------------------------------ access
    def folder_of(self, doc: Document, model: str) -> Document:
        """The folder whose ACL governs an item or file."""
        if model == "file":
            doc = self.store.get("item", doc["itemId"])
        return self.store.get("folder", doc["folderId"])

    def level(self, principal: Principal, model: str, doc: Document) -> AccessLevel:
        if model in ("item", "file"):
            if principal.admin:
                return acl.ADMIN
            return acl.effective_level(self.folder_of(doc, model), principal)
        if model == "group":
            return self._group_level(principal, doc)
        return acl.effective_level(doc, principal)

    def _group_level(self, principal: Principal, group: Document) -> AccessLevel:
        level = acl.effective_level(group, principal)
        if level < acl.READ and principal.user_id is not None:
            # Membership and invitations grant READ (Girder keeps them on the user).
            user = self.store.users.find_one({"_id": principal.user_id}) or {}
            invited = {i.get("groupId") for i in user.get("groupInvites") or ()}
            if group["_id"] in principal.groups or group["_id"] in invited:
                level = acl.READ
        return level

    def require(self, principal: Principal, model: str, doc: Document,
                level: int) -> AccessLevel:
        got = self.level(principal, model, doc)
        if got < level:
            raise acl.denial(principal, level, model, doc.get("_id"))
        return got

    def load(self, principal: Principal, model: str, doc_id: Any,
             level: int = acl.READ) -> Document:
        """Load by id and require ``level``: 400-style not found, then 401/403."""
        doc = self.store.get(model, doc_id)
        self.require(principal, model, doc, level)
        return doc

    def load_parent(self, principal: Principal, parent_type: str, parent_id: Any,
                    level: int = acl.WRITE) -> Document:
        if parent_type not in PARENT_MODELS:
            raise ValidationError("Invalid parentType.", field="parentType")
        return self.load(principal, parent_type, parent_id, level)

    def ancestors(self, principal: Principal, model: str,
                  doc_id: Any) -> list[dict[str, Any]]:
        """``doc_id`` and its ancestors, root first, each READ-checked
        (``[{"type", "object"}]`` as Girder's ``rootpath``)."""
        chain: list[dict[str, Any]] = []
        for _ in range(10000):  # bounded: a parent cycle would be corruption
            doc = self.load(principal, model, doc_id, acl.READ)
            chain.append({"type": model, "object": doc})
            if model != "folder":
                break
            model, doc_id = doc["parentCollection"], doc["parentId"]
        return list(reversed(chain))

    # ------------------------------------------------------------ metadata
    def set_meta(self, principal: Principal, model: str, doc: Document,
                 changes: dict[str, Any], *, allow_null: bool = False,
                 check_access: bool = True) -> Document:
        """Girder's merge (null deletes a key unless ``allow_null``), applied key
        by key in the store so concurrent writers of other keys are not lost."""
        if check_access:
            self.require(principal, model, doc, acl.WRITE)
        if not isinstance(changes, dict):
            raise ValidationError("Metadata must be a JSON object.", field="metadata")
        validate_meta(changes)
        sets: dict[str, Any] = {"updated": utcnow()}
        unsets = {}
        for key, value in changes.items():
            if value is None and not allow_null:
                unsets[f"meta.{key}"] = ""
            else:
                sets[f"meta.{key}"] = value
        update: dict[str, Any] = {"$set": sets}
        if unsets:
            update["$unset"] = unsets
        self.saving(model, doc)
        self.store.of(model).update_one({"_id": doc["_id"]}, update)
        doc = self.store.get(model, doc["_id"])
        self.saved(model, doc)
        return doc

    def delete_meta(self, principal: Principal, model: str, doc: Document,
                    keys: list[str]) -> Document:
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValidationError("Metadata keys must be a JSON array of strings.",
                                  field="fields")
        self.require(principal, model, doc, acl.WRITE)
        validate_meta_keys({k: None for k in keys})
        update: dict[str, Any] = {"$set": {"updated": utcnow()}}
        if keys:
            update["$unset"] = {f"meta.{k}": "" for k in keys}
        self.saving(model, doc)
        self.store.of(model).update_one({"_id": doc["_id"]}, update)
        doc = self.store.get(model, doc["_id"])
        self.saved(model, doc)
        return doc

    def set_timestamps(self, principal: Principal, model: str, doc: Document,
                       changes: dict[str, Any]) -> Document:
        """Girder's ``resource/{id}/timestamp``: site admins only, WRITE on it,
        and only fields the document already has."""
        if not principal.is_site_admin:
            raise acl.denial(principal, acl.ADMIN, model, doc.get("_id"))
        self.require(principal, model, doc, acl.WRITE)
        for key in changes:
            if key not in ("created", "updated") or key not in doc:
                raise ValidationError(f"Resource has no {key} field.", field=key)
        if changes:
            self.store.of(model).update_one({"_id": doc["_id"]}, {"$set": changes})
        return {**doc, **changes}

    # ------------------------------------------------------------ structure
    def walk_folders(self, folder_id: ObjectId) -> list[Document]:
        """The folder and all its descendants (breadth first, paged queries)."""
        root = self.store.folders.find_one({"_id": folder_id})
        if root is None:
            return []
        out = [root]
        frontier = [folder_id]
        while frontier:
            children = self.store.folders.find(
                {"parentId": {"$in": frontier}, "parentCollection": "folder"},
                projection=["_id", "size", "name", "parentId", "access", "public"])
            out.extend(children)
            frontier = [c["_id"] for c in children]
        return out

    def is_descendant(self, folder_id: ObjectId, ancestor_id: ObjectId) -> bool:
        """True when ``folder_id`` is ``ancestor_id`` or lies below it."""
        current: Any = folder_id
        for _ in range(10000):  # bounded: a cycle would be corruption
            if current == ancestor_id:
                return True
            doc = self.store.folders.find_one({"_id": current},
                                              projection=["parentId", "parentCollection"])
            if doc is None or doc.get("parentCollection") != "folder":
                return False
            current = doc["parentId"]
        return False


__all__ = ["DELETING", "PARENT_MODELS", "ROOT_MODELS", "TreeAccess", "object_id"]
