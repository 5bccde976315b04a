"""Document operations of one MongoDB collection (see ``mongo.py``).

Filters, sorts and updates are validated against the port's subset
(``query.py``), then sent to the server unchanged. Three things are done here
rather than left to the server, so that results match the SQLite engine:

* upserts: the server seeds a new document from the filter by its own rules
  (it also takes, e.g., a one-clause ``$or``); the port's rule is
  ``query.upsert_seed``. So an upsert is "update; if nothing matched, insert
  the seeded document; if that insert loses a race, update again";
* ``insert_many`` and ``update_many`` that hit a duplicate key undo what they
  had already written, as the port promises all or nothing (other clients may
  glimpse the partial write meanwhile; SQLite readers never do);
* a duplicate key names its index in ``field``: from the server's message, or,
  when a client gives none (mongomock), by looking for the clashing document.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, ParamSpec, TypeVar

from bson import ObjectId
from bson.errors import BSONError
from pymongo import ReturnDocument
from pymongo import errors as mongo_errors

from ..errors import CoreError, StorageError, ValidationError
from .codec import check_value
from .engine import (
    Collection,
    CollectionSpec,
    Document,
    DuplicateKeyError,
    Filter,
    SortSpec,
    Update,
    UpdateResult,
)
from .query import (
    distinct_values,
    project,
    resolve,
    split_path,
    upsert_seed,
    validate_filter,
    validate_projection,
    validate_sort,
    validate_update,
)
from .updates import apply_update

__all__ = ["MongoCollection", "duplicate_key_error", "mongo_errors_mapped"]

_UPSERT_TRIES = 3
_DUP_INDEX_RE = re.compile(r"index: (\S+) dup key")
# Server error codes that mean "this input is refused", not "the store failed".
_BAD_INPUT_CODES = frozenset({2, 9, 14, 16, 17, 28, 40, 52, 54, 55, 56, 57, 66, 10334,
                              16837, 17419, 31249, 31250})
_P = ParamSpec("_P")
_R = TypeVar("_R")


def duplicate_key_error(exc: mongo_errors.PyMongoError, name: str | None,
                        collection: str = "") -> DuplicateKeyError:
    field = name or _index_in_message(exc)
    where = f"{collection}: " if collection else ""
    return DuplicateKeyError(f"{where}duplicate key for index {field or '?'}", field=field)


def _index_in_message(exc: mongo_errors.PyMongoError) -> str:
    details = getattr(exc, "details", None)
    texts = [str(exc)]
    if isinstance(details, dict):
        texts.append(str(details.get("errmsg", "")))
    for text in texts:
        match = _DUP_INDEX_RE.search(text)
        if match:
            return match.group(1)
    return ""


@contextmanager
def mongo_errors_mapped(what: str = "metadata store") -> Iterator[None]:
    """Turn driver errors into the error taxonomy (the engine's and the GridFS
    assetstore's one choke point)."""
    try:
        yield
    except CoreError:
        raise
    except mongo_errors.DuplicateKeyError as exc:
        raise duplicate_key_error(exc, None) from None
    except (mongo_errors.ConnectionFailure, mongo_errors.ExecutionTimeout,
            mongo_errors.WTimeoutError) as exc:
        # A primary stepping down, a network failure, a timeout: retryable.
        raise StorageError(f"{what} unavailable, try again: {exc}") from exc
    except (mongo_errors.WriteError, mongo_errors.OperationFailure) as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        message = str(details.get("errmsg") or exc)
        # (A server always gives a code; a stand-in client refusing input may not.)
        if isinstance(exc, mongo_errors.WriteError) or exc.code is None \
                or exc.code in _BAD_INPUT_CODES:
            raise ValidationError(f"{what}: {message}") from None
        raise StorageError(f"{what}: {message}") from exc
    except (BSONError, OverflowError) as exc:
        raise ValidationError(f"value cannot be stored: {exc}") from None
    except mongo_errors.PyMongoError as exc:
        raise StorageError(f"{what}: {exc}") from exc


def _mapped(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with mongo_errors_mapped():
            return fn(*args, **kwargs)
    return wrapper


def _projection(projection: Sequence[str] | None) -> dict[str, int] | None:
    validate_projection(projection)
    if projection is None:
        return None
    return {p: 1 for p in projection} or {"_id": 1}  # {} would mean "everything"


def _check_page(skip: int, limit: int) -> None:
    if type(skip) is not int or type(limit) is not int or skip < 0 or limit < 0:
        raise ValidationError("skip and limit must be integers >= 0")


def _check_doc(doc: Mapping[str, Any]) -> None:
    if not isinstance(doc, dict):
        raise ValidationError("a document must be a dict")
    _id = doc.get("_id")
    if type(_id) is not ObjectId and not isinstance(_id, str):
        raise ValidationError("_id must be an ObjectId or a string")
    check_value(doc, "document")


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _plain_get(doc: Any, path: str) -> Any:
    for seg in split_path(path):
        if type(doc) is not dict:
            return None
        doc = doc.get(seg)
    return doc


class MongoCollection(Collection):
    def __init__(self, raw: Any, spec: CollectionSpec) -> None:
        self.raw = raw  # the driver's collection (pymongo or a stand-in)
        self.spec = spec
        self._unique = [(ix.index_name, [f for f, _ in ix.keys], ix.sparse)
                        for ix in spec.indexes if ix.unique and ix.keys]

    # -- validation and errors --------------------------------------------------------

    def _check_filter(self, filter: Filter | None) -> dict[str, Any]:
        validate_filter(filter, array_fields=self.spec.array_fields)
        return dict(filter) if filter else {}

    def _sort(self, sort: SortSpec | None) -> list[tuple[str, int]] | None:
        validate_sort(sort, array_fields=self.spec.array_fields)
        return [(p, d) for p, d in sort] if sort else None

    def _duplicate(self, exc: mongo_errors.PyMongoError, doc: Mapping[str, Any] | None,
                   paths: Iterable[str] = ()) -> DuplicateKeyError:
        name = _index_in_message(exc) or self._guess_index(doc, list(paths))
        return duplicate_key_error(exc, name, self.name)

    def _guess_index(self, doc: Mapping[str, Any] | None, paths: list[str]) -> str:
        """The unique index a write broke, for clients that do not say."""
        if doc is not None:
            if self.raw.count_documents({"_id": doc["_id"]}, limit=1):
                return "_id_"
            for name, fields, sparse in self._unique:
                key = {f: _plain_get(doc, f) for f in fields}
                if sparse and key[fields[0]] is None:
                    continue
                if self.raw.count_documents({**key, "_id": {"$ne": doc["_id"]}}, limit=1):
                    return name
        for name, fields, _ in self._unique:
            if any(_overlap(f, p) for f in fields for p in paths):
                return name
        return ""

    def _write(self, action: Callable[[], _R], doc: Mapping[str, Any] | None = None,
               paths: Iterable[str] = ()) -> _R:
        try:
            return action()
        except mongo_errors.DuplicateKeyError as exc:
            raise self._duplicate(exc, doc, paths) from None

    def _touches_unique(self, paths: Iterable[str]) -> bool:
        return any(_overlap(f, p) for _, fields, _ in self._unique for f in fields
                   for p in paths)

    # -- reads ------------------------------------------------------------------------

    @_mapped
    def find(self, filter: Filter | None = None, *, sort: SortSpec | None = None,
             skip: int = 0, limit: int = 0,
             projection: Sequence[str] | None = None) -> list[Document]:
        query = self._check_filter(filter)
        order = self._sort(sort)
        _check_page(skip, limit)
        return list(self.raw.find(query, projection=_projection(projection), sort=order,
                                  skip=skip, limit=limit))

    def find_one(self, filter: Filter | None = None, *, sort: SortSpec | None = None,
                 projection: Sequence[str] | None = None) -> Document | None:
        found = self.find(filter, sort=sort, limit=1, projection=projection)
        return found[0] if found else None

    @_mapped
    def count(self, filter: Filter | None = None) -> int:
        return int(self.raw.count_documents(self._check_filter(filter)))

    @_mapped
    def distinct(self, key: str, filter: Filter | None = None) -> list[Any]:
        # Computed here, as the SQLite engine does for array paths: the port's
        # order and kinds exactly, and no 16 MiB cap on the server's answer.
        segs = split_path(key)
        docs = self.raw.find(self._check_filter(filter), projection={segs[0]: 1})
        return distinct_values(v for doc in docs for v in resolve(doc, segs))

    # -- writes -----------------------------------------------------------------------

    @_mapped
    def insert_one(self, doc: Document) -> Any:
        if isinstance(doc, dict) and "_id" not in doc:
            doc["_id"] = ObjectId()
        _check_doc(doc)
        self._write(lambda: self.raw.insert_one(doc), doc)
        return doc["_id"]

    @_mapped
    def insert_many(self, docs: Iterable[Document]) -> list[Any]:
        docs = list(docs)
        for doc in docs:
            if isinstance(doc, dict) and "_id" not in doc:
                doc["_id"] = ObjectId()
            _check_doc(doc)
        if not docs:
            return []
        try:
            self.raw.insert_many(docs, ordered=True)
        except mongo_errors.BulkWriteError as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            first = (details.get("writeErrors") or [{}])[0]
            index = int(first.get("index", 0))
            if first.get("code") == 11000:
                error: CoreError = self._duplicate(
                    mongo_errors.DuplicateKeyError(str(first.get("errmsg", "")), 11000),
                    docs[index] if index < len(docs) else None)
            else:
                error = ValidationError(f"metadata store: {first.get('errmsg', exc)}")
            inserted = docs[:int(details.get("nInserted", index))]  # ordered: a prefix
            if inserted:  # all or nothing: take back the ones before the failure
                self.raw.delete_many({"_id": {"$in": [d["_id"] for d in inserted]}})
            raise error from None
        return [d["_id"] for d in docs]

    def _seeded(self, filter: Filter, update: Update) -> Document:
        new = apply_update(upsert_seed(filter), update, is_insert=True)
        if "_id" not in new:
            new = {"_id": ObjectId(), **new}
        _check_doc(new)
        return new

    def _upsert(self, attempt: Callable[[], tuple[bool, _R]], build: Callable[[], Document],
                inserted: Callable[[Document], _R], paths: list[str]) -> _R:
        """Update, or insert ``build()`` when nothing matched (see the module
        docstring); a lost insert race sends us back to the update."""
        for tries_left in range(_UPSERT_TRIES - 1, -1, -1):
            matched, result = self._write(attempt, None, paths)
            if matched:
                return result
            new = build()
            try:
                self._write(functools.partial(self.raw.insert_one, new), new)
            except DuplicateKeyError:
                if not tries_left:
                    raise
                continue
            return inserted(new)
        raise StorageError("upsert did not settle")  # not reached: the loop raises

    @_mapped
    def update_one(self, filter: Filter, update: Update, *,
                   upsert: bool = False) -> UpdateResult:
        paths = [".".join(s) for _, s, _ in validate_update(update)]
        query = self._check_filter(filter)

        def attempt() -> tuple[bool, UpdateResult]:
            r = self.raw.update_one(query, dict(update))
            return r.matched_count > 0, UpdateResult(r.matched_count, r.modified_count)

        if not upsert:
            return self._write(attempt, None, paths)[1]
        return self._upsert(attempt, lambda: self._seeded(query, update),
                            lambda new: UpdateResult(0, 0, new["_id"]), paths)

    @_mapped
    def update_many(self, filter: Filter, update: Update) -> UpdateResult:
        paths = [".".join(s) for _, s, _ in validate_update(update)]
        query = self._check_filter(filter)
        before = list(self.raw.find(query)) if self._touches_unique(paths) else None
        try:
            r = self.raw.update_many(query, dict(update))
        except mongo_errors.DuplicateKeyError as exc:
            error = self._duplicate(exc, None, paths)
            for doc in before or ():  # all or nothing: put back what was changed
                self.raw.replace_one({"_id": doc["_id"]}, doc)
            raise error from None
        return UpdateResult(r.matched_count, r.modified_count)

    @_mapped
    def find_one_and_update(self, filter: Filter, update: Update, *,
                            sort: SortSpec | None = None, upsert: bool = False,
                            return_document: Literal["before", "after"] = "after",
                            projection: Sequence[str] | None = None
                            ) -> Document | None:
        paths = [".".join(s) for _, s, _ in validate_update(update)]
        query, order, fields = self._check_filter(filter), self._sort(sort), \
            _projection(projection)
        if return_document not in ("before", "after"):
            raise ValidationError("return_document must be 'before' or 'after'")
        after = return_document == "after"

        def attempt() -> tuple[bool, Document | None]:
            doc = self.raw.find_one_and_update(
                query, dict(update), projection=fields, sort=order,
                return_document=ReturnDocument.AFTER if after else ReturnDocument.BEFORE)
            return doc is not None, doc

        if not upsert:
            return self._write(attempt, None, paths)[1]
        return self._upsert(attempt, lambda: self._seeded(query, update),
                            lambda new: project(new, projection) if after else None, paths)

    @_mapped
    def replace_one(self, filter: Filter, doc: Document, *,
                    upsert: bool = False) -> UpdateResult:
        if not isinstance(doc, Mapping) or any(str(k).startswith("$") for k in doc):
            raise ValidationError("a replacement is a document without operators")
        query = self._check_filter(filter)
        check_value(dict(doc), "document")
        paths = [k for k in doc if k != "_id"]

        def attempt() -> tuple[bool, UpdateResult]:
            r = self.raw.replace_one(query, dict(doc))
            return r.matched_count > 0, UpdateResult(r.matched_count, r.modified_count)

        def build() -> Document:
            _id = doc["_id"] if "_id" in doc else upsert_seed(query).get("_id", ObjectId())
            new = {"_id": _id, **{k: v for k, v in doc.items() if k != "_id"}}
            _check_doc(new)
            return new

        if not upsert:
            return self._write(attempt, None, paths)[1]
        return self._upsert(attempt, build, lambda new: UpdateResult(0, 0, new["_id"]), paths)

    @_mapped
    def delete_one(self, filter: Filter) -> int:
        return int(self.raw.delete_one(self._check_filter(filter)).deleted_count)

    @_mapped
    def delete_many(self, filter: Filter) -> int:
        return int(self.raw.delete_many(self._check_filter(filter)).deleted_count)
