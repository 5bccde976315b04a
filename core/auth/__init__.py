"""Authentication: passwords, second factor, tokens, API keys, SSH keys, throttling.

Secrets (passwords, OTP secrets and codes, token and key values) are never
logged: log lines name the login and the outcome only.
"""

from .authenticator import WEBDAV, Authenticator
from .grants import Grant, LiveGrant
from .passwords import hash_password, verify_password
from .throttle import Throttle
from .tokens import TokenService

__all__ = ["WEBDAV", "Authenticator", "Grant", "LiveGrant", "Throttle", "TokenService",
           "hash_password", "verify_password"]
