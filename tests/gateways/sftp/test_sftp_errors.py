"""The SFTP gateway's error choke point: every core error has a status, and
nothing from the server's inside reaches a client."""

from __future__ import annotations

import logging

import pytest
from paramiko.sftp import (
    SFTP_BAD_MESSAGE,
    SFTP_FAILURE,
    SFTP_NO_SUCH_FILE,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
)

from joist.core import errors
from joist.gateways.sftp.errors import STATUS, SftpStatusError, status_for


def test_every_core_error_has_a_row() -> None:
    missing = [cls.__name__ for cls in errors.ALL_ERRORS if cls not in STATUS]
    assert not missing
    assert set(STATUS.values()) <= {SFTP_NO_SUCH_FILE, SFTP_PERMISSION_DENIED, SFTP_FAILURE,
                                    SFTP_BAD_MESSAGE, SFTP_OP_UNSUPPORTED}


@pytest.mark.parametrize(("exc", "code"), [
    (errors.NotFoundError("Path not found."), SFTP_NO_SUCH_FILE),
    (errors.NotDirectoryError("Not a directory."), SFTP_NO_SUCH_FILE),
    (errors.AccessDeniedError("no"), SFTP_PERMISSION_DENIED),
    (errors.ThrottledError("slow down", retry_after=3), SFTP_PERMISSION_DENIED),
    (errors.ReadOnlyError("This server is read-only."), SFTP_PERMISSION_DENIED),
    (errors.InvalidPathError("Path is too long."), SFTP_BAD_MESSAGE),
    (errors.UnsupportedError("A link file has no stored bytes."), SFTP_OP_UNSUPPORTED),
    (errors.ExistsError("taken"), SFTP_FAILURE),
    (errors.QuotaError("full"), SFTP_FAILURE),
])
def test_core_errors_keep_their_message(exc: errors.CoreError, code: int) -> None:
    assert status_for(exc) == (code, exc.message)


def test_gateway_statuses_pass_through() -> None:
    assert status_for(SftpStatusError(SFTP_FAILURE, "No such handle")) == \
        (SFTP_FAILURE, "No such handle")


def test_server_side_detail_stays_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "joist.sftp")
    cause = FileNotFoundError("/srv/joist/assetstore/ab/cd/abcdef")
    storage = errors.StorageError("The bytes of this file are missing "
                                  "(/srv/joist/assetstore/ab/cd/abcdef).")
    storage.__cause__ = cause
    for exc in (storage, errors.CoreError("engine said: table locked"),
                RuntimeError("Traceback (most recent call last): boom")):
        code, message = status_for(exc, "sftp open")
        assert code == SFTP_FAILURE
        assert "/srv" not in message and "boom" not in message and "locked" not in message
        assert "incident" in message
        incident = message.rsplit("incident ", 1)[1].rstrip(")")
        assert incident in caplog.text
    assert "boom" in caplog.text and "abcdef" in caplog.text
