r"""The world the parity suite walks on every gateway: two users (anna, benno)
and the site admin (root), a public and a private collection, a folder shared
with one user, nested folders, items with one file and with several, and names
that need escaping (spaces, unicode, ``/``, ``\``, ``%``, ``#``, ``?``, ``&``).

Layout (as the hierarchy view shows it, natural item layout):

    /collection/Open Data/                public
        raw data/
            notes.txt                     one-file item, file named like it: a file
            empty.txt                     the same, zero bytes
            scan ü/                       item with two files: a directory
                page 1.png, page 2.png
            report/                       item whose one file has another name: a directory
                report v2.pdf
            nothing/                      item with no file: an empty directory
            50% & more #1?.txt            a URL-hostile name
            2024/q1/jan/é.csv             nested folders
            a\-b/                         a folder named "a/b" (the codec)
                back\\slash.txt           an item and file named "back\slash.txt"
            empty folder/
        anna's corner/                    not public: anna READ only
            mine.txt
    /collection/Anna Only/                not public: anna READ only
        plans/secret plan.txt, plans/pair/{left.bin,right.bin}
    /user/anna/Public/                    public
        hello world.txt
        for benno/                        not public: benno READ
            gift 🎁.txt, pair/{left.bin,right.bin}
    /user/anna/Private/diary.txt, /user/anna/Private/deep/er/est/bottom.txt
    /user/benno/Private/benno.txt         benno's own
    /user/root/                           the site admin (the first user)
"""

from __future__ import annotations

import hashlib
from typing import Any

from joist.admin.bootstrap import App
from joist.core.acl import READ, SYSTEM, Principal
from joist.core.db.engine import Document
from tests.world import PASSWORD, World, upload_bytes

LOGINS = ("root", "anna", "benno")  # root first: the first user is the site admin


def blob(label: str, size: int) -> bytes:
    """Deterministic bytes of ``size`` (distinct per label, so a mix-up shows)."""
    seed = hashlib.sha256(label.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def build_parity_world(app: App) -> World:
    svc = app.services
    world = World(app)
    for login in LOGINS:
        world.users[login] = svc.users.create(
            SYSTEM, login=login, email=f"{login}@example.org", first_name=login.title(),
            last_name="Parity", password=PASSWORD)
    root, anna, benno = (world.principal(login) for login in LOGINS)

    def folder(who: Principal, parent_type: str, parent: Document, name: str,
               **kw: Any) -> Document:
        return svc.folders.create(who, parent_type, parent["_id"], name, **kw)

    def put(who: Principal, parent_type: str, parent: Document, name: str, size: int) -> None:
        upload_bytes(app, who, parent_type, parent, name, blob(name, size))

    def item(who: Principal, parent: Document, name: str, files: dict[str, int]) -> None:
        doc = svc.items.create(who, parent, name)
        for file_name, size in files.items():
            put(who, "item", doc, file_name, size)

    def read_only_for(doc: Document, model: str, login: str) -> None:
        svc.access.grant(root, model, doc, "user", world.users[login]["_id"], READ)

    # /collection/Open Data: public, made by the admin
    open_data = svc.collections.create(root, "Open Data", public=True)
    raw = folder(root, "collection", open_data, "raw data")
    put(root, "folder", raw, "notes.txt", 1234)
    put(root, "folder", raw, "empty.txt", 0)
    item(root, raw, "scan ü", {"page 1.png": 70_000, "page 2.png": 513})
    item(root, raw, "report", {"report v2.pdf": 4096})
    svc.items.create(root, raw, "nothing")
    put(root, "folder", raw, "50% & more #1?.txt", 50)
    parent = raw
    for name in ("2024", "q1", "jan"):
        parent = folder(root, "folder", parent, name)
    put(root, "folder", parent, "é.csv", 321)
    slashed = folder(root, "folder", raw, "a/b")
    put(root, "folder", slashed, "back\\slash.txt", 77)
    folder(root, "folder", raw, "empty folder")
    corner = folder(root, "collection", open_data, "anna's corner", public=False)
    read_only_for(corner, "folder", "anna")
    put(root, "folder", corner, "mine.txt", 10)

    # /collection/Anna Only: private, anna may read
    anna_only = svc.collections.create(root, "Anna Only", public=False)
    read_only_for(anna_only, "collection", "anna")
    plans = folder(root, "collection", anna_only, "plans")
    put(root, "folder", plans, "secret plan.txt", 999)
    item(root, plans, "pair", {"left.bin": 11, "right.bin": 12})

    # anna's home: a folder in her Public one shared with benno only
    anna_doc = world.users["anna"]
    public = svc.folders.list(anna, "user", anna_doc["_id"], name="Public")[0][0]
    private = svc.folders.list(anna, "user", anna_doc["_id"], name="Private")[0][0]
    put(anna, "folder", public, "hello world.txt", 12)
    for_benno = folder(anna, "folder", public, "for benno", public=False)
    svc.access.grant(anna, "folder", for_benno, "user", world.users["benno"]["_id"], READ)
    put(anna, "folder", for_benno, "gift 🎁.txt", 2025)
    item(anna, for_benno, "pair", {"left.bin": 1, "right.bin": 2})
    put(anna, "folder", private, "diary.txt", 300)
    parent = private
    for name in ("deep", "er", "est"):
        parent = folder(anna, "folder", parent, name)
    put(anna, "folder", parent, "bottom.txt", 5)

    benno_doc = world.users["benno"]
    benno_private = svc.folders.list(benno, "user", benno_doc["_id"], name="Private")[0][0]
    put(benno, "folder", benno_private, "benno.txt", 42)

    world.docs.update(open_data=open_data, anna_only=anna_only, for_benno=for_benno, corner=corner)
    return world


__all__ = ["LOGINS", "PASSWORD", "blob", "build_parity_world"]
