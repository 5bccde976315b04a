"""One SFTP session over one channel: answers batches of requests.

A batch is whatever complete requests the client has sent (a pipelining
client has many queued). Light batches are answered on paramiko's transport
thread as they arrive (see ``inbox.py``); the rest by the session's own
thread. Replies go out in runs of ``SftpTuning.send_batch`` bytes, so channel
packets leave full rather than one short packet per reply. READs are served
from the open handle with a read-ahead sized to the run of contiguous READs
queued on it. A session ends when the client closes, the transport dies, or a
reply waits longer than ``stall_timeout`` for the client's window; its
handles are released then.
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING, Protocol

import paramiko
from paramiko.sftp import CMD_EXTENDED, CMD_INIT, CMD_NAMES, CMD_READ, CMD_READDIR

from joist.core.hierarchy import Hierarchy

from . import extensions, wire
from .errors import SftpStatusError, bad_message, status_for
from .handles import HandleTable
from .inbox import RequestInbox
from .operations import Operations
from .paramiko_internals import rekey_in_progress, swap_channel_input
from .settings import MAX_MESSAGE, MAX_READ, SftpTuning
from .wire import Request

if TYPE_CHECKING:
    from .auth import ConnectionAuth

log = logging.getLogger("joist.sftp")

RECV_SIZE = 1 << 20
MAX_OFFSET = (1 << 63) - 1   # larger offsets are negative int64s: refused
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
# Upper bounds of reply sizes, to know a batch's replies fit in the window.
READDIR_REPLY = 64 * 1024     # 100 names and long names
OTHER_REPLY = 20 * 1024       # a status, handle, attrs, or two 8 KiB paths
INLINE_MAX = 128 * 1024
"""Most reply bytes a batch answered on the transport thread may produce:
bulk reads stay on the session thread, where sending overlaps with the
transport thread's reading (window adjusts, the next requests)."""
HEAVY = frozenset({CMD_INIT, CMD_EXTENDED})  # hashing a file is no job for the transport


class ProtocolError(Exception):
    """The client broke the framing: the session is closed, as OpenSSH does."""


class SessionHost(Protocol):
    """What a session needs from the server that started it."""

    hierarchy: Hierarchy
    tuning: SftpTuning

    def session_started(self, session: SftpSession) -> None: ...
    def session_ended(self, session: SftpSession) -> None: ...


