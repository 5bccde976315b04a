"""SFTP extensions: OpenSSH's ``limits``/``statvfs``, and ``check-file`` hashes.

``check-file`` (draft-ietf-secsh-filexfer-extensions, also paramiko's
``SFTPFile.check``) answers the first algorithm of the client's list that we
know. A whole-file SHA-512 comes from the hash core stored at upload; every
other answer (md5, sha1, sha224, sha256, sha384, a range, per-block hashes) is
computed by reading the bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from paramiko.sftp import SFTP_FAILURE

from joist.core.hierarchy import Reader, Replace

from . import wire
from .errors import SftpStatusError, bad_message, unsupported
from .settings import MAX_MESSAGE, MAX_READ
from .wire import Request

if TYPE_CHECKING:
    from .operations import Operations

HASHES = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
MIN_BLOCK = 256          # the draft's smallest block-size
HASH_CHUNK = 1 << 20
ST_RDONLY, ST_NOSUID = 0x1, 0x2

ADVERTISED: list[tuple[bytes, bytes]] = [
    (b"limits@openssh.com", b"1"),
    (b"statvfs@openssh.com", b"2"),
    (b"fstatvfs@openssh.com", b"2"),
    (b"check-file", ",".join(HASHES).encode()),
]


def limits(ops: Operations, req: Request) -> bytes:
    # OpenSSH's client sizes its READs (and pipeline) from these, as it does
    # against sftp-server, whose numbers they are.
    return wire.extended_reply(req.id, struct.pack(
        ">QQQQ", MAX_MESSAGE, MAX_READ, MAX_READ, ops.handles.limit))


def _statvfs_reply(ops: Operations, rid: int, path: str | None = None) -> bytes:
    fs = ops.view.statfs(path)  # below a user or collection: what its quota leaves
    block = max(int(fs.block_size), 1)
    total = (fs.total or 0) // block
    free = (fs.free or 0) // block
    return wire.extended_reply(rid, struct.pack(
        ">11Q", block, block, total, free, free, 0, 0, 0, 0, ST_RDONLY | ST_NOSUID,
        fs.max_name))


def statvfs(ops: Operations, req: Request) -> bytes:
    path = ops.path(req)
    ops.view.stat(path)  # the path must be visible to the caller
    return _statvfs_reply(ops, req.id, path)


def fstatvfs(ops: Operations, req: Request) -> bytes:
    ops.handles.get(req.string())
    return _statvfs_reply(ops, req.id)


def _digests(reader: Reader, algorithm: str, start: int, end: int, block: int) -> bytes:
    out: list[bytes] = []
    pos = start
    while True:
        hasher = hashlib.new(algorithm)
        stop = min(end, pos + block)
        # The hasher is done with each block before the next: a reused buffer is safe.
        for data in reader.iter_range(pos, stop - pos, HASH_CHUNK, reuse=True):
            hasher.update(data)
            pos += len(data)
        if pos < stop:  # the blob is shorter than its record: say so
            raise SftpStatusError(SFTP_FAILURE, "The file ended early")
        out.append(hasher.digest())
        if pos >= end:
            return b"".join(out)


def check_file(ops: Operations, req: Request, by_handle: bool) -> bytes:
    if by_handle:
        handle = ops.handles.file(req.string())
        reader, owned = handle.reader, False
    else:
        reader, owned = ops.view.open_read(ops.path(req)), True
    try:
        wanted = [name.strip().lower() for name in req.text().split(",")]
        start, length, block = req.u64(), req.u64(), req.u32()
        algorithm = next((name for name in wanted if name in HASHES), None)
        if algorithm is None:
            raise unsupported("None of the requested hash algorithms is supported")
        size = reader.size
        if start > size:
            raise bad_message("start-offset is past the end of the file")
        end = size if length == 0 else min(size, start + length)
        if block and block < MIN_BLOCK:
            raise bad_message(f"block-size must be 0 or at least {MIN_BLOCK}")
        span = max(end - start, 0)
        block = block or max(span, 1)
        digest_size = hashlib.new(algorithm).digest_size
        if -(-span // block) * digest_size > MAX_READ:
            raise SftpStatusError(SFTP_FAILURE, "Too many blocks for one reply")
        stored = reader.node.sha512
        if algorithm == "sha512" and stored and start == 0 and end == size and block >= span:
            digest = bytes.fromhex(stored)
        else:
            digest = _digests(reader, algorithm, start, end, block)
    finally:
        if owned:
            reader.close()
    return wire.extended_reply(req.id, wire.pack_string(b"check-file")
                               + wire.pack_string(algorithm.encode()) + digest)


def posix_rename(ops: Operations, req: Request) -> bytes:
    source, target = ops.path(req), ops.path(req)
    ops.view.move(source, target, replace=Replace.EMPTY_DIRECTORY)  # POSIX rename
    return wire.ok_packet(req.id)


def fsync(ops: Operations, req: Request) -> bytes:
    ops.handles.get(req.string())  # read handles have nothing to flush
    return wire.ok_packet(req.id)


HANDLERS: dict[str, Callable[[Operations, Request], bytes]] = {
    "limits@openssh.com": limits,
    "statvfs@openssh.com": statvfs,
    "fstatvfs@openssh.com": fstatvfs,
    "check-file": lambda ops, req: check_file(ops, req, by_handle=True),  # paramiko's name
    "check-file-handle": lambda ops, req: check_file(ops, req, by_handle=True),
    "check-file-name": lambda ops, req: check_file(ops, req, by_handle=False),
    "posix-rename@openssh.com": posix_rename,
    "fsync@openssh.com": fsync,
    "hardlink@openssh.com": lambda ops, req: ops.refuse_write(),
    "lsetstat@openssh.com": lambda ops, req: ops.refuse_write(),
    "copy-data": lambda ops, req: ops.refuse_write(),
}


def dispatch(ops: Operations, req: Request) -> bytes:
    name = req.text()
    handler = HANDLERS.get(name)
    if handler is None:
        raise unsupported(f"Unsupported extension {name[:64]!r}")
    return handler(ops, req)


__all__ = ["ADVERTISED", "HANDLERS", "HASHES", "dispatch"]
