"""A session's input: whole SFTP requests, answered inline when that is safe.

paramiko's transport thread decrypts each packet and feeds its payload to the
channel's input buffer; a session thread then wakes up to answer it. For a
client that walks a tree (open, read, read, close: one small request per round
trip) that hand-over between threads is a fifth of each round trip. So the
session puts this object in place of the channel's buffer (paramiko's
``BufferedPipe``, whose interface it keeps: ``feed``, ``read``,
``read_ready``, ``set_event``, ``close``, ``len``; the swap and its check are
in ``paramiko_internals``), and when a batch of
complete requests arrives while no other batch is being answered, and the
session says the batch is light (its replies fit in the client's window, no
key exchange under way), the transport thread answers it there and then.
Anything else waits in the buffer for the session thread, as before. Either
way one batch is answered at a time, in arrival order.

``read`` hands out complete requests only (or everything, once the framing is
broken, so the session sees it and ends).
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable

from .paramiko_internals import PipeTimeout
from .settings import MAX_MESSAGE

log = logging.getLogger("joist.sftp")

_U32 = struct.Struct(">I")
MAX_FRAME = MAX_MESSAGE + 1024


def complete_prefix(buf: bytes | bytearray, limit: int | None = None, start: int = 0) -> int:
    """End of the complete requests at the front of ``buf``, scanning from
    ``start`` (a request boundary): at most ``limit`` bytes, but at least one
    request; all of ``buf`` when a length prefix is out of bounds, so that the
    reader meets the violation."""
    pos, size = start, len(buf)
    while size - pos >= 4:
        (length,) = _U32.unpack_from(buf, pos)
        if length < 5 or length > MAX_FRAME:
            return size
        end = pos + 4 + length
        if end > size or (limit is not None and pos and end > limit):
            break
        pos = end
    return pos


class RequestInbox:
    def __init__(self, light: Callable[[bytearray], bool], answer_inline: Callable[[], None]
                 ) -> None:
        """``light(requests)``: may these be answered on the transport thread
        (called with the lock held: it must not block)? ``answer_inline()``:
        read them through the channel (so the window is replenished) and
        answer them; runs on the transport thread."""
        self._light = light
        self._answer_inline = answer_inline
        self._cv = threading.Condition()
        self._buf = bytearray()
        self._closed = False
        self._event: threading.Event | None = None
        self._ready = 0               # end of the complete requests in _buf
        self._busy = False            # a batch is being answered
        self._inline: int | None = None  # the transport thread, while it answers

    # ---------------------------------------------------- paramiko's side
    def feed(self, data: bytes) -> None:
        with self._cv:
            if self._closed:
                return  # the session is over: nobody will answer
            self._buf += data
            if self._event is not None:
                self._event.set()
            # Scan only what is new: a client may queue thousands of requests
            # while a batch is being answered.
            self._ready = ready = complete_prefix(self._buf, start=self._ready)
            if not ready:
                return  # part of a request: nothing to answer yet
            if self._busy or ready != len(self._buf) or not self._light(self._buf):
                # Wake the session thread only now that it has work: a wake-up
                # per request would cost what answering inline saves.
                self._cv.notify()
                return
            self._busy, self._inline = True, threading.get_ident()
        try:
            self._answer_inline()
        except Exception:  # never into paramiko's transport loop
            log.exception("sftp: answering on the transport thread failed")
        finally:
            with self._cv:
                self._busy, self._inline = False, None
                if self._closed:
                    self._cv.notify_all()  # shutdown() waits for this answer

    def read(self, nbytes: int, timeout: float | None = None) -> bytes:
        with self._cv:
            if self._inline == threading.get_ident():
                return self._take(self._upto(nbytes))
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                ready = 0 if self._busy else self._upto(nbytes)
                if ready:
                    break
                if self._closed:
                    return b""
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise PipeTimeout()
                self._cv.wait(remaining)
            self._busy = True  # until release(): the session thread answers these
            return self._take(ready)

    def read_ready(self) -> bool:
        with self._cv:
            return bool(self._buf)

    def set_event(self, event: threading.Event) -> None:
        with self._cv:
            self._event = event
            if self._closed or self._buf:
                event.set()
            else:
                event.clear()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            if self._event is not None:
                self._event.set()
            self._cv.notify_all()

    def __len__(self) -> int:
        with self._cv:
            return len(self._buf)

    # ---------------------------------------------------- the session's side
    def shutdown(self) -> None:
        """The session ends: refuse further input, and wait until an answer
        under way on the transport thread is done (the handles go next)."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
            if self._inline != threading.get_ident():
                while self._inline is not None:
                    self._cv.wait()

    def release(self) -> None:
        """The session thread has answered what ``read`` gave it (it then
        reads again, so it needs no wake-up for what came meanwhile)."""
        with self._cv:
            self._busy = False

    def _upto(self, nbytes: int) -> int:
        """Bytes of whole requests to hand out: all that are ready, or as many
        as fit in ``nbytes`` (at least one)."""
        if self._ready <= nbytes:
            return self._ready
        return complete_prefix(self._buf, nbytes)

    def _take(self, size: int) -> bytes:
        data = bytes(self._buf[:size])
        del self._buf[:size]
        self._ready = max(self._ready - size, 0)
        if self._event is not None and not self._buf and not self._closed:
            self._event.clear()
        return data


__all__ = ["RequestInbox", "complete_prefix"]
