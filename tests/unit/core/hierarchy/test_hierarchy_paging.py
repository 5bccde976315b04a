"""Listing pages of the hierarchy: stable order, offsets across folders and
items, and no page fetched beyond what was asked."""

from __future__ import annotations

import pytest

from joist.admin.bootstrap import App
from joist.core.acl import SYSTEM, Principal
from joist.core.errors import NotDirectoryError, NotFoundError


@pytest.fixture
def tree(app: App) -> tuple[App, Principal, str]:
    svc = app.services
    owner = svc.users.create(SYSTEM, login="owner", email="o@example.org", first_name="O",
                             last_name="W", password="password")
    me = Principal.from_user(owner)
    coll = svc.collections.create(SYSTEM, "c")
    svc.access.grant(SYSTEM, "collection", coll, "user", owner["_id"], 2)
    top = svc.folders.create(me, "collection", coll["_id"], "top")
    for i in range(25):
        svc.folders.create(me, "folder", top["_id"], f"Dir{i:03d}")
    for i in range(2100):  # more than two store pages of items
        svc.items.create(me, top, f"item{i:05d}")
    return app, me, "/collection/c/top"


def test_full_listing_order(tree: tuple[App, Principal, str]) -> None:
    app, me, path = tree
    names = [n.name for n in app.hierarchy.view(me).listdir(path)]
    assert names[:25] == [f"Dir{i:03d}" for i in range(25)]
    assert names[25:] == [f"item{i:05d}" for i in range(2100)]


@pytest.mark.parametrize("offset,limit", [(0, 10), (20, 10), (25, 5), (1000, 1500),
                                          (2120, 50), (2125, 5), (3000, 5)])
def test_pages_match_the_full_listing(tree: tuple[App, Principal, str], offset: int,
                                      limit: int) -> None:
    app, me, path = tree
    view = app.hierarchy.view(me)
    everything = [n.name for n in view.listdir(path)]
    page = [n.name for n in view.listdir(path, offset=offset, limit=limit)]
    assert page == everything[offset:offset + limit]


def test_limit_stops_before_fetching_more(tree: tuple[App, Principal, str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    app, me, path = tree
    calls: list[int] = []
    original = app.store.items.find

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(app.store.items, "find", counting)
    nodes = list(app.hierarchy.view(me).listdir(path, offset=25, limit=1000))
    assert len(nodes) == 1000 and len(calls) == 1


def test_listing_errors(tree: tuple[App, Principal, str]) -> None:
    app, me, path = tree
    view = app.hierarchy.view(me)
    with pytest.raises(NotFoundError):
        list(view.listdir(path + "/nope"))
    with pytest.raises(NotFoundError):
        list(view.listdir("/collection/c/top/item00001/x"))  # an empty item is a directory
    with view.open_write(path + "/file.txt") as writer:
        writer.write(b"data")
    with pytest.raises(NotDirectoryError):
        list(view.listdir(path + "/file.txt"))
    with pytest.raises(NotDirectoryError):
        view.stat(path + "/file.txt/below")
    assert list(view.listdir(path, offset=0, limit=0)) == []


def test_read_after_a_replace_by_another_process(app: App) -> None:
    """A stale cache entry naming released bytes is looked up afresh."""
    from joist.admin.bootstrap import build_app
    svc = app.services
    owner = svc.users.create(SYSTEM, login="owner", email="o@example.org", first_name="O",
                             last_name="W", password="password")
    me = Principal.from_user(owner)
    svc.settings.set("joist.hierarchy.cache_ttl", 60.0)
    view = app.hierarchy.view(me)
    path = "/user/owner/Private/f.txt"
    with view.open_write(path) as writer:
        writer.write(b"old bytes")
    with view.open_read(path) as reader:  # primes this process's path cache
        assert reader.read() == b"old bytes"
    other = build_app(app.settings, env={})  # a second process on the same store
    try:
        with other.hierarchy.view(me).open_write(path) as writer:
            writer.write(b"brand new bytes")
    finally:
        other.close()
    with view.open_read(path) as reader:
        assert reader.read() == b"brand new bytes"
