"""Data-model rules of the control-plane services (Girder's, plus ours)."""

from __future__ import annotations

import io
import threading

import pytest

from joist.admin.bootstrap import App
from joist.core import acl
from joist.core.acl import SYSTEM, Principal
from joist.core.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConflictError,
    ExistsError,
    NotFoundError,
    ValidationError,
)
from joist.core.services.check import Checker
from tests.world import PASSWORD, X_BIN, World, build_world, upload_bytes


@pytest.fixture
def world(app: App) -> World:
    return build_world(app)


def _check_clean(app: App) -> None:
    findings = Checker(app.services).check()
    assert findings == [], [str(f) for f in findings]


def test_first_user_is_admin_and_gets_default_folders(world: World) -> None:
    assert world.users["admin"]["admin"] is True
    assert world.users["alice"]["admin"] is False
    svc = world.app.services
    alice = world.principal("alice")
    names = {f["name"]: f for f in svc.folders.list(alice, "user",
                                                     world.users["alice"]["_id"])[0]}
    assert set(names) == {"Public", "Private"}
    assert names["Public"]["public"] is True and names["Private"]["public"] is False
    assert acl.effective_level(names["Private"], alice) == acl.ADMIN


@pytest.mark.parametrize("login", ["abc", "1abc", "with space", "a@b.c", "", "ab_cd"])
def test_bad_logins_refused(app: App, login: str) -> None:
    with pytest.raises(ValidationError):
        app.services.users.create(SYSTEM, login=login, email="x@example.org",
                                  first_name="X", last_name="Y", password=PASSWORD)
    assert app.store.users.count() == 0


def test_unique_login_and_email(world: World) -> None:
    users = world.app.services.users
    with pytest.raises(ExistsError):
        users.create(SYSTEM, login="ALICE", email="new@example.org", first_name="A",
                     last_name="B", password=PASSWORD)
    with pytest.raises(ExistsError):
        users.create(SYSTEM, login="alice2", email="Alice@Example.org", first_name="A",
                     last_name="B", password=PASSWORD)


@pytest.mark.parametrize("name", ["", "   ", ".", "..", "a\x00b", "tab\there", "x" * 256,
                                  "é" * 128])
def test_bad_names_refused_and_nothing_created(world: World, name: str) -> None:
    svc, alice = world.app.services, world.principal("alice")
    before = world.app.store.folders.count()
    with pytest.raises(ValidationError):
        svc.folders.create(alice, "folder", world.docs["data"]["_id"], name)
    with pytest.raises(ValidationError):
        svc.items.create(alice, world.docs["data"], name)
    assert world.app.store.folders.count() == before


def test_slash_and_backslash_names_allowed(world: World) -> None:
    svc, alice = world.app.services, world.principal("alice")
    doc = svc.folders.create(alice, "folder", world.docs["data"]["_id"], "a/b\\c")
    assert doc["name"] == "a/b\\c"
    view = world.app.hierarchy.view(alice)
    assert view.stat("/user/alice/Private/data/a\\-b\\\\c").ref == doc["_id"]
    assert view.path_of("folder", doc["_id"]) == "/user/alice/Private/data/a\\-b\\\\c"


def test_folder_collision_and_item_auto_rename(world: World) -> None:
    svc, alice, data = world.app.services, world.principal("alice"), world.docs["data"]
    with pytest.raises(ExistsError):
        svc.folders.create(alice, "folder", data["_id"], "deep")
    with pytest.raises(ExistsError):
        svc.folders.create(alice, "folder", data["_id"], "multi")  # an item's name
    first = svc.items.create(alice, data, "thing")
    second = svc.items.create(alice, data, "thing")
    third = svc.items.create(alice, data, "deep")  # a folder's name
    assert (first["name"], second["name"], third["name"]) == ("thing", "thing (1)", "deep (1)")
    reused = svc.items.create(alice, data, "thing", reuse_existing=True)
    assert reused["_id"] == first["_id"]


def test_concurrent_creates_exactly_one_wins(world: World) -> None:
    svc, alice, data = world.app.services, world.principal("alice"), world.docs["data"]
    results: list[object] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        try:
            results.append(svc.folders.create(alice, "folder", data["_id"], "race"))
        except ExistsError as exc:
            results.append(exc)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    wins = [r for r in results if isinstance(r, dict)]
    assert len(results) == 8 and len(wins) == 1
    assert world.app.store.folders.count({"parentId": data["_id"], "name": "race"}) == 1