class Outbox:
    """Replies waiting to be sent, sent as one run of channel packets."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self.channel = channel
        self.parts: list[bytes | memoryview] = []
        self.size = 0

    def add(self, part: bytes | memoryview) -> None:
        self.parts.append(part)
        self.size += len(part)

    def flush(self) -> None:
        parts = self.parts
        if not parts:
            return
        # One small reply (the common case on the transport thread) goes out
        # as it is; several are joined so packets leave full.
        view = memoryview(parts[0] if len(parts) == 1 else b"".join(parts))
        self.parts, self.size = [], 0
        send = self.channel.send
        while view:
            # Channel.send waits for window (stall_timeout) and sends at most
            # one packet; a memoryview keeps the remainder uncopied.
            sent = send(view)
            if not sent:
                raise EOFError("channel closed")
            view = view[sent:]


def split_requests(data: bytes | bytearray) -> tuple[list[tuple[int, int]], int]:
    """(start, end) of each complete request in ``data`` (``start`` at its
    type byte) and how many bytes they use."""
    spans: list[tuple[int, int]] = []
    pos, size = 0, len(data)
    while size - pos >= 4:
        (length,) = _U32.unpack_from(data, pos)
        if length < 5 or length > MAX_MESSAGE + 1024:
            raise ProtocolError(f"bad request length {length}")
        if size - pos - 4 < length:
            break
        spans.append((pos + 4, pos + 4 + length))
        pos += 4 + length
    return spans, pos


class SftpSession(paramiko.SubsystemHandler):
    def __init__(self, channel: paramiko.Channel, name: str, server: ConnectionAuth,
                 host: SessionHost) -> None:
        # Runs on the transport thread, before the client hears that the
        # subsystem started: the only safe moment to swap the channel's input
        # buffer, since nothing else can feed it meanwhile.
        super().__init__(channel, name, server)
        self.auth = server
        self.host = host
        self.tuning = host.tuning
        self.handles = HandleTable(self.tuning.max_handles)
        self.principal = server.principal
        # Core's holder of the login's grant: re-checked before every request.
        self.live = server.live() if server.grant is not None else None
        self.ops: Operations | None = None
        self.channel = channel
        self.transport = channel.get_transport()
        self.outbox = Outbox(channel)
        self._negotiated = False
        self.inbox = RequestInbox(self._light, self._answer_inline)
        early = swap_channel_input(channel, self.inbox)
        if early:
            self.inbox.feed(early)

    # ------------------------------------------------------------ lifecycle
    def start_subsystem(self, name: str, transport: paramiko.Transport,
                        channel: paramiko.Channel) -> None:
        assert self.principal is not None  # the transport only opens channels after auth
        self.ops = Operations(self.host.hierarchy.view(self.principal, read_only=True),
                              self.handles, self.tuning)
        self.host.session_started(self)
        try:
            channel.settimeout(self.tuning.stall_timeout)
            self._serve(channel)
        except ProtocolError as exc:
            log.info("sftp session of %s closed: %s", self.principal.label(), exc)
        except (EOFError, OSError, paramiko.SSHException) as exc:
            log.debug("sftp session of %s ended: %r", self.principal.label(), exc)
        except Exception:
            log.exception("sftp session of %s failed", self.principal.label())
        finally:
            self.inbox.shutdown()
            self.handles.close_all()
            self.host.session_ended(self)
            self.auth.session_ended()

    # ------------------------------------------------------------ loop
    def _serve(self, channel: paramiko.Channel) -> None:
        while True:
            try:
                data = channel.recv(RECV_SIZE)  # whole requests (see RequestInbox)
            except TimeoutError:
                continue  # an idle client is fine; a dead one closes the transport
            if not data:
                return
            try:
                self._answer(data)
            finally:
                self.inbox.release()

    def _answer(self, data: bytes) -> None:
        spans, _used = split_requests(data)
        self._batch(memoryview(data), spans, self.outbox)

    def _light(self, data: bytes | bytearray) -> bool:
        """May the transport thread answer these requests as they arrive? Only
        if no key exchange is under way and every reply surely fits in the
        client's window, so that sending never waits for the thread itself.
        ``data`` is whole requests (``RequestInbox`` checked the framing)."""
        if not self._negotiated or self.ops is None or not self.transport.is_active() \
                or rekey_in_progress(self.transport):
            return False
        limit = min(INLINE_MAX, self.channel.out_window_size)
        bound, pos, size = 0, 0, len(data)
        while pos < size and bound <= limit:  # stops early on a long queue
            (length,) = _U32.unpack_from(data, pos)
            start, end = pos + 4, pos + 4 + length
            if length < 5 or end > size:
                return False  # broken framing: the session thread meets it
            kind = data[start]
            if kind in HEAVY:
                return False
            if kind == CMD_READ:
                bound += self._read_bound(data, start, end)
            else:
                bound += READDIR_REPLY if kind == CMD_READDIR else OTHER_REPLY
            pos = end
        return bound <= limit

    def _read_bound(self, data: bytes | bytearray, start: int, end: int) -> int:
        """Reply bytes of a READ: what the file has there, at most what was
        asked (a small file read with a large request is a small reply)."""
        try:
            (handle_len,) = _U32.unpack_from(data, start + 5)
            handle = bytes(data[start + 9:start + 9 + handle_len])
            (offset,) = _U64.unpack_from(data, start + 9 + handle_len)
            (length,) = _U32.unpack_from(data, start + 17 + handle_len)
        except struct.error:
            return OTHER_REPLY  # malformed: a status reply
        size = self.handles.size_of(handle)
        if size is None or start + 21 + handle_len > end:
            return OTHER_REPLY
        return max(0, min(length, MAX_READ, size - offset)) + OTHER_REPLY

    def _answer_inline(self) -> None:
        try:
            data = self.channel.recv(RECV_SIZE)
            if data:
                self._answer(data)
        except (ProtocolError, EOFError, OSError, paramiko.SSHException) as exc:
            log.debug("sftp session ended on the transport thread: %r", exc)
            self.channel.close()  # the session thread sees it and cleans up

    def _batch(self, buf: memoryview, spans: list[tuple[int, int]], outbox: Outbox) -> None:
        requests: list[Request] = []
        for start, end in spans:
            try:
                requests.append(Request(buf, start, end))
            except SftpStatusError:
                raise ProtocolError("request too short") from None
        if not self._negotiated:
            self._init(requests.pop(0), outbox)
        reads, run_end = self._plan_reads(requests)
        batch = self.tuning.send_batch
        ops = self.ops
        assert ops is not None
        for index, req in enumerate(requests):
            try:
                self._check_principal(ops)
                if req.kind == CMD_READ:
                    self._read(req, reads[index], run_end.get(index, 0), outbox)
                elif req.kind == CMD_INIT:
                    raise ProtocolError("INIT sent twice")
                else:
                    outbox.add(ops.run(req))
            except ProtocolError:
                raise
            except Exception as exc:
                code, message = status_for(exc, f"sftp {CMD_NAMES.get(req.kind, req.kind)}")
                outbox.add(wire.status_packet(req.id, code, message))
            if outbox.size >= batch:
                outbox.flush()
        outbox.flush()

    def _check_principal(self, ops: Operations) -> None:
        """Core re-checks the login (cheap unless something changed): a revoked
        one gets permission denied, changed rights get a view to match."""
        if self.live is None:
            return
        principal = self.live.principal()
        if principal is not self.principal and principal != self.principal:
            self.principal = principal
            ops.view = self.host.hierarchy.view(principal, read_only=True)

    def _init(self, req: Request, outbox: Outbox) -> None:
        if req.kind != CMD_INIT:
            raise ProtocolError("the first request must be INIT")
        self._negotiated = True
        # Any client version >= 3 gets 3: the client must speak ours.
        outbox.add(wire.version_packet(extensions.ADVERTISED))

    @staticmethod
    def _plan_reads(requests: list[Request]
                    ) -> tuple[dict[int, tuple[bytes, int, int] | SftpStatusError], dict[int, int]]:
        """Parse every READ of the batch, and for each the end of the run of
        contiguous READs that follows it on the same handle: the read-ahead."""
        reads: dict[int, tuple[bytes, int, int] | SftpStatusError] = {}
        for index, req in enumerate(requests):
            if req.kind == CMD_READ:
                try:
                    reads[index] = (req.string(), req.u64(), req.u32())
                except SftpStatusError as exc:
                    reads[index] = exc
        run_end: dict[int, int] = {}
        if len(reads) < 2:
            for index, parsed in reads.items():  # no run: the read itself
                if not isinstance(parsed, SftpStatusError):
                    run_end[index] = parsed[1] + parsed[2]
            return reads, run_end
        following: dict[bytes, tuple[int, int]] = {}  # handle -> (offset, run end)
        for index in sorted(reads, reverse=True):
            parsed = reads[index]
            if isinstance(parsed, SftpStatusError):
                continue
            key, offset, length = parsed
            end = offset + length
            nxt = following.get(key)
            run_end[index] = nxt[1] if nxt is not None and nxt[0] == end else end
            following[key] = (offset, run_end[index])
        return reads, run_end

    def _read(self, req: Request, parsed: tuple[bytes, int, int] | SftpStatusError, run_end: int,
              outbox: Outbox) -> None:
        if isinstance(parsed, SftpStatusError):
            raise parsed
        key, offset, length = parsed
        handle = self.handles.file(key)
        if offset > MAX_OFFSET:
            raise bad_message("Offset out of range")
        data = handle.read(offset, min(length, MAX_READ), run_end, self.tuning.read_ahead)
        if not data:
            outbox.add(wire.eof_packet(req.id))
            return
        outbox.add(wire.data_header(req.id, len(data)))
        outbox.add(data)


__all__ = ["Outbox", "ProtocolError", "SessionHost", "SftpSession", "split_requests"]
