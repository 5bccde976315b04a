"""What the access matrix does in a cell and what it expects to see.

``expect_anonymous_webdav`` holds every anonymous-WebDAV expectation (see its
docstring); the rest follows from the outcome ``matrix_world`` computes.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
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
from tests.security.matrix_world import DATA, LOGINS, VICTIM, MatrixSite, Outcome, victim

ALLOWED_STATUS = {"read": 200, "list": 207, "write": 201, "overwrite": 204, "delete": 204,
                  "move": 201, "copy": 201}
READ_ONLY = b"This server is read-only."


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


def written(gateway: str, who: str) -> bytes:
    return f"written by {who} through {gateway}\n".encode()


# ------------------------------------------------------------------ expectations
def challenged(got: Reply) -> bool:
    return got.code == 401 and any(k == "www-authenticate" and v.startswith("Basic")
                                   for k, v in got.headers)


def expect_anonymous_webdav(expected: Outcome, got: Reply, twin: Reply | None,
                            allowed: int, names: tuple[str, ...]) -> None:
    """Every anonymous WebDAV expectation, in this one place (issue 12 item 10,
    with ``joist.webdav.anonymous_read`` on, as the matrix world sets it): what
    anonymous may not see, and what does not exist, answers 401 with a Basic
    challenge, identically, so that clients log in; a write is asked to log in;
    public data is served."""
    if expected is Outcome.HIDDEN:
        assert twin is not None
        assert got.code == 401 and challenged(got), got
        assert got.normalized(*names) == twin.normalized(*names), (got, twin)
    elif expected is Outcome.DENIED:
        assert challenged(got), got  # anonymous never writes: asked to log in
    else:
        assert got.code == allowed, got


def check_path_reply(gateway: str, op: str, who: str, expected: Outcome, got: Reply,
                     twin: Reply | None, names: tuple[str, ...]) -> None:
    """What ``got`` must be on a path-based gateway. ``twin`` is the same request
    with the unreadable folder named ``names[0]`` replaced by the nonexistent
    ``names[1]``, made whenever the principal may not read it: the existence
    rule, whatever the operation."""
    if twin is not None:
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
            assert any(str(n).rstrip("/").endswith("/data.txt") or n == "data.txt"
                       for n in got.data), got.data
    elif expected is Outcome.DENIED:
        assert got.code == {"webdav": 403, "fuse": errno.EACCES}[gateway], got
    elif expected is Outcome.READ_ONLY:
        assert (got.code, got.body) == (PERMISSION_DENIED, READ_ONLY), got
    else:  # HIDDEN: what a nonexistent path answers (409: a PUT's parent is missing)
        hidden = {"webdav": (404, 409), "sftp": (NO_SUCH_FILE,), "fuse": (errno.ENOENT,)}
        assert got.code in hidden[gateway], got


def check_rest_reply(who: str, expected: Outcome, got: Reply, op: str = "") -> None:
    if expected is Outcome.ALLOWED:
        assert got.code == 200, got
        if op == "read":
            assert got.data == DATA
        if op == "list":
            assert "data.txt" in {item["name"] for item in got.data}, got.data
        return
    # Denied or unreadable, by id: Girder's access error (401 anonymous, 403 user).
    assert got.code == (401 if LOGINS[who] is None else 403), got
    assert got.data["type"] == "access", got


def settle(state: Callable[[], Any], want: Any, allowed: bool, what: str) -> None:
    """``state()`` must be ``want``: polled when the cell changed something (a
    FUSE file is committed when the kernel releases it), at once otherwise."""
    if allowed:
        wait_for(lambda: state() == want, what, 10)
    assert state() == want, what


def check_effect(site: MatrixSite, gateway: str, op: str, who: str, target: str,
                 allowed: bool) -> None:
    """The store after the cell: changed exactly when the cell was allowed."""
    world = site.world
    folder, sub = world.folders[target], world.subs[target]
    name = victim(op, gateway, who)
    state: Callable[[], Any]
    if op in ("write", "overwrite"):
        before = None if op == "write" else VICTIM
        want: Any = written(gateway, who) if allowed else before
        state = lambda: world.file_bytes(folder, name)  # noqa: E731
    elif op == "delete":
        want, state = allowed, lambda: world.item_in(folder, name) is None  # gone
    elif op == "move":
        want = (allowed, not allowed)
        state = lambda: (world.item_in(sub, name) is not None,  # noqa: E731
                         world.item_in(folder, name) is not None)
    elif op == "acl":
        stranger, acl_id = world.users["other"]["_id"], world.acl_folders[(who, target)]["_id"]
        want = allowed

        def state() -> bool:
            doc = site.app.store.folders.find_one({"_id": acl_id})
            assert doc is not None
            return any(e["id"] == stranger for e in doc["access"]["users"])
    else:
        return
    settle(state, want, allowed, f"the effect of {op} by {who} through {gateway}")


# ------------------------------------------------------------------ operations
def perform(ops: Any, op: str, path: str, data: bytes) -> Reply:
    """One path-based operation (a move goes to the target's ``sub``)."""
    if op == "move":
        parent, name = path.rsplit("/", 1)
        return ops.move(path, f"{parent}/sub/{name}")  # type: ignore[no-any-return]
    if op in ("write", "overwrite"):
        return getattr(ops, op)(path, data)  # type: ignore[no-any-return]
    return getattr(ops, op)(path)  # type: ignore[no-any-return]


def perform_rest(site: MatrixSite, rest: RestClient, op: str, who: str, target: str,
                 data: bytes) -> Reply:
    """One operation by id, as girder-client makes it."""
    world = site.world
    folder = str(world.folders[target]["_id"])
    item = world.victims.get((op, "rest", who, target))
    if op == "read":
        return rest.call("GET", f"file/{world.data_files[target]['_id']}/download")
    if op == "list":
        return rest.call("GET", "item", params={"folderId": folder})
    if op == "write":
        return rest.call("POST", "file", params={
            "parentType": "folder", "parentId": folder, "name": victim(op, "rest", who),
            "size": len(data)}, data=data)
    if op == "overwrite":
        assert item is not None
        file = site.app.store.files.find_one({"itemId": item["_id"]})
        assert file is not None
        begun = rest.call("PUT", f"file/{file['_id']}/contents", params={"size": len(data)})
        if begun.code != 200:
            return begun
        return rest.call("POST", "file/chunk", params={
            "uploadId": begun.data["_id"], "offset": 0}, data=data)
    if op == "delete":
        assert item is not None
        return rest.call("DELETE", f"item/{item['_id']}")
    if op == "move":
        assert item is not None
        return rest.call("PUT", f"item/{item['_id']}",
                         params={"folderId": str(world.subs[target]["_id"])})
    acl_folder = world.acl_folders[(who, target)]
    entries = [*acl_folder["access"]["users"], {"id": world.users["other"]["_id"], "level": 0}]
    access = {"users": [{**e, "id": str(e["id"])} for e in entries],
              "groups": [{**e, "id": str(e["id"])} for e in acl_folder["access"]["groups"]]}
    return rest.call("PUT", f"folder/{acl_folder['_id']}/access", data=access_body(access))


__all__ = ["ALLOWED_STATUS", "READ_ONLY", "Clients", "challenged", "check_effect",
           "check_path_reply", "check_rest_reply", "expect_anonymous_webdav", "perform",
           "perform_rest", "settle", "written"]
