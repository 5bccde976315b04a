"""A small WebDAV client over ``requests`` (the protocol as a client speaks it),
and the ``FsClient`` of the hierarchy contract built on it."""

from __future__ import annotations

import errno
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import requests

DAV = "{DAV:}"


class Dav:
    """Raw WebDAV requests against ``base`` (e.g. ``http://127.0.0.1:PORT/dav``)."""

    def __init__(self, base: str, auth: tuple[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.base = base.rstrip("/")
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers.update(headers or {})

    def url(self, path: str) -> str:
        return self.base + quote(path)

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("timeout", 60)
        return self.session.request(method, self.url(path), **kw)

    def propfind(self, path: str, depth: str = "1", body: str | bytes | None = None
                 ) -> requests.Response:
        return self.request("PROPFIND", path, headers={"Depth": depth}, data=body)

    def responses(self, path: str, depth: str = "1", body: str | bytes | None = None
                  ) -> dict[str, ET.Element]:
        """PROPFIND answers by decoded href path; raises for a non-207."""
        resp = self.propfind(path, depth, body)
        if resp.status_code != 207:
            raise_for(resp, path)
        tree = ET.fromstring(resp.content)
        return {unquote(urlsplit(r.findtext(f"{DAV}href") or "").path): r
                for r in tree.findall(f"{DAV}response")}

    def close(self) -> None:
        self.session.close()


def prop(response: ET.Element, name: str) -> ET.Element | None:
    for propstat in response.findall(f"{DAV}propstat"):
        if "200" in (propstat.findtext(f"{DAV}status") or ""):
            found = propstat.find(f"{DAV}prop/{name}")
            if found is not None:
                return found
    return None


def raise_for(resp: requests.Response, path: str, method: str = "") -> None:
    """The OS error a filesystem client (davfs2, rclone) makes of a status."""
    code = resp.status_code
    if code < 300:
        return
    if code in (404, 409):  # 409: an intermediate collection is missing
        raise FileNotFoundError(errno.ENOENT, f"{method} {code}", path)
    if code in (401, 403):
        raise PermissionError(errno.EACCES, f"{method} {code}", path)
    if code == 405:
        if method == "MKCOL":
            raise FileExistsError(errno.EEXIST, f"{method} {code}", path)
        raise IsADirectoryError(errno.EISDIR, f"{method} {code}", path)
    if code == 412:
        raise FileExistsError(errno.EEXIST, f"{method} {code}", path)
    if code == 423:
        raise OSError(errno.EBUSY, f"{method} {code}", path)
    if code == 507:
        raise OSError(errno.ENOSPC, f"{method} {code}", path)
    raise OSError(errno.EIO, f"{method} {code}: {resp.text[:200]}", path)


class DavFs:
    """``FsClient`` (tests/contract/hierarchy_suite.py) speaking WebDAV."""

    def __init__(self, dav: Dav) -> None:
        self.dav = dav

    def _entries(self, path: str, depth: str) -> dict[str, ET.Element]:
        return self.dav.responses(path, depth)

    def _self(self, path: str) -> ET.Element:
        entries = self._entries(path, "0")
        return next(iter(entries.values()))

    def listdir(self, path: str) -> list[str]:
        entries = self._entries(path, "1")
        own = urlsplit(self.dav.base).path + path
        names = []
        for href in entries:
            if href.rstrip("/") == own.rstrip("/"):
                continue
            names.append(href.rstrip("/").rsplit("/", 1)[-1])
        return names

    def isdir(self, path: str) -> bool:
        kind = prop(self._self(path), f"{DAV}resourcetype")
        return kind is not None and kind.find(f"{DAV}collection") is not None

    def size(self, path: str) -> int:
        found = prop(self._self(path), f"{DAV}getcontentlength")
        return int(found.text or 0) if found is not None else 0

    def read(self, path: str, offset: int = 0, size: int | None = None) -> bytes:
        headers = {}
        if offset or size is not None:
            end = "" if size is None else str(offset + size - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        if size == 0:
            return b""
        resp = self.dav.request("GET", path, headers=headers)
        if resp.status_code == 416:
            return b""
        raise_for(resp, path, "GET")
        return resp.content

    def write(self, path: str, data: bytes) -> None:
        raise_for(self.dav.request("PUT", path, data=data), path, "PUT")

    def mkdir(self, path: str) -> None:
        raise_for(self.dav.request("MKCOL", path), path, "MKCOL")

    def remove(self, path: str) -> None:
        if self.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        raise_for(self.dav.request("DELETE", path), path, "DELETE")

    def rmdir(self, path: str) -> None:
        # DELETE of a collection is always recursive: check emptiness first,
        # as davfs2 does for rmdir(2).
        if self.listdir(path):
            raise OSError(errno.ENOTEMPTY, "directory not empty", path)
        raise_for(self.dav.request("DELETE", path), path, "DELETE")

    def rename(self, src: str, dst: str) -> None:
        resp = self.dav.request("MOVE", src, headers={
            "Destination": self.dav.url(dst), "Overwrite": "T"})
        raise_for(resp, src, "MOVE")
