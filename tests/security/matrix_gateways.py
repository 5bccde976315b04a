"""How the access matrix speaks to each gateway, as a real client would.

Every operation returns a ``Reply``, one shape for all four gateways, so a
cell can compare an existing path with a nonexistent one exactly: the HTTP
status, body and the headers a client acts on; the SFTP status code and
message (raw SFTP v3, so nothing is lost in a client library's translation);
the FUSE errno.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import requests

from tests.gateways.sftp.sftpfs import CMD, OK, RawSftp, connect
from tests.gateways.webdav.davclient import Dav
from tests.world import PASSWORD

HEADERS = ("content-type", "www-authenticate")  # the headers an answer is compared by
# SFTP v3 open flags and attribute flags (draft-ietf-secsh-filexfer-02).
READ_FLAG, WRITE_FLAGS = 0x01, 0x02 | 0x08 | 0x10
A_SIZE, A_UIDGID, A_PERM, A_TIME, A_EXT = 0x1, 0x2, 0x4, 0x8, 0x80000000


@dataclass(frozen=True)
class Reply:
    code: int                # HTTP status; SFTP status (0 OK); errno (0 OK)
    body: bytes = b""        # HTTP body; SFTP status message
    data: Any = None         # bytes read or names listed, on success
    headers: tuple[tuple[str, str], ...] = ()

    def normalized(self, *names: str) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
        """Code, body and headers with ``names`` (the path segments that differ
        between an existing and a nonexistent path) blanked out."""
        body, headers = self.body, self.headers
        for name in names:
            body = body.replace(name.encode(), b"<name>")
            headers = tuple((k, v.replace(name, "<name>")) for k, v in headers)
        return self.code, body, headers


def http_reply(resp: requests.Response, data: Any = None) -> Reply:
    return Reply(resp.status_code, resp.content, data,
                 tuple((h, resp.headers[h]) for h in HEADERS if h in resp.headers))


# ------------------------------------------------------------------ REST
class RestClient:
    """Girder's REST API by id, with a ``Girder-Token`` (None: anonymous)."""

    def __init__(self, api: str, token: str | None) -> None:
        self.api = api.rstrip("/") + "/"
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Girder-Token"] = token

    def call(self, method: str, path: str, **kw: Any) -> Reply:
        kw.setdefault("timeout", 30)
        resp = self.session.request(method, self.api + path, **kw)
        return http_reply(resp, resp.json() if resp.headers.get(
            "content-type", "").startswith("application/json") else resp.content)

    def close(self) -> None:
        self.session.close()


