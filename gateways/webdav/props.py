"""Properties of a resource: live ones from the ``Node``, quota from
``statfs``, item metadata as dead properties in the Joist namespace, and
other clients' dead properties.

Metadata key ``k`` of an item, folder or collection is the property
``{urn:joist:meta}k``; a key that is not an XML name is escaped the way
``XmlConvert.EncodeName`` does (``_xHHHH_``). A string value is the element's
text; any other JSON value is its JSON text with ``joist:type="json"``.
PROPPATCH writes metadata back with the same rules. Dead properties in any
other namespace are kept in the metadata too, under ``DEAD_KEY``, as a list of
``[clark-name, xml]`` pairs, so they move, copy and vanish with the resource.
Each PROPPATCH is applied with one metadata write: all of it or none.
"""

from __future__ import annotations

import functools
import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from wsgidav import util, xml_tools
from wsgidav.dav_error import DAVError

from joist.core import validation

from .errors import translate

JOIST_NS = "urn:joist:meta"
TYPE_ATTR = f"{{{JOIST_NS}}}type"
DEAD_KEY = "webdav:properties"
META_KINDS = ("item", "folder", "collection")
LOCK_PROPS = ("{DAV:}lockdiscovery", "{DAV:}supportedlock")
QUOTA_PROPS = ("{DAV:}quota-used-bytes", "{DAV:}quota-available-bytes")
MS_PREFIX = "{urn:schemas-microsoft-com:}"

# A folder is listed again and again (file managers, PROPFIND after each
# change): its members' dates are formatted once. wsgidav's functions,
# memoised on the timestamp (bounded: under 2 MiB each when full).
http_date = functools.lru_cache(maxsize=8192)(util.get_rfc1123_time)
iso_date = functools.lru_cache(maxsize=8192)(util.get_rfc3339_time)

_START = ("A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff"
          "\u200c-\u200d\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd")
_NAME_CHAR = re.compile(f"[{_START}\\-.0-9\u00b7\u0300-\u036f\u203f-\u2040]")
_START_CHAR = re.compile(f"[{_START}]")
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4}|[0-9A-Fa-f]{8})_")


def encode_key(key: str) -> str:
    """A metadata key as an XML local name (``_xHHHH_`` for what cannot be one)."""
    out: list[str] = []
    for i, ch in enumerate(key):
        ok = (_START_CHAR if i == 0 else _NAME_CHAR).fullmatch(ch)
        if ok and not (ch == "_" and _ESCAPE.match(key, i)):
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"_x{code:04X}_" if code <= 0xFFFF else f"_x{code:08X}_")
    return "".join(out)


def decode_key(name: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name)


