"""GET and HEAD of a file, answered without wsgidav's generic path.

Every GET/HEAD of a non-collection comes here: ``Range`` and ``If-Range``
follow core's rules (``joist.core.ranges``), so WebDAV answers exactly as the
REST downloads do (wsgidav's own parser accepted invalid headers and kept
the last of several ranges). The ``If-*`` and ``If`` conditions are evaluated
with wsgidav's functions, as its own GET does. The length comes from the
opened reader, so the headers always match the bytes sent. Collections, GETs
with a body and ``Depth`` other than 0 are left to wsgidav.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from wsgidav import util
from wsgidav.dav_error import DAVError

from joist.core import ranges
from joist.core.hierarchy import Reader

from .propfind import CONDITIONAL
from .props import http_date

StartResponse = Callable[..., Any]
BLOCK_SIZE = 1 << 20


def _blocks(reader: Reader, layout: list[bytes | ranges.ByteRange]) -> Iterator[bytes]:
    return ranges.body(reader, layout, BLOCK_SIZE)


def check_conditions(provider: Any, resource: Any, environ: dict[str, Any]) -> None:
    """wsgidav's ``_evaluate_if_headers`` for a GET: raises the DAVError (304
    or 412) a failed ``If-*`` or ``If`` condition calls for."""
    util.parse_if_header_dict(environ)
    modified = resource.get_last_modified()
    last_modified = int(modified) if modified is not None else -1
    etag = resource.get_etag() or "[]"
    if any(h in environ for h in CONDITIONAL if h != "HTTP_IF"):
        util.evaluate_http_conditionals(resource, last_modified, etag, environ)
    if "HTTP_IF" not in environ:
        return
    ref_url = resource.get_ref_url()
    tokens: list[str] = []
    if provider.lock_manager is not None:
        tokens = [lock["token"] for lock in provider.lock_manager.get_indirect_url_lock_list(
            ref_url, principal=environ.get("wsgidav.user_name", ""))]
    if not util.test_if_header_dict(resource, environ["wsgidav.conditions.if"], ref_url,
                                    tokens, etag):
        raise DAVError(412, "'If' header condition failed.")


def handle_get(provider: Any, environ: dict[str, Any], start_response: StartResponse
               ) -> Iterable[bytes] | None:
    """The response, or None when wsgidav should answer."""
    if environ.get("CONTENT_LENGTH") not in (None, "", "0"):
        return None
    if environ.get("HTTP_DEPTH", "0") != "0":
        return None
    resource = provider.get_resource_inst(environ["PATH_INFO"], environ)
    if resource is None or resource.is_collection:
        return None
    if any(h in environ for h in CONDITIONAL):
        check_conditions(provider, resource, environ)
    return answer(environ, start_response, resource, resource.get_content())


def answer(environ: dict[str, Any], start_response: StartResponse, resource: Any,
           reader: Reader) -> Iterable[bytes]:
    """The response for an opened file (``reader`` is closed by it, or here
    on failure)."""
    try:
        return _answer(environ, start_response, resource, reader)
    except BaseException:
        reader.close()
        raise


def _answer(environ: dict[str, Any], start_response: StartResponse, resource: Any,
            reader: Reader) -> Iterable[bytes]:
    node = resource.node
    size = reader.size
    etag = f'"{node.etag}"' if node.etag else None
    selection = ranges.select(environ.get("HTTP_RANGE"), size,
                              if_range=environ.get("HTTP_IF_RANGE"), etag=etag,
                              last_modified=node.mtime or None)
    headers = [("Accept-Ranges", "bytes")]
    if selection.status == ranges.UNSATISFIABLE:  # as REST answers it
        reader.close()
        start_response("416 Range Not Satisfiable",
                       [*headers, ("Content-Range", selection.unsatisfied_range()),
                        ("Content-Length", "0")])
        return [b""]
    if node.mtime:
        headers.append(("Last-Modified", http_date(node.mtime)))
    if etag:
        headers.append(("ETag", etag))
    content_type = resource.get_content_type()
    layout: list[bytes | ranges.ByteRange]
    if selection.multipart:
        boundary = ranges.make_boundary()
        layout = ranges.multipart_layout(selection, content_type, boundary)
        headers += [("Content-Type", ranges.multipart_type(boundary)),
                    ("Content-Length", str(ranges.layout_length(layout)))]
        status = "206 Partial Content"
    elif selection.status == ranges.PARTIAL:
        part = selection.ranges[0]
        layout = [part]
        headers += [("Content-Type", content_type), ("Content-Length", str(part.length)),
                    ("Content-Range", part.content_range(size))]
        status = "206 Partial Content"
    else:
        layout = [ranges.ByteRange(0, size)]
        headers += [("Content-Type", content_type), ("Content-Length", str(size))]
        status = "200 OK"
    start_response(status, headers)
    if environ["REQUEST_METHOD"] == "HEAD":
        reader.close()
        return [b""]
    return _blocks(reader, layout)
