"""SFTP gateway benchmark: Joist against OpenSSH's ``internal-sftp``, side by side.

Builds an embedded store (SQLite + filesystem assetstore) holding a 1 GiB file
and a tree of 2,000 files of 4 KiB (20 folders of 100), writes the same bytes
to a plain directory, then starts, on 127.0.0.1:

* ``joist sftpd -p 0`` on that store (a subprocess: its CPU time is its own);
* ``/usr/sbin/sshd -D`` with ``Subsystem sftp internal-sftp`` on the plain
  directory (needs root and the ``openssh-server`` package, installed by hand:
  it is not a test dependency);
* ``rclone serve sftp`` on the plain directory, the peer (``apt-get install
  rclone``; skipped, saying so, when missing).

and times the OpenSSH ``sftp`` client (public-key login, batch mode) doing
``get`` of the 1 GiB file and ``get -r`` of the tree from each, with the
client's defaults and with ``-c aes128-gcm@openssh.com -R 64 -B 261120``.
Each figure is the median of ``--runs`` runs, the servers taking turns so a
busy moment of the machine hits all of them; ratios are Joist / OpenSSH
(1.0 = as fast). Server CPU seconds are per run (median), read from
``/proc`` (sshd's include its reaped session children). ``--bare`` adds the
issue's calibration point: paramiko's own ``SFTPServer`` over the plain files.

With the client's defaults OpenSSH's client picks chacha20-poly1305 against
sshd, and aes128-ctr with hmac-sha2-256-etm against paramiko (which has no
chacha20): the first column compares the two servers as a user meets them.

Targets: 1 GiB download >= 0.55 of OpenSSH in both settings; ``get -r`` of
the tree >= 0.9 of OpenSSH's files per second; every figure >= 1.0 of rclone's.

Run by hand, as root:
    .venv/bin/python benchmarks/sftp_bench.py [--runs 5] [--bare] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rclone_peer

from joist.admin.bootstrap import build_app
from joist.core.acl import SYSTEM, Principal
from joist.core.settings import load_settings

GIB = 1 << 30
SMALL_DIRS, SMALL_PER_DIR, SMALL_SIZE = 20, 100, 4096
SETTINGS = {"defaults": [], "aes128-gcm -R 64 -B 261120":
            ["-c", "aes128-gcm@openssh.com", "-R", "64", "-B", "261120"]}
TARGETS = {"1 GiB get": 0.55, "2,000 x 4 KiB get -r": 0.9}
PEER_TARGET = 1.0  # Joist / rclone, every figure
TICK = os.sysconf("SC_CLK_TCK")
SSHD = "/usr/sbin/sshd"


class _Stream(io.RawIOBase):
    """``size`` bytes of repeated random blocks, without 1 GiB in memory."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.block = os.urandom(1 << 20)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left, len(self.block))
        buffer[:n] = self.block[:n]
        self.left -= n
        return n


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def _cpu(pid: int) -> float:
    """User+system seconds of ``pid`` and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICK


def _children(pid: int) -> list[str]:
    found: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += (task / "children").read_text().split()
    return found


# ------------------------------------------------------------------ data
def build_data(root: Path, pubkey: str) -> None:
    plain = root / "plain"
    (plain / "small").mkdir(parents=True)
    stream = _Stream(GIB)
    with open(plain / "big.bin", "wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
    app = build_app(load_settings(env={}, search=False, overrides={
        "data_dir": str(root / "joist"), "security.bcrypt_rounds": 4,
        "assetstore.reserve_mb": 0}), env={})
    try:
        svc = app.services
        user = svc.users.create(SYSTEM, login="bench", email="bench@example.org",
                                first_name="Bench", last_name="Mark",
                                password="bench password 1")
        svc.auth.ssh_keys.add(user, pubkey)
        me = Principal.from_user(user)
        private = svc.folders.list(me, "user", user["_id"], name="Private")[0][0]

        def upload(parent: dict[str, Any], name: str, src: Path) -> None:
            size = src.stat().st_size
            step = svc.uploads.begin(me, "folder", parent["_id"], name, size)
            if step.upload is not None:
                with open(src, "rb") as data:
                    svc.uploads.write(me, step.upload["_id"], 0, data, size)

        upload(private, "big.bin", plain / "big.bin")
        small = svc.folders.create(me, "folder", private["_id"], "small")
        for d in range(SMALL_DIRS):
            (plain / "small" / f"d{d:02}").mkdir()
            folder = svc.folders.create(me, "folder", small["_id"], f"d{d:02}")
            for f in range(SMALL_PER_DIR):
                src = plain / "small" / f"d{d:02}" / f"f{f:03}.bin"
                src.write_bytes(os.urandom(SMALL_SIZE))
                upload(folder, src.name, src)
    finally:
        app.close()


# ------------------------------------------------------------------ servers
@dataclass
class Target:
    name: str
    pid: int
    port: int
    user: str
    big: str
    small: str


@contextmanager
def joist_server(root: Path) -> Iterator[Target]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOIST_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "joist.admin.cli", "--data-dir", str(root / "joist"),
         "--set", "logging.level=warning", "sftpd", "-p", "0"],
        stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        port = int(line.strip().rsplit(":", 1)[1])
        yield Target("Joist", proc.pid, port, "bench", "/user/bench/Private/big.bin",
                     "/user/bench/Private/small")
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def openssh_server(root: Path, pubkey: str) -> Iterator[Target]:
    conf = root / "sshd"
    conf.mkdir(exist_ok=True)
    if not (conf / "host_key").exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(conf / "host_key")], check=True)
    (conf / "authorized_keys").write_text(pubkey + "\n")
    port = _free_port()
    (conf / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {conf}/host_key
PidFile none
AuthorizedKeysFile {conf}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
LogLevel ERROR
""")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    log = open(conf / "sshd.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(conf / "sshd_config")],
                            stderr=log)
    try:
        _wait_port(port, time.monotonic() + 10)
        plain = root / "plain"
        yield Target("OpenSSH", proc.pid, port, getpass.getuser(), str(plain / "big.bin"),
                     str(plain / "small"))
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


