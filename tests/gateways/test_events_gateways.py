"""Issue 16 item 1 through real clients: ``data.process`` fires exactly once
for an upload whatever the gateway (girder-client's REST upload, a WebDAV PUT;
a FUSE write on a real mount is in ``test_third_party_plugin.py``, where a plugin sees it
inside the mount's process), and ``rest.<method>.<route>.before|after`` fire
and can replace a response.

One server (REST and WebDAV on one port) over the shared world, stopped even
on failure.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import girder_client
import pytest
import requests

from joist.core.events import Event
from tests.gateways.webdav.conftest import DavSite, start_site
from tests.world import PASSWORD, build_world


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DavSite]:
    app, server = start_site(tmp_path / "data", **{"sftp.enabled": False})
    try:
        yield DavSite(app, build_world(app), server)
    finally:
        server.stop()
        app.close()


class Processed:
    """Records ``data.process`` events (handlers run on server threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.infos: list[dict[str, Any]] = []

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.infos.append(event.info)

    def files(self) -> list[tuple[str, int, str]]:
        with self.lock:
            return [(i["file"]["name"], i["file"]["size"], str(i["file"]["_id"]))
                    for i in self.infos]


@pytest.fixture
def processed(site: DavSite) -> Processed:
    recorder = Processed()
    site.app.services.events.bind("data.process", "test", recorder)
    return recorder


def test_a_girder_client_upload_fires_data_process_once(site: DavSite, processed: Processed,
                                                        tmp_path: Path) -> None:
    client = girder_client.GirderClient(apiUrl=site.server.url + "/api/v1/")
    client.authenticate("alice", PASSWORD)
    source = tmp_path / "gc.bin"
    source.write_bytes(b"g" * 1234)
    parent = str(site.world.docs["public"]["_id"])
    uploaded = client.uploadFileToFolder(parent, str(source))
    assert processed.files() == [("gc.bin", 1234, str(uploaded["_id"]))]
    info = processed.infos[0]
    assert info["currentUser"]["login"] == "alice"
    assert info["assetstore"]["_id"] == info["file"]["assetstoreId"]


def test_a_webdav_put_fires_data_process_once(site: DavSite, processed: Processed) -> None:
    dav = site.client("alice")
    try:
        reply = dav.request("PUT", "/user/alice/Public/dav.txt", data=b"d" * 77)
        assert reply.status_code in (201, 204), reply.text
        assert [(n, s) for n, s, _ in processed.files()] == [("dav.txt", 77)]
        reply = dav.request("PUT", "/user/alice/Public/dav.txt", data=b"new")
        assert reply.status_code in (201, 204), reply.text
        assert [(n, s) for n, s, _ in processed.files()] == [("dav.txt", 77), ("dav.txt", 3)]
        ids = {i for _, _, i in processed.files()}
        assert len(ids) == 1  # the same file, its bytes replaced
    finally:
        dav.close()


def test_rest_events_fire_around_a_route(site: DavSite) -> None:
    bus = site.app.services.events
    seen: list[tuple[str, Any]] = []
    api = site.server.url + "/api/v1/"
    item_id = str(site.world.docs["multi"]["_id"])
    token = requests.get(api + "user/authentication", auth=("alice", PASSWORD),
                         timeout=10).json()["authToken"]["token"]
    headers = {"Girder-Token": token}

    bus.bind("rest.get.item/:id.before", "t",
             lambda e: seen.append(("before", e.info["id"], e.info["principal"].login)))
    bus.bind("rest.get.item/:id.after", "t",
             lambda e: seen.append(("after", e.info["returnVal"]["name"], None)))
    plain = requests.get(api + f"item/{item_id}", headers=headers, timeout=10)
    assert plain.status_code == 200 and plain.json()["_id"] == item_id
    assert seen == [("before", item_id, "alice"), ("after", plain.json()["name"], None)]

    # an after handler's response replaces the result (Girder: with prevent_default)
    def decorate(event: Event) -> None:
        event.add_response({**event.info["returnVal"], "decorated": True})
        event.prevent_default()

    bus.bind("rest.get.item/:id.after", "t", decorate)
    assert requests.get(api + f"item/{item_id}", headers=headers,
                        timeout=10).json()["decorated"] is True

    # a before handler that prevents the default answers instead of the route
    def short_circuit(event: Event) -> None:
        event.add_response({"answered": "by a handler"})
        event.prevent_default()

    bus.bind("rest.get.item/:id.before", "t", short_circuit)
    bus.unbind("rest.get.item/:id.after", "t")
    reply = requests.get(api + f"item/{item_id}", headers=headers, timeout=10)
    assert reply.status_code == 200 and reply.json() == {"answered": "by a handler"}

    # a before handler refusing with a core error gets that error's status
    from joist.core.errors import AccessDeniedError

    def refuse(event: Event) -> None:
        raise AccessDeniedError("Not today.")

    bus.bind("rest.get.item/:id.before", "t", refuse)
    reply = requests.get(api + f"item/{item_id}", headers=headers, timeout=10)
    assert reply.status_code == 403 and reply.json()["message"] == "Not today."

    # a route that fails fires .failed (and not .after)
    bus.unbind("rest.get.item/:id.before", "t")
    bus.bind("rest.get.item/:id.failed", "t", lambda e: seen.append(("failed", e.info["id"],
                                                                       None)))
    bus.bind("rest.get.item/:id.after", "t", lambda e: seen.append(("after", "", None)))
    seen.clear()
    missing = "0" * 24
    assert requests.get(api + f"item/{missing}", headers=headers,
                        timeout=10).status_code == 400
    assert seen == [("failed", missing, None)]
    bus.unbind("rest.get.item/:id.after", "t")
    bus.unbind("rest.get.item/:id.before", "t")
    assert requests.get(api + f"item/{item_id}", headers=headers,
                        timeout=10).json()["_id"] == item_id
