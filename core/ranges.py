"""HTTP byte ranges (RFC 9110 section 14): the one parser every HTTP gateway uses.

Pure functions over a header value and a representation size; the gateways
only turn the resulting ``Selection`` into their response objects. The rules:

- A missing header, another unit (``items=0-5``) or a syntactically invalid
  header (``bytes=5-2``, ``bytes=0x10-0x20``, ``bytes=-1-5``) is ignored: 200
  with the whole body (RFC 9110 14.2).
- A false ``If-Range`` (strong ETag comparison, or an HTTP-date that is not
  exactly the Last-Modified) also means 200 with the whole body.
- A valid header none of whose ranges is satisfiable (``bytes=-0``, a start
  at or past the end) is 416 with ``Content-Range: bytes */size``.
- Satisfiable ranges are clipped to the size and overlapping or adjacent ones
  coalesced; one range left is a plain 206, several are a
  ``multipart/byteranges`` 206 whose parts keep the request's order.
- A zero-length representation has no expressible range: a suffix range of
  non-zero length (the only satisfiable form, 14.1.1) gets the empty body
  with 200, anything else 416.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

FULL, PARTIAL, UNSATISFIABLE = 200, 206, 416
# More range-specs than this and the header is ignored (14.2 lets a server
# refuse "many small ranges": each part costs a seek and a header).
MAX_RANGES = 64
# A position longer than this is past any representation we hold; keeping the
# number small also avoids int() on thousands of digits (which Python refuses).
_MAX_DIGITS = 18
HUGE = 10 ** _MAX_DIGITS

_UNIT = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)=(.*)", re.DOTALL)
_SPEC = re.compile(r"([0-9]*)-([0-9]*)")
_OWS = " \t"
CRLF = "\r\n"


@dataclass(frozen=True)
class RangeSpec:
    """One parsed range-spec: ``first-last`` (``last`` may be None) or, when
    ``first`` is None, a suffix of ``last`` bytes."""

    first: int | None
    last: int | None


@dataclass(frozen=True)
class ByteRange:
    """A satisfiable range: ``start`` included, ``stop`` excluded."""

    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{size}"


@dataclass(frozen=True)
class Selection:
    """What to send: ``status`` 200 (everything), 206 (``ranges``) or 416."""

    status: int
    size: int
    ranges: tuple[ByteRange, ...] = ()

    @property
    def multipart(self) -> bool:
        return self.status == PARTIAL and len(self.ranges) > 1

    def unsatisfied_range(self) -> str:
        return f"bytes */{self.size}"


def _number(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return HUGE if len(digits) > _MAX_DIGITS else int(digits)


def parse(header: str | None) -> tuple[RangeSpec, ...] | None:
    """The range-specs of a valid ``bytes`` Range header, or None when the
    header is absent, in another unit, invalid, or asks for too many ranges."""
    if header is None:
        return None
    unit = _UNIT.fullmatch(header.strip(_OWS))
    if unit is None or unit.group(1).lower() != "bytes":
        return None
    specs: list[RangeSpec] = []
    for element in unit.group(2).split(","):
        element = element.strip(_OWS)
        if not element:
            continue  # empty list elements are allowed (RFC 9110 5.6.1)
        match = _SPEC.fullmatch(element)
        if match is None:
            return None
        first_text, last_text = match.groups()
        if not first_text:
            if not last_text:
                return None  # "-" alone
            specs.append(RangeSpec(None, _number(last_text)))
        else:
            first = _number(first_text)
            last = _number(last_text) if last_text else None
            if last is not None and last < first:
                return None  # 14.1.1: a last-pos before the first-pos is invalid
            specs.append(RangeSpec(first, last))
        if len(specs) > MAX_RANGES:
            return None
    return tuple(specs) or None


def resolve(specs: tuple[RangeSpec, ...], size: int) -> tuple[ByteRange, ...]:
    """The satisfiable ranges of ``specs`` for ``size`` bytes, clipped and
    coalesced, in order of first appearance; empty when none is satisfiable."""
    result: list[ByteRange] = []
    for spec in specs:
        if spec.first is None:
            assert spec.last is not None
            if spec.last == 0 or size == 0:
                continue
            start, stop = max(size - spec.last, 0), size
        else:
            if spec.first >= size:
                continue
            start = spec.first
            stop = size if spec.last is None else min(spec.last + 1, size)
        # Merge with every range this one overlaps or touches; the merged range
        # takes the place of the earliest of them. Kept ranges never touch each
        # other, so one pass finds them all.
        kept: list[ByteRange] = []
        position: int | None = None
        for other in result:
            if other.start <= stop and start <= other.stop:
                start, stop = min(start, other.start), max(stop, other.stop)
                position = len(kept) if position is None else position
            else:
                kept.append(other)
        kept.insert(len(kept) if position is None else position, ByteRange(start, stop))
        result = kept
    return tuple(result)


def _http_time(value: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    try:
        return when.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def if_range_holds(if_range: str | None, etag: str | None,
                   last_modified: float | None) -> bool:
    """Whether ``If-Range`` lets the Range apply (RFC 9110 13.1.5): True when
    absent; an entity-tag must equal ``etag`` (quoted, as sent in ``ETag``) by
    strong comparison; a date must be exactly ``last_modified`` (epoch
    seconds, compared to the second as HTTP-dates are)."""
    if if_range is None:
        return True
    value = if_range.strip(_OWS)
    if value.startswith(("W/", '"')):
        return etag is not None and not etag.startswith("W/") and value == etag
    when = _http_time(value)
    return when is not None and last_modified is not None and \
        int(when) == int(last_modified)


def select(range_header: str | None, size: int, *, if_range: str | None = None,
           etag: str | None = None, last_modified: float | None = None) -> Selection:
    """What a GET with these headers should send of ``size`` bytes."""
    specs = parse(range_header)
    if specs is None or not if_range_holds(if_range, etag, last_modified):
        return Selection(FULL, size)
    if size == 0:
        wants_some = any(s.first is None and s.last for s in specs)
        return Selection(FULL if wants_some else UNSATISFIABLE, 0)
    ranges = resolve(specs, size)
    if not ranges:
        return Selection(UNSATISFIABLE, size)
    return Selection(PARTIAL, size, ranges)


# ---------------------------------------------------------------- multipart

def make_boundary() -> str:
    """A multipart boundary no body will contain by chance (random, 128 bits)."""
    return "joist-" + secrets.token_hex(16)


def multipart_layout(selection: Selection, content_type: str, boundary: str
                     ) -> list[bytes | ByteRange]:
    """The body of a ``multipart/byteranges`` answer as literal framing bytes
    and the ranges to copy between them (RFC 9110 14.6), in order."""
    layout: list[bytes | ByteRange] = []
    # A stored MIME type is user input: no line breaks into the part headers.
    content_type = "".join(ch if " " <= ch != "\x7f" else " " for ch in content_type)
    for index, part in enumerate(selection.ranges):
        head = (f"{'' if index == 0 else CRLF}--{boundary}{CRLF}"
                f"Content-Type: {content_type}\r\n"
                f"Content-Range: {part.content_range(selection.size)}\r\n\r\n")
        layout += [head.encode("latin-1", "replace"), part]
    layout.append(f"\r\n--{boundary}--\r\n".encode("latin-1"))
    return layout


def layout_length(layout: list[bytes | ByteRange]) -> int:
    return sum(len(p) if isinstance(p, bytes) else p.length for p in layout)


def multipart_type(boundary: str) -> str:
    return f"multipart/byteranges; boundary={boundary}"


class SpanReader(Protocol):
    """What ``body`` reads from (a ``BlobReader`` or the hierarchy's ``Reader``)."""

    def iter_range(self, offset: int, length: int, block_size: int) -> Iterator[bytes]: ...

    def close(self) -> None: ...


def body(reader: SpanReader, layout: list[bytes | ByteRange],
         block_size: int) -> Iterator[bytes]:
    """The response body of ``layout`` (framing bytes and ranges of ``reader``),
    closing the reader at the end. A blob shorter than recorded ends the body
    early: the client sees a short body, never bytes from elsewhere."""
    try:
        for piece in layout:
            if isinstance(piece, bytes):
                yield piece
                continue
            sent = 0
            for data in reader.iter_range(piece.start, piece.length, block_size):
                sent += len(data)
                yield data
            if sent < piece.length:
                return
    finally:
        reader.close()


__all__ = ["FULL", "MAX_RANGES", "PARTIAL", "UNSATISFIABLE", "ByteRange", "RangeSpec",
           "Selection", "SpanReader", "body", "if_range_holds", "layout_length", "make_boundary",
           "multipart_layout", "multipart_type", "parse", "resolve", "select"]
