"""``notification``: Girder 3's notification stream (server-sent events) and list.

The stream is a long response: it holds a worker thread until it ends, so core
caps the open streams of a process (503 beyond) and ends each after a bounded
time; EventSource clients reconnect by themselves and pass ``since``.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Iterator
from typing import Any

from joist.core.services.notifications import (
    DEFAULT_STREAM_TIMEOUT,
    LIST_LIMIT,
    MAX_STREAM_TIMEOUT,
)

from ..app import Context
from ..request import RestError
from ..response import Raw, dumps
from ..router import READ_SCOPE, Param, RouteCollector

api = RouteCollector("notification", "Notifications of progress and job status.")


def _since(raw: Any, *, epoch_only: bool) -> _dt.datetime | None:
    """Epoch seconds (the stream's ``since``), or also an ISO date (the list's)."""
    if raw is None or raw == "":
        return None
    try:
        return _dt.datetime.fromtimestamp(float(raw), _dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        if not epoch_only:
            try:
                value = _dt.datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00"))
                return value if value.tzinfo else value.replace(tzinfo=_dt.UTC)
            except ValueError:
                pass
    raise RestError(f"Invalid value for since: {raw!r}.")


def _event(doc: dict[str, Any]) -> bytes:
    """One SSE message; ``_girderTime`` is the server's clock, for ``since``
    when the client reconnects (Girder's field)."""
    return b"data: " + dumps({**doc, "_girderTime": int(time.time())}) + b"\n\n"


@api.get("stream", "Stream notifications for the current user via the SSE protocol.",
         access="user", scope=READ_SCOPE, cookie=True,
         notes="Use an EventSource or another SSE-capable client. Notifications arrive "
               "within about two seconds of being made by any server process. The stream "
               f"ends after timeout seconds without a notification (at most "
               f"{MAX_STREAM_TIMEOUT}); reconnect with since. When every stream slot of "
               "the process is taken the answer is 503.",
         params=(Param("timeout", "integer", default=DEFAULT_STREAM_TIMEOUT,
                       description="The duration without a notification before the "
                                   f"stream is closed (seconds, at most "
                                   f"{MAX_STREAM_TIMEOUT})."),
                 Param("since", "number",
                       description="Filter out events before this time stamp "
                                   "(epoch seconds).")))
def stream(ctx: Context, timeout: int, since: Any) -> Raw:
    opened = ctx.services.notifications.stream(ctx.principal, _since(since, epoch_only=True),
                                               timeout)

    def body() -> Iterator[bytes]:
        yield b": joist notification stream\n\n"  # the headers and this go out at once
        for doc in opened:
            yield b": keep-alive\n\n" if doc is None else _event(doc)

    return Raw(200, [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
                     ("X-Accel-Buffering", "no")], body(), on_close=opened.close)


@api.get("", "List notification events, oldest first.", access="user", scope=READ_SCOPE,
         cookie=True,
         notes="For manual long-polling where SSE is not available. At most "
               f"{LIST_LIMIT} per answer: ask again with the last one's updated time.",
         params=(Param("since", description="Filter out events before this date (ISO "
                                            "date or epoch seconds)."),))
def list_notifications(ctx: Context, since: str | None) -> list[Any]:
    return ctx.services.notifications.list(ctx.principal, _since(since, epoch_only=False))


__all__ = ["api"]
