"""Issue 16 item 1: the event bus, and the model events core fires.

The bus alone first (order, priority, responses, prevent_default,
stop_propagation, the bounded asynchronous queue and its drop policy), then
the services of a real App firing Girder's ``model.<type>.*`` names and
``data.process``.
"""

from __future__ import annotations

import io
import logging
import threading
from typing import Any

import pytest

from joist.admin.bootstrap import App
from joist.core.acl import SYSTEM, Principal
from joist.core.errors import ValidationError
from joist.core.events import Event, EventBus
from tests.world import PASSWORD


def _recorder(log: list[str], tag: str) -> Any:
    return lambda event: log.append(tag)


# ------------------------------------------------------------------ the bus
def test_handlers_run_by_priority_then_bind_order() -> None:
    bus, seen = EventBus(), []
    bus.bind("x", "a", _recorder(seen, "a"))
    bus.bind("x", "b", _recorder(seen, "b"))
    bus.bind("x", "first", _recorder(seen, "first"), priority=10)
    bus.bind("x", "last", _recorder(seen, "last"), priority=-1)
    bus.bind("y", "other", _recorder(seen, "other"))
    event = bus.trigger("x", {"k": 1})
    assert seen == ["first", "a", "b", "last"]
    assert event.name == "x" and event.info == {"k": 1} and not event.default_prevented


def test_rebinding_a_name_replaces_it_and_unbind_removes_it() -> None:
    bus, seen = EventBus(), []
    bus.bind("x", "a", _recorder(seen, "old"))
    bus.bind("x", "a", _recorder(seen, "new"))
    bus.trigger("x")
    assert seen == ["new"]
    assert bus.unbind("x", "a") is True
    assert bus.unbind("x", "a") is False
    assert not bus.has_handlers("x")
    bus.trigger("x")
    assert seen == ["new"]


def test_bound_is_temporary_and_unbind_all_by_handler_name() -> None:
    bus, seen = EventBus(), []
    with bus.bound("x", "tmp", _recorder(seen, "tmp")):
        bus.trigger("x")
    bus.trigger("x")
    assert seen == ["tmp"]
    bus.bind("x", "plugin", _recorder(seen, "p1"))
    bus.bind("y", "plugin", _recorder(seen, "p2"))
    bus.bind("y", "keep", _recorder(seen, "keep"))
    bus.unbind_all("plugin")
    bus.trigger("x")
    bus.trigger("y")
    assert seen == ["tmp", "keep"]


def test_responses_prevent_default_and_stop_propagation() -> None:
    bus, seen = EventBus(), []

    def answer(event: Event) -> None:
        event.add_response({"from": event.current_handler_name})
        event.prevent_default().stop_propagation()

    bus.bind("x", "answer", answer, priority=1)
    bus.bind("x", "never", _recorder(seen, "never"))
    event = bus.trigger("x")
    assert event.responses == [{"from": "answer"}]
    assert event.default_prevented and not event.propagate
    assert event.prevented_by == "answer"
    assert seen == []


def test_a_handler_error_reaches_the_caller() -> None:
    bus = EventBus()

    def refuse(event: Event) -> None:
        raise ValidationError("no")

    bus.bind("x", "refuse", refuse)
    with pytest.raises(ValidationError):
        bus.trigger("x")


def test_bad_bindings_are_refused() -> None:
    bus = EventBus()
    with pytest.raises(ValueError):
        bus.bind("", "a", print)
    with pytest.raises(TypeError):
        bus.bind("x", "a", "not callable")  # type: ignore[arg-type]


def test_asynchronous_events_run_on_the_worker_with_a_callback() -> None:
    bus = EventBus()
    ran: list[tuple[str, bool, str]] = []
    done: list[Event] = []
    bus.bind("job", "h", lambda e: ran.append((threading.current_thread().name,
                                                  e.asynchronous, e.info)))
    try:
        assert bus.trigger_async("job", "payload", callback=done.append)
        assert bus.drain(5)
        assert ran == [("joist-events", True, "payload")]
        assert len(done) == 1 and done[0].info == "payload"
    finally:
        bus.stop()
    assert bus.trigger_async("job", "late") is False  # stopped: dropped, not run
    assert len(ran) == 1


def test_a_failing_asynchronous_handler_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()

    def boom(event: Event) -> None:
        raise RuntimeError("boom")

    bus.bind("x", "boom", boom)
    try:
        with caplog.at_level(logging.ERROR, logger="joist.events"):
            bus.trigger_async("x")
            assert bus.drain(5)
        assert "asynchronous handler boom of event x failed" in caplog.text
    finally:
        bus.stop()


