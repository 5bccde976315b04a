"""The SFTP gateway's one error choke point: exceptions -> SFTP v3 status.

``STATUS`` has a row for every class of ``ALL_ERRORS`` (a test checks it) and
is read with core's ``lookup`` (most specific class first). The codes follow OpenSSH's
``errno_to_portable``, so clients see what ``sftp-server`` would answer: v3
has no "read-only" or "exists" code, so a refused write is permission-denied
with a message saying why. Server-side failures are logged with an incident id
and answered with a generic message: no traceback, path or cause reaches the
client.
"""

from __future__ import annotations

import logging
import uuid

from paramiko.sftp import (
    SFTP_BAD_MESSAGE,
    SFTP_FAILURE,
    SFTP_NO_SUCH_FILE,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
)

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

log = logging.getLogger("joist.sftp")

STATUS: dict[type[CoreError], int] = {
    CoreError: SFTP_FAILURE,
    NotFoundError: SFTP_NO_SUCH_FILE,
    AccessDeniedError: SFTP_PERMISSION_DENIED,
    AuthenticationError: SFTP_PERMISSION_DENIED,
    ThrottledError: SFTP_PERMISSION_DENIED,
    ReadOnlyError: SFTP_PERMISSION_DENIED,   # v3 has no WRITE_PROTECT; the message says it
    ExistsError: SFTP_FAILURE,               # v3 has no FILE_ALREADY_EXISTS
    NotDirectoryError: SFTP_NO_SUCH_FILE,    # as OpenSSH answers ENOTDIR
    IsDirectoryError: SFTP_FAILURE,
    NotEmptyError: SFTP_FAILURE,
    ValidationError: SFTP_BAD_MESSAGE,       # EINVAL, as OpenSSH
    InvalidPathError: SFTP_BAD_MESSAGE,
    UnsupportedError: SFTP_OP_UNSUPPORTED,
    QuotaError: SFTP_FAILURE,
    LockedError: SFTP_FAILURE,
    ConflictError: SFTP_FAILURE,
    UnavailableError: SFTP_FAILURE,
    StorageError: SFTP_FAILURE,
}

# Classes whose message may carry server detail (a blob path, an engine error):
# the client gets a generic text and the log gets the detail.
_PRIVATE = (StorageError,)
SERVER_FAILURE = "The server failed to complete the request"


class SftpStatusError(Exception):
    """A status the gateway decides itself: an unknown handle, a malformed
    request, an operation v3 lacks."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def code_of(exc: CoreError) -> int:
    return lookup(STATUS, exc, SFTP_FAILURE)


def status_for(exc: BaseException, what: str = "request") -> tuple[int, str]:
    """(status code, message) to answer ``exc`` with; logs what needs it."""
    if isinstance(exc, SftpStatusError):
        return exc.code, exc.message
    if isinstance(exc, CoreError) and type(exc) is not CoreError \
            and not isinstance(exc, _PRIVATE):
        log.debug("%s: %s: %s", what, type(exc).__name__, exc.message)
        return code_of(exc), exc.message
    incident = uuid.uuid4().hex[:12]
    if isinstance(exc, CoreError):
        log.warning("%s failed [incident %s]: %s", what, incident, exc.message,
                    exc_info=exc.__cause__ is not None)
        return code_of(exc), f"{SERVER_FAILURE} (incident {incident})"
    log.error("%s failed unexpectedly [incident %s]", what, incident, exc_info=exc)
    return SFTP_FAILURE, f"{SERVER_FAILURE} (incident {incident})"


def bad_handle() -> SftpStatusError:
    # OpenSSH answers an unknown handle with a plain failure, as we do.
    return SftpStatusError(SFTP_FAILURE, "No such handle")


def bad_message(message: str = "Malformed request") -> SftpStatusError:
    return SftpStatusError(SFTP_BAD_MESSAGE, message)


def unsupported(message: str = "Operation not supported") -> SftpStatusError:
    return SftpStatusError(SFTP_OP_UNSUPPORTED, message)


__all__ = ["STATUS", "SftpStatusError", "bad_handle", "bad_message", "code_of", "status_for",
           "unsupported"]
