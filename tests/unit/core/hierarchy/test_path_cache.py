"""The path cache must not bring back entries a write dropped (a listing that
read its page before the write primes the cache after it)."""

from __future__ import annotations

import io
import time

from joist.admin.bootstrap import App
from joist.core.acl import SYSTEM, Principal
from joist.core.hierarchy.resolver import PathCache, Position


def test_put_with_an_older_generation_is_ignored() -> None:
    cache = PathCache(lambda: 60.0)
    key = ("folder", 1, "x")
    generation = cache.generation
    cache.drop(key)  # a write happened after the reader looked
    cache.put(key, Position("folder"), generation)
    assert cache.get(key) is None
    cache.put(key, Position("folder"), cache.generation)
    assert cache.get(key) is not None


def test_listing_across_a_write_keeps_the_cache_fresh(app: App) -> None:
    user = app.services.users.create(SYSTEM, login="lister", email="l@example.org",
                                     first_name="L", last_name="L", password="password1")
    view = app.hierarchy.view(Principal.from_user(user))
    base = "/user/lister/Private"
    for name in ("a.txt", "b.txt"):
        with view.open_write(f"{base}/{name}") as writer:
            writer.write_from(io.BytesIO(b"old"), 3)
    listing = view.listdir(base)
    next(listing)  # the page with both entries has been read
    with app.hierarchy.view(Principal.from_user(user)).open_write(f"{base}/b.txt") as writer:
        writer.write_from(io.BytesIO(b"much newer"), 10)
    assert [n.name for n in listing] == ["b.txt"]  # primes b.txt from the old page...
    assert view.stat(f"{base}/b.txt").size == 10  # ...which the cache must not keep


def test_sweep_drops_only_expired_entries() -> None:
    ttl = [60.0]
    cache = PathCache(lambda: ttl[0])
    cache.put(("folder", 1, "long"), Position("folder"))
    ttl[0] = 1.0
    cache.put(("folder", 1, "short"), Position("folder"))
    now = time.monotonic()
    assert cache.sweep(now) == 0
    assert cache.sweep(now + 30) == 1  # memory comes back without another put
    assert cache.get(("folder", 1, "short")) is None
    assert cache.get(("folder", 1, "long")) is not None
