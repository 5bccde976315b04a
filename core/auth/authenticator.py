"""Login flows shared by every gateway: password (+TOTP), API key, SSH key, token."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from ..acl import Principal
from ..db.engine import Document
from ..errors import AuthenticationError, ValidationError
from ..store import Store
from ..stored_settings import SettingsService
from . import grants, otp, scopes
from .apikeys import ApiKeyService
from .grants import Grant, GrantChecker, LiveGrant
from .ldap import DirectoryEntry, DirectoryGate, LdapDirectory, Outcome
from .passwords import hash_password, verify_password
from .sshkeys import SshKeyService, fingerprint
from .throttle import Throttle, throttle_keys
from .tokens import TokenService

log = logging.getLogger("joist.auth")

ANONYMOUS_LOGIN = "anonymous"
DIRECTORY_DOWN = ("Login failed: the LDAP directory could not be reached or did not "
                  "answer properly; try again later.")
EMAIL_VERIFICATION_DAYS = 1.0  # how long a verification mail's link works
WEBDAV = "webdav"
"""Gateway name for ``anonymous_allowed``: WebDAV asks for a login unless its
own setting also lets anonymous clients in (file managers and davfs2 send
credentials only after a 401, so serving them anonymously hides the login)."""


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Checked against when the login is unknown, so timing does not tell
    # whether an account exists.
    return hash_password("joist-no-such-user", rounds=12)


class Authenticator:
    def __init__(self, store: Store, settings: SettingsService, tokens: TokenService,
                 api_keys: ApiKeyService, ssh_keys: SshKeyService,
                 checker: GrantChecker) -> None:
        self._store = store
        self._settings = settings
        self.tokens = tokens
        self.api_keys = api_keys
        self.ssh_keys = ssh_keys
        self.grants = checker
        self.throttle = Throttle(store.throttles, self._limits)
        self.directory = LdapDirectory(settings)
        self.directory_gate = DirectoryGate(self.directory)
        checker.directory_gate = self.directory_gate.check
        # Finds, links or creates the account of an entry the directory
        # accepted (``services.ldap_accounts``; set by ``Services.build``).
        self.directory_accounts: Callable[[DirectoryEntry], Document] | None = None

    def _limits(self) -> tuple[int, int, float]:
        return (int(self._settings.get("joist.throttle.max_failures")),
                int(self._settings.get("joist.throttle.max_failures_per_address")),
                float(self._settings.get("joist.throttle.window_seconds")))

    # ------------------------------------------------------------ lookups
    def find_user(self, login: str) -> Document | None:
        """By login or email, case-insensitively (both are stored lower-case)."""
        if not isinstance(login, str) or not login.strip():
            return None
        key = login.strip().lower()
        field = "email" if "@" in key else "login"
        return self._store.users.find_one({field: key})

    @staticmethod
    def check_status(user: Document, settings: SettingsService) -> None:
        grants.check_status(user, settings)

    def anonymous_allowed(self, gateway: str | None = None) -> bool:
        if not self._settings.get("joist.anonymous_access"):
            return False
        if gateway == WEBDAV:
            return bool(self._settings.get("joist.webdav.anonymous_read"))
        return True

    # ------------------------------------------------------------ password
    def password_login(self, login: str, password: str, otp_code: str | None = None,
                       *, source: str | None = None) -> Document:
        """Check login and password (and the TOTP code when enabled)."""
        keys = throttle_keys(str(login), source)
        self.throttle.check(keys)
        return self._password(login, self.find_user(login), password, otp_code, keys)

    def _password(self, login: str, user: Document | None, password: str,
                  otp_code: str | None, keys: list[str]) -> Document:
        if not self._settings.get("core.enable_password_login"):
            raise ValidationError("Password login is disabled on this server.")
        user = self._check_secret(login, user, password, keys)
        if otp.is_enabled(user):
            if not otp_code:
                self._failed(keys, login, "missing one-time password",
                             "User authentication must include a one-time password.")
            try:
                otp.consume(self._store.users, user, str(otp_code))
            except (AuthenticationError, ValidationError):
                self._failed(keys, login, "bad one-time password")
        elif otp_code:
            raise AuthenticationError("The user has not enabled one-time passwords.")
        self.check_status(user, self._settings)
        self.throttle.success(keys[:1])
        log.info("login ok: %s", user["login"])
        return user

    def _check_secret(self, login: str, user: Document | None, password: str,
                      keys: list[str]) -> Document:
        """The account whose password this is: the directory's (LDAP, when
        configured; tried first, as Girder does), else the local one.

        An account linked to a directory entry (``ldapDn``) logs in through
        the directory only: its local password, if it has one, is not
        accepted, so an entry disabled or removed there stops working here.
        Other logins fall back to the local password when the directory does
        not know them or cannot answer, unless ``ldap.settings.fallback`` is
        off (Girder's switch)."""
        result = self.directory.check(login, password)
        outcome = result.outcome
        if outcome is Outcome.OK and result.entry is not None \
                and self.directory_accounts is not None:
            self.directory_gate.mark(result.entry.dn, True)
            return self.directory_accounts(result.entry)
        linked = bool(user and user.get("ldapDn"))
        directory_only = outcome is not Outcome.NOT_CONFIGURED and (
            linked or not self.directory.options().get("fallback", True))
        if outcome is Outcome.UNAVAILABLE and directory_only:
            # Not the user's fault: not counted as a failed login.
            log.warning("login refused for %r: directory unavailable", str(login)[:64])
            raise AuthenticationError(DIRECTORY_DOWN)
        if directory_only:
            self._failed(keys, login, f"bad credentials (directory: {outcome.value})")
        stored = user.get("salt") if user is not None else None
        if not verify_password(password, stored or _dummy_hash()) or not stored:
            self._failed(keys, login, "bad credentials", DIRECTORY_DOWN
                         if outcome is Outcome.UNAVAILABLE else "Login failed.")
        assert user is not None
        return user

    def _failed(self, keys: list[str], login: str, why: str,
                message: str = "Login failed.") -> Any:
        self.throttle.failure(keys)
        log.info("login failed for %r: %s", str(login)[:64], why)
        raise AuthenticationError(message)

    # ------------------------------------------------------------ gateways
    def secret_grant(self, login: str, secret: str, *, source: str | None = None,
                     gateway: str | None = None) -> Grant:
        """SFTP, WebDAV and ``joist mount``: the one rule for a login and a secret.

        The login names the account (login or email; ``anonymous`` when
        allowed). The secret is one of that account's active API keys, or its
        password (with the TOTP code appended when the user enabled it). The
        key is tried first, by lookup: a key is never counted as a failed
        password, and costs no bcrypt check."""
        if isinstance(login, str) and login.strip().lower() == ANONYMOUS_LOGIN:
            if self.anonymous_allowed(gateway):
                return self.grants.issue(grants.ANONYMOUS)
            raise AuthenticationError("Anonymous access is disabled.")
        keys = throttle_keys(str(login), source)
        self.throttle.check(keys)
        user = self.find_user(login)
        if user is not None and self._settings.get("core.api_keys"):
            key = self.api_keys.find_active(secret)
            if key is not None and key["userId"] == user["_id"]:
                self.check_status(user, self._settings)
                self.throttle.success(keys[:1])
                log.info("login ok: %s (API key)", user["login"])
                return self.grants.issue(grants.API_KEY, user, ref=key["_id"],
                                         scopes=key.get("scope"))
        if user is not None and otp.is_enabled(user) and len(secret) > otp.DIGITS:
            user = self._password(login, user, secret[:-otp.DIGITS],
                                  secret[-otp.DIGITS:], keys)
        else:
            user = self._password(login, user, secret, None, keys)
        return self.grants.issue(grants.PASSWORD, user)

    def secret_login(self, login: str, secret: str, *,
                     source: str | None = None) -> Principal:
        return self.secret_grant(login, secret, source=source).principal

    def public_key_grant(self, login: str, blob: bytes) -> Grant:
        user = self.find_user(login)
        owner = self.ssh_keys.owner_of(blob)
        if user is None or owner is None or owner != user["_id"]:
            raise AuthenticationError("Public key not accepted.")
        self.check_status(user, self._settings)
        return self.grants.issue(grants.PUBLIC_KEY, user, ref=fingerprint(blob))

    def public_key_login(self, login: str, blob: bytes) -> Principal:
        return self.public_key_grant(login, blob).principal

    def anonymous_grant(self) -> Grant:
        if not self.anonymous_allowed():
            raise AuthenticationError("Anonymous access is disabled.")
        return self.grants.issue(grants.ANONYMOUS)

    def token_grant(self, value: str | None) -> Grant:
        grant = self.tokens.grant(value)
        if grant is None:
            raise AuthenticationError("Invalid or expired token.")
        return grant

    def current(self, grant: Grant) -> Grant:
        """``grant`` re-checked (cheaply); ``AuthenticationError`` once revoked."""
        return self.grants.current(grant)

    def live(self, grant: Grant) -> LiveGrant:
        """A holder for a session's grant, re-checked before each operation."""
        return LiveGrant(self.grants, grant)

    def api_key_login(self, key: str, duration: float | None = None) -> Document:
        """``POST api_key/token``: a token document for an active key."""
        if not self._settings.get("core.api_keys"):
            raise ValidationError("API key functionality is disabled on this instance.")
        doc = self.api_keys.find_active(key)
        if doc is None:
            raise ValidationError("Invalid API key.")
        user = self._store.users.find_one({"_id": doc["userId"]})
        if user is None:
            raise ValidationError("Invalid API key.")
        self.check_status(user, self._settings)
        self.grants.check_identity(user)
        return self.api_keys.mint_token(
            doc, duration=duration, max_days=float(self._settings.get("core.cookie_lifetime")))

    def login_token(self, user: Document) -> Document:
        return self.tokens.create(user, days=float(self._settings.get("core.cookie_lifetime")))

    def principal_for_token(self, value: str | None) -> Principal:
        return self.tokens.principal(value)

    # ------------------------------------------------------------ email verification
    def user_for_verification(self, login: str) -> Document:
        """The account a verification mail goes to, by login or email (Girder's
        ``POST user/verification``)."""
        user = self.find_user(login)
        if user is None:
            raise AuthenticationError("That login is not registered.")
        return user

    def email_verification_token(self, user: Document) -> Document:
        """The token a verification mail carries: scope ``core.email_verification``,
        valid one day, good for that user only."""
        return self.tokens.create(user, days=EMAIL_VERIFICATION_DAYS,
                                  scopes=[scopes.EMAIL_VERIFICATION])

    def verify_email(self, user_id: Any, token: str) -> Document:
        """Mark a user's email verified with a token issued for that (used
        once); anyone holding the token may, no login needed (Girder's rule).
        A wrong user id and a wrong token look alike: nothing is revealed."""
        doc = self.tokens.lookup_scoped(token, scopes.EMAIL_VERIFICATION, user_id=user_id)
        if doc is None:
            raise AuthenticationError("The token is invalid or expired.")
        user = self._store.users.find_one({"_id": doc["userId"]})
        if user is None:
            raise AuthenticationError("The token is invalid or expired.")
        self._store.users.update_one({"_id": user["_id"]}, {"$set": {"emailVerified": True}})
        self.tokens.delete(token)
        return {**user, "emailVerified": True}
