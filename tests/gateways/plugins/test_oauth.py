"""Issue 17 item 3: the ``oauth`` plugin against a real OpenID Connect provider
(panva's oidc-provider, tests/oidc_op.py), through REST with requests: the
provider listing, the whole authorization-code flow with state and PKCE,
account creation, reuse and linking by verified email, the events, and bad
input (forged or replayed state, a replayed code, an id_token for another
audience, a provider that is down, slow or answers garbage)."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import paramiko
import pytest
import requests

from joist.core.events import Event
from tests.gateways.plugins.oauthsite import (
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_CLIENT,
    OTHER_REDIRECT,
    OTHER_SECRET,
    PROVIDER,
    OAuthSite,
    oauth_site,
)
from tests.oidc_op import sign_in


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthSite]:
    with oauth_site(tmp_path_factory.mktemp("oauth") / "data",
                    **{"webdav.enabled": True}) as found:
        yield found


def _query(reply: requests.Response) -> dict[str, list[str]]:
    assert reply.status_code == 303, reply.text
    return parse_qs(urlsplit(reply.headers["Location"]).query)


def _me(op: OAuthSite, token: str) -> Any:
    return op.site.get("user/me", headers={"Girder-Token": token}).json()


def _users(op: OAuthSite) -> int:
    return int(op.site.app.services.users.store.users.count({}))


def test_listing_offers_pkce_urls_on_this_site_only(op: OAuthSite) -> None:
    url = op.authorize_url("/collections")
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(op.issuer)
    assert query["client_id"] == [CLIENT_ID] and query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["nonce"][0]
    assert query["redirect_uri"] == [op.callback_prefix]
    plain = op.site.get("oauth/provider", params={"redirect": "/"})
    assert plain.status_code == 200 and list(plain.json()) == ["Test OP"]
    for elsewhere in ("https://evil.example/", "//evil.example/x"):
        reply = op.site.get("oauth/provider", params={"redirect": elsewhere})
        assert reply.status_code == 400, reply.text
    # the client secret is a secret: never in a settings answer
    shown = op.site.get("system/setting", "admin",
                        params={"key": "oauth.oidc_providers"}).json()
    assert shown[0]["hasSecret"] is True and "clientSecret" not in shown[0]
    op.site.app.services.settings.set("oauth.google_client_secret", "g-secret")
    listed = op.site.get("system/setting", "admin", params={
        "list": '["oauth.google_client_secret", "oauth.oidc_providers"]'})
    assert listed.status_code == 200, listed.text
    assert listed.json()["oauth.google_client_secret"] == "********"
    assert "g-secret" not in listed.text and CLIENT_SECRET not in listed.text


def test_sign_in_creates_then_finds_the_account(op: OAuthSite) -> None:
    seen: list[tuple[str, Any]] = []

    def before(event: Event) -> None:
        seen.append(("before", event.info["provider"]))

    def after(event: Event) -> None:
        seen.append(("after", event.info["user"]["login"]))

    events = op.site.app.services.events
    events.bind("oauth.auth_callback.before", "t", before)
    events.bind("oauth.auth_callback.after", "t", after)
    try:
        callback = op.provider_callback("olga", redirect="/collections")
        reply = op.complete(callback)
        query = _query(reply)
        location = reply.headers["Location"]
        assert location.startswith(op.site.server.url + "/collections?")
        token = query["girderToken"][0]
        assert f"girderToken={token}" in reply.headers["Set-Cookie"]
        me = _me(op, token)
        assert (me["login"], me["email"], me["firstName"]) == ("olga", "olga@example.org", "Olga")
        assert seen == [("before", PROVIDER), ("after", "olga")]
        again = op.login("olga")
        assert _me(op, again)["_id"] == me["_id"]
    finally:
        events.unbind("oauth.auth_callback.before", "t")
        events.unbind("oauth.auth_callback.after", "t")
    account = op.site.get("oauth/account", headers={"Girder-Token": token}).json()
    assert account == {"hasPassword": False, "providers": [{"id": PROVIDER, "name": "Test OP"}]}
    user = op.site.app.services.users.store.users.find_one({"login": "olga"})
    assert user["salt"] is None and user["emailVerified"] is True


def test_links_by_verified_email_only(op: OAuthSite) -> None:
    token = op.login("alice@example.org")  # the provider verified alice's address
    assert _me(op, token)["_id"] == op.site.id("alice")
    store = op.site.app.services.users.store.users
    assert store.find_one({"login": "alice"})["oauth"][0]["provider"] == PROVIDER
    assert store.find_one({"login": "alice"})["salt"]  # her password stays
    from joist.core.acl import SYSTEM
    op.site.app.services.users.create(
        SYSTEM, login="victor", email="unverified-vic@example.org", first_name="Vic",
        last_name="Tor", password="vic-password-1")
    before, count = store.find_one({"login": "victor"}), _users(op)
    reply = op.complete(op.provider_callback("unverified-vic"))
    query = _query(reply)
    assert "girderToken" not in query and "cannot be linked" in query["oauthError"][0]
    assert store.find_one({"login": "victor"}) == before and _users(op) == count


def test_registration_policy_and_its_override(op: OAuthSite) -> None:
    settings, store = op.site.app.services.settings, op.site.app.services.users.store.users
    try:
        settings.set("core.registration_policy", "closed")
        query = _query(op.complete(op.provider_callback("nina")))
        assert "closed" in query["oauthError"][0] and "girderToken" not in query
        assert store.find_one({"email": "nina@example.org"}) is None
        settings.set("oauth.ignore_registration_policy", True)
        assert _me(op, op.login("nina"))["email"] == "nina@example.org"
        settings.set("core.registration_policy", "approve")
        settings.set("oauth.ignore_registration_policy", False)
        query = _query(op.complete(op.provider_callback("pete")))
        assert query["error"] == ["accountApproval"] and "girderToken" not in query
        assert store.find_one({"email": "pete@example.org"})["status"] == "pending"
    finally:
        settings.set("core.registration_policy", "open")
        settings.set("oauth.ignore_registration_policy", False)


def test_forged_or_replayed_state_and_replayed_code(op: OAuthSite,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="joist")
    callback = op.provider_callback("rita")
    assert "girderToken" in _query(op.complete(callback))
    count = _users(op)
    replay = op.complete(callback)
    assert replay.status_code == 403 and "already used" in replay.json()["message"]
    params = parse_qs(urlsplit(callback).query)
    code, state = params["code"][0], params["state"][0]
    for bad in ({"code": code, "state": state[:-2] + "xx"}, {"code": code},
                {"code": code, "state": "x" * 500}):
        reply = requests.get(op.callback_prefix, params=bad, allow_redirects=False, timeout=10)
        assert reply.status_code == 403, reply.text
    # the used code with a fresh, valid state: the provider refuses it
    fresh = parse_qs(urlsplit(op.authorize_url()).query)["state"][0]
    reply = requests.get(op.callback_prefix, params={"code": code, "state": fresh},
                         allow_redirects=False, timeout=10)
    query = _query(reply)
    assert "girderToken" not in query and "sign-in failed" in query["oauthError"][0]
    assert "Set-Cookie" not in reply.headers
    # the provider said no (the person declined)
    fresh = parse_qs(urlsplit(op.authorize_url()).query)["state"][0]
    query = _query(requests.get(op.callback_prefix, allow_redirects=False, timeout=10,
                                params={"error": "access_denied", "state": fresh}))
    assert "did not sign you in" in query["oauthError"][0]
    assert _users(op) == count
    # Joist's own log (the test client's urllib3 logs URLs itself)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("joist"))
    assert "callback refused" in logged
    assert CLIENT_SECRET not in logged and code not in logged


def test_id_token_for_another_audience_is_refused(op: OAuthSite) -> None:
    from authlib.integrations.requests_client import OAuth2Session
    from joserfc.errors import JoseError

    from joist.core.builtin_plugins.oauth.flow import OAuthFlow

    flow = OAuthFlow(op.site.app.services.settings, None)  # type: ignore[arg-type]
    spec = flow.get(PROVIDER)
    assert spec is not None
    endpoints = flow.endpoints(spec)
    # a real id_token, issued by the provider to another client
    client = OAuth2Session(OTHER_CLIENT, OTHER_SECRET, scope="openid email",
                           redirect_uri=OTHER_REDIRECT, code_challenge_method="S256")
    verifier = "v" * 50
    url, _ = client.create_authorization_url(endpoints.authorize, code_verifier=verifier,
                                             nonce="nonce-1")
    with requests.Session() as browser:
        back = sign_in(browser, url, "mallory", OTHER_REDIRECT)
    code = parse_qs(urlsplit(back).query)["code"][0]
    id_token = client.fetch_token(endpoints.token, code=code, code_verifier=verifier,
                                  timeout=10)["id_token"]
    assert flow.validate_id_token(spec, endpoints, id_token, OTHER_CLIENT,
                                  "nonce-1")["aud"] == OTHER_CLIENT
    with pytest.raises(JoseError):
        flow.validate_id_token(spec, endpoints, id_token, CLIENT_ID, "nonce-1")
    with pytest.raises(JoseError):
        flow.validate_id_token(spec, endpoints, id_token, OTHER_CLIENT, "another-nonce")
    head, body, signature = id_token.split(".")
    tampered = ".".join((head, body, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA"
                                                        else "BBBB")))
    with pytest.raises(JoseError):
        flow.validate_id_token(spec, endpoints, tampered, OTHER_CLIENT, "nonce-1")


class _BadProvider(BaseHTTPRequestHandler):
    """Discovery and token endpoints that answer garbage or nothing."""

    release = threading.Event()

    def do_GET(self) -> None:
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path.startswith("/slow/"):
            self.release.wait(10)  # bounded: the test sets it when done
            body = b"{}"
        elif self.path.startswith("/garbage/"):
            body = b"<html>\x00\xff not json"
        elif self.path.startswith(("/fake/", "/fakeslow/")):
            kind = self.path.split("/")[1]
            body = json.dumps({
                "issuer": f"{base}/{kind}", "authorization_endpoint": f"{base}/{kind}/auth",
                "token_endpoint": f"{base}/{'slow' if kind == 'fakeslow' else 'garbage'}/tok",
                "jwks_uri": f"{base}/{kind}/jwks"}).encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # noqa: N815 - http.server's name

    def log_message(self, *args: Any) -> None:
        pass


def test_provider_down_slow_or_garbage(op: OAuthSite) -> None:
    settings = op.site.app.services.settings
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    down_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BadProvider)
    server.daemon_threads = True
    _BadProvider.release.clear()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    stored = settings.get("oauth.oidc_providers")
    wells = {"down": f"http://127.0.0.1:{down_port}", "slow": f"{base}/slow",
             "garbage": f"{base}/garbage", "fake": f"{base}/fake", "fakeslow": f"{base}/fakeslow"}
    try:
        settings.set("oauth.timeout", 1)
        settings.set("oauth.oidc_providers", [*stored, *[
            {"id": name, "name": name.title(), "clientId": "c", "clientSecret": "s",
             "discoveryUrl": url + "/.well-known/openid-configuration"}
            for name, url in wells.items()]])
        settings.set("oauth.providers_enabled", [PROVIDER, *wells])
        count = _users(op)
        started = time.monotonic()
        listing = op.site.get("oauth/provider", params={"redirect": "/", "list": "true"})
        # discovery runs side by side, each bounded by oauth.timeout (1 s)
        assert time.monotonic() - started < 4
        entries = {e["id"]: e for e in listing.json()}
        assert entries[PROVIDER]["url"] and entries["fake"]["url"]
        assert "could not be reached" in entries["down"]["error"]
        assert "did not answer in time" in entries["slow"]["error"]
        assert "could not be read" in entries["garbage"]["error"]
        for name, words in (("fake", "not a valid OAuth reply"),
                            ("fakeslow", "did not answer in time")):
            state = parse_qs(urlsplit(entries[name]["url"]).query)["state"][0]
            started = time.monotonic()
            reply = requests.get(op.site.url(f"oauth/{name}/callback"), allow_redirects=False,
                                 params={"code": "a-code", "state": state}, timeout=30)
            assert time.monotonic() - started < 5
            query = _query(reply)
            assert words in query["oauthError"][0] and "girderToken" not in query
        assert _users(op) == count
    finally:
        _BadProvider.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        settings.set("oauth.oidc_providers", stored)
        settings.set("oauth.providers_enabled", [PROVIDER])
        settings.set("oauth.timeout", 10)


def _dav(op: OAuthSite, login: str, secret: str) -> int:
    return requests.request("PROPFIND", f"{op.site.server.url}/dav/user/{login}/",
                            auth=(login, secret), headers={"Depth": "1"},
                            timeout=10).status_code


@contextlib.contextmanager
def _sftp(op: OAuthSite, login: str, secret: str) -> Iterator[paramiko.SFTPClient]:
    host, port = op.site.server.sftp.address
    transport = paramiko.Transport((host, port))
    try:
        transport.connect(username=login, password=secret)
        with paramiko.SFTPClient.from_transport(transport) as sftp:
            yield sftp
    finally:
        transport.close()


def test_oauth_user_uses_keys_on_gateways_and_revocation(op: OAuthSite) -> None:
    """Item 4: no password on WebDAV or SFTP, an API key works; unlinking the
    provider (the account's only way in) or disabling the account ends the
    token, the key and an open SFTP session at once."""
    token = op.login("quinn")
    made = op.site.post("api_key", headers={"Girder-Token": token}, params={"name": "dav"})
    assert made.status_code == 200, made.text
    key = made.json()["key"]
    assert _dav(op, "quinn", key) == 207
    assert _dav(op, "quinn", "any password") == 401
    with pytest.raises(paramiko.AuthenticationException), _sftp(op, "quinn", "any password"):
        pass
    with _sftp(op, "quinn", key) as sftp:
        assert set(sftp.listdir("/user/quinn")) == {"Public", "Private"}
        unlinked = op.site.delete(f"oauth/{PROVIDER}/link", headers={"Girder-Token": token})
        assert unlinked.status_code == 200, unlinked.text
        with pytest.raises(OSError):  # the open session ends too
            sftp.listdir("/user/quinn")
    assert _me(op, token) is None
    assert _dav(op, "quinn", key) == 401
    assert op.site.post("api_key/token", params={"key": key}).status_code == 401
    with pytest.raises(paramiko.AuthenticationException), _sftp(op, "quinn", key):
        pass
    # signing in through the provider again links it again (its address is
    # verified): the account and its key work again
    again = op.login("quinn")
    assert _me(op, again)["login"] == "quinn" and _dav(op, "quinn", key) == 207

    # disabling the account: token, key and SFTP end at once
    admin = op.site.get("user", "admin", params={"text": "quinn"}).json()
    user = next(u for u in admin if u["login"] == "quinn")
    with _sftp(op, "quinn", key) as sftp:
        sftp.listdir("/user/quinn")
        reply = op.site.put(f"user/{user['_id']}", "admin", params={
            "firstName": user["firstName"], "lastName": user["lastName"],
            "email": user["email"], "status": "disabled"})
        assert reply.status_code == 200, reply.text
        with pytest.raises(OSError):
            sftp.listdir("/user/quinn")
    assert _me(op, again) is None and _dav(op, "quinn", key) == 401
    refused = _query(op.complete(op.provider_callback("quinn")))
    assert "girderToken" not in refused and refused["error"] == ["disabled"]
