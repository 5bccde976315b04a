"""The web client's files over plain HTTP: served at / beside the REST API, with a
strict CSP, validators and caching, deep links answered by index.html, the health
check kept, the first load small, and the Connect panel's REST route."""

from __future__ import annotations

import re
from pathlib import Path

import requests

from joist.gateways.http.webclient import WEB
from tests.gateways.http.restsite import RestSite

FIRST_LOAD_LIMIT = 250 * 1024


def test_index_and_deep_links_carry_a_strict_csp(web_site: RestSite) -> None:
    base = web_site.server.url
    for path in ("/", "/collections", "/collection/shared/docs", "/user/alice/Private/x%5C-y",
                 "/login?next=/users"):
        reply = requests.get(base + path, timeout=10)
        assert reply.status_code == 200, path
        assert reply.headers["Content-Type"].startswith("text/html")
        assert '<script type="module" src="/assets/main.js">' in reply.text
        csp = reply.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert reply.headers["X-Content-Type-Options"] == "nosniff"


def test_no_inline_script_or_handler_in_the_page() -> None:
    html = (WEB / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\son[a-z]+=", html)
    for script in WEB.glob("*.js"):
        text = script.read_text()
        # Data only ever goes in as text: no HTML parsing of strings, no eval.
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                       "eval(", "new Function"):
            assert banned not in text, f"{script.name} uses {banned}"


def test_assets_have_validators_and_revalidate(web_site: RestSite) -> None:
    url = web_site.server.url + "/assets/main.js"
    first = requests.get(url, timeout=10)
    assert first.status_code == 200
    assert first.headers["Content-Type"].startswith("text/javascript")
    assert first.headers["Cache-Control"] == "no-cache"
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    again = requests.get(url, headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    by_date = requests.get(url, headers={"If-Modified-Since": modified}, timeout=10)
    assert by_date.status_code == 304
    changed = requests.get(url, headers={"If-None-Match": '"other"'}, timeout=10)
    assert changed.status_code == 200 and changed.content == first.content
    head = requests.head(url, timeout=10)
    assert head.status_code == 200 and head.headers["ETag"] == etag and head.content == b""


def test_unknown_asset_and_writes_are_refused(web_site: RestSite) -> None:
    base = web_site.server.url
    assert requests.get(base + "/assets/nope.js", timeout=10).status_code == 404
    traversal = requests.get(base + "/assets/%2e%2e/webclient.py", timeout=10)
    assert traversal.status_code == 404 and b"import" not in traversal.content
    assert requests.post(base + "/", data=b"x", timeout=10).status_code == 405


def test_health_check_stays(web_site: RestSite) -> None:
    base = web_site.server.url
    assert requests.get(base + "/healthz", timeout=10).json() == {"status": "ok"}
    plain = requests.get(base + "/", headers={"Accept": "application/json"}, timeout=10)
    assert plain.json() == {"status": "ok"}


def test_first_load_is_small() -> None:
    # Every module the page imports is fetched on first load: all of web/ counts.
    total = sum(p.stat().st_size for p in Path(WEB).iterdir() if p.is_file())
    assert total <= FIRST_LOAD_LIMIT, total


def test_endpoints_route_reports_webdav_and_sftp(web_site: RestSite) -> None:
    reply = web_site.get("system/endpoints")
    assert reply.status_code == 200
    body = reply.json()
    assert body["webdav"] == {"path": "/dav", "port": None}
    host, port = web_site.server.sftp.address
    assert body["sftp"] == {"host": host, "port": port}
