"""Mail: SMTP settings, templates an administrator can override, a background
outbox with retries, and the notices the account rules send."""

from .notices import Notices
from .service import MailService

__all__ = ["MailService", "Notices"]
