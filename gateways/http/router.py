"""Route declarations: the one source for dispatch and for the API description.

Each resource module declares its routes with ``@route(...)``; the router
matches by method and path segments with Girder's rule that literal segments
beat wildcards (``user/me`` wins over ``user/:id``).

Every route declares the token scope it needs (``scope=``, no default): the
data scopes for data, ``FULL_LOGIN`` (``core.user_auth``) where only a full
login will do. ``RestApp`` enforces it in one place; ``auth.scopes`` holds the
rule of which token satisfies which scope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from joist.core.auth import scopes

# "token": any valid token will do, no user needed (Girder's ``@access.token``).
Access = Literal["public", "token", "user", "admin"]
Kind = Literal["string", "password", "integer", "number", "boolean", "json", "jsonObject",
               "jsonArray", "objectId", "body"]
# Where a parameter travels (Swagger's "in"). Query and formData values share
# one namespace, as in Girder; the location says how the description shows it.
Location = Literal["query", "formData", "path", "body", "header"]


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind = "string"
    required: bool = False
    default: Any = None
    description: str = ""
    enum: tuple[Any, ...] = ()
    location: Location = "query"
    strip: bool = False
    schema: Any = None               # a body parameter's JSON schema, as described


@dataclass(frozen=True)
class Route:
    method: str
    resource: str
    tokens: tuple[str, ...]          # segments after the resource, ":x" = wildcard
    handler: Callable[..., Any]
    summary: str
    scope: str                       # token scope needed (core.user_auth: a full login)
    params: tuple[Param, ...] = ()
    access: Access = "public"
    cookie: bool = False             # accept the girderToken cookie (downloads)
    total_count: bool = False        # answer carries Girder-Total-Count
    raw_body: bool = False           # the body is data (uploads), not form params
    notes: str = ""

    @property
    def path(self) -> str:
        return "/".join((self.resource, *self.tokens))

    @property
    def wildcards(self) -> tuple[str, ...]:
        return tuple(t[1:] for t in self.tokens if t.startswith(":"))

    def specificity(self) -> tuple[int, ...]:
        return tuple(0 if t.startswith(":") else 1 for t in self.tokens)


@dataclass
class RouteTable:
    routes: list[Route] = field(default_factory=list)
    # (method, resource, number of segments) -> candidates: matching looks at a few
    _index: dict[tuple[str, str, int], list[Route]] = field(default_factory=dict)
    _resources: set[str] = field(default_factory=set)

    def add(self, route: Route) -> None:
        self.routes.append(route)
        key = (route.method, route.resource, len(route.tokens))
        candidates = self._index.setdefault(key, [])
        candidates.append(route)
        # Most specific first (stable: among equals, the first added), so the
        # first route that matches is the one to take.
        candidates.sort(key=lambda r: r.specificity(), reverse=True)
        self._resources.add(route.resource)

    def resources(self) -> set[str]:
        return self._resources

    def match(self, method: str, resource: str,
              segments: list[str]) -> tuple[Route, dict[str, str]] | None:
        for route in self._index.get((method, resource, len(segments)), ()):
            captured: dict[str, str] = {}
            for token, segment in zip(route.tokens, segments, strict=True):
                if token[:1] == ":":
                    captured[token[1:]] = segment
                elif token != segment:
                    break
            else:
                return route, captured
        return None

    def methods_for(self, resource: str, segments: list[str]) -> list[str]:
        return sorted({r.method for r in self.routes if r.resource == resource and
                       self.match(r.method, resource, segments) is not None})


# Path wildcards not declared as parameters, described as Girder's modelParam does.
_PATH_DESCRIPTIONS = {"id": "The ID of the document.", "name": "The name of the file.",
                      "keyId": "The ID of the SSH key."}


class RouteCollector:
    """Used by resource modules: ``api = RouteCollector("item")``, then
    ``@api.get(":id/files", ...)``."""

    def __init__(self, resource: str, description: str = "") -> None:
        self.resource = resource
        self.description = description
        self.routes: list[Route] = []

    def _add(self, method: str, path: str, summary: str, **kw: Any
             ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        tokens = tuple(t for t in path.split("/") if t)
        if not isinstance(kw.get("scope"), str):
            # A route without a declared scope would silently need a full
            # login: declaring it is part of adding a route.
            raise TypeError(f"{method} {self.resource}/{path}: declare scope=")

        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            params = tuple(kw.pop("params", ()))
            declared = {p.name for p in params}
            path_params = tuple(Param(t[1:], "string", True, location="path",
                                      description=_PATH_DESCRIPTIONS.get(t[1:], ""))
                                for t in tokens if t.startswith(":") and t[1:] not in declared)
            self.routes.append(Route(method, self.resource, tokens, handler, summary,
                                     params=path_params + params, **kw))
            return handler
        return register

    def get(self, path: str, summary: str, **kw: Any) -> Callable[..., Any]:
        return self._add("GET", path, summary, **kw)

    def post(self, path: str, summary: str, **kw: Any) -> Callable[..., Any]:
        return self._add("POST", path, summary, **kw)

    def put(self, path: str, summary: str, **kw: Any) -> Callable[..., Any]:
        return self._add("PUT", path, summary, **kw)

    def delete(self, path: str, summary: str, **kw: Any) -> Callable[..., Any]:
        return self._add("DELETE", path, summary, **kw)


def table_from(collectors: Iterable[RouteCollector]) -> RouteTable:
    table = RouteTable()
    for collector in collectors:
        for route in collector.routes:
            table.add(route)
    return table


# Scopes by kind of operation (Girder's): reads, creates/updates/uploads, ACL
# edits and deletions of containers; the rest needs a full login.
READ_SCOPE, WRITE_SCOPE, OWN_SCOPE = scopes.DATA_READ, scopes.DATA_WRITE, scopes.DATA_OWN
FULL_LOGIN = scopes.USER_AUTH
