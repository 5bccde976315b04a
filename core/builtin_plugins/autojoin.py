"""``autojoin`` (Girder's plugin): a new user whose email matches a rule's
pattern joins the rule's group at the rule's level.

The setting ``autojoin`` is a list of ``{pattern, groupId, level}``; a pattern
matches when it occurs in the email, case-insensitively (Girder's rule, so
``@example.com`` matches every address of that domain). The handler runs on
``model.user.save.created``, which core fires for every account it creates:
REST registration, an administrator's create, ``joist user create`` and the
first LDAP login.
"""

from __future__ import annotations

import logging
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from .. import acl
from ..acl import SYSTEM
from ..errors import CoreError
from ..events import Event
from ..plugins import Plugin, PluginInfo

log = logging.getLogger("joist.plugins.autojoin")

SETTING = "autojoin"
LEVELS = (acl.READ, acl.WRITE, acl.ADMIN)


def validate_rules(value: Any) -> list[dict[str, Any]]:
    """A list of rules, each with a string pattern, a group id and a level
    0 (member), 1 (moderator) or 2 (administrator)."""
    if not isinstance(value, list):
        raise ValueError("autojoin rules must be a JSON array")
    rules: list[dict[str, Any]] = []
    for n, rule in enumerate(value):
        if not isinstance(rule, dict):
            raise ValueError(f"rule {n} must be an object")
        missing = [k for k in ("pattern", "groupId", "level") if k not in rule]
        if missing:
            raise ValueError(f"rule {n} lacks {', '.join(missing)}")
        pattern, group_id, level = rule["pattern"], rule["groupId"], rule["level"]
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValueError(f"rule {n}: pattern must be a non-empty string")
        if not isinstance(group_id, str) or not ObjectId.is_valid(group_id):
            raise ValueError(f"rule {n}: groupId must be a group id")
        if isinstance(level, bool) or level not in LEVELS:
            raise ValueError(f"rule {n}: level must be 0, 1 or 2")
        rules.append({"pattern": pattern, "groupId": group_id, "level": int(level)})
    return rules


class AutojoinPlugin(Plugin):
    name = "autojoin"
    description = "Automatically assign new users to groups based on their email address."
    url = "https://girder.readthedocs.io/en/latest/plugins.html#auto-join"

    def load(self, info: PluginInfo) -> None:
        info.register_setting(SETTING, [], validate_rules,
                              "Rules {pattern, groupId, level} applied to new users.")
        services = info.services

        def user_created(event: Event) -> None:
            user = event.info
            email = str(user.get("email") or "").lower()
            for rule in services.settings.get(SETTING) or []:
                if rule["pattern"].lower() not in email:
                    continue
                try:
                    group = services.groups.get(SYSTEM, ObjectId(rule["groupId"]))
                    services.groups.add_member(SYSTEM, group, user, level=int(rule["level"]),
                                               force=True)
                except (CoreError, InvalidId) as exc:
                    # a rule naming a deleted group must not stop the account
                    log.warning("autojoin: rule for group %s not applied: %s",
                                rule["groupId"], exc)

        info.bind("model.user.save.created", user_created)
