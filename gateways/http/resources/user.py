"""``user``: accounts, login and logout, passwords, OTP."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import segno

from joist.core import acl
from joist.core.acl import Principal
from joist.core.auth import scopes
from joist.core.errors import AuthenticationError

from ..app import Context
from ..request import RestError
from ..response import JsonWithHeaders, Raw
from ..router import FULL_LOGIN, Param, RouteCollector
from .common import PAGING, load, paging, sort_param

api = RouteCollector("user", "Users and authentication.")
COOKIE = "girderToken"


def _basic_credentials(ctx: Context) -> tuple[str, str]:
    header = ctx.request.header("Girder-Authorization") or ctx.request.header("Authorization")
    if not header:
        raise AuthenticationError("Use HTTP Basic Authentication")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise AuthenticationError("Use HTTP Basic Authentication")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthenticationError("Invalid HTTP Authorization header") from None
    login, sep, password = decoded.partition(":")
    if not sep:
        raise AuthenticationError("Invalid HTTP Authorization header")
    return login, password


def cookie_header(ctx: Context, token: dict[str, Any] | None) -> tuple[str, str]:
    secure = "; Secure" if ctx.request.environ.get("wsgi.url_scheme") == "https" else ""
    domain = ctx.services.settings.get("core.cookie_domain")
    # SameSite=Strict: the cookie only rides on same-site requests (the web client's
    # download links); it is accepted on download routes only, never for writes.
    domain_part = (f"; Domain={domain}" if domain else "") + "; SameSite=Strict"
    if token is None:
        return ("Set-Cookie", f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly{secure}{domain_part}")
    days = float(ctx.services.settings.get("core.cookie_lifetime"))
    return ("Set-Cookie", f"{COOKIE}={token['_id']}; Path=/; "
                          f"Max-Age={int(days * 86400)}; HttpOnly{secure}{domain_part}")


def token_view(token: dict[str, Any]) -> dict[str, Any]:
    return {"token": token["_id"], "expires": token["expires"], "scope": token["scope"]}


OTP_HEADER = "Girder-OTP"


@api.get("authentication", "Log in with HTTP Basic auth and get a token.", scope=FULL_LOGIN,
         params=(Param(OTP_HEADER, location="header", description="A one-time password for "
                       "this user, if they have enabled two-factor authentication."),))
def login(ctx: Context, girder_otp: str | None) -> JsonWithHeaders:
    auth = ctx.services.auth
    if not ctx.principal.is_anonymous and ctx.token:
        token = auth.tokens.lookup(ctx.token)
        user = ctx.user_doc()
    else:
        name, password = _basic_credentials(ctx)
        user = auth.password_login(name, password, girder_otp,
                                   source=ctx.request.remote_addr)
        token = auth.login_token(user)
    assert token is not None
    me = Principal.from_user(user)
    return JsonWithHeaders(
        {"user": ctx.filter("user", user, me), "authToken": token_view(token),
         "message": "Login succeeded."}, [cookie_header(ctx, token)])


@api.delete("authentication", "Log out (delete the current token).", scope=FULL_LOGIN)
def logout(ctx: Context) -> JsonWithHeaders:
    if ctx.token:
        ctx.services.auth.tokens.delete(ctx.token)
    return JsonWithHeaders({"message": "Logged out."}, [cookie_header(ctx, None)])


@api.get("me", "The current user (null when anonymous).", scope=scopes.USER_INFO_READ)
def me(ctx: Context) -> Any:
    if ctx.principal.is_anonymous:
        return None
    return ctx.filter("user", ctx.user_doc(), ctx.principal)


@api.get("", "List or search users.", scope=FULL_LOGIN, access="user", total_count=False,
         params=(Param("text"), sort_param("lastName"), *PAGING))
def list_users(ctx: Context, text: str | None, sort: str, limit: int, offset: int,
               sortdir: int) -> list[Any]:
    limit, offset, spec = paging(limit, offset, sortdir, sort, "lastName", "user")
    docs = ctx.services.users.list(ctx.principal, skip=offset, limit=limit, sort=spec,
                                   text=text)
    return ctx.filter.many("user", docs, ctx.principal)


@api.get("details", "Count users.", scope=FULL_LOGIN, access="user")
def users_details(ctx: Context) -> dict[str, int]:
    return {"nUsers": len(ctx.services.users.list(ctx.principal, limit=0))}


@api.get(":id", "Get a user by id.", scope=scopes.USER_INFO_READ)
def get_user(ctx: Context, id: str) -> Any:
    return ctx.filter("user", load(ctx, "user", id), ctx.principal)


@api.get(":id/details", "Count a user's top-level folders.", scope=FULL_LOGIN)
def user_details(ctx: Context, id: str) -> dict[str, int]:
    user = load(ctx, "user", id)
    return {"nFolders": ctx.services.folders.count(ctx.principal, user)}


@api.post("", "Create a new user.", scope=FULL_LOGIN, params=(
    Param("login", required=True, location="formData", description="The user's requested "
          "login."),
    Param("email", required=True, location="formData",
          description="The user's email address."),
    Param("firstName", required=True, location="formData",
          description="The user's first name."),
    Param("lastName", required=True, location="formData",
          description="The user's last name."),
    Param("password", "password", required=True, location="formData",
          description="The user's requested password"),
    Param("admin", "boolean", default=False, location="formData",
          description="Whether this user should be a site administrator.")))
def create_user(ctx: Context, login: str, email: str, first_name: str, last_name: str,
                password: str, admin: bool) -> Any:
    user = ctx.services.users.create(ctx.principal, login=login, email=email,
                                     first_name=first_name, last_name=last_name,
                                     password=password, admin=admin,
                                     origin=ctx.request.server_url())
    me = Principal.from_user(user)
    out = ctx.filter("user", user, me)
    if ctx.principal.is_anonymous and _can_log_in(ctx, user):
        # Girder: no token for an account awaiting approval or (when the
        # policy requires it) email verification.
        token = ctx.services.auth.login_token(user)
        assert out is not None
        out["authToken"] = {"token": token["_id"], "expires": token["expires"]}
        return JsonWithHeaders(out, [cookie_header(ctx, token)])
    return out


def _can_log_in(ctx: Context, user: dict[str, Any]) -> bool:
    try:
        ctx.services.auth.check_status(user, ctx.services.settings)
    except AuthenticationError:
        return False
    return True


@api.put(":id", "Update a user's profile.", access="user", scope=FULL_LOGIN, params=(
    Param("firstName", required=True), Param("lastName", required=True),
    Param("email", required=True), Param("admin", "boolean"),
    Param("status", enum=("pending", "enabled", "disabled"))))
def update_user(ctx: Context, id: str, first_name: str, last_name: str, email: str,
                admin: bool | None, status: str | None) -> Any:
    user = load(ctx, "user", id)
    user = ctx.services.users.update(ctx.principal, user, first_name=first_name,
                                     last_name=last_name, email=email, admin=admin,
                                     status=status, origin=ctx.request.server_url())
    return ctx.filter("user", user, ctx.principal)


@api.delete(":id", "Delete a user and everything they own.", access="user", scope=FULL_LOGIN)
def delete_user(ctx: Context, id: str) -> dict[str, str]:
    user = load(ctx, "user", id, acl.ADMIN)
    ctx.services.removal.delete_user(ctx.principal, user)
    return {"message": f"Deleted user {user['login']}."}


@api.put("password", "Change your password.", scope=FULL_LOGIN, access="user",
         params=(Param("old", "password", required=True, location="formData",
                       description="Your current password or a temporary access token."),
                 Param("new", "password", required=True, location="formData",
                       description="Your new password.")))
def change_password(ctx: Context, old: str, new: str) -> dict[str, str]:
    ctx.services.users.change_password(ctx.principal, ctx.user_doc(), new, old=old)
    return {"message": "Password changed."}


@api.put("password/temporary", "Create a temporary access token for a user. The user's "
         "password is not changed.", scope=FULL_LOGIN,
         params=(Param("email", required=True, strip=True, description="Your email address."),))
def temporary_password(ctx: Context, email: str) -> dict[str, str]:
    ctx.services.notices.temporary_access(email, ctx.request.server_url())
    return {"message": "Sent temporary access email."}


@api.get("password/temporary/:id", "Check if a specified token is a temporary access token "
         "for the specified user. If the token is valid, returns information on the token "
         "and user.", scope=FULL_LOGIN,
         params=(Param("token", required=True, location="formData",
                       description="The token to check."),))
def check_temporary(ctx: Context, id: str, token: str) -> JsonWithHeaders:
    auth = ctx.services.auth
    doc = auth.tokens.lookup(token)
    user = load(ctx, "user", id) if doc else None
    if doc is None or user is None or doc.get("userId") != user["_id"] or \
            acl.SCOPE_TEMPORARY not in (doc.get("scope") or []):
        raise AuthenticationError("The token does not grant temporary access to this user.")
    auth.check_status(user, ctx.services.settings)  # a disabled account stays out
    # Girder: a login token now; the temporary one stays valid for the
    # ``old`` parameter of ``PUT user/password``, which uses it up.
    login_token = auth.login_token(user)
    return JsonWithHeaders({"user": ctx.filter("user", user, Principal.from_user(user)),
                            "authToken": {"token": login_token["_id"],
                                          "expires": login_token["expires"],
                                          "temporary": True},
                            "message": "Temporary access token is valid."},
                           [cookie_header(ctx, login_token)])


@api.put(":id/verification", "Verify an email address using a token.", scope=FULL_LOGIN,
         params=(Param("id", required=True, location="path",
                       description="The user ID to check."),
                 Param("token", required=True, location="formData",
                       description="The token to check.")))
def verify_email(ctx: Context, id: str, token: str) -> JsonWithHeaders:
    auth = ctx.services.auth
    user = auth.verify_email(id, token)
    me = Principal.from_user(user)
    out: dict[str, Any] = {"user": ctx.filter("user", user, me),
                           "message": "Email verification succeeded."}
    if not _can_log_in(ctx, user):  # verified, but not (yet) allowed to log in
        return JsonWithHeaders(out, [])
    login_token = auth.login_token(user)
    out["authToken"] = token_view(login_token)
    return JsonWithHeaders(out, [cookie_header(ctx, login_token)])


@api.post("verification", "Send verification email.", scope=FULL_LOGIN, params=(
    Param("login", required=True, strip=True,
          description="Your login or email address."),))
def send_verification(ctx: Context, login: str) -> dict[str, str]:
    user = ctx.services.auth.user_for_verification(login)  # an unknown login is a 401
    ctx.services.notices.verification(user, ctx.request.server_url())
    return {"message": "Sent verification email."}


@api.put(":id/password", "Set a user's password (admin).", scope=FULL_LOGIN, access="admin",
         params=(Param("password", "password", required=True, location="formData",
                       description="The user's new password."),))
def set_password(ctx: Context, id: str, password: str) -> dict[str, str]:
    user = load(ctx, "user", id)
    ctx.services.users.change_password(ctx.principal, user, password)
    return {"message": "Password changed."}


@api.post(":id/otp", "Start enrolling a TOTP second factor.", scope=FULL_LOGIN, access="user")
def otp_enroll(ctx: Context, id: str) -> dict[str, str]:
    user = load(ctx, "user", id, acl.ADMIN)
    return {"totpUri": ctx.services.users.otp_enroll(ctx.principal, user)}


@api.put(":id/otp", "Finalize use of one-time passwords for a user.",
         scope=FULL_LOGIN, access="user",
         params=(Param(OTP_HEADER, required=True, location="header",
                       description="A one-time password generated by the user's "
                                   "authenticator app."),))
def otp_confirm(ctx: Context, id: str, girder_otp: str) -> dict[str, str]:
    user = load(ctx, "user", id, acl.ADMIN)
    if not girder_otp.strip():
        raise RestError("The Girder-OTP header is required.")
    ctx.services.users.otp_confirm(ctx.principal, user, girder_otp.strip())
    return {"message": "One-time passwords enabled."}


@api.get(":id/otp/qr", "The pending TOTP enrolment's otpauth URI as a QR code (SVG).",
         scope=FULL_LOGIN, access="user")
def otp_qr(ctx: Context, id: str) -> Raw:
    # Rendered here, by segno, so the web client needs no QR encoder of its own.
    user = load(ctx, "user", id, acl.ADMIN)
    uri = ctx.services.users.otp_pending_uri(ctx.principal, user)
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, border=4, xmldecl=False,
                                    light="#fff", title="Scan with your authenticator app")
    body = out.getvalue()
    return Raw(200, [("Content-Type", "image/svg+xml"), ("Content-Length", str(len(body))),
                     ("Cache-Control", "no-store")], [body])


@api.delete(":id/otp", "Disable the TOTP second factor.", scope=FULL_LOGIN, access="user")
def otp_disable(ctx: Context, id: str) -> dict[str, str]:
    user = load(ctx, "user", id, acl.ADMIN)
    ctx.services.users.otp_disable(ctx.principal, user)
    return {"message": "One-time passwords disabled."}


@api.get(":id/sshkey", "List a user's SSH public keys (for SFTP).", scope=FULL_LOGIN, access="user")
def list_keys(ctx: Context, id: str) -> list[dict[str, Any]]:
    user = load(ctx, "user", id, acl.ADMIN)
    return [_key_view(k) for k in ctx.services.auth.ssh_keys.list(user["_id"])]


@api.post(":id/sshkey", "Register an SSH public key (OpenSSH format).", access="user",
          scope=FULL_LOGIN, params=(Param("key", required=True), Param("name")))
def add_key(ctx: Context, id: str, key: str, name: str | None) -> dict[str, Any]:
    user = load(ctx, "user", id, acl.ADMIN)
    return _key_view(ctx.services.auth.ssh_keys.add(user, key, name or ""))


@api.delete(":id/sshkey/:keyId", "Remove an SSH public key.", access="user",
            scope=FULL_LOGIN)
def remove_key(ctx: Context, id: str, key_id: str) -> dict[str, str]:
    user = load(ctx, "user", id, acl.ADMIN)
    ctx.services.auth.ssh_keys.remove(user["_id"], key_id)
    return {"message": "Key removed."}


def _key_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc[k] for k in ("_id", "name", "type", "fingerprint", "created", "userId")}

