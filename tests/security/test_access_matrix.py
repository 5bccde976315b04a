"""The access matrix: (owner, another user, group READ, group WRITE, anonymous,
site admin) x (REST, WebDAV, SFTP, FUSE) x (read, list, write, overwrite,
delete, move, ACL change), each cell its own test, each expectation read from
the one table in ``matrix_world`` (``GRANTS`` -> ``expected_level`` ->
``outcome``). SFTP is read-only for everyone; ACL changes exist on REST only
(``PUT folder/{id}/access``), so those cells are not generated elsewhere.

And the existence rule: on every path-based gateway a path the principal may
not read answers exactly as a path that does not exist (WebDAV status, body
and headers; SFTP status code and message; FUSE errno). REST by id keeps
Girder's 401/403; REST by path (``resource/lookup``) answers as not found.

One world, one server (REST, WebDAV, SFTP) and one read-write FUSE mount per
principal for the whole module.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateways.fuse.fuse_harness import wait_for
from tests.gateways.sftp.sftpfs import NO_SUCH_FILE
from tests.security import matrix_world
from tests.security.matrix_checks import (
    Clients,
    check_effect,
    check_path_reply,
    check_rest_reply,
    expect_anonymous_webdav,
    perform,
    perform_rest,
    settle,
    written,
)
from tests.security.matrix_gateways import FuseOps, Reply
from tests.security.matrix_world import (
    DATA,
    GATEWAYS,
    GRANTS,
    LOGINS,
    MISSING,
    OWNER,
    REVOCABLE,
    VAULT,
    MatrixSite,
    Outcome,
    cells,
    cross_victim,
    expected_level,
    folder_path,
    outcome,
    running_matrix,
    spawn_mount,
    transfer_outcome,
    transfers,
    twin_path,
    victim,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MatrixSite]:
    with running_matrix(tmp_path_factory.mktemp("matrix")) as matrix:
        yield matrix


@pytest.fixture(scope="module")
def clients(site: MatrixSite) -> Iterator[Clients]:
    made = Clients(site)
    try:
        yield made
    finally:
        made.close()


def folder_names(target: str) -> tuple[str, str]:
    """The segment that differs between a target's path and its twin's."""
    return GRANTS[target]["folder"], MISSING


VAULT_READERS = ("owner", "admin")  # the vault's ACL: olive's entry, and site admins


# ------------------------------------------------------------------ the matrix
def test_the_table_reads_as_documented() -> None:
    """``matrix_world``'s docstring shows what ``GRANTS`` comes to; keep it true."""
    names = {-1: "NONE", 0: "READ", 1: "WRITE", 2: "ADMIN"}
    doc = matrix_world.__doc__ or ""
    for who in LOGINS:
        row = next(line.split() for line in doc.splitlines() if line.split()[:1] == [who])
        assert row[1:] == [names[expected_level(who, t)] for t in GRANTS], who


NOT_APPLICABLE = pytest.mark.skip(reason="not applicable: ACL changes exist on REST only")


@pytest.mark.parametrize(("gateway", "op", "who", "target"), [
    pytest.param(*cell, id="-".join(cell), marks=[NOT_APPLICABLE] if outcome(
        cell[2], cell[0], cell[1], cell[3]) is Outcome.NOT_APPLICABLE else [])
    for cell in cells()])
def test_access_matrix(site: MatrixSite, clients: Clients, gateway: str, op: str, who: str,
                       target: str) -> None:
    expected = outcome(who, gateway, op, target)
    client = clients(gateway, who)
    data = written(gateway, who)
    if gateway == "rest":
        check_rest_reply(who, expected, perform_rest(site, client, op, who, target, data), op)
    else:
        path = folder_path(target) if op == "list" else \
            f"{folder_path(target)}/{victim(op, gateway, who)}"
        got = perform(client, op, path, data)
        twin = None
        if expected_level(who, target) < 0:  # may not read: must look nonexistent
            twin = perform(client, op, twin_path(path, target), data)
        check_path_reply(gateway, op, who, expected, got, twin, folder_names(target))
    check_effect(site, gateway, op, who, target, expected is Outcome.ALLOWED)


@pytest.mark.parametrize(("gateway", "op", "who", "src", "dst"), [
    pytest.param(*transfer, id="-".join(transfer)) for transfer in transfers()])
