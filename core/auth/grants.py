"""Grants: what a principal was derived from, so that it can be re-derived.

A login proves a secret once (bcrypt, a TOTP code, an SSH signature, a token
or API key value). What it proved is kept as a ``Grant``: the user's id, the
method, the credential document it rests on (API key, token, SSH key) and, for
a password, a digest of the stored hash it was checked against. Whoever keeps
a principal beyond one request (the WebDAV login cache, the token cache, an
SFTP session, a FUSE mount) asks ``GrantChecker.current`` before each use. It
re-reads those documents by id (indexed, no bcrypt) and answers the principal
as it is now (admin rights and groups re-derived), or raises
``AuthenticationError`` when the credential no longer holds: password changed,
account disabled, pending, unverified or deleted, API key deleted or
deactivated, token deleted or expired, SSH key removed, anonymous access off.

The re-read is skipped while nothing auth-related was written by any process
since the last check (``Store.auth_generation``, a counter in the store bumped
in the same transaction as the write) and that check is younger than
``RECHECK_SECONDS``, which bounds what no write announces (a token expiring).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..acl import SYSTEM, Principal
from ..clock import utcnow
from ..db.engine import Document
from ..errors import AuthenticationError
from ..store import Store
from ..stored_settings import SettingsService

RECHECK_SECONDS = 0.25

PASSWORD = "password"
API_KEY = "api_key"
TOKEN = "token"
PUBLIC_KEY = "public_key"
ANONYMOUS = "anonymous"
FIXED = "fixed"  # the admin CLI's SYSTEM principal: nothing to re-check


def secret_digest(stored_hash: str | None) -> bytes:
    """Identifies the stored password hash without keeping it in memory."""
    return hashlib.blake2b((stored_hash or "").encode(), digest_size=16).digest()


def check_status(user: Document, settings: SettingsService) -> None:
    """Refuse an account that may not log in now (any method but a token)."""
    status = user.get("status", "enabled")
    if status == "disabled":
        raise AuthenticationError("Account is disabled.", extra="disabled")
    if status == "pending":
        raise AuthenticationError("Account approval required.", extra="accountApproval")
    if settings.get("core.email_verification") == "required" and \
            not user.get("emailVerified", True):
        raise AuthenticationError("Email verification required.",
                                  extra="emailVerification")


@dataclass(frozen=True)
class Grant:
    principal: Principal
    method: str
    ref: Any = None  # API key _id, token value, or SSH key fingerprint
    digest: bytes = b""  # PASSWORD: secret_digest of the hash the password matched
    checked: float = 0.0  # time.monotonic() of the last check
    generation: int = -1  # Store.auth_generation at the last check


class GrantChecker:
    def __init__(self, store: Store, settings: SettingsService) -> None:
        self._store = store
        self._settings = settings
        # Raises AuthenticationError for an account whose directory entry is
        # gone (``ldap.DirectoryGate.check``; set by the Authenticator).
        self.directory_gate: Callable[[Document], None] | None = None
        # More such checks (the oauth plugin's: an account that lost its
        # provider and has no password); each raises AuthenticationError.
        self.gates: list[Callable[[Document], None]] = []

    @property
    def generation(self) -> int:
        return self._store.auth_generation.value

    def anonymous_allowed(self) -> bool:
        return bool(self._settings.get("joist.anonymous_access"))

    def issue(self, method: str, user: Document | None = None, *, ref: Any = None,
              scopes: Any = None) -> Grant:
        """The grant of a login that has just been checked in full."""
        generation = self.generation
        if method == ANONYMOUS or user is None:
            return Grant(Principal.anonymous(), ANONYMOUS, checked=time.monotonic(),
                         generation=generation)
        self._gate(user)
        principal = Principal.from_user(user, scopes=scopes,
                                        token_id=ref if method == TOKEN else None)
        digest = secret_digest(user.get("salt")) if method == PASSWORD else b""
        return Grant(principal, method, ref, digest, time.monotonic(), generation)

    def check_identity(self, user: Document) -> None:
        """``AuthenticationError`` when the account's identity is gone (its
        directory entry, or the provider it came from)."""
        self._gate(user)

    def _gate(self, user: Document) -> None:
        if self.directory_gate is not None:
            self.directory_gate(user)
        for gate in self.gates:
            gate(user)

    @staticmethod
    def fixed(principal: Principal = SYSTEM) -> Grant:
        return Grant(principal, FIXED)

    def is_fresh(self, grant: Grant) -> bool:
        return grant.method == FIXED or (
            grant.generation == self.generation
            and time.monotonic() - grant.checked < RECHECK_SECONDS)

    def current(self, grant: Grant) -> Grant:
        """``grant`` as it stands now; ``AuthenticationError`` once revoked."""
        if self.is_fresh(grant):
            return grant
        return self.rederive(grant)

    def rederive(self, grant: Grant) -> Grant:
        # Read the counter before the documents: a change landing during the
        # reads leaves the grant stale, so the next use looks again.
        generation, now = self.generation, time.monotonic()
        if grant.method == ANONYMOUS:
            if not self.anonymous_allowed():
                raise AuthenticationError("Anonymous access is disabled.")
            return dataclasses.replace(grant, checked=now, generation=generation)
        user = self._store.users.find_one({"_id": grant.principal.user_id})
        if user is None:
            raise AuthenticationError("The account no longer exists.")
        self._gate(user)
        scopes: Any = grant.principal.scopes
        if grant.method == PASSWORD:
            if secret_digest(user.get("salt")) != grant.digest:
                raise AuthenticationError("The password has changed; log in again.")
            check_status(user, self._settings)
        elif grant.method == API_KEY:
            key = self._store.api_keys.find_one({"_id": grant.ref})
            if key is None or not key.get("active", True) or key["userId"] != user["_id"] \
                    or not self._settings.get("core.api_keys"):
                raise AuthenticationError("The API key is no longer valid.")
            check_status(user, self._settings)
            scopes = key.get("scope")
        elif grant.method == TOKEN:
            token = self._store.tokens.find_one({"_id": grant.ref})
            if token is None or token["expires"] <= utcnow() or \
                    token.get("userId") != user["_id"]:
                raise AuthenticationError("The token is no longer valid.")
            if user.get("status", "enabled") != "enabled":
                raise AuthenticationError("Account is disabled.")
            scopes = token.get("scope") or []
        elif grant.method == PUBLIC_KEY:
            key = self._store.ssh_keys.find_one({"fingerprint": grant.ref})
            if key is None or key["userId"] != user["_id"]:
                raise AuthenticationError("The SSH key is no longer registered.")
            check_status(user, self._settings)
        else:
            raise AuthenticationError("Unknown credential.")
        principal = Principal.from_user(
            user, scopes=scopes, token_id=grant.ref if grant.method == TOKEN else None)
        return dataclasses.replace(grant, principal=principal, checked=now,
                                   generation=generation)


class LiveGrant:
    """The grant of a long-lived session (an SFTP connection, a FUSE mount),
    re-checked before each operation. Once revoked it stays revoked: the
    session was opened with a credential that no longer holds."""

    def __init__(self, checker: GrantChecker, grant: Grant) -> None:
        self._checker = checker
        self._grant = grant
        self._revoked: AuthenticationError | None = None
        self._lock = threading.Lock()  # guards the re-check of the grant and _revoked

    @property
    def grant(self) -> Grant:
        return self._grant

    def principal(self) -> Principal:
        """The principal now; ``AuthenticationError`` once revoked."""
        grant = self._grant
        if self._revoked is None and self._checker.is_fresh(grant):
            return grant.principal  # the common case: no lock, no query
        with self._lock:
            if self._revoked is not None:
                raise AuthenticationError("Access revoked: " + self._revoked.message)
            try:
                self._grant = self._checker.current(self._grant)
            except AuthenticationError as exc:
                self._revoked = exc
                raise AuthenticationError("Access revoked: " + exc.message) from None
            return self._grant.principal

    def valid(self) -> bool:
        try:
            self.principal()
        except AuthenticationError:
            return False
        return True


__all__ = ["ANONYMOUS", "API_KEY", "FIXED", "PASSWORD", "PUBLIC_KEY", "RECHECK_SECONDS",
           "TOKEN", "Grant", "GrantChecker", "LiveGrant", "check_status", "secret_digest"]
