"""The one place where core errors become HTTP statuses and Girder error bodies.

Girder answers not-found with 400 (the CLI relies on it), and an access error
with 401 when nobody is logged in on the request, 403 when someone is.
"""

from __future__ import annotations

from joist.core import errors as e

# class -> (status, Girder "type"); read with core's ``lookup``, most specific first.
STATUS: dict[type[e.CoreError], tuple[int, str]] = {
    e.CoreError: (500, "girder"),
    e.NotFoundError: (400, "validation"),
    e.AccessDeniedError: (403, "access"),
    e.AuthenticationError: (401, "access"),
    e.ThrottledError: (429, "access"),
    e.ReadOnlyError: (403, "access"),
    e.ExistsError: (400, "validation"),
    e.NotDirectoryError: (400, "validation"),
    e.IsDirectoryError: (400, "validation"),
    e.NotEmptyError: (400, "validation"),
    e.ValidationError: (400, "validation"),
    e.InvalidPathError: (400, "validation"),
    e.RequestTimeoutError: (408, "rest"),
    e.UnsupportedError: (400, "rest"),
    e.QuotaError: (507, "girder"),
    e.LockedError: (423, "rest"),
    e.ConflictError: (400, "rest"),
    e.UnavailableError: (503, "rest"),
    e.StorageError: (500, "girder"),
}


def status_for(exc: e.CoreError, *, authenticated: bool) -> tuple[int, str]:
    status, kind = e.lookup(STATUS, exc, (500, "girder"))
    if status == 403 and kind == "access" and not authenticated:
        status = 401
    if isinstance(exc, e.AuthenticationError) and not isinstance(exc, e.ThrottledError):
        status = 401
    return status, kind