def test_a_full_queue_blocks_briefly_then_drops_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus(queue_size=1, put_timeout=0.05)
    gate, started = threading.Event(), threading.Event()

    def slow(event: Event) -> None:
        started.set()
        gate.wait(5)

    bus.bind("x", "slow", slow)
    try:
        assert bus.trigger_async("x", 1)  # taken by the worker, which blocks
        assert started.wait(5)
        assert bus.trigger_async("x", 2)  # fills the one slot
        with caplog.at_level(logging.WARNING, logger="joist.events"):
            assert bus.trigger_async("x", 3) is False
        assert bus.dropped == 1 and "event x dropped" in caplog.text
    finally:
        gate.set()
        bus.stop()


def test_stop_runs_what_is_queued() -> None:
    bus, seen = EventBus(), []
    bus.bind("x", "h", lambda e: seen.append(e.info))
    for n in range(5):
        bus.trigger_async("x", n)
    bus.stop()
    assert seen == [0, 1, 2, 3, 4]
    bus.stop()  # twice is fine


# ------------------------------------------------------------------ core fires
def test_two_apps_have_separate_buses(app: App, tmp_path: Any) -> None:
    from tests.conftest import site_app
    other = site_app(tmp_path / "other")
    try:
        assert other.services.events is not app.services.events
        app.services.events.bind("x", "h", print)
        assert not other.services.events.has_handlers("x")
    finally:
        other.close()


def _watch(app: App, names: list[str]) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    for name in names:
        app.services.events.bind(name, "test", lambda e: seen.append((e.name, e.info)))
    return seen


def test_services_fire_save_and_remove_for_every_model(app: App) -> None:
    svc = app.services
    models = ("user", "group", "collection", "folder", "item", "file")
    names = [f"model.{m}.{s}" for m in models
             for s in ("save", "save.created", "save.after", "remove", "remove.after")]
    seen = _watch(app, names)
    user = svc.users.create(SYSTEM, login="evelyn", email="eve@example.org", first_name="E",
                            last_name="V", password=PASSWORD)
    owner = Principal.from_user(user)  # the first user: a site admin
    group = svc.groups.create(owner, "crew")
    coll = svc.collections.create(owner, "box")
    folder = svc.folders.create(owner, "collection", coll["_id"], "f")
    item = svc.items.create(owner, folder, "it")
    step = svc.uploads.begin(owner, "item", item["_id"], "a.txt", 3)
    assert step.upload is not None
    file = svc.uploads.write(owner, step.upload["_id"], 0, io.BytesIO(b"abc"), 3).file
    assert file is not None
    fired = [name for name, _ in seen]
    for model, doc in (("user", user), ("group", group), ("collection", coll),
                       ("folder", folder), ("item", item), ("file", file)):
        assert [n for n in fired if n.startswith(f"model.{model}.")][-3:] == [
            f"model.{model}.save", f"model.{model}.save.created",
            f"model.{model}.save.after"], model
        after = [info for name, info in seen if name == f"model.{model}.save.after"]
        assert any(i["_id"] == doc["_id"] for i in after), model

    seen.clear()
    item = svc.items.update(owner, item, name="renamed")
    svc.folders.set_metadata(owner, folder, {"k": 1})
    assert [n for n, _ in seen] == ["model.item.save", "model.item.save.after",
                                    "model.folder.save", "model.folder.save.after"]
    assert seen[1][1]["name"] == "renamed" and seen[3][1]["meta"] == {"k": 1}

    seen.clear()
    svc.access.set_public(owner, "collection", coll, True)
    svc.access.grant(owner, "folder", folder, "group", group["_id"], 0)
    assert [n for n, _ in seen] == ["model.collection.save", "model.collection.save.after",
                                    "model.folder.save", "model.folder.save.after"]
    assert seen[3][1]["access"]["groups"][0]["id"] == group["_id"]

    seen.clear()
    other = svc.folders.create(owner, "collection", coll["_id"], "g")
    seen.clear()
    svc.moves.move_item(owner, item, other)
    svc.moves.move_folder(owner, other, "folder", folder)
    assert [n for n, _ in seen] == ["model.item.save", "model.item.save.after",
                                    "model.folder.save", "model.folder.save.after"]
    assert seen[1][1]["folderId"] == other["_id"] and seen[3][1]["parentId"] == folder["_id"]

    seen.clear()
    svc.removal.delete_collection(SYSTEM, coll)
    fired = [n for n, _ in seen]
    for model, count in (("collection", 1), ("folder", 2), ("item", 1), ("file", 1)):
        assert fired.count(f"model.{model}.remove") == count, model
        assert fired.count(f"model.{model}.remove.after") == count, model
    assert fired[0] == "model.collection.remove" and fired[-1] == "model.collection.remove.after"
    seen.clear()
    svc.groups.delete(SYSTEM, group)
    svc.removal.delete_user(SYSTEM, user)
    fired = [n for n, _ in seen]
    assert fired[:2] == ["model.group.remove", "model.group.remove.after"]
    assert fired[2] == "model.user.remove" and fired[-1] == "model.user.remove.after"


