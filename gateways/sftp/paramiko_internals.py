"""Every use the SFTP gateway makes of paramiko beyond its public API: here
and nowhere else, each checked by ``check()`` when a server is built.

paramiko's public API serves SFTP through ``SFTPServer``, one request at a
time on the session thread; the gateway's own engine (see ``__init__.py``)
needs three things paramiko does not offer publicly:

``swap_channel_input`` -- ``Channel.in_buffer``
    The transport thread hands each decrypted packet to
    ``channel.in_buffer.feed()``; ``Channel.recv`` reads with
    ``in_buffer.read(nbytes, timeout)`` (``PipeTimeout`` becomes
    ``socket.timeout``; ``RequestInbox.read`` raises it too). The session
    puts its ``RequestInbox`` there to answer light requests on the
    transport thread itself (``inbox.py``: a fifth of each round trip of a
    client walking a tree).

``rekey_in_progress`` -- ``Transport.clear_to_send``
    An ``Event`` paramiko clears while keys are renegotiated (``Channel.send``
    then blocks on it). Answering on the transport thread during a rekey would
    wait for that very thread, so the session asks first.

``use_c_mac_compare`` -- ``paramiko.util.constant_time_bytes_eq``
    ``Packetizer.read_message`` checks the MAC of every received packet with
    ``util.constant_time_bytes_eq``, a pure-Python loop (3 us a packet here,
    against 0.05 us for ``hmac.compare_digest``, the standard library's
    constant-time comparison in C with the same contract: False for unequal
    lengths, time independent of the contents). Why process-wide: paramiko
    looks the function up on its ``util`` module at every packet, so there is
    no narrower place to put it (a Packetizer subclass would copy its longest
    method). It is safe process-wide because the two functions agree on every
    pair of byte strings (the check probes it), paramiko's only other caller
    (``hostkeys``) bound the original at import and keeps it, and the swap is
    made only over paramiko's own function, never over someone else's.
    ``restore_mac_compare`` undoes it.

``buffer_reads`` -- ``Packetizer.read_all``, ``__socket``, ``__remainder``
    ``Packetizer.read_message`` reads each packet in three ``read_all`` calls
    (first block, rest, MAC), and paramiko's ``read_all`` asks the socket for
    exactly the bytes it needs: with the socket's timeout, three ``poll`` +
    ``recv`` pairs a packet, some 14 system calls of the 32 a small file
    costs the server. ``BufferedPacketizer`` (swapped in as the class of each
    transport's packetizer, nothing process-wide) overrides only
    ``read_all``: one ``recv`` of up to ``READ_AHEAD`` bytes, kept for the
    next calls, the timeout, EOF, rekey and keepalive handling as paramiko's.
    Bytes the banner's ``readline`` read past its line (``__remainder``) come
    first. Only the transport thread reads, so the buffer needs no lock.

A paramiko that changes any of these fails ``check()`` (and so the server's
start) with ``ParamikoInternalsError``, rather than misbehaving silently;
``tests/gateways/sftp/test_paramiko_internals.py`` probes each one.
``setup.py`` pins paramiko to the range tested (``TESTED``).
"""

from __future__ import annotations

import errno
import hmac
import logging
import socket
import threading
from typing import Any, Protocol

import paramiko
import paramiko.packet
import paramiko.util
from paramiko.buffered_pipe import PipeTimeout

from joist.core.errors import UnsupportedError

log = logging.getLogger("joist.sftp")

TESTED = ">=5.1,<6"
"""paramiko versions these internals were checked against (as in setup.py)."""

PIPE_METHODS = ("feed", "read", "read_ready", "set_event", "close", "empty", "__len__")
"""What paramiko calls on ``Channel.in_buffer`` (and the session on the one it
replaces), all of ``BufferedPipe``'s interface that a channel uses."""

_PARAMIKO_COMPARE = paramiko.util.constant_time_bytes_eq  # if nobody replaced it before us
_MAC_PROBES = ((b"", b""), (b"a" * 32, b"a" * 32), (b"a" * 32, b"a" * 31 + b"b"),
               (b"abc", b"abcd"), (b"abcd", b"abc"), (b"\x00", b"\x01"))


