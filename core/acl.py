"""Access control: Girder's model, decided here and nowhere else.

Users, groups, collections and folders carry ``access = {"users": [...],
"groups": [...]}`` entries ``{"id", "level", "flags"}`` plus ``public``. Items
and files have no ACL: they take their folder's. Site admins pass every check.
``public`` grants READ to everyone, never more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

from bson import ObjectId

from .auth import scopes as _scopes
from .errors import AccessDeniedError, AuthenticationError, ValidationError


class AccessLevel(IntEnum):
    NONE = -1
    READ = 0
    WRITE = 1
    ADMIN = 2
    SITE_ADMIN = 100  # a filter level for field exposure, never stored


READ, WRITE, ADMIN = AccessLevel.READ, AccessLevel.WRITE, AccessLevel.ADMIN

# Token scopes: the names and the rule live in auth.scopes; these aliases keep
# the older spellings working.
SCOPE_USER_AUTH = _scopes.USER_AUTH
SCOPE_DATA_READ = _scopes.DATA_READ
SCOPE_DATA_WRITE = _scopes.DATA_WRITE
SCOPE_DATA_OWN = _scopes.DATA_OWN
SCOPE_USER_INFO_READ = _scopes.USER_INFO_READ
SCOPE_ANONYMOUS = _scopes.ANONYMOUS_SESSION
SCOPE_TEMPORARY = _scopes.TEMPORARY_USER_AUTH
SCOPE_EMAIL_VERIFICATION = _scopes.EMAIL_VERIFICATION
SCOPE_SETTING_READ = _scopes.SETTINGS_READ
SCOPE_PLUGINS_READ = _scopes.PLUGINS_READ
SCOPE_ASSETSTORE_READ = _scopes.ASSETSTORES_READ
SCOPE_PARTIAL_UPLOAD_READ = _scopes.PARTIAL_UPLOAD_READ
SCOPE_PARTIAL_UPLOAD_CLEAN = _scopes.PARTIAL_UPLOAD_CLEAN

LEVEL_SCOPE = {READ: SCOPE_DATA_READ, WRITE: SCOPE_DATA_WRITE, ADMIN: SCOPE_DATA_OWN}


@dataclass(frozen=True)
class Principal:
    """Who is acting: a user (with groups) or anonymous, and the token scopes.

    ``scopes`` None means full user authority (``core.user_auth``). A scoped
    token acts as its user only for operations within its scopes
    (``auth.scopes.satisfies`` decides). ``admitted`` marks a scoped token let
    in by a route that declares a scope it holds: there, as in Girder, it acts
    with its user's standing, site administration included.
    """

    user_id: ObjectId | None = None
    login: str = ""
    admin: bool = False
    groups: frozenset[ObjectId] = field(default_factory=frozenset)
    scopes: frozenset[str] | None = None
    token_id: str | None = None
    admitted: bool = False

    @classmethod
    def anonymous(cls) -> Principal:
        return ANONYMOUS

    @classmethod
    def from_user(cls, user: Mapping[str, Any], *, scopes: Iterable[str] | None = None,
                  token_id: str | None = None) -> Principal:
        return cls(user_id=user["_id"], login=user.get("login", ""),
                   admin=bool(user.get("admin")),
                   groups=frozenset(user.get("groups") or ()),
                   scopes=_scopes.effective(scopes), token_id=token_id)

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    @property
    def is_site_admin(self) -> bool:
        return self.admin and (self.scopes is None or self.admitted)

    def has_scope(self, scope: _scopes.Required) -> bool:
        return _scopes.satisfies(self.scopes, scope)

    def for_scope(self, scope: _scopes.Required) -> Principal:
        """The principal as seen by an operation needing ``scope``: a token
        lacking it acts as anonymous there (Girder's rule)."""
        if self.user_id is None or self.has_scope(scope):
            return self
        return ANONYMOUS

    def admit(self, required: _scopes.Required) -> Principal:
        """The principal as a route declaring ``required`` sees it: anonymous
        when the token lacks it, else the user, a scoped token marked admitted."""
        if self.user_id is None or self.scopes is None:
            return self
        if not self.has_scope(required):
            return ANONYMOUS
        return replace(self, admitted=True)

    def require_full_login(self) -> None:
        """Account and credential changes: only a full login makes them, never
        a scoped token, whatever a gateway declares."""
        if self.user_id is not None and self.scopes is not None:
            raise AuthenticationError(_scopes.refusal(self.scopes, _scopes.USER_AUTH))

    def label(self) -> str:
        return self.login or "anonymous"


ANONYMOUS = Principal()
# The admin CLI's authority when it acts for no particular user.
SYSTEM = Principal(login="system", admin=True)


_AS_LEVEL = {-1: AccessLevel.NONE, 0: AccessLevel.READ, 1: AccessLevel.WRITE,
             2: AccessLevel.ADMIN}


def _best_entry(entries: Any, ids: Any, single: bool, best: int) -> int:
    for entry in entries or ():
        if (entry.get("id") == ids) if single else (entry.get("id") in ids):
            level = entry.get("level")
            if isinstance(level, int) and level > best:
                best = level
    return best


def effective_level(doc: Mapping[str, Any], principal: Principal) -> AccessLevel:
    """The principal's level on an access-controlled document.

    On every path lookup, once per container: kept free of enum arithmetic.
    """
    if principal.admin:
        return AccessLevel.ADMIN
    best = -1
    access = doc.get("access")
    if access and principal.user_id is not None:
        best = _best_entry(access.get("users"), principal.user_id, True, best)
        if principal.groups and best < 2:
            best = _best_entry(access.get("groups"), principal.groups, False, best)
    if best < 0 and doc.get("public"):
        best = 0
    return _AS_LEVEL[min(best, 2)]


def can_read(doc: Mapping[str, Any], principal: Principal) -> bool:
    """``effective_level >= READ``, with the common cases first."""
    if principal.admin or doc.get("public"):
        return True
    return effective_level(doc, principal) >= READ


def has_access(doc: Mapping[str, Any], principal: Principal, level: int) -> bool:
    return effective_level(doc, principal) >= level


def denial(principal: Principal, level: int, model: str,
           doc_id: Any) -> AccessDeniedError:
    """Girder's wording; anonymous callers get ``AuthenticationError`` (401)."""
    word = {READ: "Read", WRITE: "Write", ADMIN: "Admin"}.get(AccessLevel(level), "Admin")
    message = (f"{word} access denied for {model} {doc_id} "
               f"(user {principal.user_id if principal.user_id else None}).")
    if principal.is_anonymous:
        return AuthenticationError(message)
    return AccessDeniedError(message)


def require(doc: Mapping[str, Any], principal: Principal, level: int,
            model: str) -> AccessLevel:
    """Return the effective level, or raise the access error."""
    got = effective_level(doc, principal)
    if got < level:
        raise denial(principal, level, model, doc.get("_id"))
    return got


def permission_filter(principal: Principal, level: int) -> dict[str, Any] | None:
    """A store filter matching documents on which ``principal`` has ``level``.

    None means "no restriction" (site admins); a filter that matches nothing
    is returned for anonymous callers above READ. One query for a whole page:
    listings never check child by child.
    """
    if principal.admin:
        return None
    clauses: list[dict[str, Any]] = []
    if level <= READ:
        clauses.append({"public": True})
    if principal.user_id is not None:
        clauses.append({"access.users": {"$elemMatch": {
            "id": principal.user_id, "level": {"$gte": int(level)}}}})
        if principal.groups:
            clauses.append({"access.groups": {"$elemMatch": {
                "id": {"$in": sorted(principal.groups)}, "level": {"$gte": int(level)}}}})
    if not clauses:
        return {"_id": {"$in": []}}
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def and_filter(base: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    if not extra:
        return dict(base)
    return {"$and": [dict(base), dict(extra)]}


def new_access(owner_id: ObjectId | None = None, level: int = ADMIN) -> dict[str, Any]:
    users = [] if owner_id is None else [{"id": owner_id, "level": int(level), "flags": []}]
    return {"users": users, "groups": []}


def grant(access: Mapping[str, Any] | None, kind: str, principal_id: ObjectId,
          level: int | None) -> dict[str, Any]:
    """A copy of ``access`` with one entry set (``level`` None removes it)."""
    result = {"users": list((access or {}).get("users") or ()),
              "groups": list((access or {}).get("groups") or ())}
    key = {"user": "users", "group": "groups"}[kind]
    entries = [e for e in result[key] if e.get("id") != principal_id]
    if level is not None:
        entries.append({"id": principal_id, "level": int(level), "flags": []})
    result[key] = entries
    return result


def normalize_access_list(access: Any) -> dict[str, list[dict[str, Any]]]:
    """Validate a client-supplied access list; extra keys are ignored."""
    if not isinstance(access, Mapping):
        raise ValidationError("Invalid access list", field="access")
    out: dict[str, list[dict[str, Any]]] = {"users": [], "groups": []}
    for key in ("users", "groups"):
        entries = access.get(key) or []
        if not isinstance(entries, list):
            raise ValidationError("Invalid access list", field="access")
        seen: set[ObjectId] = set()
        for entry in entries:
            if not isinstance(entry, Mapping) or "id" not in entry or "level" not in entry:
                raise ValidationError("Invalid access list", field="access")
            try:
                oid = ObjectId(str(entry["id"]))
            except Exception:
                raise ValidationError(f"Invalid ObjectId: {entry['id']}",
                                      field="access") from None
            level = entry["level"]
            if isinstance(level, bool) or not isinstance(level, int) or \
                    level not in (READ, WRITE, ADMIN):
                raise ValidationError("Invalid access level", field="access")
            if oid in seen:
                continue
            seen.add(oid)
            # Core registers no access flags (as Girder's core): flags are dropped.
            out[key].append({"id": oid, "level": int(level), "flags": []})
    return out
