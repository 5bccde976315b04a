"""Stored values: what a document may hold, how values compare, how they encode.

The value model is the one of ``engine.py``: ``dict``, ``list``, ``str``,
``int``, ``float``, ``bool``, ``None``, ``ObjectId``, ``datetime`` (kept as UTC
to the millisecond) and ``bytes``.

Comparison follows MongoDB's BSON order: values of different kinds compare by
kind (null < numbers < strings < objects < arrays < bytes < ObjectId < bool <
datetime), ``1 == 1.0``, ``True != 1``, objects compare field by field *in
order* (so ``{a, b} != {b, a}``).

The SQLite encoding is JSON, with the values JSON lacks written as tagged
strings (tag ``\\x1e``) whose text order is their natural order, so that SQL
comparisons and expression indexes work on them::

    ObjectId  -> "\\x1eO" + 24 lowercase hex digits
    datetime  -> "\\x1eD" + "YYYY-MM-DDTHH:MM:SS.mmm" (UTC)
    bytes     -> "\\x1eB" + base64 (equality only: base64 order is not byte order)
    str       -> itself, or "\\x1eS" + itself when it starts with "\\x1e"
"""

from __future__ import annotations

import base64
import json
import math
import threading
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from bson import ObjectId

from ..errors import ValidationError

TAG = "\x1e"
OID, DATE, BYTES, STR = TAG + "O", TAG + "D", TAG + "B", TAG + "S"
# The text interval holding every tagged non-string: ["\x1eA", "\x1eS").
TAGGED_LO, TAGGED_HI = TAG + "A", STR

__all__ = [
    "BYTES", "DATE", "MISSING", "OID", "STR", "TAG", "bracket", "check_value",
    "compare_values", "decode_doc", "decode_json", "decode_sql", "encode_doc",
    "encode_json", "encode_scalar", "norm_datetime", "values_equal",
]

# -- comparison ------------------------------------------------------------------

NULL, NUMBER, STRING, OBJECT, ARRAY, BINARY, OBJECTID, BOOL, DATETIME = range(1, 10)
_BRACKETS: dict[type, int] = {
    type(None): NULL, int: NUMBER, float: NUMBER, str: STRING, dict: OBJECT,
    list: ARRAY, tuple: ARRAY, bytes: BINARY, ObjectId: OBJECTID, bool: BOOL,
    datetime: DATETIME,
}


def bracket(value: Any) -> int:
    """MongoDB's canonical type rank of ``value`` (missing counts as null)."""
    b = _BRACKETS.get(type(value))
    if b is not None:
        return b
    for kind, rank in ((bool, BOOL), (int, NUMBER), (float, NUMBER), (str, STRING),
                       (dict, OBJECT), (list, ARRAY), (tuple, ARRAY), (bytes, BINARY),
                       (ObjectId, OBJECTID), (datetime, DATETIME)):
        if isinstance(value, kind):
            return rank
    if value is MISSING:
        return NULL
    raise ValidationError(f"unsupported value type {type(value).__name__}")


class _Missing:
    """A path that leads nowhere (distinct from an explicit None)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def norm_datetime(dt: datetime) -> datetime:
    """``dt`` as aware UTC truncated to milliseconds (naive means UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    elif dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def compare_values(a: Any, b: Any) -> int:
    """-1, 0 or 1 in MongoDB's order."""
    ba, bb = bracket(a), bracket(b)
    if ba != bb:
        return -1 if ba < bb else 1
    if ba == NULL:
        return 0
    if ba == OBJECT:
        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=False):
            c = (_cmp(bracket(va), bracket(vb)) or _cmp(ka, kb)
                 or compare_values(va, vb))
            if c:
                return c
        return _cmp(len(a), len(b))
    if ba == ARRAY:
        for va, vb in zip(a, b, strict=False):
            c = compare_values(va, vb)
            if c:
                return c
        return _cmp(len(a), len(b))
    if ba == BINARY:
        return _cmp(len(a), len(b)) or _cmp(bytes(a), bytes(b))
    if ba == DATETIME:
        return _cmp(norm_datetime(a), norm_datetime(b))
    return _cmp(a, b)


def _cmp(a: Any, b: Any) -> int:
    return -1 if a < b else (1 if a > b else 0)


def values_equal(a: Any, b: Any) -> bool:
    """MongoDB equality (``1 == 1.0``, ``True != 1``, objects order-sensitive)."""
    ta = type(a)
    if ta is type(b) and ta in (str, ObjectId, int):
        return bool(a == b)  # the common cases, without the bracket dance
    return compare_values(a, b) == 0


def check_value(value: Any, where: str = "value") -> None:
    """Refuse what cannot be stored or compared (NaN, NUL in strings, sets...)."""
    t = type(value)
    if t is float:
        if not math.isfinite(value):
            raise ValidationError(f"{where}: NaN and infinities are not supported")
    elif t is str:
        if "\x00" in value:
            raise ValidationError(f"{where}: strings may not contain NUL")
    elif t is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise ValidationError(f"{where}: field names must be strings")
            check_value(v, where)
    elif t is list or t is tuple:
        for v in value:
            check_value(v, where)
    elif value is not None and t not in (int, bool):
        bracket(value)  # raises for unsupported types


# -- encoding --------------------------------------------------------------------

