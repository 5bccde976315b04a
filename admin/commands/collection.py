"""``joist collection create|list|delete|grant``."""

from __future__ import annotations

import argparse

from .common import (
    LEVELS,
    add_json_flag,
    admin_principal,
    app_for,
    collection_by_name,
    group_by_name,
    print_table,
    user_by_login,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("collection", help="manage collections")
    colls = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = colls.add_parser("create", help="create a collection")
    create.add_argument("name")
    create.add_argument("--description", default="")
    create.add_argument("--public", action="store_true", help="readable by everyone")
    create.add_argument("--owner", metavar="LOGIN", help="user who gets ADMIN on it")
    create.set_defaults(handler=_create)
    listing = colls.add_parser("list", help="list collections")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    delete = colls.add_parser("delete", help="delete a collection and its contents")
    delete.add_argument("name")
    delete.set_defaults(handler=_delete)
    grant = colls.add_parser("grant", help="give a user or group access (or --level none)")
    grant.add_argument("name")
    who = grant.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="LOGIN")
    who.add_argument("--group", metavar="NAME")
    grant.add_argument("--level", choices=(*LEVELS, "none"), default="read")
    grant.set_defaults(handler=_grant)


def _create(args: argparse.Namespace) -> int:
    from joist.core.acl import ADMIN
    with app_for(args) as app:
        svc = app.services
        doc = svc.collections.create(admin_principal(), args.name,
                                     description=args.description, public=args.public)
        if args.owner:
            owner = user_by_login(app, args.owner)
            svc.access.grant(admin_principal(), "collection", doc, "user", owner["_id"], ADMIN)
        print(f"Created collection {doc['name']} ({doc['_id']}).")
    return 0


def _list(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        rows = [{"name": c["name"], "public": c.get("public", False), "size": c.get("size", 0),
                 "id": str(c["_id"])}
                for c in app.services.collections.list(admin_principal(), limit=0)]
        print_table(rows, ["name", "public", "size", "id"], args.json)
    return 0


def _delete(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        app.services.removal.delete_collection(admin_principal(),
                                               collection_by_name(app, args.name))
        print(f"Deleted collection {args.name}.")
    return 0


def _grant(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        doc = collection_by_name(app, args.name)
        if args.user:
            kind, target = "user", user_by_login(app, args.user)
        else:
            kind, target = "group", group_by_name(app, args.group)
        level = None if args.level == "none" else LEVELS[args.level]
        app.services.access.grant(admin_principal(), "collection", doc, kind, target["_id"],
                                  level)
        print(f"{kind} {args.user or args.group}: {args.level} on {doc['name']}.")
    return 0
