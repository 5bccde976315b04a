"""Byte responses: ranges, validators, conditional requests, Content-Disposition.

HTTP concerns live here, not in the assetstores: adapters hand out a seekable
reader and this module decides what slice to send and with which headers.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import functools
from collections.abc import Iterator
from typing import Any

from joist.core import filenames, ranges
from joist.core.assetstores.base import BlobReader
from joist.core.errors import ValidationError

from .request import Request, RestError
from .response import Raw

CHUNK = 1 << 20  # cheroot has no sendfile: 1 MiB reads keep Python out of the way


def content_disposition(name: str, disposition: str = "attachment") -> str:
    try:
        return _content_disposition(name, disposition)
    except ValidationError as exc:
        raise RestError(str(exc)) from None  # Girder says it as a RestError


@functools.lru_cache(maxsize=1024)  # the same few names are downloaded over and over
def _content_disposition(name: str, disposition: str) -> str:
    return filenames.content_disposition(name, disposition)


def http_date(value: Any) -> str | None:
    """RFC 9110's IMF-fixdate; stored times are naive UTC."""
    if not isinstance(value, _dt.datetime):
        return None
    return _imf_date(value)


@functools.lru_cache(maxsize=1024)  # a file's time is sent with every download of it
def _imf_date(value: _dt.datetime) -> str:
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


def _layout_chunks(reader: BlobReader, layout: list[bytes | ranges.ByteRange]
                   ) -> Iterator[bytes]:
    """A multipart/byteranges body (or one range): one reader for all."""
    return ranges.body(reader, layout, CHUNK)


def _chunks(reader: BlobReader, start: int, end: int) -> Iterator[bytes]:
    return _layout_chunks(reader, [ranges.ByteRange(start, end)])


def _epoch(value: _dt.datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=_dt.UTC)).timestamp()


def _unsatisfiable(reader: BlobReader, size: int) -> Raw:
    reader.close()
    return Raw(416, [("Accept-Ranges", "bytes"), ("Content-Range", f"bytes */{size}"),
                     ("Content-Length", "0")])


def send_bytes(request: Request, reader: BlobReader, *, size: int, name: str,
               mime_type: str | None, etag: str, modified: _dt.datetime | None,
               offset: int = 0, end_byte: int | None = None,
               disposition: str = "attachment", force_partial: bool = False) -> Raw:
    """The response for all or part of a blob, honouring ``Range`` (core's
    rules, the same as WebDAV's), ``If-Range``, ``If-None-Match`` and
    ``If-Modified-Since``; ``offset``/``endByte`` (Girder's parameters) apply
    when no Range does."""
    quoted = f'"{etag}"'
    content_type = mime_type or "application/octet-stream"
    headers = [("Accept-Ranges", "bytes"), ("ETag", quoted),
               ("Content-Type", content_type),
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
        selection = ranges.select(
            request.header("Range"), size, if_range=request.header("If-Range"), etag=quoted,
            last_modified=_epoch(modified) if stamp else None)
        if selection.status == ranges.UNSATISFIABLE:
            return _unsatisfiable(reader, size)
        if selection.multipart:
            boundary = ranges.make_boundary()
            layout = ranges.multipart_layout(selection, content_type, boundary)
            headers = [(k, ranges.multipart_type(boundary) if k == "Content-Type" else v)
                       for k, v in headers]
            headers.append(("Content-Length", str(ranges.layout_length(layout))))
            return Raw(206, headers, _layout_chunks(reader, layout))
        if selection.status == ranges.PARTIAL:
            start, end = selection.ranges[0].start, selection.ranges[0].stop
        else:
            start, end = offset, size if end_byte is None else min(end_byte, size)
            if (start > 0 and start >= size) or end < start:
                return _unsatisfiable(reader, size)
        partial = size > 0 and (selection.status == ranges.PARTIAL or start > 0 or
                                end < size or force_partial)
        headers.append(("Content-Length", str(end - start)))
        if partial:
            headers.append(("Content-Range", f"bytes {start}-{end - 1}/{size}"))
        status = 206 if partial else 200
        if end - start <= CHUNK and request.method != "HEAD":
            # What the stream would send as its first (and only) block, read
            # now: the reader is closed before the answer, and no generators.
            try:
                data = reader.read_at(start, end - start)
            finally:
                reader.close()
            return Raw(status, headers, [data])
        return Raw(status, headers, _chunks(reader, start, end))
    except BaseException:
        reader.close()
        raise
