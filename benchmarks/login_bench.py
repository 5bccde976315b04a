"""Login latency of each identity on loopback (issue 17): median of ``--runs``
logins (default 20) through the REST API with requests, each identity against
a real server started here on 127.0.0.1:

* local password: ``GET user/authentication`` with HTTP Basic (bcrypt at the
  server's default cost, 12);
* LDAP: the same request for a directory user, checked by OpenLDAP ``slapd``
  (tests/ldap_server.py: service bind, search, user bind);
* OAuth / OpenID Connect: the whole browser round trip, done with requests:
  ``GET oauth/provider``, the provider's authorize, sign-in form and consent
  (panva's oidc-provider, tests/oidc_op.py), then Joist's callback (code
  exchange with PKCE, id_token validation against the JWKS, userinfo, the
  account lookup, the token). Also the callback alone: Joist's own share.

Each figure is the median in milliseconds; the server runs in this process
(cheroot threads), the OP and slapd in their own.

Run from the repository root (needs ``make test-deps``):
    .venv/bin/python benchmarks/login_bench.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from joist.admin.server import Server
from joist.core.acl import SYSTEM
from joist.core.plugins import ENABLED_SETTING
from tests.conftest import site_app
from tests.gateways.plugins.oauthsite import (
    CLIENT_ID,
    CLIENT_SECRET,
    PROVIDER,
    configure,
)
from tests.ldap_server import PEOPLE_DN, ROOT_DN, ROOT_PASSWORD, running_slapd
from tests.oidc_op import running_op, sign_in

PASSWORD = "a local password 1"


def median_ms(runs: int, once: Callable[[], float | None]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        part = once()
        times.append(part if part is not None else time.perf_counter() - started)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rounds = {"security.bcrypt_rounds": 12, "webdav.enabled": False}
        seed = site_app(root / "data", **rounds)
        seed.services.settings.set(ENABLED_SETTING, ["oauth"])
        seed.close()
        app = site_app(root / "data", **rounds)
        server = Server(app)
        server.start()
        try:
            api = server.url + "/api/v1/"
            app.services.users.create(SYSTEM, login="local", email="local@example.org",
                                      first_name="Lo", last_name="Cal", password=PASSWORD)
            with requests.Session() as http:
                def local() -> None:
                    reply = http.get(api + "user/authentication", auth=("local", PASSWORD),
                                     timeout=30)
                    assert reply.status_code == 200, reply.text

                figures = {"local password": median_ms(args.runs, local)}

                (root / "slapd").mkdir()
                with running_slapd(root / "slapd") as slapd:
                    slapd.add_person("dirk", "directory-pw-1", given="Dirk", surname="Ldap",
                                     mail="dirk@example.org")
                    app.services.settings.set("ldap.servers", [{
                        "uri": slapd.uri, "bindName": ROOT_DN, "password": ROOT_PASSWORD,
                        "baseDn": PEOPLE_DN, "searchField": "uid"}])

                    def ldap() -> None:
                        reply = http.get(api + "user/authentication",
                                         auth=("dirk", "directory-pw-1"), timeout=30)
                        assert reply.status_code == 200, reply.text

                    ldap()  # the first login creates the account
                    figures["LDAP (slapd)"] = median_ms(args.runs, ldap)
                    app.services.settings.set("ldap.servers", [])

            callback = api + f"oauth/{PROVIDER}/callback"
            clients = [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                        "redirect_uris": [callback]}]
            with running_op(clients, root / "op") as issuer:
                configure(app.services.settings, issuer)
                shares: list[float] = []

                def oauth() -> None:
                    with requests.Session() as browser:
                        listing = browser.get(api + "oauth/provider", timeout=30,
                                              params={"redirect": "/", "list": "true"})
                        url = listing.json()[0]["url"]
                        back = sign_in(browser, url, "olivia", callback)
                        started = time.perf_counter()
                        reply = browser.get(back, allow_redirects=False, timeout=30)
                        shares.append(time.perf_counter() - started)
                        assert "girderToken=" in reply.headers.get("Location", ""), reply.text

                oauth()  # the first sign-in creates the account
                shares.clear()
                figures["OAuth/OIDC, whole round trip"] = median_ms(args.runs, oauth)
                figures["OAuth/OIDC, Joist's callback alone"] = statistics.median(shares) * 1000
        finally:
            server.stop()
            app.close()
    width = max(map(len, figures))
    print(f"login latency, median of {args.runs} on loopback (ms)")
    for name, value in figures.items():
        print(f"  {name:<{width}}  {value:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
