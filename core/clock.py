"""The one clock of core: every stored time comes from here, so both engines
agree on the precision."""

from __future__ import annotations

import datetime as _dt


def utcnow() -> _dt.datetime:
    """Now, UTC, to the millisecond: what both engines store and return."""
    now = _dt.datetime.now(_dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