def test_acl_inheritance_and_levels(world: World) -> None:
    svc = world.app.services
    admin, carol = world.principal("admin"), world.principal("carol")
    docs = world.docs["docs"]
    assert acl.effective_level(docs, carol) == acl.READ  # copied from the collection
    with pytest.raises(AccessDeniedError):
        svc.folders.create(carol, "folder", docs["_id"], "nope")
    with pytest.raises(AuthenticationError):  # anonymous: 401, not 403
        svc.folders.get(Principal.anonymous(), docs["_id"])
    sub = svc.folders.create(admin, "folder", docs["_id"], "sub")
    assert acl.effective_level(sub, carol) == acl.READ


def test_listing_filters_by_acl_in_one_query(world: World) -> None:
    svc, admin = world.app.services, world.principal("admin")
    secret = world.docs["secret"]
    for i in range(30):
        doc = svc.folders.create(admin, "collection", secret["_id"], f"f{i:02d}")
        if i % 3 == 0:
            svc.access.grant(admin, "folder", doc, "group", world.docs["team"]["_id"], acl.READ)
    svc.access.grant(admin, "collection", secret, "user", world.users["carol"]["_id"], acl.READ)
    carol = world.principal("carol")
    page, _ = svc.folders.list(carol, "collection", secret["_id"], limit=5, skip=2)
    assert [f["name"] for f in page] == ["f06", "f09", "f12", "f15", "f18"]


def test_sizes_follow_uploads_moves_and_deletes(world: World) -> None:
    app, svc, alice = world.app, world.app.services, world.principal("alice")
    data = world.docs["data"]
    root_before = app.store.get("user", world.users["alice"]["_id"])["size"]
    file = upload_bytes(app, alice, "folder", data, "big.bin", b"x" * 5000)
    item = app.store.get("item", file["itemId"])
    assert item["size"] == 5000
    assert app.store.get("user", world.users["alice"]["_id"])["size"] == root_before + 5000
    shared_docs = world.docs["docs"]
    svc.moves.move_item(alice, item, shared_docs)
    assert app.store.get("user", world.users["alice"]["_id"])["size"] == root_before
    assert app.store.get("collection", world.docs["shared"]["_id"])["size"] == \
        len(b"quarterly report\n" * 1000) + 5000
    _check_clean(app)
    svc.removal.delete_item(alice, app.store.get("item", item["_id"]))
    _check_clean(app)


def test_copy_shares_bytes_and_delete_releases_them(world: World) -> None:
    app, svc, alice = world.app, world.app.services, world.principal("alice")
    multi = app.store.get("item", world.docs["multi"]["_id"])
    copy = svc.moves.copy_item(alice, multi, world.docs["public"])
    assert copy["copyOfItem"] == multi["_id"] and copy["size"] == multi["size"]
    folder_copy = svc.moves.copy_folder(alice, world.docs["data"], "folder",
                                        world.docs["public"], name="data copy")
    assert folder_copy["name"] == "data copy"
    _check_clean(app)
    svc.removal.delete_folder(alice, app.store.get("folder", world.docs["data"]["_id"]))
    view = app.hierarchy.view(alice)
    with view.open_read("/user/alice/Public/data copy/multi/x.bin") as reader:
        assert reader.read() == X_BIN
    _check_clean(app)


def test_folder_cannot_move_under_itself(world: World) -> None:
    svc, alice = world.app.services, world.principal("alice")
    data = world.docs["data"]
    deep = svc.folders.list(alice, "folder", data["_id"], name="deep")[0][0]
    with pytest.raises(ValidationError):
        svc.moves.move_folder(alice, data, "folder", deep)


def test_metadata_rules(world: World) -> None:
    svc, alice = world.app.services, world.principal("alice")
    item = world.docs["multi"]
    doc = svc.items.set_metadata(alice, item, {"a": 1, "b": {"c": 2}})
    assert doc["meta"] == {"a": 1, "b": {"c": 2}}
    doc = svc.items.set_metadata(alice, doc, {"a": None})
    assert doc["meta"] == {"b": {"c": 2}}
    doc = svc.items.set_metadata(alice, doc, {"n": None}, allow_null=True)
    assert doc["meta"] == {"b": {"c": 2}, "n": None}
    for bad in ({"a.b": 1}, {"$x": 1}, {"": 1}):
        with pytest.raises(ValidationError):
            svc.items.set_metadata(alice, doc, bad)
    assert world.app.store.get("item", item["_id"])["meta"] == {"b": {"c": 2}, "n": None}


