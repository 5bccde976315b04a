"""Real WebDAV clients that send credentials only after a 401 (issue 12 #10):
cadaver (driven through stdin, credentials from ~/.netrc in a temporary HOME)
and davfs2 (``mount -t davfs``, credentials from its secrets file).

davfs2 note: on this machine's kernel davfs2 1.6.1 answers EINVAL to every
readdir, against any WebDAV server (a bare wsgidav filesystem share too), so
the davfs2 test opens files by path and does not list directories.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from joist.core.acl import SYSTEM
from tests.gateways.webdav.conftest import DavSite
from tests.world import A_TXT, HIDDEN, PASSWORD

needs_cadaver = pytest.mark.skipif(shutil.which("cadaver") is None,
                                   reason="cadaver is not installed (make test installs it)")


def cadaver(home: Path, url: str, commands: str, login: str = "alice",
            password: str = PASSWORD) -> str:
    home.mkdir(exist_ok=True)
    netrc = home / ".netrc"
    netrc.write_text(f'machine 127.0.0.1\nlogin {login}\npassword "{password}"\n')
    netrc.chmod(0o600)
    done = subprocess.run(["cadaver", url], input=commands + "quit\n", capture_output=True,
                          text=True, timeout=60, cwd=home,
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C"})
    return done.stdout + done.stderr


@needs_cadaver
def test_cadaver_is_asked_to_log_in_at_the_root(site: DavSite, tmp_path: Path) -> None:
    (tmp_path / "up.txt").write_bytes(b"sent by cadaver\n")
    out = cadaver(tmp_path / "home", site.base + "/",
                  "ls\ncd user/alice/Private/data\nget a.txt got.txt\n"
                  f"put {tmp_path / 'up.txt'} up.txt\n")
    assert "Listing collection `/dav/': succeeded" in out, out
    assert "user" in out and "collection" in out
    assert (tmp_path / "home" / "got.txt").read_bytes() == A_TXT, out
    reader = site.app.hierarchy.view(SYSTEM).open_read("/user/alice/Private/data/up.txt")
    assert reader.read_at(0, 100) == b"sent by cadaver\n"


@needs_cadaver
def test_cadaver_reaches_a_private_collection_with_anonymous_read_on(
        site: DavSite, tmp_path: Path) -> None:
    # The case: anonymous on, a private collection; before the fix
    # cadaver said "Could not access ... (not WebDAV-enabled?)".
    site.app.services.settings.set("joist.webdav.anonymous_read", True)
    out = cadaver(tmp_path / "home", site.base + "/collection/secret/",
                  "ls\ncd vault\nget hidden.txt got.txt\n", login="admin")
    assert "Listing collection `/dav/collection/secret/': succeeded" in out, out
    assert (tmp_path / "home" / "got.txt").read_bytes() == HIDDEN


@needs_cadaver
def test_cadaver_with_a_wrong_password_gets_nothing(site: DavSite, tmp_path: Path) -> None:
    out = cadaver(tmp_path / "home", site.base + "/user/alice/Private/", "ls\n",
                  password="wrong password")
    assert "succeeded" not in out and "data" not in out, out
    assert "authenticate" in out.lower(), out


def davfs_available() -> bool:
    return os.geteuid() == 0 and os.path.exists("/dev/fuse") and \
        shutil.which("mount.davfs") is not None


@pytest.fixture
def davfs(site: DavSite, tmp_path: Path) -> Iterator[Path]:
    """``/dav/`` mounted with davfs2 as alice; unmounted even on failure."""
    if not davfs_available():
        pytest.skip("davfs2 needs root, /dev/fuse and mount.davfs (make test installs it)")
    point, conf = tmp_path / "mnt", tmp_path / "davfs2"
    point.mkdir()
    conf.mkdir()
    secrets = conf / "secrets"
    secrets.write_text(f'{site.base}/ alice "{PASSWORD}"\n')
    secrets.chmod(0o600)
    # mount.davfs drops to its own user, which cannot enter pytest's 0700 dirs.
    cache = Path(tempfile.mkdtemp(prefix="joist-davfs-"))
    cache.chmod(0o775)
    shutil.chown(cache, group="davfs2")
    (conf / "davfs2.conf").write_text(
        f"secrets {secrets}\ncache_dir {cache}\nuse_locks 0\ndelay_upload 0\n"
        "gui_optimize 0\n")
    done = subprocess.run(["mount", "-t", "davfs", "-o", f"conf={conf / 'davfs2.conf'}",
                           site.base + "/", str(point)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, check=False)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        yield point
    finally:
        subprocess.run(["umount", str(point)], capture_output=True, timeout=120, check=False)
        if os.path.ismount(point):
            subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=60,
                           check=False)
        shutil.rmtree(cache, ignore_errors=True)


def test_davfs2_mounts_the_root_and_reads_and_writes_private_data(
        site: DavSite, davfs: Path) -> None:
    assert (davfs / "user/alice/Private/data/a.txt").read_bytes() == A_TXT
    (davfs / "user/alice/Private/data/from-davfs.txt").write_bytes(b"written by davfs2\n")
    view = site.app.hierarchy.view(SYSTEM)
    deadline = time.monotonic() + 30  # davfs2 uploads after the close, in the background
    while not view.exists("/user/alice/Private/data/from-davfs.txt"):
        assert time.monotonic() < deadline, "davfs2 never uploaded the file"
        time.sleep(0.05)
    reader = view.open_read("/user/alice/Private/data/from-davfs.txt")
    assert reader.read_at(0, 100) == b"written by davfs2\n"
