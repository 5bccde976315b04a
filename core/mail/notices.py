"""The mail the account rules send, as Girder sends it.

Links point at the web client's routes (Girder's, so a Girder-style client
serves them): ``#useraccount/{id}/verification/{token}`` (verify: the client
calls ``PUT user/{id}/verification?token=``), ``#useraccount/{id}/token/{token}``
(temporary access: the client calls ``GET user/password/temporary/{id}?token=``,
gets a login token, then ``PUT user/password`` with ``old=<the temporary
token>``), ``#user/{id}`` (an account awaiting approval) and ``#group/{id}``.
``origin`` is where the request that caused the mail came to, used when neither
``core.email_host`` nor ``core.server_root`` is set.
"""

from __future__ import annotations

from typing import Any

from ..auth import scopes
from ..auth.authenticator import Authenticator
from ..db.engine import Collection, Document
from ..errors import ValidationError
from ..stored_settings import SettingsService
from .service import MailService

TEMPORARY_ACCESS_DAYS = 1.0


def _person(user: Document) -> dict[str, Any]:
    return {"login": user.get("login"), "first_name": user.get("firstName"),
            "last_name": user.get("lastName"), "email": user.get("email")}


class Notices:
    def __init__(self, mail: MailService, auth: Authenticator, settings: SettingsService,
                 users: Collection) -> None:
        self.mail = mail
        self._auth = auth
        self._settings = settings
        self._users = users

    def verification_enabled(self) -> bool:
        return self._settings.get("core.email_verification") != "disabled"

    # ------------------------------------------------------------ accounts
    def user_created(self, user: Document, origin: str = "") -> None:
        """After registration: the verification mail (unless the policy is
        ``disabled`` or the address counts as verified already) and, for an
        account awaiting approval, a notice to every administrator."""
        if self.verification_enabled() and not user.get("emailVerified"):
            self.verification(user, origin)
        if user.get("status") == "pending":
            self.approval_needed(user, origin)

    def verification(self, user: Document, origin: str = "") -> None:
        token = self._auth.email_verification_token(user)
        url = self.mail.link(origin, f"useraccount/{user['_id']}/verification/{token['_id']}")
        self.mail.send("emailVerification", user["email"], {**_person(user), "url": url})

    def approval_needed(self, user: Document, origin: str = "") -> None:
        url = self.mail.link(origin, f"user/{user['_id']}")
        for admin in self._users.find({"admin": True}, projection=["email"]):
            if admin.get("email"):
                self.mail.send("accountApproval", admin["email"], {**_person(user), "url": url})

    def approved(self, user: Document, origin: str = "") -> None:
        self.mail.send("accountApproved", user["email"],
                       {**_person(user), "url": self.mail.link(origin)})

    # ------------------------------------------------------------ password reset
    def temporary_access(self, email: Any, origin: str = "") -> None:
        """``PUT user/password/temporary``: mail a one-day temporary access link.
        An unknown address is Girder's 400 "That email is not registered."."""
        address = email.strip().lower() if isinstance(email, str) else ""
        user = self._users.find_one({"email": address}) if address else None
        if user is None:
            raise ValidationError("That email is not registered.", field="email")
        token = self._auth.tokens.create(user, days=TEMPORARY_ACCESS_DAYS,
                                         scopes=[scopes.TEMPORARY_USER_AUTH])
        url = self.mail.link(origin, f"useraccount/{user['_id']}/token/{token['_id']}")
        self.mail.send("temporaryAccess", user["email"], {**_person(user), "url": url})

    # ------------------------------------------------------------ groups
    def group_invite(self, inviter: Document, user: Document, group: Document,
                     origin: str = "") -> None:
        inviter_name = f"{inviter.get('firstName', '')} {inviter.get('lastName', '')}".strip()
        self.mail.send("groupInvite", user["email"], {
            **_person(user), "inviter_name": inviter_name or inviter.get("login"),
            "inviter_login": inviter.get("login"), "group_name": group.get("name"),
            "url": self.mail.link(origin, f"group/{group['_id']}")})