def test_a_save_handler_may_refuse(app: App) -> None:
    svc = app.services

    def veto(event: Event) -> None:
        if event.info["name"].startswith("forbidden"):
            event.add_response("Folders may not be called that.")
            event.prevent_default()

    app.services.events.bind("model.collection.save", "veto", veto)
    with pytest.raises(ValidationError, match="may not be called that"):
        svc.collections.create(SYSTEM, "forbidden one")
    assert svc.collections.by_name("forbidden one") is None
    assert svc.collections.create(SYSTEM, "fine")["name"] == "fine"
    app.services.events.bind("model.collection.remove", "keeper",
                             lambda e: e.prevent_default())
    with pytest.raises(ValidationError, match=r"may not be removed \(refused by keeper\)"):
        svc.removal.delete_collection(SYSTEM, svc.collections.by_name("fine"))
    assert svc.collections.by_name("fine") is not None


def test_a_failing_after_handler_is_logged_and_the_change_stands(
        app: App, caplog: pytest.LogCaptureFixture) -> None:
    def boom(event: Event) -> None:
        raise RuntimeError("boom")

    app.services.events.bind("model.collection.save.after", "boom", boom)
    with caplog.at_level(logging.ERROR, logger="joist.events"):
        made = app.services.collections.create(SYSTEM, "kept")
    assert app.services.collections.by_name("kept")["_id"] == made["_id"]
    assert "a handler of model.collection.save.after failed" in caplog.text


def test_data_process_fires_once_per_finalized_upload(app: App) -> None:
    svc = app.services
    svc.settings.set("core.upload_minimum_chunk_size", 1)  # two small chunks
    seen = _watch(app, ["data.process"])
    owner = Principal.from_user(svc.users.create(
        SYSTEM, login="evelyn", email="eve@example.org", first_name="E", last_name="V",
        password=PASSWORD))
    coll = svc.collections.create(owner, "c")
    folder = svc.folders.create(owner, "collection", coll["_id"], "f")
    step = svc.uploads.begin(owner, "folder", folder["_id"], "chunks.bin", 6,
                             reference="ref-1")
    assert step.upload is not None
    upload_id = step.upload["_id"]
    assert svc.uploads.write(owner, upload_id, 0, io.BytesIO(b"abc"), 3).file is None
    assert seen == []  # not before the upload is finalized
    file = svc.uploads.write(owner, upload_id, 3, io.BytesIO(b"def"), 3).file
    assert file is not None
    assert len(seen) == 1
    info = seen[0][1]
    assert info["file"]["_id"] == file["_id"] and info["file"]["size"] == 6
    assert info["reference"] == "ref-1"
    assert info["assetstore"]["_id"] == file["assetstoreId"]


def test_an_upload_may_be_refused_before_any_byte(app: App) -> None:
    svc = app.services
    owner = Principal.from_user(svc.users.create(
        SYSTEM, login="evelyn", email="eve@example.org", first_name="E", last_name="V",
        password=PASSWORD))
    folder = svc.folders.list(owner, "user", owner.user_id, name="Private")[0][0]

    def too_big(event: Event) -> None:
        if event.info["size"] > 10:
            event.add_response("Too big for you.")
            event.prevent_default()

    svc.events.bind("model.upload.save", "quota", too_big)
    with pytest.raises(ValidationError, match="Too big for you"):
        svc.uploads.begin(owner, "folder", folder["_id"], "big.bin", 11)
    assert svc.uploads.list() == []
    assert svc.uploads.begin(owner, "folder", folder["_id"], "ok.bin", 10).upload is not None
