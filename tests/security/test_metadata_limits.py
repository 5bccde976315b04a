"""Metadata is checked in core (issue 12, item 6): nesting past the limit,
non-finite numbers, integers wider than 64 bits and invalid Unicode are a
400 (or the protocol's word for it) on every gateway that sets metadata,
never a RecursionError answered 500. JSON too deep even for the parser is
invalid JSON."""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from joist.admin.bootstrap import App
from joist.core.errors import ValidationError
from joist.core.validation import MAX_META_DEPTH, validate_meta
from joist.gateways.fuse import MountOptions
from joist.gateways.fuse.errors import FuseError
from joist.gateways.fuse.operations import JoistOperations
from tests.gateways.webdav.conftest import start_site
from tests.world import PASSWORD, World, build_world

LIMIT_TEXT = f"{MAX_META_DEPTH} levels"
DATA = "/user/alice/Private/data"


def nested(depth: int) -> dict[str, Any]:
    """``{"k": {"k": ... 1}}`` with ``depth`` objects in all."""
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value  # type: ignore[no-any-return]


def nested_text(depth: int) -> str:
    return '{"k": ' * depth + "1" + "}" * depth


# ---------------------------------------------------------------- core

def test_the_rule() -> None:
    validate_meta(nested(MAX_META_DEPTH))
    validate_meta({"list": [[[1]]], "n": 2 ** 63 - 1, "m": -(2 ** 63), "f": 1.5, "b": True})
    with pytest.raises(ValidationError, match=LIMIT_TEXT):
        validate_meta(nested(MAX_META_DEPTH + 1))
    with pytest.raises(ValidationError, match=LIMIT_TEXT):
        validate_meta({"k": nested(5000)})
    for bad in ({"n": float("nan")}, {"n": [float("inf")]}, {"n": 2 ** 63},
                {"s": "\udc80"}, {"k": {"\ud800": 1}}):
        with pytest.raises(ValidationError):
            validate_meta(bad)


@pytest.fixture
def world(app: App) -> World:
    return build_world(app)


def test_services_refuse_and_keep_the_metadata(world: World) -> None:
    """On the test engine (JOIST_TEST_ENGINE=mongo too): every entry point."""
    svc, alice = world.app.services, world.principal("alice")
    data = world.docs["data"]
    item = world.app.store.items.find_one({"folderId": data["_id"], "name": "a.txt"})
    svc.items.set_metadata(alice, item, {"kept": 1})
    shared = world.app.store.collections.find_one({"name": "shared"})
    deep = {"deep": nested(500)}
    calls = [
        lambda: svc.items.set_metadata(alice, item, deep),
        lambda: svc.folders.set_metadata(alice, data, deep),
        lambda: svc.collections.set_metadata(alice, shared, deep),
        lambda: svc.items.update(alice, item, metadata=deep),
        lambda: svc.folders.update(alice, data, metadata=deep),
        lambda: svc.items.create(alice, data, "new item", metadata=deep),
        lambda: svc.folders.create(alice, "folder", data["_id"], "new folder", metadata=deep),
        lambda: world.app.hierarchy.view(alice).set_metadata(f"{DATA}/a.txt", deep),
    ]
    for call in calls:
        with pytest.raises(ValidationError, match=LIMIT_TEXT):
            call()
    assert world.app.store.items.find_one({"_id": item["_id"]})["meta"] == {"kept": 1}
    assert world.app.store.items.find_one({"name": "new item"}) is None
    assert world.app.store.folders.find_one({"name": "new folder"}) is None


def test_fuse_setxattr_is_einval(world: World, tmp_path: Path,
                                 caplog: pytest.LogCaptureFixture) -> None:
    view = world.app.hierarchy.view(world.principal("alice"))
    options = MountOptions(mountpoint=tmp_path / "mnt",
                           cache_dir=tmp_path / "cache", staging_dir=tmp_path / "stage")
    ops = JoistOperations(view, options)
    path, name = f"{DATA}/a.txt", "user.joist.meta.x"
    try:
        with caplog.at_level(logging.ERROR):
            for value in (nested_text(500), "NaN", "1" * 30):
                with pytest.raises(FuseError) as caught:
                    ops.setxattr(path, name, value.encode(), 0)
                assert caught.value.errno == errno.EINVAL, value[:20]
            # Too deep even for the JSON parser: not JSON, so kept as text.
            ops.setxattr(path, name, nested_text(5000).encode(), 0)
            assert view.metadata(path)["x"] == nested_text(5000)
    finally:
        ops.destroy("/")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ---------------------------------------------------------------- REST and WebDAV

