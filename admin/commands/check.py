"""``joist check [--repair] [--deep]``: consistency of the store and the bytes."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from .common import app_for

if TYPE_CHECKING:
    from joist.core.services.check import Checker


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("check", help="verify store and assetstore consistency")
    parser.add_argument("--repair", action="store_true", help="fix what can be fixed")
    parser.add_argument("--deep", action="store_true",
                        help="also re-hash every stored blob (reads everything)")
    parser.add_argument("--settle", type=float, default=None, metavar="SECONDS",
                        help="on a live system, leave alone work younger than this")
    parser.add_argument("--abandoned-after", type=float, default=None, metavar="SECONDS",
                        help="unfinished uploads idle this long are abandoned (default: "
                             "the setting joist.uploads.abandoned_after)")
    parser.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    from joist.core.services.check import Checker
    settled = time.time() - args.settle if args.settle is not None else None
    with app_for(args) as app:
        checker = Checker(app.services, max_idle=args.abandoned_after)
        if args.deep:
            # it reads every byte: with the jobs plugin, a job shows its progress
            from joist.core.acl import SYSTEM
            from joist.core.jobs import tracked
            findings = tracked(app.services.events, SYSTEM, "Deep consistency check",
                               "check.deep", lambda report: checker.check(
                                   deep=True, settled_before=settled, progress=report))
        else:
            findings = checker.check(deep=args.deep, settled_before=settled)
        for finding in findings:
            print(finding)
        _print_in_progress(checker)
        if not findings:
            print("OK: the store and its assetstores are consistent.")
            return 0
        print(f"{len(findings)} problem(s) found.")
        if not args.repair:
            print("Run `joist check --repair` to fix what can be fixed.")
            return 1
        checker.repair(findings, settled_before=settled)
        remaining = checker.check(deep=args.deep, settled_before=settled)
        for finding in remaining:
            print(f"still: {finding}")
        print(f"Repaired; {len(remaining)} problem(s) remain.")
        return 1 if remaining else 0


def _print_in_progress(checker: Checker) -> None:
    live = checker.in_progress
    if live:
        temp = sum(s.activity.temp_bytes or 0 for s in live)
        print(f"{len(live)} upload(s) in progress hold {temp} bytes of temporary data.")
