"""Fuzzing the SFTP gateway (issue 12, item 6) through paramiko's SFTPClient:
odd paths (text, and bytes that are not UTF-8) into stat, lstat, listdir,
realpath, readlink, open and reads, the refused writes, setstat with odd
attributes, and the extensions. Every answer must be a result or an SFTP
status in the protocol's terms: never the generic "server failed" (SFTP's
500), never a dropped session, and no unexpected failure in the log."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
from hypothesis import given
from hypothesis import strategies as st
from paramiko import sftp as wire

from joist.admin.bootstrap import build_app
from tests.conftest import make_settings
from tests.gateways.sftp.conftest import start_server
from tests.gateways.sftp.sftpfs import connect
from tests.security.fuzzkit import FUZZ, LogWatch, odd_bytes, odd_text, watching_logs
from tests.world import PASSWORD, build_world

PREFIXES = ["", "/", "/user/alice/Private/data/", "/user/alice/Private/data/a.txt/",
            "/collection/", "/user/", ".", "..", "~", "/user/alice/Private/data/multi/"]


@dataclass(repr=False)
class Target:
    clients: dict[str, paramiko.SFTPClient]
    connect: Callable[[str], paramiko.SFTPClient]
    watch: LogWatch

    def client(self, who: str) -> paramiko.SFTPClient:
        """A live session for ``who`` (a new one if the last was lost, which
        the verdict reports; a reconnect keeps the other examples honest)."""
        current = self.clients.get(who)
        channel = current.get_channel() if current is not None else None
        if channel is None or channel.closed:
            self.clients[who] = self.connect(who)
        return self.clients[who]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data_dir: Path = tmp_path_factory.mktemp("fuzzsftp") / "data"
    app = build_app(make_settings(data_dir), env={})
    transports: list[paramiko.Transport] = []
    try:
        build_world(app)
        app.services.settings.set("joist.throttle.max_failures", 10 ** 9)
        server = start_server(app)
        try:
            def make(who: str) -> paramiko.SFTPClient:
                transport = connect(server.address, None if who == "anonymous" else who,
                                    PASSWORD)
                transports.append(transport)
                return paramiko.SFTPClient.from_transport(transport)  # type: ignore[return-value]

            with watching_logs() as watch:
                yield Target({}, make, watch)
        finally:
            for transport in transports:
                transport.close()
            server.stop()
    finally:
        app.close()


paths = st.builds(lambda prefix, tail: (prefix.encode() + tail) if isinstance(tail, bytes)
                  else prefix + tail,
                  st.sampled_from(PREFIXES),
                  st.one_of(odd_text, odd_bytes, st.sampled_from(["a.txt", "data", ""])))
uint32 = st.one_of(st.integers(0, 2 ** 32 - 1), st.sampled_from([0, 2 ** 32 - 1, 0o7777]))
uint64 = st.one_of(st.integers(0, 2 ** 64 - 1), st.sampled_from([0, 2 ** 63, 2 ** 64 - 1]))


def _read(client: paramiko.SFTPClient, path: Any, offset: int, size: int) -> Any:
    with client.open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(size)
        handle.stat()
        return data


def _listdir_paged(client: paramiko.SFTPClient, path: Any, _o: int, _s: int) -> Any:
    return [entry.filename for entry in client.listdir_iter(path, read_aheads=3)]


def _attrs(size: int, mode: int, uid: int, mtime: int) -> paramiko.SFTPAttributes:
    attrs = paramiko.SFTPAttributes()
    attrs.st_size, attrs.st_mode, attrs.st_uid, attrs.st_gid = size, mode, uid, uid
    attrs.st_atime = attrs.st_mtime = mtime
    attrs.attr = {"x@example.org": "y"}
    return attrs


READS: dict[str, Callable[..., Any]] = {
    "stat": lambda c, p, o, s: c.stat(p),
    "lstat": lambda c, p, o, s: c.lstat(p),
    "listdir": lambda c, p, o, s: c.listdir_attr(p),
    "listdir_iter": _listdir_paged,
    "realpath": lambda c, p, o, s: c.normalize(p),
    "readlink": lambda c, p, o, s: c.readlink(p),
    "read": _read,
    "statvfs": lambda c, p, o, s: c._request(wire.CMD_EXTENDED, "statvfs@openssh.com", p),
    "check-file-name": lambda c, p, o, s: c._request(
        wire.CMD_EXTENDED, "check-file-name", p, "sha512,md5,nope", o, s, s % 2 ** 32),
}
WRITES: dict[str, Callable[..., Any]] = {
    "open-w": lambda c, p, o, s: c.open(p, "wb").close(),
    "open-a": lambda c, p, o, s: c.open(p, "ab").close(),
    "mkdir": lambda c, p, o, s: c.mkdir(p, o % 0o10000),
    "rmdir": lambda c, p, o, s: c.rmdir(p),
    "remove": lambda c, p, o, s: c.remove(p),
    "rename": lambda c, p, o, s: c.rename(p, p + (b"2" if isinstance(p, bytes) else "2")),
    "posix-rename": lambda c, p, o, s: c.posix_rename(p, "/user/alice/Private/x"),
    "symlink": lambda c, p, o, s: c.symlink(p, "/user/alice/Private/link"),
    "chmod": lambda c, p, o, s: c.chmod(p, o % 2 ** 32),
    "utime": lambda c, p, o, s: c.utime(p, (o % 2 ** 32, s % 2 ** 32)),
    "truncate": lambda c, p, o, s: c.truncate(p, s),
    "setstat": lambda c, p, o, s: c._request(wire.CMD_SETSTAT, p,
                                             _attrs(s, o % 2 ** 32, o % 2 ** 32, o % 2 ** 32)),
    "hardlink": lambda c, p, o, s: c._request(wire.CMD_EXTENDED, "hardlink@openssh.com", p, p),
}


def _verdict(target: Target, who: str, operation: str, path: Any,
             call: Callable[[paramiko.SFTPClient], Any]) -> None:
    client = target.client(who)
    try:
        call(client)
    except (OSError, paramiko.SFTPError) as exc:
        text = str(exc)
        assert "server failed" not in text.lower(), (operation, path, text)
    except (EOFError, paramiko.SSHException) as exc:
        pytest.fail(f"{operation} {path!r}: the session was lost ({exc!r})")
    except (struct.error, UnicodeError, TypeError, ValueError):
        pass  # the client refused to encode what we asked: nothing was sent
    logged = target.watch.take()
    assert not logged, (operation, path, logged)
    assert client.get_channel() is not None and not client.get_channel().closed, \
        (operation, path, "channel closed")
    client.stat("/")  # the session still answers


@FUZZ
@given(operation=st.sampled_from(sorted(READS)), who=st.sampled_from(["alice", "anonymous"]),
       path=paths, offset=uint64, size=st.integers(0, 1 << 20))
def test_reads(target: Target, operation: str, who: str, path: Any, offset: int,
               size: int) -> None:
    _verdict(target, who, operation, path,
             lambda client: READS[operation](client, path, offset, size))


@FUZZ
@given(operation=st.sampled_from(sorted(WRITES)), who=st.sampled_from(["alice", "anonymous"]),
       path=paths, number=uint32, size=uint64)
def test_refused_writes(target: Target, operation: str, who: str, path: Any, number: int,
                        size: int) -> None:
    """SFTP is read-only: every write is refused in SFTP's terms, whatever the path."""
    def call(client: paramiko.SFTPClient) -> None:
        WRITES[operation](client, path, number, size)
        pytest.fail(f"{operation} {path!r} succeeded on a read-only gateway")

    _verdict(target, who, operation, path, call)


@FUZZ
@given(name=st.one_of(odd_text, odd_bytes, st.sampled_from(
    ["limits@openssh.com", "fstatvfs@openssh.com", "check-file-handle", "fsync@openssh.com",
     "copy-data", "lsetstat@openssh.com", "home-directory", "expand-path@openssh.com"])),
    args=st.lists(st.one_of(odd_bytes, uint32, uint64.map(lambda n: n % 2 ** 63)),
                  max_size=4))
def test_extensions(target: Target, name: Any, args: list[Any]) -> None:
    """Extended requests with odd names and arguments (odd handles included)."""
    def call(client: paramiko.SFTPClient) -> None:
        client._request(wire.CMD_EXTENDED, name, *args)

    _verdict(target, "alice", "extended", name, call)
