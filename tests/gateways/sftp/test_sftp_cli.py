"""``joist sftpd``: the real command in a subprocess, on port 0."""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
from pathlib import Path

import paramiko

from joist.admin.bootstrap import build_app
from joist.core.acl import SYSTEM
from tests.conftest import make_settings
from tests.gateways.sftp.sftpfs import connect
from tests.world import PASSWORD

JOIST = [sys.executable, "-m", "joist.admin.cli"]


def test_sftpd_serves_and_stops(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = Path(cli_env["JOIST_DATA_DIR"])
    with build_app(make_settings(data), env={}) as app:
        app.services.users.create(SYSTEM, login="alice", email="alice@example.org",
                                  first_name="A", last_name="L", password=PASSWORD)
    proc = subprocess.Popen([*JOIST, "sftpd", "-p", "0", "-H", "127.0.0.1"], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "read-only" in banner, banner + (proc.stderr.read() if proc.poll() else "")
        port = int(banner.strip().rsplit(":", 1)[1])
        fingerprint = proc.stdout.readline().strip().rsplit(" ", 1)[1]
        transport = connect(("127.0.0.1", port), "alice", PASSWORD)
        try:
            assert transport.get_remote_server_key().fingerprint == fingerprint
            client = paramiko.SFTPClient.from_transport(transport)
            assert client is not None
            assert client.listdir("/") == ["collection", "user"]
            assert "Private" in client.listdir("/user/alice")
        finally:
            transport.close()
        key = data / "sftp_host_ed25519_key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_sftpd_with_a_missing_key_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    done = subprocess.run([*JOIST, "sftpd", "-p", "0", "-i", str(tmp_path / "nokey")],
                          env=cli_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Host key file not found" in done.stderr
    assert not (Path(cli_env["JOIST_DATA_DIR"]) / "sftp_host_ed25519_key").exists()
