"""The access matrix's world and its one table of expectations.

Everything the matrix expects follows from ``GRANTS`` (who holds which level
on each target folder, Girder's ACL model: ARCHITECTURE.md section 4, contract
section 6), read through ``expected_level`` (Girder's rule restated here, not
imported from core, so the test can catch core getting it wrong) and
``outcome`` (what an operation needs and what each gateway allows at all).
The world is built from the same table, so what is granted and what is
expected cannot drift apart. What it comes to (a test checks this text)::

    level        private (Lab)  public (Open)  drop (Drop)
    owner        ADMIN          ADMIN          ADMIN
    other        NONE           READ           NONE
    group_read   READ           READ           NONE
    group_write  WRITE          WRITE          READ
    anonymous    NONE           READ           NONE
    admin        ADMIN          ADMIN          ADMIN

    needs: read, list READ; write, overwrite, delete, move WRITE; acl ADMIN.
    NONE -> HIDDEN (answers as nonexistent; REST by id: 401/403).
    SFTP: every write READ_ONLY. ACL changes: REST only.

Layout (``olive`` owns the targets; ``T`` is ``Lab``, ``Open`` or ``Drop``)::

    /user/olive/T/data.txt                  read and listed by every cell
    /user/olive/T/sub/                      where "move" cells move to
    /user/olive/T/delete-<gw>-<who>.txt     one victim per delete cell
    /user/olive/T/move-<gw>-<who>.txt       one victim per move cell
    /user/olive/T/overwrite-<gw>-<who>.txt  one victim per overwrite cell
    /user/olive/T/<move|copy>-<gw>-<who>-T-to-D.txt   moved/copied to D's folder
    /user/olive/T/acl-<who>/                one folder per REST ACL-change cell
    /collection/vault/inner/                olive only (the existence rule)
"""

from __future__ import annotations

import contextlib
import enum
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joist.admin.bootstrap import App, build_app
from joist.admin.server import Server
from joist.core.acl import ADMIN, READ, SYSTEM, WRITE, Principal
from joist.core.db.engine import Document
from tests.conftest import ENGINE, make_settings
from tests.gateways.fuse.fuse_harness import MountProc, cli_env, fuse_available
from tests.mongo_stand_in import REAL_URI, LockedMongoClient, fresh_db_name, real_uri
from tests.s3env import select_test_assetstore
from tests.world import PASSWORD, upload_bytes

NONE = -1
PRINCIPALS = ("owner", "other", "group_read", "group_write", "anonymous", "admin")
LOGINS: dict[str, str | None] = {
    "owner": "olive", "other": "oscar", "group_read": "greta", "group_write": "gwen",
    "anonymous": None, "admin": "adam"}
GATEWAYS = ("rest", "webdav", "sftp", "fuse")
OPERATIONS = ("read", "list", "write", "overwrite", "delete", "move", "acl")
WRITES = ("write", "overwrite", "delete", "move", "acl")
SITE_ADMINS = ("admin",)
GROUPS = {"readers": ("group_read",), "writers": ("group_write",)}

# THE table: the ACL of each target folder (the owner's entry is Girder's
# creator ADMIN). Items and files take their folder's ACL; "sub" and the
# acl-* folders are created inside the target and copy its ACL (Girder).
GRANTS: dict[str, dict[str, Any]] = {
    "private": {"folder": "Lab", "public": False, "users": {"owner": ADMIN},
                "groups": {"readers": READ, "writers": WRITE}},
    "public": {"folder": "Open", "public": True, "users": {"owner": ADMIN},
               "groups": {"readers": READ, "writers": WRITE}},
    "drop": {"folder": "Drop", "public": False, "users": {"owner": ADMIN},
             "groups": {"writers": READ}},
}
TARGETS = tuple(GRANTS)
# What each operation needs on the target folder (a move needs WRITE on the
# source's folder and on the destination, here both the target's ACL).
NEEDS = {"read": READ, "list": READ, "write": WRITE, "overwrite": WRITE, "delete": WRITE,
         "move": WRITE, "acl": ADMIN}
# Folders whose ACL a test changes (outside the matrix): before the change,
# ``who`` reads them through the named grant; after, nothing.
REVOCABLE = {"group-entry": {"folder": "Shared", "public": False, "who": "group_read"},
             "public-flag": {"folder": "Posted", "public": True, "who": "other"}}
OWNER = "olive"
MISSING = "Nope"  # the nonexistent sibling of every target folder
VAULT = "/collection/vault"  # readable by olive (and site admins) only
DATA = b"matrix data\n" * 64
VICTIM = b"a victim of the matrix\n"  # what every delete/move/overwrite victim holds


