"""``joist plugin list|enable|disable``: the plugins installed and the enabled set.

The enabled set is the stored setting ``core.plugins_enabled``; servers read it
when they start, so a change here takes effect at their next start.
"""

from __future__ import annotations

import argparse
import json

from joist.core.plugins import RESTART_NOTE

from .common import add_json_flag, admin_principal, app_for, print_table


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("plugin", help="list, enable and disable plugins")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="installed plugins and their state")
    add_json_flag(listing)
    listing.set_defaults(handler=_list)
    enable = actions.add_parser("enable", help="enable plugins (at the next start)")
    enable.add_argument("names", nargs="+", metavar="NAME")
    enable.set_defaults(handler=_enable)
    disable = actions.add_parser("disable", help="disable plugins (at the next start)")
    disable.add_argument("names", nargs="+", metavar="NAME")
    disable.set_defaults(handler=_disable)


def _list(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        state = app.services.plugins.listing()
    if args.json:
        print(json.dumps(state, indent=2, sort_keys=True))
        return 0
    enabled, loaded, failed = state["enabled"], state["loaded"], state.get("failed", {})
    rows = [{"name": name, "enabled": "yes" if name in enabled else "no",
             "loaded": "yes" if name in loaded else ("FAILED" if name in failed else "no"),
             "version": info["version"], "depends": ",".join(info["dependencies"]),
             "description": info["description"]}
            for name, info in state["all"].items()]
    print_table(rows, ["name", "enabled", "loaded", "version", "depends", "description"],
                as_json=False)
    for name in enabled:
        if name not in state["all"]:
            print(f"enabled but not installed: {name}")
    for name, message in failed.items():
        print(f"{name} failed to load: {message}")
    return 0


def _enable(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        plugins = app.services.plugins
        wanted = [*plugins.enabled(), *[n for n in args.names if n not in plugins.enabled()]]
        enabled = plugins.set_enabled(admin_principal(), wanted)
    print(f"enabled: {', '.join(enabled) or '(none)'}. {RESTART_NOTE}")
    return 0


def _disable(args: argparse.Namespace) -> int:
    with app_for(args) as app:
        plugins = app.services.plugins
        unknown = [n for n in args.names if n not in plugins.enabled()]
        enabled = plugins.set_enabled(admin_principal(),
                                      [n for n in plugins.enabled() if n not in args.names])
    for name in unknown:
        print(f"{name} was not enabled")
    print(f"enabled: {', '.join(enabled) or '(none)'}. {RESTART_NOTE}")
    return 0
