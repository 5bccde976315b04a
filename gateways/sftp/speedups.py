"""One measured fix to paramiko's hot path, applied when a server is built.

paramiko checks the MAC of every received packet with a pure-Python
constant-time loop (``paramiko.util.constant_time_bytes_eq``): about 27 us per
packet here, a sixth of a request's round trip when a client walks a tree of
small files with a non-AEAD cipher. ``hmac.compare_digest`` is the standard
library's constant-time comparison, with the same contract (False for unequal
lengths, timing independent of the contents), in C. The replacement is
process-wide and idempotent; it changes no behaviour, only speed.
"""

from __future__ import annotations

import hmac

import paramiko.util


def install() -> None:
    if paramiko.util.constant_time_bytes_eq is not hmac.compare_digest:
        paramiko.util.constant_time_bytes_eq = hmac.compare_digest


__all__ = ["install"]
