"""The REST WSGI application: parse, authenticate, dispatch, format.

Every response carries ``Girder-Request-Uid``; every error is a JSON body with
``message`` and ``type``; an unexpected exception is logged with that uid and
answered 500 without a traceback.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from joist.core.acl import Principal
from joist.core.auth import scopes
from joist.core.errors import (
    AccessDeniedError,
    AuthenticationError,
    CoreError,
    UnavailableError,
)
from joist.core.hierarchy import Hierarchy
from joist.core.services import Services
from joist.core.settings import Settings

from .errors import status_for
from .filters import Filter
from .request import Request, RestError, bind
from .response import JsonWithHeaders, Page, Raw, dumps
from .router import Route, RouteTable

log = logging.getLogger("joist.http")

StartResponse = Callable[..., Any]
REASONS = {200: "OK", 206: "Partial Content", 303: "See Other", 304: "Not Modified",
           400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 412: "Precondition Failed", 413: "Payload Too Large",
           416: "Range Not Satisfiable", 423: "Locked", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable",
           507: "Insufficient Storage"}
API_PAGE = "describe"


@dataclass
class Context:
    """What a handler sees: the request, who is asking, and core."""

    request: Request
    principal: Principal
    token: str | None
    route: Route
    services: Services
    hierarchy: Hierarchy
    settings: Settings
    filter: Filter
    uid: str
    endpoints: Callable[[], dict[str, Any]] | None = None

    def user_doc(self) -> dict[str, Any]:
        return self.services.users.me(self.principal)


class RestApp:
    def __init__(self, services: Services, hierarchy: Hierarchy, settings: Settings,
                 routes: RouteTable, pages: dict[str, Callable[[Request], Raw]],
                 static: Callable[[Request, str], Raw],
                 endpoints: Callable[[], dict[str, Any]] | None = None) -> None:
        self.services = services
        self.hierarchy = hierarchy
        self.settings = settings
        self.routes = routes
        self.pages = pages
        self.static = static
        self.filter = Filter(services)
        self.endpoints = endpoints
        self._facts: dict[int, _RouteFacts] = {}  # id(route) -> what _call needs of it

    # ------------------------------------------------------------ WSGI
    def __call__(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        uid = _REQUEST_IDS.next()
        request = Request(environ)
        try:
            result, route = self._dispatch(request, uid)
            return self._render(environ, start, request, result, uid, route)
        except RestError as exc:
            body: dict[str, Any] = {"message": exc.message, "type": exc.kind}
            if exc.extra is not None:
                body["extra"] = exc.extra
            return self._error(start, exc.status, body, uid)
        except CoreError as exc:
            # 401 when nobody is logged in on this request, 403 when someone is.
            status, kind = status_for(exc, authenticated=request.authenticated)
            body = {"message": exc.message, "type": kind}
            if status == 401 and request.scope_refusal:
                # Say why the token sent did not count here.
                body["message"] = f"{exc.message} {request.scope_refusal}"
            if exc.field:
                body["field"] = exc.field
            if exc.extra is not None:
                body["extra"] = exc.extra
            if status >= 500 and not isinstance(exc, UnavailableError):
                # Server-side failures (storage) may name server paths: the
                # detail goes to the log under the request id, not to the client.
                log.error("request %s failed: %s", uid, exc.message, exc_info=exc)
                body = {"message": "The server failed to complete the request.",
                        "type": kind, "uid": uid}
            return self._error(start, status, body, uid)
        except Exception:
            log.exception("unexpected error in request %s %s %s", uid, request.method,
                          request.path)
            return self._error(start, 500, {"type": "internal", "uid": uid,
                                            "message": "An unexpected error occurred."}, uid)

    def _dispatch(self, request: Request, uid: str) -> tuple[Any, Route | None]:
        segments = [s for s in request.path.split("/") if s]
        if not segments:
            return self.pages["index"](request), None
        resource, rest = segments[0], segments[1:]
        if resource == API_PAGE and not rest:
            return self.pages[API_PAGE](request), None
        if resource == "static" and len(rest) == 2 and rest[0] == "swagger-ui" and \
                request.method in ("GET", "HEAD"):
            return self.static(request, rest[1]), None
        if resource not in self.routes.resources():
            raise RestError(f"No such resource: {resource}", 404)
        method = request.method
        if method == "OPTIONS":
            return self._preflight(request), None
        match = self.routes.match(method, resource, rest)
        if match is None and method == "HEAD":
            match = self.routes.match("GET", resource, rest)
        if match is None:
            raise RestError(f'No matching route for "{method} {"/".join(segments)}"')
        route, path_values = match
        token, principal = self._authenticate(request, route)
        ctx = Context(request, principal, token, route, self.services, self.hierarchy,
                      self.settings, self.filter, uid, self.endpoints)
        return self._call(ctx, route, path_values), route

    def _call(self, ctx: Context, route: Route, path_values: dict[str, str]) -> Any:
        """Run the handler between Girder's ``rest.<method>.<route>.before`` and
        ``.after`` events (e.g. ``rest.get.item/:id.before``), ``.failed`` when
        it raises; Girder's rules: a before handler that prevents the default
        and adds a response answers instead of the route, an after handler that
        does so replaces the result (the first response wins). The info holds
        ``params``, the path's wildcards by name, ``principal``, ``context``,
        and ``returnVal`` after. With nothing bound: a few dict lookups.

        A before handler may put another ``principal`` in the info (Girder's
        ``setCurrentUser``, e.g. ``authorized_upload`` acting for a token's
        creator); the route's access check runs after the before handlers, on
        that principal, whether or not a handler answered."""
        events = self.services.events
        request = ctx.request
        facts = self._facts.get(id(route))
        if facts is None or facts.route is not route:
            facts = self._facts[id(route)] = _RouteFacts(route)
        before, after, failed = facts.events
        info: dict[str, Any] | None = None
        answered = False
        if events.has_handlers(before):
            info = _event_info(ctx, path_values)
            event = events.trigger(before, info)
            if event.default_prevented and event.responses:
                result, answered = event.responses[0], True
            chosen = info.get("principal")
            if isinstance(chosen, Principal) and chosen is not ctx.principal:
                ctx.principal = chosen
                request.authenticated = not chosen.is_anonymous
                request.scope_refusal = None
        self._check_access(request, route, ctx.principal)
        if not answered:
            headers = {name: request.header(name) for name in facts.headers}
            try:  # bad parameters fail the route too (Girder validates inside it)
                kwargs = bind(route.params, request.params(), path_values, headers)
                result = route.handler(ctx, **kwargs)
            except Exception:
                if events.has_handlers(failed):
                    events.trigger(failed, info or _event_info(ctx, path_values))
                raise
        if events.has_handlers(after):
            info = info or _event_info(ctx, path_values)
            info["returnVal"] = result
            event = events.trigger(after, info)
            if event.default_prevented and event.responses:
                result = event.responses[0]
        return result

    def _authenticate(self, request: Request, route: Route) -> tuple[str | None, Principal]:
        """The token sent and the principal the route sees: the one choke point
        of token scopes. A token lacking the route's declared scope acts as
        anonymous (Girder's rule; ``auth.scopes`` decides what satisfies what)."""
        params = request.params()
        token = params.get("token") or request.header("Girder-Token") or \
            (request.cookie("girderToken") if route.cookie else None) or None
        held = self.services.auth.principal_for_token(token)
        principal = held.admit(route.scope)
        if principal.is_anonymous and not held.is_anonymous:
            request.scope_refusal = scopes.refusal(held.scopes, route.scope)
        request.authenticated = not principal.is_anonymous
        if route.access == "token":  # any valid token, even an anonymous session's
            request.token_valid = self.services.auth.tokens.lookup(token) is not None
        return token, principal

    @staticmethod
    def _check_access(request: Request, route: Route, principal: Principal) -> None:
        if route.access == "token":
            if not request.token_valid:
                raise AuthenticationError("You must be logged in or have a valid auth token.")
            return
        if route.access != "public" and principal.is_anonymous:
            raise AuthenticationError("You must be logged in.")
        if route.access == "admin" and not principal.is_site_admin:
            raise AccessDeniedError("Administrator access required.")

    def _preflight(self, request: Request) -> Raw:
        settings = self.services.settings
        headers = [("Access-Control-Allow-Methods", settings.get("core.cors.allow_methods")),
                   ("Access-Control-Allow-Headers", settings.get("core.cors.allow_headers"))]
        return Raw(200, headers, [b""])

    # ------------------------------------------------------------ output
    def _common_headers(self, uid: str, request: Request | None = None
                        ) -> list[tuple[str, str]]:
        headers = [("Girder-Request-Uid", uid)]
        origin = request.environ.get("HTTP_ORIGIN") if request is not None else None
        if not origin:
            return headers
        allowed = self.services.settings.get("core.cors.allow_origin")
        if allowed and (allowed == "*" or origin in [o.strip() for o in allowed.split(",")]):
            headers += [("Access-Control-Allow-Origin", origin),
                        ("Access-Control-Allow-Credentials", "true"),
                        ("Access-Control-Expose-Headers",
                         self.services.settings.get("core.cors.expose_headers"))]
        return headers

    def _render(self, environ: dict[str, Any], start: StartResponse, request: Request,
                result: Any, uid: str, route: Route | None) -> Iterable[bytes]:
        head = request.method == "HEAD"
        headers = self._common_headers(uid, request)
        if isinstance(result, Raw):
            headers += result.headers
            start(f"{result.status} {REASONS.get(result.status, '')}", headers)
            if head:
                _close(result)
                return [b""]
            return _stream(environ, result, uid)
        extra: list[tuple[str, str]] = []
        if isinstance(result, JsonWithHeaders):
            extra, result = result.headers, result.value
        if isinstance(result, Page):
            if result.total is not None:
                extra.append(("Girder-Total-Count", str(result.total)))
            result = result.items
        body = dumps(result)
        headers += [("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("Cache-Control", "no-cache"), *extra]
        start("200 OK", headers)
        return [b""] if head else [body]

    def _error(self, start: StartResponse, status: int, body: dict[str, Any],
               uid: str) -> Iterable[bytes]:
        data = dumps(body)
        start(f"{status} {REASONS.get(status, '')}",
              [*self._common_headers(uid), ("Content-Type", "application/json"),
               ("Content-Length", str(len(data)))])
        return [data]


class _RequestIds:
    """Girder-Request-Uid values: UUID-shaped, a random per-process prefix and
    a counter, unique without a ``getrandom`` call per request (``next`` on an
    ``itertools.count`` is atomic; a generator shared by threads would not be)."""

    def __init__(self) -> None:
        seed = uuid.uuid4().hex
        self._head = f"{seed[:8]}-{seed[8:12]}-4{seed[13:16]}-{seed[16:20]}-"
        self._counter = itertools.count(int(seed[20:], 16))

    def next(self) -> str:
        return f"{self._head}{next(self._counter) & 0xFFFFFFFFFFFF:012x}"


_REQUEST_IDS = _RequestIds()


class _RouteFacts:
    """What ``_call`` derives from a route, worked out once per route (by
    identity: a route's fields may not be hashable)."""

    def __init__(self, route: Route) -> None:
        self.route = route  # kept: its id is not reused while it lives
        name = f"rest.{route.method.lower()}.{route.path}"
        # Girder's events around a route: rest.<method>.<route>.before/.after/.failed
        self.events = (name + ".before", name + ".after", name + ".failed")
        self.headers = tuple(p.name for p in route.params if p.location == "header")


def _event_info(ctx: Context, path_values: dict[str, str]) -> dict[str, Any]:
    return {**path_values, "params": ctx.request.params(), "principal": ctx.principal,
            "context": ctx}


def _close(result: Raw) -> None:
    try:
        if result.file is not None:
            result.file.close()
        if result.on_close is not None:
            result.on_close()
    except Exception:  # closing must not mask the response
        log.debug("close failed", exc_info=True)


def _stream(environ: dict[str, Any], result: Raw, uid: str) -> Iterable[bytes]:
    if type(result.body) is list and result.file is None and result.on_close is None:
        return result.body  # bytes in hand (a small download): nothing to close
    wrapper = environ.get("wsgi.file_wrapper")
    if result.file is not None and wrapper is not None and result.file_range is None:
        return wrapper(result.file, 1 << 20)  # type: ignore[no-any-return]
    return _ClosingIterator(result, uid)


class _ClosingIterator:
    """Iterates a streamed body and closes its file even if the client leaves.
    A failure after the headers went out is logged with the request id; the
    server then drops the connection, so the client sees a short body."""

    def __init__(self, result: Raw, uid: str) -> None:
        self._result = result
        self._uid = uid
        self._iter: Iterator[bytes] = iter(result.iterate())

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._iter
        except Exception:
            log.exception("request %s failed while streaming its body", self._uid)
            raise

    def close(self) -> None:
        close = getattr(self._iter, "close", None)
        if close is not None:
            close()
        _close(self._result)
