"""Helpers shared by the admin subcommands."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from joist.core.acl import SYSTEM, Principal
from joist.core.db.engine import Document
from joist.core.errors import NotFoundError, ValidationError

from ..bootstrap import App, build_app

LEVELS = {"read": 0, "write": 1, "admin": 2}


@contextmanager
def app_for(args: argparse.Namespace) -> Iterator[App]:
    from ..cli import configure_logging, settings_from
    settings = settings_from(args)
    configure_logging(settings, args.verbose, quiet=True)
    app = build_app(settings)
    try:
        yield app
    finally:
        app.close()


def admin_principal() -> Principal:
    """The CLI acts with site-admin authority (whoever can run it owns the store)."""
    return SYSTEM


def user_by_login(app: App, login: str) -> Document:
    user = app.services.users.by_login(login)
    if user is None:
        raise NotFoundError(f"No such user: {login}")
    return user


def group_by_name(app: App, name: str) -> Document:
    group = app.services.groups.by_name(name)
    if group is None:
        raise NotFoundError(f"No such group: {name}")
    return group


def collection_by_name(app: App, name: str) -> Document:
    doc = app.services.collections.by_name(name)
    if doc is None:
        raise NotFoundError(f"No such collection: {name}")
    return doc


def read_password(args: argparse.Namespace, prompt: str = "Password: ") -> str:
    """From --password-stdin, or a prompt (twice) on a terminal."""
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ValidationError("No terminal to ask for the password: use --password-stdin.")
    first = getpass.getpass(prompt)
    if getpass.getpass("Again: ") != first:
        raise ValidationError("The passwords do not match.")
    return first


def print_table(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2, default=str, sort_keys=True))
        return
    widths = {c: max([len(c), *(len(str(r.get(c, ""))) for r in rows)]) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns).rstrip())


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


Handler = Callable[[argparse.Namespace], int]
