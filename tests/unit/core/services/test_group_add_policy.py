"""Issue 14: who may add a member to a group directly (``force``), Girder's rule
as a table over the site policy, the group's ``addAllowed`` and the adder's
role; and the sort fields core lets each paged listing use."""

from __future__ import annotations

import pytest

from joist.admin.bootstrap import App
from joist.core import acl
from joist.core.errors import AccessDeniedError, ValidationError
from joist.core.services import listing
from tests.world import build_world

# site policy -> group addAllowed -> (group admin may, group moderator may)
RULE = {
    "never": {"default": (False, False), "no": (False, False),
              "yesadmin": (False, False), "yesmod": (False, False)},
    "noadmin": {"default": (False, False), "no": (False, False),
                "yesadmin": (True, False), "yesmod": (True, False)},
    "nomod": {"default": (False, False), "no": (False, False),
              "yesadmin": (True, False), "yesmod": (True, True)},
    "yesadmin": {"default": (True, False), "no": (False, False),
                 "yesadmin": (True, False), "yesmod": (True, False)},
    "yesmod": {"default": (True, True), "no": (False, False),
               "yesadmin": (True, False), "yesmod": (True, True)},
}


def test_direct_adds_follow_girders_policy_table(app: App) -> None:
    world = build_world(app)
    groups, settings = app.services.groups, app.services.settings
    admin, alice = world.principal("admin"), world.principal("alice")
    crew = groups.create(alice, "crew")  # alice: group admin
    member = groups.add_member(admin, crew, world.users["bobby"], force=True)
    groups.set_role(alice, crew, member, acl.WRITE)  # bobby: moderator
    bobby, carol = world.principal("bobby"), world.users["carol"]
    outcomes = {}
    for policy, by_group in RULE.items():
        settings.set("core.add_to_group_policy", policy)
        for allowed in by_group:
            crew = groups.update(admin, groups.reload(crew), add_allowed=allowed)
            got = []
            for who in (alice, bobby):
                try:
                    groups.add_member(who, crew, carol, force=True)
                    got.append(True)
                    groups.remove_member(admin, crew, carol)
                except AccessDeniedError:
                    got.append(False)
            outcomes[(policy, allowed)] = tuple(got)
            # Site admins always may.
            groups.add_member(admin, crew, carol, force=True)
            groups.remove_member(admin, crew, carol)
    assert outcomes == {(p, a): v for p, row in RULE.items() for a, v in row.items()}


def test_only_site_admins_set_add_allowed(app: App) -> None:
    world = build_world(app)
    groups = app.services.groups
    crew = groups.create(world.principal("alice"), "crew")
    with pytest.raises(AccessDeniedError):
        groups.update(world.principal("alice"), crew, add_allowed="yesmod")
    with pytest.raises(ValidationError):
        groups.update(world.principal("admin"), crew, add_allowed="sometimes")
    assert groups.update(world.principal("admin"), crew,
                         add_allowed="no")["addAllowed"] == "no"


def test_sort_specs_name_a_known_field() -> None:
    assert listing.sort_spec("group_member", "lastName", -1) == [("lastName", -1),
                                                                  ("_id", -1)]
    assert listing.sort_spec("assetstore_file", "_id", 1) == [("_id", 1)]
    for name, field in (("user", "email"), ("user", "salt"), ("assetstore", "secret"),
                        ("item", "meta.x")):
        with pytest.raises(ValidationError) as refused:
            listing.sort_spec(name, field, 1)
        assert refused.value.field == "sort"
    with pytest.raises(ValidationError):
        listing.sort_spec("user", "login", 0)
