"""Read-ahead of file handles, and the inbox that frames requests."""

from __future__ import annotations

import os
import struct
import threading

import pytest

from joist.core.hierarchy import Node
from joist.gateways.sftp.handles import FileHandle
from joist.gateways.sftp.inbox import RequestInbox, complete_prefix
from tests.gateways.sftp.conftest import SftpSite

DATA = os.urandom(10 << 20)
K = 1024


class RemoteReader:
    """Stands in for a core ``Reader`` over a remote blob (S3, GridFS: no such
    assetstore runs in these tests), where each call is a round trip. Counts
    the calls."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.node = Node("/f", "f", "item", False, size=len(data))
        self.calls: list[tuple[int, int]] = []

    @property
    def size(self) -> int:
        return len(self.data)

    def read_at(self, offset: int, size: int) -> bytes:
        self.calls.append((offset, size))
        return self.data[offset:offset + size]

    def close(self) -> None:
        pass


def test_read_ahead_follows_the_queued_run() -> None:
    reader = RemoteReader(DATA)
    handle = FileHandle("/f", reader)  # type: ignore[arg-type]
    # Eight contiguous 32 KiB READs queued: one fetch serves them all.
    run_end = 8 * 32 * K
    for n in range(8):
        got = handle.read(n * 32 * K, 32 * K, run_end, 4 << 20)
        assert bytes(got) == DATA[n * 32 * K:(n + 1) * 32 * K]
    assert reader.calls == [(0, run_end)]
    # The pipeline refills one READ at a time: a sequential reader is read
    # ahead as far as its widest run so far.
    got = handle.read(run_end, 32 * K, run_end + 32 * K, 4 << 20)
    assert bytes(got) == DATA[run_end:run_end + 32 * K]
    assert reader.calls[-1] == (run_end, 8 * 32 * K)
    # Random access fetches what is queued, never more than the limit.
    handle.read(5 << 20, 32 * K, (5 << 20) + 32 * K, 4 << 20)
    assert reader.calls[-1] == (5 << 20, 32 * K)
    handle.read(0, 32 * K, 9 << 20, 1 << 20)
    assert reader.calls[-1] == (0, 1 << 20)
    assert bytes(handle.read(len(DATA), 10, len(DATA) + 10, 4 << 20)) == b""
    assert bytes(handle.read(len(DATA) - 5, 10, len(DATA) + 5, 4 << 20)) == DATA[-5:]


def test_local_blobs(site: SftpSite) -> None:
    view = site.app.hierarchy.view(site.world.principal("alice"))
    handle = FileHandle("/x", view.open_read("/collection/shared/docs/report.txt"))
    try:
        with view.open_read("/collection/shared/docs/report.txt") as other:
            for offset in (100, 5000, 16900):  # served from one fetch, then a refill
                assert bytes(handle.read(offset, 50, 10_000, 8192)) == \
                    other.read_at(offset, 50)
    finally:
        handle.close()


def _request(kind: int, rid: int, body: bytes = b"") -> bytes:
    payload = bytes([kind]) + struct.pack(">I", rid) + body
    return struct.pack(">I", len(payload)) + payload


def test_complete_prefix() -> None:
    one, two = _request(17, 1, b"abc"), _request(17, 2)
    assert complete_prefix(one + two) == len(one + two)
    assert complete_prefix(one + two[:5]) == len(one)
    assert complete_prefix(one + two, limit=len(one) + 1) == len(one)
    assert complete_prefix(one, limit=3) == len(one)  # at least one request
    assert complete_prefix(b"\0\0") == 0
    broken = struct.pack(">I", 1 << 30) + b"x"
    assert complete_prefix(one + broken) == len(one + broken)  # the reader meets it


def test_inbox_answers_light_batches_inline_and_queues_the_rest() -> None:
    answered: list[tuple[str, bytes]] = []
    inbox: RequestInbox

    def answer_inline() -> None:
        answered.append(("inline", inbox.read(1 << 20)))

    inbox = RequestInbox(lambda data: data[4] == 17, answer_inline)
    stat, read = _request(17, 1), _request(5, 2)
    inbox.feed(stat[:3])
    assert answered == [] and len(inbox) == 3   # not a whole request yet
    inbox.feed(stat[3:])
    assert answered == [("inline", stat)] and len(inbox) == 0
    inbox.feed(read)                              # not light: left for the thread
    assert len(answered) == 1 and inbox.read_ready()
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(inbox.read(1 << 20, 10)))
    reader.start()
    reader.join(10)
    assert got == [read]
    inbox.feed(stat)                              # the thread has not released yet
    assert len(answered) == 1 and len(inbox) == len(stat)
    inbox.release()
    assert inbox.read(1 << 20, 10) == stat
    inbox.release()
    inbox.close()
    assert inbox.read(1 << 20, 10) == b""


def test_inbox_read_times_out() -> None:
    from paramiko.buffered_pipe import PipeTimeout
    inbox = RequestInbox(lambda data: False, lambda: None)
    with pytest.raises(PipeTimeout):
        inbox.read(100, 0.05)


def test_inbox_after_shutdown_takes_nothing() -> None:
    answered: list[bytes] = []
    inbox = RequestInbox(lambda data: True, lambda: answered.append(b"x"))
    inbox.shutdown()
    inbox.feed(_request(17, 1))
    assert answered == [] and len(inbox) == 0
    assert inbox.read(100, 1) == b""


def test_inbox_scans_each_byte_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client may queue thousands of requests while a batch is answered:
    framing them must not rescan the queue on every packet."""
    import joist.gateways.sftp.inbox as inbox_module
    scanned: list[int] = []
    real = inbox_module.complete_prefix

    def counting(buf: bytes | bytearray, limit: int | None = None, start: int = 0) -> int:
        end = real(buf, limit, start)
        scanned.append(end - start)
        return end

    monkeypatch.setattr(inbox_module, "complete_prefix", counting)
    inbox = RequestInbox(lambda data: False, lambda: None)
    inbox.feed(_request(17, 0))
    assert inbox.read(1 << 20, 1) == _request(17, 0)  # the session thread is now busy
    queued = b"".join(_request(5, n, b"h" * 8) for n in range(1, 5001))
    for pos in range(0, len(queued), 333):  # packets cut anywhere
        inbox.feed(queued[pos:pos + 333])
    assert sum(scanned) <= 2 * len(queued)
    inbox.release()
    got = inbox.read(1 << 20, 1)
    assert got == queued
