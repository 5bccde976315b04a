"""Clients of the SFTP tests: paramiko's SFTP client (and the contract's
``FsClient`` over it), and a raw SFTP v3 speaker for malformed input.

The raw client frames packets itself (from the draft, not from the server's
``wire`` module), so the server is never tested against its own encoder.
"""

from __future__ import annotations

import errno
import stat
import struct
from typing import Any

import paramiko

CMD = {"init": 1, "version": 2, "open": 3, "close": 4, "read": 5, "write": 6, "lstat": 7,
       "fstat": 8, "setstat": 9, "fsetstat": 10, "opendir": 11, "readdir": 12,
       "remove": 13, "mkdir": 14, "rmdir": 15, "realpath": 16, "stat": 17, "rename": 18,
       "readlink": 19, "symlink": 20, "status": 101, "handle": 102, "data": 103,
       "name": 104, "attrs": 105, "extended": 200, "extended_reply": 201}
OK, EOF, NO_SUCH_FILE, PERMISSION_DENIED, FAILURE, BAD_MESSAGE = 0, 1, 2, 3, 4, 5
OP_UNSUPPORTED = 8


def connect(address: tuple[str, int], login: str | None, password: str | None = None,
            key: paramiko.PKey | None = None) -> paramiko.Transport:
    """A logged-in transport: ``login`` None is anonymous (auth "none")."""
    transport = paramiko.Transport(address)
    transport.start_client(timeout=30)
    if login is None:
        transport.auth_none("anonymous")
    elif key is not None:
        transport.auth_publickey(login, key)
    else:
        transport.auth_password(login, password or "")
    return transport


class SftpFs:
    """The hierarchy contract's ``FsClient`` over paramiko's SFTP client."""

    def __init__(self, client: paramiko.SFTPClient) -> None:
        self.client = client

    def listdir(self, path: str) -> list[str]:
        return self.client.listdir(path)

    def isdir(self, path: str) -> bool:
        return stat.S_ISDIR(self.client.stat(path).st_mode or 0)

    def size(self, path: str) -> int:
        return int(self.client.stat(path).st_size or 0)

    def read(self, path: str, offset: int = 0, size: int | None = None) -> bytes:
        with self.client.open(path, "rb") as f:
            f.seek(offset)
            return f.read() if size is None else f.read(size)

    def write(self, path: str, data: bytes) -> None:
        with self.client.open(path, "wb") as f:
            f.write(data)

    def mkdir(self, path: str) -> None:
        self.client.mkdir(path)

    def remove(self, path: str) -> None:
        self.client.remove(path)

    def rmdir(self, path: str) -> None:
        self.client.rmdir(path)

    def rename(self, src: str, dst: str) -> None:
        self.client.rename(src, dst)


# ------------------------------------------------------------------ raw protocol
def _field(value: Any) -> bytes:
    if isinstance(value, bytes):
        return struct.pack(">I", len(value)) + value
    if isinstance(value, str):
        return _field(value.encode())
    if isinstance(value, tuple):  # ("q", n) for a uint64
        return struct.pack(">Q", value[1])
    return struct.pack(">I", value)


class Reply:
    def __init__(self, kind: int, rid: int, body: bytes) -> None:
        self.kind, self.id, self.body, self.pos = kind, rid, body, 0

    def u32(self) -> int:
        (value,) = struct.unpack_from(">I", self.body, self.pos)
        self.pos += 4
        return int(value)

    def u64(self) -> int:
        (value,) = struct.unpack_from(">Q", self.body, self.pos)
        self.pos += 8
        return int(value)

    def string(self) -> bytes:
        size = self.u32()
        self.pos += size
        return self.body[self.pos - size:self.pos]

    def status(self) -> tuple[int, str]:
        assert self.kind == CMD["status"], self.kind
        return self.u32(), self.string().decode()


class RawSftp:
    """SFTP v3 by hand over a channel: ``send`` a request, ``reply`` its answer."""

    def __init__(self, transport: paramiko.Transport) -> None:
        self.channel = transport.open_session()
        self.channel.settimeout(30)
        self.channel.invoke_subsystem("sftp")
        self.next_id = 1
        self.extensions: dict[bytes, bytes] = {}
        self.send_raw(struct.pack(">IBI", 5, CMD["init"], 3))
        version = self._packet()
        assert version.kind == CMD["version"]
        while version.pos < len(version.body):
            name = version.string()
            self.extensions[name] = version.string()

    def send_raw(self, data: bytes) -> None:
        self.channel.sendall(data)

    def send(self, kind: str, *fields: Any) -> int:
        rid, self.next_id = self.next_id, self.next_id + 1
        body = bytes([CMD[kind]]) + struct.pack(">I", rid) + b"".join(map(_field, fields))
        self.send_raw(struct.pack(">I", len(body)) + body)
        return rid

    def _recv_exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.channel.recv(size - len(data))
            if not chunk:
                raise EOFError("channel closed")
            data += chunk
        return data

    def _packet(self) -> Reply:
        (length,) = struct.unpack(">I", self._recv_exact(4))
        body = self._recv_exact(length)
        if body[0] == CMD["version"]:
            return Reply(body[0], 0, body[5:])
        return Reply(body[0], struct.unpack_from(">I", body, 1)[0], body[5:])

    def reply(self) -> Reply:
        return self._packet()

    def call(self, kind: str, *fields: Any) -> Reply:
        rid = self.send(kind, *fields)
        answer = self._packet()
        assert answer.id == rid
        return answer

    def handle(self, kind: str, *fields: Any) -> bytes:
        answer = self.call(kind, *fields)
        assert answer.kind == CMD["handle"], answer.status()
        return answer.string()

    def close(self) -> None:
        self.channel.close()


def os_error(code: int) -> int:
    return {NO_SUCH_FILE: errno.ENOENT, PERMISSION_DENIED: errno.EACCES}.get(code, 0)
