"""``core.errors.lookup``: the one MRO walk over a gateway's {error class: answer}
table, and the four gateways answering through it."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from paramiko.sftp import SFTP_BAD_MESSAGE, SFTP_FAILURE, SFTP_NO_SUCH_FILE

from joist.core import errors as e
from joist.gateways.fuse.errors import ERRNO, errno_of
from joist.gateways.http.errors import STATUS as HTTP_STATUS
from joist.gateways.http.errors import status_for
from joist.gateways.sftp.errors import STATUS as SFTP_STATUS
from joist.gateways.sftp.errors import code_of
from joist.gateways.webdav.errors import STATUS as DAV_STATUS
from joist.gateways.webdav.errors import status_of

ROOT = Path(__file__).resolve().parents[3]


class Odd(e.ContainerGoneError, e.ConflictError):
    """Two bases with rows: the MRO decides (ContainerGone -> NotFound first)."""


TABLE: dict[type[e.CoreError], str] = {
    e.CoreError: "core",
    e.NotFoundError: "not-found",
    e.AccessDeniedError: "denied",
    e.ThrottledError: "throttled",
    e.ConflictError: "conflict",
}


@pytest.mark.parametrize(("exc", "want"), [
    (e.CoreError("x"), "core"),
    (e.NotFoundError("x"), "not-found"),
    (e.ContainerGoneError("x"), "not-found"),    # a subclass without a row: its parent's
    (e.AuthenticationError("x"), "denied"),
    (e.ThrottledError("x"), "throttled"),        # the most specific row wins
    (e.StorageError("x"), "core"),               # only the root has a row
    (Odd("x"), "not-found"),
    (FileNotFoundError("x"), "default"),         # not a core error at all
    (ValueError("x"), "default"),
])
def test_most_specific_row_or_default(exc: BaseException, want: str) -> None:
    assert e.lookup(TABLE, exc, "default") == want


def test_empty_table_gives_the_default() -> None:
    assert e.lookup({}, e.NotFoundError("x"), 7) == 7


def test_every_gateway_answers_through_its_table() -> None:
    for cls in e.ALL_ERRORS:
        exc = cls("x")
        assert errno_of(exc) == ERRNO[cls]
        assert code_of(exc) == SFTP_STATUS[cls]
        assert status_of(exc) == DAV_STATUS[cls]
        if cls is not e.AccessDeniedError and not issubclass(cls, e.AuthenticationError):
            assert status_for(exc, authenticated=True) == HTTP_STATUS[cls]
    # Subclasses without a row of their own take their parent's.
    gone, timeout = e.ContainerGoneError("x"), e.RequestTimeoutError("x")
    assert errno_of(gone) == errno.ENOENT and errno_of(timeout) == errno.EINVAL
    assert code_of(gone) == SFTP_NO_SUCH_FILE and code_of(timeout) == SFTP_BAD_MESSAGE
    assert status_of(gone) == 404 and status_of(timeout) == 408
    assert status_for(gone, authenticated=False) == (400, "validation")
    assert status_for(timeout, authenticated=False) == (408, "rest")
    assert status_for(e.ThrottledError("x"), authenticated=True) == (429, "access")
    assert status_for(e.AccessDeniedError("x"), authenticated=False) == (401, "access")
    assert code_of(Odd("x")) == SFTP_NO_SUCH_FILE and status_of(Odd("x")) == 404
    assert SFTP_STATUS[e.StorageError] == SFTP_FAILURE


def test_no_gateway_walks_the_mro_itself() -> None:
    """One lookup in core: a fifth copy in a gateway fails here."""
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "gateways").rglob("*.py")
                 if "__mro__" in path.read_text(encoding="utf-8")]
    assert offenders == []
