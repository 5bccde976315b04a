"""``joist setting get|set|unset|list``: run-time settings kept in the store."""

from __future__ import annotations

import argparse
import json

from .common import app_for


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("setting", help="read and change run-time settings")
    settings = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    get = settings.add_parser("get", help="print a setting (JSON)")
    get.add_argument("key")
    get.set_defaults(handler=_get)
    put = settings.add_parser("set", help="change a setting; VALUE is JSON or a plain string")
    put.add_argument("key")
    put.add_argument("value")
    put.set_defaults(handler=_set)
    unset = settings.add_parser("unset", help="restore a setting's default")
    unset.add_argument("key")
    unset.set_defaults(handler=_unset)
    listing = settings.add_parser("list", help="every setting with its value")
    listing.set_defaults(handler=_list)


def _parse(raw: str) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _get(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        print(json.dumps(app.services.settings.shown(args.key)))
    return 0


def _set(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        value = app.services.settings.set(args.key, _parse(args.value))
        print(f"{args.key} = {json.dumps(value)}")
    return 0


def _unset(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        app.services.settings.unset(args.key)
        print(f"{args.key} = {json.dumps(app.services.settings.get(args.key))} (default)")
    return 0


def _list(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        for key, value in sorted(app.services.settings.all().items()):
            print(f"{key} = {json.dumps(value)}")
    return 0
