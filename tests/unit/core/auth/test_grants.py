"""Core's grants: a cached principal is re-derived from its documents (issue 12 #2).

Runs on both engines (``JOIST_TEST_ENGINE=mongo``). "Another process" is a
second App on the same store: its writes do not bump this App's counter.
"""

from __future__ import annotations

import pytest

from joist.admin.bootstrap import App, build_app
from joist.core.acl import SYSTEM, Principal
from joist.core.auth import grants
from joist.core.errors import AuthenticationError
from joist.core.settings import Settings
from tests.world import PASSWORD


@pytest.fixture
def alice(app: App) -> dict:
    app.services.users.create(SYSTEM, login="admin", email="admin@example.org",  # the first
                              first_name="A", last_name="D", password=PASSWORD)  # is an admin
    return app.services.users.create(SYSTEM, login="alice", email="alice@example.org",
                                     first_name="Alice", last_name="L", password=PASSWORD)


def test_writes_to_auth_collections_bump_the_generation(app: App, alice: dict) -> None:
    generation = app.store.auth_generation
    before = generation.value
    app.store.items.find({})  # reads and other collections do not count
    assert generation.value == before
    app.services.users.set_admin(SYSTEM, alice, True)
    assert generation.value > before


def test_a_fresh_grant_costs_no_query_and_a_change_is_seen_at_once(
        app: App, alice: dict) -> None:
    auth = app.services.auth
    grant = auth.secret_grant("alice", PASSWORD)
    assert grant.method == grants.PASSWORD and auth.current(grant) is grant
    app.services.users.set_admin(SYSTEM, alice, True)
    regranted = auth.current(grant)
    assert regranted.principal.admin and not grant.principal.admin
    app.services.users.change_password(SYSTEM, alice, "another password")
    with pytest.raises(AuthenticationError):
        auth.current(regranted)


def test_an_api_key_grant_ends_with_the_key_and_keeps_its_scope(app: App,
                                                                alice: dict) -> None:
    auth = app.services.auth
    me = Principal.from_user(alice)
    key = auth.api_keys.create(me, scope=["core.data.read"])
    grant = auth.secret_grant("alice", key["key"])
    assert grant.method == grants.API_KEY
    assert grant.principal.scopes == frozenset({"core.data.read"})
    app.services.users.change_password(SYSTEM, alice, "another password")
    assert auth.current(grant).principal.user_id == alice["_id"]  # keys outlive passwords
    auth.api_keys.update(me, key["_id"], active=False)
    with pytest.raises(AuthenticationError):
        auth.current(grant)


def test_a_live_grant_stays_revoked(app: App, alice: dict) -> None:
    auth = app.services.auth
    live = auth.live(auth.secret_grant("alice", PASSWORD))
    assert live.principal().login == "alice"
    app.services.users.update(SYSTEM, alice, status="disabled")
    assert not live.valid()
    app.services.users.update(SYSTEM, alice, status="enabled")
    with pytest.raises(AuthenticationError):
        live.principal()  # a session opened with a revoked credential does not come back


def test_another_process_change_is_seen_at_once(
        app: App, alice: dict, settings: Settings) -> None:
    auth = app.services.auth
    token = auth.login_token(alice)["_id"]
    grant = auth.secret_grant("alice", PASSWORD)
    assert auth.tokens.principal(token).login == "alice"
    assert auth.current(grant) is grant  # fresh: checked just now
    other = build_app(settings, env={})
    try:
        other_alice = other.store.users.find_one({"_id": alice["_id"]})
        other.services.users.update(SYSTEM, other_alice, status="disabled")
    finally:
        other.close()
    # The store's counter moved with the write: no re-check interval to wait for.
    assert auth.tokens.principal(token).is_anonymous
    with pytest.raises(AuthenticationError):
        auth.current(grant)


def test_size_bookkeeping_does_not_count_as_an_auth_change(app: App, alice: dict) -> None:
    generation = app.store.auth_generation
    before = generation.value
    app.store.users.update_one({"_id": alice["_id"]}, {"$inc": {"size": 10}})
    assert generation.value == before
    app.store.users.update_one({"_id": alice["_id"]},
                               {"$inc": {"size": 1}, "$set": {"admin": True}})
    assert generation.value > before
