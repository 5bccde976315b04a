"""Password check against the LDAP directories of ``ldap.servers`` (ldap3).

For each server in order, as Girder's LDAP plugin does: bind with the service
account, search ``baseDn`` for ``(searchField=<login>)`` (and ``queryFilter``),
then bind as the entry found with the password the user typed. Unlike Girder,
the login is escaped in the filter, an empty password is refused before any
bind (LDAP treats it as an anonymous bind that "succeeds"), and a failed user
bind is always a refusal. Every network step is bounded by ``ldap.settings``'
``timeout``; a directory that is down, silent or answers garbage is
``UNAVAILABLE``, never a hang or a traceback. Nothing here writes anything.
"""

from __future__ import annotations

import enum
import logging
import math
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars

from ..db.engine import Document
from ..errors import AuthenticationError
from ..stored_settings import SettingsService

log = logging.getLogger("joist.auth.ldap")

ATTRIBUTES = ("uid", "mail", "cn", "sn", "givenName")  # Girder's, less distinguishedName


class Outcome(enum.Enum):
    OK = "ok"                      # the directory accepted the password
    WRONG_PASSWORD = "wrong"       # an entry matched; the password did not
    UNKNOWN = "unknown"            # no configured directory knows the login
    UNAVAILABLE = "unavailable"    # a directory could not answer (and none accepted)
    NOT_CONFIGURED = "off"


@dataclass(frozen=True)
class DirectoryEntry:
    dn: str
    server: str
    attributes: Mapping[str, list[str]] = field(default_factory=dict)
    login_attribute: str = "uid"

    def first(self, name: str) -> str:
        values = self.attributes.get(name) or []
        return str(values[0]).strip() if values else ""

    def all(self, name: str) -> list[str]:
        return [str(v).strip() for v in self.attributes.get(name) or [] if str(v).strip()]


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    entry: DirectoryEntry | None = None
    reason: str = ""  # for UNAVAILABLE: what went wrong, without secrets


class _UnavailableError(Exception):
    pass


class LdapDirectory:
    """Stateless: reads the settings on every call, opens a connection per check."""

    def __init__(self, settings: SettingsService) -> None:
        self._settings = settings

    def servers(self) -> list[dict[str, Any]]:
        return list(self._settings.get("ldap.servers") or [])

    def options(self) -> dict[str, Any]:
        return dict(self._settings.get("ldap.settings") or {})

    def configured(self) -> bool:
        return bool(self.servers())

    def check(self, login: str, password: str) -> Result:
        servers = self.servers()
        if not servers:
            return Result(Outcome.NOT_CONFIGURED)
        if not isinstance(login, str) or not login.strip() or \
                not isinstance(password, str) or not password:
            return Result(Outcome.UNKNOWN)  # never bind with an empty password
        timeout = float(self.options().get("timeout", 4))
        reasons: list[str] = []
        for server in servers:
            try:
                result = self._check_server(server, login.strip(), password, timeout)
            except _UnavailableError as exc:
                reasons.append(f"{server['uri']}: {exc}")
                log.warning("LDAP server %s unavailable: %s", server["uri"], exc)
                continue
            if result.outcome is not Outcome.UNKNOWN:
                return result
        if reasons:
            return Result(Outcome.UNAVAILABLE, reason="; ".join(reasons))
        return Result(Outcome.UNKNOWN)

    def server_status(self, uri: str, bind_name: str, password: str) -> dict[str, Any]:
        """Girder's ``GET system/ldap_server/status``: can this account bind?
        An empty password means the one stored for that uri and bind name (the
        settings page never sees it)."""
        uri = (uri or "").strip().rstrip("/")
        if "://" not in uri:
            uri = "ldap://" + uri
        if not password:
            password = next((s.get("password", "") for s in self.servers()
                             if s["uri"] == uri and s["bindName"] == bind_name), "")
        timeout = float(self.options().get("timeout", 4))
        server = {"uri": uri, "bindName": bind_name}
        try:
            if not uri.lower().startswith(("ldap://", "ldaps://")):
                raise ValueError("the URI must start with ldap:// or ldaps://")
            with _connection(_server(server, timeout), server, bind_name, password, timeout):
                pass
        except ldap_errors.LDAPException as exc:
            return {"connected": False, "error": "LDAP connection error: " + _describe(exc)}
        except Exception as exc:  # garbage answers, bad URIs: see _check_server
            return {"connected": False,
                    "error": f"LDAP connection error: {_describe(exc)}"}
        return {"connected": True}

    def entry_present(self, dn: str) -> bool | None:
        """Is ``dn`` still in a directory (under a server's ``baseDn``, passing its
        ``queryFilter``)? None when no server that could hold it answered."""
        unavailable = False
        for server in self.servers():
            base = server["baseDn"].strip().lower()
            if base and not dn.lower().endswith(base):
                continue
            timeout = float(self.options().get("timeout", 4))
            extra = server.get("queryFilter") or ""
            query = (extra if extra.startswith("(") else f"({extra})") if extra \
                else "(objectClass=*)"
            try:
                with _connection(_server(server, timeout), server, server["bindName"],
                                 server.get("password", ""), timeout) as conn:
                    conn.search(dn, query, search_scope=ldap3.BASE, attributes=[],
                                size_limit=1, time_limit=int(timeout) + 1)
                    code = (conn.result or {}).get("result")
                    found = any(e.get("type") == "searchResEntry" for e in conn.response or [])
            except Exception as exc:  # as in _check_server: down, silent, garbage
                log.warning("LDAP server %s unavailable: %s", server["uri"], _describe(exc))
                unavailable = True
                continue
            if found:
                return True
            if code not in (0, 32):  # 32: noSuchObject, the entry is gone
                unavailable = True
        return None if unavailable else False

    # ------------------------------------------------------------ one server
    def _check_server(self, server: Mapping[str, Any], login: str, password: str,
                      timeout: float) -> Result:
        try:
            target = _server(server, timeout)
            with _connection(target, server, server["bindName"],
                             server.get("password", ""), timeout) as conn:
                query = f"({server['searchField']}={escape_filter_chars(login)})"
                extra = server.get("queryFilter") or ""
                if extra:
                    extra = extra if extra.startswith("(") else f"({extra})"
                    query = f"(&{query}{extra})"
                attributes = sorted({*ATTRIBUTES, server["searchField"],
                                     server.get("loginAttribute") or server["searchField"]})
                conn.search(server["baseDn"], query, search_scope=ldap3.SUBTREE,
                            attributes=attributes, size_limit=2, time_limit=int(timeout) + 1)
                entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
            if not entries:
                return Result(Outcome.UNKNOWN)
            if len(entries) > 1:  # the search field must identify one entry
                raise _UnavailableError(
                    f"{server['searchField']}={login!r} matches several entries")
            dn = str(entries[0]["dn"])
            attrs = {str(k): [str(v) for v in (vs if isinstance(vs, list) else [vs])]
                     for k, vs in dict(entries[0].get("attributes") or {}).items()}
            try:
                with _connection(target, server, dn, password, timeout):
                    pass
            except ldap_errors.LDAPBindError:
                return Result(Outcome.WRONG_PASSWORD,
                              DirectoryEntry(dn, server["uri"], attrs))
            return Result(Outcome.OK, DirectoryEntry(
                dn, server["uri"], attrs,
                server.get("loginAttribute") or server["searchField"]))
        except ldap_errors.LDAPBindError as exc:  # the service account was refused
            raise _UnavailableError(f"service bind refused ({_describe(exc)})") from None
        except ldap_errors.LDAPException as exc:
            raise _UnavailableError(_describe(exc)) from None
        except Exception as exc:
            # ldap3 lets the decoding errors of answers that are not LDAP
            # through under many types (IndexError, struct.error, pyasn1's).
            raise _UnavailableError(f"unreadable answer ({type(exc).__name__})") from None


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _server(server: Mapping[str, Any], timeout: float) -> ldap3.Server:
    tls = None
    if server["uri"].lower().startswith("ldaps://") or server.get("startTls"):
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED if server.get("tlsVerify", True)
                        else ssl.CERT_NONE,
                        ca_certs_file=server.get("caCertFile") or None)
    return ldap3.Server(server["uri"], get_info=ldap3.NONE, connect_timeout=timeout,
                        tls=tls)


