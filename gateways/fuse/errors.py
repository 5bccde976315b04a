"""The FUSE gateway's one error choke point: core errors -> errno.

Every operation of the filesystem runs through ``guarded``: a core error
becomes its errno from ``ERRNO`` (a table with a row for every class of
``ALL_ERRORS``, read with core's ``lookup``), an ``OSError`` raised on purpose
keeps its errno, and anything else is logged with an id and answered ``EIO``,
so no traceback ever reaches the kernel or the reader of the mount.
"""

from __future__ import annotations

import errno
import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from joist.core.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConflictError,
    CoreError,
    ExistsError,
    InvalidPathError,
    IsDirectoryError,
    LockedError,
    NotDirectoryError,
    NotEmptyError,
    NotFoundError,
    QuotaError,
    ReadOnlyError,
    StorageError,
    ThrottledError,
    UnavailableError,
    UnsupportedError,
    ValidationError,
    lookup,
)

log = logging.getLogger("joist.fuse")

ERRNO: dict[type[CoreError], int] = {
    CoreError: errno.EIO,
    NotFoundError: errno.ENOENT,
    AccessDeniedError: errno.EACCES,
    AuthenticationError: errno.EACCES,
    ThrottledError: errno.EACCES,
    ReadOnlyError: errno.EROFS,
    ExistsError: errno.EEXIST,
    NotDirectoryError: errno.ENOTDIR,
    IsDirectoryError: errno.EISDIR,
    NotEmptyError: errno.ENOTEMPTY,
    ValidationError: errno.EINVAL,
    InvalidPathError: errno.EINVAL,
    UnsupportedError: errno.EOPNOTSUPP,
    QuotaError: errno.ENOSPC,
    LockedError: errno.EBUSY,
    ConflictError: errno.EINVAL,
    UnavailableError: errno.EAGAIN,
    StorageError: errno.EIO,
}


class FuseError(OSError):
    """An errno chosen by the gateway itself (ESTALE, ENODATA...)."""

    def __init__(self, code: int) -> None:
        super().__init__(code, errno.errorcode.get(code, str(code)))


def errno_of(exc: BaseException) -> int:
    """The errno the kernel gets for ``exc``."""
    if isinstance(exc, CoreError):
        return lookup(ERRNO, exc, errno.EIO)
    if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno > 0:
        return exc.errno
    return errno.EIO


F = TypeVar("F", bound=Callable[..., Any])

# Answers that are part of normal life: not worth a log line above debug.
_QUIET = frozenset({errno.ENOENT, errno.ENODATA, errno.EOPNOTSUPP, errno.EROFS,
                    errno.EEXIST, errno.EACCES, errno.ENOTEMPTY, errno.ESTALE})


# Releasing a handle must always free it; a revoked mount's pending commit is
# refused inside (``_commit`` asks again) and only logged.
_UNCHECKED = frozenset({"release", "releasedir"})


def guarded(method: F) -> F:
    """Wrap one filesystem operation: every error leaves as ``FuseError``.
    On an object with ``authorize_operation`` (the filesystem), that is asked
    first: a mount whose credentials were revoked answers EACCES."""
    check = method.__name__ not in _UNCHECKED

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            authorize = getattr(args[0], "authorize_operation", None) \
                if check and args else None
            if authorize is not None:
                authorize()
            return method(*args, **kwargs)
        except FuseError:
            raise
        except (CoreError, OSError) as exc:
            code = errno_of(exc)
            if code not in _QUIET:
                log.info("%s: %s (%s)", method.__name__, exc, errno.errorcode.get(code))
            raise FuseError(code) from None
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("%s failed unexpectedly [incident %s]", method.__name__, incident)
            raise FuseError(errno.EIO) from None

    return wrapper  # type: ignore[return-value]


__all__ = ["ERRNO", "FuseError", "errno_of", "guarded"]
