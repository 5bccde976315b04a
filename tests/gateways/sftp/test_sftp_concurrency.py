"""Many sessions at once; a stalled client; a client that vanishes."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import paramiko
import pytest

from joist.gateways.sftp import SftpServer, SftpTuning
from tests import world as w
from tests.gateways.sftp.conftest import SftpSite, start_server, wait_for
from tests.gateways.sftp.sftpfs import CMD, RawSftp, connect
from tests.s3env import local_blobs_only
from tests.world import PASSWORD, upload_bytes

BIG = os.urandom(3 << 20)
BIG_PATH = "/user/alice/Private/data/big.bin"
SESSIONS, HANDLES = 32, 3


@pytest.fixture
def big(site: SftpSite) -> bytes:
    upload_bytes(site.app, site.world.principal("alice"), "folder", site.world.docs["data"],
                 "big.bin", BIG)
    return BIG


def _open_blobs(site: SftpSite) -> list[str]:
    """Descriptors of this process open on the assetstore's blobs."""
    root = str(site.app.settings.assetstore_root)
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith(root):
            found.append(target)
    return found


def test_many_sessions_with_several_handles(site: SftpSite, big: bytes) -> None:
    chunk = 64 * 1024
    opened = threading.Barrier(SESSIONS + 1, timeout=60)
    done = threading.Event()

    def session(n: int) -> list[bytes]:
        client = site.client("alice")
        files = [client.open(BIG_PATH, "rb") for _ in range(HANDLES)]
        opened.wait()
        got = []
        for k, f in enumerate(files):
            offset = ((n * HANDLES + k) * chunk) % (len(big) - chunk)
            f.seek(offset)
            got.append(f.read(chunk))
        done.wait(60)  # keep everything open until all sessions were counted
        for f in files:
            f.close()
        return got

    with ThreadPoolExecutor(SESSIONS) as pool:
        futures = [pool.submit(session, n) for n in range(SESSIONS)]
        opened.wait()
        stats = site.server.stats()
        done.set()
        results = [f.result(timeout=120) for f in futures]
    assert stats["sessions"] >= SESSIONS and stats["handles"] >= SESSIONS * HANDLES
    for n, got in enumerate(results):
        for k, data in enumerate(got):
            offset = ((n * HANDLES + k) * chunk) % (len(big) - chunk)
            assert data == big[offset:offset + chunk]


@pytest.fixture
def impatient(site: SftpSite) -> Iterator[SftpServer]:
    """A server that gives a client 1 s to open its window."""
    server = start_server(site.app, tuning=SftpTuning(stall_timeout=1.0, housekeeping=0.05,
                                                      keepalive=0))
    try:
        yield server
    finally:
        server.stop()


def test_a_stalled_client_holds_up_nobody(site: SftpSite, big: bytes,
                                          impatient: SftpServer) -> None:
    stalled_transport = connect(impatient.address, "alice", PASSWORD)
    try:
        raw = RawSftp(stalled_transport)
        handle = raw.handle("open", BIG_PATH, 1, 0)
        # Ask for the whole file and never read the answers: the client's
        # 2 MiB window fills and the server's replies must wait.
        for offset in range(0, len(big), 255 * 1024):
            raw.send("read", handle, ("q", offset), 255 * 1024)
        others = connect(impatient.address, "carol", PASSWORD)
        try:
            client = paramiko.SFTPClient.from_transport(others)
            assert client is not None
            for _ in range(3):
                with client.open("/collection/shared/docs/report.txt") as f:
                    assert f.read() == w.REPORT
            # The stalled session is given up after stall_timeout; the other stays.
            assert wait_for(lambda: impatient.stats()["sessions"] == 1)
            with client.open(BIG_PATH.replace("alice/Private/data", "alice/Public")
                             .replace("big.bin", "readme.txt")) as f:
                assert f.read() == w.README
        finally:
            others.close()
    finally:
        stalled_transport.close()


@local_blobs_only
def test_a_vanished_client_releases_its_session(site: SftpSite, big: bytes) -> None:
    transport = site.transport("alice")
    raw = RawSftp(transport)
    handles = [raw.handle("open", BIG_PATH, 1, 0) for _ in range(4)]
    raw.handle("opendir", "/user/alice/Private/data")
    raw.send("read", handles[0], ("q", 0), 255 * 1024)
    reply = raw.reply()
    assert reply.kind == CMD["data"]
    for handle in handles:  # mid-transfer: requests in flight
        raw.send("read", handle, ("q", 1 << 20), 255 * 1024)
    assert site.server.stats()["handles"] == 5
    assert len(_open_blobs(site)) == 4
    # Vanish: no SSH disconnect, no channel close, just the TCP connection gone.
    transport.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
    assert wait_for(lambda: site.server.stats() == {"connections": 0, "sessions": 0,
                                                    "handles": 0})
    transport.close()
    assert _open_blobs(site) == []
    with site.client("carol").open("/collection/shared/docs/report.txt") as f:
        assert f.read() == w.REPORT


def test_stop_ends_every_session(site: SftpSite) -> None:
    server = start_server(site.app)
    transports = [connect(server.address, login, PASSWORD) for login in ("alice", "carol")]
    try:
        raws = [RawSftp(t) for t in transports]
        raws[0].handle("open", "/user/alice/Public/readme.txt", 1, 0)
        assert server.stats()["sessions"] == 2
        server.stop()
        assert server.stats() == {"connections": 0, "sessions": 0, "handles": 0}
        with pytest.raises((EOFError, OSError)):
            raws[1].call("stat", "/")
    finally:
        for t in transports:
            t.close()
