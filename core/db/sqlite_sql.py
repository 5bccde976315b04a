"""Translate the query subset (``query.py``) into SQLite SQL.

A field ``a.b`` becomes ``json_extract(doc, '$.a.b')``, spelled exactly as in
the expression indexes (``field_expr``) so that the planner uses them; ``_id``
is the ``id`` column. Values are bound in their stored encoding (``codec``),
so equality and ranges compare encoded text. Since ``json_extract`` answers 1
for ``true`` and JSON text for objects, comparisons add ``json_type`` guards,
but only when the value could collide (0/1, text starting with ``{`` or
``[``...), to keep the common index lookups lean. Declared array fields are
walked with ``json_each`` for MongoDB's any-element rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from .codec import (
    DATE,
    DATETIME,
    NUMBER,
    OBJECTID,
    OID,
    TAGGED_HI,
    TAGGED_LO,
    bracket,
    encode_json,
    encode_scalar,
)
from .query import (
    LOGICAL_OPS,
    RANGE_OPS,
    is_operator_doc,
    split_path,
    validate_filter,
    validate_sort,
)

__all__ = ["Translator", "field_expr", "json_path", "literal_prefix", "sql_literal"]

_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_SQL_OPS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_IN_INLINE_MAX = 32  # longer $in lists go through one json_each parameter
_REGEX_META = frozenset(".^$*+?{}[]()|\\")


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@lru_cache(maxsize=4096)
def json_path(segs: tuple[str, ...]) -> str:
    """``'$.a.b'`` as an SQL literal (segments quoted only when needed)."""
    parts = ["$"]
    for s in segs:
        if s[0].isdigit() or not _IDENT_CHARS.issuperset(s):
            parts.append(f'."{s}"')
        else:
            parts.append("." + s)
    return sql_literal("".join(parts))


def field_expr(path: str) -> str:
    """The SQL expression of a top-level field, shared by queries and indexes."""
    if path == "_id":
        return "id"
    return f"json_extract(doc, {json_path(split_path(path))})"


def literal_prefix(pattern: str) -> tuple[str, bool]:
    """The literal every match of ``^...`` starts with, and whether the pattern
    is nothing more than that literal."""
    if not pattern.startswith("^") or "|" in pattern:  # "^a|b" need not start with a
        return "", False
    out: list[str] = []
    i, n = 1, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n or pattern[i + 1].isalnum():
                return "".join(out), False  # \d, \b, \A...: a class, not a literal
            lit, step = pattern[i + 1], 2
        elif c in _REGEX_META:
            return "".join(out), False
        else:
            lit, step = c, 1
        nxt = pattern[i + step:i + step + 1]
        if nxt and nxt in "*?{":  # the literal is optional
            return "".join(out), False
        out.append(lit)
        if nxt == "+":
            return "".join(out), False
        i += step
    return "".join(out), True


def _next_string(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``."""
    code = ord(prefix[-1]) + 1
    if code > 0x10FFFF:
        return None
    if 0xD800 <= code <= 0xDFFF:  # surrogates cannot be stored
        code = 0xE000
    return prefix[:-1] + chr(code)


class _Leaf:
    """A place holding one value: its SQL value and its ``json_type``."""

    __slots__ = ("jtype", "value")

    def __init__(self, value: str, jtype: str) -> None:
        self.value, self.jtype = value, jtype

    @classmethod
    def at(cls, base: str, segs: Sequence[str]) -> _Leaf:
        p = json_path(segs)
        return cls(f"json_extract({base}, {p})", f"json_type({base}, {p})")


_ID_LEAF = _Leaf("id", "'text'")  # ids are ObjectIds or strings: always text


