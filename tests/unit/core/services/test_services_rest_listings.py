"""The listing, position and count methods core gives the REST gateway (which
no longer builds store queries): the ACL rule is applied inside core."""

from __future__ import annotations

import pytest

from joist.admin.bootstrap import App
from joist.core import acl
from joist.core.errors import AccessDeniedError, AuthenticationError, ValidationError
from tests.world import World, build_world

BY_NAME = [("lowerName", 1), ("_id", 1)]


@pytest.fixture
def world(app: App) -> World:
    return build_world(app)


def test_folder_listing_position_and_count_see_only_readable_folders(world: World) -> None:
    svc, admin = world.app.services, world.principal("admin")
    secret = world.docs["secret"]
    made = [svc.folders.create(admin, "collection", secret["_id"], f"f{i}") for i in range(6)]
    for doc in made[::2]:  # f0, f2, f4
        svc.access.grant(admin, "folder", doc, "user", world.users["carol"]["_id"], acl.READ)
    carol, folders = world.principal("carol"), svc.folders
    docs = folders.listing(carol, secret, sort=BY_NAME, skip=1, limit=5)
    assert [d["name"] for d in docs] == ["f2", "f4"]
    assert folders.listing_count(carol, secret) == 3
    assert folders.listing_count(carol, secret, text="F4") == 1
    assert folders.position(carol, made[4], secret, sort=BY_NAME) == 2
    assert folders.position(admin, made[4], secret, sort=BY_NAME) == 4  # f0-f3 ("vault" after)
    found = folders.listing(carol, None, text="f", sort=BY_NAME, limit=0)
    assert {d["name"] for d in found} >= {"f0", "f2", "f4"}
    assert not {d["name"] for d in found} & {"f1", "f3", "f5", "vault"}
    with pytest.raises(ValidationError):
        folders.listing(carol, None)  # neither a parent nor a search


def test_item_listing_needs_read_on_the_folder(world: World) -> None:
    svc = world.app.services
    data = world.docs["data"]  # alice's, private
    alice, bobby = world.principal("alice"), world.principal("bobby")
    names = [d["name"] for d in svc.items.listing(alice, data, sort=BY_NAME)]
    assert names == sorted(names, key=str.lower) and "a.txt" in names
    assert svc.items.listing_count(alice, data, name="a.txt") == 1
    a_txt = svc.items.listing(alice, data, name="a.txt")[0]
    assert svc.items.position(alice, a_txt, data, sort=BY_NAME) == 0
    assert svc.items.file_count(alice, a_txt) == 1
    for call in (lambda: svc.items.listing(bobby, data),
                 lambda: svc.items.listing_count(bobby, data),
                 lambda: svc.items.position(bobby, a_txt, data, sort=BY_NAME),
                 lambda: svc.items.file_count(bobby, a_txt)):
        with pytest.raises((AccessDeniedError, AuthenticationError)):
            call()


def test_group_invitations_and_the_creation_policy_lookup(world: World) -> None:
    svc, admin = world.app.services, world.principal("admin")
    team = world.docs["team"]
    svc.groups.add_member(admin, team, world.users["bobby"])  # an invitation, not a join
    invited = svc.groups.invitations(admin, team)
    assert [u["login"] for u in invited] == ["bobby"]
    assert svc.groups.reload(team)["_id"] == team["_id"]
    private = svc.groups.create(admin, "private", public=False)
    with pytest.raises((AccessDeniedError, AuthenticationError)):
        svc.groups.invitations(world.principal("alice"), private)
    svc.settings.set("core.collection_create_policy", {
        "open": True, "users": [str(world.users["carol"]["_id"]), "not-an-id",
                                "0" * 24], "groups": [str(team["_id"])]})
    users, groups = svc.collections.creation_policy_members()
    assert [u["login"] for u in users] == ["carol"]
    assert [g["name"] for g in groups] == ["team"]
