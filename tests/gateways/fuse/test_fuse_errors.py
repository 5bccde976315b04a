"""The FUSE gateway's error choke point: every core error class has its errno,
and nothing else (no traceback, no message) reaches the kernel."""

from __future__ import annotations

import errno
import logging

import pytest

from joist.core import errors as core
from joist.gateways.fuse.errors import ERRNO, FuseError, errno_of, guarded


def test_every_core_error_has_a_row() -> None:
    missing = [cls.__name__ for cls in core.ALL_ERRORS if cls not in ERRNO]
    assert missing == []


@pytest.mark.parametrize("cls", core.ALL_ERRORS, ids=lambda c: c.__name__)
def test_each_class_maps_to_its_errno(cls: type[core.CoreError]) -> None:
    exc = cls("boom") if cls is not core.ThrottledError else cls("boom", retry_after=1.0)
    assert errno_of(exc) == ERRNO[cls]


def test_the_table_says_what_the_protocol_expects() -> None:
    assert ERRNO[core.NotFoundError] == errno.ENOENT
    assert ERRNO[core.AccessDeniedError] == errno.EACCES
    assert ERRNO[core.ReadOnlyError] == errno.EROFS
    assert ERRNO[core.NotEmptyError] == errno.ENOTEMPTY
    assert ERRNO[core.QuotaError] == errno.ENOSPC
    assert ERRNO[core.StorageError] == errno.EIO


def test_a_subclass_not_in_the_table_takes_its_parents_row() -> None:
    class Private(core.NotFoundError):
        pass

    assert errno_of(Private("x")) == errno.ENOENT


def test_guarded_turns_core_errors_into_errno() -> None:
    @guarded
    def op() -> None:
        raise core.IsDirectoryError("It is a directory.")

    with pytest.raises(FuseError) as info:
        op()
    assert info.value.errno == errno.EISDIR
    assert "directory" not in str(info.value)  # the kernel gets a number, not our words


def test_guarded_keeps_os_errors_and_hides_surprises(caplog: pytest.LogCaptureFixture
                                                     ) -> None:
    @guarded
    def os_error() -> None:
        raise FileNotFoundError(errno.ENOENT, "gone")

    @guarded
    def surprise() -> None:
        raise KeyError("secret-token-value")

    with pytest.raises(FuseError) as info:
        os_error()
    assert info.value.errno == errno.ENOENT
    with caplog.at_level(logging.ERROR, logger="joist.fuse"), \
            pytest.raises(FuseError) as info:
        surprise()
    assert info.value.errno == errno.EIO
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "incident" in caplog.text  # logged with an id for the operator