def _enc_datetime(dt: datetime) -> str:
    if dt.tzinfo is not None:
        off = dt.utcoffset()
        if off:
            dt = dt - off
        dt = dt.replace(tzinfo=None)
    return DATE + dt.isoformat(timespec="milliseconds")


_tls = threading.local()


def _default(o: Any) -> str:
    _tls.tagged += 1
    if type(o) is ObjectId:
        return OID + str(o)
    if isinstance(o, datetime):
        return _enc_datetime(o)
    if isinstance(o, bytes | bytearray | memoryview):
        return BYTES + base64.b64encode(bytes(o)).decode("ascii")
    raise ValidationError(f"cannot store a value of type {type(o).__name__}")


_encode = json.JSONEncoder(default=_default, ensure_ascii=False, separators=(",", ":"),
                           allow_nan=False).encode


def encode_json(value: Any) -> str:
    """JSON text of ``value`` with tagged strings for the non-JSON types."""
    _tls.tagged = 0
    try:
        text = _encode(value)
    except ValueError as exc:  # allow_nan=False
        raise ValidationError(f"cannot store {exc}") from None
    # Every tagged value produced by _default starts with '"\u001e'; any extra
    # such occurrence is a user string starting with the tag (or a key, or an
    # escaped quote: harmless false positives) that must be escaped as STR.
    if "\\u00" in text:
        if text.count('"\\u001e') != _tls.tagged:
            _tls.tagged = 0
            text = _encode(_escape_tagged(value))
        if "\\u0000" in text:
            raise ValidationError("strings may not contain NUL")
    return text


def _escape_tagged(value: Any) -> Any:
    t = type(value)
    if t is str:
        return STR + value if value[:1] == TAG else value
    if t is dict:
        return {k: _escape_tagged(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [_escape_tagged(v) for v in value]
    if isinstance(value, str):
        return _escape_tagged(str(value))
    return value


encode_doc = encode_json


def encode_scalar(value: Any) -> Any:
    """The SQL value a scalar is stored as (what ``json_extract`` returns)."""
    t = type(value)
    if t is str:
        return STR + value if value[:1] == TAG else value
    if t is ObjectId:
        return OID + str(value)
    if t is int or t is float or value is None:
        return value
    if t is bool:
        return int(value)
    if isinstance(value, datetime):
        return _enc_datetime(value)
    if isinstance(value, bytes):
        return BYTES + base64.b64encode(value).decode("ascii")
    if isinstance(value, str):
        return encode_scalar(str(value))
    raise ValidationError(f"not a scalar: {type(value).__name__}")


def _new_oid(hex_id: str, _new: Any = object.__new__, _fromhex: Any = bytes.fromhex
             ) -> ObjectId:
    """``ObjectId(hex_id)`` for a value this codec wrote, without re-validating:
    twice as fast, and a listing decodes four per document."""
    oid = _new(ObjectId)
    oid._ObjectId__id = _fromhex(hex_id)  # bson's one slot
    return oid  # type: ignore[no-any-return]


def _check_fast_oid() -> Any:
    probe = ObjectId()
    try:
        fast = _new_oid(str(probe))
        if fast == probe and hash(fast) == hash(probe) and str(fast) == str(probe):
            return _new_oid
    except (AttributeError, TypeError, ValueError):
        pass
    return ObjectId  # another bson: the plain constructor


_oid = _check_fast_oid()


def _dec_str(s: str) -> Any:
    tag = s[1:2]
    if tag == "O":
        return _oid(s[2:])
    if tag == "D":
        return datetime.fromisoformat(s[2:] + "+00:00")
    if tag == "S":
        return s[2:]
    if tag == "B":
        return base64.b64decode(s[2:])
    return s


def _dec_list(items: list[Any]) -> None:
    for i, v in enumerate(items):
        t = type(v)
        if t is str:
            if v[:1] == TAG:
                items[i] = _dec_str(v)
        elif t is dict:
            _dec_dict(v)
        elif t is list:
            _dec_list(v)


def _dec_dict(d: dict[str, Any]) -> None:
    for k, v in d.items():
        t = type(v)
        if t is str:
            if v[:1] == TAG:
                d[k] = _dec_str(v)
        elif t is dict:
            if v:
                _dec_dict(v)
        elif t is list:
            _dec_list(v)


def _loads(text: str) -> Any:
    # orjson parses four times faster than json; it refuses what json still
    # reads (integers past 64 bits), so json stays the fallback.
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def decode_json(text: str) -> Any:
    """Inverse of ``encode_json``."""
    value = _loads(text)
    if "\\u001e" not in text:
        return value
    t = type(value)
    if t is dict:
        _dec_dict(value)
    elif t is str:
        return _dec_str(value) if value[:1] == TAG else value
    elif t is list:
        _dec_list(value)
    return value


decode_doc = decode_json


def decode_sql(value: Any, jtype: str | None) -> Any:
    """A value read with ``json_extract``/``json_type`` back into Python."""
    if jtype in ("object", "array"):
        return decode_json(value)
    if jtype == "true":
        return True
    if jtype == "false":
        return False
    if type(value) is str and value[:1] == TAG:
        return _dec_str(value)
    return value


@lru_cache(maxsize=256)
def decode_json_cached(text: str) -> Any:
    """``decode_json`` for query constants, which recur (do not mutate)."""
    return decode_json(text)
