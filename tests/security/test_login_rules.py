"""Login rules shared by the gateways (issue 12 #4 and #9).

#4: a successful login by any means is never a failure (an API key as the
password used to count as a failed password first), and one user's failures
do not lock out the others behind the same address before a much higher
per-address threshold.
#9: WebDAV and SFTP take the same secrets through one core function: the login
(or email) of the account, with its password or one of its API keys. Another
account's login with a key is refused by both, the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
import requests

from tests.gateways.sftp.sftpfs import connect
from tests.security.revocation_support import MINE, Site, revocation_site
from tests.world import PASSWORD


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with revocation_site(tmp_path) as made:
        made.app.services.settings.set("joist.throttle.max_failures", 3)
        yield made


def _sftp_ok(site: Site, login: str, secret: str) -> bool:
    try:
        transport = connect(site.sftp_server.address, login, secret)
    except paramiko.AuthenticationException:
        return False
    transport.close()
    return True


def _dav_status(site: Site, login: str, secret: str, path: str = "/") -> int:
    return requests.request("PROPFIND", site.server.url + "/dav" + path, auth=(login, secret),
                            headers={"Depth": "0"}, timeout=30).status_code


def _rest_login_status(site: Site, login: str, secret: str) -> int:
    return requests.get(site.api + "/user/authentication", auth=(login, secret),
                        timeout=30).status_code


def _throttle_records(site: Site) -> dict[str, int]:
    return {doc["_id"]: doc.get("failures", 0)
            for doc in site.app.store.throttles.find({})}


def test_an_api_key_as_the_password_is_never_a_failure(site: Site) -> None:
    key = site.api_key()["key"]
    for _ in range(6):  # twice the per-login limit, over SFTP (new connections)
        assert _sftp_ok(site, "carol", key)
    for _ in range(3):
        assert _dav_status(site, "carol", key) == 207
        assert site.app.services.auth.secret_grant("carol", key, source="10.9.9.9")
    assert _throttle_records(site) == {}
    # Bystanders on the same address are untouched.
    assert _sftp_ok(site, "bobby", PASSWORD)
    assert _rest_login_status(site, "bobby", PASSWORD) == 200


def test_one_users_failures_do_not_lock_out_the_others(site: Site) -> None:
    for _ in range(4):
        assert not _sftp_ok(site, "bobby", "wrong password")
    # bobby is throttled (even with the right password)...
    assert not _sftp_ok(site, "bobby", PASSWORD)
    assert _rest_login_status(site, "bobby", PASSWORD) == 429
    # ...but not the others behind 127.0.0.1, on any gateway.
    assert _sftp_ok(site, "alice", PASSWORD)
    assert _dav_status(site, "carol", PASSWORD) == 207
    assert _rest_login_status(site, "alice", PASSWORD) == 200


def test_the_address_has_its_own_higher_threshold(site: Site) -> None:
    site.app.services.settings.set("joist.throttle.max_failures_per_address", 8)
    for guess in range(8):  # many logins, each under its own limit
        assert _rest_login_status(site, f"nobody{guess % 4}", "wrong") == 401
    assert _rest_login_status(site, "alice", PASSWORD) == 429
    assert _dav_status(site, "alice", PASSWORD) == 429
    assert not _sftp_ok(site, "alice", PASSWORD)
    # A login from elsewhere is not affected.
    assert site.app.services.auth.secret_grant("alice", PASSWORD, source="10.1.2.3")


@pytest.mark.parametrize("login", ["carol", "CAROL", "carol@example.org"])
def test_webdav_and_sftp_take_the_owners_login_with_a_key(site: Site, login: str) -> None:
    key = site.api_key()["key"]
    assert _sftp_ok(site, login, key)
    assert _dav_status(site, login, key, MINE) == 207


@pytest.mark.parametrize("login", ["alice", "anybody", "nobody-at-all"])
def test_webdav_and_sftp_refuse_a_key_under_another_login(site: Site, login: str) -> None:
    key = site.api_key()["key"]
    assert not _sftp_ok(site, login, key)
    assert _dav_status(site, login, key) == 401
