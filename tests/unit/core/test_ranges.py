"""core/ranges.py: the Range rules of RFC 9110, by example and against a
reference model (hypothesis) written from the ABNF, independently of the
parser's code."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from joist.core import ranges
from joist.core.ranges import ByteRange, Selection
from tests import byteranges

ETAG = '"abc123"'
MTIME = 1_700_000_000.0
MTIME_TEXT = "Tue, 14 Nov 2023 22:13:20 GMT"
FUZZ = settings(max_examples=400, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- examples

@pytest.mark.parametrize(("header", "size", "status", "spans"), [
    ("bytes=0-0", 10, 206, [(0, 1)]),
    ("bytes=-5", 10, 206, [(5, 10)]),
    ("bytes=5-", 10, 206, [(5, 10)]),
    ("bytes=-50", 10, 206, [(0, 10)]),
    ("bytes=2-99999999999999999999999999999", 10, 206, [(2, 10)]),
    ("BYTES=1-2", 10, 206, [(1, 3)]),
    ("bytes=1-2, 5-6", 10, 206, [(1, 3), (5, 7)]),
    ("bytes=5-6,1-2", 10, 206, [(5, 7), (1, 3)]),            # the request's order
    ("bytes=0-3,2-5", 10, 206, [(0, 6)]),                    # overlapping: coalesced
    ("bytes=0-1,2-3", 10, 206, [(0, 4)]),                    # adjacent: coalesced
    ("bytes=6-7,0-1,2-4", 10, 206, [(6, 8), (0, 5)]),
    ("bytes=6-7,0-1,2-5", 10, 206, [(0, 8)]),                # 2-5 bridges the two
    ("bytes=20-30,3-4", 10, 206, [(3, 5)]),                  # unsatisfiable parts dropped
    ("bytes=,,1-1,", 10, 206, [(1, 2)]),                     # empty list elements
    ("bytes=0001-0002", 10, 206, [(1, 3)]),
    # invalid: ignored, the whole body
    ("bytes=5-2", 10, 200, []), ("bytes=-0-", 10, 200, []), ("bytes=0x10-0x20", 10, 200, []),
    ("items=0-5", 10, 200, []), ("bytes=-1-5", 10, 200, []), ("bytes=-", 10, 200, []),
    ("bytes=", 10, 200, []), ("bytes=,", 10, 200, []), ("bytes 1-2", 10, 200, []),
    ("bytes=1-2;3-4", 10, 200, []), ("bytes=\u0661-\u0662", 10, 200, []),
    ("bytes=+1-2", 10, 200, []),
    ("bytes=1 -2", 10, 200, []), ("=1-2", 10, 200, []), ("", 10, 200, []),
    ("bytes=1-2,3-1", 10, 200, []),                          # one invalid spec spoils all
    ("bytes=" + ",".join(["0-0"] * (ranges.MAX_RANGES + 1)), 10, 200, []),
    # valid but unsatisfiable
    ("bytes=-0", 10, 416, []), ("bytes=10-", 10, 416, []), ("bytes=10-20,-0", 10, 416, []),
    ("bytes=99999999999999999999999-", 10, 416, []),
    # zero-length representation
    ("bytes=0-0", 0, 416, []), ("bytes=0-", 0, 416, []), ("bytes=-5", 0, 200, []),
    ("bytes=-0", 0, 416, []), ("bytes=5-2", 0, 200, []),
])
def test_examples(header: str, size: int, status: int, spans: list[tuple[int, int]]) -> None:
    selection = ranges.select(header, size)
    assert selection.status == status
    assert [(r.start, r.stop) for r in selection.ranges] == spans


def test_a_missing_header_is_the_whole_body() -> None:
    assert ranges.select(None, 10) == Selection(200, 10)


def test_content_range_texts() -> None:
    assert ByteRange(0, 1).content_range(10) == "bytes 0-0/10"
    assert ranges.select("bytes=-0", 7).unsatisfied_range() == "bytes */7"


@pytest.mark.parametrize(("if_range", "applies"), [
    (ETAG, True), ('W/"abc123"', False), ('"other"', False), (MTIME_TEXT, True),
    ("Tue, 14 Nov 2023 22:13:21 GMT", False), ("garbage", False), ("", False),
])
def test_if_range(if_range: str, applies: bool) -> None:
    selection = ranges.select("bytes=0-1", 10, if_range=if_range, etag=ETAG,
                              last_modified=MTIME)
    assert selection.status == (206 if applies else 200)


def test_if_range_without_validators_never_holds() -> None:
    assert not ranges.if_range_holds(ETAG, None, None)
    assert not ranges.if_range_holds(MTIME_TEXT, ETAG, None)
    assert not ranges.if_range_holds('W/"x"', 'W/"x"', None)  # weak never matches
    assert ranges.if_range_holds(None, None, None)


def test_multipart_layout_frames_each_part() -> None:
    data = bytes(range(100))
    selection = ranges.select("bytes=90-,0-4,-3", len(data))
    assert selection.multipart
    boundary = ranges.make_boundary()
    layout = ranges.multipart_layout(selection, "text/plain\r\nX-Evil: 1", boundary)
    body = b"".join(p if isinstance(p, bytes) else data[p.start:p.stop] for p in layout)
    assert len(body) == ranges.layout_length(layout)
    found = byteranges.parts(ranges.multipart_type(boundary), body)
    assert found == [("bytes 90-99/100", "text/plain  X-Evil: 1", data[90:]),
                     ("bytes 0-4/100", "text/plain  X-Evil: 1", data[:5])]


# ---------------------------------------------------------------- the model

_SPEC = r"(?:[0-9]+-[0-9]*|-[0-9]+)"
_OWS = r"[ \t]*"
# RFC 9110 5.6.1, 1#element for a recipient: *( "," OWS ) element *( OWS "," [ OWS element ] )
_RANGE_SET = rf"(?:,{_OWS})*{_SPEC}(?:{_OWS},(?:{_OWS}{_SPEC})?)*"
_HEADER = re.compile(rf"{_OWS}[bB][yY][tT][eE][sS]={_OWS}{_RANGE_SET}{_OWS}")


def model(header: str, size: int) -> tuple[int, set[int], list[tuple[int, set[int]]]]:
    """(status, bytes sent, [(spec index, bytes of that spec)]) by the RFC's
    words: byte sets instead of intervals, no coalescing logic."""
    if not _HEADER.fullmatch(header):
        return 200, set(), []
    specs = re.findall(r"([0-9]*)-([0-9]*)", header.split("=", 1)[1])
    if len(specs) > ranges.MAX_RANGES:
        return 200, set(), []
    if any(first and last and int(last) < int(first) for first, last in specs):
        return 200, set(), []
    if size == 0:
        wanted = any(not first and int(last) > 0 for first, last in specs)
        return (200 if wanted else 416), set(), []
    per_spec = []
    for index, (first, last) in enumerate(specs):
        if not first:
            span = set(range(max(size - int(last), 0), size)) if int(last) else set()
        else:
            end = size if not last else min(int(last) + 1, size)
            span = set(range(int(first), end))
        if span:
            per_spec.append((index, span))
    covered = set().union(*(span for _, span in per_spec)) if per_spec else set()
    return (206 if covered else 416), covered, per_spec


_number = st.one_of(st.integers(0, 80).map(str), st.just("0" * 20 + "7"),
                    st.just("9" * 25), st.integers(0, 9).map(lambda n: f"00{n}"))
_spec_text = st.one_of(
    st.tuples(_number, st.one_of(st.just(""), _number)).map(lambda t: f"{t[0]}-{t[1]}"),
    _number.map(lambda n: f"-{n}"))
_ws = st.sampled_from(["", " ", "\t", "  "])


@st.composite
def headers(draw: st.DrawFn) -> str:
    """Mostly valid headers (random case, spacing, empty elements), with
    mutations that make some of them invalid."""
    unit = draw(st.sampled_from(["bytes", "BYTES", "Bytes", "items", "byte", ""]))
    specs = draw(st.lists(_spec_text, min_size=0, max_size=6))
    pieces = []
    for spec in specs:
        pieces.append(draw(_ws) + spec + draw(_ws))
        if draw(st.booleans()) and draw(st.booleans()):
            pieces.append(draw(_ws))  # an empty element
    text = f"{unit}={','.join(pieces)}"
    if draw(st.integers(0, 9)) == 0:
        position = draw(st.integers(0, len(text)))
        text = text[:position] + draw(st.sampled_from(["x", "-", ",", "=", " ", "0x"])) + \
            text[position:]
    return text


def _check(header: str, size: int) -> None:
    status, covered, per_spec = model(header, size)
    selection = ranges.select(header, size)
    assert selection.status == status, (header, size)
    if status != 206:
        assert selection.ranges == ()
        return
    sent: set[int] = set()
    for part in selection.ranges:
        assert 0 <= part.start < part.stop <= size
        span = set(range(part.start, part.stop))
        assert not span & sent
        sent |= span
    assert sent == covered
    ordered = sorted(selection.ranges, key=lambda r: r.start)
    for left, right in itertools.pairwise(ordered):
        assert left.stop < right.start, "touching ranges must be coalesced"
    # Parts follow the request: each part's earliest spec comes in order.
    firsts = [min(i for i, span in per_spec if span <= set(range(p.start, p.stop)))
              for p in selection.ranges]
    assert firsts == sorted(firsts)


@FUZZ
@given(headers(), st.integers(0, 70))
def test_structured_headers_match_the_model(header: str, size: int) -> None:
    _check(header, size)


@FUZZ
@given(st.text(alphabet=st.sampled_from("bytes=BYTES0123456789-, \t;x\u0661"), max_size=30),
       st.integers(0, 40))
def test_any_text_matches_the_model(header: str, size: int) -> None:
    _check(header, size)


@FUZZ
@given(st.text(max_size=60), st.integers(0, 1 << 40))
def test_arbitrary_text_never_fails(header: str, size: int) -> None:
    selection = ranges.select(header, size, if_range=header, etag=ETAG, last_modified=MTIME)
    assert selection.status in (200, 206, 416)
