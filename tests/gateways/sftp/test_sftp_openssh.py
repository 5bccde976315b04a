"""OpenSSH's own ``sftp`` client, in batch mode, against the server on port 0."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import world as w
from tests.gateways.sftp.conftest import SftpSite

pytestmark = pytest.mark.skipif(shutil.which("sftp") is None,
                                reason="the OpenSSH client is not installed")

DATA = "/user/alice/Private/data"


class OpenSsh:
    """``sftp -b -`` as ``login``, logging in with a key registered in Joist."""

    def __init__(self, site: SftpSite, home: Path, login: str) -> None:
        self.site, self.login = site, login
        home.mkdir(parents=True, exist_ok=True)
        self.key = home / f"{login}_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)],
                       check=True)
        site.app.services.auth.ssh_keys.add(site.world.users[login],
                                            (home / f"{login}_key.pub").read_text())
        self.env = {**os.environ, "HOME": str(home)}

    def run(self, *commands: str, cwd: Path | None = None,
            extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        host, port = self.site.address
        return subprocess.run(
            ["sftp", "-b", "-", "-F", "/dev/null", "-P", str(port), "-i", str(self.key),
             "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", *extra,
             f"{self.login}@{host}"],
            input="\n".join(commands) + "\n", capture_output=True, text=True, cwd=cwd,
            env=self.env, timeout=60)


@pytest.fixture
def alice(site: SftpSite, tmp_path: Path) -> OpenSsh:
    return OpenSsh(site, tmp_path / "home", "alice")


def test_get_recursive_tree(alice: OpenSsh, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    done = alice.run(f"get -r {DATA}", cwd=out)
    assert done.returncode == 0, done.stderr
    root = out / "data"
    assert (root / "a.txt").read_bytes() == w.A_TXT
    assert (root / "multi" / "x.bin").read_bytes() == w.X_BIN
    assert (root / "multi" / "y.bin").read_bytes() == w.Y_BIN
    assert (root / "deep" / "d1" / "d2" / "d3" / "leaf.txt").read_bytes() == w.LEAF
    assert (root / "odd\\-name").is_dir()  # the codec's name is a legal local name
    assert sorted(p.name for p in root.iterdir()) == ["a.txt", "deep", "multi", "odd\\-name"]


def test_get_with_client_tuning(alice: OpenSsh, tmp_path: Path) -> None:
    done = alice.run(f"get /collection/shared/docs/report.txt {tmp_path}/r.txt",
                     extra=("-c", "aes128-gcm@openssh.com", "-R", "64", "-B", "261120"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r.txt").read_bytes() == w.REPORT


def test_reget_resumes_where_the_local_copy_ends(alice: OpenSsh, tmp_path: Path) -> None:
    local = tmp_path / "report.txt"
    # A local prefix that differs from the remote bytes: if the client resumes
    # (reads from offset 500 on) the prefix survives; a full download would not.
    local.write_bytes(b"\0" * 500)
    done = alice.run(f"reget /collection/shared/docs/report.txt {local}")
    assert done.returncode == 0, done.stderr
    assert local.read_bytes() == b"\0" * 500 + w.REPORT[500:]
    local.write_bytes(w.REPORT[:7000])
    done = alice.run(f"get -a /collection/shared/docs/report.txt {local}")
    assert done.returncode == 0, done.stderr
    assert local.read_bytes() == w.REPORT


def test_ls_long(alice: OpenSsh) -> None:
    done = alice.run(f"ls -l {DATA}")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[-1]: line for line in done.stdout.splitlines()
             if line.startswith(("-", "d"))}
    assert lines["a.txt"].startswith("-r--r--r--") and f" {len(w.A_TXT)} " in lines["a.txt"]
    assert lines["deep"].startswith("dr-xr-xr-x")
    assert set(lines) == {"a.txt", "deep", "multi", "odd\\-name"}


def test_put_is_refused(alice: OpenSsh, site: SftpSite, tmp_path: Path) -> None:
    upload = tmp_path / "up.txt"
    upload.write_bytes(b"new bytes")
    done = alice.run(f"put {upload} {DATA}/up.txt")
    assert done.returncode != 0
    assert "Permission denied" in done.stderr
    done = alice.run(f"mkdir {DATA}/newdir")
    assert done.returncode != 0 and "Permission denied" in done.stderr
    view = site.app.hierarchy.view(site.world.principal("alice"))
    assert not view.exists(f"{DATA}/up.txt") and not view.exists(f"{DATA}/newdir")


def test_denied_paths_look_missing(site: SftpSite, tmp_path: Path) -> None:
    bob = OpenSsh(site, tmp_path / "home", "bobby")
    missing = bob.run(f"get {DATA}/none.txt {tmp_path}/x")
    denied = bob.run(f"get {DATA}/a.txt {tmp_path}/x")
    assert missing.returncode != 0 and denied.returncode != 0
    assert "not found" in denied.stderr.lower()
    assert denied.stderr.replace("a.txt", "none.txt") == missing.stderr
    listing = bob.run("ls /user/alice")
    assert listing.returncode == 0 and "Public" in listing.stdout
    assert "Private" not in listing.stdout
    assert not (tmp_path / "x").exists()