def test_move_and_copy_between_folders(site: MatrixSite, clients: Clients, gateway: str,
                                       op: str, who: str, src: str, dst: str) -> None:
    """Between two folders with different ACLs: a move needs WRITE on both, a
    copy READ on the source and WRITE on the destination; an unreadable end
    answers as a nonexistent one."""
    expected, hidden_end = transfer_outcome(who, gateway, op, src, dst)
    world, client = site.world, clients(gateway, who)
    name = cross_victim(gateway, op, who, src, dst)
    if gateway == "rest":
        item, to = world.cross[(gateway, op, who, src, dst)], str(world.folders[dst]["_id"])
        check_rest_reply(who, expected, client.call("PUT", f"item/{item['_id']}", params={
            "folderId": to}) if op == "move" else client.call(
            "POST", f"item/{item['_id']}/copy", params={"folderId": to}))
    else:
        src_path, dst_path = f"{folder_path(src)}/{name}", f"{folder_path(dst)}/{name}"
        act = client.move if op == "move" else client.copy
        got, twin, names = act(src_path, dst_path), None, ()
        if hidden_end == "source":
            twin, names = act(twin_path(src_path, src), dst_path), folder_names(src)
        elif hidden_end == "destination":
            twin, names = act(src_path, twin_path(dst_path, dst)), folder_names(dst)
        check_path_reply(gateway, op, who, expected, got, twin, names)
    done = expected is Outcome.ALLOWED
    settle(lambda: (world.item_in(world.folders[dst], name) is not None,
                    world.item_in(world.folders[src], name) is not None),
           (done, op == "copy" or not done), done, f"the {op} of {name}")


def test_fuse_mount_is_read_only_by_default(site: MatrixSite, tmp_path: Path) -> None:
    """Without ``--rw`` even the owner's mount refuses every write with EROFS."""
    if site.fuse_skip:
        pytest.skip(site.fuse_skip)
    mount = spawn_mount(site, "owner", tmp_path / "ro", rw=False)
    try:
        mount.wait_mounted()
        fs, base = FuseOps(mount.root), folder_path("private")
        assert fs.read(f"{base}/data.txt").data == DATA
        refused = [fs.write(f"{base}/ro-new.txt", b"x"), fs.overwrite(f"{base}/data.txt", b"x"),
                   fs.delete(f"{base}/data.txt"), fs.mkdir(f"{base}/ro-dir"),
                   fs.move(f"{base}/data.txt", f"{base}/sub/data.txt")]
        assert [r.code for r in refused] == [errno.EROFS] * len(refused)
    finally:
        mount.stop()
    folder = site.world.folders["private"]
    assert site.world.file_bytes(folder, "data.txt") == DATA
    assert site.world.item_in(folder, "ro-new.txt") is None


def visible_names(who: str) -> dict[str, set[str]]:
    """What listing olive's home and the collections shows ``who``: exactly the
    readable children (her default Public is public, Private hers alone)."""
    home = {GRANTS[t]["folder"] for t in GRANTS if expected_level(who, t) >= 0}
    home |= {"Public"} | ({"Private"} if who in VAULT_READERS else set())
    home |= {spec["folder"] for spec in REVOCABLE.values()  # (before their change)
             if spec["public"] or who in VAULT_READERS or who == spec["who"]}
    return {f"/user/{OWNER}": home, "/collection": {"vault"} if who in VAULT_READERS else set()}


@pytest.mark.parametrize(("gateway", "who"), [
    pytest.param(g, w, id=f"{g}-{w}") for g in GATEWAYS for w in LOGINS])
def test_listings_show_only_what_may_be_read(site: MatrixSite, clients: Clients, gateway: str,
                                             who: str) -> None:
    client = clients(gateway, who)
    for parent, want in visible_names(who).items():
        if gateway == "rest":
            owner = str(site.world.users["owner"]["_id"])
            got = client.call("GET", "folder", params={"parentType": "user", "parentId": owner}) \
                if parent.startswith("/user") else client.call("GET", "collection")
            assert got.code == 200, got
            names = {doc["name"] for doc in got.data}
        else:
            got = client.list(parent)
            if gateway == "webdav" and LOGINS[who] is None:
                expect_anonymous_webdav(Outcome.ALLOWED, got, None, 207, ())
                if got.code != 207:
                    continue
            assert got.code in (0, 207), got
            names = {str(n).rstrip("/").rsplit("/", 1)[-1] for n in got.data}
            names.discard(parent.rsplit("/", 1)[-1])  # WebDAV lists the parent itself
        assert names == want, (parent, names)


