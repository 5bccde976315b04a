"""Authentication: passwords, TOTP, tokens, API keys, SSH keys, throttling."""

from __future__ import annotations

import base64
import logging
import time

import pyotp
import pytest

from joist.admin.bootstrap import App
from joist.core.acl import SCOPE_DATA_READ, SYSTEM, Principal
from joist.core.auth import otp
from joist.core.errors import AuthenticationError, ThrottledError, ValidationError
from tests.world import PASSWORD

ED25519 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl "
           "alice@laptop")


@pytest.fixture
def alice(app: App) -> dict:
    app.services.users.create(SYSTEM, login="admin", email="admin@example.org",
                              first_name="A", last_name="D", password=PASSWORD)
    return app.services.users.create(SYSTEM, login="alice", email="alice@example.org",
                                     first_name="Alice", last_name="L", password=PASSWORD)


def test_password_login_by_login_or_email(app: App, alice: dict) -> None:
    auth = app.services.auth
    assert auth.password_login("alice", PASSWORD)["_id"] == alice["_id"]
    assert auth.password_login("ALICE@example.org", PASSWORD)["_id"] == alice["_id"]
    with pytest.raises(AuthenticationError):
        auth.password_login("alice", "wrong password")
    with pytest.raises(AuthenticationError):
        auth.password_login("nobody", PASSWORD)
    assert alice["salt"].startswith("$2")  # bcrypt, never the password itself
    assert PASSWORD not in str(app.store.users.find_one({"_id": alice["_id"]}))


def test_throttle_holds_across_instances(app: App, alice: dict,
                                         settings, tmp_path) -> None:
    from joist.admin.bootstrap import build_app
    app.services.settings.set("joist.throttle.max_failures", 3)
    for _ in range(3):
        with pytest.raises(AuthenticationError):
            app.services.auth.password_login("alice", "bad", source="10.0.0.1")
    other = build_app(settings, env={})  # a second process on the same store
    try:
        with pytest.raises(ThrottledError):
            other.services.auth.password_login("alice", PASSWORD, source="10.0.0.2")
    finally:
        other.close()


def test_otp_enroll_confirm_verify_replay_disable(app: App, alice: dict) -> None:
    users, auth = app.services.users, app.services.auth
    me = Principal.from_user(alice)
    uri = users.otp_enroll(me, alice)
    secret = pyotp.parse_uri(uri).secret
    totp = pyotp.TOTP(secret)

    def code(offset: int) -> str:
        # One 30 s step before/at/after now: all inside the accepted window, and
        # each later one strictly newer than the previous (codes are single-use).
        return totp.generate_otp(totp.timecode(time.time()) + offset)

    # Not enabled until confirmed: plain password still works.
    assert auth.password_login("alice", PASSWORD)
    users.otp_confirm(me, alice, code(-1))
    with pytest.raises(AuthenticationError):
        auth.password_login("alice", PASSWORD)  # code now required
    current = code(0)
    assert auth.password_login("alice", PASSWORD, current)["_id"] == alice["_id"]
    with pytest.raises(AuthenticationError):
        auth.password_login("alice", PASSWORD, current)  # replayed
    # SFTP/WebDAV style: the code appended to the password.
    assert auth.secret_login("alice", PASSWORD + code(1)).user_id == alice["_id"]
    users.otp_disable(me, app.store.get("user", alice["_id"]))
    assert not otp.is_enabled(app.store.get("user", alice["_id"]))


def test_tokens_expire_and_scopes_limit(app: App, alice: dict) -> None:
    tokens = app.services.auth.tokens
    token = tokens.create(alice, days=1)
    assert tokens.principal(token["_id"]).user_id == alice["_id"]
    assert tokens.principal("nonsense").is_anonymous
    expired = tokens.create(alice, days=-1)
    assert tokens.principal(expired["_id"]).is_anonymous
    scoped = tokens.create(alice, days=1, scopes=[SCOPE_DATA_READ])
    principal = tokens.principal(scoped["_id"])
    assert principal.for_scope(SCOPE_DATA_READ).user_id == alice["_id"]
    assert principal.for_scope("core.data.write").is_anonymous


def test_api_keys_mint_tokens_and_work_as_passwords(app: App, alice: dict) -> None:
    auth = app.services.auth
    me = Principal.from_user(alice)
    key = auth.api_keys.create(me, name="laptop", token_duration=2)
    token = auth.api_key_login(key["key"], duration=10)
    assert (token["expires"] - token["created"]).days == 2  # capped by the key
    assert auth.secret_login("alice", key["key"]).user_id == alice["_id"]
    auth.api_keys.update(me, key["_id"], active=False)
    with pytest.raises(ValidationError):
        auth.api_key_login(key["key"])
    assert auth.tokens.principal(token["_id"]).is_anonymous  # deactivation revokes
    with pytest.raises(ValidationError):
        auth.api_keys.create(me, scope=["core.setting.read"])  # admin-only scope


def test_ssh_keys(app: App, alice: dict) -> None:
    auth = app.services.auth
    doc = auth.ssh_keys.add(alice, ED25519)
    assert doc["fingerprint"].startswith("SHA256:") and doc["name"] == "alice@laptop"
    blob = base64.b64decode(ED25519.split()[1])
    assert auth.public_key_login("alice", blob).user_id == alice["_id"]
    with pytest.raises(AuthenticationError):
        auth.public_key_login("admin", blob)
    for bad in ("ssh-dss AAAA", "ssh-ed25519 notbase64!", "garbage"):
        with pytest.raises(ValidationError):
            auth.ssh_keys.add(alice, bad)


def test_disabled_account_cannot_log_in(app: App, alice: dict) -> None:
    app.services.users.update(SYSTEM, alice, status="disabled")
    with pytest.raises(AuthenticationError):
        app.services.auth.password_login("alice", PASSWORD)
    with pytest.raises(AuthenticationError):
        app.services.auth.secret_login("alice", PASSWORD)


def test_secrets_never_logged(app: App, alice: dict, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    auth = app.services.auth
    with pytest.raises(AuthenticationError):
        auth.password_login("alice", "s3cret-wrong-pass")
    auth.password_login("alice", PASSWORD)
    key = auth.api_keys.create(Principal.from_user(alice))
    auth.api_key_login(key["key"])
    text = caplog.text
    for secret in ("s3cret-wrong-pass", PASSWORD, key["key"]):
        assert secret not in text
    assert "alice" in text  # the login is logged, the secret is not


def test_anonymous_sftp_style_login_follows_setting(app: App, alice: dict) -> None:
    auth = app.services.auth
    assert auth.secret_login("anonymous", "anything").is_anonymous
    app.services.settings.set("joist.anonymous_access", False)
    with pytest.raises(AuthenticationError):
        auth.secret_login("Anonymous", "")
