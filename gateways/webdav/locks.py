"""wsgidav's lock manager over core's ``LockService``: lock records live in the
metadata store, so every process serving one store agrees on them.

``StoreLockStorage`` speaks wsgidav's lock-storage interface (lock dicts with
``expire`` in epoch seconds, the XML owner as bytes). ``StoreLockManager``
runs wsgidav's conflict check and the creation of a lock under the store-wide
mutex, so two processes cannot both grant conflicting locks.
"""

from __future__ import annotations

from typing import Any

from wsgidav.lock_man.lock_manager import LockManager

from joist.core.services.locks import LockService

from .errors import translate

LockDict = dict[str, Any]


def _to_dav(doc: dict[str, Any]) -> LockDict:
    expires = doc["expires"].timestamp()
    return {
        "root": doc["root"], "type": doc["type"], "scope": doc["scope"],
        "depth": doc["depth"], "owner": str(doc.get("owner") or "").encode("utf-8"),
        "principal": doc["principal"], "timeout": float(doc["timeout"]),
        "expire": expires, "token": doc["_id"],
    }


class StoreLockStorage:
    """The lock-storage interface wsgidav's ``LockManager`` calls."""

    def __init__(self, service: LockService) -> None:
        self.service = service

    def __repr__(self) -> str:
        return "StoreLockStorage"

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def cleanup(self) -> None:
        pass  # expired records are ignored by every read and purged by the engine

    def clear(self) -> None:
        with translate():
            self.service.delete_under("/")

    def get(self, token: str) -> LockDict | None:
        with translate():
            doc = self.service.get(token)
        return None if doc is None else _to_dav(doc)

    def create(self, path: str, lock: LockDict) -> LockDict:
        owner = lock.get("owner") or b""
        with translate():
            doc = self.service.create(
                path, scope=lock["scope"], depth=lock["depth"], principal=lock["principal"],
                owner=owner.decode("utf-8", "replace") if isinstance(owner, bytes) else owner,
                timeout=lock.get("timeout"), lock_type=lock["type"])
        lock.update(_to_dav(doc))
        return lock

    def refresh(self, token: str, *, timeout: float | None) -> LockDict:
        with translate():
            doc = self.service.refresh(token, timeout)
        if doc is None:
            raise ValueError("Lock must exist")
        return _to_dav(doc)

    def delete(self, token: str) -> bool:
        with translate():
            return self.service.delete(token)

    def get_lock_list(self, path: str, *, include_root: bool, include_children: bool,
                      token_only: bool) -> list[Any]:
        with translate():
            docs = self.service.find(path, include_root=include_root,
                                     include_children=include_children)
        return [d["_id"] for d in docs] if token_only else [_to_dav(d) for d in docs]


class StoreLockManager(LockManager):
    def __init__(self, service: LockService) -> None:
        self.service = service
        super().__init__(StoreLockStorage(service))

    def acquire(self, **kwargs: Any) -> LockDict:
        with translate(), self.service.exclusive():
            return super().acquire(**kwargs)