def _connection(target: ldap3.Server, server: Mapping[str, Any], user: str,
                password: str, timeout: float) -> ldap3.Connection:
    """A bound connection (``LDAPBindError`` when the credentials are refused)."""
    auto_bind = ldap3.AUTO_BIND_TLS_BEFORE_BIND if server.get("startTls") \
        else ldap3.AUTO_BIND_NO_TLS
    # ldap3 sets SO_RCVTIMEO from whole seconds.
    return ldap3.Connection(target, user=user, password=password, auto_bind=auto_bind,
                            receive_timeout=max(1, math.ceil(timeout)), raise_exceptions=False,
                            read_only=True, check_names=True)


DIRECTORY_GONE = "The directory account is disabled or removed."


class DirectoryGate:
    """Revocation of directory accounts: every grant of an account linked to a
    directory entry (``ldapDn``) -- password, token, API key or SSH key -- holds
    while the entry is still in the directory. Checked when a grant is issued
    and re-derived (``GrantChecker``); answers are remembered ``ldap.settings``'
    ``recheck`` seconds per entry, so a directory sees one search per active
    account per period. A directory that cannot answer revokes nothing."""

    def __init__(self, directory: LdapDirectory) -> None:
        self._directory = directory
        self._seen: dict[str, tuple[float, bool | None]] = {}
        self._lock = threading.Lock()  # guards _seen

    def mark(self, dn: str, present: bool | None) -> None:
        with self._lock:
            if len(self._seen) > 10_000:  # bounded: it refills
                self._seen.clear()
            self._seen[dn] = (time.monotonic(), present)

    def check(self, user: Document) -> None:
        dn = user.get("ldapDn")
        if not dn or not self._directory.configured():
            return
        ttl = float(self._directory.options().get("recheck", RECHECK_SECONDS))
        with self._lock:
            seen = self._seen.get(dn)
        if seen is None or time.monotonic() - seen[0] >= ttl:
            present = self._directory.entry_present(dn)
            self.mark(dn, present)
        else:
            present = seen[1]
        if present is False:
            raise AuthenticationError(DIRECTORY_GONE)


RECHECK_SECONDS = 10.0
