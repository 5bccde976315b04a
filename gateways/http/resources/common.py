"""Parameters and helpers shared by resource modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from joist.core import acl
from joist.core.errors import NotFoundError, ValidationError
from joist.core.services import listing
from joist.core.services.notifications import NO_PROGRESS, ProgressContext

from ..app import Context
from ..request import RestError
from ..router import Param

SORTDIR = Param("sortdir", "integer", default=1,
                description="Sort order: 1 for ascending, -1 for descending.", enum=(1, -1))
PAGING = (
    Param("limit", "integer", default=50, description="Result set size limit."),
    Param("offset", "integer", default=0, description="Offset into result set."),
    SORTDIR,
)
LEVELS = {"read": acl.READ, "write": acl.WRITE, "admin": acl.ADMIN}


def sort_param(default: str) -> Param:
    return Param("sort", default=default, description="Field to sort the result set by.",
                 strip=True)


def paged(default: str) -> tuple[Param, ...]:
    """Girder's ``pagingParams``: limit, offset, sort (default ``default``), sortdir."""
    return (PAGING[0], PAGING[1], sort_param(default), SORTDIR)


def check_window(limit: int, offset: int) -> None:
    if limit < 0 or offset < 0:
        raise RestError("limit and offset must not be negative.")


def paging(limit: int, offset: int, sortdir: int, sort: str | None,
           default: str, listing_name: str | None = None
           ) -> tuple[int, int, list[tuple[str, int]]]:
    """limit, offset and the sort spec; with ``listing_name`` the sort field
    must be one core lets that listing sort by (else a 400)."""
    check_window(limit, offset)
    if sortdir not in (1, -1):
        raise RestError("Invalid value for sortdir parameter.")
    field = sort or default
    if listing_name is not None:
        return limit, offset, listing.sort_spec(listing_name, field, sortdir)
    spec = [(field, sortdir)] if field == "_id" else [(field, sortdir), ("_id", sortdir)]
    return limit, offset, spec


def load(ctx: Context, model: str, doc_id: Any, level: int = acl.READ) -> dict[str, Any]:
    """A document by id from a route parameter, access-checked (Girder's
    "Invalid <model> id" is a 400)."""
    try:
        return ctx.services.tree.load(ctx.principal, model, doc_id, level)
    except NotFoundError:
        raise ValidationError(f"Invalid {model} id ({doc_id}).", field="id") from None


def level_from(value: Any) -> int:
    try:
        level = int(value)
    except (TypeError, ValueError):
        raise RestError("Invalid access level.") from None
    if level not in (acl.READ, acl.WRITE, acl.ADMIN):
        raise RestError("Invalid access level.")
    return level


def total(count: Callable[[], int], offset: int, limit: int, returned: int) -> int:
    """``Girder-Total-Count`` without a count query when the page itself shows
    the total (a short, non-empty page is the last one); counting a large
    folder costs more than reading a page of it."""
    if (returned and (limit == 0 or returned < limit)) or (offset == 0 and returned < limit):
        return offset + returned
    return count()


def progress_of(ctx: Context, on: bool, title: str, model: str | None = None,
                doc: dict[str, Any] | None = None,
                total: Callable[[], int] | None = None) -> ProgressContext:
    """The progress record of a ``progress=true`` operation (Girder's
    ``ProgressContext``); the total is only counted when progress is on."""
    if not on:
        return NO_PROGRESS
    resource = None if doc is None else {"_id": doc["_id"], "name": doc.get("name")}
    return ctx.services.notifications.progress(
        ctx.principal, title, total() if total is not None else 0, resource=resource,
        resource_name=model)
