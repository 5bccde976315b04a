"""Core changes made for the REST gateway: ``text`` filters on group listings
and collection counts, and the admin-only email verification flag."""

from __future__ import annotations

import pytest

from joist.admin.bootstrap import App
from joist.core.errors import AccessDeniedError
from tests.world import build_world


def test_group_listing_filters_by_text(app: App) -> None:
    world = build_world(app)
    admin = world.principal("admin")
    app.services.groups.create(admin, "Tea Lovers", public=False)
    names = [g["name"] for g in app.services.groups.list(admin, text="TEA")]
    assert names == ["Tea Lovers", "team"]
    assert app.services.groups.list(admin, text="zzz") == []
    carol = world.principal("carol")  # a member of "team" only
    assert [g["name"] for g in app.services.groups.list(carol, text="te")] == ["team"]


def test_collection_count_follows_the_listing_text(app: App) -> None:
    world = build_world(app)
    admin, carol = world.principal("admin"), world.principal("carol")
    svc = app.services.collections
    assert svc.count(admin) == 2 and svc.count(admin, "SEC") == 1
    assert [c["name"] for c in svc.list(admin, text="sec")] == ["secret"]
    assert svc.count(carol, "sec") == 0 and svc.count(carol) == 1


def test_only_admins_mark_an_email_verified(app: App) -> None:
    world = build_world(app)
    bobby = app.store.users.find_one({"login": "bobby"})
    assert bobby is not None
    app.store.users.update_one({"_id": bobby["_id"]}, {"$set": {"emailVerified": False}})
    bobby["emailVerified"] = False
    with pytest.raises(AccessDeniedError):
        app.services.users.update(world.principal("bobby"), bobby, email_verified=True)
    done = app.services.users.update(world.principal("admin"), bobby, email_verified=True)
    assert done["emailVerified"] is True
    assert app.store.get("user", bobby["_id"])["emailVerified"] is True
