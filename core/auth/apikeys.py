"""API keys: long-lived secrets that mint tokens (``POST api_key/token``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bson import ObjectId

from ..acl import Principal
from ..clock import utcnow
from ..db.engine import Collection, Document
from ..errors import AccessDeniedError, NotFoundError, ValidationError
from .scopes import ScopeCatalog
from .tokens import TokenService, random_string

KEY_LENGTH = 40


def _validate_scope(catalog: ScopeCatalog, scope: Iterable[str] | None,
                    owner_admin: bool) -> list[str] | None:
    """None (a full login) or the key's scopes, checked against ``catalog``."""
    if scope is None:
        return None
    scopes = list(scope)
    if not scopes or not all(isinstance(s, str) for s in scopes):
        raise ValidationError("Scope must be null or a non-empty list of scope ids.",
                              field="scope")
    try:
        return catalog.check_key_scopes(scopes, owner_admin=owner_admin)
    except ValueError as exc:
        raise ValidationError(str(exc), field="scope") from None


class ApiKeyService:
    def __init__(self, keys: Collection, users: Collection, tokens: TokenService,
                 catalog: ScopeCatalog | None = None) -> None:
        self.catalog = catalog or ScopeCatalog()
        self._keys = keys
        self._users = users
        self._tokens = tokens

    def _owner(self, principal: Principal, user_id: ObjectId | None) -> Document:
        if principal.is_anonymous:
            raise AccessDeniedError("You must be logged in.")
        principal.require_full_login()  # a scoped token never mints itself credentials
        target = user_id or principal.user_id
        if target != principal.user_id and not principal.is_site_admin:
            raise AccessDeniedError("Only admins may manage other users' API keys.")
        user = self._users.find_one({"_id": target})
        if user is None:
            raise NotFoundError(f"Invalid user id ({target}).")
        return user

    def create(self, principal: Principal, *, name: str = "",
               scope: Iterable[str] | None = None, token_duration: float | None = None,
               active: bool = True, user_id: ObjectId | None = None) -> Document:
        owner = self._owner(principal, user_id)
        if token_duration is not None and float(token_duration) <= 0:
            raise ValidationError("tokenDuration must be positive.", field="tokenDuration")
        doc: dict[str, Any] = {
            "key": random_string(KEY_LENGTH), "name": (name or "").strip(),
            "userId": owner["_id"],
            "scope": _validate_scope(self.catalog, scope, bool(owner.get("admin"))),
            "tokenDuration": None if token_duration is None else float(token_duration),
            "active": bool(active), "lastUse": None, "created": utcnow(),
            "access": {"users": [{"id": owner["_id"], "level": 2, "flags": []}],
                       "groups": []},
        }
        self._keys.insert_one(doc)
        return doc

    def list(self, principal: Principal, *, user_id: ObjectId | None = None,
             skip: int = 0, limit: int = 50,
             sort: list[tuple[str, int]] | None = None) -> list[Document]:
        owner = self._owner(principal, user_id)
        return self._keys.find({"userId": owner["_id"]}, sort=sort or [("name", 1), ("_id", 1)],
                               skip=skip, limit=limit)

    def get(self, principal: Principal, key_id: ObjectId) -> Document:
        doc = self._keys.find_one({"_id": key_id})
        if doc is None:
            raise NotFoundError(f"Invalid api_key id ({key_id}).")
        self._owner(principal, doc["userId"])
        return doc

    def update(self, principal: Principal, key_id: ObjectId, **changes: Any) -> Document:
        doc = self.get(principal, key_id)
        owner = self._users.find_one({"_id": doc["userId"]}) or {}
        update: dict[str, Any] = {}
        if changes.get("name") is not None:
            update["name"] = str(changes["name"]).strip()
        if "scope" in changes and changes["scope"] is not ...:
            update["scope"] = _validate_scope(self.catalog, changes["scope"],
                                             bool(owner.get("admin")))
        if changes.get("token_duration") is not None:
            update["tokenDuration"] = float(changes["token_duration"])
        if changes.get("active") is not None:
            update["active"] = bool(changes["active"])
            if not update["active"]:
                self._tokens.delete_for_api_key(key_id)
        if update:
            self._keys.update_one({"_id": key_id}, {"$set": update})
        return {**doc, **update}

    def delete(self, principal: Principal, key_id: ObjectId) -> None:
        self.get(principal, key_id)
        self._tokens.delete_for_api_key(key_id)
        self._keys.delete_one({"_id": key_id})

    def find_active(self, key: str) -> Document | None:
        if not isinstance(key, str) or not key or len(key) > 256:
            return None
        doc = self._keys.find_one({"key": key})
        return doc if doc and doc.get("active", True) else None

    def mint_token(self, key_doc: Document, *, duration: float | None,
                   max_days: float) -> Document:
        """A token for the key's user; lifetime capped by the key (or cookie lifetime)."""
        cap = key_doc.get("tokenDuration") or max_days
        days = min(float(duration), cap) if duration else cap
        user = self._users.find_one({"_id": key_doc["userId"]})
        if user is None:
            raise ValidationError("Invalid API key.")
        token = self._tokens.create(user, days=days, scopes=key_doc.get("scope"),
                                    api_key_id=key_doc["_id"])
        self._keys.update_one({"_id": key_doc["_id"]}, {"$set": {"lastUse": utcnow()}})
        return token
