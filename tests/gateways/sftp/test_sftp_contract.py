"""The hierarchy contract, spoken through SFTP by paramiko's client."""

from __future__ import annotations

from tests.contract.hierarchy_suite import ReadOnlyContract


class TestSftpReadOnly(ReadOnlyContract):
    """``fs`` (conftest): paramiko SFTP clients of a server on port 0."""
