"""Token scopes: Girder's scope names and the one rule of what a token may do.

A token carries a list of scopes. ``core.user_auth`` is a full login: it
satisfies every requirement. Any other token satisfies a requirement only when
it holds every scope required. Each REST route declares the scope it needs
(``core.user_auth`` when only a full login will do); a token lacking it acts as
anonymous on that route (Girder's rule), so ``satisfies`` below is the only
place that answers "may this token do that".

This module imports nothing from the rest of core: ``acl.Principal`` builds on
it, and so do API keys and the REST gateway's route table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Girder's names (girder.constants.TokenScope), so tokens and API keys carry over.
USER_AUTH = "core.user_auth"
TEMPORARY_USER_AUTH = "core.user_auth.temporary"
ANONYMOUS_SESSION = "core.anonymous_session"
EMAIL_VERIFICATION = "core.email_verification"
DATA_READ = "core.data.read"
DATA_WRITE = "core.data.write"
DATA_OWN = "core.data.own"
USER_INFO_READ = "core.user_info.read"
SETTINGS_READ = "core.setting.read"
PLUGINS_READ = "core.plugins.read"
ASSETSTORES_READ = "core.assetstore.read"
PARTIAL_UPLOAD_READ = "core.partial_upload.read"
PARTIAL_UPLOAD_CLEAN = "core.partial_upload.clean"

# Scopes the server gives out itself and never lets an API key carry.
SPECIAL = frozenset({USER_AUTH, TEMPORARY_USER_AUTH, ANONYMOUS_SESSION, EMAIL_VERIFICATION})

Required = str | Iterable[str]


def effective(held: Iterable[str] | None) -> frozenset[str] | None:
    """A token's scope list as a principal keeps it: None for a full login
    (``core.user_auth`` in the list, or no list at all as on Girder's old tokens)."""
    if held is None:
        return None
    scopes = frozenset(held)
    return None if USER_AUTH in scopes else scopes


def satisfies(held: Iterable[str] | None, required: Required) -> bool:
    """Whether a token holding ``held`` (None = full login) may act where
    ``required`` (one scope, or several that are all needed) is declared."""
    scopes = effective(held)
    if scopes is None:
        return True
    needed = {required} if isinstance(required, str) else set(required)
    return needed <= scopes


def refusal(held: Iterable[str] | None, required: Required) -> str:
    """The message of a 401 caused by a token lacking a route's scope (Girder's
    wording); names scopes only, never the token."""
    needed = [required] if isinstance(required, str) else sorted(required)
    allowed = " ".join(sorted(held or ()))
    return f"Invalid token scope. Required: {' '.join(needed)}. Allowed: {allowed}."


@dataclass(frozen=True)
class ScopeInfo:
    id: str
    name: str
    description: str
    admin: bool = False  # only site administrators' keys may carry it

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "description": self.description}


CORE_SCOPES = (
    ScopeInfo(USER_INFO_READ, "Read your user information",
              "Look up your account, including private fields such as the email address."),
    ScopeInfo(DATA_READ, "Read data", "Read every folder, item and file you may read."),
    ScopeInfo(DATA_WRITE, "Write data",
              "Create, change and upload data wherever you have write access."),
    ScopeInfo(DATA_OWN, "Data ownership",
              "Change access control of, and delete, data you administer."),
    ScopeInfo(PLUGINS_READ, "See installed plugins", "List the server's plugins.", admin=True),
    ScopeInfo(SETTINGS_READ, "See system setting values",
              "Read the value of any system setting.", admin=True),
    ScopeInfo(ASSETSTORES_READ, "View assetstores",
              "See every assetstore and the files it holds.", admin=True),
    ScopeInfo(PARTIAL_UPLOAD_READ, "View unfinished uploads",
              "See every upload that has not finished.", admin=True),
    ScopeInfo(PARTIAL_UPLOAD_CLEAN, "Remove unfinished uploads",
              "Discard uploads that have not finished.", admin=True),
)


class ScopeCatalog:
    """The scopes an API key may carry: core's, plus those a plugin registers
    for its own routes. One per application (built with the services)."""

    def __init__(self, scopes: Iterable[ScopeInfo] = CORE_SCOPES) -> None:
        self._scopes: dict[str, ScopeInfo] = {}
        for info in scopes:
            self.register(info)

    def register(self, info: ScopeInfo) -> None:
        if not info.id or any(c.isspace() for c in info.id):
            raise ValueError(f"A scope id is a non-empty word without spaces: {info.id!r}")
        if info.id in SPECIAL or info.id in self._scopes:
            raise ValueError(f"The scope {info.id} is already defined.")
        self._scopes[info.id] = info

    def unregister(self, scope_id: str) -> None:
        """Withdraw a plugin's scope (its load failed); core's stay."""
        if scope_id not in {s.id for s in CORE_SCOPES}:
            self._scopes.pop(scope_id, None)

    def __contains__(self, scope_id: object) -> bool:
        return scope_id in self._scopes

    def get(self, scope_id: str) -> ScopeInfo | None:
        return self._scopes.get(scope_id)

    def listing(self) -> dict[str, list[dict[str, str]]]:
        """``GET token/scopes``: user scopes as ``custom``, admin ones as ``adminCustom``."""
        return {"custom": [s.as_dict() for s in self._scopes.values() if not s.admin],
                "adminCustom": [s.as_dict() for s in self._scopes.values() if s.admin]}

    def check_key_scopes(self, scopes: Iterable[str], *, owner_admin: bool) -> list[str]:
        """The de-duplicated scope list of an API key, or ValueError naming the
        first scope that is unknown or reserved for administrators."""
        wanted = sorted(set(scopes))
        for scope_id in wanted:
            info = self._scopes.get(scope_id)
            if info is None:
                raise ValueError(f"Invalid scopes: {scope_id}.")
            if info.admin and not owner_admin:
                raise ValueError(f"Only admins may use the scope {scope_id}.")
        return wanted


__all__ = [
    "ANONYMOUS_SESSION", "ASSETSTORES_READ", "CORE_SCOPES", "DATA_OWN", "DATA_READ",
    "DATA_WRITE", "EMAIL_VERIFICATION", "PARTIAL_UPLOAD_CLEAN", "PARTIAL_UPLOAD_READ",
    "PLUGINS_READ", "SETTINGS_READ", "SPECIAL", "TEMPORARY_USER_AUTH", "USER_AUTH",
    "USER_INFO_READ", "ScopeCatalog", "ScopeInfo", "effective", "refusal", "satisfies",
]
