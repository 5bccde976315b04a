"""Tokens: random 64-character values with expiry and scopes, kept in the store."""

from __future__ import annotations

import datetime as _dt
import secrets
import string
import threading
from collections.abc import Iterable
from typing import Any

from bson import ObjectId

from ..acl import SCOPE_USER_AUTH, Principal
from ..clock import utcnow
from ..db.engine import Collection, Document
from ..errors import AuthenticationError
from .grants import TOKEN, Grant, GrantChecker

_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 64


def random_string(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class TokenService:
    """Tokens in the store. Who a token speaks for is remembered per process
    (every REST request asks) as a ``Grant``, re-checked by ``GrantChecker``
    at once after an auth-relevant change made by any process on the store."""

    def __init__(self, tokens: Collection, users: Collection,
                 checker: GrantChecker) -> None:
        self._tokens = tokens
        self._users = users
        self._checker = checker
        self._cache: dict[str, Grant] = {}
        self._lock = threading.Lock()  # guards _cache (token value -> grant)

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

    def lookup_scoped(self, value: str | None, *required: str,
                      user_id: Any = None) -> Document | None:
        """The live token for ``value`` if it holds every ``required`` scope
        (and, given ``user_id``, belongs to that user; ids compare as text, as
        they come from URLs); else None."""
        doc = self.lookup(value)
        if doc is None or not set(required) <= set(doc.get("scope") or ()):
            return None
        if user_id is not None and str(doc.get("userId")) != str(user_id):
            return None
        return doc

    def principal(self, value: str | None) -> Principal:
        """Who a token speaks for; unknown, expired or revoked tokens are anonymous."""
        grant = self.grant(value)
        return Principal.anonymous() if grant is None else grant.principal

    def grant(self, value: str | None) -> Grant | None:
        """The token's grant as it stands now, or None."""
        if not value or not isinstance(value, str):
            return None
        with self._lock:
            cached = self._cache.get(value)
        if cached is not None:
            try:
                current = self._checker.current(cached)
            except AuthenticationError:
                with self._lock:
                    self._cache.pop(value, None)
                return None
            if current is not cached:
                with self._lock:
                    self._cache[value] = current
            return current
        grant = self._issue(value)
        if grant is not None:
            with self._lock:
                if len(self._cache) > 10_000:  # bounded: drop everything, it refills
                    self._cache.clear()
                self._cache[value] = grant
        return grant

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    def _issue(self, value: str) -> Grant | None:
        doc = self.lookup(value)
        if doc is None or not doc.get("userId"):
            return None
        user = self._users.find_one({"_id": doc["userId"]})
        if user is None or user.get("status", "enabled") != "enabled":
            return None
        return self._checker.issue(TOKEN, user, ref=doc["_id"], scopes=doc.get("scope") or [])

    def update(self, value: str, update: dict[str, Any],
               condition: dict[str, Any] | None = None) -> Document | None:
        """Atomically change a live token matching ``condition`` (a claim, as
        ``authorized_upload``'s single use); None when none matched."""
        if not value or not isinstance(value, str):
            return None
        query = {**(condition or {}), "_id": value, "expires": {"$gt": utcnow()}}
        doc = self._tokens.find_one_and_update(query, update)
        self.forget()
        return doc

    def delete(self, value: str) -> None:
        self._tokens.delete_one({"_id": value})
        self.forget()

    def delete_for_user(self, user_id: ObjectId, *,
                        where: dict[str, Any] | None = None) -> int:
        """The user's tokens (those also matching ``where``, e.g. the ones an
        OAuth provider's sign-in gave) end at once."""
        self.forget()
        return self._tokens.delete_many({**(where or {}), "userId": user_id})

    def delete_for_api_key(self, key_id: ObjectId) -> int:
        self.forget()
        return self._tokens.delete_many({"apiKeyId": key_id})
