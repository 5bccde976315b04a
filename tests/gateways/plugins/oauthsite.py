"""A REST site with the ``oauth`` plugin and a real OpenID Connect provider
(tests/oidc_op.py) registered as the generic provider ``testop``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from tests.gateways.http.restsite import RestSite
from tests.gateways.plugins.pluginsite import plugin_site
from tests.oidc_op import running_op, sign_in

PROVIDER = "testop"
CLIENT_ID = "joist-site"
CLIENT_SECRET = "op-client-secret-not-for-logs"
OTHER_CLIENT = "other-app"
OTHER_SECRET = "other-app-secret"
OTHER_REDIRECT = "http://127.0.0.1:9/other/callback"


@dataclass
class OAuthSite:
    site: RestSite
    issuer: str

    @property
    def callback_prefix(self) -> str:
        return self.site.url(f"oauth/{PROVIDER}/callback")

    def authorize_url(self, redirect: str = "/") -> str:
        reply = self.site.get("oauth/provider", params={"redirect": redirect, "list": "true"})
        assert reply.status_code == 200, reply.text
        entry = next(e for e in reply.json() if e["id"] == PROVIDER)
        assert entry["url"], entry
        return str(entry["url"])

    def provider_callback(self, login: str, redirect: str = "/") -> str:
        """Sign in at the provider as ``login``: the callback URL it sends back."""
        with requests.Session() as browser:
            return sign_in(browser, self.authorize_url(redirect), login, self.callback_prefix)

    def complete(self, callback_url: str) -> requests.Response:
        return requests.get(callback_url, allow_redirects=False, timeout=30)

    def login(self, login: str) -> str:
        """The whole flow; the Joist token the callback hands back."""
        reply = self.complete(self.provider_callback(login))
        assert reply.status_code == 303, reply.text
        query = parse_qs(urlsplit(reply.headers["Location"]).query)
        assert "girderToken" in query, query
        return query["girderToken"][0]


def configure(settings: Any, issuer: str) -> None:
    """Register the OP as the generic provider ``testop`` and enable it."""
    settings.set("oauth.oidc_providers", [{
        "id": PROVIDER, "name": "Test OP", "clientId": CLIENT_ID,
        "clientSecret": CLIENT_SECRET,
        "discoveryUrl": issuer + "/.well-known/openid-configuration"}])
    settings.set("oauth.providers_enabled", [PROVIDER])


@contextlib.contextmanager
def oauth_site(data_dir: Path, **overrides: object) -> Iterator[OAuthSite]:
    with plugin_site(data_dir, ["oauth"], **overrides) as site:
        callback = site.url(f"oauth/{PROVIDER}/callback")
        clients = [
            {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
             "redirect_uris": [callback]},
            {"client_id": OTHER_CLIENT, "client_secret": OTHER_SECRET,
             "redirect_uris": [OTHER_REDIRECT]},
        ]
        with running_op(clients, data_dir.parent / "op") as issuer:
            configure(site.app.services.settings, issuer)
            yield OAuthSite(site, issuer)