def test_upload_protocol_rules(world: World) -> None:
    app, svc, alice = world.app, world.app.services, world.principal("alice")
    data = world.docs["data"]
    step = svc.uploads.begin(alice, "folder", data["_id"], "chunked.bin", 12)
    upload_id = step.upload["_id"]
    svc.settings.set("core.upload_minimum_chunk_size", 4)
    svc.uploads.write(alice, upload_id, 0, io.BytesIO(b"abcd"), 4)
    with pytest.raises(ConflictError):
        svc.uploads.write(alice, upload_id, 0, io.BytesIO(b"efgh"), 4)
    with pytest.raises(ValidationError):  # too many bytes
        svc.uploads.write(alice, upload_id, 4, io.BytesIO(b"x" * 20), 20)
    with pytest.raises(AccessDeniedError):  # not the initiator
        svc.uploads.write(world.principal("bobby"), upload_id, 4, io.BytesIO(b"efgh"), 4)
    assert svc.uploads.offset(alice, upload_id) == 4
    done = svc.uploads.write(alice, upload_id, 4, io.BytesIO(b"efghijkl"), 8)
    assert done.file is not None and done.file["size"] == 12
    with app.hierarchy.view(alice).open_read("/user/alice/Private/data/chunked.bin") as r:
        assert r.read() == b"abcdefghijkl"
    with pytest.raises(NotFoundError):
        svc.uploads.offset(alice, upload_id)
    _check_clean(app)


def test_cancelled_upload_leaves_nothing(world: World) -> None:
    app, svc, alice = world.app, world.app.services, world.principal("alice")
    step = svc.uploads.begin(alice, "folder", world.docs["data"]["_id"], "gone.bin", 100)
    svc.uploads.write(alice, step.upload["_id"], 0, io.BytesIO(b"x" * 10), None)
    svc.uploads.cancel(alice, step.upload["_id"])
    assert app.store.uploads.count() == 0
    assert app.store.items.find_one({"name": "gone.bin"}) is None
    _check_clean(app)


def test_check_finds_and_repairs_corruption(world: World) -> None:
    app = world.app
    item = world.docs["multi"]
    app.store.items.update_one({"_id": item["_id"]}, {"$set": {"size": 1}})
    app.store.folders.update_one({"_id": world.docs["data"]["_id"]}, {"$inc": {"size": 7}})
    checker = Checker(app.services)
    kinds = sorted(f.kind for f in checker.check())
    assert kinds == ["folder-size", "item-size"]
    assert checker.repair(checker.check()) == []
    _check_clean(app)


def test_folder_item_counts_follow_creates_moves_and_deletes(world: World) -> None:
    """Each folder's item count (Girder-Total-Count without a count query)
    lives in its own collection; check finds a wrong, missing or orphaned one
    and repair restores it."""
    app, svc, alice = world.app, world.app.services, world.principal("alice")
    data, docs = world.docs["data"], world.docs["docs"]

    def counted(folder_id: object) -> tuple[int | None, int]:
        return svc.tree.sizes.item_count(folder_id), app.store.items.count({"folderId": folder_id})

    start = counted(data["_id"])
    assert start[0] == start[1]
    fresh = svc.folders.create(alice, "folder", data["_id"], "fresh")
    assert counted(fresh["_id"]) == (0, 0)
    made = [svc.items.create(alice, fresh, f"n{i}") for i in range(3)]
    assert counted(fresh["_id"]) == (3, 3)
    svc.moves.move_item(alice, made[0], docs)
    svc.removal.delete_item(alice, app.store.get("item", made[1]["_id"]))
    assert counted(fresh["_id"]) == (1, 1)
    _check_clean(app)
    svc.removal.delete_folder(alice, app.store.get("folder", fresh["_id"]))
    assert app.store.folder_counts.find_one({"_id": fresh["_id"]}) is None

    app.store.folder_counts.update_one({"_id": data["_id"]}, {"$inc": {"items": 5}})
    app.store.folder_counts.delete_one({"_id": docs["_id"]})
    app.store.folder_counts.insert_one({"_id": fresh["_id"], "items": 2})
    checker = Checker(app.services)
    kinds = sorted(f.kind for f in checker.check())
    assert kinds == ["folder-item-count", "folder-item-count", "orphan-folder-count"]
    assert checker.repair(checker.check()) == []
    _check_clean(app)
    assert counted(docs["_id"])[0] == counted(docs["_id"])[1]
