"""``Node``: what every gateway knows about one entry of the tree.

Gateways build st_mode, SFTP attributes and DAV properties from a Node only.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bson import ObjectId

from ..acl import AccessLevel
from .paths import encode_name


class NodeKind(StrEnum):
    """Kinds of node. A one-file item shown as a plain file (natural layout)
    has kind ``ITEM`` and is_dir False; a file inside an item directory has
    kind ``FILE``. Members are strings, equal to Girder's model names."""

    ROOT = "root"
    USERS = "users"
    COLLECTIONS = "collections"
    USER = "user"
    COLLECTION = "collection"
    FOLDER = "folder"
    ITEM = "item"
    FILE = "file"


ROOT, USERS, COLLECTIONS = NodeKind.ROOT, NodeKind.USERS, NodeKind.COLLECTIONS
USER, COLLECTION, FOLDER = NodeKind.USER, NodeKind.COLLECTION, NodeKind.FOLDER
ITEM, FILE = NodeKind.ITEM, NodeKind.FILE
VIRTUAL_KINDS = (ROOT, USERS, COLLECTIONS)  # made of no document; nothing writes them
CONTAINER_KINDS = (ROOT, USERS, COLLECTIONS, USER, COLLECTION, FOLDER)


def epoch(value: Any) -> float:
    """Seconds since the epoch of a stored (UTC) datetime; 0 when unknown."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        return value.timestamp()
    return 0.0


@dataclass(frozen=True)
class Node:
    path: str
    name: str
    kind: NodeKind
    is_dir: bool
    size: int = 0
    mtime: float = 0.0
    ctime: float = 0.0
    mime_type: str | None = None
    etag: str | None = None
    sha512: str | None = None
    ref: ObjectId | None = None        # id of the document of ``kind``
    file_id: ObjectId | None = None    # the file whose bytes a file node reads
    item_id: ObjectId | None = None    # the item holding that file
    level: AccessLevel = AccessLevel.READ
    link_url: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def segment(self) -> str:
        """The name as it appears in a path (``/`` and ``\\`` escaped): what a
        gateway lists, since a filesystem name cannot hold ``/``."""
        return encode_name(self.name)

    @property
    def is_file(self) -> bool:
        return not self.is_dir

    @property
    def writable(self) -> bool:
        return self.level >= AccessLevel.WRITE


@dataclass(frozen=True)
class FsStats:
    """Capacity of the store behind a view (from the current assetstore)."""

    total: int | None
    free: int | None
    used: int | None
    block_size: int = 4096
    max_name: int = 255


def file_etag(file: dict[str, Any]) -> str:
    """Strong validator: the content hash when known, else id/size/time."""
    if file.get("sha512"):
        return str(file["sha512"])[:40]
    stamp = int(epoch(file.get("created")) * 1000)
    return f"{file['_id']}-{file.get('size', 0)}-{stamp}"
