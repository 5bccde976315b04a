"""Query pieces shared by the listing services (folders, items, collections).

Girder's listings take a ``text`` filter (a case-insensitive substring of the
name) and its ``position`` routes count the documents sorted before one; both
are store queries, so they are built here and never by a gateway.
"""

from __future__ import annotations

import re
from typing import Any

from ..db.engine import SortSpec
from ..errors import ValidationError


def name_filter(text: str) -> dict[str, Any]:
    """The ``text`` parameter of listings: a case-insensitive substring of the name."""
    return {"lowerName": {"$regex": re.escape(text.strip().lower())}}


def with_text(query: dict[str, Any], text: str | None) -> dict[str, Any]:
    return {"$and": [query, name_filter(text)]} if text else query


def before(doc: dict[str, Any], sort: SortSpec) -> dict[str, Any]:
    """A filter for the documents sorted before ``doc`` by ``sort`` (a field,
    then ``_id`` as tie-breaker): what a ``position`` counts."""
    field, direction = sort[0]
    op = "$lt" if direction == 1 else "$gt"
    if field == "_id":
        return {"_id": {op: doc["_id"]}}
    value: Any = doc
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return {"$or": [{field: {op: value}}, {field: value, "_id": {op: doc["_id"]}}]}


# The fields each paged listing sorts by (Girder's ``sort`` parameter): the
# fields Girder's clients sort these documents by. Each listing's filter
# (parent, owner, assetstore) and default sort are served by a store index
# (core/store/specs.py; group membership is an array, which SQLite scans);
# another field orders the filtered documents. A field not listed is a 400,
# never a silently unsorted page.
_NAMED = ("_id", "name", "lowerName", "created", "updated")
SORTABLE: dict[str, frozenset[str]] = {
    # Not email: sorting by a field a principal may not read would reveal it.
    "user": frozenset({"_id", "login", "firstName", "lastName", "created"}),
    "group": frozenset(_NAMED),
    "group_member": frozenset({"_id", "login", "firstName", "lastName", "created"}),
    "collection": frozenset({*_NAMED, "size"}),
    "folder": frozenset({*_NAMED, "size"}),
    "item": frozenset({*_NAMED, "size"}),
    "file": frozenset({"_id", "name", "created", "size"}),
    "assetstore": frozenset({"_id", "name", "type", "created"}),
    "assetstore_file": frozenset({"_id", "name"}),
    "api_key": frozenset({"_id", "name", "created"}),
    "upload": frozenset({"_id", "updated", "created", "name", "size"}),
}


def sort_spec(listing: str, field: str, sortdir: int) -> SortSpec:
    """A deterministic order for a page of ``listing``: the requested field,
    then ``_id``; an unknown field or direction is the caller's error."""
    if sortdir not in (1, -1):
        raise ValidationError("Invalid value for sortdir parameter.", field="sortdir")
    allowed = SORTABLE[listing]
    if field not in allowed:
        raise ValidationError(f'Invalid sort field "{field}"; sort by one of: '
                              f'{", ".join(sorted(allowed))}.', field="sort")
    return [(field, sortdir)] if field == "_id" else [(field, sortdir), ("_id", sortdir)]