@pytest.mark.parametrize("who", LOGINS)
def test_rest_search_finds_only_what_may_be_read(site: MatrixSite, clients: Clients,
                                                 who: str) -> None:
    """Global searches (``item?text=``, ``resource/search``) filter by the table too."""
    rest, world = clients("rest", who), site.world
    readable = {t for t in GRANTS if expected_level(who, t) >= 0}
    target_of = {str(doc["_id"]): t for t in GRANTS for doc in (world.folders[t], world.subs[t])}
    items = rest.call("GET", "item", params={"text": "move", "limit": 5000})
    assert items.code == 200, items
    assert {target_of[i["folderId"]] for i in items.data} == readable
    for mode in ("text", "prefix"):
        found = rest.call("GET", "resource/search", params={  # each target's "sub"
            "q": "sub", "mode": mode, "types": '["folder", "item"]', "limit": 5000})
        assert found.code == 200, found
        assert {target_of[f["_id"]] for f in found.data["folder"]} == readable, mode
        secret = rest.call("GET", "resource/search", params={
            "q": "secret", "mode": mode, "types": '["item", "file", "collection"]'})
        assert any(secret.data.values()) == (who in VAULT_READERS), secret


# ------------------------------------------------------------------ the existence rule
# (existing path, nonexistent sibling, the target whose ACL governs it; None: the vault)
PAIRS = {
    "folder": (folder_path("private"), f"/user/{OWNER}/{MISSING}", "private"),
    "file": (f"{folder_path('private')}/data.txt", f"{folder_path('private')}/nope.txt",
             "private"),
    "group-folder": (folder_path("drop"), f"/user/{OWNER}/{MISSING}", "drop"),
    "collection": (VAULT, "/collection/nope", None),
    "vault-file": (f"{VAULT}/inner/secret.txt", f"{VAULT}/inner/nope.txt", None),
}


def may_not_read(pair: str, who: str) -> bool:
    target = PAIRS[pair][2]
    return who not in VAULT_READERS if target is None else expected_level(who, target) < 0


PROBES: dict[str, dict[str, Callable[[Any, str], Reply]]] = {
    "webdav": {
        "propfind0": lambda c, p: c.stat(p), "propfind1": lambda c, p: c.list(p),
        "get": lambda c, p: c.read(p), "head": lambda c, p: c.head(p),
        "put-child": lambda c, p: c.write(p + "/x.txt", b"x"),
        "put": lambda c, p: c.overwrite(p, b"x"),
        "mkcol-child": lambda c, p: c.mkdir(p + "/newdir"),
        "delete": lambda c, p: c.delete(p), "move": lambda c, p: c.move(p, p + "-moved"),
        "copy": lambda c, p: c.copy(p, p + "-copied"), "lock": lambda c, p: c.lock(p),
        "proppatch": lambda c, p: c.proppatch(p), "options": lambda c, p: c.options(p)},
    "sftp": {
        "stat": lambda c, p: c.stat(p), "lstat": lambda c, p: c.lstat(p),
        "opendir": lambda c, p: c.list(p), "open": lambda c, p: c.read(p),
        "realpath": lambda c, p: c.realpath(p), "readlink": lambda c, p: c.readlink(p),
        "setstat": lambda c, p: c.setstat(p), "remove": lambda c, p: c.delete(p),
        "rename": lambda c, p: c.move(p, p + "-moved"),
        "mkdir-child": lambda c, p: c.mkdir(p + "/newdir")},
    "fuse": {
        "stat": lambda c, p: c.stat(p), "listdir": lambda c, p: c.list(p),
        "open": lambda c, p: c.read(p),
        "create-child": lambda c, p: c.write(p + "/x.txt", b"x"),
        "truncate": lambda c, p: c.overwrite(p, b"x"),
        "mkdir-child": lambda c, p: c.mkdir(p + "/newdir"),
        "unlink": lambda c, p: c.delete(p), "rename": lambda c, p: c.move(p, p + "-moved"),
        "getxattr": lambda c, p: c.getxattr(p), "readlink": lambda c, p: c.readlink(p),
        "chmod": lambda c, p: c.chmod(p)},
}
# Answered without a lookup, alike for every path (OPTIONS describes the server;
# SFTP realpath only normalises): compared, not required to refuse.
LOOKUP_FREE = ("options", "realpath")
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
    if probe in LOOKUP_FREE:
        return
    assert got.code not in (0, 200, 201, 204, 207), got  # a refusal, not a success
    if gateway == "webdav" and LOGINS[who] is None:
        expect_anonymous_webdav(Outcome.HIDDEN, got, twin, 0, names)


