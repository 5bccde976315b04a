"""Events: the one way core announces a change, and the hook plugins bind to.

Girder's model (``girder/events.py``), but one bus per application instead of
module globals, so two apps in one process (tests) stay independent:

* ``bind(name, handler_name, handler, priority=0)``: handlers run by priority,
  highest first, then in bind order. Binding a name again for the same event
  replaces that handler (Girder's rule; a plugin uses its own name).
* ``trigger(name, info)`` runs the handlers now, in the caller's thread, and
  returns the ``Event``: ``responses`` (``add_response``), ``default_prevented``
  (``prevent_default``), ``propagate`` (``stop_propagation``). A handler's
  exception reaches the caller: that is how a handler refuses an operation.
* ``trigger_async(name, info, callback)`` queues the event for one daemon thread
  that runs the same handlers later. The queue is bounded: when full, the
  caller waits up to ``put_timeout`` seconds, then the event is dropped and a
  warning is logged (a slow handler must not stall every request, nor may an
  unbounded queue grow without limit). Failures there are logged, never raised.

With nothing bound to a name, ``trigger`` is one dict lookup: the hot paths
(every REST request, every save) fire events unconditionally.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("joist.events")

DEFAULT_QUEUE_SIZE = 1000
DEFAULT_PUT_TIMEOUT = 0.5  # seconds a full queue may block a caller


class Event:
    """One firing of an event, handed to each handler in turn."""

    # Slots: an event is made on every save and request; keep that cheap.
    __slots__ = ("asynchronous", "current_handler_name", "default_prevented", "info", "name",
                 "prevented_by", "propagate", "responses")

    def __init__(self, name: str, info: Any = None, *, asynchronous: bool = False) -> None:
        self.name = name
        self.info = info
        self.asynchronous = asynchronous
        self.responses: list[Any] = []
        self.default_prevented = False
        self.propagate = True
        self.current_handler_name: str | None = None
        self.prevented_by: str | None = None  # the handler that prevented the default

    def prevent_default(self) -> Event:
        """Ask the code that fired the event not to do what it was about to do."""
        self.default_prevented = True
        self.prevented_by = self.current_handler_name
        return self

    def stop_propagation(self) -> Event:
        """No further handler sees this event."""
        self.propagate = False
        return self

    def add_response(self, response: Any) -> None:
        self.responses.append(response)

    def __repr__(self) -> str:
        return f"Event({self.name!r}, responses={len(self.responses)})"


Handler = Callable[[Event], Any]


@dataclass(frozen=True)
class _Binding:
    handler_name: str
    handler: Handler
    priority: int
    order: int


class EventBus:
    """Bindings, synchronous triggering and the asynchronous queue of one app."""

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE,
                 put_timeout: float = DEFAULT_PUT_TIMEOUT) -> None:
        # name -> bindings in run order. Replaced, never mutated, under _lock,
        # so trigger reads it without locking.
        self._bindings: dict[str, tuple[_Binding, ...]] = {}
        self._lock = threading.Lock()
        self._order = itertools.count()
        self._queue: queue.Queue[tuple[Event, Callable[[Event], Any] | None] | None] = \
            queue.Queue(maxsize=queue_size)
        self._put_timeout = put_timeout
        self._worker: threading.Thread | None = None
        self._closed = False
        self.dropped = 0  # asynchronous events dropped on a full queue

    # ------------------------------------------------------------ bindings
    def bind(self, name: str, handler_name: str, handler: Handler, *,
             priority: int = 0) -> None:
        if not isinstance(name, str) or not name or not isinstance(handler_name, str) \
                or not handler_name:
            raise ValueError("An event binding needs an event name and a handler name.")
        if not callable(handler):
            raise TypeError(f"The handler {handler_name!r} of {name!r} is not callable.")
        with self._lock:
            current = self._bindings.get(name, ())
            if any(b.handler_name == handler_name for b in current):
                log.warning("event binding replaced: %s -> %s", name, handler_name)
            kept = [b for b in current if b.handler_name != handler_name]
            kept.append(_Binding(handler_name, handler, priority, next(self._order)))
            kept.sort(key=lambda b: (-b.priority, b.order))
            self._bindings[name] = tuple(kept)

    def unbind(self, name: str, handler_name: str) -> bool:
        """Remove one binding; False when there was none."""
        with self._lock:
            current = self._bindings.get(name, ())
            kept = tuple(b for b in current if b.handler_name != handler_name)
            if len(kept) == len(current):
                return False
            if kept:
                self._bindings[name] = kept
            else:
                del self._bindings[name]
            return True

    def unbind_all(self, handler_name: str | None = None) -> None:
        """Remove every binding, or every binding of one handler name (a plugin's)."""
        with self._lock:
            if handler_name is None:
                self._bindings = {}
                return
            self._bindings = {
                name: kept for name, bindings in self._bindings.items()
                if (kept := tuple(b for b in bindings if b.handler_name != handler_name))}

    @contextlib.contextmanager
    def bound(self, name: str, handler_name: str, handler: Handler, *,
              priority: int = 0) -> Iterator[None]:
        """Bind for the duration of a ``with`` block."""
        self.bind(name, handler_name, handler, priority=priority)
        try:
            yield
        finally:
            self.unbind(name, handler_name)

    def has_handlers(self, name: str) -> bool:
        """Whether anything listens: lets a caller skip building costly info."""
        return name in self._bindings

    def handler_names(self, name: str) -> list[str]:
        return [b.handler_name for b in self._bindings.get(name, ())]

    # ------------------------------------------------------------ firing
    def trigger(self, name: str, info: Any = None, *, asynchronous: bool = False) -> Event:
        """Run the handlers of ``name`` now and return the event."""
        event = Event(name, info, asynchronous=asynchronous)
        self._dispatch(event)
        return event

    def _dispatch(self, event: Event) -> None:
        """The handlers of the event in order, until one stops propagation."""
        for binding in self._bindings.get(event.name, ()):
            event.current_handler_name = binding.handler_name
            binding.handler(event)
            if not event.propagate:
                break

    def trigger_async(self, name: str, info: Any = None,
                      callback: Callable[[Event], Any] | None = None) -> bool:
        """Queue the event for the background thread; ``callback(event)`` runs
        there after the handlers. False when the event was dropped (full queue
        after ``put_timeout``, or the bus stopped)."""
        if self._closed:
            log.warning("event %s dropped: the event queue is stopped", name)
            return False
        self._ensure_worker()
        try:
            self._queue.put((Event(name, info, asynchronous=True), callback),
                            timeout=self._put_timeout)
        except queue.Full:
            self.dropped += 1
            log.warning("event %s dropped: the asynchronous event queue stayed full for "
                        "%.1f s (%d dropped so far)", name, self._put_timeout, self.dropped)
            return False
        return True

    # ------------------------------------------------------------ the worker
    def _ensure_worker(self) -> None:
        if self._worker is not None:
            return
        with self._lock:
            if self._worker is None and not self._closed:
                worker = threading.Thread(target=self._run, name="joist-events", daemon=True)
                worker.start()
                self._worker = worker

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            try:
                if entry is None:
                    return
                event, callback = entry
                self._run_async(event, callback)
            finally:
                self._queue.task_done()

    def _run_async(self, event: Event, callback: Callable[[Event], Any] | None) -> None:
        try:
            self._dispatch(event)
            if callback is not None:
                callback(event)
        except Exception:
            log.exception("asynchronous handler %s of event %s failed",
                          event.current_handler_name, event.name)

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event has run (tests); False on timeout."""
        idle = threading.Event()

        def wait() -> None:
            self._queue.join()
            idle.set()

        threading.Thread(target=wait, daemon=True).start()
        return idle.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Run what is queued, then end the worker; later asynchronous events
        are dropped with a warning. Safe to call twice."""
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
        if worker is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.warning("event queue still full at shutdown; its events are dropped")
            return
        worker.join(timeout)
        if worker.is_alive():
            log.warning("an asynchronous event handler was still running at shutdown")


__all__ = ["DEFAULT_PUT_TIMEOUT", "DEFAULT_QUEUE_SIZE", "Event", "EventBus", "Handler"]
