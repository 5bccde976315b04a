"""The identity providers of the ``oauth`` plugin: Girder's eight, each a
configuration of the one authorization-code flow in ``flow.py``, plus any
OpenID Connect issuer named by its discovery URL.

An OpenID Connect provider is described by its discovery document (endpoints,
JWKS, issuer); who signed in comes from its validated ``id_token`` and its
userinfo endpoint. A plain OAuth2 provider (GitHub, Bitbucket, Box) has fixed
endpoints and a ``profile`` function reading its user API. Either way the
result is a ``Profile``: the provider's stable user id, the email addresses
with whether the provider verified them, and the person's names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

JsonGetter = Callable[[str], Any]
"""GETs a URL of the provider's API with the access token; answers its JSON."""


@dataclass(frozen=True)
class Profile:
    provider: str
    id: str
    emails: tuple[tuple[str, bool], ...]  # (address, verified by the provider), primary first
    first_name: str = ""
    last_name: str = ""
    username: str = ""  # a login suggestion (GitHub's login, ...)

    def verified_emails(self) -> list[str]:
        return [e for e, ok in self.emails if ok]


@dataclass(frozen=True)
class ProviderSpec:
    id: str                     # the callback path segment and the settings prefix
    name: str                   # shown on the login button (Girder's external name)
    scope: str
    discovery_url: str = ""     # OpenID Connect: everything else comes from there
    authorize_url: str = ""     # plain OAuth2
    token_url: str = ""
    profile: Callable[[JsonGetter], Profile] | None = None
    settings: tuple[str, ...] = ()  # extra setting keys (Microsoft's tenant)
    extra: Mapping[str, str] = field(default_factory=dict)  # extra authorize parameters

    @property
    def oidc(self) -> bool:
        return bool(self.discovery_url)

    def client_id_key(self) -> str:
        return f"oauth.{self.id}_client_id"

    def client_secret_key(self) -> str:
        return f"oauth.{self.id}_client_secret"


def split_name(full: str) -> tuple[str, str]:
    parts = str(full or "").split()
    if not parts:
        return "", ""
    return parts[0], " ".join(parts[1:]) or parts[0]


def _github(get: JsonGetter) -> Profile:
    user = get("https://api.github.com/user")
    # GitHub tells which addresses the person confirmed only here.
    emails = [(str(e["email"]), bool(e.get("verified")), bool(e.get("primary")))
              for e in get("https://api.github.com/user/emails") or [] if e.get("email")]
    emails.sort(key=lambda e: not e[2])
    first, last = split_name(user.get("name") or user.get("login") or "")
    return Profile("github", str(user["id"]), tuple((e, v) for e, v, _ in emails),
                   first, last, str(user.get("login") or ""))


def _bitbucket(get: JsonGetter) -> Profile:
    user = get("https://api.bitbucket.org/2.0/user")
    values = (get("https://api.bitbucket.org/2.0/user/emails") or {}).get("values") or []
    emails = sorted(((str(e["email"]), bool(e.get("is_confirmed")), bool(e.get("is_primary")))
                     for e in values if e.get("email")), key=lambda e: not e[2])
    first, last = split_name(user.get("display_name") or user.get("username") or "")
    return Profile("bitbucket", str(user.get("uuid") or user["account_id"]),
                   tuple((e, v) for e, v, _ in emails), first, last,
                   str(user.get("username") or user.get("nickname") or ""))


def _box(get: JsonGetter) -> Profile:
    user = get("https://api.box.com/2.0/users/me")
    first, last = split_name(user.get("name") or "")
    # Box's API does not say whether the login address was confirmed: it is
    # used for a new account but never to link to an existing one.
    return Profile("box", str(user["id"]), ((str(user.get("login") or ""), False),),
                   first, last)


BUILTIN: dict[str, ProviderSpec] = {p.id: p for p in (
    ProviderSpec("google", "Google", "openid email profile",
                 discovery_url="https://accounts.google.com/.well-known/openid-configuration"),
    ProviderSpec("globus", "Globus", "openid email profile",
                 discovery_url="https://auth.globus.org/.well-known/openid-configuration"),
    ProviderSpec("github", "GitHub", "read:user user:email",
                 authorize_url="https://github.com/login/oauth/authorize",
                 token_url="https://github.com/login/oauth/access_token", profile=_github),
    ProviderSpec("linkedin", "LinkedIn", "openid email profile",
                 discovery_url="https://www.linkedin.com/oauth/.well-known/"
                               "openid-configuration"),
    ProviderSpec("bitbucket", "Bitbucket", "account email",
                 authorize_url="https://bitbucket.org/site/oauth2/authorize",
                 token_url="https://bitbucket.org/site/oauth2/access_token",
                 profile=_bitbucket),
    ProviderSpec("microsoft", "Microsoft", "openid email profile",
                 discovery_url="https://login.microsoftonline.com/{tenant}/v2.0/"
                               ".well-known/openid-configuration",
                 settings=("oauth.microsoft_tenant_id",)),
    ProviderSpec("box", "Box", "",
                 authorize_url="https://account.box.com/api/oauth2/authorize",
                 token_url="https://api.box.com/oauth2/token", profile=_box),
    ProviderSpec("cilogon", "CILogon", "openid email profile org.cilogon.userinfo",
                 discovery_url="https://cilogon.org/.well-known/openid-configuration"),
)}


def generic(entry: Mapping[str, Any]) -> ProviderSpec:
    """A provider of ``oauth.oidc_providers`` (validated by ``settings``)."""
    return ProviderSpec(entry["id"], entry["name"], entry.get("scope") or "openid email profile",
                        discovery_url=entry["discoveryUrl"])


def profile_from_claims(provider: str, claims: Mapping[str, Any]) -> Profile:
    """An OpenID Connect provider's user, from id_token and userinfo claims."""
    email = str(claims.get("email") or "").strip()
    verified = claims.get("email_verified")
    if isinstance(verified, str):  # some providers send "true"
        verified = verified.lower() == "true"
    first = str(claims.get("given_name") or "").strip()
    last = str(claims.get("family_name") or "").strip()
    if not first or not last:
        f, la = split_name(str(claims.get("name") or ""))
        first, last = first or f, last or la
    username = str(claims.get("preferred_username") or "").strip()
    return Profile(provider, str(claims["sub"]), ((email, verified is True),) if email else (),
                   first, last, username)
