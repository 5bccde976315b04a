"""The one place where core errors become WebDAV statuses.

``STATUS`` has a row for every class of ``ALL_ERRORS`` (a test checks it);
``dav_error`` picks the most specific row (core's ``lookup``).
``translate()`` wraps every core call of the provider, and the error
middleware applies the same function to anything that escapes, so no core
error reaches wsgidav's generic 500 path. Server-side failures get a generic
message and a request id, never a traceback or the cause's text.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from wsgidav.dav_error import DAVError, get_http_status_string

from joist.core.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConflictError,
    CoreError,
    ExistsError,
    InvalidPathError,
    IsDirectoryError,
    LockedError,
    NotDirectoryError,
    NotEmptyError,
    NotFoundError,
    QuotaError,
    ReadOnlyError,
    RequestTimeoutError,
    StorageError,
    ThrottledError,
    UnavailableError,
    UnsupportedError,
    ValidationError,
    lookup,
)

log = logging.getLogger("joist.webdav")

REALM = "Joist"

StartResponse = Callable[..., Any]

STATUS: dict[type[CoreError], int] = {
    CoreError: 500,
    NotFoundError: 404,
    AccessDeniedError: 403,
    AuthenticationError: 401,      # with a Basic challenge: the client may log in
    ThrottledError: 429,           # with Retry-After
    ReadOnlyError: 403,
    ExistsError: 405,              # MKCOL onto a mapped URL (RFC 4918 9.3.1)
    NotDirectoryError: 409,        # an intermediate collection is missing
    IsDirectoryError: 405,         # PUT onto a collection
    NotEmptyError: 409,
    ValidationError: 400,
    InvalidPathError: 400,
    RequestTimeoutError: 408,      # the body stalled (the HTTP server's body rules)
    UnsupportedError: 403,         # e.g. a folder inside an item directory
    QuotaError: 507,               # Insufficient Storage
    LockedError: 423,
    ConflictError: 409,
    UnavailableError: 503,
    StorageError: 500,
}

SERVER_FAILURE = "The server failed to complete the request."


def status_of(exc: CoreError) -> int:
    return lookup(STATUS, exc, 500)


def challenge() -> tuple[str, str]:
    return ("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')


def dav_error(exc: BaseException, request_id: str = "-") -> DAVError:
    """The DAVError for any exception (DAVErrors pass through)."""
    if isinstance(exc, DAVError):
        return exc
    if isinstance(exc, CoreError):
        status = status_of(exc)
        headers: list[tuple[str, str]] = []
        if isinstance(exc, ThrottledError):
            headers.append(("Retry-After", str(int(exc.retry_after) + 1)))
        elif status == 401:
            headers.append(challenge())
        if status >= 500:
            log.error("request %s: %s: %s", request_id, type(exc).__name__, exc,
                      exc_info=exc.__cause__ is not None)
            return DAVError(status, f"{SERVER_FAILURE} (request {request_id})")
        return DAVError(status, exc.message, add_headers=headers or None)
    log.error("request %s: unexpected %s", request_id, type(exc).__name__, exc_info=exc)
    return DAVError(500, f"{SERVER_FAILURE} (request {request_id})")


@contextlib.contextmanager
def translate(request_id: str = "-") -> Iterator[None]:
    """Run core calls; core errors leave as the mapped ``DAVError``."""
    try:
        yield
    except CoreError as exc:
        raise dav_error(exc, request_id) from None


def error_answer(environ: dict[str, Any], start_response: StartResponse,
                 exc: BaseException) -> list[bytes]:
    """The response for any exception: the mapped status and a short body
    (XML for a precondition, else text), never a traceback."""
    error = dav_error(exc, environ.get("joist.request_id", "-"))
    status = get_http_status_string(error)
    headers = list(error.add_headers or [])
    if error.value in (204, 304):
        start_response(status, [("Content-Length", "0"), *headers])
        return [b""]
    if error.err_condition is not None:
        content_type, body = "application/xml; charset=utf-8", \
            error.err_condition.as_string().encode("utf-8")
    else:
        text = status if not error.context_info else f"{status}: {error.context_info}"
        content_type, body = "text/plain; charset=utf-8", (text + "\n").encode("utf-8")
    start_response(status, [("Content-Type", content_type),
                            ("Content-Length", str(len(body))), *headers])
    return [body if error.add_body and environ["REQUEST_METHOD"] != "HEAD" else b""]


def guarded(environ: dict[str, Any], start_response: StartResponse,
            app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
            ) -> Iterator[bytes]:
    """``app``'s response, its status held back until the first chunk: an
    error raised before that (while opening or reading the first bytes) still
    leaves as a proper error response."""
    pending: list[Any] = []

    def deferred(status: str, headers: list[tuple[str, str]], exc_info: Any = None
                 ) -> None:
        pending[:] = [status, headers]  # sent with the first chunk

    try:
        app_iter = app(environ, deferred)
        try:
            for chunk in app_iter:
                if pending:
                    start_response(*pending)
                    pending.clear()
                yield chunk
        finally:
            if hasattr(app_iter, "close"):
                app_iter.close()
        if pending:
            start_response(*pending)
        return
    except Exception as exc:
        answer = error_answer(environ, start_response, exc)
    yield from answer
