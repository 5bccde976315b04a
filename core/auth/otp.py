"""TOTP second factor (pyotp): 6 digits, 30 s step, one step of drift each way.

A code is accepted once: the last accepted time step is kept on the user
document and advanced atomically, so a replayed code fails in every process.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

import pyotp

from ..db.engine import Collection, Document
from ..errors import AuthenticationError, ValidationError

DIGITS = 6
STEP = 30
WINDOW = 1


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: Document, secret: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(
        name=user.get("email") or user.get("login"), issuer_name=issuer)


def issuer_name(brand: str, server_root: str) -> str:
    if brand and brand != "Joist":
        return brand
    host = urlparse(server_root).hostname if server_root else None
    return host or brand or "Joist"


def _matching_step(secret: str, code: str, now: float) -> int | None:
    if not isinstance(code, str) or not code.isdigit() or len(code) != DIGITS:
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    current = int(now // STEP)
    for step in range(current - WINDOW, current + WINDOW + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None


def enroll(users: Collection, user: Document) -> str:
    """Start enrolment: store a new, not yet enabled secret; return it."""
    secret = new_secret()
    users.update_one({"_id": user["_id"]}, {"$set": {
        "otp": {"enabled": False, "totp": {"v": 1, "type": "totp", "key": secret}}}})
    return secret


def _secret(user: Document) -> str:
    otp: Any = user.get("otp") or {}
    key = (otp.get("totp") or {}).get("key")
    if not key:
        raise ValidationError("OTP has not been initialized for this user.", field="otp")
    return str(key)


def pending_secret(user: Document) -> str:
    """The secret of an enrolment not yet confirmed (or a clear error)."""
    return _secret(user)


def consume(users: Collection, user: Document, code: str, *, now: float | None = None,
            enable: bool = False) -> None:
    """Accept ``code`` once (or raise); ``enable`` finishes enrolment."""
    secret = _secret(user)
    step = _matching_step(secret, code, time.time() if now is None else now)
    if step is None:
        raise AuthenticationError("Invalid one-time password.")
    update: dict[str, Any] = {"otp.lastStep": step}
    if enable:
        update["otp.enabled"] = True
    claimed = users.find_one_and_update(
        {"_id": user["_id"], "otp.totp.key": secret,
         "$or": [{"otp.lastStep": {"$exists": False}}, {"otp.lastStep": {"$lt": step}}]},
        {"$set": update})
    if claimed is None:
        raise AuthenticationError("One-time password has already been used.")


def is_enabled(user: Document) -> bool:
    return bool((user.get("otp") or {}).get("enabled"))


def disable(users: Collection, user: Document) -> None:
    users.update_one({"_id": user["_id"]}, {"$unset": {"otp": ""}})
