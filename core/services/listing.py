"""Query pieces shared by the listing services (folders, items, collections).

Girder's listings take a ``text`` filter (a case-insensitive substring of the
name) and its ``position`` routes count the documents sorted before one; both
are store queries, so they are built here and never by a gateway.
"""

from __future__ import annotations

import re
from typing import Any

from ..db.engine import SortSpec


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
