"""Whole listings kept by the hierarchy (core/hierarchy/listings.py): served
again only while nothing changed, never to another principal, never stale
after a write in this process or another, bounded."""

from __future__ import annotations

import time
from typing import Any

import pytest

from joist.admin.bootstrap import App
from joist.core.acl import READ, SYSTEM, Principal
from joist.core.hierarchy.listings import Listings
from joist.core.hierarchy.nodes import FOLDER, Node

BASE = "/user/lister/Public"


@pytest.fixture
def people(app: App) -> dict[str, Principal]:
    made = {}
    for login in ("lister", "viewer"):
        doc = app.services.users.create(SYSTEM, login=login, email=f"{login}@example.org",
                                        first_name="L", last_name="L", password="password1")
        made[login] = Principal.from_user(doc)
    return made


def names(view: Any, path: str = BASE, **kw: Any) -> list[str]:
    return [node.name for node in view.listdir(path, **kw)]


def test_a_second_listing_is_served_kept(app: App, people: dict[str, Principal]) -> None:
    view = app.hierarchy.view(people["lister"])
    for name in ("b", "a", "c"):
        view.mkdir(f"{BASE}/{name}")
    listings = app.hierarchy.listings
    first = list(view.listdir(BASE))
    hits = listings.hits
    again = list(app.hierarchy.view(people["lister"]).listdir(BASE))
    assert again == first and [n.name for n in again] == ["a", "b", "c"]
    assert listings.hits == hits + 1
    assert names(view, limit=2) == ["a", "b"] and listings.hits == hits + 2
    assert names(view, offset=1) == ["b", "c"]  # an offset is derived afresh


def test_a_write_here_or_elsewhere_shows_at_once(app: App, other: App,
                                                 people: dict[str, Principal]) -> None:
    view = app.hierarchy.view(people["lister"])
    view.mkdir(f"{BASE}/a")
    assert names(view) == ["a"]
    view.mkdir(f"{BASE}/b")  # this process
    assert names(view) == ["a", "b"]
    home = other.store.folders.find_one({"name": "Public", "parentId": people["lister"].user_id})
    assert home is not None
    other.services.items.create(people["lister"], home, "made-elsewhere")  # another
    assert names(view) == ["a", "b", "made-elsewhere"]
    other.hierarchy.view(people["lister"]).move(f"{BASE}/a", f"{BASE}/z")
    assert names(view) == ["b", "z", "made-elsewhere"]  # folders first


def test_never_served_to_another_principal(app: App, people: dict[str, Principal]) -> None:
    lister = app.hierarchy.view(people["lister"])
    lister.mkdir(f"{BASE}/open")
    secret = app.services.folders.create(people["lister"], "folder",
                                         lister.stat(f"{BASE}/open").ref, "secret",
                                         public=False)
    assert names(lister, f"{BASE}/open") == ["secret"]
    viewer = app.hierarchy.view(people["viewer"])
    assert names(viewer, f"{BASE}/open") == []
    app.services.access.grant(people["lister"], "folder", secret, "user",
                              people["viewer"].user_id, READ)
    assert names(viewer, f"{BASE}/open") == ["secret"]  # the grant applies at once
    app.services.access.grant(people["lister"], "folder", secret, "user",
                              people["viewer"].user_id, None)
    assert names(viewer, f"{BASE}/open") == []  # and so does the revocation


def test_big_listings_are_streamed_not_kept(app: App, people: dict[str, Principal]) -> None:
    view = app.hierarchy.view(people["lister"])
    for i in range(5):
        view.mkdir(f"{BASE}/d{i}")
    listings = app.hierarchy.listings
    listings.max_listing = 4
    assert len(names(view)) == 5
    hits = listings.hits
    assert len(names(view)) == 5 and listings.hits == hits
    listings.max_listing = 5
    names(view)
    assert len(names(view)) == 5 and listings.hits == hits + 1
    assert listings.rows == 5


def test_an_abandoned_listing_is_not_kept(app: App, people: dict[str, Principal]) -> None:
    view = app.hierarchy.view(people["lister"])
    for name in ("a", "b"):
        view.mkdir(f"{BASE}/{name}")
    listing = view.listdir(BASE)
    next(listing)
    listing.close()
    assert app.hierarchy.listings.rows == 0
    assert names(view, limit=2) == ["a", "b"]  # as long as the limit: maybe more
    assert app.hierarchy.listings.rows == 0


def node(name: str) -> Node:
    return Node("/" + name, name, FOLDER, True)


def test_the_row_bound_drops_the_oldest_and_ttl_ends_them() -> None:
    ttl = [60.0]
    listings = Listings(lambda: ttl[0], max_rows=5)
    listings.put(("p", "/a/"), 1, [node("x"), node("y")])
    listings.put(("p", "/b/"), 1, [node("x"), node("y"), node("z")])
    assert listings.rows == 5
    listings.put(("p", "/c/"), 1, [node("x")])
    assert listings.get(("p", "/a/"), 1) is None and listings.rows == 4
    assert listings.get(("p", "/b/"), 2) is None  # another generation
    assert listings.get(("p", "/c/"), 1) == (node("x"),)
    ttl[0] = 0.0
    listings.put(("p", "/d/"), 1, [node("x")])  # no lifetime: nothing kept
    assert listings.get(("p", "/d/"), 1) is None
    assert listings.sweep(time.monotonic() + 120) == 1 and listings.rows == 0
