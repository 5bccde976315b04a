"""Validation of the LDAP settings, with Girder's LDAP plugin keys.

``ldap.servers`` is Girder's list of servers: ``uri``, ``bindName``, ``password``,
``baseDn``, ``searchField`` (default ``uid``) and ``queryFilter`` (an extra
filter, default none). Joist adds ``loginAttribute`` (which attribute gives a new
account its login; default the search field, as Girder derives it), and the TLS
options Girder leaves to libldap's configuration: ``startTls``, ``tlsVerify``
(default true) and ``caCertFile``. ``ldap.settings`` is Girder's ``timeout``
(seconds, default 4) and ``fallback`` (default true), plus Joist's ``recheck``
(seconds between checks that a linked account's entry is still there, default 10).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..validation import loads_json

SCHEMES = ("ldap://", "ldaps://")
MAX_SERVERS = 20
MAX_TIMEOUT = 120.0
_ATTRIBUTE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
_STRINGS = ("uri", "bindName", "password", "baseDn", "searchField", "queryFilter",
            "loginAttribute", "caCertFile")
_BOOLS = ("startTls", "tlsVerify")
_SHOWN_ONLY = ("hasPassword",)  # what ``redact_servers`` adds; ignored when sent back


def _parsed(value: Any) -> Any:
    return loads_json(value) if isinstance(value, str) else value


def _server(raw: Any, index: int) -> dict[str, Any]:
    where = f"server {index + 1}"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be an object")
    unknown = set(raw) - set(_STRINGS) - set(_BOOLS) - set(_SHOWN_ONLY)
    if unknown:
        raise ValueError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    for key in _STRINGS:
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ValueError(f"{where}: {key} must be a string")
    for key in _BOOLS:
        if raw.get(key) is not None and not isinstance(raw[key], bool):
            raise ValueError(f"{where}: {key} must be a boolean")
    uri = (raw.get("uri") or "").strip().rstrip("/")  # ldap3 takes no trailing slash
    bind_name = (raw.get("bindName") or "").strip()
    if not uri or not bind_name or raw.get("baseDn") is None:
        raise ValueError(f"{where}: uri, bindName and baseDn are required")
    if "://" not in uri:
        uri = "ldap://" + uri  # as Girder does
    if not uri.lower().startswith(SCHEMES):
        raise ValueError(f"{where}: uri must start with ldap:// or ldaps://")
    search = (raw.get("searchField") or "uid").strip()
    login_attribute = (raw.get("loginAttribute") or search).strip()
    for name, attribute in (("searchField", search), ("loginAttribute", login_attribute)):
        if not _ATTRIBUTE_RE.match(attribute):
            raise ValueError(f"{where}: {name} must be an attribute name")
    query = (raw.get("queryFilter") or "").strip()
    if query and query.count("(") != query.count(")"):
        raise ValueError(f"{where}: queryFilter has unbalanced parentheses")
    server: dict[str, Any] = {
        "uri": uri, "bindName": bind_name, "baseDn": raw["baseDn"].strip(),
        "searchField": search, "queryFilter": query, "loginAttribute": login_attribute,
        "startTls": bool(raw.get("startTls", False)),
        "tlsVerify": bool(raw.get("tlsVerify", True)),
        "caCertFile": (raw.get("caCertFile") or "").strip()}
    if raw.get("password") is not None:  # left out: ``restore_passwords`` keeps the stored one
        server["password"] = raw["password"]
    return server


def ldap_servers(value: Any) -> list[dict[str, Any]]:
    value = _parsed(value)
    if not isinstance(value, list):
        raise ValueError("must be a list of servers")
    if len(value) > MAX_SERVERS:
        raise ValueError(f"at most {MAX_SERVERS} servers")
    return [_server(raw, index) for index, raw in enumerate(value)]


def ldap_options(value: Any) -> dict[str, Any]:
    value = _parsed(value)
    if not isinstance(value, Mapping):
        raise ValueError("must be an object with timeout and fallback")
    unknown = set(value) - {"timeout", "fallback", "recheck"}
    if unknown:
        raise ValueError(f"unknown keys {', '.join(sorted(map(str, unknown)))}")
    timeout = value.get("timeout", 4)
    fallback = value.get("fallback", True)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or \
            not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError(f"timeout must be a number of seconds in (0, {MAX_TIMEOUT:g}]")
    if not isinstance(fallback, bool):
        raise ValueError("fallback must be a boolean")
    recheck = value.get("recheck", 10)
    if isinstance(recheck, bool) or not isinstance(recheck, (int, float)) or \
            not 0 < recheck <= 86400:
        raise ValueError("recheck must be a number of seconds in (0, 86400]")
    return {"timeout": float(timeout), "fallback": fallback, "recheck": float(recheck)}


def redact_servers(servers: Any) -> Any:
    """The servers without their bind passwords (``hasPassword`` says if one is set)."""
    if not isinstance(servers, list):
        return servers
    return [{**{k: v for k, v in s.items() if k != "password"},
             "hasPassword": bool(s.get("password"))} for s in servers]


def restore_passwords(new: list[dict[str, Any]], stored: Any) -> list[dict[str, Any]]:
    """A server sent without a password keeps the one stored for the same uri
    and bind name (a client that read the redacted value and wrote it back);
    else it binds with an empty password, as Girder's default."""
    kept = {(s.get("uri"), s.get("bindName")): s.get("password", "")
            for s in stored or [] if isinstance(s, Mapping)}
    return [server if "password" in server else
            {**server, "password": kept.get((server["uri"], server["bindName"]), "")}
            for server in new]
