"""The query subset every engine supports, with MongoDB semantics.

Filters (a ``dict``; its entries are ANDed)
-------------------------------------------
* ``{"path": value}``: equality. ``path`` is dotted (``"meta.size"``); a segment
  may not be empty, start with ``$``, be all digits (no positional paths) or
  contain ``"``. ``value`` may be a whole sub-document (field order matters,
  as in MongoDB) or a list (whole-array equality). ``None`` matches a null or
  missing field. ``1 == 1.0`` but ``True != 1``.
* ``{"path": {"$op": arg, ...}}`` with these operators (ANDed):
  ``$eq $ne $in $nin`` (values as for equality; ``$ne``/``$nin`` also match a
  missing field), ``$gt $gte $lt $lte`` (``arg`` a number, string, datetime or
  ObjectId; only values of the same kind compare: a number is never ``$gt`` a
  string), ``$exists`` (bool), ``$regex`` (a Python/PCRE-common pattern,
  unanchored search, strings only) with optional ``$options`` ``"i"``, and
  ``$elemMatch`` (either operators applied to each element, ``{"$gte": 1}``,
  or a filter applied to sub-document elements, ``{"id": x, "level": 2}``).
  A dict mixing ``$``-keys with plain keys is refused.
* ``{"$and": [f, ...]}``, ``{"$or": [f, ...]}``, ``{"$nor": [f, ...]}``.

Arrays follow MongoDB: when the value at a path is an array, equality, ``$in``
and comparisons match when *any* element (or, for equality, the whole array)
does; ``$ne``/``$nin`` mean "no element equals"; a path through an array of
sub-documents (``"access.users.id"``) reaches into every element. Engines may
require such fields to be declared (``CollectionSpec.array_fields``); with it
declared, ``$elemMatch`` is allowed only on declared fields, and null tests
(``None`` in ``$eq $ne $in $nin``) on a path *through* an array are refused
(use ``$elemMatch``), since MongoDB's answer there depends on the element
kinds; ``$exists`` through an array means "some sub-document element has it".

Sorting is by dotted fields, 1 or -1; missing and null sort first ascending.
Values of different kinds sort in MongoDB's order (``codec.compare_values``);
engines only guarantee it between values of one kind. Fields through arrays
cannot be sort keys on engines that declare arrays.

Projection is a list of dotted fields to keep (``_id`` is always kept); one
may not be a prefix of another.

Updates (every key an operator; a plain field is refused: use replace_one)
-------------------------------------------------------------------------
``$set $unset $inc $min $max $setOnInsert`` on dotted paths (missing
intermediate sub-documents are created; going through a non-document, array
included, is refused), ``$push`` and ``$addToSet`` (a value, or
``{"$each": [...]}``), ``$pull`` (a value, a condition on elements such as
``{"$gte": 3}``, or a filter for sub-document elements such as ``{"id": x}``).
Two paths of one update may not overlap (``a`` and ``a.b``), and ``_id``
cannot change. Fields are applied in lexicographic order, as MongoDB >= 5 does.
Upserts seed the new document with the equality parts of the filter (plain
values and ``$eq``, also inside ``$and``), then apply the update with
``$setOnInsert`` honoured.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cmp_to_key, lru_cache
from itertools import pairwise
from typing import Any

from ..errors import ValidationError
from .codec import (
    DATETIME,
    MISSING,
    NUMBER,
    OBJECTID,
    STRING,
    bracket,
    check_value,
    compare_values,
    values_equal,
)

__all__ = [
    "apply_update", "distinct_values", "is_operator_doc", "matches", "project",
    "resolve", "sort_key", "split_path", "upsert_seed", "validate_filter",
    "validate_projection", "validate_sort", "validate_update",
]

LOGICAL_OPS = frozenset({"$and", "$or", "$nor"})
FIELD_OPS = frozenset({"$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte",
                       "$exists", "$regex", "$options", "$elemMatch"})
RANGE_OPS = frozenset({"$gt", "$gte", "$lt", "$lte"})
UPDATE_OPS = frozenset({"$set", "$unset", "$inc", "$push", "$pull", "$addToSet",
                        "$setOnInsert", "$min", "$max"})
_RANGE_KINDS = (NUMBER, STRING, DATETIME, OBJECTID)


# -- paths and validation -----------------------------------------------------------

@lru_cache(maxsize=4096)
def split_path(path: str) -> tuple[str, ...]:
    """The segments of a dotted path, refusing what is outside the subset."""
    if type(path) is not str or not path:
        raise ValidationError(f"invalid field path {path!r}")
    segs = tuple(path.split("."))
    for s in segs:
        if not s or s[0] == "$" or s.isdigit() or '"' in s or "\x00" in s:
            raise ValidationError(f"invalid field path {path!r}")
    return segs


def is_operator_doc(value: Any) -> bool:
    """True for ``{"$gt": 1}``-like dicts; refuses dicts mixing both kinds."""
    if type(value) is not dict or not value:
        return False
    dollars = sum(1 for k in value if type(k) is str and k[:1] == "$")
    if dollars and dollars != len(value):
        raise ValidationError(f"{value!r} mixes operators and field names")
    return dollars > 0


def _check_operand(value: Any, path: str) -> None:
    check_value(value, path)
    if type(value) is dict and any(type(k) is str and k[:1] == "$" for k in value):
        raise ValidationError(f"{path}: field names may not start with '$'")


def validate_filter(filter: Mapping[str, Any] | None, *,
                    array_fields: frozenset[str] | None = None,
                    _prefix: tuple[str, ...] = ()) -> None:
    """Raise ``ValidationError`` unless ``filter`` is in the subset.

    With ``array_fields`` (a collection's declared arrays) also refuse
    ``$elemMatch`` on undeclared fields and null tests through arrays.
    """
    if filter is None:
        return
    if not isinstance(filter, Mapping):
        raise ValidationError(f"a filter must be a dict, not {type(filter).__name__}")
    for key, cond in filter.items():
        if type(key) is not str:
            raise ValidationError(f"invalid filter key {key!r}")
        if key[:1] == "$":
            if key not in LOGICAL_OPS:
                raise ValidationError(f"unsupported query operator {key}")
            if not isinstance(cond, list | tuple) or not cond:
                raise ValidationError(f"{key} needs a non-empty list of filters")
            for sub in cond:
                validate_filter(sub, array_fields=array_fields, _prefix=_prefix)
            continue
        _validate_cond(_prefix, split_path(key), cond, array_fields)


def _validate_cond(prefix: tuple[str, ...], segs: tuple[str, ...], cond: Any,
                   af: frozenset[str] | None) -> None:
    path = ".".join(prefix + segs)
    if not is_operator_doc(cond):
        _check_operand(cond, path)
        if cond is None:
            _check_null_path(prefix, segs, af)
        return
    for op, arg in cond.items():
        if op not in FIELD_OPS:
            raise ValidationError(f"unsupported query operator {op} on {path}")
        if op in ("$eq", "$ne"):
            _check_operand(arg, path)
            if arg is None:
                _check_null_path(prefix, segs, af)
        elif op in ("$in", "$nin"):
            if not isinstance(arg, list | tuple):
                raise ValidationError(f"{op} on {path} needs a list")
            for v in arg:
                _check_operand(v, path)
                if v is None:
                    _check_null_path(prefix, segs, af)
        elif op in RANGE_OPS:
            check_value(arg, path)
            if bracket(arg) not in _RANGE_KINDS:
                raise ValidationError(f"{op} on {path} needs a number, string, "
                                      f"datetime or ObjectId, not {type(arg).__name__}")
        elif op == "$exists":
            if type(arg) is not bool:
                raise ValidationError(f"$exists on {path} needs true or false")
        elif op == "$regex":
            if type(arg) is not str:
                raise ValidationError(f"$regex on {path} needs a string pattern")
            compile_regex(arg, cond.get("$options", ""))
        elif op == "$options":
            if "$regex" not in cond or arg not in ("", "i"):
                raise ValidationError(f"$options on {path}: only 'i', with $regex")
        else:
            _validate_elem_match(prefix + segs, arg, af)


def _validate_elem_match(abs_segs: tuple[str, ...], arg: Any,
                         af: frozenset[str] | None) -> None:
    path = ".".join(abs_segs)
    if type(arg) is not dict or not arg:
        raise ValidationError(f"$elemMatch on {path} needs a non-empty dict")
    if af is not None and path not in af:
        raise ValidationError(f"$elemMatch on {path}: not a declared array field")
    if is_operator_doc(arg) and not (set(arg) & LOGICAL_OPS):
        if "$elemMatch" in arg:
            raise ValidationError(f"$elemMatch on {path}: nested arrays are not supported")
        _validate_cond(abs_segs[:-1], abs_segs[-1:], arg, None)
    else:
        validate_filter(arg, array_fields=af, _prefix=abs_segs)


def _check_null_path(prefix: tuple[str, ...], segs: tuple[str, ...],
                     af: frozenset[str] | None) -> None:
    if not af:
        return
    for k in range(1, len(segs)):
        through = ".".join(prefix + segs[:k])
        if through in af:
            raise ValidationError(
                f"null test on {'.'.join(prefix + segs)} goes through array "
                f"field {through}: use $elemMatch")


@lru_cache(maxsize=512)
def compile_regex(pattern: str, options: str = "") -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE if options == "i" else 0)
    except re.error as exc:
        raise ValidationError(f"invalid $regex {pattern!r}: {exc}") from None


def validate_sort(sort: Sequence[tuple[str, int]] | None, *,
                  array_fields: frozenset[str] | None = None) -> None:
    if not sort:
        return
    if isinstance(sort, str | Mapping):
        raise ValidationError("sort must be a list of (field, 1|-1) pairs")
    seen = set()
    for item in sort:
        if not isinstance(item, tuple | list) or len(item) != 2 or item[1] not in (1, -1) \
                or type(item[1]) is bool:
            raise ValidationError(f"invalid sort key {item!r}")
        segs = split_path(item[0])
        if item[0] in seen:
            raise ValidationError(f"sort key {item[0]} given twice")
        seen.add(item[0])
        if array_fields and any(".".join(segs[:k]) in array_fields
                                for k in range(1, len(segs) + 1)):
            raise ValidationError(f"cannot sort on {item[0]}: it goes through an array")


def validate_projection(projection: Sequence[str] | None) -> None:
    if projection is None:
        return
    if isinstance(projection, str | Mapping):
        raise ValidationError("projection must be a list of field names")
    _check_overlaps([split_path(p) for p in projection], "projection")


def _check_overlaps(paths: list[tuple[str, ...]], what: str) -> None:
    ordered = sorted(paths)  # every extension of p sorts right after p
    for a, b in pairwise(ordered):
        if b[:len(a)] == a:
            raise ValidationError(f"{what}: paths {'.'.join(a)} and {'.'.join(b)} overlap")


# -- matching ----------------------------------------------------------------------

def resolve(doc: Any, segs: tuple[str, ...]) -> list[Any]:
    """The values a path reaches (MISSING where it ends), through arrays."""
    out: list[Any] = []
    _walk(doc, segs, 0, out)
    return out


def _walk(cur: Any, segs: tuple[str, ...], i: int, out: list[Any]) -> None:
    while i < len(segs):
        if type(cur) is dict:
            cur = cur.get(segs[i], MISSING)
            if cur is MISSING:
                out.append(MISSING)
                return
            i += 1
        elif type(cur) is list:
            for el in cur:  # MongoDB reaches into sub-document elements
                if type(el) is dict:
                    _walk(el, segs, i, out)
            return
        else:
            out.append(MISSING)
            return
    out.append(cur)


def matches(doc: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """Whether ``doc`` matches ``filter`` (MongoDB semantics, no declarations)."""
    validate_filter(filter)
    return filter is None or _match(doc, filter)


def _match(doc: Any, filter: Mapping[str, Any]) -> bool:
    for key, cond in filter.items():
        if key == "$and":
            ok = all(_match(doc, f) for f in cond)
        elif key == "$or":
            ok = any(_match(doc, f) for f in cond)
        elif key == "$nor":
            ok = not any(_match(doc, f) for f in cond)
        else:
            values = resolve(doc, split_path(key))
            if is_operator_doc(cond):
                ok = all(_match_op(values, op, arg, cond, True) for op, arg in cond.items())
            else:
                ok = _eq_any(values, cond, True)
        if not ok:
            return False
    return True


def _candidates(values: list[Any], expand: bool) -> Iterable[Any]:
    for v in values:
        if v is MISSING:
            continue
        yield v
        if expand and type(v) is list:
            yield from v


def _eq_any(values: list[Any], q: Any, expand: bool) -> bool:
    if q is None:
        return any(v is MISSING or v is None
                   or (expand and type(v) is list and any(e is None for e in v))
                   for v in values)
    return any(values_equal(c, q) for c in _candidates(values, expand))


def _match_op(values: list[Any], op: str, arg: Any, cond: Mapping[str, Any],
              expand: bool) -> bool:
    if op == "$eq":
        return _eq_any(values, arg, expand)
    if op == "$ne":
        return not _eq_any(values, arg, expand)
    if op == "$in":
        return any(_eq_any(values, v, expand) for v in arg)
    if op == "$nin":
        return not any(_eq_any(values, v, expand) for v in arg)
    if op in RANGE_OPS:
        kind = bracket(arg)
        for c in _candidates(values, expand):
            if bracket(c) == kind:
                r = compare_values(c, arg)
                if ((op == "$gt" and r > 0) or (op == "$gte" and r >= 0)
                        or (op == "$lt" and r < 0) or (op == "$lte" and r <= 0)):
                    return True
        return False
    if op == "$exists":
        return any(v is not MISSING for v in values) is arg
    if op == "$regex":
        rx = compile_regex(arg, cond.get("$options", ""))
        return any(type(c) is str and rx.search(c) is not None
                   for c in _candidates(values, expand))
    if op == "$options":
        return True
    # $elemMatch: one element satisfies everything
    return any(type(v) is list and any(_elem_matches(e, arg) for e in v) for v in values)


def _elem_matches(elem: Any, spec: Mapping[str, Any]) -> bool:
    if is_operator_doc(spec) and not (set(spec) & LOGICAL_OPS):
        return all(_match_op([elem], op, a, spec, False) for op, a in spec.items())
    return type(elem) is dict and _match(elem, spec)


# -- sort, projection, distinct ----------------------------------------------------

def sort_key(sort: Sequence[tuple[str, int]]) -> Callable[[Mapping[str, Any]], Any]:
    """A ``key=`` function ordering documents by ``sort`` as MongoDB does."""
    validate_sort(sort)
    keys = [(split_path(p), d) for p, d in sort]

    def cmp(a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
        for segs, d in keys:
            c = compare_values(_sort_value(a, segs, d), _sort_value(b, segs, d))
            if c:
                return c * d
        return 0

    return cmp_to_key(cmp)


def _sort_value(doc: Any, segs: tuple[str, ...], direction: int) -> Any:
    found: list[Any] = []
    for v in resolve(doc, segs):
        if type(v) is list:
            found.extend(v)  # arrays sort by their min (ascending) or max element
        else:
            found.append(None if v is MISSING else v)
    if not found:
        return None
    best = found[0]
    for v in found[1:]:
        if compare_values(v, best) * direction > 0:
            best = v
    return best


def project(doc: Mapping[str, Any], projection: Sequence[str] | None) -> dict[str, Any]:
    """``doc`` keeping only the listed fields (and ``_id``), in document order."""
    if projection is None:
        return dict(doc)
    validate_projection(projection)
    tree: dict[str, Any] = {"_id": True}
    for p in projection:
        node = tree
        segs = split_path(p)
        for s in segs[:-1]:
            node = node.setdefault(s, {})
        node[segs[-1]] = True
    projected: dict[str, Any] = _project(doc, tree)
    return projected


def _project(value: Any, tree: Any) -> Any:
    if tree is True:
        return value
    if type(value) is dict:
        out = {}
        for k, v in value.items():
            sub = tree.get(k)
            if sub is not None:
                r = _project(v, sub)
                if r is not MISSING:
                    out[k] = r
        return out
    if type(value) is list:
        return [r for e in value if type(e) in (dict, list)
                for r in (_project(e, tree),) if r is not MISSING]
    return MISSING


def distinct_values(values: Iterable[Any]) -> list[Any]:
    """Distinct values, arrays unwound one level, MISSING dropped, first seen first."""
    out: list[Any] = []
    seen: set[Any] = set()
    for v in values:
        for e in (v if type(v) is list else (v,)):
            if e is MISSING:
                continue
            b = bracket(e)
            if b in (NUMBER, STRING, OBJECTID) or e is None or type(e) is bool:
                key = (b, e)
                if key not in seen:
                    seen.add(key)
                    out.append(e)
            elif not any(values_equal(e, o) for o in out):
                out.append(e)
    return out


# Updates live in updates.py; re-exported so ``query`` stays the one entry point.
from .updates import apply_update, upsert_seed, validate_update  # noqa: E402
