"""FUSE mount records: where this store is mounted, by whom, and whether the
mount is still alive.

A ``joist mount`` process registers itself (path, principal, host, process)
when its filesystem is up, refreshes a heartbeat while it runs and removes the
record when it stops. A record whose process was killed is *stale*: on its own
host the process is checked directly (pid, process start time, boot id); from
other hosts only the heartbeat can tell. Records are documents, so every
process of a deployment sees them (as Girder's ``core.girder_mount_information``
setting, which is kept in step for compatibility).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .. import acl
from ..acl import SYSTEM, Principal
from ..clock import utcnow
from ..db.engine import Document
from ..errors import AccessDeniedError, AuthenticationError, NotFoundError
from ..store import Store, object_id
from ..stored_settings import SettingsService
from .tree_access import TreeAccess

log = logging.getLogger("joist.mounts")

GIRDER_SETTING = "core.girder_mount_information"
HEARTBEAT_SECONDS = 30.0
"""How often a live mount refreshes ``seen``."""
STALE_AFTER_SECONDS = 180.0
"""A record from another host is stale when its heartbeat is older than this."""


class PathFinder(Protocol):
    """What ``local_path`` needs from a hierarchy view (``HierarchyView.path_of``)."""

    def path_of(self, model: str, doc_id: Any) -> str: ...


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def process_start(pid: int) -> str | None:
    """The start time of a process (clock ticks since boot, Linux), so that a
    recycled pid is not taken for the process that registered; None elsewhere."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after it.
    fields = raw.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _process_alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    if start is None:
        return True
    current = process_start(pid)
    return current is None or current == start


