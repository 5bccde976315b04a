"""``joist check [--repair] [--deep]``: consistency of the store and the bytes."""

from __future__ import annotations

import argparse
import time

from .common import app_for


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("check", help="verify store and assetstore consistency")
    parser.add_argument("--repair", action="store_true", help="fix what can be fixed")
    parser.add_argument("--deep", action="store_true",
                        help="also re-hash every stored blob (reads everything)")
    parser.add_argument("--settle", type=float, default=None, metavar="SECONDS",
                        help="on a live system, leave alone work younger than this")
    parser.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    from joist.core.services.check import Checker
    settled = time.time() - args.settle if args.settle is not None else None
    with app_for(args) as app:
        checker = Checker(app.services)
        findings = checker.check(deep=args.deep, settled_before=settled)
        for finding in findings:
            print(finding)
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