class Outcome(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"        # may read, may not do this: an access error
    HIDDEN = "hidden"        # may not read: answered as for a path that does not exist
    READ_ONLY = "read-only"  # SFTP refuses every write (permission denied) for everyone
    NOT_APPLICABLE = "n/a"   # ACL changes exist on REST only


def expected_level(principal: str, target: str) -> int:
    """Girder's effective level: site admins ADMIN; else the best of the user's
    own entry and its groups' entries; ``public`` lifts NONE to READ, never more."""
    if principal in SITE_ADMINS:
        return ADMIN
    grants = GRANTS[target]
    levels = [grants["users"].get(principal, NONE)]
    levels += [level for group, level in grants["groups"].items()
               if principal in GROUPS[group]]
    best = max(levels)
    return READ if best < READ and grants["public"] else best


def outcome(principal: str, gateway: str, op: str, target: str) -> Outcome:
    if op == "acl" and gateway != "rest":
        return Outcome.NOT_APPLICABLE
    if gateway == "sftp" and op in WRITES:
        return Outcome.READ_ONLY  # before any lookup: identical for hidden paths
    level = expected_level(principal, target)
    if level < READ:
        return Outcome.HIDDEN
    return Outcome.ALLOWED if level >= NEEDS[op] else Outcome.DENIED


def transfer_outcome(principal: str, gateway: str, op: str, src: str,
                     dst: str) -> tuple[Outcome, str]:
    """A move (WRITE on both ends) or copy (READ on the source, WRITE on the
    destination) from target ``src``'s folder to ``dst``'s. Also says which end
    a HIDDEN answer must look like a nonexistent path for."""
    if gateway == "sftp":
        return Outcome.READ_ONLY, ""
    on_src, on_dst = expected_level(principal, src), expected_level(principal, dst)
    if on_src < READ:
        return Outcome.HIDDEN, "source"
    if on_dst < READ:
        return Outcome.HIDDEN, "destination"
    needs_src = WRITE if op == "move" else READ
    return (Outcome.ALLOWED if on_src >= needs_src and on_dst >= WRITE else Outcome.DENIED), ""


def transfers() -> list[tuple[str, str, str, str, str]]:
    """(gateway, op, principal, source target, destination target) of every
    move and copy between two targets (a filesystem and SFTP v3 have no copy)."""
    return [(g, op, p, s, d) for g in GATEWAYS for op in ("move", "copy") for p in PRINCIPALS
            for s in TARGETS for d in TARGETS
            if s != d and (op == "move" or g in ("rest", "webdav"))]


def cells() -> list[tuple[str, str, str, str]]:
    """(gateway, op, principal, target) of every cell, not applicable ones too."""
    return [(g, o, p, t) for g in GATEWAYS for o in OPERATIONS for p in PRINCIPALS
            for t in TARGETS]


def victim(op: str, gateway: str, principal: str) -> str:
    """The file name a cell works on (each mutating cell has its own)."""
    if op in ("read", "list"):
        return "data.txt"
    return f"{'new' if op == 'write' else op}-{gateway}-{principal}.txt"


def cross_victim(gateway: str, op: str, principal: str, src: str, dst: str) -> str:
    return f"{op}-{gateway}-{principal}-{src}-to-{dst}.txt"


def folder_path(target: str) -> str:
    return f"/user/{OWNER}/{GRANTS[target]['folder']}"


def twin_path(path: str, target: str) -> str:
    """The same path with the target folder replaced by a nonexistent sibling."""
    return path.replace(folder_path(target), f"/user/{OWNER}/{MISSING}", 1)


@dataclass
class MatrixWorld:
    app: App
    users: dict[str, Document] = field(default_factory=dict)   # by principal
    groups: dict[str, Document] = field(default_factory=dict)
    folders: dict[str, Document] = field(default_factory=dict)  # by target
    subs: dict[str, Document] = field(default_factory=dict)     # by target
    data_files: dict[str, Document] = field(default_factory=dict)  # by target
    victims: dict[tuple[str, str, str, str], Document] = field(default_factory=dict)
    cross: dict[tuple[str, str, str, str, str], Document] = field(default_factory=dict)
    acl_folders: dict[tuple[str, str], Document] = field(default_factory=dict)
    vault: dict[str, Document] = field(default_factory=dict)
    revocable: dict[str, Document] = field(default_factory=dict)

    def principal(self, who: str) -> Principal:
        if LOGINS[who] is None:
            return Principal.anonymous()
        user = self.app.store.users.find_one({"_id": self.users[who]["_id"]})
        assert user is not None
        return Principal.from_user(user)

    def item_in(self, folder: Document, name: str) -> Document | None:
        return self.app.store.items.find_one({"folderId": folder["_id"], "name": name})

    def file_bytes(self, folder: Document, name: str) -> bytes | None:
        """The bytes of the one file of item ``name`` in ``folder`` (None: no item)."""
        item = self.item_in(folder, name)
        if item is None:
            return None
        file = self.app.store.files.find_one({"itemId": item["_id"]})
        assert file is not None
        with self.app.services.files.open_read(SYSTEM, file) as blob:
            return bytes(blob.read())


def _victim(world: MatrixWorld, folder: Document, name: str, seed: Document) -> Document:
    """A one-file item holding ``VICTIM``: a copy of ``seed``'s record sharing
    its bytes (hundreds of uploads would cost seconds of fsync)."""
    svc, owner = world.app.services, world.principal("owner")
    item = svc.items.create(owner, folder, name, rename=False)
    svc.files.update(owner, svc.files.copy(owner, seed, item), name=name)
    fresh = world.item_in(folder, name)
    assert fresh is not None and fresh.get("fileCount") == 1
    return fresh


def build_matrix_world(app: App) -> MatrixWorld:
    svc = app.services
    world = MatrixWorld(app)
    # Anonymous WebDAV reads of public data are a setting (off by default): on
    # here, so the anonymous cells show both what it serves and what it hides.
    svc.settings.set("joist.webdav.anonymous_read", True)
    # The site admin first: the first user is made an administrator.
    for who in ("admin", *[p for p in PRINCIPALS if p not in ("admin", "anonymous")]):
        login = LOGINS[who]
        world.users[who] = svc.users.create(
            SYSTEM, login=login, email=f"{login}@example.org", first_name=str(login).title(),
            last_name="Matrix", password=PASSWORD, admin=who in SITE_ADMINS)
    for name, members in GROUPS.items():
        group = world.groups[name] = svc.groups.create(SYSTEM, name)
        for member in members:
            svc.groups.add_member(SYSTEM, group, world.users[member], force=True)
    owner = world.principal("owner")
    home = world.users["owner"]
    for target, grants in GRANTS.items():
        folder = svc.folders.create(owner, "user", home["_id"], grants["folder"],
                                    public=grants["public"])
        for who, level in grants["users"].items():
            folder = svc.access.grant(owner, "folder", folder, "user",
                                      world.users[who]["_id"], level)
        for group, level in grants["groups"].items():
            folder = svc.access.grant(owner, "folder", folder, "group",
                                      world.groups[group]["_id"], level)
        world.folders[target] = folder
        world.subs[target] = svc.folders.create(owner, "folder", folder["_id"], "sub")
        world.data_files[target] = upload_bytes(app, owner, "folder", folder, "data.txt", DATA)
        seed = upload_bytes(app, owner, "folder", world.subs[target], "seed.txt", VICTIM)
        for gateway in GATEWAYS:
            for who in PRINCIPALS:
                for op in ("overwrite", "delete", "move"):
                    world.victims[(op, gateway, who, target)] = _victim(
                        world, folder, victim(op, gateway, who), seed)
        for gateway, op, who, src, dst in transfers():
            if src == target:
                world.cross[(gateway, op, who, src, dst)] = _victim(
                    world, folder, cross_victim(gateway, op, who, src, dst), seed)
        for who in PRINCIPALS:
            world.acl_folders[(who, target)] = svc.folders.create(
                owner, "folder", folder["_id"], f"acl-{who}")
    for change, spec in REVOCABLE.items():
        folder = svc.folders.create(owner, "user", home["_id"], spec["folder"],
                                    public=spec["public"])
        if change == "group-entry":
            folder = svc.access.grant(owner, "folder", folder, "group",
                                      world.groups["readers"]["_id"], READ)
        upload_bytes(app, owner, "folder", folder, "r.txt", DATA)
        world.revocable[change] = folder
    vault = svc.collections.create(SYSTEM, "vault")
    svc.access.grant(SYSTEM, "collection", vault, "user", home["_id"], ADMIN)
    inner = svc.folders.create(owner, "collection", vault["_id"], "inner")
    upload_bytes(app, owner, "folder", inner, "secret.txt", b"vault\n")
    world.vault.update(collection=vault, inner=inner)
    return world


# ------------------------------------------------------------------ the running site
@dataclass
class MatrixSite:
    """One server (REST, WebDAV and SFTP on port 0) and one read-write FUSE
    mount per principal, over one world, for a whole test module."""

    world: MatrixWorld
    server: Server
    mounts: dict[str, MountProc] = field(default_factory=dict)
    fuse_skip: str | None = None  # why FUSE cells cannot run here
    mount_env: dict[str, str] = field(default_factory=dict)  # to reach the same store

    @property
    def app(self) -> App:
        return self.world.app

    @property
    def api(self) -> str:
        return self.server.url + "/api/v1/"

    @property
    def dav(self) -> str:
        return self.server.url + "/dav"

    @property
    def sftp_address(self) -> tuple[str, int]:
        return self.server.sftp.address  # type: ignore[no-any-return]

    def token(self, who: str) -> str | None:
        if LOGINS[who] is None:
            return None
        return str(self.app.services.auth.login_token(self.world.users[who])["_id"])


def _settings(base: Path) -> tuple[Any, Any, dict[str, str]]:
    """Settings on the test engine, the mongomock client (if any) and the
    environment a mount process needs to reach the same store."""
    overrides: dict[str, object] = {"server.port": 0, "server.threads": 16}
    if ENGINE != "mongo":
        return make_settings(base / "data", **overrides), None, {}
    name = fresh_db_name()
    uri = real_uri(name) if REAL_URI else f"mongodb://127.0.0.1:27017/{name}"
    settings = make_settings(base / "data", **{
        **overrides, "database.engine": "mongo", "database.uri": uri})
    client = None if REAL_URI else LockedMongoClient()
    return settings, client, {"JOIST_DATABASE__ENGINE": "mongo", "JOIST_DATABASE__URI": uri}


def spawn_mount(site: MatrixSite, who: str, point: Path, *, rw: bool = True) -> MountProc:
    """``joist mount`` as ``who`` (with the user's API key; anonymous as
    ``anonymous``), not yet waited for: the caller stops it."""
    point.mkdir()
    (point.parent / "home").mkdir(exist_ok=True)
    extra = dict(site.mount_env)
    login = LOGINS[who]
    if login is not None:
        key = site.app.services.auth.api_keys.create(site.world.principal(who),
                                                     name="matrix mount")
        extra["JOIST_API_KEY"] = key["key"]
    env = cli_env(site.app.settings.data_path, point.parent / "home", **extra)
    log_path = point.with_name(point.name + ".log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "joist.admin.cli", "mount", str(point),
             *(["--rw"] if rw else []), "--user", login or "anonymous"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
    return MountProc(point, proc, log_path)


def _start_mounts(site: MatrixSite, base: Path) -> None:
    """A read-write mount for every principal, started together (each is a
    process start), then waited for."""
    for who in PRINCIPALS:
        site.mounts[who] = spawn_mount(site, who, base / f"mnt-{who}")
    for mount in site.mounts.values():
        mount.wait_mounted()


@contextlib.contextmanager
def running_matrix(base: Path) -> Iterator[MatrixSite]:
    base.mkdir(parents=True, exist_ok=True)
    settings, client, env_extra = _settings(base)
    app = build_app(settings, env={}, mongo_client=client)
    try:
        select_test_assetstore(app)  # JOIST_TEST_ASSETSTORE=s3: uploads go to S3
        server = Server(app)
        server.http.expiration_interval = 0.05
        site = MatrixSite(build_matrix_world(app), server, mount_env=env_extra)
        server.start()
        try:
            if not fuse_available():
                site.fuse_skip = "no /dev/fuse or fusermount3 on this machine"
            elif client is not None:
                site.fuse_skip = "mongomock lives in this process: a mount cannot share it"
            else:
                _start_mounts(site, base)
            yield site
        finally:
            try:
                errors = []
                for mount in site.mounts.values():
                    try:
                        mount.stop()
                    except Exception as exc:  # keep stopping the others
                        errors.append(exc)
                if errors:
                    raise errors[0]
            finally:
                server.stop()
    finally:
        if REAL_URI and settings.database.engine == "mongo":
            app.engine.client.drop_database(app.engine.database_name)  # type: ignore[attr-defined]
        app.close()


__all__ = ["DATA", "GATEWAYS", "GRANTS", "LOGINS", "MISSING", "NEEDS", "OPERATIONS", "OWNER",
           "PRINCIPALS", "REVOCABLE", "TARGETS", "VAULT", "VICTIM", "MatrixSite", "MatrixWorld",
           "Outcome", "build_matrix_world", "cells", "cross_victim", "expected_level",
           "folder_path", "outcome", "running_matrix", "spawn_mount", "transfer_outcome",
           "transfers", "twin_path", "victim"]
