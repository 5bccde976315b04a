"""Updates of the query subset: validation, application, upsert seeds.

MongoDB's semantics for ``$set $unset $inc $push $pull $addToSet $setOnInsert
$min $max`` (with ``$each``), dotted paths creating intermediate documents.
The subset is documented in ``query.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError
from .codec import MISSING, NUMBER, bracket, check_value, compare_values, values_equal
from .query import (
    UPDATE_OPS,
    _check_operand,
    _check_overlaps,
    _match,
    _match_op,
    _validate_cond,
    is_operator_doc,
    split_path,
    validate_filter,
)

# -- updates -----------------------------------------------------------------------

def validate_update(update: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...], Any]]:
    """The update's ``(operator, path, argument)`` items, in application order."""
    if not isinstance(update, Mapping) or not update:
        raise ValidationError("an update must be a non-empty dict of operators")
    ops = [k for k in update if type(k) is str and k[:1] == "$"]
    if len(ops) != len(update):
        if ops:
            raise ValidationError("an update may not mix operators and plain fields")
        raise ValidationError("an update needs operators such as $set "
                              "(use replace_one to replace a document)")
    items = []
    for op, fields in update.items():
        if op not in UPDATE_OPS:
            raise ValidationError(f"unsupported update operator {op}")
        if not isinstance(fields, Mapping):
            raise ValidationError(f"{op} needs a dict of fields")
        for path, arg in fields.items():
            segs = split_path(path)
            _validate_update_arg(op, path, arg)
            items.append((op, segs, arg))
    _check_overlaps([segs for _, segs, _ in items], "update")
    items.sort(key=lambda item: item[1])
    return items


def _validate_update_arg(op: str, path: str, arg: Any) -> None:
    if op == "$inc":
        if bracket(arg) != NUMBER:
            raise ValidationError(f"$inc on {path} needs a number")
        check_value(arg, path)
    elif op in ("$push", "$addToSet") and is_operator_doc(arg):
        if set(arg) != {"$each"} or not isinstance(arg["$each"], list | tuple):
            raise ValidationError(f"{op} on {path}: only {{'$each': [...]}} is supported")
        for v in arg["$each"]:
            _check_operand(v, path)
    elif op == "$pull" and is_operator_doc(arg):
        _validate_cond((), split_path(path), arg, None)
    elif op == "$pull" and type(arg) is dict:
        validate_filter(arg)
    elif op != "$unset":
        _check_operand(arg, path)


def apply_update(doc: Mapping[str, Any], update: Mapping[str, Any], *,
                 is_insert: bool = False) -> dict[str, Any]:
    """A new document: ``doc`` with ``update`` applied (``doc`` is untouched;
    unchanged sub-objects are shared). ``is_insert`` enables ``$setOnInsert``."""
    new = dict(doc)
    owned = {id(new)}
    for op, segs, arg in validate_update(update):
        if op == "$setOnInsert":
            if not is_insert:
                continue
            op = "$set"
        parent = _parent(new, segs, owned, op not in ("$unset", "$pull"))
        if parent is None:
            continue
        key = segs[-1]
        cur = parent.get(key, MISSING)
        if op == "$pull" and cur is MISSING:
            continue
        if op == "$set":
            parent[key] = _copy(arg)
        elif op == "$unset":
            parent.pop(key, None)
        elif op == "$inc":
            if cur is MISSING:
                parent[key] = arg
            elif bracket(cur) != NUMBER:
                raise ValidationError(f"$inc on {'.'.join(segs)}: not a number")
            else:
                parent[key] = cur + arg
        elif op in ("$min", "$max"):
            sign = -1 if op == "$min" else 1
            if cur is MISSING or compare_values(arg, cur) * sign > 0:
                parent[key] = _copy(arg)
        else:
            parent[key] = _array_op(op, segs, cur, arg)
    if "_id" in doc and ("_id" not in new or not values_equal(new["_id"], doc["_id"])):
        raise ValidationError("_id cannot be changed")
    return new


def _parent(root: dict[str, Any], segs: tuple[str, ...], owned: set[int],
            create: bool) -> dict[str, Any] | None:
    cur = root
    for i, s in enumerate(segs[:-1]):
        child = cur.get(s, MISSING)
        if child is MISSING and create:
            child = cur[s] = {}
            owned.add(id(child))
        elif type(child) is dict:
            if id(child) not in owned:  # copy on write: never touch the input
                child = cur[s] = dict(child)
                owned.add(id(child))
        elif child is MISSING:
            return None
        elif create:
            raise ValidationError(f"cannot create field {segs[i + 1]!r} in "
                                  f"{'.'.join(segs[:i + 1])} (a {type(child).__name__})")
        else:
            return None
        cur = child
    return cur


def _copy(value: Any) -> Any:
    t = type(value)
    if t is dict:
        return {k: _copy(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [_copy(v) for v in value]
    return value


def _array_op(op: str, segs: tuple[str, ...], cur: Any, arg: Any) -> Any:
    path = ".".join(segs)
    if cur is not MISSING and type(cur) is not list:
        raise ValidationError(f"{op} on {path}: not an array")
    if op == "$pull":
        return [e for e in cur if not _pull_matches(e, arg)]
    items = arg["$each"] if is_operator_doc(arg) else [arg]
    out = list(cur) if cur is not MISSING else []
    for v in items:
        if op == "$push" or not any(values_equal(e, v) for e in out):
            out.append(_copy(v))
    return out


def _pull_matches(elem: Any, arg: Any) -> bool:
    if is_operator_doc(arg):
        return all(_match_op([elem], op, a, arg, True) for op, a in arg.items())
    if type(arg) is dict:
        return type(elem) is dict and _match(elem, arg)
    return values_equal(elem, arg)


def upsert_seed(filter: Mapping[str, Any] | None) -> dict[str, Any]:
    """The document an upsert starts from: the filter's equality parts."""
    seed: dict[str, Any] = {}
    paths: list[tuple[str, ...]] = []

    def visit(f: Mapping[str, Any]) -> None:
        for key, cond in f.items():
            if key == "$and":
                for sub in cond:
                    visit(sub)
            elif key[:1] != "$":
                if is_operator_doc(cond):
                    if "$eq" not in cond:
                        continue
                    cond = cond["$eq"]
                segs = split_path(key)
                paths.append(segs)
                _check_overlaps(paths, "upsert filter")
                parent = _parent(seed, segs, set(), True)
                assert parent is not None
                parent[segs[-1]] = _copy(cond)

    if filter:
        visit(filter)
    return seed


