"""PROPFIND with a serializer of our own.

wsgidav builds the whole multistatus as an ElementTree and serializes it: for
a folder of thousands of entries that is most of the time of the request.
Here the request is parsed as wsgidav does (same rules, same 400s), the
properties come from the same resource methods, and each ``<response>`` is
written as text straight away. Requests with conditional headers (``If``,
``If-Match``...) are left to wsgidav, which evaluates them.
"""

from __future__ import annotations

import io
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from wsgidav import util
from wsgidav.dav_error import DAVError, get_http_status_string

from .props import LIVE, LOCK_PROPS, http_date, iso_date

StartResponse = Callable[..., Any]
SPOOL_MAX = 4 << 20  # bytes of body kept in memory before it goes to a temporary file
CHUNK = 256 << 10

CONDITIONAL = ("HTTP_IF", "HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE",
               "HTTP_IF_UNMODIFIED_SINCE")
HEAD = '<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">'
TAIL = "</D:multistatus>"
COLLECTION_TYPE = "<D:resourcetype><D:collection/></D:resourcetype>"
# The lock manager offers exclusive and shared write locks on every resource.
SUPPORTED_LOCK = "<D:supportedlock>" + "".join(
    f"<D:lockentry><D:lockscope><D:{scope}/></D:lockscope>"
    "<D:locktype><D:write/></D:locktype></D:lockentry>"
    for scope in ("exclusive", "shared")) + "</D:supportedlock>"
EMPTY_LOCKDISCOVERY = "<D:lockdiscovery/>"
_SUPPORTED = ET.Element("{DAV:}supportedlock")  # rendered as SUPPORTED_LOCK
_NOT_FOUND = DAVError(404)


def wants_default(environ: dict[str, Any]) -> bool:
    return any(h in environ for h in CONDITIONAL)


def parse_request(environ: dict[str, Any]) -> tuple[str, list[str] | None]:
    """(mode, names) of a PROPFIND body, with wsgidav's rules."""
    request = util.parse_xml_body(environ, allow_empty=True)
    if request is None:  # an empty body asks for all properties
        return "allprop", None
    if request.tag != "{DAV:}propfind":
        raise DAVError(400, "Expected a DAV:propfind element.")
    mode: str | None = None
    names: list[str] = []
    for node in request:
        if node.tag == "{DAV:}allprop":
            if mode:
                raise DAVError(400, "allprop, propname and prop are exclusive.")
            mode = "allprop"
        elif node.tag == "{DAV:}propname":
            if mode:
                raise DAVError(400, "allprop, propname and prop are exclusive.")
            mode = "name"
        elif node.tag == "{DAV:}prop":
            if mode not in (None, "named"):
                raise DAVError(400, "allprop, propname and prop are exclusive.")
            mode = "named"
            names.extend(child.tag for child in node)
    if mode is None:
        # A propfind element with nothing we know (RFC 4918 14.20 needs one).
        raise DAVError(400, "Expected allprop, propname or prop.")
    return mode, (names if mode == "named" else None)


def _tag(name: str) -> tuple[str, str]:
    """(qualified tag, namespace declaration) for a Clark name."""
    if name.startswith("{"):
        ns, local = name[1:].split("}", 1)
        if ns == "DAV:":
            return "D:" + local, ""
        return "j:" + local, " xmlns:j=" + quoteattr(ns)
    return name, ""


def render_prop(name: str, value: Any) -> str:
    if name == "{DAV:}resourcetype" and isinstance(value, ET.Element):
        return COLLECTION_TYPE if len(value) else "<D:resourcetype/>"
    if name == "{DAV:}supportedlock" and isinstance(value, ET.Element):
        return SUPPORTED_LOCK
    if isinstance(value, ET.Element):
        return ET.tostring(value, encoding="unicode")
    tag, decl = _tag(name)
    if value is None or value == "":
        return f"<{tag}{decl}/>"
    return f"<{tag}{decl}>{escape(str(value))}</{tag}>"


def render_response(href: str, props: list[tuple[str, Any]]) -> str:
    groups: dict[str, list[str]] = {}
    for name, value in props:
        if isinstance(value, DAVError):
            groups.setdefault(get_http_status_string(value), []).append(render_prop(name, None))
        else:
            groups.setdefault("200 OK", []).append(render_prop(name, value))
    parts = [f"<D:response><D:href>{escape(href)}</D:href>"]
    for status, rendered in groups.items():
        parts.append(f"<D:propstat><D:prop>{''.join(rendered)}</D:prop>"
                     f"<D:status>HTTP/1.1 {status}</D:status></D:propstat>")
    parts.append("</D:response>")
    return "".join(parts)


def _live(node: Any) -> list[str]:
    """The live properties ``allprop`` lists for a node."""
    parts = [COLLECTION_TYPE if node.is_dir else "<D:resourcetype/>",
             f"<D:displayname>{escape(node.name or '/')}</D:displayname>"]
    if node.ctime:
        parts.append(f"<D:creationdate>{iso_date(node.ctime)}</D:creationdate>")
    if node.mtime:
        parts.append("<D:getlastmodified>"
                     f"{http_date(node.mtime)}</D:getlastmodified>")
    if not node.is_dir:
        parts.append(f"<D:getcontentlength>{node.size}</D:getcontentlength>"
                     f"<D:getcontenttype>"
                     f"{escape(node.mime_type or 'application/octet-stream')}"
                     f"</D:getcontenttype>")
        if node.etag:
            parts.append(f'<D:getetag>"{escape(node.etag)}"</D:getetag>')
    return parts


