"""Byte responses: ranges, validators, conditional requests, Content-Disposition.

HTTP concerns live here, not in the assetstores: adapters hand out a seekable
reader and this module decides what slice to send and with which headers.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
from collections.abc import Iterator
from typing import Any

from joist.core import common
from joist.core.assetstores.base import BlobReader
from joist.core.errors import ValidationError

from .request import Request, RestError
from .response import Raw

CHUNK = 1 << 20  # cheroot has no sendfile: 1 MiB reads keep Python out of the way


def content_disposition(name: str, disposition: str = "attachment") -> str:
    try:
        return common.content_disposition(name, disposition)
    except ValidationError as exc:
        raise RestError(str(exc)) from None  # Girder says it as a RestError


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first range of ``bytes=a-b`` as (start, end exclusive), or None to
    send everything. An unsatisfiable range raises 416."""
    if not header or not header.strip().lower().startswith("bytes="):
        return None
    first = header.split("=", 1)[1].split(",")[0].strip()
    start_text, sep, end_text = first.partition("-")
    if not sep:
        return None
    try:
        if not start_text:  # suffix: the last N bytes
            length = int(end_text)
            if length <= 0:
                raise RangeNotSatisfiableError(size)
            return max(size - length, 0), size
        start = int(start_text)
        end = int(end_text) + 1 if end_text else None
    except ValueError:
        return None  # malformed ranges are ignored (RFC 9110)
    if start < 0 or (end is not None and end <= start):
        return None  # "a-b" with b < a is invalid: ignored, the whole body follows
    if start >= size:
        raise RangeNotSatisfiableError(size)
    return start, size if end is None else min(end, size)


class RangeNotSatisfiableError(RestError):
    def __init__(self, size: int) -> None:
        super().__init__("Requested range not satisfiable.", 416)
        self.size = size


def http_date(value: Any) -> str | None:
    if not isinstance(value, _dt.datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return email.utils.format_datetime(value.astimezone(_dt.UTC), usegmt=True)


def not_modified(request: Request, etag: str, modified: _dt.datetime | None) -> bool:
    match = request.header("If-None-Match")
    if match is not None:
        tags = [t.strip() for t in match.split(",")]
        return "*" in tags or etag in tags or f"W/{etag}" in tags
    since = request.header("If-Modified-Since")
    if since and modified is not None:
        try:
            when = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        return modified.replace(microsecond=0) <= when
    return False


def _chunks(reader: BlobReader, start: int, end: int) -> Iterator[bytes]:
    position = start
    try:
        while position < end:
            data = reader.read_at(position, min(CHUNK, end - position))
            if not data:
                return
            position += len(data)
            yield data
    finally:
        reader.close()


def send_bytes(request: Request, reader: BlobReader, *, size: int, name: str,
               mime_type: str | None, etag: str, modified: _dt.datetime | None,
               offset: int = 0, end_byte: int | None = None,
               disposition: str = "attachment", force_partial: bool = False) -> Raw:
    """The response for all or part of a blob, honouring ``Range``,
    ``If-Range``, ``If-None-Match`` and ``If-Modified-Since``."""
    quoted = f'"{etag}"'
    headers = [("Accept-Ranges", "bytes"), ("ETag", quoted),
               ("Content-Type", mime_type or "application/octet-stream"),
               ("Content-Disposition", content_disposition(name, disposition))]
    stamp = http_date(modified)
    if stamp:
        headers.append(("Last-Modified", stamp))
    try:
        if not_modified(request, quoted, modified):
            reader.close()
            return Raw(304, [h for h in headers if h[0] in ("ETag", "Last-Modified")])
        if offset < 0 or (end_byte is not None and end_byte < 0):
            raise RestError("offset and endByte must not be negative.")
        start, end = offset, size if end_byte is None else min(end_byte, size)
        range_header = request.header("Range")
        if_range = request.header("If-Range")
        if range_header and if_range and if_range not in (quoted, stamp):
            range_header = None  # the client's copy is stale: send it all
        try:
            requested = parse_range(range_header, size)
        except RangeNotSatisfiableError:
            reader.close()
            return Raw(416, [("Content-Range", f"bytes */{size}"),
                             ("Content-Type", "application/json"), ("Content-Length", "0")])
        if requested is not None:
            start, end = requested
        elif (start > 0 and start >= size) or end < start:
            reader.close()
            return Raw(416, [("Content-Range", f"bytes */{size}"), ("Content-Length", "0")])
        partial = size > 0 and (requested is not None or start > 0 or end < size or
                                force_partial)
        headers.append(("Content-Length", str(end - start)))
        if partial:
            headers.append(("Content-Range", f"bytes {start}-{end - 1}/{size}"))
        return Raw(206 if partial else 200, headers, _chunks(reader, start, end))
    except BaseException:
        reader.close()
        raise
