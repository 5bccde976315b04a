"""``joist group create|list|delete|add-member|remove-member|members``."""

from __future__ import annotations

import argparse

from .common import (
    LEVELS,
    add_json_flag,
    admin_principal,
    app_for,
    group_by_name,
    print_table,
    user_by_login,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("group", help="manage groups")
    groups = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = groups.add_parser("create", help="create a group")
    create.add_argument("name")
    create.add_argument("--description", default="")
    create.add_argument("--private", action="store_true", help="hide from non-members")
    create.set_defaults(handler=_create)
    listing = groups.add_parser("list", help="list groups")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    delete = groups.add_parser("delete", help="delete a group")
    delete.add_argument("name")
    delete.set_defaults(handler=_delete)
    add = groups.add_parser("add-member", help="add a user to a group")
    add.add_argument("name")
    add.add_argument("login")
    add.add_argument("--level", choices=tuple(LEVELS), default="read",
                     help="read = member, write = moderator, admin = group admin")
    add.set_defaults(handler=_add)
    remove = groups.add_parser("remove-member", help="remove a user from a group")
    remove.add_argument("name")
    remove.add_argument("login")
    remove.set_defaults(handler=_remove)
    members = groups.add_parser("members", help="list the members of a group")
    members.add_argument("name")
    add_json_flag(members)
    members.set_defaults(handler=_members)


def _create(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        doc = app.services.groups.create(admin_principal(), args.name,
                                         description=args.description,
                                         public=not args.private)
        print(f"Created group {doc['name']} ({doc['_id']}).")
    return 0


def _list(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        rows = [{"name": g["name"], "description": g.get("description", ""),
                 "public": g.get("public", True), "id": str(g["_id"])}
                for g in app.services.groups.list(admin_principal(), limit=0)]
        print_table(rows, ["name", "description", "public", "id"], args.json)
    return 0


def _delete(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        app.services.groups.delete(admin_principal(), group_by_name(app, args.name))
        print(f"Deleted group {args.name}.")
    return 0


def _add(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        group, user = group_by_name(app, args.name), user_by_login(app, args.login)
        app.services.groups.add_member(admin_principal(), group, user,
                                       level=LEVELS[args.level], force=True)
        print(f"Added {user['login']} to {group['name']} ({args.level}).")
    return 0


def _remove(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        group, user = group_by_name(app, args.name), user_by_login(app, args.login)
        app.services.groups.remove_member(admin_principal(), group, user)
        print(f"Removed {user['login']} from {group['name']}.")
    return 0


def _members(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        group = group_by_name(app, args.name)
        rows = [{"login": u["login"], "name": f"{u['firstName']} {u['lastName']}",
                 "id": str(u["_id"])}
                for u in app.services.groups.members(admin_principal(), group, limit=0)]
        print_table(rows, ["login", "name", "id"], args.json)
    return 0
