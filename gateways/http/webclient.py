"""The browser client's files, served at ``/`` beside the REST API.

Plain HTML, CSS and JavaScript modules from ``web/`` (no build step), read once
at start. Assets live under ``/assets/``; any other GET is a client route (the
client uses history routing), so it answers ``index.html`` and a deep link
works on reload. Every answer carries a strict Content-Security-Policy (no
inline script, no eval, no framing) and validators (ETag, Last-Modified) so a
browser revalidates instead of downloading again.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import mimetypes
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WEB = Path(__file__).with_name("web")
ASSETS = "/assets/"
# img-src blob:: the TOTP QR code, an SVG fetched with the token header and shown
# through an object URL (an <img> never runs script).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
       "connect-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                    ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer")]
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}
StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    last_modified: str


def _load(folder: Path) -> dict[str, Asset]:
    assets: dict[str, Asset] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        body = path.read_bytes()
        kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or \
            "application/octet-stream"
        assets[path.relative_to(folder).as_posix()] = Asset(
            body, kind, '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            email.utils.formatdate(path.stat().st_mtime, usegmt=True))
    return assets


class WebClient:
    """WSGI app for everything the REST and WebDAV prefixes do not take."""

    def __init__(self, folder: Path = WEB) -> None:
        self.assets = _load(folder)
        if "index.html" not in self.assets:
            raise FileNotFoundError(f"{folder}/index.html is missing from the package")

    def __call__(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" or (path == "/" and _wants_json(environ)):
            # The health check (and ``curl /`` by scripts that expect JSON) stays.
            return _json(start, "200 OK", {"status": "ok"})
        if method not in ("GET", "HEAD"):
            start("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Length", "0")])
            return [b""]
        if path.startswith(ASSETS):
            asset = self.assets.get(path[len(ASSETS):])
            if asset is None or path.endswith("index.html"):
                return _json(start, "404 Not Found", {"message": "Not found.", "type": "rest"})
        else:
            asset = self.assets["index.html"]  # a client route: the page decides
        return self._send(environ, start, asset, method == "HEAD")

    @staticmethod
    def _send(environ: dict[str, Any], start: StartResponse, asset: Asset,
              head: bool) -> Iterable[bytes]:
        # no-cache: always revalidate (file names carry no hash, there is no build
        # step), which costs a 304 and no body while the file is unchanged.
        headers = [("ETag", asset.etag), ("Last-Modified", asset.last_modified),
                   ("Cache-Control", "no-cache"), *SECURITY_HEADERS]
        match = environ.get("HTTP_IF_NONE_MATCH")
        if match is not None:
            fresh = asset.etag in [tag.strip() for tag in match.split(",")] or match == "*"
        else:
            fresh = environ.get("HTTP_IF_MODIFIED_SINCE") == asset.last_modified
        if fresh:
            start("304 Not Modified", headers)
            return [b""]
        start("200 OK", [*headers, ("Content-Type", asset.content_type),
                         ("Content-Length", str(len(asset.body)))])
        return [b""] if head else [asset.body]


def _wants_json(environ: dict[str, Any]) -> bool:
    accept = environ.get("HTTP_ACCEPT", "")
    return "application/json" in accept and "text/html" not in accept


def _json(start: StartResponse, status: str, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode()
    start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
