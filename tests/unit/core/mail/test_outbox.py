"""The mail outbox on its own: order, backoff, giving up, a bound, stopping;
templates; the SMTP password setting (no network: delivery is the test's)."""

from __future__ import annotations

import threading
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from joist.admin.bootstrap import App
from joist.core.mail.outbox import Envelope, Outbox
from joist.core.mail.smtp import SmtpConfig
from joist.core.mail.templates import Templates
from joist.core.stored_settings import SettingsService


def envelope(n: int) -> Envelope:
    message = EmailMessage()
    message["Subject"] = f"m{n}"
    return Envelope(message=message, recipients=[f"u{n}@example.org"], kind="test")


class Recorder:
    def __init__(self, fail_times: int = 0) -> None:
        self.fail_times = fail_times
        self.attempts: list[tuple[str, float]] = []
        self.given_up: list[tuple[str, str]] = []
        self.done = threading.Event()

    def deliver(self, env: Envelope) -> None:
        self.attempts.append((str(env.message["Subject"]), time.monotonic()))
        if len(self.attempts) <= self.fail_times:
            raise ConnectionRefusedError("down")
        self.done.set()

    def give_up(self, env: Envelope, error: str) -> None:
        self.given_up.append((str(env.message["Subject"]), error))
        self.done.set()


def test_backoff_doubles_then_succeeds() -> None:
    rec = Recorder(fail_times=2)
    box = Outbox(rec.deliver, rec.give_up, lambda: (5, 0.1))
    try:
        assert box.submit(envelope(1))
        assert rec.done.wait(5)
    finally:
        box.stop(1)
    times = [t for _, t in rec.attempts]
    assert len(times) == 3 and not rec.given_up
    assert times[1] - times[0] >= 0.09 and times[2] - times[1] >= 0.19  # 0.1, then 0.2


def test_gives_up_after_the_retries_and_records() -> None:
    rec = Recorder(fail_times=99)
    box = Outbox(rec.deliver, rec.give_up, lambda: (1, 0.05))
    try:
        box.submit(envelope(1))
        assert rec.done.wait(5)
    finally:
        box.stop(1)
    assert len(rec.attempts) == 2
    assert rec.given_up == [("m1", "ConnectionRefusedError: down")]


def test_full_outbox_refuses_without_waiting() -> None:
    gate = threading.Event()
    rec = Recorder()

    def slow(env: Envelope) -> None:
        gate.wait(5)

    box = Outbox(slow, rec.give_up, lambda: (0, 1.0), capacity=2)
    try:
        accepted = [box.submit(envelope(n)) for n in range(6)]
        # one may already be in the worker's hands, two wait: the rest are refused
        assert accepted[:2] == [True, True] and accepted[-1] is False
        assert rec.given_up and "full" in rec.given_up[-1][1]
    finally:
        gate.set()
        box.stop(2)
    assert box.submit(envelope(9)) is False  # stopped
    assert "stopped" in rec.given_up[-1][1]


def test_stop_sends_what_is_due_first() -> None:
    rec = Recorder()
    box = Outbox(rec.deliver, rec.give_up, lambda: (0, 1.0))
    for n in range(3):
        box.submit(envelope(n))
    box.stop(5)
    assert [s for s, _ in rec.attempts] == ["m0", "m1", "m2"]


def test_templates_override_and_fallback(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                         ) -> None:
    fields = {"brand_name": "B", "login": "x", "first_name": "X", "url": "http://u/#v"}
    shipped = Templates(None).render("emailVerification", fields)
    assert shipped.subject == "B: Email verification" and "http://u/#v" in shipped.body
    (tmp_path / "emailVerification.txt").write_text("Subject: Hi $login\n\nBody $$ $url\n")
    forged = {**fields, "login": "x\r\nBcc: evil@example.org"}
    mine = Templates(tmp_path).render("emailVerification", forged)
    assert mine.subject == "Hi x Bcc: evil@example.org"  # one header line, no new header
    assert mine.body == "Body $ http://u/#v\n"
    (tmp_path / "emailVerification.txt").write_text("no subject line\n")
    assert Templates(tmp_path).render("emailVerification", fields) == shipped
    assert "is invalid" in caplog.text
    with pytest.raises(KeyError):
        Templates(None).render("../etc/passwd", fields)


def test_smtp_password_from_the_environment_stays_a_string(app: App) -> None:
    settings = SettingsService(app.store.settings,
                               env={"JOIST_SETTING_CORE_SMTP_PASSWORD": "12345"})
    assert settings.get("core.smtp.password") == "12345"
    assert settings.shown("core.smtp.password") == "********"
    assert "12345" not in repr(SmtpConfig.from_settings(settings))
