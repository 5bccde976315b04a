"""The hierarchy contract's ``FsClient`` (read side) spoken through the REST API.

REST has no directory tree of its own: a path is resolved with
``GET resource/lookup?path=...`` (Girder's path utility, which never collapses
an item), and every lookup is checked back with ``GET resource/{id}/path``. The
adapter then lays the documents out as the hierarchy view does (ARCHITECTURE.md
section 4, the "natural" layout): an item holding exactly one file of its own
name is a file, any other item is a directory of its files; names are written
with Girder's codec (``/`` as ``\\-``, ``\\`` as ``\\\\``), re-implemented here so
that the server's codec is checked, not reused. ``/``, ``/user`` and
``/collection`` are not REST resources: they come from ``GET user`` and
``GET collection``.

Only reads: REST writes by id (``POST file``, ``PUT item/{id}``), not by path,
so the contract's by-path write cases do not apply (see test_rest_contract.py).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

import requests

PAGE = 200
MAX_PAGES = 50  # a listing longer than 10 000 entries is a bug in these small worlds


def encode(name: str) -> str:
    """Girder's name codec: backslashes doubled first, then ``/`` as ``\\-``."""
    return name.replace("\\", "\\\\").replace("/", "\\-")


@dataclass(frozen=True)
class RestNode:
    """What a path names, as the REST API shows it."""

    model: str  # root, users, collections, user, collection, folder, item, file
    doc: dict[str, Any] = field(default_factory=dict)
    files: tuple[dict[str, Any], ...] = ()  # an item's files

    @property
    def file_shaped(self) -> bool:
        """An item shown as a plain file: one file, named like the item."""
        return (self.model == "item" and len(self.files) == 1
                and self.files[0]["name"] == self.doc["name"])

    @property
    def is_dir(self) -> bool:
        return self.model != "file" and not self.file_shaped

    @property
    def file(self) -> dict[str, Any]:
        """The file document holding the bytes of a file-like node."""
        if self.model == "file":
            return self.doc
        if self.file_shaped:
            return self.files[0]
        raise IsADirectoryError(errno.EISDIR, "is a directory", self.doc.get("name"))


class RestFs:
    """``FsClient`` over a REST session (``Girder-Token`` set, or anonymous)."""

    def __init__(self, api: str, session: requests.Session) -> None:
        self.api = api.rstrip("/") + "/"
        self.session = session

    # ------------------------------------------------------------ requests
    def _get(self, route: str, shown: str, **params: Any) -> requests.Response:
        reply = self.session.get(self.api + route, params=params, timeout=30)
        if reply.status_code in (401, 403):
            raise PermissionError(errno.EACCES, f"GET {route}: {reply.status_code}", shown)
        if reply.status_code == 400 and reply.json().get("message", "").startswith(
                "Path not found"):
            raise FileNotFoundError(errno.ENOENT, f"GET {route}: {reply.text}", shown)
        if reply.status_code != 200:
            raise OSError(errno.EIO, f"GET {route}: {reply.status_code} {reply.text[:200]}",
                          shown)
        return reply

    def _pages(self, route: str, shown: str, **params: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            batch = self._get(route, shown, limit=PAGE, offset=page * PAGE, **params).json()
            found.extend(batch)
            if len(batch) < PAGE:
                return found
        raise AssertionError(f"GET {route} did not end within {MAX_PAGES} pages")

    # ------------------------------------------------------------ resolving
    def node(self, path: str) -> RestNode:
        virtual = {"/": "root", "/user": "users", "/collection": "collections"}
        if path in virtual:
            return RestNode(virtual[path])
        doc = self._get("resource/lookup", path, path=path).json()
        model = doc["_modelType"]
        # The way back: the id's path is the path looked up (lookup and path
        # must agree, or a client that stores paths loses its data).
        back = self._get(f"resource/{doc['_id']}/path", path, type=model).json()
        assert back == path.rstrip("/"), (path, back)
        files: tuple[dict[str, Any], ...] = ()
        if model == "item":
            files = tuple(self._pages(f"item/{doc['_id']}/files", path))
        return RestNode(model, doc, files)

    # ------------------------------------------------------------ FsClient
    def listdir(self, path: str) -> list[str]:
        node = self.node(path)
        if node.model == "root":
            return ["collection", "user"]
        if node.model == "users":
            return [encode(user["login"]) for user in self._pages("user", path)]
        if node.model == "collections":
            return [encode(coll["name"]) for coll in self._pages("collection", path)]
        if not node.is_dir:
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
        if node.model == "item":
            return [encode(f["name"]) for f in node.files]
        folders = self._pages("folder", path, parentType=node.model, parentId=node.doc["_id"])
        names = [encode(f["name"]) for f in folders]
        if node.model == "folder":
            names += [encode(i["name"]) for i in self._pages("item", path,
                                                                  folderId=node.doc["_id"])]
        return names

    def isdir(self, path: str) -> bool:
        return self.node(path).is_dir

    def size(self, path: str) -> int:
        node = self.node(path)
        return 0 if node.is_dir else int(node.file["size"])

    def read(self, path: str, offset: int = 0, size: int | None = None) -> bytes:
        file = self.node(path).file
        total = int(file["size"])
        if offset >= total or size == 0:
            return b""
        end = total - 1 if size is None else min(total, offset + size) - 1
        whole = offset == 0 and end == total - 1
        headers = {} if whole else {"Range": f"bytes={offset}-{end}"}
        reply = self.session.get(self.api + f"file/{file['_id']}/download", timeout=30,
                                 headers=headers)
        if reply.status_code != (200 if whole else 206):
            raise OSError(errno.EIO, f"download: {reply.status_code}", path)
        return reply.content

def login_token(api: str, login: str, password: str) -> str:
    """A token from a password login (Basic auth, as girder-client does it)."""
    reply = requests.get(api.rstrip("/") + "/user/authentication", auth=(login, password),
                         timeout=30)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["authToken"]["token"])


__all__ = ["RestFs", "RestNode", "encode", "login_token"]
