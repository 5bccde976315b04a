"""SFTP requests one by one, and bad input: each gets the right status (or a
closed connection) and the server keeps serving everyone else."""

from __future__ import annotations

import hashlib
import stat
import struct

import pytest

from tests import world as w
from tests.gateways.sftp.conftest import SftpSite
from tests.gateways.sftp.sftpfs import (
    BAD_MESSAGE,
    CMD,
    EOF,
    FAILURE,
    NO_SUCH_FILE,
    OK,
    OP_UNSUPPORTED,
    PERMISSION_DENIED,
    RawSftp,
)

DATA = "/user/alice/Private/data"
Q = "q"  # marks a uint64 field for RawSftp.send


def _alive(site: SftpSite) -> None:
    """Another session still gets its bytes."""
    with site.client("carol").open("/collection/shared/docs/report.txt") as f:
        assert f.read() == w.REPORT


def test_version_advertises_extensions(site: SftpSite) -> None:
    raw = site.raw()
    assert {b"limits@openssh.com", b"statvfs@openssh.com", b"check-file"} <= \
        set(raw.extensions)
    reply = raw.call("extended", "limits@openssh.com")
    assert reply.kind == CMD["extended_reply"]
    max_packet, max_read, _max_write, max_handles = (reply.u64() for _ in range(4))
    assert (max_packet, max_read) == (256 * 1024, 255 * 1024) and max_handles > 0


def test_reads_at_any_offset_and_past_the_end(site: SftpSite) -> None:
    raw = site.raw()
    handle = raw.handle("open", f"{DATA}/multi/y.bin", 1, 0)  # READ, no attrs
    for offset, size in ((0, 10), (5000, 300), (len(w.Y_BIN) - 7, 100)):
        reply = raw.call("read", handle, (Q, offset), size)
        assert reply.kind == CMD["data"]
        assert reply.string() == w.Y_BIN[offset:offset + size]
    assert raw.call("read", handle, (Q, len(w.Y_BIN)), 10).status()[0] == EOF
    assert raw.call("read", handle, (Q, 1 << 40), 10).status()[0] == EOF
    code, message = raw.call("read", handle, (Q, (1 << 64) - 5), 10).status()
    assert code == BAD_MESSAGE and "offset" in message.lower()  # a negative int64
    assert raw.call("close", handle).status()[0] == OK


def test_pipelined_reads_are_answered_in_order(site: SftpSite) -> None:
    raw = site.raw()
    handle = raw.handle("open", "/collection/shared/docs/report.txt", 1, 0)
    ids = [raw.send("read", handle, (Q, offset), 1000) for offset in range(0, 17000, 1000)]
    got = b""
    for rid in ids:
        reply = raw.reply()
        assert reply.id == rid
        got += reply.string() if reply.kind == CMD["data"] else b""
    assert got == w.REPORT


def test_unknown_and_closed_handles(site: SftpSite) -> None:
    raw = site.raw()
    for request in (("read", b"nope", (Q, 0), 10), ("close", b"nope"), ("fstat", b""),
                    ("readdir", b"\xff" * 300)):
        code, message = raw.call(*request).status()
        assert code == FAILURE and "handle" in message.lower()
    handle = raw.handle("open", f"{DATA}/a.txt", 1, 0)
    assert raw.call("close", handle).status()[0] == OK
    assert raw.call("read", handle, (Q, 0), 10).status()[0] == FAILURE
    assert raw.call("close", handle).status()[0] == FAILURE
    directory = raw.handle("opendir", DATA)
    assert raw.call("read", directory, (Q, 0), 10).status()[0] == FAILURE  # not a file
    _alive(site)


def test_paths_never_climb_above_root(site: SftpSite) -> None:
    raw = site.raw()
    for path, expected in (("/../../..", "/"), ("..", "/"), (".", "/"),
                           ("/user/../../collection/./shared/", "/collection/shared"),
                           ("user/alice", "/user/alice")):
        reply = raw.call("realpath", path)
        assert reply.kind == CMD["name"] and reply.u32() == 1
        assert reply.string().decode() == expected
    reply = raw.call("stat", "/../../user/alice/../alice/Private/data/../data/a.txt")
    assert reply.kind == CMD["attrs"]
    assert raw.call("stat", "/../etc/passwd").status()[0] == NO_SUCH_FILE


def test_over_long_and_odd_paths(site: SftpSite) -> None:
    raw = site.raw()
    code, message = raw.call("stat", "/user/" + "a" * 9000).status()
    assert code == BAD_MESSAGE and "too long" in message.lower()
    assert raw.call("stat", "/user/a\x00b").status()[0] == BAD_MESSAGE
    assert raw.call("stat", b"/user/\xff\xfe").status()[0] == BAD_MESSAGE
    assert raw.call("opendir", f"{DATA}/a.txt").status()[0] == NO_SUCH_FILE  # not a dir
    code, _ = raw.call("open", DATA, 1, 0).status()
    assert code == FAILURE  # a directory has no bytes
    _alive(site)


