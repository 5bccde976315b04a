"""A small populated tree with several principals, shared by the core and
gateway suites (every gateway must show it the same way).

Layout (natural item layout):

    /user/alice/Public/                  public
        readme.txt                       one-file item shown as a file
    /user/alice/Private/                 alice only
        data/
            a.txt                        one-file item (bytes A_TXT)
            multi/                       item with two files -> a directory
                x.bin, y.bin
            deep/d1/d2/d3/leaf.txt
            odd\\-name                   a folder named "odd/name" (codec)
    /user/bobby/Private/                   bob's, empty
    /collection/shared/                  group "team" (carol) READ, alice ADMIN
        docs/report.txt
    /collection/secret/                  admin only
        vault/hidden.txt
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any

from joist.admin.bootstrap import App
from joist.core.acl import ADMIN, READ, SYSTEM, Principal
from joist.core.db.engine import Document

PASSWORD = "correct horse"
A_TXT = b"alpha file\n" * 100
X_BIN = os.urandom(3000)
Y_BIN = bytes(range(256)) * 40
LEAF = b"leaf\n"
README = b"hello, world\n"
REPORT = b"quarterly report\n" * 1000
HIDDEN = b"top secret\n"


@dataclass
class World:
    app: App
    users: dict[str, Document] = field(default_factory=dict)
    principals: dict[str, Principal] = field(default_factory=dict)
    docs: dict[str, Document] = field(default_factory=dict)

    def principal(self, login: str | None) -> Principal:
        if login is None:
            return Principal.anonymous()
        user = self.app.store.users.find_one({"login": login})
        assert user is not None
        return Principal.from_user(user)


def upload_bytes(app: App, principal: Principal, parent_type: str, parent: Document,
                 name: str, data: bytes) -> Document:
    step = app.services.uploads.begin(principal, parent_type, parent["_id"], name, len(data))
    if step.file is not None:
        return step.file
    assert step.upload is not None
    done = app.services.uploads.write(principal, step.upload["_id"], 0, io.BytesIO(data),
                                      len(data))
    assert done.file is not None
    return done.file


def build_world(app: App) -> World:
    svc = app.services
    world = World(app)
    for login in ("admin", "alice", "bobby", "carol"):
        world.users[login] = svc.users.create(
            SYSTEM, login=login, email=f"{login}@example.org", first_name=login.title(),
            last_name="Tester", password=PASSWORD)
    alice = world.principal("alice")
    admin = world.principal("admin")

    def folder(parent_type: str, parent: Document, name: str, who: Principal = alice,
               **kw: Any) -> Document:
        return svc.folders.create(who, parent_type, parent["_id"], name, **kw)

    alice_doc = world.users["alice"]
    public = svc.folders.list(alice, "user", alice_doc["_id"], name="Public")[0][0]
    private = svc.folders.list(alice, "user", alice_doc["_id"], name="Private")[0][0]
    upload_bytes(app, alice, "folder", public, "readme.txt", README)
    data = folder("folder", private, "data")
    upload_bytes(app, alice, "folder", data, "a.txt", A_TXT)
    multi = svc.items.create(alice, data, "multi")
    upload_bytes(app, alice, "item", multi, "x.bin", X_BIN)
    upload_bytes(app, alice, "item", multi, "y.bin", Y_BIN)
    parent = folder("folder", data, "deep")
    for name in ("d1", "d2", "d3"):
        parent = folder("folder", parent, name)
    upload_bytes(app, alice, "folder", parent, "leaf.txt", LEAF)
    folder("folder", data, "odd/name")

    team = svc.groups.create(admin, "team")
    svc.groups.add_member(admin, team, world.users["carol"], force=True)
    shared = svc.collections.create(admin, "shared")
    svc.access.grant(admin, "collection", shared, "group", team["_id"], READ)
    svc.access.grant(admin, "collection", shared, "user", alice_doc["_id"], ADMIN)
    docs = folder("collection", shared, "docs", admin)
    upload_bytes(app, admin, "folder", docs, "report.txt", REPORT)
    secret = svc.collections.create(admin, "secret")
    hidden_parent = folder("collection", secret, "vault", admin)
    upload_bytes(app, admin, "folder", hidden_parent, "hidden.txt", HIDDEN)

    world.docs.update(public=public, private=private, data=data, multi=multi, shared=shared,
                      docs=docs, secret=secret, team=team)
    return world