def _response(href: str, parts: list[str]) -> str:
    return (f"<D:response><D:href>{escape(href)}</D:href><D:propstat><D:prop>"
            f"{''.join(parts)}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
            "</D:response>")


def render_allprop(member: Any) -> str:
    """``allprop`` for one of our resources, written straight from its node
    (the same values ``get_properties("allprop")`` gives, without the calls)."""
    node = member.node
    parts = _live(node)
    if member.provider.lock_manager is not None:
        parts.append(render_prop("{DAV:}lockdiscovery",
                                 member.get_property_value("{DAV:}lockdiscovery")))
        parts.append(SUPPORTED_LOCK)
    if node.meta:  # metadata and other dead properties
        for name in member.get_property_names(is_allprop=True):
            if not name.startswith("{DAV:}"):
                parts.append(render_prop(name, member.get_property_value(name)))
    return _response(member.get_href(), parts)


def render_plain(node: Any, href: str, *, lockable: bool) -> str:
    """``render_allprop`` of a member with no metadata and no lock of its own
    (the locks below the collection were fetched with the listing)."""
    parts = _live(node)
    if lockable:
        parts.append(EMPTY_LOCKDISCOVERY)
        parts.append(SUPPORTED_LOCK)
    return _response(href, parts)


def _allprop_members(provider: Any, collection: Any) -> Iterator[str]:
    """The members of a depth-1 ``allprop``, most of them straight from the
    listing's nodes; a member with metadata or a lock is rendered from its
    resource."""
    ctx = provider.context(collection.environ)
    lockable = provider.lock_manager is not None
    share = provider.share_path or ""
    for node, href in collection.iter_member_nodes():
        if node.meta or (ctx.locks_below and quote(share + node.path) in ctx.locks_below):
            yield render_allprop(collection.member(node, href))
        else:
            yield render_plain(node, href, lockable=lockable)


def _named_members(provider: Any, collection: Any, names: list[str]) -> Iterator[str]:
    """The members of a depth-1 PROPFIND of named properties: when they are
    all live ones (what file managers, davfs2 and rclone ask for), straight
    from the listing's nodes with the resource's own value functions."""
    lockable = provider.lock_manager is not None
    known = set(LIVE) | (set(LOCK_PROPS) if lockable else set())
    if not all(name in known for name in names):  # quota, metadata, other namespaces
        for node, href in collection.iter_member_nodes():
            yield render_response(href, collection.member(node, href).get_properties(
                "named", name_list=names))
        return
    ctx = provider.context(collection.environ)
    share = provider.share_path or ""
    for node, href in collection.iter_member_nodes():
        if ctx.locks_below and quote(share + node.path) in ctx.locks_below:
            yield render_response(href, collection.member(node, href).get_properties(
                "named", name_list=names))
            continue
        props: list[tuple[str, Any]] = []
        for name in names:
            live = LIVE.get(name)
            if live is not None:
                value = live(node)
                props.append((name, _NOT_FOUND if value is None else value))
            else:  # lockdiscovery (no lock here) or supportedlock
                props.append((name, None if name == LOCK_PROPS[0] else _SUPPORTED))
        yield render_response(href, props)


def _responses(provider: Any, resource: Any, depth: str, mode: str,
               names: list[str] | None) -> Iterator[str]:
    """The ``<response>`` of the resource, then of each member (depth 1)."""
    yield render_allprop(resource) if mode == "allprop" and hasattr(resource, "node") \
        else render_response(resource.get_href(), resource.get_properties(
            mode, name_list=names))
    if depth != "1" or not resource.is_collection:
        return
    if mode == "allprop" and hasattr(resource, "iter_member_nodes"):
        yield from _allprop_members(provider, resource)
        return
    if mode == "named" and names is not None and hasattr(resource, "iter_member_nodes"):
        yield from _named_members(provider, resource, names)
        return
    for member in (resource.iter_members() if hasattr(resource, "iter_members")
                   else resource.get_member_list()):
        if mode == "allprop" and hasattr(member, "node"):
            yield render_allprop(member)
        else:
            yield render_response(member.get_href(), member.get_properties(
                mode, name_list=names))


def handle_propfind(provider: Any, environ: dict[str, Any], start_response: StartResponse
                    ) -> Iterable[bytes]:
    depth = environ.get("HTTP_DEPTH", "infinity")
    if depth not in ("0", "1"):
        raise DAVError(400, f"Invalid Depth header: {depth!r}.")
    resource = provider.get_resource_inst(environ["PATH_INFO"], environ)
    if resource is None:
        raise DAVError(404)
    mode, names = parse_request(environ)
    # The body goes to a spooled file as it is rendered (memory up to SPOOL_MAX,
    # then disk): a depth-1 PROPFIND of 100,000 entries is 60 MiB of XML, which
    # held as strings, joined and encoded costed several times that in RSS.
    # Rendering completes before the status is sent, so an error is still a
    # proper error response, and the length is known.
    body = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX)  # noqa: SIM115 - closed by _Body
    try:
        out = io.TextIOWrapper(body, encoding="utf-8", write_through=False)
        out.write(HEAD)
        for text in _responses(provider, resource, depth, mode, names):
            out.write(text)
        out.write(TAIL)
        out.flush()
        out.detach()
        size = body.tell()
        body.seek(0)
    except BaseException:
        body.close()
        raise
    start_response("207 Multi-Status", [("Content-Type", "application/xml; charset=utf-8"),
                                        ("Content-Length", str(size))])
    return _Body(body)


class _Body:
    """A WSGI response iterable over the spooled body; the server closes it."""

    def __init__(self, file: Any) -> None:
        self.file = file

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.file.read(CHUNK), b"")

    def close(self) -> None:
        self.file.close()