def test_malformed_requests_get_bad_message(site: SftpSite) -> None:
    raw = site.raw()
    # READ whose handle string claims more bytes than the packet holds.
    body = bytes([CMD["read"]]) + struct.pack(">II", 77, 1000) + b"abc"
    raw.send_raw(struct.pack(">I", len(body)) + body)
    reply = raw.reply()
    assert reply.id == 77 and reply.status()[0] == BAD_MESSAGE
    # OPEN with no pflags at all, then an unknown request type.
    body = bytes([CMD["open"]]) + struct.pack(">I", 78) + struct.pack(">I", 1) + b"/"
    raw.send_raw(struct.pack(">I", len(body)) + body)
    assert raw.reply().status()[0] == BAD_MESSAGE
    body = bytes([99]) + struct.pack(">I", 79)
    raw.send_raw(struct.pack(">I", len(body)) + body)
    assert raw.reply().status()[0] == OP_UNSUPPORTED
    assert raw.call("extended", "no-such@example.org").status()[0] == OP_UNSUPPORTED
    # The session still works.
    assert raw.call("stat", f"{DATA}/a.txt").kind == CMD["attrs"]


@pytest.mark.parametrize("garbage", [
    struct.pack(">I", 1 << 30) + b"x" * 16,      # absurd length
    struct.pack(">I", 2) + b"\x03\x00",          # too short to hold a request id
])
def test_broken_framing_closes_only_that_session(site: SftpSite, garbage: bytes) -> None:
    raw = site.raw()
    raw.send_raw(garbage)
    with pytest.raises(EOFError):
        raw.reply()
    _alive(site)


def test_requests_before_init_close_the_session(site: SftpSite) -> None:
    channel = site.transport().open_session()
    channel.settimeout(30)
    channel.invoke_subsystem("sftp")
    body = bytes([CMD["stat"]]) + struct.pack(">I", 1) + struct.pack(">I", 1) + b"/"
    channel.sendall(struct.pack(">I", len(body)) + body)
    assert channel.recv(100) == b""
    _alive(site)


def test_writes_are_refused_as_read_only(site: SftpSite) -> None:
    raw = site.raw()
    handle = raw.handle("open", f"{DATA}/a.txt", 1, 0)
    requests = [
        ("open", f"{DATA}/new.txt", 0x1A, 0),             # WRITE|CREAT|TRUNC
        ("open", f"{DATA}/a.txt", 0x02, 0),               # WRITE
        ("write", handle, (Q, 0), b"xyz"),
        ("mkdir", f"{DATA}/newdir", 0),
        ("rmdir", f"{DATA}/deep"),
        ("remove", f"{DATA}/a.txt"),
        ("rename", f"{DATA}/a.txt", f"{DATA}/b.txt"),
        ("setstat", f"{DATA}/a.txt", 4, 0o777),
        ("fsetstat", handle, 4, 0o777),
        ("symlink", f"{DATA}/a.txt", f"{DATA}/link"),
        ("extended", "posix-rename@openssh.com", f"{DATA}/a.txt", f"{DATA}/c.txt"),
        ("extended", "hardlink@openssh.com", f"{DATA}/a.txt", f"{DATA}/d.txt"),
        # Even where nothing exists, or where the caller may not look: no leak.
        ("mkdir", "/collection/secret/vault/x", 0),
        ("remove", "/nowhere/at/all"),
    ]
    for request in requests:
        code, message = raw.call(*request).status()
        assert code == PERMISSION_DENIED, request
        assert "read-only" in message, request
    alice = site.client()
    assert sorted(alice.listdir(DATA)) == ["a.txt", "deep", "multi", "odd\\-name"]
    with alice.open(f"{DATA}/a.txt") as f:
        assert f.read() == w.A_TXT


def test_stat_attributes(site: SftpSite) -> None:
    alice = site.client()
    node = site.app.hierarchy.view(site.world.principal("alice")).stat(f"{DATA}/a.txt")
    attrs = alice.stat(f"{DATA}/a.txt")
    assert stat.S_ISREG(attrs.st_mode or 0) and (attrs.st_mode or 0) & 0o777 == 0o444
    assert attrs.st_size == len(w.A_TXT) and attrs.st_mtime == int(node.mtime)
    assert alice.lstat(f"{DATA}/a.txt").st_size == len(w.A_TXT)
    with alice.open(f"{DATA}/a.txt") as f:
        assert f.stat().st_size == len(w.A_TXT)
    for path in ("/", "/user", f"{DATA}/deep", f"{DATA}/multi"):
        mode = alice.stat(path).st_mode or 0
        assert stat.S_ISDIR(mode) and mode & 0o777 == 0o555


def test_listing_shows_segments_and_long_names(site: SftpSite) -> None:
    entries = {a.filename: a for a in site.client().listdir_attr(DATA)}
    assert set(entries) == {"a.txt", "deep", "multi", "odd\\-name"}
    assert entries["a.txt"].longname.startswith("-r--r--r--")
    assert entries["a.txt"].longname.endswith(" a.txt")
    assert f" {len(w.A_TXT)} " in entries["a.txt"].longname
    assert entries["deep"].longname.startswith("dr-xr-xr-x")


