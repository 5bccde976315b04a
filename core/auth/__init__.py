"""Authentication: passwords, second factor, tokens, API keys, SSH keys, throttling,
and token scopes (``scopes``).

Secrets (passwords, OTP secrets and codes, token and key values) are never
logged: log lines name the login and the outcome only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .authenticator import WEBDAV, Authenticator
    from .grants import Grant, LiveGrant
    from .passwords import hash_password, verify_password
    from .throttle import Throttle
    from .tokens import TokenService

# Loaded on first use: ``acl`` imports ``auth.scopes``, and importing the
# authenticator here eagerly would import ``acl`` back before it is defined.
_LAZY = {"Authenticator": ".authenticator", "WEBDAV": ".authenticator",
         "Grant": ".grants", "LiveGrant": ".grants", "hash_password": ".passwords",
         "verify_password": ".passwords", "Throttle": ".throttle",
         "TokenService": ".tokens"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["WEBDAV", "Authenticator", "Grant", "LiveGrant", "Throttle", "TokenService",
           "hash_password", "verify_password"]
