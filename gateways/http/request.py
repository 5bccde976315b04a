"""Parsing a WSGI request the way Girder's REST layer does.

Query-string and form-urlencoded body parameters form one namespace; a
parameter given twice is a 400; typed parameters (bool, int, JSON) are coerced
with Girder's rules and messages.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any, BinaryIO
from urllib.parse import parse_qsl

from bson import ObjectId
from bson.errors import InvalidId

from joist.core import validation
from joist.core.errors import ValidationError

from .router import Param

MAX_FORM_BYTES = 1 << 20
TRUE_WORDS = ("true", "on", "1", "yes")


class RestError(Exception):
    """A protocol-level error with Girder's status and type."""

    def __init__(self, message: str, status: int = 400, kind: str = "rest",
                 extra: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind
        self.extra = extra


@functools.lru_cache(maxsize=1024)  # header names come from code: few, looked up per request
def _environ_key(name: str) -> str:
    """Where WSGI puts the header ``name``."""
    if name.lower() == "content-type":
        return "CONTENT_TYPE"
    if name.lower() == "content-length":
        return "CONTENT_LENGTH"
    return "HTTP_" + name.upper().replace("-", "_")


class Request:
    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        override = (environ.get("HTTP_X_HTTP_METHOD_OVERRIDE") or
                    environ.get("HTTP_X_HTTP_METHOD") or environ.get("HTTP_X_METHOD_OVERRIDE"))
        if self.method == "POST" and override:
            self.method = override.upper()
        self.path = environ.get("PATH_INFO", "")
        self._params: dict[str, str] | None = None
        self._form_body: bytes | None = None
        self.authenticated = False  # someone is logged in on this request (401 vs 403)
        self.token_valid = False  # a valid token was sent (routes open to any token)
        # Why a valid token acts as anonymous here (it lacks the route's scope).
        self.scope_refusal: str | None = None

    # ------------------------------------------------------------ headers
    def header(self, name: str, default: str | None = None) -> str | None:
        value = self.environ.get(_environ_key(name))
        return default if value is None else str(value)

    @property
    def content_length(self) -> int | None:
        raw = self.environ.get("CONTENT_LENGTH")
        if raw in (None, ""):
            return None
        try:
            value = int(raw)
        except ValueError:
            raise RestError("Invalid Content-Length header.") from None
        if value < 0:
            raise RestError("Invalid Content-Length header.")
        return value

    @property
    def chunked(self) -> bool:
        return "chunked" in (self.environ.get("HTTP_TRANSFER_ENCODING") or "").lower()

    @property
    def content_type(self) -> str:
        return (self.environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()

    @property
    def has_data_body(self) -> bool:
        """A body that is data, not form parameters (Girder needs a length)."""
        length = self.content_length
        return bool(length) and self.content_type not in (
            "application/x-www-form-urlencoded", "multipart/form-data")

    @property
    def body(self) -> BinaryIO:
        return self.environ["wsgi.input"]  # type: ignore[no-any-return]

    def read_body(self, limit: int = MAX_FORM_BYTES) -> bytes:
        length = self.content_length
        stream = self.body
        if length is None:
            if not self.chunked:
                return b""
            data = stream.read(limit + 1)
        else:
            if length > limit:
                raise RestError(f"Request body too large (limit {limit} bytes).", 413)
            data = stream.read(length)
        if len(data) > limit:
            raise RestError(f"Request body too large (limit {limit} bytes).", 413)
        return data

    def json_body(self) -> Any:
        """The body as JSON, whatever the Content-Type (Girder's rule); a body
        already read as form parameters is parsed from what was read."""
        raw = self._form_body if self._form_body is not None else self.read_body()
        try:
            return validation.loads_json(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            raise RestError("Invalid JSON passed in request body.") from None

    def cookie(self, name: str) -> str | None:
        raw = self.environ.get("HTTP_COOKIE")
        if not raw:
            return None
        try:
            jar = SimpleCookie(raw)
        except CookieError:
            return None
        morsel = jar.get(name)
        return morsel.value if morsel else None

    def host(self) -> str:
        """host[:port] the client addressed (its Host header, else the server's)."""
        env = self.environ
        return env.get("HTTP_HOST") or f"{env.get('SERVER_NAME')}:{env.get('SERVER_PORT')}"

    def base_url(self) -> str:
        """scheme://host[:port] the client addressed (Girder's ``requestBase``)."""
        return f"{self.environ.get('wsgi.url_scheme', 'http')}://{self.host()}"

    def server_url(self) -> str:
        """scheme://name:port of this server as it knows itself, never the
        client's Host header: links in mail carry secrets (a forged Host would
        send a password-reset token to another site). ``core.email_host`` or
        ``core.server_root`` set the public address instead."""
        env = self.environ
        return (f"{env.get('wsgi.url_scheme', 'http')}://{env.get('SERVER_NAME')}:"
                f"{env.get('SERVER_PORT')}")

    @property
    def remote_addr(self) -> str:
        return str(self.environ.get("REMOTE_ADDR") or "")

    # ------------------------------------------------------------ params
    def params(self) -> dict[str, str]:
        """Query plus form-body parameters; repeats are refused. A form-encoded
        body is always parameters, even on routes whose body is otherwise data."""
        if self._params is not None:
            return self._params
        query = self.environ.get("QUERY_STRING", "")
        if not query and "CONTENT_TYPE" not in self.environ:  # most GETs: nothing to parse
            self._params = {}
            return self._params
        pairs = parse_qsl(query, keep_blank_values=True)
        if self.content_type == "application/x-www-form-urlencoded":
            self._form_body = self.read_body()
            pairs += parse_qsl(self._form_body.decode("utf-8", "replace"),
                               keep_blank_values=True)
        params: dict[str, str] = {}
        for key, value in pairs:
            if key in params:
                raise RestError(f'Parameter "{key}" must not be specified multiple times.')
            params[key] = value
        self._params = params
        return params


# ---------------------------------------------------------------- coercion

def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUE_WORDS


def coerce(param: Param, raw: Any) -> Any:
    """Girder's typed parameters (messages included)."""
    name, kind = param.name, param.kind
    if kind == "boolean":
        return as_bool(raw)
    if kind == "integer":
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise RestError(f"Invalid value for integer parameter {name}: {raw}.") from None
    if kind == "number":
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise RestError(f"Invalid value for numeric parameter {name}: {raw}.") from None
    if kind in ("json", "jsonObject", "jsonArray"):
        if not isinstance(raw, str):
            value = raw
        else:
            try:
                value = validation.loads_json(raw)
            except ValueError:
                raise RestError(f"Parameter {name} must be valid JSON.") from None
        if kind == "jsonObject" and not isinstance(value, Mapping):
            raise RestError(f"Parameter {name} must be a JSON object.")
        if kind == "jsonArray" and not isinstance(value, list):
            raise RestError(f"Parameter {name} must be a JSON array.")
        return value
    if kind == "objectId":
        try:
            return ObjectId(str(raw))
        except (InvalidId, TypeError):
            raise ValidationError(f"Invalid ObjectId: {raw}", field=name) from None
    value = str(raw)
    if param.strip:
        value = value.strip()
    if param.enum and value not in param.enum:
        raise RestError(f"Invalid value for {name}: \"{value}\". Allowed values: "
                        f"{', '.join(map(str, param.enum))}.")
    return value


_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


@functools.lru_cache(maxsize=1024)
def snake(name: str) -> str:
    """Wire names are Girder's camelCase (or a header's Dashed-Name); handler
    arguments are PEP 8."""
    return _CAMEL.sub(r"_\1", name).replace(".", "_").replace("-", "_").lower()


def bind(params: tuple[Param, ...], given: Mapping[str, str],
         path_values: Mapping[str, str],
         headers: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """Handler keyword arguments from declared parameters (unknown ones ignored);
    a header parameter (``Girder-OTP``) comes from ``headers``."""
    out: dict[str, Any] = {}
    for param in params:
        if param.location == "body":
            continue
        if param.location == "path":
            raw: Any = path_values.get(param.name)
        elif param.location == "header":
            raw = (headers or {}).get(param.name)
        else:
            raw = given.get(param.name)
        key = snake(param.name)
        if raw is None:
            if param.required:
                raise RestError(f"Parameter '{param.name}' is required.")
            out[key] = param.default
            continue
        out[key] = coerce(param, raw)
    return out
