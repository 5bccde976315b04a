"""``LockService``: lock records in the store, expiry, and the cross-process mutex."""

from __future__ import annotations

import datetime as _dt
import threading
from pathlib import Path

import pytest

from joist.admin.bootstrap import App, build_app
from joist.core.errors import LockedError, ValidationError
from joist.core.services.locks import LockService


class Clock:
    def __init__(self) -> None:
        self.now = _dt.datetime(2030, 1, 1, tzinfo=_dt.UTC)

    def __call__(self) -> _dt.datetime:
        return self.now


def test_create_find_refresh_delete(app: App) -> None:
    clock = Clock()
    locks = LockService(app.store.locks, clock)
    a = locks.create("/a/b/", scope="exclusive", depth="0", principal="alice", owner="o",
                     timeout=60)
    assert a["root"] == "/a/b"
    child = locks.create("/a/b/c d", scope="shared", depth="infinity", principal="bob",
                         timeout=60)
    locks.create("/a/bc", scope="shared", depth="0", principal="bob", timeout=60)
    assert [d["_id"] for d in locks.find("/a/b")] == [a["_id"]]
    assert {d["_id"] for d in locks.find("/a/b", include_children=True)} == \
        {a["_id"], child["_id"]}  # "/a/bc" is a sibling, not a child
    assert len(locks.find("/", include_children=True)) == 3
    clock.now += _dt.timedelta(seconds=61)
    assert locks.get(a["_id"]) is None and locks.find("/", include_children=True) == []
    assert locks.refresh(child["_id"], 10) is None
    fresh = locks.create("/x", scope="exclusive", depth="0", principal="a", timeout=-1)
    assert fresh["timeout"] == LockService.MAX_TIMEOUT
    assert locks.refresh(fresh["_id"], 30)["timeout"] == 30
    assert locks.delete(fresh["_id"]) and not locks.delete(fresh["_id"])
    with pytest.raises(ValidationError):
        locks.create("relative", scope="exclusive", depth="0", principal="a")
    with pytest.raises(ValidationError):
        locks.create("/x", scope="exclusive", depth="1", principal="a")


def test_two_engines_share_locks_and_the_mutex(app: App, tmp_path: Path) -> None:
    other = build_app(app.settings, env={})
    try:
        mine, theirs = app.services.locks, other.services.locks
        lock = mine.create("/shared", scope="exclusive", depth="0", principal="a")
        assert theirs.get(lock["_id"])["principal"] == "a"
        with mine.exclusive(), pytest.raises(LockedError), theirs.exclusive(wait=0.2):
            pass
        with theirs.exclusive(wait=1):
            pass  # released: the other side gets it
    finally:
        other.close()


def test_mutex_serialises_check_then_create(app: App) -> None:
    """Many threads each check for an existing lock and create one if none:
    under ``exclusive`` exactly one wins."""
    locks = app.services.locks
    winners: list[str] = []

    def contender(name: str) -> None:
        with locks.exclusive(wait=30):
            if not locks.find("/race"):
                locks.create("/race", scope="exclusive", depth="0", principal=name)
                winners.append(name)

    threads = [threading.Thread(target=contender, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(winners) == 1 and len(locks.find("/race")) == 1


def test_a_dead_holder_frees_the_mutex(app: App) -> None:
    clock = Clock()
    locks = LockService(app.store.locks, clock)
    holder = locks.exclusive(lease=5)
    holder.__enter__()  # never released, as if the process died
    with pytest.raises(LockedError), locks.exclusive(wait=0.1):
        pass
    clock.now += _dt.timedelta(seconds=6)
    with locks.exclusive(wait=0.1):
        pass
