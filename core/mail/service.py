"""The mail service: render a template, queue the message, record what failed."""

from __future__ import annotations

import datetime as _dt
import email.utils
import logging
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from ..clock import utcnow
from ..db.engine import Collection, Document
from ..stored_settings import SettingsService
from . import smtp
from .outbox import Envelope, Outbox
from .templates import Templates

log = logging.getLogger("joist.mail")

FAILURES_KEPT = 500  # newest failure records kept; older ones are dropped
FAILURE_DAYS = 30.0


class MailService:
    def __init__(self, settings: SettingsService, failures: Collection, *,
                 template_dir: Path | None = None, capacity: int = 1000) -> None:
        self.settings = settings
        self._failures = failures
        self.templates = Templates(template_dir)
        self.outbox = Outbox(self._deliver, self._give_up, self._policy, capacity=capacity)

    # ------------------------------------------------------------ sending
    def link(self, origin: str, fragment: str = "") -> str:
        """A link back to the server: ``core.email_host``, else
        ``core.server_root``, else ``origin`` (where the request came to),
        followed by ``/#fragment`` (the web client's routes, as Girder's)."""
        base = str(self.settings.get("core.email_host") or
                   self.settings.get("core.server_root") or origin or "").rstrip("/")
        return f"{base}/#{fragment}" if fragment else f"{base}/"

    def send(self, kind: str, to: str, fields: dict[str, Any]) -> bool:
        """Queue the ``kind`` template for ``to``; returns at once (False when
        the message could not even be queued: it is then a recorded failure)."""
        values = {"brand_name": str(self.settings.get("core.brand_name")),
                  **{k: "" if v is None else str(v) for k, v in fields.items()}}
        rendered = self.templates.render(kind, values)
        message = EmailMessage()
        message["From"] = str(self.settings.get("core.email_from_address"))
        message["To"] = to
        message["Subject"] = rendered.subject
        message["Date"] = email.utils.formatdate(localtime=False)
        message["Message-ID"] = email.utils.make_msgid(domain="joist")
        message.set_content(rendered.body)
        return self.outbox.submit(Envelope(message=message, recipients=[to], kind=kind))

    def stop(self, timeout: float = 5.0) -> None:
        self.outbox.stop(timeout)

    # ------------------------------------------------------------ failures
    def failures(self, *, limit: int = 50, offset: int = 0) -> list[Document]:
        """Messages given up on, newest first (for administrators)."""
        return self._failures.find({}, sort=[("time", -1), ("_id", -1)], skip=offset,
                                   limit=limit)

    def failure_count(self) -> int:
        return self._failures.count({})

    def clear_failures(self) -> int:
        return self._failures.delete_many({})

    # ------------------------------------------------------------ the outbox's hooks
    def _policy(self) -> tuple[int, float]:
        return (int(self.settings.get("joist.mail.retries")),
                float(self.settings.get("joist.mail.retry_base_seconds")))

    def _deliver(self, envelope: Envelope) -> None:
        # Settings are read at each attempt: an administrator who fixes them
        # sees the retries succeed.
        smtp.send(smtp.SmtpConfig.from_settings(self.settings), envelope.message,
                  envelope.recipients)

    def _give_up(self, envelope: Envelope, error: str) -> None:
        now = utcnow()
        self._failures.insert_one({
            "time": now, "expires": now + _dt.timedelta(days=FAILURE_DAYS),
            "kind": envelope.kind, "to": envelope.recipients,
            "subject": str(envelope.message["Subject"]), "attempts": envelope.attempts,
            "error": error, "errors": envelope.errors[-5:]})
        stale = self._failures.find({}, sort=[("time", -1), ("_id", -1)],
                                    skip=FAILURES_KEPT, limit=100, projection=["_id"])
        if stale:
            self._failures.delete_many({"_id": {"$in": [d["_id"] for d in stale]}})
