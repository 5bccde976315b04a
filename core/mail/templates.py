"""Mail templates: plain-text files with a ``Subject:`` line, ``$name`` fields.

The shipped templates live in ``core/mail/templates/NAME.txt``. An
administrator overrides one by putting a file of the same name in the override
directory (``<data dir>/mail_templates/`` for a server): the first line is
``Subject: ...``, then a blank line, then the body. Fields are
``string.Template`` placeholders (``$url``, ``${brand_name}``); ``$$`` is a
literal dollar. An override that names an unknown field or cannot be read is
logged and the shipped template is used instead, so a bad edit never stops
mail. Plain text on purpose: values (user names, group names) need no
escaping and no template can inject markup.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from string import Template

log = logging.getLogger("joist.mail")

SHIPPED = Path(__file__).with_name("templates")
NAMES = ("emailVerification", "temporaryAccess", "accountApproval", "accountApproved",
         "groupInvite")


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def _split(text: str, name: str) -> tuple[str, str]:
    first, _, rest = text.partition("\n")
    if not first.lower().startswith("subject:"):
        raise ValueError(f"template {name} must start with a 'Subject:' line")
    return first[len("subject:"):].strip(), rest.lstrip("\n")


def _render(text: str, name: str, fields: dict[str, str]) -> Rendered:
    subject, body = _split(text, name)
    subject = Template(subject).substitute(fields)
    # A header cannot hold a line break (a name with one would forge headers).
    subject = " ".join(subject.split())
    return Rendered(subject=subject, body=Template(body).substitute(fields))


class Templates:
    def __init__(self, override_dir: Path | None = None) -> None:
        self.override_dir = override_dir

    def render(self, name: str, fields: dict[str, str]) -> Rendered:
        if name not in NAMES:
            raise KeyError(name)
        if self.override_dir is not None:
            path = self.override_dir / f"{name}.txt"
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                pass
            except (OSError, UnicodeDecodeError) as exc:
                log.warning("mail template override %s unreadable (%s); using the shipped one",
                            path, exc)
            else:
                try:
                    return _render(text, name, fields)
                except (KeyError, ValueError) as exc:
                    log.warning("mail template override %s is invalid (%s: %s); using the "
                                "shipped one", path, type(exc).__name__, exc)
        shipped = (SHIPPED / f"{name}.txt").read_text(encoding="utf-8")
        return _render(shipped, name, fields)
