"""The outbox: a bounded queue of messages and the one thread that sends them.

Requests only ever ``submit`` (never blocks: a full outbox refuses the
message, which is recorded as a failure). The worker sends in order of due
time; a failed attempt is retried after ``base * 2**n`` seconds (at most an
hour) up to the configured number of retries, then given up and recorded.
Messages still waiting when the process stops are lost, and said so in the
log: the outbox is per process, like Girder's mail thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

log = logging.getLogger("joist.mail")

MAX_DELAY = 3600.0


@dataclass
class Envelope:
    message: EmailMessage
    recipients: list[str]
    kind: str  # the template name, for the failure record
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


Deliver = Callable[[Envelope], None]
GiveUp = Callable[[Envelope, str], None]
Policy = Callable[[], tuple[int, float]]  # (retries, base delay seconds)


class Outbox:
    def __init__(self, deliver: Deliver, give_up: GiveUp, policy: Policy, *,
                 capacity: int = 1000, clock: Callable[[], float] = time.monotonic) -> None:
        self._deliver = deliver
        self._give_up = give_up
        self._policy = policy
        self._capacity = capacity
        self._clock = clock
        self._heap: list[tuple[float, int, Envelope]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._busy = False  # an attempt is under way (for idle())

    # ------------------------------------------------------------ producers
    def submit(self, envelope: Envelope) -> bool:
        """Queue a message; False (and a failure record) when the outbox is full
        or stopped. Never waits for the network."""
        with self._cond:
            if self._stopping:
                refused = "the mail outbox is stopped"
            elif len(self._heap) >= self._capacity:
                refused = f"the mail outbox is full ({self._capacity} messages)"
            else:
                heapq.heappush(self._heap, (self._clock(), next(self._seq), envelope))
                self._ensure_thread()
                self._cond.notify()
                return True
        self._record(envelope, refused)
        return False

    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + (1 if self._busy else 0)

    # ------------------------------------------------------------ lifecycle
    def _ensure_thread(self) -> None:
        # Started by the first message, so commands that never mail spawn nothing.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="joist-mail", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Let due messages go for up to ``timeout`` seconds, then stop."""
        deadline = self._clock() + timeout
        with self._cond:
            while self._clock() < deadline and self._thread is not None and \
                    self._thread.is_alive() and \
                    (self._busy or (self._heap and self._heap[0][0] <= self._clock())):
                self._cond.wait(min(0.1, max(0.0, deadline - self._clock())))
            self._stopping = True
            left = len(self._heap)
            self._heap.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(max(0.0, deadline - self._clock()) + 1.0)
        if left:
            log.warning("mail outbox stopped with %d message(s) not sent", left)

    # ------------------------------------------------------------ the worker
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and \
                        (not self._heap or self._heap[0][0] > self._clock()):
                    wait = self._heap[0][0] - self._clock() if self._heap else None
                    self._cond.wait(wait)
                if self._stopping:
                    return
                _, _, envelope = heapq.heappop(self._heap)
                self._busy = True
            try:
                self._attempt(envelope)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _attempt(self, envelope: Envelope) -> None:
        envelope.attempts += 1
        try:
            self._deliver(envelope)
        except Exception as exc:  # any failure is retried, then recorded
            error = f"{type(exc).__name__}: {exc}"[:500]
            envelope.errors.append(error)
            retries, base = self._policy()
            if envelope.attempts > retries:
                log.error("mail %s to %s failed %d time(s), giving up: %s", envelope.kind,
                          ", ".join(envelope.recipients), envelope.attempts, error)
                self._record(envelope, error)
                return
            delay = min(MAX_DELAY, base * 2 ** (envelope.attempts - 1))
            log.warning("mail %s to %s failed (attempt %d, retry in %.1f s): %s",
                        envelope.kind, ", ".join(envelope.recipients), envelope.attempts,
                        delay, error)
            with self._cond:
                if not self._stopping:
                    heapq.heappush(self._heap,
                                   (self._clock() + delay, next(self._seq), envelope))
            return
        log.info("mail %s sent to %s", envelope.kind, ", ".join(envelope.recipients))

    def _record(self, envelope: Envelope, error: str) -> None:
        try:
            self._give_up(envelope, error)
        except Exception:  # recording must not kill the worker
            log.exception("could not record a mail failure")
