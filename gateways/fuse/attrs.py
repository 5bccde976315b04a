"""``Node`` -> stat fields, inode numbers and extended attributes.

Only a ``Node`` is read here: the gateway formats what core decided. Modes
show what the mount's principal may do (writable bits only on a ``--rw``
mount where the principal has WRITE); core checks every call regardless, the
kernel's ``default_permissions`` is not used.
"""

from __future__ import annotations

import hashlib
import json
import stat
from typing import Any

from joist.core import validation
from joist.core.hierarchy import Node

XATTR_PREFIX = "user.joist."
XATTR_SHA512 = XATTR_PREFIX + "sha512"
XATTR_ID = XATTR_PREFIX + "id"
XATTR_META = XATTR_PREFIX + "meta."

BLOCK = 1 << 20  # st_blksize: readers size their buffers from it (cat, cp, dd)
FIXED_INODES = {"root": 1, "users": 2, "collections": 3}
STATS_INODE = 4


def inode(node: Node) -> int:
    """A stable 63-bit inode number from the node's ids (never 0..15)."""
    fixed = FIXED_INODES.get(node.kind)
    if fixed is not None:
        return fixed
    key = f"{node.kind}:{node.ref}:{node.file_id}".encode()
    number = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
    return (number >> 1) | 16


def path_inode(path: str) -> int:
    """An inode number for a file that exists only in this mount so far (being
    written, not yet committed)."""
    number = int.from_bytes(hashlib.blake2b(path.encode("utf-8", "surrogateescape"),
                                            digest_size=8).digest(), "little")
    return (number >> 1) | 16


def version(node: Node) -> tuple[Any, ...]:
    """What identifies a file's bytes: any change means new content."""
    return (node.file_id, node.etag, node.size)


def is_link(node: Node) -> bool:
    return not node.is_dir and bool(node.link_url)


def _ns(seconds: float) -> int:
    return round(seconds * 1000) * 1_000_000  # stored times are milliseconds


def node_attrs(node: Node, *, writable: bool, uid: int, gid: int) -> dict[str, Any]:
    """A stat dict for mfusepy (times in nanoseconds: ``use_ns``)."""
    if node.is_dir:
        mode = stat.S_IFDIR | (0o755 if writable else 0o555)
        size = 0
    elif is_link(node):
        mode = stat.S_IFLNK | 0o777
        size = len(str(node.link_url).encode())
    else:
        mode = stat.S_IFREG | (0o644 if writable else 0o444)
        size = node.size
    mtime = _ns(node.mtime)
    return {
        "st_mode": mode, "st_ino": inode(node), "st_nlink": 1, "st_uid": uid, "st_gid": gid,
        "st_size": size, "st_blocks": (size + 511) // 512, "st_blksize": BLOCK,
        "st_mtime": mtime, "st_atime": mtime, "st_ctime": _ns(node.ctime or node.mtime),
    }


def file_attrs(size: int, *, writable: bool, uid: int, gid: int, ino: int,
               mtime_ns: int) -> dict[str, Any]:
    """Attributes of something that is only a file of the gateway (the stats
    file, a file being written)."""
    return {
        "st_mode": stat.S_IFREG | (0o644 if writable else 0o444), "st_ino": ino,
        "st_nlink": 1, "st_uid": uid, "st_gid": gid, "st_size": size,
        "st_blocks": (size + 511) // 512, "st_blksize": BLOCK, "st_mtime": mtime_ns,
        "st_atime": mtime_ns, "st_ctime": mtime_ns,
    }


def xattr_names(node: Node) -> list[str]:
    names = []
    if node.ref is not None:
        names.append(XATTR_ID)
    if node.sha512:
        names.append(XATTR_SHA512)
    names.extend(XATTR_META + key for key in sorted(node.meta))
    return names


def xattr_value(node: Node, name: str) -> bytes | None:
    """The value of one attribute, or None when the node has no such attribute."""
    if name == XATTR_SHA512:
        return node.sha512.encode() if node.sha512 else None
    if name == XATTR_ID:
        return str(node.ref).encode() if node.ref is not None else None
    if name.startswith(XATTR_META):
        key = name[len(XATTR_META):]
        if key not in node.meta:
            return None
        value = node.meta[key]
        # Strings as they are (what `getfattr` users expect); anything else as JSON.
        return value.encode() if isinstance(value, str) else \
            json.dumps(value, sort_keys=True, default=str).encode()
    return None


def parse_meta_value(raw: bytes) -> Any:
    """``setxattr user.joist.meta.KEY``: JSON when it parses, else the text."""
    text = raw.decode("utf-8", "surrogateescape")
    try:
        return validation.loads_json(text)
    except ValueError:
        return text


__all__ = ["BLOCK", "STATS_INODE", "XATTR_ID", "XATTR_META", "XATTR_PREFIX", "XATTR_SHA512",
           "file_attrs", "inode", "is_link", "node_attrs", "parse_meta_value", "path_inode",
           "version",
           "xattr_names", "xattr_value"]
