"""The ``oauth`` plugin's provider configurations and id_token rules, without
a network: the plain OAuth2 providers' user APIs read from canned answers in
their documented shapes, the settings validation and redaction, and id_token
validation (Microsoft's tenant issuer, expiry, several audiences) with keys
made here. The flow against a real provider is tests/gateways/plugins/test_oauth.py."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from joist.core.builtin_plugins.oauth import providers
from joist.core.builtin_plugins.oauth.flow import Endpoints, OAuthFlow, ProviderError
from joist.core.builtin_plugins.oauth.settings import (
    oidc_providers,
    redact_providers,
    restore_secrets,
)


def _getter(answers: dict[str, Any]) -> Any:
    return lambda url: answers[url]


def test_builtin_providers_are_girders_eight() -> None:
    assert set(providers.BUILTIN) == {"google", "github", "globus", "linkedin", "bitbucket",
                                      "box", "cilogon", "microsoft"}
    assert providers.BUILTIN["github"].client_id_key() == "oauth.github_client_id"
    assert providers.BUILTIN["box"].client_secret_key() == "oauth.box_client_secret"


def test_github_profile_prefers_the_primary_address_and_keeps_verification() -> None:
    profile = providers._github(_getter({
        "https://api.github.com/user": {"id": 42, "login": "octo", "name": "Octo Cat"},
        "https://api.github.com/user/emails": [
            {"email": "other@x.org", "verified": False, "primary": False},
            {"email": "octo@x.org", "verified": True, "primary": True}]}))
    assert (profile.id, profile.username, profile.first_name, profile.last_name) == \
        ("42", "octo", "Octo", "Cat")
    assert profile.emails == (("octo@x.org", True), ("other@x.org", False))
    assert profile.verified_emails() == ["octo@x.org"]


def test_bitbucket_and_box_profiles() -> None:
    bb = providers._bitbucket(_getter({
        "https://api.bitbucket.org/2.0/user": {"uuid": "{u-1}", "display_name": "Bit Bucket",
                                               "username": "bb"},
        "https://api.bitbucket.org/2.0/user/emails": {"values": [
            {"email": "bb@x.org", "is_confirmed": True, "is_primary": True}]}}))
    assert (bb.id, bb.verified_emails(), bb.last_name) == ("{u-1}", ["bb@x.org"], "Bucket")
    box = providers._box(_getter({"https://api.box.com/2.0/users/me": {
        "id": "7", "login": "b@x.org", "name": "Box Person"}}))
    assert box.verified_emails() == [] and box.emails == (("b@x.org", False),)


def test_claims_profile() -> None:
    profile = providers.profile_from_claims("google", {
        "sub": "s1", "email": "a@x.org", "email_verified": "true", "name": "Ann Lee"})
    assert (profile.id, profile.verified_emails(), profile.first_name, profile.last_name) == \
        ("s1", ["a@x.org"], "Ann", "Lee")
    unverified = providers.profile_from_claims("google", {"sub": "s2", "email": "b@x.org"})
    assert unverified.verified_emails() == []


@pytest.mark.parametrize("bad", [
    "nope", [{"id": "google", "discoveryUrl": "https://x/"}],
    [{"id": "Bad Id", "discoveryUrl": "https://x/"}], [{"id": "ok", "discoveryUrl": "ftp://x"}],
    [{"id": "ok", "discoveryUrl": "https://x/", "scope": "email"}],
    [{"id": "ok", "discoveryUrl": "https://x/", "extra": 1}],
    [{"id": "ok", "discoveryUrl": "https://x/"}, {"id": "ok", "discoveryUrl": "https://y/"}],
])
def test_generic_providers_are_validated(bad: Any) -> None:
    with pytest.raises(ValueError):
        oidc_providers(bad)


def test_generic_provider_secrets_are_redacted_and_kept() -> None:
    stored = oidc_providers([{"id": "uni", "discoveryUrl": "https://idp.example/",
                              "clientId": "c", "clientSecret": "s3"}])
    shown = redact_providers(stored)
    assert shown == [{"id": "uni", "name": "uni", "discoveryUrl": "https://idp.example/",
                      "clientId": "c", "scope": "openid email profile", "hasSecret": True}]
    assert restore_secrets(oidc_providers(shown), stored)[0]["clientSecret"] == "s3"


class _Settings:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def get(self, key: str) -> Any:
        return self.values.get(key)


KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
TENANT_ISSUER = "https://login.microsoftonline.com/{tenantid}/v2.0"


def _flow(fetched: list[str]) -> OAuthFlow:
    flow = OAuthFlow(_Settings({"oauth.microsoft_tenant_id": "contoso", "oauth.timeout": 1,
                                "oauth.microsoft_client_id": "app"}), None)  # type: ignore[arg-type]

    def fetch(url: str, fresh: bool = False) -> Any:
        fetched.append(url)
        if url.endswith("keys"):
            return {"keys": [KEY.as_dict(private=False)]}
        return {"issuer": TENANT_ISSUER, "authorization_endpoint": "https://ms/authorize",
                "token_endpoint": "https://ms/token", "jwks_uri": "https://ms/keys",
                "id_token_signing_alg_values_supported": ["RS256", "none", "HS256"]}
    flow._fetch = fetch  # type: ignore[method-assign]
    return flow


def _id_token(**claims: Any) -> str:
    now = int(time.time())
    body = {"iss": "https://login.microsoftonline.com/t-1/v2.0", "aud": "app", "sub": "s",
            "tid": "t-1", "iat": now, "exp": now + 300, "nonce": "n", **claims}
    return jwt.encode({"alg": "RS256", "kid": "k1"}, body, KEY)


def test_microsoft_tenant_and_id_token_rules() -> None:
    fetched: list[str] = []
    flow = _flow(fetched)
    spec = providers.BUILTIN["microsoft"]
    endpoints = flow.endpoints(spec)
    assert fetched == ["https://login.microsoftonline.com/contoso/v2.0/.well-known/"
                       "openid-configuration"]
    assert endpoints.algorithms == ("RS256",)  # never "none" or a shared-secret HMAC
    assert flow.validate_id_token(spec, endpoints, _id_token(), "app", "n")["sub"] == "s"
    for bad in (_id_token(tid="t-2"), _id_token(exp=int(time.time()) - 3600),
                _id_token(aud="someone-else"), _id_token(nonce="other")):
        with pytest.raises(JoseError):
            flow.validate_id_token(spec, endpoints, bad, "app", "n")
    with pytest.raises(ProviderError, match="another party"):
        flow.validate_id_token(spec, endpoints, _id_token(aud=["app", "x"], azp="x"), "app", "n")
    with pytest.raises(ProviderError):
        flow.validate_id_token(spec, Endpoints("a", "b"), None, "app", "n")
