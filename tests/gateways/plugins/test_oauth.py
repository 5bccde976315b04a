"""Issue 17 item 3: the ``oauth`` plugin against a real OpenID Connect provider
(panva's oidc-provider, tests/oidc_op.py), through REST with requests: the
provider listing, the whole authorization-code flow with state and PKCE,
account creation, reuse and linking by verified email, the events, and bad
input (forged or replayed state, a replayed code, an id_token for another
audience, a provider that is down, slow or answers garbage)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
    with oauth_site(tmp_path_factory.mktemp("oauth") / "data") as found:
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
    everything = op.site.get("system/setting", "admin", params={"list": '["oauth.google_'
                                                                 'client_secret"]'}).text
    assert "g-secret" not in everything and CLIENT_SECRET not in everything


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
