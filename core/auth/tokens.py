"""Tokens: random 64-character values with expiry and scopes, kept in the store."""

from __future__ import annotations

import datetime as _dt
import secrets
import string
from collections.abc import Iterable
from typing import Any

from bson import ObjectId

from ..acl import SCOPE_USER_AUTH, Principal
from ..common import utcnow
from ..db.engine import Collection, Document

_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 64


def random_string(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class TokenService:
    def __init__(self, tokens: Collection, users: Collection) -> None:
        self._tokens = tokens
        self._users = users

    def create(self, user: Document | None, *, days: float,
               scopes: Iterable[str] | None = None,
               api_key_id: ObjectId | None = None) -> Document:
        now = utcnow()
        scope = sorted(set(scopes)) if scopes is not None else [SCOPE_USER_AUTH]
        doc: dict[str, Any] = {
            "_id": random_string(TOKEN_LENGTH), "created": now,
            "expires": now + _dt.timedelta(days=float(days)), "scope": scope,
        }
        if user is not None:
            doc["userId"] = user["_id"]
            doc["access"] = {"users": [{"id": user["_id"], "level": 2, "flags": []}],
                             "groups": []}
        else:
            doc["public"] = True
        if api_key_id is not None:
            doc["apiKeyId"] = api_key_id
        self._tokens.insert_one(doc)
        return doc

    def lookup(self, value: str | None) -> Document | None:
        """The live token document for ``value``, or None (never an error)."""
        if not value or not isinstance(value, str) or len(value) > 256:
            return None
        doc = self._tokens.find_one({"_id": value})
        if doc is None or doc["expires"] <= utcnow():
            return None
        return doc

    def principal(self, value: str | None) -> Principal:
        """Who a token speaks for; unknown or expired tokens are anonymous."""
        doc = self.lookup(value)
        if doc is None or not doc.get("userId"):
            return Principal.anonymous()
        user = self._users.find_one({"_id": doc["userId"]})
        if user is None or user.get("status", "enabled") != "enabled":
            return Principal.anonymous()
        return Principal.from_user(user, scopes=doc.get("scope") or [], token_id=doc["_id"])

    def delete(self, value: str) -> None:
        self._tokens.delete_one({"_id": value})

    def delete_for_user(self, user_id: ObjectId) -> int:
        return self._tokens.delete_many({"userId": user_id})

    def delete_for_api_key(self, key_id: ObjectId) -> int:
        return self._tokens.delete_many({"apiKeyId": key_id})
