"""Responses: Girder's JSON encoding (sorted keys, ISO datetimes, ``null``) and
streamed bodies."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId


def _default(value: Any) -> Any:
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, allow_nan=False, default=_default,
                      separators=(", ", ": ")).encode("utf-8")


@dataclass
class Page:
    """A list answer that also reports the total (``Girder-Total-Count``)."""

    items: list[Any]
    total: int | None = None


@dataclass
class Raw:
    """A non-JSON answer: status, headers and a body iterable (streamed)."""

    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes] = field(default_factory=list)
    file: Any = None              # a file-like with fileno() for wsgi.file_wrapper
    file_range: tuple[int, int] | None = None  # (offset, length) within ``file``
    on_close: Any = None

    def iterate(self) -> Iterator[bytes]:
        yield from self.body


@dataclass
class JsonWithHeaders:
    value: Any
    headers: list[tuple[str, str]] = field(default_factory=list)
