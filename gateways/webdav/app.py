"""The WebDAV WSGI application: wsgidav configured over the Joist provider.

``make_dav_app(hierarchy, services, settings, prefix="/dav")`` returns a WSGI
callable for a server that mounts it at ``prefix`` (``SCRIPT_NAME``), or at
the root of its own port with ``prefix=""``. Around wsgidav sit two layers of
ours: ``RequestGuard`` (outermost: request ids, refusal of ambiguous paths, a
last-resort 500) and ``ErrorMiddleware`` (in wsgidav's stack, in place of its
ErrorPrinter: maps every error through ``errors.dav_error`` and writes a
short body with no traceback and no exception text).
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from wsgidav.dav_error import DAVError, get_http_status_string
from wsgidav.dir_browser import WsgiDavDirBrowser
from wsgidav.mw.base_mw import BaseMiddleware
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from joist.core.hierarchy import Hierarchy
from joist.core.services import Services
from joist.core.settings import Settings

from .auth import JoistAuthenticator, JoistDomainController
from .errors import guarded
from .fast import FastPath
from .locks import StoreLockManager
from .provider import JoistProvider

log = logging.getLogger("joist.webdav")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

BLOCK_SIZE = 1 << 20           # GET/PUT copy size (wsgidav's default 8 KiB is 4x slower)
MAX_XML_BODY = 4 << 20         # PROPFIND/PROPPATCH/LOCK bodies are read whole
XML_METHODS = ("PROPFIND", "PROPPATCH", "LOCK")
_ENCODED_SLASH = re.compile("%2f", re.IGNORECASE)
# Request ids: a random per-process prefix and a counter, unique without a
# getrandom call per request (``next`` on an itertools.count is atomic).
_ID_PREFIX = secrets.token_hex(4)
_ID_COUNTER = itertools.count(1)


def _plain(start_response: StartResponse, status: int, message: str,
           headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    body = (message + "\n").encode("utf-8")
    start_response(get_http_status_string(status) if status != 413
                   else "413 Request Entity Too Large",
                   [("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(body))), *(headers or [])])
    return [body]


def _dot_segment(path: str) -> bool:
    return any(seg in (".", "..") for seg in path.split("/"))


def _utf8(wsgi_text: str, *, percent_encoded: bool) -> bool:
    """Whether a WSGI string (the request's bytes as latin-1) is UTF-8 once
    percent-decoded: paths are names, and a name is text."""
    try:
        raw = wsgi_text.encode("latin-1")
        (unquote_to_bytes(raw) if percent_encoded else raw).decode("utf-8")
    except UnicodeError:
        return False
    return True


class DirBrowser(WsgiDavDirBrowser):
    """wsgidav's directory pages, with two repairs: its ``_fail`` passed
    DAVError's keyword-only arguments by position (a GET of a collection with
    a body became a TypeError, 500, instead of its 415), and its redirect of a
    collection URL to the one with a slash left out the mount prefix."""

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        prefix = environ.get("SCRIPT_NAME", "")

        def mounted(status: str, headers: list[tuple[str, str]], exc_info: Any = None
                    ) -> Any:
            if status.startswith("301") and prefix:
                headers = [(k, prefix + v if k.lower() == "location" and v.startswith("/")
                            and not v.startswith(prefix + "/") else v) for k, v in headers]
            return start_response(status, headers, exc_info)

        return super().__call__(environ, mounted)  # type: ignore[no-any-return]

    def _fail(self, value: int, context_info: Any = None, src_exception: Any = None,
              err_condition: Any = None) -> None:
        raise DAVError(value, context_info, src_exception=src_exception,
                       err_condition=err_condition)


class ErrorMiddleware(BaseMiddleware):
    """Every error leaves as a status from the mapping table and a short body."""

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterator[bytes]:
        return guarded(environ, start_response, self.next_app)


class RequestGuard:
    """Outermost layer: a request id, and refusal of requests whose path
    could mean two things (encoded slashes, dot segments) before any work."""

    def __init__(self, dav: WsgiDAVApp) -> None:
        self.dav = dav
        self.fast = FastPath(dav)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        request_id = f"{_ID_PREFIX}{next(_ID_COUNTER):x}"
        environ["joist.request_id"] = request_id
        problem = self._problem(environ)
        if problem is not None:
            return _plain(start_response, problem[0], problem[1])
        return self._run(environ, start_response, request_id)

    def _run(self, environ: dict[str, Any], start_response: StartResponse,
             request_id: str) -> Iterator[bytes]:
        started = False

        def tracked(status: str, headers: list[tuple[str, str]], exc_info: Any = None
                    ) -> Any:
            nonlocal started
            started = True
            return start_response(status, headers, exc_info)

        try:
            answer = self.fast(environ, tracked)
            yield from self.dav(environ, tracked) if answer is None else answer
        except Exception:
            log.exception("request %s: unhandled failure", request_id)
            if started:
                raise  # headers are out: the server can only drop the connection
            yield from _plain(start_response, 500,
                              f"The server failed to complete the request "
                              f"(request {request_id}).")

    @staticmethod
    def _problem(environ: dict[str, Any]) -> tuple[int, str] | None:
        raw = str(environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")).split("?")[0]
        if not _utf8(str(environ.get("PATH_INFO", "")), percent_encoded=False):
            return 400, "The path is not valid UTF-8."
        if _ENCODED_SLASH.search(raw):
            return 400, "Encoded slashes are not allowed in paths."
        if _dot_segment(environ.get("PATH_INFO", "")) or _dot_segment(unquote(raw)):
            return 400, "Path segments '.' and '..' are not allowed."
        destination = environ.get("HTTP_DESTINATION")
        if destination:
            if not _utf8(destination, percent_encoded=True):
                return 400, "The Destination is not valid UTF-8."
            dest_path = urlsplit(destination).path
            if _ENCODED_SLASH.search(dest_path):
                return 400, "Encoded slashes are not allowed in the Destination."
            if _dot_segment(unquote(dest_path)):
                return 400, "Destination segments '.' and '..' are not allowed."
        if environ.get("REQUEST_METHOD") in XML_METHODS:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return 400, "Invalid Content-Length."
            if length > MAX_XML_BODY:
                return 413, "The XML request body is too large."
        return None


def make_dav_app(hierarchy: Hierarchy, services: Services, settings: Settings, *,
                 prefix: str = "/dav") -> WSGIApp:
    """The WebDAV application, to be mounted at ``prefix`` ("" for its own port)."""
    if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
        raise ValueError("prefix must start with '/' and not end with it")
    provider = JoistProvider(hierarchy, services.locks)
    config: dict[str, Any] = {
        "provider_mapping": {"/": provider},
        "mount_path": prefix or None,
        "joist": {"auth": services.auth},
        "http_authenticator": {"domain_controller": JoistDomainController,
                               "accept_basic": True, "accept_digest": False,
                               "default_to_digest": False},
        "lock_storage": False,  # our manager over the store is set below
        "property_manager": None,
        "middleware_stack": [ErrorMiddleware, JoistAuthenticator, DirBrowser,
                             RequestResolver],
        "block_size": BLOCK_SIZE,
        "verbose": 1,
        "logging": {"enable": False},
        "suppress_version_info": True,
        "add_header_MS_Author_Via": True,
        "dir_browser": {"enable": True, "icon": False, "response_trailer": "",
                        "show_user": True, "davmount": True,
                        "ms_sharepoint_support": False, "libre_office_support": False},
    }
    dav = WsgiDAVApp(config)
    dav.lock_manager = StoreLockManager(services.locks)
    provider.set_lock_manager(dav.lock_manager)
    return RequestGuard(dav)


__all__ = ["DAVError", "make_dav_app"]