class MountService:
    """Mount records. ``register``/``heartbeat``/``unregister``/``clean_stale``
    are the mount process's own bookkeeping (no client reaches them); ``records``
    is for site admins; ``local_path`` answers any principal that can read the
    file."""

    def __init__(self, store: Store, tree: TreeAccess, settings: SettingsService, *,
                 host: str | None = None, clock: Callable[[], _dt.datetime] = utcnow) -> None:
        self._coll = store.mounts
        self._users = store.users
        self._store = store
        self._tree = tree
        self._settings = settings
        self.host = host or socket.gethostname()
        self._boot = _boot_id()
        self._clock = clock

    # ------------------------------------------------------------ lifecycle
    def register(self, path: str | os.PathLike[str], principal: Principal, *,
                 read_only: bool, pid: int | None = None,
                 extra: dict[str, Any] | None = None) -> Document:
        """Record a mount that is up at ``path``, served by process ``pid``."""
        pid = os.getpid() if pid is None else int(pid)
        now = self._clock()
        mounted = time.time()
        doc: dict[str, Any] = {
            "path": os.path.abspath(os.fspath(path)), "host": self.host, "bootId": self._boot,
            "pid": pid, "procStart": process_start(pid),
            "principal": {"userId": principal.user_id, "login": principal.label(),
                          "admin": principal.admin,
                          "scopes": None if principal.scopes is None
                          else sorted(principal.scopes)},
            "readOnly": bool(read_only), "started": now, "seen": now,
            "mountTime": mounted, **(extra or {}),
        }
        self._coll.insert_one(doc)
        self._publish(doc)
        log.info("mount registered: %s on %s (pid %d) as %s", doc["path"], self.host, pid,
                 doc["principal"]["login"])
        return doc

    def heartbeat(self, record_id: Any) -> bool:
        """Refresh ``seen``; False when the record is gone (cleaned as stale)."""
        result = self._coll.update_one({"_id": object_id(record_id)},
                                       {"$set": {"seen": self._clock()}})
        return bool(result.matched)

    def unregister(self, record_id: Any) -> None:
        doc = self._coll.find_one({"_id": object_id(record_id)})
        if doc is None:
            return
        self._coll.delete_one({"_id": doc["_id"]})
        self._unpublish(doc)
        log.info("mount unregistered: %s on %s", doc["path"], doc["host"])

    # ------------------------------------------------------------ liveness
    def is_stale(self, record: Document) -> bool:
        if record.get("host") == self.host and (not record.get("bootId") or
                                                record.get("bootId") == self._boot):
            return not _process_alive(int(record["pid"]), record.get("procStart"))
        if record.get("host") == self.host:
            return True  # registered before the last reboot
        seen = record.get("seen")
        if not isinstance(seen, _dt.datetime):
            return True
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=_dt.UTC)
        return (self._clock() - seen).total_seconds() > STALE_AFTER_SECONDS

    def clean_stale(self) -> list[Document]:
        """Remove the records of mounts whose process is gone; returns them."""
        removed = []
        for record in self._coll.find({}, sort=[("started", 1), ("_id", 1)], limit=10_000):
            if self.is_stale(record) and self._coll.delete_one({"_id": record["_id"]}):
                self._unpublish(record)
                removed.append(record)
                log.info("removed the stale mount record %s on %s (pid %s)", record["path"],
                         record["host"], record["pid"])
        return removed

    def records(self, principal: Principal, *, host: str | None = None) -> list[Document]:
        """Every record (``host`` narrows), oldest first, each with ``stale``."""
        if not principal.is_site_admin:
            if principal.is_anonymous:
                raise AuthenticationError("You must be logged in.")
            raise AccessDeniedError("Only site administrators may list mounts.")
        query = {} if host is None else {"host": host}
        docs = self._coll.find(query, sort=[("started", 1), ("_id", 1)], limit=10_000)
        return [{**d, "stale": self.is_stale(d)} for d in docs]

    # ------------------------------------------------------------ queries
    def principal_of(self, record: Document) -> Principal:
        """The principal a mount runs as, rebuilt from the store now (a user
        disabled or removed since then counts as anonymous)."""
        who = record.get("principal") or {}
        if who.get("userId") is None:
            return SYSTEM if who.get("admin") else Principal.anonymous()
        user = self._users.find_one({"_id": who["userId"]})
        if user is None or user.get("status", "enabled") != "enabled":
            return Principal.anonymous()
        return Principal.from_user(user, scopes=who.get("scopes"))

    def local_path(self, principal: Principal, file_id: Any,
                   view_for: Callable[[Principal], PathFinder], *,
                   validate: bool = True) -> str | None:
        """Where a live mount on this host shows the file (Girder's
        ``getGirderMountFilePath``), or None.

        ``principal`` must be able to read the file. ``view_for`` makes a view
        for a mount's principal (``hierarchy.view``); only mounts whose
        principal can read the file answer. With ``validate`` the path must
        exist and have the file's size.
        """
        file = self._store.get("file", file_id)
        self._tree.require(principal, "file", file, acl.READ)
        docs = self._coll.find({"host": self.host}, sort=[("started", 1), ("_id", 1)],
                               limit=1000)
        for record in docs:
            if self.is_stale(record):
                continue
            try:
                inner = view_for(self.principal_of(record)).path_of("file", file["_id"])
            except (NotFoundError, AccessDeniedError):
                continue
            full = os.path.join(record["path"], inner.lstrip("/"))
            if not validate or _has_size(full, int(file.get("size") or 0)):
                return full
        return None

    # ------------------------------------------------------------ Girder setting
    def _publish(self, doc: Document) -> None:
        # Girder's single setting names one mount: the newest live one.
        with contextlib.suppress(Exception):
            self._settings.set(GIRDER_SETTING, {
                "path": doc["path"], "mounttime": doc["mountTime"], "hasStats": False,
                "hasFlat": False, "host": doc["host"], "recordId": str(doc["_id"])})

    def _unpublish(self, doc: Document) -> None:
        with contextlib.suppress(Exception):
            current = self._settings.get(GIRDER_SETTING)
            if not isinstance(current, dict) or current.get("recordId") != str(doc["_id"]):
                return
            others = [d for d in self._coll.find({}, sort=[("started", -1)], limit=100)
                      if not self.is_stale(d)]
            if others:
                self._publish(others[0])
            else:
                self._settings.unset(GIRDER_SETTING)


def _has_size(path: str, size: int) -> bool:
    try:
        return os.stat(path).st_size == size
    except OSError:
        return False


__all__ = ["HEARTBEAT_SECONDS", "STALE_AFTER_SECONDS", "MountService", "PathFinder",
           "process_start"]