# ------------------------------------------------------------------ WebDAV
class DavOps:
    def __init__(self, base: str, login: str | None) -> None:
        self.dav = Dav(base, None if login is None else (login, PASSWORD))

    def _do(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.dav.request(method, path, allow_redirects=False, **kw)

    def read(self, path: str) -> Reply:
        resp = self._do("GET", path)
        return http_reply(resp, resp.content if resp.status_code == 200 else None)

    def list(self, path: str) -> Reply:
        resp = self._do("PROPFIND", path, headers={"Depth": "1"})
        names = None
        if resp.status_code == 207:
            names = sorted(self.dav.responses(path, "1"))
        return http_reply(resp, names)

    def stat(self, path: str) -> Reply:
        return http_reply(self._do("PROPFIND", path, headers={"Depth": "0"}))

    def head(self, path: str) -> Reply:
        return http_reply(self._do("HEAD", path))

    def write(self, path: str, data: bytes) -> Reply:
        return http_reply(self._do("PUT", path, data=data))

    overwrite = write

    def mkdir(self, path: str) -> Reply:
        return http_reply(self._do("MKCOL", path))

    def delete(self, path: str) -> Reply:
        return http_reply(self._do("DELETE", path))

    def move(self, src: str, dst: str) -> Reply:
        return http_reply(self._do("MOVE", src, headers={
            "Destination": self.dav.url(dst), "Overwrite": "F"}))

    def copy(self, src: str, dst: str) -> Reply:
        return http_reply(self._do("COPY", src, headers={
            "Destination": self.dav.url(dst), "Overwrite": "F"}))

    def lock(self, path: str) -> Reply:
        body = ('<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
                "<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
                "<D:owner>matrix</D:owner></D:lockinfo>")
        return http_reply(self._do("LOCK", path, data=body, headers={
            "Depth": "0", "Timeout": "Second-60", "Content-Type": "application/xml"}))

    def proppatch(self, path: str) -> Reply:
        body = ('<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" '
                'xmlns:M="urn:joist:meta"><D:set><D:prop><M:k>v</M:k></D:prop></D:set>'
                "</D:propertyupdate>")
        return http_reply(self._do("PROPPATCH", path, data=body,
                                   headers={"Content-Type": "application/xml"}))

    def options(self, path: str) -> Reply:
        return http_reply(self._do("OPTIONS", path))

    def close(self) -> None:
        self.dav.close()


# ------------------------------------------------------------------ SFTP
def _skip_attrs(reply: Any) -> None:
    flags = reply.u32()
    if flags & A_SIZE:
        reply.u64()
    if flags & A_UIDGID:
        reply.u32(), reply.u32()
    if flags & A_PERM:
        reply.u32()
    if flags & A_TIME:
        reply.u32(), reply.u32()
    if flags & A_EXT:
        for _ in range(reply.u32()):
            reply.string(), reply.string()


class SftpOps:
    """Raw SFTP v3 over one logged-in transport (None: anonymous)."""

    def __init__(self, address: tuple[str, int], login: str | None) -> None:
        self.transport: paramiko.Transport = connect(address, login, PASSWORD)
        self.raw = RawSftp(self.transport)

    def _status(self, answer: Any) -> Reply:
        code, message = answer.status()
        return Reply(code, message.encode())

    def _handle(self, kind: str, *fields: Any) -> tuple[bytes | None, Reply | None]:
        answer = self.raw.call(kind, *fields)
        if answer.kind == CMD["handle"]:
            return answer.string(), None
        return None, self._status(answer)

    def read(self, path: str) -> Reply:
        handle, failed = self._handle("open", path, READ_FLAG, 0)
        if handle is None:
            assert failed is not None
            return failed
        data = b""
        for _ in range(10_000):
            answer = self.raw.call("read", handle, ("q", len(data)), 32768)
            if answer.kind != CMD["data"]:
                break  # EOF
            data += answer.string()
        self.raw.call("close", handle)
        return Reply(OK, data=data)

    def list(self, path: str) -> Reply:
        handle, failed = self._handle("opendir", path)
        if handle is None:
            assert failed is not None
            return failed
        names: list[str] = []
        for _ in range(10_000):
            answer = self.raw.call("readdir", handle)
            if answer.kind != CMD["name"]:
                break  # EOF
            for _ in range(answer.u32()):
                names.append(answer.string().decode())
                answer.string()  # longname
                _skip_attrs(answer)
        self.raw.call("close", handle)
        return Reply(OK, data=sorted(n for n in names if n not in (".", "..")))

    def stat(self, path: str) -> Reply:
        answer = self.raw.call("stat", path)
        return Reply(OK) if answer.kind == CMD["attrs"] else self._status(answer)

    def lstat(self, path: str) -> Reply:
        answer = self.raw.call("lstat", path)
        return Reply(OK) if answer.kind == CMD["attrs"] else self._status(answer)

    def realpath(self, path: str) -> Reply:
        answer = self.raw.call("realpath", path)
        if answer.kind != CMD["name"]:
            return self._status(answer)
        answer.u32()
        return Reply(OK, data=answer.string().decode())

    def readlink(self, path: str) -> Reply:
        answer = self.raw.call("readlink", path)
        return Reply(OK) if answer.kind == CMD["name"] else self._status(answer)

    def setstat(self, path: str) -> Reply:
        return self._status(self.raw.call("setstat", path, A_PERM, 0o644))

    def write(self, path: str, data: bytes) -> Reply:
        handle, failed = self._handle("open", path, WRITE_FLAGS, 0)
        if handle is None:
            assert failed is not None
            return failed
        self.raw.call("write", handle, ("q", 0), data)
        return self._status(self.raw.call("close", handle))

    overwrite = write

    def mkdir(self, path: str) -> Reply:
        return self._status(self.raw.call("mkdir", path, 0))

    def delete(self, path: str) -> Reply:
        return self._status(self.raw.call("remove", path))

    def move(self, src: str, dst: str) -> Reply:
        return self._status(self.raw.call("rename", src, dst))

    def close(self) -> None:
        self.transport.close()  # its channel with it


# ------------------------------------------------------------------ FUSE
def _errno(call: Callable[[], Any]) -> Reply:
    try:
        return Reply(0, data=call())
    except OSError as exc:
        return Reply(exc.errno or errno.EIO)


class FuseOps:
    """Plain ``os`` calls below a mount point, as any program makes them."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)

    def _p(self, path: str) -> str:
        return self.root + path

    def read(self, path: str) -> Reply:
        return _errno(lambda: Path(self._p(path)).read_bytes())

    def list(self, path: str) -> Reply:
        return _errno(lambda: sorted(os.listdir(self._p(path))))

    def stat(self, path: str) -> Reply:
        def stat() -> None:
            os.stat(self._p(path))
        return _errno(stat)

    def write(self, path: str, data: bytes) -> Reply:
        def write() -> None:
            with open(self._p(path), "xb") as f:  # a new file: O_CREAT | O_EXCL
                f.write(data)
        return _errno(write)

    def overwrite(self, path: str, data: bytes) -> Reply:
        def overwrite() -> None:
            with open(self._p(path), "wb") as f:  # O_TRUNC of an existing file
                f.write(data)
        return _errno(overwrite)

    def mkdir(self, path: str) -> Reply:
        return _errno(lambda: os.mkdir(self._p(path)))

    def getxattr(self, path: str) -> Reply:
        return _errno(lambda: os.getxattr(self._p(path), "user.joist"))

    def readlink(self, path: str) -> Reply:
        return _errno(lambda: os.readlink(self._p(path)))

    def chmod(self, path: str) -> Reply:
        return _errno(lambda: os.chmod(self._p(path), 0o600))

    def delete(self, path: str) -> Reply:
        return _errno(lambda: os.remove(self._p(path)))

    def move(self, src: str, dst: str) -> Reply:
        return _errno(lambda: os.rename(self._p(src), self._p(dst)))

    def close(self) -> None:
        pass


def access_body(acl: dict[str, Any]) -> dict[str, str]:
    """``PUT folder/{id}/access`` parameters for an access list."""
    return {"access": json.dumps(acl)}


__all__ = ["DavOps", "FuseOps", "Reply", "RestClient", "SftpOps", "access_body",
           "http_reply"]
