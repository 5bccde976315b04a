"""The ``oauth`` plugin's settings, with Girder's keys: ``oauth.<provider>_client_id``
and ``oauth.<provider>_client_secret`` per provider (the secret is a secret
setting: never shown by the API or the CLI), ``oauth.providers_enabled``,
``oauth.ignore_registration_policy``, ``oauth.microsoft_tenant_id``; plus
``oauth.oidc_providers`` (generic OpenID Connect issuers, their client secrets
redacted like LDAP bind passwords) and ``oauth.timeout``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...stored_settings import SettingDef
from ...validation import loads_json
from .providers import BUILTIN

ENABLED = "oauth.providers_enabled"
IGNORE_POLICY = "oauth.ignore_registration_policy"
OIDC_PROVIDERS = "oauth.oidc_providers"
TIMEOUT = "oauth.timeout"
MAX_TIMEOUT = 60.0
_ID = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_GENERIC_KEYS = {"id", "name", "discoveryUrl", "clientId", "clientSecret", "scope"}


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value.strip()


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("must be a boolean")


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        value = loads_json(value)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a JSON array of provider ids")
    return list(dict.fromkeys(value))


def _timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("must be a number of seconds")
    number = float(value)
    if not 0 < number <= MAX_TIMEOUT:
        raise ValueError(f"must be in (0, {MAX_TIMEOUT:g}] seconds")
    return number


def _http_url(value: Any, what: str) -> str:
    value = _string(value)
    if not value.startswith(("https://", "http://")):
        raise ValueError(f"{what} must be an http(s) URL")
    return value


def oidc_providers(value: Any) -> list[dict[str, Any]]:
    """A list of ``{id, name, discoveryUrl, clientId, clientSecret, scope}``."""
    if isinstance(value, str):
        value = loads_json(value)
    if not isinstance(value, list):
        raise ValueError("must be a JSON array of providers")
    out: list[dict[str, Any]] = []
    for n, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise ValueError(f"provider {n} must be an object")
        unknown = set(entry) - _GENERIC_KEYS - {"hasSecret"}
        if unknown:
            raise ValueError(f"provider {n}: unknown keys {', '.join(sorted(map(str, unknown)))}")
        pid = entry.get("id")
        if not isinstance(pid, str) or not _ID.match(pid) or pid in BUILTIN:
            raise ValueError(f"provider {n}: id must be lower-case letters, digits, - or _ "
                             "and not a built-in provider's")
        if pid in {o["id"] for o in out}:
            raise ValueError(f"provider {n}: id {pid} is used twice")
        clean = {"id": pid, "name": _string(entry.get("name") or pid) or pid,
                 "discoveryUrl": _http_url(entry.get("discoveryUrl"), "discoveryUrl"),
                 "clientId": _string(entry.get("clientId", "")),
                 "scope": _string(entry.get("scope") or "openid email profile")}
        if "openid" not in clean["scope"].split():
            raise ValueError(f"provider {n}: the scope must include openid")
        if "clientSecret" in entry:
            clean["clientSecret"] = _string(entry["clientSecret"])
        out.append(clean)
    return out


def redact_providers(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    return [{**{k: v for k, v in p.items() if k != "clientSecret"},
             "hasSecret": bool(p.get("clientSecret"))} for p in value]


def restore_secrets(new: list[dict[str, Any]], stored: Any) -> list[dict[str, Any]]:
    """A provider sent back without its secret keeps the stored one (same id)."""
    kept = {p.get("id"): p.get("clientSecret", "") for p in stored or []
            if isinstance(p, Mapping)}
    return [p if "clientSecret" in p else {**p, "clientSecret": kept.get(p["id"], "")}
            for p in new]


def definitions() -> list[SettingDef]:
    defs = [
        SettingDef(ENABLED, [], _names,
                   "OAuth2 / OpenID Connect providers offered at sign-in (ids: "
                   f"{', '.join(BUILTIN)}, or an id of oauth.oidc_providers).", public=True),
        SettingDef(IGNORE_POLICY, False, _bool,
                   "Let OAuth sign-in create accounts even when the registration policy "
                   "is closed or needs approval."),
        SettingDef(TIMEOUT, 10.0, _timeout,
                   "Seconds each request to a provider may take (discovery, token, "
                   "keys, user info)."),
        SettingDef(OIDC_PROVIDERS, [], oidc_providers,
                   "Generic OpenID Connect providers: id, name, discoveryUrl (the "
                   ".well-known/openid-configuration URL), clientId, clientSecret (never "
                   "shown), scope.", redact=redact_providers, restore=restore_secrets),
        SettingDef("oauth.microsoft_tenant_id", "common", lambda v: _string(v) or "common",
                   "Microsoft tenant (directory) id, or common / organizations / "
                   "consumers."),
    ]
    for spec in BUILTIN.values():
        defs.append(SettingDef(spec.client_id_key(), "", _string,
                               f"{spec.name} OAuth client id."))
        defs.append(SettingDef(spec.client_secret_key(), "", _string,
                               f"{spec.name} OAuth client secret (never shown).", secret=True))
    return defs
