"""The wsgidav DAV provider: maps request paths to resources of a per-request
``HierarchyView`` and adjusts wsgidav where its behaviour is wrong for us.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from wsgidav.dav_error import DAVError, PRECONDITION_CODE_PropfindFiniteDepth
from wsgidav.dav_provider import DAVProvider

from joist.core.acl import Principal
from joist.core.errors import AuthenticationError, IsDirectoryError, NotFoundError
from joist.core.hierarchy import FsStats, Hierarchy, HierarchyView, Reader
from joist.core.services.locks import LockService

from .auth import PRINCIPAL_KEY
from .download import handle_get
from .errors import translate
from .propfind import handle_propfind, wants_default
from .props import PropPatch
from .resources import JoistCollection, JoistFile, resource_for

StartResponse = Callable[..., Any]
READ_METHODS = frozenset({"GET", "HEAD", "PROPFIND", "OPTIONS"})
WRITE_METHODS = frozenset({"PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPPATCH", "LOCK",
                           "UNLOCK"})


class RequestContext:
    """What one request shares between its resources (kept in the environ)."""

    def __init__(self, view: HierarchyView, locks: LockService, request_id: str) -> None:
        self.view = view
        self.locks = locks
        self.principal: Principal = view.principal
        self.request_id = request_id
        self.proppatch = PropPatch()
        self.created = False
        self.locks_prefix: str | None = None
        self.locks_below: dict[str, list[Any]] = {}
        self._statfs: dict[str, FsStats] = {}
        self.resources: dict[str, Any] = {}

    def statfs(self, path: str) -> FsStats:
        """Per request, per user or collection (a quota differs between them)."""
        parts = path.strip("/").split("/")
        key = "/".join(parts[:2])  # e.g. collection/<name>: a quota's root
        if key not in self._statfs:
            with translate(self.request_id):
                self._statfs[key] = self.view.statfs(path)
        return self._statfs[key]

    def prefetch_locks(self, ref_url: str) -> None:
        root = ref_url.rstrip("/") or "/"
        with translate(self.request_id):
            docs = self.locks.find(root, include_children=True)
        self.locks_prefix = root
        self.locks_below = {}
        for doc in docs:
            self.locks_below.setdefault(doc["root"], []).append(doc)

    def covers(self, root: str) -> bool:
        prefix = self.locks_prefix
        if prefix is None:
            return False
        return prefix == "/" or root == prefix or root.startswith(prefix + "/")


class JoistProvider(DAVProvider):
    def __init__(self, hierarchy: Hierarchy, locks: LockService) -> None:
        super().__init__()
        self.hierarchy = hierarchy
        self.locks = locks
        self.verbose = 1

    def __repr__(self) -> str:
        return "JoistProvider"

    def context(self, environ: dict[str, Any]) -> RequestContext:
        ctx = environ.get("joist.ctx")
        if ctx is None:
            principal = environ.get(PRINCIPAL_KEY) or Principal.anonymous()
            ctx = RequestContext(self.hierarchy.view(principal), self.locks,
                                 environ.get("joist.request_id", "-"))
            environ["joist.ctx"] = ctx
        return ctx  # type: ignore[no-any-return]

    def get_resource_inst(self, path: str, environ: dict[str, Any]
                          ) -> JoistCollection | JoistFile | None:
        ctx = self.context(environ)
        key = path.rstrip("/") or "/"
        if key in ctx.resources:  # reads look a path up more than once
            return ctx.resources[key]
        with translate(ctx.request_id):
            try:
                resource = resource_for(ctx.view.stat(key), environ)
            except (NotFoundError, NotADirectoryError):
                if ctx.principal.is_anonymous:
                    # What anonymous may not see, existing or not, asks for a
                    # login: clients send credentials only after a 401.
                    raise AuthenticationError("Log in to see this.") from None
                resource = None
        if environ["REQUEST_METHOD"] in READ_METHODS:
            ctx.resources[key] = resource
        return resource

    def open_file(self, path: str, environ: dict[str, Any]) -> tuple[JoistFile, Reader] | None:
        """A file and its opened bytes with one lookup of the path (a GET
        through ``get_resource_inst`` then ``get_content`` resolved it twice);
        None when the path is a collection or not found (wsgidav answers)."""
        ctx = self.context(environ)
        key = path.rstrip("/") or "/"
        with translate(ctx.request_id):
            try:
                reader = ctx.view.open_read(key)
            except IsDirectoryError:
                return None
            except (NotFoundError, NotADirectoryError):
                if ctx.principal.is_anonymous:
                    raise AuthenticationError("Log in to see this.") from None
                return None
        resource = JoistFile(reader.node, environ)
        ctx.resources[key] = resource
        return resource, reader

    def custom_request_handler(self, environ: dict[str, Any], start_response: StartResponse,
                               default_handler: Callable[..., Iterable[bytes]]
                               ) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method == "PROPFIND" and environ.setdefault("HTTP_DEPTH", "infinity") == "infinity":
            # RFC 4918 9.1: a server may refuse Depth: infinity; a whole-tree
            # walk of a store this size is a denial of service.
            raise DAVError(403, "PROPFIND with Depth: infinity is not supported.",
                           err_condition=PRECONDITION_CODE_PropfindFiniteDepth)
        if method == "PROPFIND" and not wants_default(environ):
            return handle_propfind(self, environ, start_response)
        if method in ("GET", "HEAD"):
            answer = handle_get(self, environ, start_response)
            if answer is not None:
                return answer
        if method in WRITE_METHODS and self.context(environ).principal.is_anonymous:
            # Anonymous users never write (public grants READ only): challenge,
            # so that a client browsing anonymously can log in and go on.
            with translate(environ.get("joist.request_id", "-")):
                raise AuthenticationError("Log in to change anything.")
        if method == "LOCK":
            self._check_lockable(environ)
        if method in ("COPY", "MOVE"):
            return default_handler(environ, self._created_status(environ, start_response))
        return default_handler(environ, start_response)

    def _check_lockable(self, environ: dict[str, Any]) -> None:
        """A lock is a write: it needs WRITE on the resource (or, for an
        unmapped URL, on the collection the empty resource goes into)."""
        ctx = self.context(environ)
        path = environ["PATH_INFO"].rstrip("/") or "/"
        with translate(ctx.request_id):
            ctx.view.require_writable(path)  # (an unmapped URL: its parent decides)

    @staticmethod
    def _created_status(environ: dict[str, Any], start_response: StartResponse
                        ) -> StartResponse:
        """wsgidav answers 204 for every copy or move a provider handles;
        RFC 4918 wants 201 when the destination did not exist before."""

        def wrapped(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            ctx = environ.get("joist.ctx")
            if status.startswith("204") and ctx is not None and ctx.created:
                status = "201 Created"
            return start_response(status, headers, *exc)

        return wrapped