def test_large_folder_is_listed_page_by_page(site: SftpSite) -> None:
    svc, alice = site.app.services, site.world.principal("alice")
    for n in range(250):
        svc.items.create(alice, site.world.docs["data"], f"item-{n:03}")
    raw = site.raw()
    handle = raw.handle("opendir", DATA)
    names: list[str] = []
    pages = 0
    while True:
        reply = raw.call("readdir", handle)
        if reply.kind == CMD["status"]:
            assert reply.status()[0] == EOF
            break
        count = reply.u32()
        assert 0 < count <= 100
        pages += 1
        for _ in range(count):
            names.append(reply.string().decode())
            reply.string()  # longname
            flags = reply.u32()
            assert flags == 0x0D  # size, permissions, times
            reply.pos += 8 + 4 + 8
    assert pages >= 3 and len(names) == len(set(names)) == 254
    assert raw.call("close", handle).status()[0] == OK


def test_statvfs(site: SftpSite) -> None:
    raw = site.raw()
    reply = raw.call("extended", "statvfs@openssh.com", DATA)
    assert reply.kind == CMD["extended_reply"]
    bsize, frsize, blocks, bfree = (reply.u64() for _ in range(4))
    for _ in range(5):
        reply.u64()
    flag, namemax = reply.u64(), reply.u64()
    assert bsize > 0 and frsize > 0 and blocks >= bfree and flag & 1 and namemax == 255
    assert raw.call("extended", "statvfs@openssh.com",
                    "/collection/secret").status()[0] == NO_SUCH_FILE
    bob = site.raw("bobby")
    assert bob.call("extended", "statvfs@openssh.com", DATA).status()[0] == NO_SUCH_FILE


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "sha512"])
def test_check_file_hashes(site: SftpSite, algorithm: str) -> None:
    with site.client().open(f"{DATA}/multi/x.bin") as f:
        assert f.check(algorithm) == hashlib.new(algorithm, w.X_BIN).digest()
        blocks = f.check(algorithm, 100, 1000, 512)
        assert blocks == hashlib.new(algorithm, w.X_BIN[100:612]).digest() + \
            hashlib.new(algorithm, w.X_BIN[612:1100]).digest()


def test_check_file_by_name_uses_the_stored_sha512(site: SftpSite) -> None:
    raw = site.raw()
    reply = raw.call("extended", "check-file-name", f"{DATA}/a.txt", "crc32,sha512,md5",
                     (Q, 0), (Q, 0), 0)
    assert reply.kind == CMD["extended_reply"]
    assert reply.string() == b"check-file" and reply.string() == b"sha512"
    stored = site.app.hierarchy.view(site.world.principal("alice")).stat(f"{DATA}/a.txt")
    assert reply.body[reply.pos:] == bytes.fromhex(stored.sha512 or "")
    assert reply.body[reply.pos:] == hashlib.sha512(w.A_TXT).digest()
    assert raw.call("extended", "check-file-name", f"{DATA}/a.txt", "crc32",
                    (Q, 0), (Q, 0), 0).status()[0] == OP_UNSUPPORTED
    assert raw.call("extended", "check-file-name", f"{DATA}/a.txt", "md5",
                    (Q, 0), (Q, 0), 100).status()[0] == BAD_MESSAGE  # block < 256
    bob = site.raw("bobby")
    assert bob.call("extended", "check-file-name", f"{DATA}/a.txt", "md5",
                    (Q, 0), (Q, 0), 0).status()[0] == NO_SUCH_FILE


def test_too_many_handles(site: SftpSite) -> None:
    raw = site.raw()
    limit = site.server.tuning.max_handles
    for _ in range(limit):
        raw.handle("open", f"{DATA}/a.txt", 1, 0)
    code, message = raw.call("open", f"{DATA}/a.txt", 1, 0).status()
    assert code == FAILURE and "handles" in message
    assert site.server.stats()["handles"] == limit


def test_raw_client_is_independent(site: SftpSite) -> None:
    """The raw client decodes a reply the server's own encoder did not shape:
    paramiko's answer for the same stat agrees with it."""
    raw: RawSftp = site.raw()
    reply = raw.call("lstat", f"{DATA}/a.txt")
    flags, size = reply.u32(), reply.u64()
    assert flags & 1 and size == site.client().lstat(f"{DATA}/a.txt").st_size


def test_thousands_of_queued_reads(site: SftpSite) -> None:
    raw = site.raw()
    handle = raw.handle("open", f"{DATA}/multi/y.bin", 1, 0)
    offsets = [(n * 7) % len(w.Y_BIN) for n in range(3000)]
    ids = [raw.send("read", handle, (Q, offset), 100) for offset in offsets]
    for rid, offset in zip(ids, offsets, strict=True):
        reply = raw.reply()
        assert reply.id == rid and reply.string() == w.Y_BIN[offset:offset + 100]
    assert raw.call("close", handle).status()[0] == OK