def meta_value(value: Any) -> Any:
    """A metadata value as a property value (text, or an element for JSON)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def parse_meta(element: ET.Element) -> Any:
    text = "".join(element.itertext()) if len(element) else (element.text or "")
    if element.get(TYPE_ATTR) == "json":
        try:
            return validation.loads_json(text)
        except ValueError:
            raise DAVError(400, "The value is not valid JSON.") from None
    return text


class PropertiesMixin:
    """Property handling shared by collections and non-collections; the
    resource provides ``node``, ``ctx`` and wsgidav's resource API."""

    node: Any
    ctx: Any
    environ: dict[str, Any]
    is_collection: bool
    provider: Any

    # ------------------------------------------------------------ names
    def get_property_names(self, *, is_allprop: bool) -> list[str]:
        node = self.node
        names = ["{DAV:}resourcetype", "{DAV:}displayname"]
        if node.ctime:
            names.append("{DAV:}creationdate")
        if node.mtime:
            names.append("{DAV:}getlastmodified")
        if not node.is_dir:
            names += ["{DAV:}getcontentlength", "{DAV:}getcontenttype", "{DAV:}getetag"]
        if self.provider.lock_manager is not None:
            names += LOCK_PROPS
        if node.is_dir and not is_allprop:  # RFC 4331: not part of allprop
            names += QUOTA_PROPS
        meta = node.meta
        names += [f"{{{JOIST_NS}}}{encode_key(k)}" for k in meta if k != DEAD_KEY]
        names += [pair[0] for pair in meta.get(DEAD_KEY) or () if _is_pair(pair)]
        return names

    # ------------------------------------------------------------ values
    def get_property_value(self, name: str) -> Any:
        live = LIVE.get(name)
        if live is not None:
            value = live(self.node)
            if value is None:
                raise DAVError(404)
            return value
        if name == "{DAV:}lockdiscovery":
            return self._lockdiscovery(name)
        if name in QUOTA_PROPS and self.node.is_dir:
            stats = self.ctx.statfs(self.node.path)
            value = stats.used if name == QUOTA_PROPS[0] else stats.free
            if value is None:
                raise DAVError(404)
            return str(value)
        if name.startswith(f"{{{JOIST_NS}}}"):
            key = decode_key(name[len(JOIST_NS) + 2:])
            if key == DEAD_KEY or key not in self.node.meta:
                raise DAVError(404)
            value = self.node.meta[key]
            if isinstance(value, str):
                return value
            element = ET.Element(name, {TYPE_ATTR: "json"})
            element.text = meta_value(value)
            return element
        if not name.startswith("{DAV:}"):
            for pair in self.node.meta.get(DEAD_KEY) or ():
                if _is_pair(pair) and pair[0] == name:
                    return xml_tools.string_to_xml(pair[1])
            raise DAVError(404)
        return super().get_property_value(name)  # type: ignore[misc]

    def _lockdiscovery(self, name: str) -> Any:
        # A PROPFIND of a collection fetched the locks below it in one query:
        # members without a lock need no query of their own.
        root = self.get_ref_url().rstrip("/") or "/"  # type: ignore[attr-defined]
        if self.ctx.covers(root) and root not in self.ctx.locks_below:
            return None  # an empty element
        return super().get_property_value(name)  # type: ignore[misc]

    # ------------------------------------------------------------ PROPPATCH
    def set_property_value(self, name: str, value: Any, *, dry_run: bool = False) -> Any:
        if name.startswith("{DAV:}") or name in LOCK_PROPS:
            return super().set_property_value(name, value, dry_run=dry_run)  # type: ignore[misc]
        if name.startswith(MS_PREFIX):
            return None  # Windows sends its file times after each upload: accepted, not kept
        node = self.node
        if node.kind not in META_KINDS:
            raise DAVError(403, "This resource cannot hold properties.")
        with translate(self.ctx.request_id):
            self.ctx.view.require_writable(node.path)
        batch = self.ctx.proppatch
        if dry_run:
            if name.startswith(f"{{{JOIST_NS}}}"):
                key = decode_key(name[len(JOIST_NS) + 2:])
                if key == DEAD_KEY:
                    raise DAVError(403, "This property is reserved.")
                batch.meta[key] = None if value is None else parse_meta(value)
            else:
                batch.dead[name] = None if value is None else \
                    ET.tostring(value, encoding="unicode")
            return None
        if not batch.applied:
            batch.applied = True
            try:
                with translate(self.ctx.request_id):
                    self.ctx.view.set_metadata(node.path, batch.changes(node.meta))
            except DAVError as exc:
                batch.failure = exc
        if batch.failure is not None:
            raise batch.failure
        return None


def _resourcetype(node: Any) -> Any:
    if not node.is_dir:
        return ""
    element = ET.Element("{DAV:}resourcetype")
    ET.SubElement(element, "{DAV:}collection")
    return element


# Live properties straight from the node (None: the node has no such value).
LIVE: dict[str, Any] = {
    "{DAV:}resourcetype": _resourcetype,
    "{DAV:}displayname": lambda n: n.name or "/",
    "{DAV:}creationdate": lambda n: iso_date(n.ctime) if n.ctime else None,
    "{DAV:}getlastmodified": lambda n: http_date(n.mtime) if n.mtime else None,
    "{DAV:}getcontentlength": lambda n: None if n.is_dir else str(n.size),
    "{DAV:}getcontenttype": lambda n: None if n.is_dir else
    (n.mime_type or "application/octet-stream"),
    "{DAV:}getetag": lambda n: f'"{n.etag}"' if n.etag and not n.is_dir else None,
}


def _is_pair(pair: Any) -> bool:
    return isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str)


class PropPatch:
    """The changes of one PROPPATCH, collected in its dry run."""

    def __init__(self) -> None:
        self.meta: dict[str, Any] = {}
        self.dead: dict[str, str | None] = {}
        self.applied = False
        self.failure: DAVError | None = None

    def changes(self, meta: dict[str, Any]) -> dict[str, Any]:
        out = dict(self.meta)
        if self.dead:
            pairs = {p[0]: p[1] for p in meta.get(DEAD_KEY) or () if _is_pair(p)}
            for name, xml in self.dead.items():
                if xml is None:
                    pairs.pop(name, None)
                else:
                    pairs[name] = xml
            out[DEAD_KEY] = [[k, v] for k, v in pairs.items()] or None
        return out