BARE_SERVER = r"""
import os, socket, sys, threading
import paramiko
from paramiko import SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface
ROOT, KEY = sys.argv[1], paramiko.Ed25519Key.from_private_key_file(sys.argv[2])

class Handle(SFTPHandle):
    def stat(self):
        return SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))

class Files(SFTPServerInterface):
    def _path(self, path):
        return os.path.join(ROOT, os.path.normpath("/" + path).lstrip("/"))
    def list_folder(self, path):
        out = []
        for name in os.listdir(self._path(path)):
            attr = SFTPAttributes.from_stat(os.stat(os.path.join(self._path(path), name)))
            attr.filename = name
            out.append(attr)
        return out
    def stat(self, path):
        return SFTPAttributes.from_stat(os.stat(self._path(path)))
    lstat = stat
    def open(self, path, flags, attr):
        handle = Handle(flags)
        handle.filename, handle.readfile = path, open(self._path(path), "rb")
        return handle
    def canonicalize(self, path):
        return os.path.normpath("/" + path)

class Anyone(paramiko.ServerInterface):
    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL
    def get_allowed_auths(self, username):
        return "publickey"
    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED

listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
while True:
    sock, _ = listener.accept()
    transport = paramiko.Transport(sock)
    transport.add_server_key(KEY)
    transport.set_subsystem_handler("sftp", SFTPServer, Files)
    transport.start_server(event=threading.Event(), server=Anyone())
"""


@contextmanager
def rclone_server(root: Path) -> Iterator[Target]:
    """The peer: ``rclone serve sftp`` over the plain files, with the client's key."""
    keys = root / "sshd" / "authorized_keys"  # written by openssh_server
    with rclone_peer.serve_sftp(root / "plain", root, keys) as (pid, port):
        yield Target("rclone", pid, port, "bench", "/big.bin", "/small")


@contextmanager
def bare_paramiko_server(root: Path) -> Iterator[Target]:
    """The issue's calibration: paramiko's own SFTPServer over the plain files."""
    key = root / "sshd" / "bare_host_key"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
    proc = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(root / "plain"), str(key)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield Target("paramiko", proc.pid, port, "bench", "/big.bin", "/small")
    finally:
        proc.terminate()
        proc.wait(30)


