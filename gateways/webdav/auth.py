"""Who is asking: a wsgidav domain controller over core's ``Authenticator``.

Accepted, in this order: a ``Girder-Token`` header; HTTP Basic with the login
(or email) and its password (the TOTP code appended when the user enabled it)
or one of its API keys as the password (core's ``secret_grant``, the rule SFTP
uses too); no credentials at all, as anonymous, only when the store settings
``joist.anonymous_access`` and ``joist.webdav.anonymous_read`` both allow it.
Otherwise a request without credentials is answered 401 with a Basic
challenge, which is what makes clients (cadaver, davfs2, file managers) ask
for a login. Throttling of failed logins is core's.

HTTP Basic resends the same credentials with every request, so a successful
check is remembered for ``CREDENTIAL_TTL`` seconds under a salted digest of the
credentials (never the secret itself), as core's ``Grant``. Without it every
request would pay a bcrypt check, and a TOTP code, which core accepts once,
would fail from the second request on. Every use re-checks the grant with core
(``Authenticator.current``: no bcrypt, but whether the account, its password,
its key, its rights are still what they were), so a revocation takes effect at
once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.http_authenticator import HTTPAuthenticator

from joist.core.acl import Principal
from joist.core.auth import WEBDAV, Authenticator, Grant
from joist.core.errors import AuthenticationError, CoreError, ThrottledError, ValidationError

from .errors import REALM, dav_error

CREDENTIAL_TTL = 300.0
CACHE_ENTRIES = 4096
PRINCIPAL_KEY = "joist.principal"

StartResponse = Callable[..., Any]


class CredentialCache:
    """Recently verified Basic credentials -> grant, bounded and expiring.

    ``get`` answers the grant as core re-checks it now, or None (then the
    caller logs in afresh) when core says it no longer holds."""

    def __init__(self, recheck: Callable[[Grant], Grant], ttl: float = CREDENTIAL_TTL,
                 entries: int = CACHE_ENTRIES) -> None:
        self._recheck = recheck
        self._ttl = ttl
        self._entries = entries
        self._salt = os.urandom(16)
        self._data: OrderedDict[bytes, tuple[float, Grant]] = OrderedDict()
        self._lock = threading.Lock()  # guards _data

    def _key(self, login: str, secret: str) -> bytes:
        return hashlib.blake2b(f"{login}\0{secret}".encode("utf-8", "surrogatepass"),
                               key=self._salt, digest_size=32).digest()

    def get(self, login: str, secret: str) -> Grant | None:
        key = self._key(login, secret)
        with self._lock:
            hit = self._data.get(key)
            if hit is None or hit[0] < time.monotonic():
                self._data.pop(key, None)
                return None
        expires, grant = hit
        try:
            current = self._recheck(grant)
        except AuthenticationError:
            with self._lock:
                self._data.pop(key, None)
            return None
        if current is not grant:
            with self._lock:
                if key in self._data:
                    self._data[key] = (expires, current)
        return current

    def put(self, login: str, secret: str, grant: Grant) -> None:
        key = self._key(login, secret)
        with self._lock:
            self._data[key] = (time.monotonic() + self._ttl, grant)
            self._data.move_to_end(key)
            while len(self._data) > self._entries:
                self._data.popitem(last=False)


class JoistDomainController(BaseDomainController):
    """Built by wsgidav from the config; ``config["joist"]["auth"]`` is core's
    ``Authenticator``."""

    def __init__(self, wsgidav_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, config)
        self.auth: Authenticator = config["joist"]["auth"]
        self.cache = CredentialCache(self.auth.current)

    def __str__(self) -> str:
        return "JoistDomainController"

    def get_domain_realm(self, path_info: str, environ: dict[str, Any] | None) -> str:
        return REALM

    def supports_http_digest_auth(self) -> bool:
        return False  # core keeps bcrypt hashes, not the HA1 digest needs

    def digest_auth_user(self, realm: str, user_name: str,
                         environ: dict[str, Any]) -> bool:
        return False

    def require_authentication(self, realm: str, environ: dict[str, Any] | None) -> bool:
        """False when the request is settled without Basic: a token, or anonymous."""
        if environ is None:
            # wsgidav asking at start-up, to log "anonymous write access":
            # anonymous users never write here (only read, when allowed).
            return True
        token = environ.get("HTTP_GIRDER_TOKEN")
        if token:
            # Unknown, expired or revoked: say so (401), do not downgrade.
            self._accept(environ, self.auth.token_grant(token).principal)
            return False
        if environ.get("HTTP_AUTHORIZATION"):
            return True
        if self.auth.anonymous_allowed(WEBDAV):
            self._accept(environ, Principal.anonymous())
            return False
        return True

    def basic_auth_user(self, realm: str, user_name: str, password: str,
                        environ: dict[str, Any]) -> bool:
        grant = self.cache.get(user_name, password)
        if grant is None:
            try:
                grant = self.auth.secret_grant(user_name, password,
                                               source=environ.get("REMOTE_ADDR"),
                                               gateway=WEBDAV)
            except ThrottledError:
                raise
            except (AuthenticationError, ValidationError):
                return False
            if not grant.principal.is_anonymous:
                self.cache.put(user_name, password, grant)
        self._accept(environ, grant.principal)
        return True

    @staticmethod
    def _accept(environ: dict[str, Any], principal: Principal) -> None:
        environ[PRINCIPAL_KEY] = principal
        # wsgidav keys lock ownership by this name: logins are unique.
        environ["wsgidav.auth.user_name"] = principal.login


class JoistAuthenticator(HTTPAuthenticator):
    """wsgidav's Basic flow, made robust: a malformed header is a 400, core
    errors (bad token, throttling) take their mapped status."""

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        try:
            return super().__call__(environ, start_response)
        except CoreError as exc:
            raise dav_error(exc, environ.get("joist.request_id", "-")) from None

    def handle_basic_auth_request(self, environ: dict[str, Any],
                                  start_response: StartResponse) -> Iterable[bytes]:
        header = environ["HTTP_AUTHORIZATION"]
        try:
            raw = base64.b64decode(header.split(None, 1)[1].strip(), validate=True)
            user_name, password = raw.decode("utf-8").split(":", 1)
        except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
            return self.send_basic_auth_response(environ, start_response)
        dc = self.domain_controller
        if dc.basic_auth_user(REALM, user_name, password, environ):
            environ["wsgidav.auth.realm"] = REALM
            return self.next_app(environ, start_response)
        return self.send_basic_auth_response(environ, start_response)

    def send_basic_auth_response(self, environ: dict[str, Any],
                                 start_response: StartResponse) -> Iterable[bytes]:
        body = b"Authentication required.\n"
        start_response("401 Unauthorized", [
            ("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body)))])
        return [body]