class _Ctx:
    __slots__ = ("aliases", "params")

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.aliases = 0

    def param(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return ":" + name

    def alias(self) -> str:
        self.aliases += 1
        return f"j{self.aliases}"


def _elem_object(alias: str) -> str:
    # json_extract on a non-object element would fail on plain text values.
    return f"(CASE WHEN {alias}.type = 'object' THEN {alias}.value END)"


class Translator:
    """Filters and sorts of one collection (which declares ``array_fields``)."""

    def __init__(self, array_fields: frozenset[str] = frozenset()) -> None:
        self.array_fields = frozenset(array_fields)
        self._array_cache: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}

    def where(self, filter: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """``(sql, params)``; ``sql`` is empty when everything matches."""
        if not filter:
            validate_filter(filter)
            return "", {}
        validate_filter(filter, array_fields=self.array_fields)
        ctx = _Ctx()
        return self._filter(ctx, filter, "doc", (), True), ctx.params

    def order_by(self, sort: Sequence[tuple[str, int]] | None) -> str:
        if not sort:
            return ""
        validate_sort(sort, array_fields=self.array_fields)
        keys = (field_expr(p) + (" DESC" if d < 0 else "") for p, d in sort)
        return " ORDER BY " + ", ".join(keys)

    def _array_at(self, prefix: tuple[str, ...], segs: tuple[str, ...]) -> int:
        """How many of ``segs`` lead to the first declared array (0: none)."""
        key = (prefix, segs)
        k = self._array_cache.get(key)
        if k is None:
            k = next((k for k in range(1, len(segs) + 1)
                      if ".".join(prefix + segs[:k]) in self.array_fields), 0)
            if len(self._array_cache) < 4096:
                self._array_cache[key] = k
        return k

    # -- filters ----------------------------------------------------------------------

    def _filter(self, ctx: _Ctx, f: Mapping[str, Any], base: str,
                prefix: tuple[str, ...], top: bool) -> str:
        parts = []
        for key, cond in f.items():
            if key in LOGICAL_OPS:
                subs = [self._filter(ctx, sub, base, prefix, top) for sub in cond]
                if key == "$and":
                    parts.append("(" + " AND ".join(subs) + ")")
                elif key == "$or":
                    parts.append("(" + " OR ".join(subs) + ")")
                else:
                    parts.append("NOT IFNULL((" + " OR ".join(subs) + "), 0)")
                continue
            segs = split_path(key)
            is_id = top and key == "_id"
            if is_operator_doc(cond):
                for op, arg in cond.items():
                    if op != "$options":
                        parts.append(self._op(ctx, base, prefix, segs, is_id, op, arg, cond))
            else:
                parts.append(self._op(ctx, base, prefix, segs, is_id, "$eq", cond, None))
        return " AND ".join(parts) if parts else "1"

    def _op(self, ctx: _Ctx, base: str, prefix: tuple[str, ...], segs: tuple[str, ...],
            is_id: bool, op: str, arg: Any, cond: Mapping[str, Any] | None) -> str:
        negate = op in ("$ne", "$nin") or (op == "$exists" and not arg)
        if negate:
            op = {"$ne": "$eq", "$nin": "$in"}.get(op, op)
        if is_id:
            sql = self._leaf(ctx, _ID_LEAF, op, arg, cond)
        else:
            sql = self._path(ctx, base, prefix, segs, op, arg, cond)
        # NULL (unknown) must count as "no match" before being negated.
        return f"NOT IFNULL({sql}, 0)" if negate else sql

    def _path(self, ctx: _Ctx, base: str, prefix: tuple[str, ...], segs: tuple[str, ...],
              op: str, arg: Any, cond: Mapping[str, Any] | None) -> str:
        k = self._array_at(prefix, segs) if self.array_fields else 0
        if not k:
            return self._leaf(ctx, _Leaf.at(base, segs), op, arg, cond)
        arr, alias = json_path(segs[:k]), ctx.alias()
        each = f"SELECT 1 FROM json_each({base}, {arr}) AS {alias} WHERE"
        if k < len(segs):  # reach into every sub-document element
            inner = self._path(ctx, _elem_object(alias), prefix + segs[:k], segs[k:],
                               op, arg, cond)
            return f"EXISTS ({each} {inner})"
        whole = _Leaf.at(base, segs)
        elem = _Leaf(f"{alias}.value", f"{alias}.type")
        if op == "$exists":
            return f"{whole.jtype} IS NOT NULL"
        if op == "$elemMatch":
            if is_operator_doc(arg) and not (set(arg) & LOGICAL_OPS):
                sub = " AND ".join(self._elem_op(ctx, elem, o, a, arg)
                                   for o, a in arg.items() if o != "$options")
            else:
                sub = (f"{alias}.type = 'object' AND "
                       + self._filter(ctx, arg, _elem_object(alias), prefix + segs, False))
            return f"({whole.jtype} = 'array' AND EXISTS ({each} {sub}))"
        parts = [f"EXISTS ({each} {self._leaf(ctx, elem, op, arg, cond)})"]
        values = [arg] if op == "$eq" else arg if op == "$in" else []
        if any(v is None for v in values):
            parts.append(f"{whole.jtype} IS NULL")  # missing
        lists = [v for v in values if type(v) in (list, tuple)]
        if lists:  # whole-array equality
            parts.append(self._leaf(ctx, whole, "$in", lists, None))
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _elem_op(self, ctx: _Ctx, elem: _Leaf, op: str, arg: Any,
                 cond: Mapping[str, Any]) -> str:
        if op in ("$ne", "$nin") or (op == "$exists" and not arg):
            pos = {"$ne": "$eq", "$nin": "$in"}.get(op, op)
            return f"NOT IFNULL({self._leaf(ctx, elem, pos, arg, cond)}, 0)"
        return self._leaf(ctx, elem, op, arg, cond)

    # -- one value --------------------------------------------------------------------

    def _leaf(self, ctx: _Ctx, leaf: _Leaf, op: str, arg: Any,
              cond: Mapping[str, Any] | None) -> str:
        if op == "$eq":
            return self._eq(ctx, leaf, arg)
        if op == "$in":
            return self._in(ctx, leaf, arg)
        if op in RANGE_OPS:
            return self._range(ctx, leaf, op, arg)
        if op == "$exists":
            return f"{leaf.jtype} IS NOT NULL"
        if op == "$regex":
            return self._regex(ctx, leaf, arg, (cond or {}).get("$options", ""))
        raise AssertionError(op)  # validate_filter let through something unexpected

    def _eq(self, ctx: _Ctx, leaf: _Leaf, x: Any) -> str:
        v, t = leaf.value, leaf.jtype
        tx = type(x)
        if x is None:
            return f"{v} IS NULL"
        if tx is bool:
            return f"{t} = {'true' if x else 'false'!r}"
        if tx in (dict, list, tuple):
            return f"joist_eq({v}, {t}, {ctx.param(encode_json(x))})"
        enc = encode_scalar(x)
        p = ctx.param(enc)
        if tx in (int, float) and x in (0, 1):  # json true/false read as 1/0
            return f"({v} = {p} AND {t} IN ('integer', 'real'))"
        if tx is str and enc[:1] in ("{", "["):  # could be an object's JSON text
            return f"({v} = {p} AND {t} = 'text')"
        return f"{v} = {p}"

    def _in(self, ctx: _Ctx, leaf: _Leaf, values: Sequence[Any]) -> str:
        plain, parts = [], []
        for x in values:
            tx = type(x)
            if (x is None or tx in (bool, dict, list, tuple)
                    or (tx in (int, float) and x in (0, 1))
                    or (tx is str and x[:1] in ("{", "["))):
                parts.append(self._eq(ctx, leaf, x))
            else:
                plain.append(encode_scalar(x))
        if len(plain) > _IN_INLINE_MAX:
            p = ctx.param(json.dumps(plain, ensure_ascii=False))
            parts.insert(0, f"{leaf.value} IN (SELECT value FROM json_each({p}))")
        elif len(plain) == 1:
            parts.insert(0, f"{leaf.value} = {ctx.param(plain[0])}")
        elif plain:
            names = ", ".join(ctx.param(x) for x in plain)
            parts.insert(0, f"{leaf.value} IN ({names})")
        if not parts:
            return "0"
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _range(self, ctx: _Ctx, leaf: _Leaf, op: str, x: Any) -> str:
        v, t = leaf.value, leaf.jtype
        kind = bracket(x)
        sql_op, upward = _SQL_OPS[op], op in ("$gt", "$gte")
        sql = f"{v} {sql_op} {ctx.param(encode_scalar(x))}"
        if kind == NUMBER:
            # Numbers sort below all text in SQLite; booleans read as 0/1.
            if upward:
                sql += f" AND {v} < ''"
                guard = x < 1 if op == "$gt" else x <= 1
            else:
                guard = x > 0 if op == "$lt" else x >= 0
            return sql + f" AND {t} IN ('integer', 'real')" if guard else sql
        if kind in (OBJECTID, DATETIME):
            tag = OID if kind == OBJECTID else DATE
            if upward:
                return sql + f" AND {v} < {ctx.param(tag[0] + chr(ord(tag[1]) + 1))}"
            return sql + f" AND {v} >= {ctx.param(tag)}"
        enc = encode_scalar(x)
        lo, hi = (enc, None) if upward else ("", enc)
        if not upward:
            sql += f" AND {v} >= ''"
        if lo < TAGGED_HI and (hi is None or hi >= TAGGED_LO):
            sql += f" AND ({v} < {ctx.param(TAGGED_LO)} OR {v} >= {ctx.param(TAGGED_HI)})"
        if lo < "|" and (hi is None or hi >= "["):  # objects/arrays read as JSON text
            sql += f" AND {t} = 'text'"
        return sql

    def _regex(self, ctx: _Ctx, leaf: _Leaf, pattern: str, options: str) -> str:
        v, t = leaf.value, leaf.jtype
        prefix, exact = literal_prefix(pattern) if options != "i" else ("", False)
        upper = _next_string(prefix) if prefix else None
        parts = []
        if upper is not None and prefix[0] not in "\x1e[{":
            # An index-friendly range; every value in it is a plain string.
            parts = [f"{v} >= {ctx.param(prefix)}", f"{v} < {ctx.param(upper)}"]
            if exact:
                return " AND ".join(parts)
        parts.append(f"joist_regexp({ctx.param(pattern)}, {ctx.param(options)}, {v}, {t})")
        return " AND ".join(parts)
