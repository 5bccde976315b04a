"""The access matrix: (owner, another user, group READ, group WRITE, anonymous,
site admin) x (REST, WebDAV, SFTP, FUSE) x (read, list, write, delete, move,
ACL change), each cell its own test, each expectation read from the one table
in ``matrix_world`` (``GRANTS`` -> ``expected_level`` -> ``outcome``).

And the existence rule: on every path-based gateway a path the principal may
not read answers exactly as a path that does not exist (WebDAV status, body
and headers; SFTP status code and message; FUSE errno). REST by id keeps
Girder's 401/403; REST by path (``resource/lookup``) answers as not found.

One world, one server and one read-write mount per principal for the module.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateways.fuse.fuse_harness import wait_for
from tests.gateways.sftp.sftpfs import NO_SUCH_FILE, OK, PERMISSION_DENIED
from tests.security.matrix_gateways import (
    DavOps,
    FuseOps,
    Reply,
    RestClient,
    SftpOps,
    access_body,
)
from tests.security.matrix_world import (
    DATA,
    LOGINS,
    MISSING,
    OWNER,
    VAULT,
    MatrixSite,
    Outcome,
    cells,
    expected_level,
    folder_path,
    outcome,
    running_matrix,
    twin_path,
    victim,
)

ALLOWED_STATUS = {"read": 200, "list": 207, "write": 201, "delete": 204, "move": 201}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MatrixSite]:
    with running_matrix(tmp_path_factory.mktemp("matrix")) as matrix:
        yield matrix


class Clients:
    """One client per (gateway, principal), made on first use, closed at the end."""

    def __init__(self, site: MatrixSite) -> None:
        self.site = site
        self.made: dict[tuple[str, str], Any] = {}

    def __call__(self, gateway: str, who: str) -> Any:
        if (gateway, who) not in self.made:
            site, login = self.site, LOGINS[who]
            if gateway == "fuse" and site.fuse_skip:
                pytest.skip(site.fuse_skip)
            self.made[(gateway, who)] = {
                "rest": lambda: RestClient(site.api, site.token(who)),
                "webdav": lambda: DavOps(site.dav, login),
                "sftp": lambda: SftpOps(site.sftp_address, login),
                "fuse": lambda: FuseOps(site.mounts[who].root if who in site.mounts
                                        else Path("/nonexistent")),
            }[gateway]()
        return self.made[(gateway, who)]

    def close(self) -> None:
        for client in self.made.values():
            client.close()


@pytest.fixture(scope="module")
def clients(site: MatrixSite) -> Iterator[Clients]:
    made = Clients(site)
    try:
        yield made
    finally:
        made.close()


# ------------------------------------------------------------------ expectations
def challenged(got: Reply) -> bool:
    return got.code == 401 and any(k == "www-authenticate" and v.startswith("Basic")
                                   for k, v in got.headers)


def expect_anonymous_webdav(expected: Outcome, got: Reply, twin: Reply | None,
                            allowed: int, names: tuple[str, ...]) -> None:
    """Every anonymous WebDAV expectation, in this one place.

    Issue 12 item 10 changes WebDAV so that an unauthenticated request for
    anything anonymous may not see, or that does not exist, answers 401 with a
    Basic challenge, and anonymous read of public data becomes a setting. Until
    that change is merged a hidden path answers 404. Both hold here; after the
    merge, tighten to: hidden and denied -> ``challenged``, allowed -> the
    setting's answer.
    """
    if expected is Outcome.HIDDEN:
        assert twin is not None
        assert got.code in (401, 404), got
        assert got.normalized(*names) == twin.normalized(*names)
        if got.code == 401:
            assert challenged(got), got
    elif expected is Outcome.DENIED:
        assert challenged(got), got
    else:
        assert got.code == allowed or challenged(got), got


def check_path_reply(gateway: str, op: str, who: str, expected: Outcome, got: Reply,
                     twin: Reply | None, names: tuple[str, ...]) -> None:
    """What ``got`` must be on a path-based gateway (``twin``: the same request
    for the nonexistent sibling, made when ``who`` may not read the target)."""
    if twin is not None:  # the existence rule, whatever the operation
        assert got.normalized(*names) == twin.normalized(*names), (got, twin)
    if gateway == "webdav" and LOGINS[who] is None:
        expect_anonymous_webdav(expected, got, twin, ALLOWED_STATUS[op], names)
        return
    if expected is Outcome.ALLOWED:
        ok = {"webdav": ALLOWED_STATUS[op], "sftp": OK, "fuse": 0}[gateway]
        assert got.code == ok, got
        if op == "read":
            assert got.data == DATA
        if op == "list":
            assert any(str(n).rstrip("/").endswith("data.txt") for n in got.data), got.data
    elif expected is Outcome.DENIED:
        assert got.code == {"webdav": 403, "fuse": errno.EACCES}[gateway], got
    elif expected is Outcome.READ_ONLY:
        assert (got.code, got.body) == (PERMISSION_DENIED, b"This server is read-only."), got
    else:
        hidden = {"webdav": (404, 409), "sftp": (NO_SUCH_FILE,), "fuse": (errno.ENOENT,)}
        assert got.code in hidden[gateway], got


def check_rest_reply(who: str, expected: Outcome, got: Reply) -> None:
    if expected is Outcome.ALLOWED:
        assert got.code == 200, got
        return
    # Denied or unreadable, by id: Girder's access error (401 anonymous, 403 user).
    assert got.code == (401 if LOGINS[who] is None else 403), got
    assert got.data["type"] == "access", got


def check_effect(site: MatrixSite, gateway: str, op: str, who: str, target: str,
                 allowed: bool) -> None:
    """The store after the cell: changed exactly when the cell was allowed."""
    world = site.world
    folder, sub = world.folders[target], world.subs[target]
    name = victim(op, gateway, who)
    state: Callable[[], Any]
    if op == "write":
        want: Any = written(gateway, who) if allowed else None
        state = lambda: world.file_bytes(folder, name)  # noqa: E731
    elif op == "delete":
        want, state = not allowed, lambda: world.item_in(folder, name) is not None
    elif op == "move":
        want = (allowed, not allowed)
        state = lambda: (world.item_in(sub, name) is not None,  # noqa: E731
                         world.item_in(folder, name) is not None)
    elif op == "acl":
        stranger = world.users["other"]["_id"]
        want = allowed

        def state() -> bool:
            doc = site.app.store.folders.find_one({"_id": world.acl_folders[(who, target)]["_id"]})
            assert doc is not None
            return any(e["id"] == stranger for e in doc["access"]["users"])
    else:
        return
    if allowed:  # a FUSE file is committed when the kernel releases it
        wait_for(lambda: state() == want, f"the effect of {op} by {who}", 10)
    assert state() == want


def written(gateway: str, who: str) -> bytes:
    return f"written by {who} through {gateway}\n".encode()


# ------------------------------------------------------------------ the matrix
def perform(ops: Any, op: str, path: str, target: str, data: bytes) -> Reply:
    if op == "read":
        return ops.read(path)  # type: ignore[no-any-return]
    if op == "list":
        return ops.list(path)  # type: ignore[no-any-return]
    if op == "write":
        return ops.write(path, data)  # type: ignore[no-any-return]
    if op == "delete":
        return ops.delete(path)  # type: ignore[no-any-return]
    parent, name = path.rsplit("/", 1)
    return ops.move(path, f"{parent}/sub/{name}")  # type: ignore[no-any-return]


def perform_rest(site: MatrixSite, rest: RestClient, op: str, who: str, target: str,
                 data: bytes) -> Reply:
    world = site.world
    folder = str(world.folders[target]["_id"])
    if op == "read":
        return rest.call("GET", f"file/{world.data_files[target]['_id']}/download")
    if op == "list":
        return rest.call("GET", "item", params={"folderId": folder})
    if op == "write":
        return rest.call("POST", "file", params={
            "parentType": "folder", "parentId": folder, "name": victim(op, "rest", who),
            "size": len(data)}, data=data)
    if op == "delete":
        return rest.call("DELETE", f"item/{world.victims[(op, 'rest', who, target)]['_id']}")
    if op == "move":
        return rest.call("PUT", f"item/{world.victims[(op, 'rest', who, target)]['_id']}",
                         params={"folderId": str(world.subs[target]["_id"])})
    acl_folder = world.acl_folders[(who, target)]
    access = {"users": [*acl_folder["access"]["users"],
                        {"id": str(world.users["other"]["_id"]), "level": 0}],
              "groups": acl_folder["access"]["groups"]}
    access = {"users": [{**e, "id": str(e["id"])} for e in access["users"]],
              "groups": [{**e, "id": str(e["id"])} for e in access["groups"]]}
    return rest.call("PUT", f"folder/{acl_folder['_id']}/access", data=access_body(access))


@pytest.mark.parametrize(("gateway", "op", "who", "target"), [
    pytest.param(*cell, id="-".join(cell)) for cell in cells()])
def test_access_matrix(site: MatrixSite, clients: Clients, gateway: str, op: str, who: str,
                       target: str) -> None:
    expected = outcome(who, gateway, op, target)
    client = clients(gateway, who)
    data = written(gateway, who)
    if gateway == "rest":
        check_rest_reply(who, expected, perform_rest(site, client, op, who, target, data))
    else:
        path = folder_path(target) if op == "list" else \
            f"{folder_path(target)}/{victim(op, gateway, who)}"
        got = perform(client, op, path, target, data)
        twin = None
        if expected_level(who, target) < 0:
            twin = perform(client, op, twin_path(path, target), target, data)
        names = (folder_path(target).rsplit("/", 1)[1], MISSING)
        check_path_reply(gateway, op, who, expected, got, twin, names)
    check_effect(site, gateway, op, who, target, expected is Outcome.ALLOWED)


# ------------------------------------------------------------------ the existence rule
# (existing path, nonexistent sibling, who may read the existing one)
PAIRS = {
    "folder": (folder_path("private"), f"/user/{OWNER}/{MISSING}", "private"),
    "file": (f"{folder_path('private')}/data.txt", f"{folder_path('private')}/nope.txt",
             "private"),
    "collection": (VAULT, "/collection/nope", None),
    "vault-file": (f"{VAULT}/inner/secret.txt", f"{VAULT}/inner/nope.txt", None),
}
VAULT_READERS = ("owner", "admin")  # the vault's ACL: olive's entry, and site admins


def may_not_read(pair: str, who: str) -> bool:
    target = PAIRS[pair][2]
    return who not in VAULT_READERS if target is None else expected_level(who, target) < 0


PROBES: dict[str, dict[str, Callable[[Any, str], Reply]]] = {
    "webdav": {
        "propfind0": lambda c, p: c.stat(p), "propfind1": lambda c, p: c.list(p),
        "get": lambda c, p: c.read(p), "head": lambda c, p: c.head(p),
        "put-child": lambda c, p: c.write(p + "/x.txt", b"x"),
        "mkcol-child": lambda c, p: c.mkdir(p + "/newdir"),
        "delete": lambda c, p: c.delete(p), "move": lambda c, p: c.move(p, p + "-moved"),
        "copy": lambda c, p: c.copy(p, p + "-copied")},
    "sftp": {
        "stat": lambda c, p: c.stat(p), "lstat": lambda c, p: c.lstat(p),
        "opendir": lambda c, p: c.list(p), "open": lambda c, p: c.read(p)},
    "fuse": {
        "stat": lambda c, p: c.stat(p), "listdir": lambda c, p: c.list(p),
        "open": lambda c, p: c.read(p),
        "create-child": lambda c, p: c.write(p + "/x.txt", b"x"),
        "mkdir-child": lambda c, p: c.mkdir(p + "/newdir"),
        "unlink": lambda c, p: c.delete(p), "rename": lambda c, p: c.move(p, p + "-moved")},
}
EXISTENCE = [pytest.param(g, probe, pair, who, id=f"{g}-{probe}-{pair}-{who}")
             for g, probes in PROBES.items() for probe in probes for pair in PAIRS
             for who in LOGINS if may_not_read(pair, who)]


@pytest.mark.parametrize(("gateway", "probe", "pair", "who"), EXISTENCE)
def test_unreadable_path_answers_as_nonexistent(clients: Clients, gateway: str, probe: str,
                                                pair: str, who: str) -> None:
    existing, missing, _ = PAIRS[pair]
    client = clients(gateway, who)
    got, twin = PROBES[gateway][probe](client, existing), PROBES[gateway][probe](client, missing)
    names = (existing.rsplit("/", 1)[1], missing.rsplit("/", 1)[1])
    assert got.normalized(*names) == twin.normalized(*names), (got, twin)
    assert got.code not in (0, 200, 201, 204, 207), got  # a refusal, not a success
    if gateway == "webdav" and LOGINS[who] is None:
        expect_anonymous_webdav(Outcome.HIDDEN, got, twin, 0, names)


@pytest.mark.parametrize("who", [w for w in LOGINS if may_not_read("folder", w)])
def test_rest_lookup_by_path_answers_as_nonexistent(clients: Clients, who: str) -> None:
    """``GET resource/lookup``: Girder's 400 ``Path not found`` for both."""
    rest = clients("rest", who)
    for pair in ("folder", "file"):
        existing, missing, _ = PAIRS[pair]
        got = rest.call("GET", "resource/lookup", params={"path": existing})
        twin = rest.call("GET", "resource/lookup", params={"path": missing})
        assert got.code == 400 and got.data["type"] == "validation", got
        assert got.normalized(existing) == twin.normalized(missing)


@pytest.mark.parametrize("who", [w for w in LOGINS if may_not_read("folder", w)])
def test_rest_by_id_keeps_girders_access_error(site: MatrixSite, clients: Clients,
                                               who: str) -> None:
    """By id, Girder answers an unreadable document 401/403 (and an unknown id 400)."""
    rest = clients("rest", who)
    got = rest.call("GET", f"folder/{site.world.folders['private']['_id']}")
    assert got.code == (401 if LOGINS[who] is None else 403), got
    assert got.data["type"] == "access"
