"""Fetch the pinned browser packages of ``config/web-assets.json`` from the npm
registry into the source tree, verified against their sha512 integrity.

Run by ``make install`` before pip (standard library only, so it runs before
any dependency is installed): the repository holds no third-party code, and
the server never fetches anything at run time. A package already in place at
the pinned version is left alone, so a reinstall needs no network.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "config" / "web-assets.json"
REGISTRY = "https://registry.npmjs.org"
STAMP = ".npm-package"  # name@version@integrity of what the folder holds


def tarball_url(name: str, version: str) -> str:
    return f"{REGISTRY}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"


def verify(data: bytes, integrity: str) -> None:
    algo, _, expected = integrity.partition("-")
    if algo != "sha512":
        raise ValueError(f"unsupported integrity algorithm {algo!r}")
    got = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != expected:
        raise ValueError(f"integrity mismatch: expected {integrity}, got sha512-{got}")


def extract(data: bytes, files: list[str], into: Path) -> None:
    """Write the named files of an npm tarball (they sit under ``package/``)."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for name in files:
            try:
                member = tar.extractfile(f"package/{name}")
            except KeyError:
                member = None
            if member is None:
                raise ValueError(f"{name} is not a file of the package")
            target = into / name
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(member.read())
            tmp.replace(target)


def fetch(package: dict[str, Any], root: Path = ROOT, *,
          opener: Any = urllib.request.urlopen) -> bool:
    """Bring one package into place; False when it already was."""
    into = root / package["into"]
    stamp = f"{package['name']}@{package['version']}@{package['integrity']}"
    stamp_file = into / STAMP
    if stamp_file.exists() and stamp_file.read_text().strip() == stamp and \
            all((into / name).is_file() for name in package["files"]):
        return False
    url = tarball_url(package["name"], package["version"])
    with opener(url, timeout=60) as response:
        data = response.read()
    verify(data, package["integrity"])
    extract(data, package["files"], into)
    stamp_file.write_text(stamp + "\n")
    return True


def main(argv: list[str] | None = None) -> int:
    manifest = json.loads(MANIFEST.read_text())
    for package in manifest["packages"]:
        label = f"{package['name']}@{package['version']}"
        try:
            if fetch(package):
                print(f"fetched {label} into {package['into']}")
        except (OSError, ValueError, tarfile.TarError) as exc:
            print(f"fetch_assets: cannot fetch {label} from {REGISTRY}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
