"""The error taxonomy: the only exceptions that leave core.

Every class is an ``OSError`` carrying an errno and also inherits the matching
built-in (``FileNotFoundError``, ``PermissionError``...), so code that speaks OS
errors (paramiko's ``convert_errno``, fusepy's ``FuseOSError``) works unchanged.
Each gateway maps these classes to its protocol at one choke point: a table
{class: answer} read with ``lookup``.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Mapping
from typing import Any, TypeVar

_V = TypeVar("_V")


class CoreError(OSError):
    """Base of every error core raises on purpose."""

    errno_code: int = _errno.EIO

    def __init__(self, message: str = "", *, field: str | None = None,
                 extra: Any = None) -> None:
        super().__init__(self.errno_code, message or type(self).__name__)
        self.message = message or type(self).__name__
        self.field = field
        self.extra = extra

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Any:  # keep pickling (multiprocessing) faithful
        return (_rebuild, (type(self), self.message, self.field, self.extra))


def _rebuild(cls: type[CoreError], message: str, field: str | None,
             extra: Any) -> CoreError:
    return cls(message, field=field, extra=extra)


class NotFoundError(CoreError, FileNotFoundError):
    """The thing does not exist, or the principal may not know that it does."""

    errno_code = _errno.ENOENT


class ContainerGoneError(NotFoundError):
    """A record was written into a container that a concurrent delete removed;
    the record is gone again and its reference to stored bytes released."""


class AccessDeniedError(CoreError, PermissionError):
    """The thing is visible to the principal, but the action is not allowed."""

    errno_code = _errno.EACCES


class AuthenticationError(AccessDeniedError):
    """Credentials were missing, wrong, or refused (disabled account, bad OTP)."""


class ThrottledError(AuthenticationError):
    """Too many failed logins; ``retry_after`` seconds until the next attempt."""

    def __init__(self, message: str = "", *, retry_after: float = 0.0) -> None:
        super().__init__(message, extra={"retryAfter": retry_after})
        self.retry_after = retry_after

    def __reduce__(self) -> Any:
        return (ThrottledError, (self.message,), {"retry_after": self.retry_after,
                                                   "extra": self.extra})


class ReadOnlyError(CoreError):
    """A write through a read-only view or gateway."""

    errno_code = _errno.EROFS


class ExistsError(CoreError, FileExistsError):
    """A name is already taken where it must be unique."""

    errno_code = _errno.EEXIST


class NotDirectoryError(CoreError, NotADirectoryError):
    """A path goes through, or lists, something that is not a container."""

    errno_code = _errno.ENOTDIR


class IsDirectoryError(CoreError, IsADirectoryError):
    """Byte-level access to a container."""

    errno_code = _errno.EISDIR


class NotEmptyError(CoreError):
    """A non-recursive removal of a container that has children."""

    errno_code = _errno.ENOTEMPTY


class ValidationError(CoreError):
    """Input that breaks a rule (bad name, bad value, bad id)."""

    errno_code = _errno.EINVAL


class InvalidPathError(ValidationError):
    """A path that is malformed (not merely absent)."""


class RequestTimeoutError(ValidationError):
    """The client stopped sending its request (a stalled or trickled body).

    Raised by the HTTP server's body reader, so only the HTTP gateways meet
    it (408); elsewhere it maps as the ``ValidationError`` it is."""

    errno_code = _errno.ETIMEDOUT


class UnsupportedError(CoreError):
    """An operation this store, assetstore or node kind does not offer."""

    errno_code = _errno.ENOTSUP


class QuotaError(CoreError):
    """No space left: assetstore full or over a quota."""

    errno_code = _errno.ENOSPC


class LockedError(CoreError):
    """A resource is locked by someone else (WebDAV locks)."""

    errno_code = _errno.EBUSY


class ConflictError(CoreError):
    """The request does not fit the current state (wrong upload offset...)."""

    errno_code = _errno.EINVAL


class UnavailableError(CoreError):
    """A capacity limit of this process is reached for now (try again later)."""

    errno_code = _errno.EAGAIN


class StorageError(CoreError):
    """The metadata store or an assetstore failed; the cause is kept."""

    errno_code = _errno.EIO


ALL_ERRORS: tuple[type[CoreError], ...] = (
    CoreError, NotFoundError, AccessDeniedError, AuthenticationError, ThrottledError,
    ReadOnlyError, ExistsError, NotDirectoryError, IsDirectoryError, NotEmptyError,
    ValidationError, InvalidPathError, UnsupportedError, QuotaError, LockedError,
    ConflictError, UnavailableError, StorageError,
)


def lookup(table: Mapping[type[CoreError], _V], exc: BaseException, default: _V) -> _V:
    """The row of ``table`` for ``exc``'s most specific class that has one (the
    first along its MRO), else ``default``. Each gateway keeps its own table
    (status codes, errnos...) and reads it only through this."""
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]  # type: ignore[index]
    return default
