"""The Joist account of someone a provider signed in: found by the provider's
user id, else linked by an email address the provider VERIFIED, else created
(with no local password) as the registration policy allows, unless
``oauth.ignore_registration_policy``. Unlinking a provider ends the tokens that
sign-in gave; an account left with no password, directory entry or provider
can no longer log in anywhere (``identity_gate``)."""

from __future__ import annotations

import contextlib
import re
import secrets
from typing import Any

from ...acl import Principal
from ...db.engine import Document
from ...errors import AccessDeniedError, AuthenticationError, ExistsError, ValidationError
from ...services.users import validate_email, validate_login
from . import settings as keys
from .providers import Profile

MAX_NAME_ATTEMPTS = 10
UNLINKED = ("This account signed in through a provider that has been unlinked, and has no "
            "password: it can no longer log in.")


class OAuthAccounts:
    def __init__(self, services: Any) -> None:
        self._services = services
        self._users = services.users
        self._coll = services.users.store.users
        self._settings = services.settings

    def find(self, profile: Profile) -> Document | None:
        return self._coll.find_one(
            {"oauth": {"$elemMatch": {"provider": profile.provider, "id": profile.id}}})

    def account_for(self, profile: Profile) -> Document:
        user = self.find(profile)
        if user is not None:
            return user
        for email in profile.verified_emails():
            with contextlib.suppress(ValidationError):
                user = self._coll.find_one({"email": validate_email(email)})
            if user is not None:
                return self._link(user, profile, verified=True)
        return self._create(profile)

    def _link(self, user: Document, profile: Profile, *, verified: bool) -> Document:
        links = [*(user.get("oauth") or []), {"provider": profile.provider, "id": profile.id}]
        changes: dict[str, Any] = {"oauth": links}
        if verified:
            changes["emailVerified"] = True
        self._coll.update_one({"_id": user["_id"]}, {"$set": changes})
        return {**user, **changes}

    def _create(self, profile: Profile) -> Document:
        emails = []
        for email, verified in profile.emails:
            with contextlib.suppress(ValidationError):
                emails.append((validate_email(email), verified))
        if not emails:
            raise ValidationError("The provider gave no usable email address, which a Joist "
                                  "account needs.")
        email, verified = emails[0]
        if self._coll.find_one({"email": email}, projection=["_id"]) is not None:
            raise ValidationError(f"An account with the email {email} exists, and the provider "
                                  "did not confirm that address, so it cannot be linked. "
                                  "Sign in with that account's password.")
        ignore = bool(self._settings.get(keys.IGNORE_POLICY))
        policy = self._settings.get("core.registration_policy")
        if policy == "closed" and not ignore:
            raise ValidationError("Registration on this instance is closed. Contact an "
                                  "administrator to create an account for you.")
        first = profile.first_name or email.split("@")[0]
        last = profile.last_name or first
        for login in _candidate_logins(profile, email, first, last):
            try:
                # A throw-away password satisfies the create rules; it is
                # removed at once: the account has no local password.
                user = self._users.create(
                    Principal.anonymous(), login=login, email=email, first_name=first,
                    last_name=last, password=secrets.token_urlsafe(24),
                    check_policy=not ignore)
            except (ExistsError, ValidationError) as exc:
                if exc.field == "login":
                    continue
                raise
            changes: dict[str, Any] = {
                "salt": None, "oauth": [{"provider": profile.provider, "id": profile.id}]}
            if verified:
                changes["emailVerified"] = True
            if ignore and user.get("status") == "pending":
                changes["status"] = "enabled"
            self._coll.update_one({"_id": user["_id"]}, {"$set": changes})
            return {**user, **changes}
        raise ValidationError("Could not choose a login for the new account.")

    # ------------------------------------------------------------ links
    def links(self, user: Document) -> list[str]:
        return [str(link.get("provider")) for link in user.get("oauth") or []]

    def unlink(self, principal: Principal, user: Document, provider: str) -> Document:
        """Remove ``user``'s link to ``provider`` (the user or an administrator)
        and end the tokens that provider's sign-ins gave, at once."""
        if not principal.is_site_admin and principal.user_id != user["_id"]:
            raise AccessDeniedError("Only the user or an administrator may unlink a provider.")
        links = [link for link in user.get("oauth") or [] if link.get("provider") != provider]
        if len(links) == len(user.get("oauth") or []):
            raise ValidationError(f"The account is not linked to {provider}.", field="provider")
        self._coll.update_one({"_id": user["_id"]}, {"$set": {"oauth": links}})
        self._services.auth.tokens.delete_for_user(user["_id"], where={"oauthProvider": provider})
        return {**user, "oauth": links}


def identity_gate(user: Document) -> None:
    """Refuse every grant of an account that came from a provider and has lost
    it: no password, no directory entry, no provider left."""
    if "oauth" in user and not user["oauth"] and not user.get("salt") \
            and not user.get("ldapDn"):
        raise AuthenticationError(UNLINKED)


def _candidate_logins(profile: Profile, email: str, first: str, last: str) -> list[str]:
    out: list[str] = []
    for value in (profile.username, email.split("@")[0]):
        with contextlib.suppress(ValidationError):
            out.append(validate_login(re.sub(r"[^a-z0-9.\-]", "", value.lower())))
    base = re.sub(r"[^a-z0-9.\-]", "", (first + last).lower()) or "user"
    if not base[0].isalpha():
        base = "u" + base
    base = base.ljust(4, "0")
    out += [base + (str(i) if i else "") for i in range(MAX_NAME_ATTEMPTS)]
    return list(dict.fromkeys(out))
