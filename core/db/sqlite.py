"""The embedded metadata store: SQLite, one table per collection.

Each collection is a table ``(id TEXT PRIMARY KEY, doc TEXT NOT NULL)`` with
the document as JSON (``codec``); declared indexes are expression indexes over
the same ``json_extract`` expressions the queries use (``sqlite_sql``). The
document operations live in ``sqlite_collection``.

Concurrency: WAL mode (readers never block the writer) and a bounded pool of
connections shared by every thread of the process: an operation borrows one
for its duration (a write or ``grouped`` block for the whole transaction) and
gives it back, so memory is bounded by the pool, not by the thread count
(each connection has its own page cache and mmap window). Writers of one
process queue on a lock before borrowing, so they never hold every
connection while waiting for SQLite's write lock. Every write is one short
``BEGIN IMMEDIATE`` transaction (the write lock is taken up front, so there is
no read-to-write upgrade to deadlock on, and ``busy_timeout`` absorbs
contention from other processes). Updates are applied in Python
(``query.apply_update``) inside that transaction, which makes
``find_one_and_update`` atomic across threads and processes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from ..errors import StorageError, ValidationError
from .engine import CollectionSpec, Engine
from .sqlite_collection import SQLiteCollection, quote_ident
from .sqlite_rows import RowCache
from .sqlite_udf import register_functions
from .sqlite_watch import WalIndexWatch

__all__ = ["SQLiteCollection", "SQLiteEngine"]

_SYNC_MODES = frozenset({"off", "normal", "full", "extra"})
MIB = 1 << 20


_ENGINES: weakref.WeakSet[SQLiteEngine] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # SQLite connections must not cross a fork: a child (a pre-forked server
    # worker) starts with an empty pool and opens its own.
    for engine in list(_ENGINES):
        engine._forget_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)


class SQLiteEngine(Engine):
    """An SQLite file shared by every thread of this process and by others.

    ``connections`` bounds the pool; ``cache_mib`` is the page cache of the
    whole pool (each connection gets its share); ``mmap_mib`` is how much of
    the file each connection maps (0: none; mapped pages count in the
    process's RSS once per connection)."""

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "normal",
                 busy_timeout_s: float = 30.0, connections: int = 8, cache_mib: int = 64,
                 mmap_mib: int = 0) -> None:
        self.path = os.fspath(path)
        if self.path in ("", ":memory:") or self.path.startswith("file:"):
            # A memory database cannot be shared by threads with WAL semantics.
            raise ValidationError("SQLiteEngine needs a file path")
        if synchronous.lower() not in _SYNC_MODES:
            raise ValidationError(f"synchronous must be one of {sorted(_SYNC_MODES)}")
        if connections < 1 or cache_mib < 0 or mmap_mib < 0:
            raise ValidationError("connections must be >= 1, cache_mib and mmap_mib >= 0")
        self._sync = synchronous.upper()
        self._timeout = float(busy_timeout_s)
        self.max_connections = connections
        # KiB per connection (a negative cache_size is in KiB); at least 100
        # pages of 4 KiB, below which SQLite thrashes on its own B-tree.
        self._cache_kib = max(400, cache_mib * 1024 // connections)
        self._mmap_bytes = mmap_mib * MIB
        self._local = threading.local()
        self._pool = threading.Condition()  # guards _idle, _opened, _count, _closed
        self._idle: list[sqlite3.Connection] = []
        self._opened: set[sqlite3.Connection] = set()  # to close them all
        self._count = 0  # connections opened or opening
        self._writer = threading.Lock()  # one borrowing writer per process at a time
        self._lock = threading.Lock()  # guards _collections
        self._collections: dict[str, SQLiteCollection] = {}
        self._closed = False
        _ENGINES.add(self)
        # change_counter's connection: it never writes, so its data_version
        # moves on every commit made by any other connection (thread or
        # process); it also keeps the -shm file that _wal_watch maps in use.
        self._watch: sqlite3.Connection | None = None
        self._wal_watch: WalIndexWatch | None = None
        self._watch_lock = threading.Lock()  # guards _watch and _wal_watch
        # Documents read by id, kept while the change counter stands still.
        self.rows = RowCache()
        try:
            with self.connection() as conn:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.Error as exc:
            self.close()
            raise StorageError(f"cannot open {self.path}: {exc}") from exc
        if mode.lower() != "wal":
            self.close()
            raise StorageError(f"{self.path}: cannot switch to WAL mode ({mode})")

    def _forget_connections(self) -> None:
        """Drop (without closing: they belong to the parent) every connection."""
        self._watch, self._wal_watch = None, None  # the change counter's too
        self._watch_lock = threading.Lock()
        self._local = threading.local()
        self._pool = threading.Condition()
        self._writer = threading.Lock()
        self._idle, self._opened, self._count = [], set(), 0
        self.rows = RowCache()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                               check_same_thread=False, cached_statements=512)
        try:
            conn.execute(f"PRAGMA synchronous={self._sync}")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute(f"PRAGMA cache_size=-{self._cache_kib}")
            conn.execute(f"PRAGMA mmap_size={self._mmap_bytes}")
            register_functions(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _borrow(self) -> sqlite3.Connection:
        """An idle connection (the most recently used: its cache is warm), a
        new one while the pool has room, or the next one given back."""
        deadline = time.monotonic() + self._timeout
        with self._pool:
            while True:
                if self._closed:
                    raise StorageError("the metadata store is closed")
                if self._idle:
                    return self._idle.pop()
                if self._count < self.max_connections:
                    self._count += 1  # the slot is ours while the connection opens
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StorageError(f"metadata store: all {self.max_connections} "
                                       "connections stayed busy")
                self._pool.wait(left)
        try:
            conn = self._open()
        except BaseException as exc:
            with self._pool:
                self._count -= 1
                self._pool.notify()
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"cannot open {self.path}: {exc}") from exc
            raise
        with self._pool:
            self._opened.add(conn)
        return conn

    def _give_back(self, conn: sqlite3.Connection) -> None:
        with self._pool:
            if self._closed:
                with suppress(sqlite3.Error):
                    conn.close()
            else:
                self._idle.append(conn)
            self._pool.notify()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for the block: this thread's borrowed one if it holds
        one already (inside a write or a group), else one from the pool, given
        back at the end. Cursors must not outlive the block."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        conn = self._borrow()
        self._local.conn = conn
        try:
            yield conn
        finally:
            self._local.conn = None
            with suppress(sqlite3.Error):  # closed by close(): given back and dropped
                if conn.in_transaction:  # a block left by an exception mid-way
                    conn.execute("ROLLBACK")
            self._give_back(conn)

    def read_token(self) -> int | None:
        """``change_counter`` for a read-through cache (``RowCache``); None when
        this thread holds a connection (inside a write or a group its reads see
        its own uncommitted changes, which no cache may keep or hide)."""
        if getattr(self._local, "conn", None) is not None:
            return None
        return self.change_counter()

    def read_one(self, sql: str, params: Sequence[Any]) -> Any:
        """The first row of one read statement: ``connection()`` without the
        context manager, for the by-id lookups every request makes."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            return held.execute(sql, params).fetchone()
        conn = self._borrow()
        try:
            return conn.execute(sql, params).fetchone()
        finally:
            with suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            self._give_back(conn)

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A connection for a new write transaction, borrowed after this
        process's writer lock (waiting writers hold no connection)."""
        if getattr(self._local, "conn", None) is not None:
            with self.connection() as conn:  # already borrowed: lock order conn -> none
                yield conn
            return
        if not self._writer.acquire(timeout=self._timeout):
            raise StorageError("metadata store: database is locked")
        try:
            with self.connection() as conn:
                yield conn
        finally:
            self._writer.release()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the write lock is taken at BEGIN. Inside
        ``grouped`` it joins the group's transaction instead."""
        if getattr(self._local, "group", None) is not None:
            try:
                yield self._local.conn
            except BaseException:
                self._local.group = False  # the whole group is undone
                raise
            return
        with self._writing() as conn:
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
        with self._writing() as conn:
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

    def change_counter(self) -> int | None:
        watch = self._wal_watch or self._open_watch()
        return watch.token(self._data_version)

    def _open_watch(self) -> WalIndexWatch:
        with self._watch_lock:
            if self._wal_watch is None:
                if self._closed:
                    raise StorageError("the metadata store is closed")
                try:
                    self._watch = sqlite3.connect(self.path, timeout=self._timeout,
                                                  isolation_level=None,
                                                  check_same_thread=False)
                    self._watch.execute("PRAGMA data_version").fetchone()  # maps the -shm
                except sqlite3.Error as exc:
                    raise StorageError(f"metadata store: {exc}") from exc
                self._wal_watch = WalIndexWatch(self.path, self._watch)
            return self._wal_watch

    def _data_version(self) -> int:
        with self._watch_lock:
            if self._watch is None:
                raise StorageError("the metadata store is closed")
            try:
                return int(self._watch.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error as exc:
                raise StorageError(f"metadata store: {exc}") from exc

    def purge_expired(self) -> int:
        with self._lock:
            colls = list(self._collections.values())
        return sum(c.purge_expired() for c in colls)

    def close(self) -> None:
        """Close every connection, idle or borrowed (a borrower's next call
        fails); later calls raise ``StorageError``."""
        with self._pool:
            self._closed = True
            conns = list(self._opened)
            self._opened.clear()
            self._idle.clear()
            self._pool.notify_all()
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()
        self.rows.clear()
        with self._watch_lock:
            watch, self._watch = self._watch, None
            wal_watch, self._wal_watch = self._wal_watch, None
        if watch is not None:
            with suppress(sqlite3.Error):
                watch.close()
        if wal_watch is not None:  # after the connection: see WalIndexWatch.close
            wal_watch.close()
