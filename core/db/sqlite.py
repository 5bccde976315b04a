"""The embedded metadata store: SQLite, one table per collection.

Each collection is a table ``(id TEXT PRIMARY KEY, doc TEXT NOT NULL)`` with
the document as JSON (``codec``); declared indexes are expression indexes over
the same ``json_extract`` expressions the queries use (``sqlite_sql``). The
document operations live in ``sqlite_collection``.

Concurrency: WAL mode (readers never block the writer), one connection per
thread, every write is one short ``BEGIN IMMEDIATE`` transaction (the write
lock is taken up front, so there is no read-to-write upgrade to deadlock on,
and ``busy_timeout`` absorbs contention from other threads and processes).
Updates are applied in Python (``query.apply_update``) inside that transaction,
which makes ``find_one_and_update`` atomic across threads and processes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from ..errors import StorageError, ValidationError
from .engine import CollectionSpec, Engine
from .sqlite_collection import SQLiteCollection, quote_ident
from .sqlite_udf import register_functions

__all__ = ["SQLiteCollection", "SQLiteEngine"]

_SYNC_MODES = frozenset({"off", "normal", "full", "extra"})


class _Holder:
    """Owns one thread's connection; closes it when the thread goes away."""

    __slots__ = ("__weakref__", "conn")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __del__(self) -> None:
        with suppress(Exception):
            self.conn.close()


class SQLiteEngine(Engine):
    """An SQLite file shared by every thread of this process and by others."""

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "normal",
                 busy_timeout_s: float = 30.0) -> None:
        self.path = os.fspath(path)
        if self.path in ("", ":memory:") or self.path.startswith("file:"):
            # A memory database cannot be shared by threads with WAL semantics.
            raise ValidationError("SQLiteEngine needs a file path")
        if synchronous.lower() not in _SYNC_MODES:
            raise ValidationError(f"synchronous must be one of {sorted(_SYNC_MODES)}")
        self._sync = synchronous.upper()
        self._timeout = float(busy_timeout_s)
        self._local = threading.local()
        self._holders: weakref.WeakSet[_Holder] = weakref.WeakSet()
        self._lock = threading.Lock()  # guards _holders, _collections and _closed
        self._collections: dict[str, SQLiteCollection] = {}
        self._closed = False
        try:
            mode = self.conn().execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {self.path}: {exc}") from exc
        if mode.lower() != "wal":
            raise StorageError(f"{self.path}: cannot switch to WAL mode ({mode})")

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        try:
            return self._local.conn  # type: ignore[no-any-return]
        except AttributeError:
            pass
        if self._closed:
            raise StorageError("the metadata store is closed")
        conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                               check_same_thread=False, cached_statements=512)
        conn.execute(f"PRAGMA synchronous={self._sync}")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA cache_size=-32768")  # 32 MiB per connection
        conn.execute("PRAGMA mmap_size=268435456")
        register_functions(conn)
        holder = _Holder(conn)
        self._local.conn, self._local.holder = conn, holder
        with self._lock:
            self._holders.add(holder)
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the write lock is taken at BEGIN. Inside
        ``grouped`` it joins the group's transaction instead."""
        conn = self.conn()
        if getattr(self._local, "group", None) is not None:
            try:
                yield conn
            except BaseException:
                self._local.group = False  # the whole group is undone
                raise
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """One transaction for the block. A call that fails inside it has
        possibly done half its work, so the whole group is rolled back then,
        even when the caller catches the error (``StorageError`` at the end of
        the block says so if it was caught)."""
        if getattr(self._local, "group", None) is not None:
            yield  # already in a group: part of it
            return
        conn = self.conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageError(f"metadata store: {exc}") from exc
        self._local.group = True
        try:
            yield
            intact = self._local.group
        except BaseException:
            self._local.group = None
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._local.group = None
        try:
            conn.execute("COMMIT" if intact else "ROLLBACK")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StorageError(f"metadata store: {exc}") from exc
        if not intact:
            raise StorageError("A write in a group failed and was caught; the group "
                               "was rolled back.")

    def collection(self, spec: CollectionSpec) -> SQLiteCollection:
        with self._lock:
            known = self._collections.get(spec.name)
        if known is not None and known.spec == spec:
            return known
        coll = SQLiteCollection(self, spec)
        coll._create()
        with self._lock:
            self._collections[spec.name] = coll
        return coll

    def drop_collection(self, name: str) -> None:
        with self._lock:
            self._collections.pop(name, None)
        try:
            with self.write() as conn:
                conn.execute(f"DROP TABLE IF EXISTS {quote_ident(name)}")
        except sqlite3.Error as exc:
            raise StorageError(f"metadata store: {exc}") from exc

    def purge_expired(self) -> int:
        with self._lock:
            colls = list(self._collections.values())
        return sum(c.purge_expired() for c in colls)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            holders = list(self._holders)
            self._holders = weakref.WeakSet()
        for h in holders:
            with suppress(sqlite3.Error):
                h.conn.close()


