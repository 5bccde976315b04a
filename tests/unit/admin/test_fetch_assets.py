"""admin/fetch_assets.py: a pinned npm tarball, served over real HTTP on
127.0.0.1, lands verified in the tree; a wrong hash or a missing file changes
nothing; a package in place is not fetched again."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from joist.admin import fetch_assets

ROOT = Path(__file__).resolve().parents[3]


def _tarball(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    served: dict[str, Any] = {"tgz": b"", "hits": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served["hits"] += 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(served["tgz"])))
            self.end_headers()
            self.wfile.write(served["tgz"])

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(fetch_assets, "REGISTRY", f"http://127.0.0.1:{server.server_port}")
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _package(tgz: bytes, integrity: str | None = None) -> dict[str, Any]:
    return {"name": "demo-dist", "version": "1.2.3", "integrity": integrity or _integrity(tgz),
            "into": "static/demo", "files": ["demo.js", "LICENSE"]}


def test_a_pinned_package_lands_verified_and_is_not_fetched_twice(
        registry: dict[str, Any], tmp_path: Path) -> None:
    registry["tgz"] = _tarball({"demo.js": b"export const x = 1;\n", "LICENSE": b"MIT\n",
                                "other.js": b"not wanted"})
    package = _package(registry["tgz"])
    assert fetch_assets.fetch(package, tmp_path) is True
    assert (tmp_path / "static/demo/demo.js").read_bytes() == b"export const x = 1;\n"
    assert not (tmp_path / "static/demo/other.js").exists()
    assert fetch_assets.fetch(package, tmp_path) is False
    assert registry["hits"] == 1


def test_a_tarball_with_the_wrong_hash_changes_nothing(registry: dict[str, Any],
                                                        tmp_path: Path) -> None:
    registry["tgz"] = _tarball({"demo.js": b"evil()", "LICENSE": b"MIT\n"})
    package = _package(registry["tgz"], integrity=_integrity(b"what was pinned"))
    with pytest.raises(ValueError, match="integrity mismatch"):
        fetch_assets.fetch(package, tmp_path)
    assert not (tmp_path / "static/demo").exists()


def test_a_missing_file_is_an_error(registry: dict[str, Any], tmp_path: Path) -> None:
    registry["tgz"] = _tarball({"demo.js": b"x"})
    with pytest.raises(ValueError, match="LICENSE is not a file"):
        fetch_assets.fetch(_package(registry["tgz"]), tmp_path)
    assert not (tmp_path / "static/demo" / fetch_assets.STAMP).exists()


def test_the_manifest_pins_every_package_and_the_repository_holds_none_of_it() -> None:
    manifest = json.loads((ROOT / "config/web-assets.json").read_text())
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    for package in manifest["packages"]:
        assert package["integrity"].startswith("sha512-")
        assert all(part.isdigit() for part in package["version"].split("."))
        assert f"/{package['into']}/" in ignored
