"""bcrypt password hashes."""

from __future__ import annotations

import re

import bcrypt

from ..errors import ValidationError

# Girder's default policy (GIRDER_PASSWORD_REGEX): at least six characters.
PASSWORD_RE = re.compile(r".{6}.*", re.DOTALL)
# bcrypt reads at most 72 bytes; bcrypt >= 5 refuses longer input, older
# versions (and Girder's stored hashes) silently truncated. Truncating keeps
# both behaviours: long passwords work and imported hashes still verify.
_BCRYPT_MAX = 72
ROUNDS = 12


def check_password_policy(password: object) -> str:
    if not isinstance(password, str) or not PASSWORD_RE.fullmatch(password):
        raise ValidationError("Password must be at least 6 characters.", field="password")
    return password


def hash_password(password: str, *, rounds: int = ROUNDS) -> str:
    secret = password.encode("utf-8")[:_BCRYPT_MAX]
    return bcrypt.hashpw(secret, bcrypt.gensalt(rounds)).decode("ascii")


def verify_password(password: str, hashed: str | None) -> bool:
    if not hashed or not isinstance(password, str):
        return False
    try:
        return bcrypt.checkpw(password.encode("utf-8")[:_BCRYPT_MAX], hashed.encode("ascii"))
    except ValueError:  # a malformed stored hash is a failed login, not a crash
        return False