@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, World]]:
    app, server = start_site(tmp_path_factory.mktemp("meta") / "data")
    try:
        yield server.url, build_world(app)
    finally:
        server.stop()
        app.close()


@pytest.fixture(scope="module")
def rest(served: tuple[str, World]) -> Iterator[requests.Session]:
    base, _world = served
    session = requests.Session()
    token = session.get(base + "/api/v1/user/authentication", auth=("alice", PASSWORD),
                        timeout=30).json()["authToken"]["token"]
    session.headers["Girder-Token"] = token
    yield session
    session.close()


def _ids(world: World) -> dict[str, str]:
    store = world.app.store
    item = store.items.find_one({"folderId": world.docs["data"]["_id"], "name": "a.txt"})
    return {"item": str(item["_id"]), "folder": str(world.docs["data"]["_id"]),
            "collection": str(world.docs["shared"]["_id"])}


@pytest.mark.parametrize("body", [nested_text(500), '{"a": ' + nested_text(900) + "}"])
@pytest.mark.parametrize("model", ["item", "folder", "collection"])
def test_rest_metadata_routes(served: tuple[str, World], rest: requests.Session, model: str,
                              body: str) -> None:
    base, world = served
    url = f"{base}/api/v1/{model}/{_ids(world)[model]}/metadata"
    reply = rest.put(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert reply.status_code == 400, reply.text[:200]
    assert LIMIT_TEXT in reply.json()["message"]


@pytest.mark.parametrize("body", [nested_text(50_000), '{"n": NaN}', '{"n": Infinity}',
                                  '{"n": ' + "9" * 25 + "}", '{"s": "\\udc80"}'])
def test_rest_other_bad_metadata(served: tuple[str, World], rest: requests.Session,
                                 body: str) -> None:
    base, world = served
    url = f"{base}/api/v1/item/{_ids(world)['item']}/metadata"
    reply = rest.put(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert reply.status_code == 400, reply.text[:200]
    assert "Traceback" not in reply.text


def test_rest_metadata_parameters(served: tuple[str, World], rest: requests.Session) -> None:
    base, world = served
    ids, deep = _ids(world), json.dumps(nested(300))
    api = base + "/api/v1"
    for method, path, params in (
            ("POST", "item", {"folderId": ids["folder"], "name": "n1", "metadata": deep}),
            ("POST", "folder", {"parentId": ids["folder"], "name": "n2", "metadata": deep}),
            ("PUT", f"item/{ids['item']}", {"metadata": deep}),
            ("PUT", f"folder/{ids['folder']}", {"metadata": deep})):
        reply = rest.request(method, f"{api}/{path}", params=params, timeout=30)
        assert reply.status_code == 400, (path, reply.text[:200])
        assert LIMIT_TEXT in reply.json()["message"], path


def test_webdav_proppatch(served: tuple[str, World]) -> None:
    base, world = served
    for value in (nested_text(500), nested_text(50_000), "NaN"):
        body = ('<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" '
                'xmlns:j="urn:joist:meta"><D:set><D:prop>'
                f'<j:deep j:type="json">{value}</j:deep></D:prop></D:set></D:propertyupdate>')
        reply = requests.request("PROPPATCH", f"{base}/dav{DATA}/a.txt", data=body.encode(),
                                 auth=("alice", PASSWORD), timeout=30)
        assert reply.status_code == 207, reply.text[:200]
        assert "HTTP/1.1 400" in reply.text and "HTTP/1.1 200" not in reply.text
        if value == nested_text(500):
            assert LIMIT_TEXT in reply.text
    view = world.app.hierarchy.view(world.principal("alice"))
    assert "deep" not in view.metadata(f"{DATA}/a.txt")
