"""WebDAV listings agree with the REST API's (same server, same principal):
the same children under the same names, the same sizes, the same refusals."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from joist.core.hierarchy import encode_name
from tests.gateways.webdav.conftest import DavSite
from tests.gateways.webdav.davclient import DAV, Dav, prop
from tests.world import PASSWORD

FOLDERS = ["/user/alice/Public", "/user/alice/Private", "/user/alice/Private/data",
           "/user/alice/Private/data/deep", "/collection/shared/docs"]


def rest_children(site: DavSite, login: str, path: str) -> dict[str, int | None] | int:
    api = site.server.url + "/api/v1"
    auth = requests.get(api + "/user/authentication", auth=(login, PASSWORD), timeout=30)
    headers = {"Girder-Token": auth.json()["authToken"]["token"]}
    found = requests.get(api + "/resource/lookup", params={"path": path}, headers=headers,
                         timeout=30)
    if found.status_code != 200:
        return found.status_code
    folder = found.json()
    params = {"parentType": folder["_modelType"], "parentId": folder["_id"], "limit": 0}
    names: dict[str, int | None] = {
        encode_name(f["name"]): None for f in requests.get(
            api + "/folder", params=params, headers=headers, timeout=30).json()}
    if folder["_modelType"] == "folder":
        for item in requests.get(api + "/item", params={"folderId": folder["_id"], "limit": 0},
                                 headers=headers, timeout=30).json():
            files = requests.get(api + f"/item/{item['_id']}/files", headers=headers,
                                 timeout=30).json()
            single = len(files) == 1 and files[0]["name"] == item["name"]
            names[encode_name(item["name"])] = item["size"] if single else None
    return names


def dav_children(dav: Dav, path: str) -> dict[str, int | None] | int:
    resp = dav.propfind(path + "/", "1")
    if resp.status_code != 207:
        return resp.status_code
    out: dict[str, int | None] = {}
    for href, entry in dav.responses(path + "/", "1").items():
        if href.rstrip("/") == "/dav" + path:
            continue
        length = prop(entry, f"{DAV}getcontentlength")
        out[href.rstrip("/").rsplit("/", 1)[-1]] = None if length is None else int(length.text)
    return out


@pytest.mark.parametrize("login", ["alice", "carol", "bobby"])
def test_listings_agree_with_rest(site: DavSite, dav: Callable[..., Dav], login: str) -> None:
    client = dav(login)
    for path in FOLDERS:
        rest, webdav = rest_children(site, login, path), dav_children(client, path)
        if isinstance(rest, int):  # REST refuses (400/403 in Girder's terms)...
            assert webdav == 404, (login, path, rest, webdav)  # ...WebDAV: not found
        else:
            assert webdav == rest, (login, path)
