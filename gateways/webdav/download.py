"""Plain GET and HEAD of a file, answered without wsgidav's generic path.

A tree walk is mostly small GETs, where wsgidav's per-request work shows. A
request with a ``Range`` or a conditional header (``If-*``), or for a
collection, is left to wsgidav, which implements those. Here the length comes
from the opened reader, so the header always matches the bytes sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from wsgidav import util

from joist.core.hierarchy import Reader

from .propfind import CONDITIONAL

StartResponse = Callable[..., Any]
BLOCK_SIZE = 1 << 20
SPECIAL = (*CONDITIONAL, "HTTP_RANGE", "HTTP_IF_RANGE")


def _blocks(reader: Reader) -> Iterator[bytes]:
    try:
        offset = 0
        for _ in range(reader.size // BLOCK_SIZE + 2):  # bounded by the size
            data = reader.read_at(offset, BLOCK_SIZE)
            if not data:
                return
            offset += len(data)
            yield data
    finally:
        reader.close()


def handle_get(provider: Any, environ: dict[str, Any], start_response: StartResponse
               ) -> Iterable[bytes] | None:
    """The response, or None when wsgidav should answer."""
    if any(h in environ for h in SPECIAL) or environ.get("CONTENT_LENGTH") not in (None, "", "0"):
        return None
    if environ.get("HTTP_DEPTH", "0") != "0":
        return None
    resource = provider.get_resource_inst(environ["PATH_INFO"], environ)
    if resource is None or resource.is_collection:
        return None
    node = resource.node
    reader = resource.get_content()
    headers = [("Content-Length", str(reader.size)),
               ("Content-Type", resource.get_content_type()), ("Accept-Ranges", "bytes")]
    if node.mtime:
        headers.append(("Last-Modified", util.get_rfc1123_time(node.mtime)))
    if node.etag:
        headers.append(("ETag", f'"{node.etag}"'))
    start_response("200 OK", headers)
    if environ["REQUEST_METHOD"] == "HEAD":
        reader.close()
        return [b""]
    return _blocks(reader)
