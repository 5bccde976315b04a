"""Caches of one process see a change made by another at once (issue 18 item 1):
the store's change counters (core/store/watch.py), bumped in the write's
transaction, and the SQLite engine's cheap "anyone committed?" token."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from joist.admin.bootstrap import App
from joist.core.acl import READ, SYSTEM, Principal
from joist.core.db.engine import CollectionSpec
from joist.core.db.sqlite import SQLiteEngine
from joist.core.errors import NotFoundError
from joist.core.store.watch import AUTH, TREE


@pytest.fixture
def owner(app: App) -> Principal:
    doc = app.services.users.create(SYSTEM, login="owner", email="o@example.org",
                                    first_name="O", last_name="W", password="password")
    return Principal.from_user(doc)


def test_counters_move_with_watched_writes_only(app: App, other: App, owner: Principal
                                                ) -> None:
    before = app.store.generations.snapshot()
    app.store.uploads.find({})
    other.store.throttles.insert_one({"_id": "k", "failures": 1})  # not watched
    assert app.store.generations.snapshot() == before
    other.services.settings.set("core.registration_policy", "closed")
    after = app.store.generations.snapshot()
    assert after[AUTH] > before[AUTH] and after[TREE] == before[TREE]
    home = other.services.folders.list(owner, "user", owner.user_id, name="Private")[0][0]
    new = other.services.folders.create(owner, "folder", home["_id"], "new")
    assert app.store.generations.snapshot()[TREE] > after[TREE]
    # A new item counts too: listings kept while the counter stands still
    # (the mount's) must show it, even empty.
    before_item = app.store.generations.snapshot()[TREE]
    other.services.items.create(owner, new, "empty")
    assert app.store.generations.snapshot()[TREE] > before_item


def test_a_failed_write_rolls_its_bump_back_with_it(app: App, owner: Principal) -> None:
    before = app.store.generations.value(AUTH)
    with pytest.raises(Exception):  # noqa: B017 - the login is taken
        app.store.users.insert_one({"login": "owner", "email": "x@example.org"})
    assert app.store.generations.value(AUTH) == before or app.settings.database.engine == "mongo"


def test_settings_changed_elsewhere_apply_at_once(app: App, other: App) -> None:
    assert app.services.settings.get("joist.hierarchy.item_layout") == "natural"
    other.services.settings.set("joist.hierarchy.item_layout", "girder")
    assert app.services.settings.get("joist.hierarchy.item_layout") == "girder"


def test_the_path_cache_drops_what_another_process_changed(
        app: App, other: App, owner: Principal) -> None:
    app.services.settings.set("joist.hierarchy.cache_ttl", 60.0)
    view = app.hierarchy.view(owner)
    view.mkdir("/user/owner/Private/before")
    assert view.stat("/user/owner/Private/before").is_dir  # cached for a minute
    other.hierarchy.view(owner).move("/user/owner/Private/before",
                                     "/user/owner/Private/after")
    with pytest.raises(NotFoundError):
        view.stat("/user/owner/Private/before")
    assert view.stat("/user/owner/Private/after").is_dir


def test_an_acl_change_elsewhere_applies_to_cached_documents(
        app: App, other: App, owner: Principal) -> None:
    svc = app.services  # owner, the first user, is the site admin
    reader = Principal.from_user(svc.users.create(
        SYSTEM, login="reader", email="r@example.org", first_name="R", last_name="D",
        password="password"))
    svc.settings.set("joist.hierarchy.cache_ttl", 60.0)
    shared = svc.collections.create(owner, "shared")
    svc.access.grant(owner, "collection", shared, "user", reader.user_id, READ)
    view = app.hierarchy.view(reader)
    assert view.stat("/collection/shared").is_dir  # its document, ACL included, cached
    theirs = other.store.collections.find_one({"_id": shared["_id"]})
    other.services.access.set(owner, "collection", theirs, {"users": [], "groups": []})
    with pytest.raises(NotFoundError):
        view.stat("/collection/shared")


def test_sqlite_change_counter_moves_on_every_commit_only(tmp_path: Path) -> None:
    engine = SQLiteEngine(tmp_path / "x.db")
    writer = SQLiteEngine(tmp_path / "x.db")  # another process's engine
    try:
        coll = engine.collection(CollectionSpec("c"))
        theirs = writer.collection(CollectionSpec("c"))
        first = engine.change_counter()
        assert first is not None
        coll.find({})
        assert engine.change_counter() == first  # reads commit nothing
        theirs.insert_one({"_id": "a"})
        second = engine.change_counter()
        assert second != first
        done = threading.Event()

        def write() -> None:  # this engine's own writes, from another thread
            coll.insert_one({"_id": "b"})
            done.set()

        thread = threading.Thread(target=write)
        thread.start()
        thread.join(10)
        assert done.is_set() and engine.change_counter() != second
        coll.insert_one({"_id": "c"})  # and from this thread
        third = engine.change_counter()
        with pytest.raises(Exception):  # noqa: B017 - a duplicate commits nothing
            theirs.insert_one({"_id": "c"})
        assert engine.change_counter() == third
    finally:
        writer.close()
        engine.close()


def test_assetstore_adapters_are_rebuilt_after_an_edit_elsewhere(app: App, other: App) -> None:
    doc, adapter = app.assetstores.current()
    assert app.assetstores.adapter(doc["_id"]) is adapter  # built once, kept
    other.assetstores.update(doc["_id"], {"name": "renamed"})
    rebuilt = app.assetstores.adapter(doc["_id"])
    assert rebuilt is not adapter
    assert app.assetstores.adapter(doc["_id"]) is rebuilt
