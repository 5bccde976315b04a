"""Users: registration rules, profile and password changes, admin flags, OTP."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .. import acl
from ..acl import Principal
from ..auth import otp
from ..auth.passwords import check_password_policy, hash_password, verify_password
from ..clock import utcnow
from ..db.engine import Document, DuplicateKeyError, SortSpec
from ..errors import AccessDeniedError, AuthenticationError, ExistsError, ValidationError
from ..stored_settings import SettingsService
from .folders import FolderService
from .tree_access import TreeAccess

if TYPE_CHECKING:
    from ..auth.tokens import TokenService
    from ..mail import Notices

LOGIN_RE = re.compile(r"^[a-z][\da-z\-\.]{3,}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def validate_login(login: Any) -> str:
    if not isinstance(login, str):
        raise ValidationError("Login must be a string.", field="login")
    login = login.strip().lower()
    if "@" in login:
        raise ValidationError("Login may not contain '@'.", field="login")
    if not LOGIN_RE.match(login):
        raise ValidationError("Login must be at least 4 characters, start with a letter, and "
                              "may only contain letters, numbers, dashes, and dots.",
                              field="login")
    return login


def validate_email(email: Any) -> str:
    if not isinstance(email, str) or not EMAIL_RE.match(email.strip()):
        raise ValidationError("Invalid email address.", field="email")
    return email.strip().lower()


def _required(value: Any, what: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} must not be empty.", field=field)
    return value.strip()


class UserService:
    def __init__(self, tree: TreeAccess, folders: FolderService, settings: SettingsService, *,
                 bcrypt_rounds: int = 12, notices: Notices | None = None,
                 tokens: TokenService | None = None) -> None:
        self.tree = tree
        self.store = tree.store
        self.folders = folders
        self.settings = settings
        self.bcrypt_rounds = bcrypt_rounds
        self.notices = notices
        self.tokens = tokens

    def create(self, principal: Principal, *, login: Any, email: Any, first_name: Any,
               last_name: Any, password: Any, admin: bool = False,
               check_policy: bool = True, origin: str = "") -> Document:
        """Register an account. The verification mail goes out unless the
        policy is ``disabled``, and administrators are told of an account
        awaiting approval (``origin``: where links in that mail point, when no
        setting says)."""
        policy = self.settings.get("core.registration_policy")
        if check_policy and policy == "closed" and not principal.is_site_admin:
            raise ValidationError("Registration on this instance is closed. Contact an "
                                  "administrator to create an account for you.")
        login = validate_login(login)
        email = validate_email(email)
        first = _required(first_name, "First name", "firstName")
        last = _required(last_name, "Last name", "lastName")
        check_password_policy(password)
        if self.store.users.find_one({"login": login}, projection=["_id"]):
            raise ExistsError("That login is already registered.", field="login")
        if self.store.users.find_one({"email": email}, projection=["_id"]):
            raise ExistsError("That email is already registered.", field="email")
        first_user = self.store.users.find_one({}, projection=["_id"]) is None
        is_admin = first_user or (bool(admin) and (principal.is_site_admin or not check_policy))
        needs_approval = policy == "approve" and not principal.is_site_admin and not first_user
        doc: dict[str, Any] = {
            "login": login, "email": email, "firstName": first, "lastName": last,
            "salt": hash_password(password, rounds=self.bcrypt_rounds),
            "admin": is_admin, "public": True, "created": utcnow(), "size": 0,
            "groups": [], "groupInvites": [],
            "status": "pending" if needs_approval else "enabled",
            "emailVerified": first_user or
            self.settings.get("core.email_verification") == "disabled",
            "access": acl.new_access(),
        }
        self.tree.saving("user", doc)
        try:
            self.store.users.insert_one(doc)
        except DuplicateKeyError as exc:
            field = "email" if "email" in str(exc.field) else "login"
            raise ExistsError(f"That {field} is already registered.", field=field) from None
        doc["access"] = acl.grant(doc["access"], "user", doc["_id"], acl.ADMIN)
        self.store.users.update_one({"_id": doc["_id"]}, {"$set": {"access": doc["access"]}})
        self.tree.saved("user", doc, created=True)
        if self.settings.get("core.user_default_folders") == "public_private":
            owner = Principal.from_user(doc)
            for name, public in (("Public", True), ("Private", False)):
                self.folders.create(owner, "user", doc["_id"], name, public=public,
                                    creator=doc, reuse_existing=True, check_access=False)
        if self.notices is not None:
            self.notices.user_created(doc, origin)
        return doc

    def get(self, principal: Principal, user_id: Any, level: int = acl.READ) -> Document:
        return self.tree.load(principal, "user", user_id, level)

    def me(self, principal: Principal) -> Document:
        """The principal's own user document (anonymous: the usual denial)."""
        if principal.user_id is None:
            raise acl.denial(principal, acl.READ, "user", None)
        return self.store.get("user", principal.user_id)

    def by_login(self, login: str) -> Document | None:
        return self.store.users.find_one({"login": str(login).strip().lower()})

    def list(self, principal: Principal, *, skip: int = 0, limit: int = 50,
             sort: SortSpec | None = None, text: str | None = None) -> list[Document]:
        query: dict[str, Any] = {}
        if text:
            pattern = re.escape(text.strip())
            query["$or"] = [{"login": {"$regex": pattern, "$options": "i"}},
                            {"firstName": {"$regex": pattern, "$options": "i"}},
                            {"lastName": {"$regex": pattern, "$options": "i"}}]
        return self.store.users.find(
            acl.and_filter(query, acl.permission_filter(principal, acl.READ)),
            sort=sort or [("lastName", 1), ("firstName", 1), ("_id", 1)],
            skip=skip, limit=limit)

    def update(self, principal: Principal, user: Document, *,
               first_name: str | None = None, last_name: str | None = None,
               email: str | None = None, admin: bool | None = None,
               status: str | None = None, email_verified: bool | None = None,
               origin: str = "") -> Document:
        principal.require_full_login()
        self.tree.require(principal, "user", user, acl.WRITE)
        update: dict[str, Any] = {}
        if first_name is not None:
            update["firstName"] = _required(first_name, "First name", "firstName")
        if last_name is not None:
            update["lastName"] = _required(last_name, "Last name", "lastName")
        if email is not None:
            update["email"] = validate_email(email)
        if admin is not None and bool(admin) != bool(user.get("admin")):
            if not principal.is_site_admin:
                raise AccessDeniedError("Only admins may change admin status.")
            update["admin"] = bool(admin)
        if status is not None and status != user.get("status", "enabled"):
            if not principal.is_site_admin:
                raise AccessDeniedError("Only admins may change account status.")
            if status not in ("pending", "enabled", "disabled"):
                raise ValidationError("Status must be pending, enabled or disabled.",
                                      field="status")
            update["status"] = status
        if email_verified is not None and bool(email_verified) != user.get("emailVerified"):
            if not principal.is_site_admin:
                raise AccessDeniedError("Only admins may mark an email as verified.")
            update["emailVerified"] = bool(email_verified)
        merged = {**user, **update}
        if update:
            self.tree.saving("user", merged)
            try:
                self.store.users.update_one({"_id": user["_id"]}, {"$set": update})
            except DuplicateKeyError:
                raise ExistsError("That email is already registered.", field="email") from None
            self.tree.saved("user", merged)
        if update.get("status") == "enabled" and user.get("status") == "pending" and \
                self.notices is not None:
            self.notices.approved(merged, origin)  # Girder: pending -> enabled only
        return merged

    def set_admin(self, principal: Principal, user: Document, admin: bool) -> Document:
        return self.update(principal, user, admin=admin)

    def change_password(self, principal: Principal, user: Document, new: str, *,
                        old: str | None = None) -> None:
        """Users change their own with the old password, or (Girder's password
        reset) with a temporary access token mailed to them, which is then
        used up; admins set anyone's."""
        principal.require_full_login()
        temporary: str | None = None
        if principal.is_site_admin and old is None:
            pass
        elif principal.user_id == user["_id"]:
            if not old:
                raise ValidationError("Old password must not be empty.", field="old")
            if not verify_password(old, user.get("salt")):
                if not self._temporary_token_of(user, old):
                    raise AuthenticationError("Old password is incorrect.")
                temporary = old
        else:
            raise acl.denial(principal, acl.ADMIN, "user", user["_id"])
        check_password_policy(new)
        changed = {**user, "salt": hash_password(new, rounds=self.bcrypt_rounds)}
        self.tree.saving("user", changed)
        self.store.users.update_one({"_id": user["_id"]}, {"$set": {"salt": changed["salt"]}})
        self.tree.saved("user", changed)
        if temporary is not None and self.tokens is not None:
            self.tokens.delete(temporary)

    def _temporary_token_of(self, user: Document, value: str) -> bool:
        if self.tokens is None:
            return False
        return self.tokens.lookup_scoped(value, acl.SCOPE_TEMPORARY,
                                         user_id=user["_id"]) is not None

    # ------------------------------------------------------------ OTP
    def otp_enroll(self, principal: Principal, user: Document) -> str:
        """Begin TOTP enrolment; returns the ``otpauth://`` URI."""
        principal.require_full_login()
        self.tree.require(principal, "user", user, acl.ADMIN)
        if otp.is_enabled(user):
            raise ValidationError("The user has already enabled one-time passwords.")
        secret = otp.enroll(self.store.users, user)
        issuer = otp.issuer_name(self.settings.get("core.brand_name"),
                                 self.settings.get("core.server_root"))
        return otp.provisioning_uri(user, secret, issuer)

    def otp_pending_uri(self, principal: Principal, user: Document) -> str:
        """The ``otpauth://`` URI of an enrolment begun and not yet confirmed
        (to show it again, e.g. as a QR code, without making a new secret)."""
        principal.require_full_login()
        self.tree.require(principal, "user", user, acl.ADMIN)
        fresh = self.store.get("user", user["_id"])
        if otp.is_enabled(fresh):
            raise ValidationError("The user has already enabled one-time passwords.")
        issuer = otp.issuer_name(self.settings.get("core.brand_name"),
                                 self.settings.get("core.server_root"))
        return otp.provisioning_uri(fresh, otp.pending_secret(fresh), issuer)

    def otp_confirm(self, principal: Principal, user: Document, code: str) -> None:
        principal.require_full_login()
        self.tree.require(principal, "user", user, acl.ADMIN)
        fresh = self.store.get("user", user["_id"])
        if otp.is_enabled(fresh):
            raise ValidationError("The user has already enabled one-time passwords.")
        otp.consume(self.store.users, fresh, code, enable=True)

    def otp_disable(self, principal: Principal, user: Document) -> None:
        principal.require_full_login()
        self.tree.require(principal, "user", user, acl.ADMIN)
        otp.disable(self.store.users, user)
