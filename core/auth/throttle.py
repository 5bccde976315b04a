"""Failed-login throttling, kept in the store so that it holds across processes.

Each key (a login name, a client address) may fail ``max_failures`` times per
window; further attempts are refused without checking the secret until the
window ends. A success clears the login's record.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable

from ..common import utcnow
from ..db.engine import Collection, DuplicateKeyError
from ..errors import ThrottledError


class Throttle:
    def __init__(self, collection: Collection,
                 limits: Callable[[], tuple[int, float]]) -> None:
        self._coll = collection
        self._limits = limits  # (max_failures, window_seconds), read live from settings

    def check(self, keys: Iterable[str]) -> None:
        max_failures, _window = self._limits()
        now = utcnow()
        for key in keys:
            doc = self._coll.find_one({"_id": key})
            if doc and doc["expires"] > now and doc.get("failures", 0) >= max_failures:
                wait = (doc["expires"] - now).total_seconds()
                raise ThrottledError(
                    f"Too many failed login attempts; try again in {int(wait) + 1} s.",
                    retry_after=wait)

    def failure(self, keys: Iterable[str]) -> None:
        _max, window = self._limits()
        now = utcnow()
        expires = now + _dt.timedelta(seconds=window)
        for key in keys:
            # A record whose window has passed starts again from one failure.
            restarted = self._coll.find_one_and_update(
                {"_id": key, "expires": {"$lte": now}},
                {"$set": {"failures": 1, "expires": expires}})
            if restarted is None:
                try:
                    self._coll.update_one(
                        {"_id": key}, {"$inc": {"failures": 1},
                                       "$setOnInsert": {"expires": expires}}, upsert=True)
                except DuplicateKeyError:  # a concurrent first failure inserted it
                    self._coll.update_one({"_id": key}, {"$inc": {"failures": 1}})

    def success(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._coll.delete_one({"_id": key})


def throttle_keys(login: str, source: str | None) -> list[str]:
    keys = [f"login:{login.strip().lower()}"]
    if source:
        keys.append(f"addr:{source}")
    return keys
