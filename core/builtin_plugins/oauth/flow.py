"""The one authorization-code flow, with ``state`` and PKCE (S256), every
provider a configuration of it (``providers.py``). Authlib's requests client
speaks OAuth2 (authorize URL, code exchange with the verifier); joserfc
validates an OpenID Connect ``id_token`` against the provider's JWKS
(signature, ``iss``, ``aud``/``azp``, ``exp``, ``iat``, ``nonce``).

A state is a random value stored with what it is bound to (provider,
redirect, callback URL, PKCE verifier, nonce, expiry); the callback claims it
by deleting it, so it works once, in one process of many. Every request to a
provider is bounded by ``oauth.timeout``; a provider that is down, slow or
answers garbage is a ``ProviderError`` with a message for the person, never a
traceback, and nothing is written about the account.
"""

from __future__ import annotations

import datetime as _dt
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ...clock import utcnow
from ...db.engine import Collection, Document
from ...stored_settings import SettingsService
from . import settings as keys
from .providers import BUILTIN, Profile, ProviderSpec, generic, profile_from_claims

log = logging.getLogger("joist.plugins.oauth")

STATE_MINUTES = 10  # how long a started sign-in may take at the provider
CACHE_SECONDS = 300.0  # discovery documents and key sets
_SAFE_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
              "ES512", "EdDSA")


