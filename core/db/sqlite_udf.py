"""Python functions the SQL translation calls (registered on each connection).

Both receive the ``json_type`` of the value, so that they never mistake an
object's JSON text for a string, and both answer 0 rather than raise: SQLite
may evaluate them on rows that the rest of the WHERE clause rejects.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .codec import STR, TAG, decode_json, decode_json_cached, values_equal
from .query import compile_regex

__all__ = ["register_functions"]


def _joist_eq(value: Any, jtype: str | None, query_json: str) -> int:
    """Whole sub-document / array equality, with MongoDB's rules."""
    if (jtype != "object" and jtype != "array") or type(value) is not str:
        return 0
    try:
        return int(values_equal(decode_json(value), decode_json_cached(query_json)))
    except Exception:  # a malformed value must not abort the whole query
        return 0


def _joist_regexp(pattern: str, options: str, value: Any, jtype: str | None) -> int:
    """``$regex``: strings only (not tagged ObjectIds/datetimes, not JSON text)."""
    if jtype != "text" or type(value) is not str:
        return 0
    if value[:1] == TAG:
        if value[:2] != STR:
            return 0
        value = value[2:]
    try:
        return int(compile_regex(pattern, options).search(value) is not None)
    except Exception:
        return 0


def register_functions(conn: sqlite3.Connection) -> None:
    conn.create_function("joist_eq", 3, _joist_eq, deterministic=True)
    conn.create_function("joist_regexp", 4, _joist_regexp, deterministic=True)
