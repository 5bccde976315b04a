"""Path syntax and the name codec shared by every gateway.

Paths look like Girder's: ``/user/<login>/<folder>/.../<item>[/<file>]`` and
``/collection/<name>/...``. Inside a segment a ``/`` of the name is written
``\\-`` and a ``\\`` as ``\\\\`` (Girder's codec). Decoding scans left to right,
so unlike Girder's two ``replace`` calls it is lossless (``a\\-b`` survives a
round trip) while decoding every name Girder encodes the same way.
"""

from __future__ import annotations

from ..errors import InvalidPathError

MAX_PATH_BYTES = 8192
ROOT = "/"
USERS = "user"
COLLECTIONS = "collection"


def encode_name(name: str) -> str:
    return name.replace("\\", "\\\\").replace("/", "\\-")


def decode_name(segment: str) -> str:
    if "\\" not in segment:
        return segment
    out: list[str] = []
    i, n = 0, len(segment)
    while i < n:
        ch = segment[i]
        if ch == "\\" and i + 1 < n:
            nxt = segment[i + 1]
            if nxt == "\\":
                out.append("\\")
                i += 2
                continue
            if nxt in "-/":
                out.append("/")
                i += 2
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def _raw_segments(path: str) -> list[str]:
    """Split on ``/`` except where an odd run of backslashes escapes it."""
    if "\\" not in path:
        return path.split("/")
    segments: list[str] = []
    current: list[str] = []
    backslashes = 0
    for ch in path:
        if ch == "/" and backslashes % 2 == 0:
            segments.append("".join(current))
            current = []
        else:
            current.append(ch)
        backslashes = backslashes + 1 if ch == "\\" else 0
    segments.append("".join(current))
    return segments


def split_path(path: str) -> list[str]:
    """Decoded names of an absolute path, with ``.``, ``..`` and empty segments
    resolved lexically (never above ``/``), as SFTP's realpath and a mount do."""
    if not isinstance(path, str):
        raise InvalidPathError("Path must be a string.")
    if "\x00" in path:
        raise InvalidPathError("Path must not contain NUL characters.")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidPathError("Path is too long.")
    names: list[str] = []
    for raw in _raw_segments(path):
        if raw in ("", "."):
            continue
        if raw == "..":
            if names:
                names.pop()
            continue
        names.append(decode_name(raw))
    return names


def join_path(names: list[str] | tuple[str, ...]) -> str:
    return "/" + "/".join(encode_name(n) for n in names)


def normalize(path: str) -> str:
    """The canonical form of ``path`` (what ``stat`` reports back)."""
    return join_path(split_path(path))


def parent_and_name(path: str) -> tuple[list[str], str]:
    names = split_path(path)
    if not names:
        raise InvalidPathError("The root has no parent.")
    return names[:-1], names[-1]