class ProviderError(Exception):
    """The provider could not complete the sign-in; ``message`` is for the person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StateError(Exception):
    """Forged, used, expired or misdirected ``state``."""


@dataclass(frozen=True)
class Endpoints:
    authorize: str
    token: str
    userinfo: str = ""
    jwks: str = ""
    issuer: str = ""
    algorithms: tuple[str, ...] = ("RS256",)
    auth_method: str = "client_secret_basic"


class OAuthFlow:
    def __init__(self, settings: SettingsService, states: Collection) -> None:
        self._settings = settings
        self._states = states
        self._cache: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()  # guards _cache

    # ------------------------------------------------------------ providers
    def providers(self) -> dict[str, ProviderSpec]:
        found = dict(BUILTIN)
        for entry in self._settings.get(keys.OIDC_PROVIDERS) or []:
            found[entry["id"]] = generic(entry)
        return found

    def enabled(self) -> list[ProviderSpec]:
        """Enabled providers that have a client id, in the enabled order."""
        known = self.providers()
        return [known[p] for p in self._settings.get(keys.ENABLED) or []
                if p in known and self.client(known[p])[0]]

    def get(self, provider_id: str) -> ProviderSpec | None:
        return next((p for p in self.enabled() if p.id == provider_id), None)

    def client(self, spec: ProviderSpec) -> tuple[str, str]:
        if spec.id in BUILTIN:
            return (str(self._settings.get(spec.client_id_key()) or ""),
                    str(self._settings.get(spec.client_secret_key()) or ""))
        entry: dict[str, Any] = next((e for e in self._settings.get(keys.OIDC_PROVIDERS) or []
                                      if e["id"] == spec.id), {})
        return str(entry.get("clientId") or ""), str(entry.get("clientSecret") or "")

    def timeout(self) -> float:
        return float(self._settings.get(keys.TIMEOUT))

    # ------------------------------------------------------------ authorize
    def all_endpoints(self, specs: list[ProviderSpec]) -> list[Endpoints | ProviderError]:
        """``endpoints`` of each, looked up side by side: a slow provider costs
        one timeout, not one per provider."""
        def one(spec: ProviderSpec) -> Endpoints | ProviderError:
            try:
                return self.endpoints(spec)
            except ProviderError as exc:
                return exc
        if len(specs) < 2:
            return [one(spec) for spec in specs]
        with ThreadPoolExecutor(max_workers=min(8, len(specs)),
                                thread_name_prefix="oauth-discovery") as pool:
            return list(pool.map(one, specs))

    def authorize_url(self, spec: ProviderSpec, redirect: str, callback: str,
                      endpoints: Endpoints | None = None) -> str:
        """The provider's sign-in URL, with a fresh state bound to ``redirect``."""
        endpoints = endpoints or self.endpoints(spec)
        client_id, _ = self.client(spec)
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(24) if spec.oidc else ""
        session = OAuth2Session(client_id, scope=spec.scope or None, redirect_uri=callback,
                                code_challenge_method="S256")
        extra = {"nonce": nonce} if nonce else {}
        url, _ = session.create_authorization_url(endpoints.authorize, state=state,
                                                  code_verifier=verifier, **extra,
                                                  **spec.extra)
        self._states.insert_one({
            "_id": state, "provider": spec.id, "redirect": redirect, "callback": callback,
            "verifier": verifier, "nonce": nonce,
            "expires": utcnow() + _dt.timedelta(minutes=STATE_MINUTES)})
        return str(url)

    def claim_state(self, provider_id: str, state: str | None) -> Document:
        """The state's record, removed: a state works once."""
        if not state or not isinstance(state, str) or len(state) > 200:
            raise StateError("Missing or malformed OAuth state.")
        doc = self._states.find_one({"_id": state})
        if doc is None or self._states.delete_one({"_id": state}) != 1:
            raise StateError("Invalid or already used OAuth state.")
        if doc["expires"] <= utcnow():
            raise StateError("The sign-in took too long (expired OAuth state); try again.")
        if doc["provider"] != provider_id:
            raise StateError("The OAuth state was issued for another provider.")
        return doc

    # ------------------------------------------------------------ callback
    def complete(self, spec: ProviderSpec, code: str, state: Mapping[str, Any]
                 ) -> tuple[Profile, dict[str, Any]]:
        """Exchange ``code`` (with the PKCE verifier) and find out who signed in."""
        try:
            return self._complete(spec, code, state)
        except ProviderError:
            raise
        except (requests.Timeout, requests.ConnectionError) as exc:
            log.warning("oauth %s: provider unreachable: %s", spec.id, type(exc).__name__)
            raise ProviderError(f"{spec.name} could not be reached or did not answer in "
                                "time; try again later.") from None
        except (AuthlibBaseError, JoseError) as exc:
            # the provider refused (invalid_grant: a code used twice or expired)
            # or its id_token did not validate
            log.warning("oauth %s: refused: %s", spec.id, _describe(exc))
            raise ProviderError(f"{spec.name} sign-in failed: {_describe(exc)}") from None
        except (requests.RequestException, ValueError, KeyError, TypeError,
                AttributeError) as exc:
            log.warning("oauth %s: unreadable answer (%s)", spec.id, type(exc).__name__)
            raise ProviderError(f"{spec.name} answered something that is not a valid "
                                "OAuth reply; try again later.") from None

    def _complete(self, spec: ProviderSpec, code: str, state: Mapping[str, Any]
                  ) -> tuple[Profile, dict[str, Any]]:
        if not code or not isinstance(code, str) or len(code) > 4096:
            raise ProviderError("The provider sent no authorization code.")
        endpoints = self.endpoints(spec)
        client_id, secret = self.client(spec)
        timeout = self.timeout()
        with OAuth2Session(client_id, secret, redirect_uri=state["callback"],
                           code_challenge_method="S256",
                           token_endpoint_auth_method=endpoints.auth_method) as session:
            token = dict(session.fetch_token(
                endpoints.token, code=code, code_verifier=state["verifier"],
                timeout=timeout, headers={"Accept": "application/json"}))
            if not token.get("access_token"):
                raise ProviderError(f"{spec.name} gave no access token.")

            def get_json(url: str) -> Any:
                reply = session.get(url, timeout=timeout, headers={"Accept": "application/json"})
                reply.raise_for_status()
                return reply.json()

            if not spec.oidc:
                assert spec.profile is not None
                return spec.profile(get_json), token
            claims = self.validate_id_token(spec, endpoints, token.get("id_token"),
                                            client_id, state["nonce"])
            if endpoints.userinfo:
                info = get_json(endpoints.userinfo)
                if not isinstance(info, dict) or str(info.get("sub")) != str(claims["sub"]):
                    raise ProviderError(f"{spec.name}'s user info is for another subject.")
                claims = {**info, **{k: v for k, v in claims.items() if k in
                                     ("sub", "iss", "aud", "nonce")}}
            return profile_from_claims(spec.id, claims), token

    def validate_id_token(self, spec: ProviderSpec, endpoints: Endpoints, id_token: Any,
                          client_id: str, nonce: str) -> dict[str, Any]:
        if not isinstance(id_token, str) or not id_token:
            raise ProviderError(f"{spec.name} gave no id_token.")
        try:
            decoded = jwt.decode(id_token, self._keys(endpoints.jwks),
                                 algorithms=list(endpoints.algorithms))
        except JoseError:  # keys may have rotated: look once more
            decoded = jwt.decode(id_token, self._keys(endpoints.jwks, fresh=True),
                                 algorithms=list(endpoints.algorithms))
        claims = dict(decoded.claims)
        issuer = endpoints.issuer
        if "{tenantid}" in issuer:  # Microsoft's multi-tenant issuer template
            issuer = issuer.replace("{tenantid}", str(claims.get("tid") or ""))
        jwt.JWTClaimsRegistry(
            leeway=60, iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id}, sub={"essential": True},
            exp={"essential": True}, iat={"essential": True},
            nonce={"essential": True, "value": nonce}).validate(claims)
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
            raise ProviderError(f"{spec.name}'s id_token was issued to another party.")
        return claims

    # ------------------------------------------------------------ discovery
    def endpoints(self, spec: ProviderSpec) -> Endpoints:
        if not spec.oidc:
            method = "client_secret_basic" if spec.id == "bitbucket" else "client_secret_post"
            return Endpoints(spec.authorize_url, spec.token_url, auth_method=method)
        url = spec.discovery_url.replace(
            "{tenant}", str(self._settings.get("oauth.microsoft_tenant_id") or "common"))
        try:
            doc = self._fetch(url)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
            algs = tuple(a for a in doc.get("id_token_signing_alg_values_supported") or
                         ["RS256"] if a in _SAFE_ALGS) or ("RS256",)
            methods = doc.get("token_endpoint_auth_methods_supported") or \
                ["client_secret_basic"]
            method = "client_secret_basic" if "client_secret_basic" in methods \
                else "client_secret_post"
            return Endpoints(_url(doc["authorization_endpoint"]), _url(doc["token_endpoint"]),
                             _url(doc.get("userinfo_endpoint") or "", optional=True),
                             _url(doc["jwks_uri"]), str(doc["issuer"]), algs, method)
        except (requests.Timeout, requests.ConnectionError) as exc:
            log.warning("oauth %s: discovery unreachable: %s", spec.id, type(exc).__name__)
            raise ProviderError(f"{spec.name} could not be reached or did not answer in "
                                "time; try again later.") from None
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            log.warning("oauth %s: bad discovery document (%s)", spec.id, type(exc).__name__)
            raise ProviderError(f"{spec.name}'s OpenID configuration could not be "
                                "read; try again later.") from None

    def _keys(self, url: str, fresh: bool = False) -> KeySet:
        return KeySet.import_key_set(self._fetch(url, fresh=fresh))

    def _fetch(self, url: str, fresh: bool = False) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(url)
        if hit is not None and not fresh and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        reply = requests.get(url, timeout=self.timeout(), headers={"Accept": "application/json"},
                             allow_redirects=False)
        reply.raise_for_status()
        value = reply.json()
        with self._lock:
            if len(self._cache) > 100:
                self._cache.clear()
            self._cache[url] = (now, value)
        return value

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


def _url(value: Any, optional: bool = False) -> str:
    if optional and not value:
        return ""
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ValueError("an endpoint is not an http(s) URL")
    return value


def _describe(exc: BaseException) -> str:
    text = str(getattr(exc, "description", "") or exc or type(exc).__name__)
    return text.splitlines()[0][:200] if text else type(exc).__name__