# ------------------------------------------------------------------ runs
def sftp(target: Target, key: Path, extra: list[str], command: str) -> float:
    """Seconds for one batch-mode ``sftp`` run of ``command``."""
    start = time.perf_counter()
    subprocess.run(
        ["sftp", "-q", "-b", "-", "-P", str(target.port), "-i", str(key),
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", *extra,
         f"{target.user}@127.0.0.1"], input=command + "\n", text=True, check=True,
        stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run_once(target: Target, key: Path, extra: list[str], command: str,
             out: Path) -> tuple[float, float]:
    """(seconds, server CPU seconds) of one run."""
    before = _cpu(target.pid)
    seconds = sftp(target, key, extra, command)
    deadline = time.monotonic() + 10
    while target.name == "OpenSSH" and _children(target.pid) and \
            time.monotonic() < deadline:
        time.sleep(0.01)  # sshd's session child must be reaped to be counted
    cpu = _cpu(target.pid) - before
    if out.is_dir():
        shutil.rmtree(out)
    else:
        out.unlink(missing_ok=True)
    return seconds, cpu


def measure(targets: tuple[Target, ...], key: Path, extra: list[str], command: str,
            which: str, out: Path, runs: int) -> dict[str, tuple[float, float]]:
    """Per target: (median seconds, median server CPU seconds). Runs alternate
    between the servers, so a busy moment of the machine hits both."""
    samples: dict[str, list[tuple[float, float]]] = {t.name: [] for t in targets}
    for _ in range(runs):
        for target in targets:
            remote = getattr(target, which)  # the same bytes, at each server's path
            samples[target.name].append(
                run_once(target, key, extra, command.format(path=remote), out))
    return {name: (statistics.median(s for s, _ in runs_),
                   statistics.median(c for _, c in runs_))
            for name, runs_ in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", help="work directory (default: a temporary one)")
    parser.add_argument("--only", choices=["big", "small"], help="run one case only")
    parser.add_argument("--bare", action="store_true",
                        help="also time a bare paramiko SFTPServer over the plain files "
                             "(the issue's calibration point)")
    parser.add_argument("--keep", metavar="DIR",
                        help="build the data in DIR once and reuse it on later runs")
    args = parser.parse_args()
    if not os.path.exists(SSHD):
        print("openssh-server is not installed (apt-get install openssh-server)")
        return 2
    if args.keep:
        root = Path(args.keep)
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="joist-sftpbench-", dir=args.dir))
    scratch = Path(tempfile.mkdtemp(prefix="joist-sftpbench-", dir="/dev/shm"))
    try:
        key = root / "client_key"
        if not (root / "built").exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                           check=True)
            started = time.perf_counter()
            build_data(root, (root / "client_key.pub").read_text().strip())
            (root / "built").touch()
            print(f"data built in {time.perf_counter() - started:.1f} s", flush=True)
        pubkey = (root / "client_key.pub").read_text().strip()
        rows = []
        with contextlib.ExitStack() as stack:
            ssh = stack.enter_context(openssh_server(root, pubkey))
            joist = stack.enter_context(joist_server(root))
            targets = (ssh, joist)
            if rclone_peer.available():
                targets += (stack.enter_context(rclone_server(root)),)
                print(f"peer: {rclone_peer.version()}", flush=True)
            else:
                print("rclone is not installed: no rclone column (apt-get install rclone)")
            if args.bare:
                targets += (stack.enter_context(bare_paramiko_server(root)),)
            for setting, extra in SETTINGS.items():
                if args.only != "small":
                    out = scratch / "big.bin"
                    res = measure(targets, key, extra, f"get {{path}} {out}", "big", out,
                                  args.runs)
                    rows.append(("1 GiB get", setting, "MB/s",
                                 {n: (GIB / 1e6 / s, c) for n, (s, c) in res.items()}))
                    _print(rows[-1])
                if args.only != "big":
                    out = scratch / "small"
                    files = SMALL_DIRS * SMALL_PER_DIR
                    res = measure(targets, key, extra, f"get -r {{path}} {out}", "small",
                                  out, args.runs)
                    rows.append(("2,000 x 4 KiB get -r", setting, "files/s",
                                 {n: (files / s, c) for n, (s, c) in res.items()}))
                    _print(rows[-1])
        print()
        print(f"{'case':22} {'client setting':28} {'OpenSSH':>14} {'Joist':>14} "
              f"{'ratio':>6} {'target':>6}  server CPU s (OpenSSH / Joist)")
        for case, setting, unit, res in rows:
            ssh_rate, ssh_cpu = res["OpenSSH"]
            joist_rate, joist_cpu = res["Joist"]
            ratio = joist_rate / ssh_rate
            verdict = "ok" if ratio >= TARGETS[case] else "MISSED"
            bare = ""
            if "rclone" in res:
                peer = joist_rate / res["rclone"][0]
                bare += (f"  Joist/rclone {peer:.2f} (>= {PEER_TARGET}: "
                         f"{'ok' if peer >= PEER_TARGET else 'MISSED'}; rclone CPU "
                         f"{res['rclone'][1]:.2f} s)")
            if "paramiko" in res:
                bare += f"  (bare paramiko: {res['paramiko'][0] / ssh_rate:.2f})"
            print(f"{case:22} {setting:28} {ssh_rate:8.1f} {unit:5} {joist_rate:8.1f} "
                  f"{unit:5} {ratio:6.2f} {TARGETS[case]:6.2f}  {ssh_cpu:5.2f} / "
                  f"{joist_cpu:5.2f}  {verdict}{bare}")
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def _print(row: tuple[str, str, str, dict[str, tuple[float, float]]]) -> None:
    case, setting, unit, res = row
    print(f"{case} [{setting}]: " + ", ".join(
        f"{name} {rate:.1f} {unit} (server CPU {cpu:.2f} s)"
        for name, (rate, cpu) in res.items()), flush=True)


if __name__ == "__main__":
    sys.exit(main())
