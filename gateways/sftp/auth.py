"""Who is connecting: paramiko's ``ServerInterface`` over core's ``Authenticator``.

Accepted: a password (with the TOTP code appended when the user enabled it,
as Girder's SFTP does) or an API key as the password; a registered SSH public
key (ed25519, ECDSA, RSA with SHA-2 signatures: paramiko verifies the
signature, core maps the key to its user); the user name ``anonymous`` with
any password or none, when the store setting allows anonymous access.
Throttling of failed logins is core's. Only the login and the outcome are
logged, never a secret.

One instance serves one connection, on paramiko's transport thread; the SFTP
session takes ``live()`` once the transport has authenticated: core's grant
holder, which the session re-checks before every request, so a revocation
(password changed, account disabled, key removed, rights or groups changed)
applies to the next request of an open session.
"""

from __future__ import annotations

import logging
import threading

import paramiko

from joist.core.acl import Principal
from joist.core.auth import Authenticator, Grant, LiveGrant
from joist.core.errors import CoreError

log = logging.getLogger("joist.sftp")

ANONYMOUS = "anonymous"
MAX_SESSIONS = 10
"""SFTP sessions one connection may run at once (OpenSSH's ``MaxSessions``)."""


class ConnectionAuth(paramiko.ServerInterface):
    def __init__(self, authenticator: Authenticator, source: str) -> None:
        self._auth = authenticator
        self.source = source
        self.grant: Grant | None = None
        self._sessions = 0
        self._lock = threading.Lock()  # guards grant and _sessions

    # ------------------------------------------------------------ auth
    def get_allowed_auths(self, username: str) -> str:
        return "publickey,password"

    @property
    def principal(self) -> Principal | None:
        """Who logged in (as at login time; sessions use ``live()``)."""
        return None if self.grant is None else self.grant.principal

    def live(self) -> LiveGrant:
        assert self.grant is not None
        return self._auth.live(self.grant)

    def _accept(self, grant: Grant, method: str) -> int:
        self.grant = grant
        log.info("sftp login ok: %s (%s) from %s", grant.principal.label(), method,
                 self.source)
        return paramiko.AUTH_SUCCESSFUL

    def _refuse(self, username: str, method: str, exc: BaseException | None = None) -> int:
        self.grant = None
        why = type(exc).__name__ if exc is not None else "refused"
        log.info("sftp login failed: %r (%s, %s) from %s", str(username)[:64], method, why,
                 self.source)
        return paramiko.AUTH_FAILED

    def check_auth_none(self, username: str) -> int:
        # Every client tries "none" first; it succeeds for anonymous only.
        self.grant = None
        if username.strip().lower() == ANONYMOUS and self._auth.anonymous_allowed():
            return self._accept(self._auth.anonymous_grant(), "none")
        return paramiko.AUTH_FAILED

    def check_auth_password(self, username: str, password: str | bytes) -> int:
        self.grant = None
        if not isinstance(password, str):  # not UTF-8: cannot match anything stored
            return self._refuse(username, "password")
        try:
            grant = self._auth.secret_grant(username, password, source=self.source)
        except CoreError as exc:  # includes ThrottledError: core counted the failure
            return self._refuse(username, "password", exc)
        return self._accept(grant, "password")

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        # Called for the client's probe and again, once paramiko has verified
        # the signature, for the real attempt; only the latter authenticates.
        self.grant = None
        try:
            grant = self._auth.public_key_grant(username, key.asbytes())
        except CoreError as exc:
            return self._refuse(username, "publickey", exc)
        self.grant = grant
        return paramiko.AUTH_SUCCESSFUL

    # ------------------------------------------------------------ channels
    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind != "session":
            return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        return paramiko.OPEN_SUCCEEDED

    def check_channel_subsystem_request(self, channel: paramiko.Channel, name: str) -> bool:
        if name != "sftp" or self.principal is None:
            return False
        with self._lock:
            if self._sessions >= MAX_SESSIONS:
                return False
            self._sessions += 1
        started = False
        try:
            # paramiko builds the registered handler and starts its thread.
            started = bool(super().check_channel_subsystem_request(channel, name))
            return started
        finally:
            if not started:
                self.session_ended()

    def session_ended(self) -> None:
        with self._lock:
            self._sessions = max(self._sessions - 1, 0)


__all__ = ["ANONYMOUS", "MAX_SESSIONS", "ConnectionAuth"]
