"""The fence around paramiko's internals (gateways/sftp/paramiko_internals.py):
each internal probed on the installed paramiko, each probe shown to fail when
the internal changes, and a server that refuses to start on such a paramiko."""

from __future__ import annotations

import hmac
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko
import paramiko.packet
import paramiko.util
import pytest
from packaging.specifiers import SpecifierSet

from joist.gateways.sftp import paramiko_internals as internals
from joist.gateways.sftp.inbox import RequestInbox
from tests import world as w
from tests.gateways.sftp.conftest import SftpSite, wait_for

ROOT = Path(__file__).resolve().parents[3]


def test_the_installed_paramiko_passes_the_check() -> None:
    internals.check()
    assert paramiko.__version__ in SpecifierSet(internals.TESTED)


def test_setup_pins_paramiko_to_the_tested_range() -> None:
    pins = re.findall(r'"paramiko([^"]*)"', (ROOT / "setup.py").read_text())
    assert pins == [internals.TESTED]


def test_request_inbox_offers_what_a_channel_calls() -> None:
    inbox = RequestInbox(lambda data: False, lambda: None)
    missing = [name for name in internals.PIPE_METHODS
               if name != "empty" and not callable(getattr(inbox, name, None))]
    assert not missing


@pytest.mark.parametrize(("target", "name", "replacement", "expected"), [
    (paramiko.Channel, "_feed", lambda self, m: None, "Channel._feed"),
    (paramiko.Channel, "recv", lambda self, n: b"pro", "Channel.recv no longer reads"),
    (paramiko.Channel, "recv_ready", lambda self: True, "Channel.recv_ready"),
    (paramiko.Transport, "_send_kex_init", lambda self: None, "clear_to_send"),
    (paramiko.packet.Packetizer, "read_message", lambda self: None, "read_all"),
])
def test_a_changed_internal_fails_the_check_loudly(monkeypatch: pytest.MonkeyPatch, target: type,
                                                    name: str, replacement: Callable[..., Any],
                                                    expected: str) -> None:
    monkeypatch.setattr(target, name, replacement)
    with pytest.raises(internals.ParamikoInternalsError) as caught:
        internals.check()
    assert expected in str(caught.value)
    assert f"paramiko {paramiko.__version__}" in str(caught.value)


def test_a_packetizer_that_binds_the_comparison_fails_the_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # ``from paramiko.util import constant_time_bytes_eq`` in packet.py would
    # make the replacement a silent no-op.
    monkeypatch.setattr(paramiko.packet, "constant_time_bytes_eq",
                        paramiko.util.constant_time_bytes_eq, raising=False)
    assert internals.mac_compare_problems()
    with pytest.raises(internals.ParamikoInternalsError, match="constant_time_bytes_eq"):
        internals.check()


def test_a_server_refuses_to_start_on_a_changed_paramiko(monkeypatch: pytest.MonkeyPatch,
                                                         site: SftpSite) -> None:
    from tests.gateways.sftp.conftest import start_server
    monkeypatch.setattr(paramiko.Channel, "_feed", lambda self, m: None)
    with pytest.raises(internals.ParamikoInternalsError, match=r"Channel\._feed"):
        start_server(site.app)


def test_mac_compare_swap_is_scoped_to_paramikos_own_function(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paramiko.util, "constant_time_bytes_eq",
                        paramiko.util.constant_time_bytes_eq)  # restored after the test
    internals.restore_mac_compare()
    own = paramiko.util.constant_time_bytes_eq
    assert own is not hmac.compare_digest and own.__module__ == "paramiko.util"
    assert internals.use_c_mac_compare()
    assert paramiko.util.constant_time_bytes_eq is hmac.compare_digest
    assert internals.use_c_mac_compare()  # idempotent
    internals.restore_mac_compare()
    assert paramiko.util.constant_time_bytes_eq is own

    def someone_elses(a: bytes, b: bytes) -> bool:
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(paramiko.util, "constant_time_bytes_eq", someone_elses)
    assert not internals.use_c_mac_compare()
    assert paramiko.util.constant_time_bytes_eq is someone_elses  # left alone


def test_the_c_comparison_agrees_with_paramikos() -> None:
    own = internals._PARAMIKO_COMPARE
    pairs = [(b"", b""), (b"mac" * 11, b"mac" * 11), (b"mac" * 11, b"mac" * 10 + b"maC"),
             (b"abc", b"ab"), (bytes(range(256)), bytes(range(256)))]
    assert [bool(own(a, b)) for a, b in pairs] == [hmac.compare_digest(a, b) for a, b in pairs]


