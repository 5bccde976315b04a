"""Document operations of one SQLite collection (see ``sqlite.py``)."""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

from bson import ObjectId

from ..errors import StorageError, ValidationError
from .codec import (
    DATE,
    MISSING,
    OID,
    decode_doc,
    decode_sql,
    encode_doc,
    encode_scalar,
    values_equal,
)
from .engine import (
    Collection,
    CollectionSpec,
    Document,
    DuplicateKeyError,
    Filter,
    Index,
    SortSpec,
    Update,
    UpdateResult,
)
from .query import (
    apply_update,
    distinct_values,
    project,
    resolve,
    split_path,
    upsert_seed,
    validate_projection,
    validate_update,
)
from .sqlite_sql import Translator, field_expr, json_path

if TYPE_CHECKING:
    from .sqlite import SQLiteEngine

__all__ = ["SQLiteCollection", "quote_ident"]

PURGE_INTERVAL_S = 60.0  # opportunistic TTL purge, per collection
_P = ParamSpec("_P")
_R = TypeVar("_R")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _mapped(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn SQLite's exceptions into the error taxonomy, at the port's edge."""
    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except sqlite3.IntegrityError as exc:
            self = args[0]
            assert isinstance(self, SQLiteCollection)
            raise self._duplicate(exc) from None
        except (UnicodeEncodeError, OverflowError) as exc:
            raise ValidationError(f"value cannot be stored: {exc}") from None
        except sqlite3.Error as exc:
            raise StorageError(f"metadata store: {exc}") from exc
    return wrapper


class SQLiteCollection(Collection):
    def __init__(self, engine: SQLiteEngine, spec: CollectionSpec) -> None:
        name = spec.name
        if not name or name.startswith("sqlite_") or "$" in name or "\x00" in name:
            raise ValidationError(f"invalid collection name {name!r}")
        for path in spec.array_fields:
            split_path(path)
        self.spec = spec
        self._engine = engine
        self._t = quote_ident(name)
        self._tr = Translator(spec.array_fields)
        self._indexes = self._index_ddl()
        # Unique, non-sparse indexes: SQLite lets NULL keys repeat, MongoDB
        # counts null/missing as one value; checked by hand (see _check_nulls).
        self._null_unique = [
            (ix.index_name, [(split_path(f), field_expr(f)) for f, _ in ix.keys])
            for ix in spec.indexes
            if ix.unique and not ix.sparse and f"{name}${ix.index_name}" in self._indexes]
        self._next_purge = 0.0
        self._by_id = f"SELECT doc FROM {self._t} WHERE id = ?"

    # -- schema -----------------------------------------------------------------------

    def _index_ddl(self) -> dict[str, str]:
        ddl: dict[str, str] = {}
        indexes = list(self.spec.indexes)
        ttl = self.spec.ttl_field
        if ttl and not any(ix.keys[0][0] == ttl for ix in indexes):
            indexes.append(Index(((ttl, 1),), name="ttl"))  # for purge_expired
        for ix in indexes:
            if not ix.keys:
                raise ValidationError(f"index {ix.index_name} has no keys")
            fields = [f for f, _ in ix.keys]
            if fields == ["_id"]:
                continue  # the primary key
            if any(self._through_array(f) for f in fields):
                if ix.unique:
                    raise ValidationError(f"unique index {ix.index_name} on an array "
                                          "field is not supported by SQLite")
                continue  # SQLite cannot index array elements; json_each scans
            cols = ", ".join(field_expr(f) + (" DESC" if d == -1 else "")
                             for f, d in ix.keys)
            name = f"{self.spec.name}${ix.index_name}"
            sql = (f"CREATE {'UNIQUE ' if ix.unique else ''}INDEX {quote_ident(name)} "
                   f"ON {self._t} ({cols})")
            if ix.sparse:
                sql += f" WHERE {field_expr(fields[0])} IS NOT NULL"
            ddl[name] = sql
        return ddl

    def _through_array(self, path: str) -> bool:
        segs = split_path(path)
        return any(".".join(segs[:k]) in self.spec.array_fields
                   for k in range(1, len(segs) + 1))

    @_mapped
    def _create(self) -> None:
        with self._engine.write() as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self._t} "
                         "(id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
            for name, sql in self._indexes.items():
                row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' "
                                   "AND name = ?", (name,)).fetchone()
                if row is not None and row[0] == sql:
                    continue
                if row is not None:  # the declaration changed
                    conn.execute(f"DROP INDEX {quote_ident(name)}")
                conn.execute(sql)

    def _duplicate(self, exc: sqlite3.IntegrityError) -> Exception:
        msg = str(exc)
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_CONSTRAINT_PRIMARYKEY":
            return DuplicateKeyError(f"{self.name}: duplicate _id", field="_id_")
        prefix = f"index '{self.spec.name}$"
        if prefix in msg:
            field = msg.split(prefix, 1)[1].rstrip("'")
            return DuplicateKeyError(f"{self.name}: duplicate key for index {field}",
                                     field=field)
        return StorageError(f"metadata store: {msg}")

    # -- reads ------------------------------------------------------------------------

    def _select(self, what: str, filter: Filter | None, sort: SortSpec | None = None,
                skip: int = 0, limit: int = 0) -> tuple[str, dict[str, Any]]:
        where, params = self._tr.where(filter)
        sql = f"SELECT {what} FROM {self._t}"
        if where:
            sql += " WHERE " + where
        sql += self._tr.order_by(sort)
        if type(skip) is not int or type(limit) is not int or skip < 0 or limit < 0:
            raise ValidationError("skip and limit must be integers >= 0")
        if limit or skip:
            sql += " LIMIT :limit OFFSET :skip"
            params["limit"], params["skip"] = limit or -1, skip
        return sql, params

    def explain(self, filter: Filter | None = None, *, sort: SortSpec | None = None,
                skip: int = 0, limit: int = 0) -> list[str]:
        """The plan SQLite picks for ``find`` (for tests and diagnostics)."""
        sql, params = self._select("doc", filter, sort, skip, limit)
        with self._engine.connection() as conn:
            return [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]

    @_mapped
    def find(self, filter: Filter | None = None, *, sort: SortSpec | None = None,
             skip: int = 0, limit: int = 0,
             projection: Sequence[str] | None = None) -> list[Document]:
        validate_projection(projection)
        sql, params = self._select("doc", filter, sort, skip, limit)
        with self._engine.connection() as conn:
            rows = conn.execute(sql, params).fetchall()
        if projection is None:
            return [decode_doc(r[0]) for r in rows]
        return [project(decode_doc(r[0]), projection) for r in rows]

    @_mapped
    def find_one(self, filter: Filter | None = None, *, sort: SortSpec | None = None,
                 projection: Sequence[str] | None = None) -> Document | None:
        if type(filter) is dict and len(filter) == 1 and sort is None and projection is None:
            oid = filter.get("_id")
            if type(oid) is ObjectId:  # by id, as most lookups are: no translation
                return self._by_id_doc(OID + str(oid))
        validate_projection(projection)
        sql, params = self._select("doc", filter, sort, 0, 1)
        with self._engine.connection() as conn:
            row = conn.execute(sql, params).fetchone()
        if row is None:
            return None
        doc = decode_doc(row[0])
        return doc if projection is None else project(doc, projection)

    def _by_id_doc(self, key: str) -> Document | None:
        """The document whose id column is ``key``, through the engine's
        ``RowCache`` (a fresh decode of the text for every caller)."""
        engine = self._engine
        token = engine.read_token()
        if token is not None:
            text = engine.rows.get(self.spec.name, key, token)
            if text is not None:
                return decode_doc(text)  # type: ignore[no-any-return]
        row = engine.read_one(self._by_id, (key,))
        if row is None:
            return None
        if token is not None:
            engine.rows.put(self.spec.name, key, token, row[0])
        return decode_doc(row[0])  # type: ignore[no-any-return]

    @_mapped
    def count(self, filter: Filter | None = None) -> int:
        sql, params = self._select("count(*)", filter)
        with self._engine.connection() as conn:
            return int(conn.execute(sql, params).fetchone()[0])

    @_mapped
    def distinct(self, key: str, filter: Filter | None = None) -> list[Any]:
        segs = split_path(key)
        with self._engine.connection() as conn:
            if key == "_id":
                sql, params = self._select("id", filter)
                return [decode_sql(r[0], "text") for r in conn.execute(sql, params)]
            if self._through_array(key):
                sql, params = self._select("doc", filter)
                docs = (decode_doc(r[0]) for r in conn.execute(sql, params))
                return distinct_values(v for d in docs for v in resolve(d, segs))
            p = json_path(segs)
            sql, params = self._select(f"DISTINCT json_extract(doc, {p}), json_type(doc, {p})",
                                       filter)
            return distinct_values(MISSING if t is None else decode_sql(v, t)
                                   for v, t in conn.execute(sql, params))

    # -- writes -----------------------------------------------------------------------

    def _encode(self, doc: Mapping[str, Any]) -> tuple[str, str]:
        """``(id column, doc column)``, with ``_id`` first as MongoDB stores it."""
        _id = doc["_id"]
        if type(_id) is not ObjectId and not isinstance(_id, str):
            raise ValidationError("_id must be an ObjectId or a string")
        if next(iter(doc)) != "_id":
            doc = {"_id": _id, **{k: v for k, v in doc.items() if k != "_id"}}
        return encode_scalar(_id), encode_doc(doc)

    def _check_nulls(self, conn: sqlite3.Connection, docs: Iterable[Document]) -> None:
        """MongoDB's rule that a null/missing key is a value in a unique index."""
        for name, fields in self._null_unique:
            for doc in docs:
                values = [_plain_get(doc, segs) for segs, _ in fields]
                if all(v is not None for v in values):
                    continue
                conds, params = [], {"id": encode_scalar(doc["_id"])}
                for i, ((_, expr), v) in enumerate(zip(fields, values, strict=True)):
                    if v is None:
                        conds.append(f"{expr} IS NULL")
                    else:
                        conds.append(f"{expr} = :k{i}")
                        params[f"k{i}"] = encode_scalar(v) if type(v) not in (
                            dict, list) else encode_doc(v)
                sql = (f"SELECT 1 FROM {self._t} WHERE {' AND '.join(conds)} "
                       "AND id != :id LIMIT 1")
                if conn.execute(sql, params).fetchone() is not None:
                    raise DuplicateKeyError(f"{self.name}: duplicate key for index {name}",
                                            field=name)

    @_mapped
    def insert_one(self, doc: Document) -> Any:
        if "_id" not in doc:
            doc["_id"] = ObjectId()
        row = self._encode(doc)
        with self._engine.write() as conn:
            conn.execute(f"INSERT INTO {self._t} (id, doc) VALUES (?, ?)", row)
            if self._null_unique:
                self._check_nulls(conn, (doc,))
        self._maybe_purge()
        return doc["_id"]

    @_mapped
    def insert_many(self, docs: Iterable[Document]) -> list[Any]:
        docs = list(docs)
        for doc in docs:
            if "_id" not in doc:
                doc["_id"] = ObjectId()
        rows = [self._encode(d) for d in docs]
        with self._engine.write() as conn:
            conn.executemany(f"INSERT INTO {self._t} (id, doc) VALUES (?, ?)", rows)
            if self._null_unique:
                self._check_nulls(conn, docs)
        self._maybe_purge()
        return [d["_id"] for d in docs]

    def _modify(self, filter: Filter, change: Callable[[Document], Document],
                insert: Callable[[], Document] | None, *, multi: bool = False,
                sort: SortSpec | None = None
                ) -> tuple[UpdateResult, Document | None, Document | None]:
        """Apply ``change`` to the match(es) in one transaction, or insert
        ``insert()`` when nothing matches. Returns (result, before, after)."""
        sql, params = self._select("id, doc", filter, sort, 0, 0 if multi else 1)
        with self._engine.write() as conn:
            rows = conn.execute(sql, params).fetchall()
            if not rows:
                if insert is None:
                    return UpdateResult(0, 0), None, None
                new = insert()
                conn.execute(f"INSERT INTO {self._t} (id, doc) VALUES (?, ?)",
                             self._encode(new))
                if self._null_unique:
                    self._check_nulls(conn, (new,))
                return UpdateResult(0, 0, new["_id"]), None, new
            changed = []
            before = after = None
            for id_col, text in rows:
                before = decode_doc(text)
                after = change(before)
                new_text = self._encode(after)[1]
                if new_text != text:
                    conn.execute(f"UPDATE {self._t} SET doc = ? WHERE id = ?",
                                 (new_text, id_col))
                    changed.append(after)
            if self._null_unique and changed:
                self._check_nulls(conn, changed)
        return UpdateResult(len(rows), len(changed)), before, after

    def _upsert_doc(self, filter: Filter, update: Update) -> Callable[[], Document]:
        def build() -> Document:
            new = apply_update(upsert_seed(filter), update, is_insert=True)
            if "_id" not in new:
                new = {"_id": ObjectId(), **new}
            return new
        return build

    @_mapped
    def update_one(self, filter: Filter, update: Update, *,
                   upsert: bool = False) -> UpdateResult:
        validate_update(update)
        if not upsert and self._inc_by_id(filter, update):
            return UpdateResult(1, 1)
        result = self._modify(filter, lambda d: apply_update(d, update),
                              self._upsert_doc(filter, update) if upsert else None)[0]
        self._maybe_purge()
        return result

    def _inc_by_id(self, filter: Filter, update: Update) -> bool:
        """Counters (sizes, file and item counts) change on every upload and
        create: ``{"_id": x}`` with only ``$inc`` of top-level numbers runs as
        one UPDATE statement, no read-modify-write. False when the case does
        not apply or nothing was changed (the general path then decides,
        raising what it must: a missing document, a non-numeric field)."""
        if len(filter) != 1 or len(update) != 1 or "$inc" not in update:
            return False
        doc_id = filter.get("_id")
        if not isinstance(doc_id, ObjectId | str):
            return False
        incs = update["$inc"]
        if not incs or any("." in k or k == "_id" or k.startswith("$") or
                           isinstance(v, bool) or not isinstance(v, int | float) or v == 0
                           for k, v in incs.items()):
            return False
        sets, guards, params = [], [], []
        for key, value in incs.items():
            path = json_path((key,))  # an escaped SQL literal
            sets.append(f"{path}, coalesce(json_extract(doc, {path}), 0) + ?")
            params.append(value)
            # missing counts as 0; a JSON null or any other type is an error
            guards.append(f"coalesce(json_type(doc, {path}), 'missing') "
                          "IN ('integer', 'real', 'missing')")
        sql = (f"UPDATE {self._t} SET doc = json_set(doc, {', '.join(sets)}) "
               f"WHERE id = ? AND {' AND '.join(guards)}")
        with self._engine.connection() as conn:
            return conn.execute(sql, (*params, encode_scalar(doc_id))).rowcount == 1

    @_mapped
    def update_many(self, filter: Filter, update: Update) -> UpdateResult:
        validate_update(update)
        result = self._modify(filter, lambda d: apply_update(d, update), None,
                              multi=True)[0]
        self._maybe_purge()
        return result

    @_mapped
    def find_one_and_update(self, filter: Filter, update: Update, *,
                            sort: SortSpec | None = None, upsert: bool = False,
                            return_document: Literal["before", "after"] = "after",
                            projection: Sequence[str] | None = None
                            ) -> Document | None:
        validate_update(update)
        validate_projection(projection)
        if return_document not in ("before", "after"):
            raise ValidationError("return_document must be 'before' or 'after'")
        _, before, after = self._modify(
            filter, lambda d: apply_update(d, update),
            self._upsert_doc(filter, update) if upsert else None, sort=sort)
        self._maybe_purge()
        doc = before if return_document == "before" else after
        return None if doc is None else project(doc, projection)

    @_mapped
    def replace_one(self, filter: Filter, doc: Document, *,
                    upsert: bool = False) -> UpdateResult:
        if not isinstance(doc, Mapping) or any(str(k).startswith("$") for k in doc):
            raise ValidationError("a replacement is a document without operators")

        def change(old: Document) -> Document:
            if "_id" in doc and not values_equal(doc["_id"], old["_id"]):
                raise ValidationError("_id cannot be changed")
            return {"_id": old["_id"], **{k: v for k, v in doc.items() if k != "_id"}}

        def insert() -> Document:
            _id = doc.get("_id", upsert_seed(filter).get("_id", MISSING))
            _id = ObjectId() if _id is MISSING else _id
            return {"_id": _id, **{k: v for k, v in doc.items() if k != "_id"}}

        result = self._modify(filter, change, insert if upsert else None)[0]
        self._maybe_purge()
        return result

    @_mapped
    def delete_one(self, filter: Filter) -> int:
        sql, params = self._select("rowid", filter, None, 0, 1)
        with self._engine.write() as conn:
            return conn.execute(f"DELETE FROM {self._t} WHERE rowid IN ({sql})",
                                params).rowcount

    @_mapped
    def delete_many(self, filter: Filter) -> int:
        where, params = self._tr.where(filter)
        with self._engine.write() as conn:
            return conn.execute(f"DELETE FROM {self._t}" + (f" WHERE {where}" if where
                                                             else ""), params).rowcount

    # -- TTL --------------------------------------------------------------------------

    @_mapped
    def purge_expired(self) -> int:
        """Delete the documents whose ``ttl_field`` is a datetime in the past."""
        ttl = self.spec.ttl_field
        if not ttl:
            return 0
        self._next_purge = time.monotonic() + PURGE_INTERVAL_S
        expr = field_expr(ttl)
        now = encode_scalar(datetime.now(UTC))
        with self._engine.write() as conn:
            return conn.execute(f"DELETE FROM {self._t} WHERE {expr} >= ? AND {expr} < ?",
                                (DATE, now)).rowcount

    def _maybe_purge(self) -> None:
        if self.spec.ttl_field and time.monotonic() >= self._next_purge:
            self.purge_expired()


def _plain_get(doc: Any, segs: tuple[str, ...]) -> Any:
    for s in segs:
        if type(doc) is not dict:
            return None
        doc = doc.get(s)
    return doc
