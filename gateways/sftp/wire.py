"""SFTP v3 framing (draft-ietf-secsh-filexfer-02): parse requests, build replies.

Requests are read straight from the session's receive buffer with
``struct.unpack_from``; replies are built as bytes, except DATA, whose header
is built alone so the payload is sent without another copy.
"""

from __future__ import annotations

import stat as _stat
import struct
import time
from collections.abc import Iterable

from paramiko.sftp import (
    CMD_ATTRS,
    CMD_DATA,
    CMD_EXTENDED_REPLY,
    CMD_HANDLE,
    CMD_NAME,
    CMD_STATUS,
    CMD_VERSION,
    SFTP_EOF,
    SFTP_OK,
)

from joist.core.hierarchy import Node

from .errors import bad_message

VERSION = 3

ATTR_SIZE = 0x01
ATTR_UIDGID = 0x02
ATTR_PERMISSIONS = 0x04
ATTR_ACMODTIME = 0x08
ATTR_EXTENDED = 0x80000000

DIR_MODE = _stat.S_IFDIR | 0o555
FILE_MODE = _stat.S_IFREG | 0o444
LINK_MODE = _stat.S_IFLNK | 0o777

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_HEAD = struct.Struct(">IBI")        # length, type, request id
_DATA_HEAD = struct.Struct(">IBII")  # length, DATA, request id, data length
_ATTRS = struct.Struct(">IQIII")     # flags, size, permissions, atime, mtime
_SIX_MONTHS = 182 * 86400


class Request:
    """One request: its type, id and a cursor over the remaining fields.
    A field running past the end raises ``SftpStatusError(BAD_MESSAGE)``."""

    __slots__ = ("_buf", "_end", "_pos", "id", "kind")

    def __init__(self, buf: memoryview, start: int, end: int) -> None:
        # ``start`` points at the type byte (after the length prefix).
        self._buf = buf
        self._end = end
        self.kind = buf[start]
        self._pos = start + 1
        self.id = 0
        if self.kind != 1:  # INIT carries a version, not a request id
            self.id = self.u32()

    def _take(self, size: int) -> int:
        pos = self._pos
        if pos + size > self._end:
            raise bad_message()
        self._pos = pos + size
        return pos

    def u32(self) -> int:
        return int(_U32.unpack_from(self._buf, self._take(4))[0])

    def u64(self) -> int:
        return int(_U64.unpack_from(self._buf, self._take(8))[0])

    def string(self) -> bytes:
        size = self.u32()
        pos = self._take(size)
        return bytes(self._buf[pos:pos + size])

    def text(self) -> str:
        try:
            return self.string().decode("utf-8")
        except UnicodeDecodeError:
            raise bad_message("Strings must be UTF-8") from None

    def remaining(self) -> bool:
        return self._pos < self._end

    def attrs(self) -> None:
        """Skip an ATTRS structure (we never apply one: the server is read-only)."""
        flags = self.u32()
        if flags & ATTR_SIZE:
            self._take(8)
        if flags & ATTR_UIDGID:
            self._take(8)
        if flags & ATTR_PERMISSIONS:
            self._take(4)
        if flags & ATTR_ACMODTIME:
            self._take(8)
        if flags & ATTR_EXTENDED:
            for _ in range(self.u32()):
                self.string()
                self.string()


def pack_string(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def _frame(kind: int, rid: int, body: bytes) -> bytes:
    return _HEAD.pack(len(body) + 5, kind, rid) + body


def version_packet(extensions: Iterable[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(pack_string(name) + pack_string(data) for name, data in extensions)
    return _U32.pack(len(body) + 5) + bytes([CMD_VERSION]) + _U32.pack(VERSION) + body


def status_packet(rid: int, code: int, message: str) -> bytes:
    return _frame(CMD_STATUS, rid, _U32.pack(code) + pack_string(message.encode("utf-8"))
                  + pack_string(b"en"))


def ok_packet(rid: int) -> bytes:
    return status_packet(rid, SFTP_OK, "Success")


def eof_packet(rid: int) -> bytes:
    return status_packet(rid, SFTP_EOF, "End of file")


def handle_packet(rid: int, handle: bytes) -> bytes:
    return _frame(CMD_HANDLE, rid, pack_string(handle))


def data_header(rid: int, size: int) -> bytes:
    return _DATA_HEAD.pack(size + 9, CMD_DATA, rid, size)


def attrs_packet(rid: int, attrs: bytes) -> bytes:
    return _frame(CMD_ATTRS, rid, attrs)


def extended_reply(rid: int, payload: bytes) -> bytes:
    return _frame(CMD_EXTENDED_REPLY, rid, payload)


def name_packet(rid: int, entries: list[tuple[str, str, bytes]]) -> bytes:
    """``entries``: (filename, longname, encoded attrs)."""
    parts = [_U32.pack(len(entries))]
    for name, longname, attrs in entries:
        parts += [pack_string(name.encode("utf-8")), pack_string(longname.encode("utf-8")),
                  attrs]
    return _frame(CMD_NAME, rid, b"".join(parts))


def mode_of(node: Node) -> int:
    if node.is_dir:
        return DIR_MODE
    return LINK_MODE if node.link_url else FILE_MODE


def size_of(node: Node) -> int:
    if node.is_dir:
        return 0
    if node.link_url:
        return len(node.link_url.encode("utf-8"))
    return node.size


def encode_attrs(node: Node) -> bytes:
    mtime = int(node.mtime) & 0xFFFFFFFF
    return _ATTRS.pack(ATTR_SIZE | ATTR_PERMISSIONS | ATTR_ACMODTIME, size_of(node),
                       mode_of(node), mtime, mtime)


EMPTY_ATTRS = _U32.pack(0)


def longname(node: Node, now: float | None = None) -> str:
    """The ``ls -l`` line OpenSSH's client prints for ``ls -l`` (it shows the
    server's line as is). No owner is shown: ownership in Joist is an ACL."""
    now = time.time() if now is None else now
    stamp = time.localtime(node.mtime)
    when = time.strftime("%b %e %H:%M" if abs(now - node.mtime) < _SIX_MONTHS
                         else "%b %e  %Y", stamp)
    return (f"{_stat.filemode(mode_of(node))}    1 joist    joist    "
            f"{size_of(node):>12} {when} {node.segment}")


__all__ = ["DIR_MODE", "EMPTY_ATTRS", "FILE_MODE", "LINK_MODE", "Request", "attrs_packet",
           "data_header", "encode_attrs", "eof_packet", "extended_reply", "handle_packet",
           "longname", "mode_of", "name_packet", "ok_packet", "pack_string", "status_packet",
           "version_packet"]