class ParamikoInternalsError(UnsupportedError):
    """This paramiko is not one the SFTP gateway was built against (a core
    error: ``joist serve``/``sftpd`` print it as one line and exit)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            f"paramiko {paramiko.__version__} changed internals the SFTP gateway relies on "
            f"(tested: paramiko{TESTED}; see gateways/sftp/paramiko_internals.py): "
            + "; ".join(problems))


class ChannelInput(Protocol):
    """What a replacement for ``Channel.in_buffer`` must offer."""

    def feed(self, data: bytes) -> None: ...
    def read(self, nbytes: int, timeout: float | None = None) -> bytes: ...
    def read_ready(self) -> bool: ...
    def set_event(self, event: threading.Event) -> None: ...
    def close(self) -> None: ...
    def __len__(self) -> int: ...


# ---------------------------------------------------------------- the uses
def swap_channel_input(channel: paramiko.Channel, replacement: ChannelInput) -> bytes:
    """Put ``replacement`` where the transport feeds the channel's data, and
    return what the old buffer already held (for the caller to feed on).
    Call it on the transport thread before the client can send data (a
    subsystem handler's ``__init__``), so nothing is fed meanwhile."""
    early = channel.in_buffer
    channel.in_buffer = replacement
    return early.empty() if len(early) else b""


def rekey_in_progress(transport: paramiko.Transport) -> bool:
    """Are keys being (re)negotiated (sending would block until done)?"""
    return not transport.clear_to_send.is_set()


def use_c_mac_compare() -> bool:
    """Check received MACs with ``hmac.compare_digest`` (see the module's
    docstring). Idempotent; leaves a replacement made by someone else alone.
    True when paramiko uses ``hmac.compare_digest``."""
    current = paramiko.util.constant_time_bytes_eq
    if current is hmac.compare_digest:
        return True
    if current is not _PARAMIKO_COMPARE or getattr(current, "__module__", "") != "paramiko.util":
        log.warning("paramiko.util.constant_time_bytes_eq was replaced by %r: left as it is",
                    current)
        return False
    paramiko.util.constant_time_bytes_eq = hmac.compare_digest
    return True


READ_AHEAD = 64 * 1024


class BufferedPacketizer(paramiko.packet.Packetizer):
    """A packetizer whose ``read_all`` reads ahead (see the module's docstring)."""

    _joist_buf = b""
    _joist_pos = 0

    def read_all(self, n: int, check_rekey: bool = False) -> bytes:
        early = self._Packetizer__remainder  # type: ignore[attr-defined]
        if early:
            self._joist_buf = self._joist_buf[self._joist_pos:] + early
            self._joist_pos = 0
            self._Packetizer__remainder = b""
        buf, pos = self._joist_buf, self._joist_pos
        if len(buf) - pos >= n:
            self._joist_pos = pos + n
            return buf[pos:pos + n]
        out = buf[pos:]
        self._joist_buf, self._joist_pos = b"", 0
        sock = self._Packetizer__socket  # type: ignore[attr-defined]
        while len(out) < n:
            timed_out = False
            if self.handshake_timed_out():
                raise EOFError()
            try:
                got = sock.recv(max(n - len(out), READ_AHEAD))
                if not got:
                    raise EOFError()
                out += got
            except TimeoutError:
                timed_out = True
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    timed_out = True
                elif self.closed:
                    raise EOFError() from None
                else:
                    raise
            if timed_out:
                if self.closed:
                    raise EOFError()
                if check_rekey and not out and self.need_rekey():
                    raise paramiko.packet.NeedRekeyException()
                self._check_keepalive()
        if len(out) > n:
            self._joist_buf, self._joist_pos = out, n
            return out[:n]
        return out


def buffer_reads(transport: paramiko.Transport) -> None:
    """Make ``transport`` read its socket ahead (before it starts)."""
    if type(transport.packetizer) is paramiko.packet.Packetizer:
        transport.packetizer.__class__ = BufferedPacketizer


def restore_mac_compare() -> None:
    """Give paramiko its own comparison back (if ours is in place)."""
    if paramiko.util.constant_time_bytes_eq is hmac.compare_digest:
        paramiko.util.constant_time_bytes_eq = _PARAMIKO_COMPARE


# ---------------------------------------------------------------- the check
class _ProbePipe:
    """Records what a channel asks of its input buffer."""

    def __init__(self, timeout: bool = False) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fed = b""
        self.timeout = timeout

    def feed(self, data: bytes) -> None:
        self.calls.append(("feed", (data,)))
        self.fed += data

    def read(self, nbytes: int, timeout: float | None = None) -> bytes:
        self.calls.append(("read", (nbytes, timeout)))
        if self.timeout:
            raise PipeTimeout()
        data, self.fed = self.fed[:nbytes], self.fed[nbytes:]
        return data

    def read_ready(self) -> bool:
        self.calls.append(("read_ready", ()))
        return bool(self.fed)

    def set_event(self, event: threading.Event) -> None:
        self.calls.append(("set_event", (event,)))

    def close(self) -> None:
        self.calls.append(("close", ()))

    def __len__(self) -> int:
        return len(self.fed)


def channel_problems() -> list[str]:
    """A channel still reads its data through a swappable ``in_buffer``."""
    problems: list[str] = []
    channel = paramiko.Channel(0)
    original = getattr(channel, "in_buffer", None)
    missing = [name for name in PIPE_METHODS if not callable(getattr(original, name, None))]
    if original is None or missing:
        return [f"Channel.in_buffer lacks {', '.join(missing) or 'itself'}"]
    probe = _ProbePipe()
    try:
        if swap_channel_input(channel, probe) != b"" or channel.in_buffer is not probe:
            problems.append("Channel.in_buffer cannot be replaced")
        channel._feed(b"probe")  # what the transport thread calls with a packet's data
        if probe.fed != b"probe":
            problems.append("Channel._feed no longer feeds in_buffer")
        channel.settimeout(0.5)
        if channel.recv(3) != b"pro" or ("read", (3, 0.5)) not in probe.calls:
            problems.append("Channel.recv no longer reads in_buffer.read(nbytes, timeout)")
        if not channel.recv_ready() or ("read_ready", ()) not in probe.calls:
            problems.append("Channel.recv_ready no longer asks in_buffer.read_ready")
        channel.in_buffer = _ProbePipe(timeout=True)
        try:
            channel.recv(1)
            problems.append("Channel.recv no longer turns PipeTimeout into a timeout")
        except TimeoutError:
            pass
    except Exception as exc:  # an internal that moved: reported, not raised
        problems.append(f"Channel probe failed: {exc!r}")
    return problems


def transport_problems() -> list[str]:
    """A transport still has a ``clear_to_send`` event that a KEXINIT clears."""
    left, right = socket.socketpair()
    try:
        transport = paramiko.Transport(left)
        event = getattr(transport, "clear_to_send", None)
        if not isinstance(event, threading.Event):
            return ["Transport.clear_to_send is no longer a threading.Event"]
        send_kex_init = getattr(transport, "_send_kex_init", None)
        if send_kex_init is None:
            return ["Transport._send_kex_init is gone (who clears clear_to_send?)"]
        event.set()
        try:
            send_kex_init()  # a KEXINIT written into the socket pair, nothing more
        except Exception as exc:
            return [f"Transport._send_kex_init probe failed: {exc!r}"]
        if not rekey_in_progress(transport):
            return ["starting a key exchange no longer clears Transport.clear_to_send"]
        return []
    finally:
        left.close()
        right.close()


def mac_compare_problems() -> list[str]:
    """The packetizer still looks the comparison up on ``paramiko.util`` at
    every packet, and ``hmac.compare_digest`` agrees with paramiko's own."""
    problems: list[str] = []
    names = paramiko.packet.Packetizer.read_message.__code__.co_names
    if getattr(paramiko.packet, "util", None) is not paramiko.util \
            or "constant_time_bytes_eq" not in names \
            or "constant_time_bytes_eq" in vars(paramiko.packet):
        problems.append("Packetizer.read_message no longer calls "
                        "paramiko.util.constant_time_bytes_eq")
    for a, b in _MAC_PROBES:
        if bool(_PARAMIKO_COMPARE(a, b)) != hmac.compare_digest(a, b):
            problems.append(f"paramiko's constant_time_bytes_eq{(a, b)!r} differs from "
                            f"hmac.compare_digest")
            break
    return problems


def packetizer_problems() -> list[str]:
    """A packetizer still reads through ``read_all`` from ``__socket``, after
    what ``readline`` left in ``__remainder``."""
    names = paramiko.packet.Packetizer.read_message.__code__.co_names
    if "read_all" not in names:
        return ["Packetizer.read_message no longer reads through read_all"]
    left, right = socket.socketpair()
    try:
        packetizer = paramiko.packet.Packetizer(left)
        for name in ("_Packetizer__socket", "_Packetizer__remainder"):
            if not hasattr(packetizer, name):
                return [f"Packetizer.{name.removeprefix('_Packetizer')} is gone"]
        for name in ("handshake_timed_out", "need_rekey", "_check_keepalive"):
            if not callable(getattr(packetizer, name, None)):
                return [f"Packetizer.{name} is gone"]
        packetizer.__class__ = BufferedPacketizer
        left.settimeout(2)
        right.sendall(b"SSH-2.0-probe\r\nabcdefgh")
        got = (packetizer.readline(2), packetizer.read_all(3))
        right.sendall(b"ijk")
        got += (packetizer.read_all(5), packetizer.read_all(3))
        if got != ("SSH-2.0-probe", b"abc", b"defgh", b"ijk"):
            return [f"a read-ahead packetizer read {got!r}"]
        return []
    except Exception as exc:  # an internal that moved: reported, not raised
        return [f"Packetizer probe failed: {exc!r}"]
    finally:
        left.close()
        right.close()


def check() -> None:
    """Raise ``ParamikoInternalsError`` naming every internal this paramiko
    changed; called when an SFTP server is built."""
    problems = channel_problems() + transport_problems() + mac_compare_problems() \
        + packetizer_problems()
    if problems:
        raise ParamikoInternalsError(problems)


__all__ = ["PIPE_METHODS", "READ_AHEAD", "TESTED", "BufferedPacketizer", "ChannelInput",
           "ParamikoInternalsError", "PipeTimeout", "buffer_reads", "check", "rekey_in_progress",
           "restore_mac_compare", "swap_channel_input", "use_c_mac_compare"]
