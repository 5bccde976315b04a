"""The revocation matrix (issue 12 #2): change x gateway.

For each change, carol holds a live credential on every gateway (a REST token
or Basic login, a WebDAV login, an open SFTP session, a FUSE mount in its own
process) that reaches a target path; right after the change, made through core
in this process, REST, WebDAV and SFTP refuse the target at once, and the FUSE
mount (another process on the same store) within a second. Admin and group
changes take rights away without ending the session: carol's own file stays
readable everywhere. A last test makes the change with the ``joist`` CLI in
another process and polls the servers of this one with a one-second deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from joist.core.acl import SYSTEM
from tests.security.revocation_support import (
    FUSE,
    MINE,
    NEW_PASSWORD,
    OTHER_PROCESS_DEADLINE,
    SECRET,
    SHARED,
    Site,
    cli,
    poll,
    revocation_site,
)
from tests.world import PASSWORD

KEY_CHANGES = ("key_deleted", "key_deactivated")
RIGHTS_CHANGES = ("admin_removed", "group_removed")
CHANGES = ("password_changed", "disabled", *RIGHTS_CHANGES, *KEY_CHANGES, "token_deleted")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with revocation_site(tmp_path) as made:
        yield made


def _target(change: str) -> str:
    return {"admin_removed": SECRET, "group_removed": SHARED}.get(change, MINE)


def _apply(site: Site, change: str, key: dict[str, Any], token: str) -> None:
    svc = site.app.services
    subject = site.subject
    if change == "password_changed":
        svc.users.change_password(SYSTEM, subject, NEW_PASSWORD)
    elif change == "disabled":
        svc.users.update(SYSTEM, subject, status="disabled")
    elif change == "admin_removed":
        svc.users.set_admin(SYSTEM, subject, False)
    elif change == "group_removed":
        svc.groups.remove_member(SYSTEM, site.world.docs["team"], subject)
    elif change == "key_deleted":
        svc.auth.api_keys.delete(site.me(), key["_id"])
    elif change == "key_deactivated":
        svc.auth.api_keys.update(site.me(), key["_id"], active=False)
    elif change == "token_deleted":
        svc.auth.tokens.delete(token)
    else:
        raise AssertionError(change)


@pytest.mark.parametrize("change", CHANGES)
def test_revocation_takes_effect_on_every_gateway(site: Site, change: str) -> None:
    if change == "admin_removed":
        site.app.services.users.set_admin(SYSTEM, site.subject, True)
    key = site.api_key()
    token = site.token()
    target = _target(change)
    # The credential each gateway holds: the one the change is about.
    by_key = change in KEY_CHANGES
    rest_token = site.rest_key_token(key["key"]) if by_key else token
    assert rest_token is not None
    dav = site.dav(token=token) if change == "token_deleted" else \
        site.dav(key["key"] if by_key else PASSWORD)
    sftp = None if change == "token_deleted" else \
        site.sftp(key["key"] if by_key else PASSWORD)  # SFTP takes no tokens
    mount = None
    if FUSE:
        mount = site.mount(token=token) if change == "token_deleted" else \
            site.mount(key=PASSWORD if change == "password_changed" else key["key"])

    def rest() -> bool:
        if change == "password_changed":  # a token outlives a password change (Girder)
            return site.rest_basic_login(PASSWORD) == 200
        return site.rest_reads(target, rest_token)

    probes = {"REST": rest, "WebDAV": lambda: site.dav_reads(dav, target)}
    if sftp is not None:
        probes["SFTP"] = lambda: site.sftp_reads(sftp, target)
    for _ in range(2):  # twice: the second answer comes from the warm caches
        assert {name: probe() for name, probe in probes.items()} == \
            dict.fromkeys(probes, True)
    if mount is not None:
        assert site.fuse_reads(mount, target)

    _apply(site, change, key, token)
    changed_at = time.monotonic()

    # This process made the change: at once, no polling.
    still = [name for name, probe in probes.items() if probe()]
    assert still == [], f"{change}: the old credential still works on {still}"
    if mount is not None:  # another process: within a second
        assert poll(lambda: not site.fuse_reads(mount, target),
                    changed_at + OTHER_PROCESS_DEADLINE), f"{change}: FUSE still reads"

    if change in RIGHTS_CHANGES:  # fewer rights, same session: the rest still works
        assert site.rest_reads(MINE, rest_token)
        assert site.dav_reads(dav, MINE)
        assert sftp is not None and site.sftp_reads(sftp, MINE)
        if mount is not None:
            assert site.fuse_reads(mount, MINE)
    if change == "disabled":  # the worst case: a write by a disabled account
        resp = dav.put(site.server.url + "/dav/user/carol/Private/late.txt", data=b"x",
                       timeout=30)
        assert resp.status_code == 401
        assert not site.app.hierarchy.view(SYSTEM).exists("/user/carol/Private/late.txt")
    if by_key:  # nor can the key mint new tokens
        assert site.rest_key_token(key["key"]) is None
    if change == "password_changed":  # the new password works everywhere
        assert site.rest_basic_login(NEW_PASSWORD) == 200
        assert site.dav_reads(site.dav(NEW_PASSWORD), MINE)
        assert site.sftp_reads(site.sftp(NEW_PASSWORD), MINE)


def test_sftp_revoked_session_gets_permission_denied(site: Site) -> None:
    sftp = site.sftp(PASSWORD)
    assert sftp.listdir("/user/carol/Private") == ["mine.txt"]
    handle = sftp.open(MINE)  # opened before: its next read is a new request
    site.app.services.users.update(SYSTEM, site.subject, status="disabled")
    with pytest.raises(PermissionError):
        sftp.listdir("/user/carol/Private")
    with pytest.raises(PermissionError):
        handle.read(4)


def test_change_by_another_process_is_seen_within_a_second(site: Site) -> None:
    """SQLite, two processes: the ``joist`` CLI changes, this server notices."""
    site.app.services.users.set_admin(SYSTEM, site.subject, True)
    token = site.token()
    dav = site.dav(PASSWORD)
    sftp = site.sftp(PASSWORD)
    reads = {"REST": lambda path: site.rest_reads(path, token),
             "WebDAV": lambda path: site.dav_reads(dav, path),
             "SFTP": lambda path: site.sftp_reads(sftp, path)}
    for read in reads.values():
        assert read(SECRET) and read(MINE)

    done = cli(site, "user", "set-admin", "carol", "--revoke")
    changed_at = time.monotonic()
    assert done.returncode == 0, done.stderr
    for name, read in reads.items():
        assert poll(lambda read=read: not read(SECRET),  # type: ignore[misc]
                    changed_at + OTHER_PROCESS_DEADLINE), f"{name} still admin"
        assert read(MINE), name

    done = cli(site, "user", "passwd", "carol", "--password-stdin",
               stdin=NEW_PASSWORD + "\n")
    changed_at = time.monotonic()
    assert done.returncode == 0, done.stderr
    for name in ("WebDAV", "SFTP"):
        assert poll(lambda name=name: not reads[name](MINE),  # type: ignore[misc]
                    changed_at + OTHER_PROCESS_DEADLINE), f"{name}: old password works"
    assert site.rest_basic_login(PASSWORD) == 401
    assert reads["REST"](MINE)  # a token outlives a password change (Girder's rule)
