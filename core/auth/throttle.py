"""Failed-login throttling, kept in the store so that it holds across processes.

A login name may fail ``max_failures`` times per window, a client address
``max_failures_per_address`` times (much more: several people may share one
address, and one of them mistyping must not lock the others out). Further
attempts are refused without checking the secret until the window ends. Only
a wrong secret counts: a success by any means (password, API key) never does,
and it clears the login's record (not the address's: one valid account must
not let its owner reset the count of guesses at others).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable

from ..clock import utcnow
from ..db.engine import Collection, DuplicateKeyError
from ..errors import ThrottledError


class Throttle:
    def __init__(self, collection: Collection,
                 limits: Callable[[], tuple[int, int, float]]) -> None:
        self._coll = collection
        # (per login, per address, window seconds), read live from settings
        self._limits = limits

    def check(self, keys: Iterable[str]) -> None:
        per_login, per_address, _window = self._limits()
        now = utcnow()
        for key in keys:
            limit = per_address if key.startswith(ADDRESS_PREFIX) else per_login
            doc = self._coll.find_one({"_id": key})
            if doc and doc["expires"] > now and doc.get("failures", 0) >= limit:
                wait = (doc["expires"] - now).total_seconds()
                raise ThrottledError(
                    f"Too many failed login attempts; try again in {int(wait) + 1} s.",
                    retry_after=wait)

    def failure(self, keys: Iterable[str]) -> None:
        *_max, window = self._limits()
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


ADDRESS_PREFIX = "addr:"


def throttle_keys(login: str, source: str | None) -> list[str]:
    """The login's key first (``success`` clears only that one)."""
    keys = [f"login:{login.strip().lower()}"]
    if source:
        keys.append(ADDRESS_PREFIX + source)
    return keys
