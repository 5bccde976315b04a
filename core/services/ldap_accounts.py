"""The Joist account of a directory user: found, linked or created at login.

An account is found by the entry's DN (stored as ``ldapDn``), else linked by
email (any of the entry's ``mail`` values, as Girder links), else created with
name and email from the directory and no local password (as Girder creates
it). Each login refreshes name and email from the directory. The login of a
new account is the login attribute's value (its part before ``@``), else, when
that is not a valid or free login, first and last name with a number, as
Girder falls back. Called only after the directory accepted the password.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from typing import Any

from ..acl import Principal
from ..auth.ldap import DirectoryEntry
from ..db.engine import Document
from ..errors import ExistsError, ValidationError
from .users import UserService, validate_email, validate_login

MAX_NAME_ATTEMPTS = 10


class LdapAccounts:
    def __init__(self, users: UserService) -> None:
        self._users = users
        self._coll = users.store.users

    def account_for(self, entry: DirectoryEntry) -> Document:
        emails = []
        for mail in entry.all("mail"):
            try:
                emails.append(validate_email(mail))
            except ValidationError:
                continue
        if not emails:
            raise ValidationError("The directory entry has no valid email address; ask "
                                  "the directory administrator to add one.")
        first, last = _names(entry)
        user = self._coll.find_one({"ldapDn": entry.dn}) or \
            self._coll.find_one({"email": {"$in": emails}})
        if user is None:
            try:
                return self._create(entry, emails[0], first, last)
            except ExistsError:  # a concurrent first login created it
                user = self._coll.find_one({"email": emails[0]})
                if user is None:
                    raise
        changes: dict[str, Any] = {"ldapDn": entry.dn, "firstName": first, "lastName": last}
        if user.get("email") not in emails:
            taken = self._coll.find_one({"email": emails[0], "_id": {"$ne": user["_id"]}},
                                        projection=["_id"])
            if taken is None:
                changes["email"] = emails[0]
        changes = {k: v for k, v in changes.items() if user.get(k) != v}
        if changes:
            self._coll.update_one({"_id": user["_id"]}, {"$set": changes})
            user = {**user, **changes}
        return user

    def _create(self, entry: DirectoryEntry, email: str, first: str, last: str) -> Document:
        for login in _candidate_logins(entry, first, last):
            try:
                # A throw-away password satisfies the create rules; it is
                # removed at once: the account has no local password.
                user = self._users.create(
                    Principal.anonymous(), login=login, email=email, first_name=first,
                    last_name=last, password=secrets.token_urlsafe(24), check_policy=False)
            except (ExistsError, ValidationError) as exc:
                if exc.field == "login":
                    continue
                raise
            changes = {"salt": None, "ldapDn": entry.dn, "emailVerified": True}
            self._coll.update_one({"_id": user["_id"]}, {"$set": changes})
            return {**user, **changes}
        raise ValidationError("Could not choose a login for the directory user.")


def _names(entry: DirectoryEntry) -> tuple[str, str]:
    cn = entry.first("cn").split()
    first = entry.first("givenName") or (cn[0] if cn else "")
    last = entry.first("sn") or (cn[-1] if cn else "")
    if not first or not last:
        raise ValidationError("The directory entry has no name (givenName/sn or cn).")
    return first, last


def _candidate_logins(entry: DirectoryEntry, first: str, last: str) -> list[str]:
    out = []
    value = entry.first(entry.login_attribute).split("@")[0]
    with contextlib.suppress(ValidationError):
        out.append(validate_login(value))
    base = re.sub(r"[^a-z0-9.\-]", "", (first + last).lower()) or "user"
    if not base[0].isalpha():
        base = "u" + base
    base = base.ljust(4, "0")  # logins have at least 4 characters
    out += [base + (str(i) if i else "") for i in range(MAX_NAME_ATTEMPTS)]
    return out