@pytest.mark.parametrize("who", [w for w in LOGINS if may_not_read("folder", w)])
def test_rest_lookup_by_path_answers_as_nonexistent(clients: Clients, who: str) -> None:
    """``GET resource/lookup``: Girder's 400 ``Path not found`` for both."""
    rest = clients("rest", who)
    for pair in ("folder", "file", "collection", "vault-file"):
        existing, missing, _ = PAIRS[pair]
        got = rest.call("GET", "resource/lookup", params={"path": existing})
        twin = rest.call("GET", "resource/lookup", params={"path": missing})
        assert got.code == 400 and got.data["type"] == "validation", got
        assert got.normalized(existing) == twin.normalized(missing)


@pytest.mark.parametrize("who", [w for w in LOGINS if may_not_read("folder", w)])
def test_rest_by_id_keeps_girders_access_error(site: MatrixSite, clients: Clients,
                                               who: str) -> None:
    """By id, Girder answers an unreadable document 401/403 (an unknown id: 400)."""
    rest, world = clients("rest", who), site.world
    folder, vault = world.folders["private"]["_id"], world.vault["collection"]["_id"]
    data = world.data_files["private"]
    for route, params in (
            (f"folder/{folder}", {}), (f"collection/{vault}", {}),
            (f"item/{data['itemId']}", {}), (f"item/{data['itemId']}/files", {}),
            (f"file/{data['_id']}", {}), (f"folder/{folder}/details", {}),
            (f"folder/{folder}/download", {}), (f"folder/{folder}/rootpath", {}),
            (f"resource/{folder}/path", {"type": "folder"}),
            ("folder", {"parentType": "folder", "parentId": str(folder)}),
            ("item", {"folderId": str(folder)})):
        got = rest.call("GET", route, params=params)
        assert got.code == (401 if LOGINS[who] is None else 403), (route, got)
        assert got.data["type"] == "access", (route, got)
    for model in ("folder", "collection", "item", "file"):
        unknown = rest.call("GET", f"{model}/{'0' * 24}")
        assert unknown.code == 400 and unknown.data["type"] == "validation", unknown


# ------------------------------------------------------------ ACL changes (last: they change it)
@pytest.mark.parametrize("change", REVOCABLE)
def test_acl_change_takes_effect_at_once(site: MatrixSite, clients: Clients,
                                         change: str) -> None:
    """Removing the grant ``who`` reads through (via REST) hides the folder at
    once on WebDAV and SFTP (same process: the path cache holds ACLs) and,
    within the caches' lifetimes, on the principal's FUSE mount (another
    process: the core path cache and the kernel's entry cache, 1 s each)."""
    spec, folder = REVOCABLE[change], site.world.revocable[change]
    who, path = spec["who"], f"/user/{OWNER}/{spec['folder']}/r.txt"
    gateways = ["webdav", "sftp"] + ([] if site.fuse_skip else ["fuse"])
    for gateway in gateways:  # readable, and now in every cache
        assert clients(gateway, who).read(path).data == DATA, gateway
    owner = clients("rest", "owner")
    access = owner.call("GET", f"folder/{folder['_id']}/access").data
    access["groups"] = []  # the readers' entry goes; the owner's stays
    changed = owner.call("PUT", f"folder/{folder['_id']}/access", params={"public": "false"},
                         data={"access": json.dumps(access)})
    assert changed.code == 200, changed
    hidden = {"webdav": 404, "sftp": NO_SUCH_FILE, "fuse": errno.ENOENT}
    for gateway in ("webdav", "sftp"):
        assert clients(gateway, who).read(path).code == hidden[gateway], gateway
    if "fuse" in gateways:
        fuse = clients("fuse", who)
        wait_for(lambda: fuse.read(path).code == errno.ENOENT, "the mount to see it", 5)