def test_every_received_mac_goes_through_paramiko_util(monkeypatch: pytest.MonkeyPatch,
                                                       site: SftpSite) -> None:
    """The behaviour the swap relies on: a live session's packets are checked
    through ``paramiko.util.constant_time_bytes_eq``, looked up per packet."""
    calls = []

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(len(a))
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(paramiko.util, "constant_time_bytes_eq", counting)
    client = site.client("alice")
    transport = client.get_channel().get_transport()
    assert "gcm" not in transport.remote_cipher  # a MAC'd cipher (paramiko's default)
    before = len(calls)
    client.listdir("/")
    assert len(calls) > before


def test_live_session_uses_the_swapped_input_and_sees_no_rekey(site: SftpSite) -> None:
    client = site.client("alice")
    assert client.listdir("/")
    server = site.server
    assert wait_for(lambda: len(server._sessions) == 1)
    (session,) = server._sessions
    assert isinstance(session.channel.in_buffer, RequestInbox)
    assert not internals.rekey_in_progress(session.transport)


def test_the_cli_reports_a_changed_paramiko_in_one_line(tmp_path: Path) -> None:
    # In a subprocess: the CLI sets up logging and signal handlers.
    script = ("import paramiko\n"
              "paramiko.Channel._feed = lambda self, m: None\n"
              "from joist.admin.cli import main\n"
              f"raise SystemExit(main(['--data-dir', {str(tmp_path / 'data')!r}, "
              "'sftpd', '-p', '0']))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1
    assert last.startswith("joist: error: paramiko ") and "Channel._feed" in last
    assert "Traceback" not in done.stderr


class CountingSocket:
    """A socket that counts its ``recv`` calls."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.recvs = 0

    def recv(self, n: int) -> bytes:
        self.recvs += 1
        return self.sock.recv(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def _buffered(sock: Any) -> paramiko.packet.Packetizer:
    packetizer = paramiko.packet.Packetizer(sock)
    packetizer.__class__ = internals.BufferedPacketizer
    return packetizer


def test_buffered_reads_serve_several_packets_from_one_recv() -> None:
    left, right = socket.socketpair()
    try:
        left.settimeout(5)
        counting = CountingSocket(left)
        packetizer = _buffered(counting)
        stream = bytes(range(256)) * 3
        right.sendall(stream)
        sizes = [16, 40, 32, 16, 200, 32, 16, 416]     # sum: 768, three "packets"
        pieces = [packetizer.read_all(n) for n in sizes]
        assert b"".join(pieces) == stream and [len(p) for p in pieces] == sizes
        assert counting.recvs <= 2          # paramiko's own read_all: one or more each
        right.sendall(b"xyz")               # a read larger than what is buffered waits
        right.sendall(b"tail")
        assert packetizer.read_all(7) == b"xyztail"
        right.close()
        with pytest.raises(EOFError):
            packetizer.read_all(1)
    finally:
        left.close()
        right.close()


def test_buffered_reads_raise_for_a_rekey_only_between_packets() -> None:
    left, right = socket.socketpair()
    try:
        left.settimeout(0.05)               # paramiko's transports poll with a timeout
        packetizer = _buffered(left)
        right.sendall(b"abcdef")
        assert packetizer.read_all(2, check_rekey=True) == b"ab"
        packetizer._trigger_rekey()         # what the byte and packet counters do
        assert packetizer.need_rekey()
        # Bytes of the next packet are buffered: it is read, no rekey in its middle.
        assert packetizer.read_all(4, check_rekey=True) == b"cdef"
        with pytest.raises(paramiko.packet.NeedRekeyException):
            packetizer.read_all(4, check_rekey=True)   # nothing read yet: rekey first
    finally:
        left.close()
        right.close()


def test_live_transports_read_ahead_and_survive_a_rekey(site: SftpSite) -> None:
    client = site.client("alice")
    assert client.listdir("/")
    server = site.server
    assert wait_for(lambda: len(server._sessions) == 1)
    (session,) = server._sessions
    assert type(session.transport.packetizer) is internals.BufferedPacketizer
    transport = client.get_channel().get_transport()
    transport.renegotiate_keys()            # a key exchange through the buffered reads
    assert sorted(client.listdir("/")) == ["collection", "user"]
    with client.open("/user/alice/Private/data/a.txt") as handle:
        assert handle.read() == w.A_TXT
