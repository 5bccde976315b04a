"""Mail through a real SMTP server (aiosmtpd on 127.0.0.1): verification,
password reset, approval notices, group invitations, retries, failures shown to
administrators, TLS, and that neither requests nor secrets depend on SMTP."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.gateways.http.restsite import RestSite
from tests.mailserver import Inbox, SmtpServer, StalledServer, closed_port, self_signed
from tests.world import PASSWORD

SECRET = "smtp-Secret-7f3a9"


def configure(site: RestSite, **values: Any) -> None:
    """Set settings as an administrator does, through ``PUT system/setting``."""
    pairs = [{"key": k.replace("__", "."), "value": v} for k, v in values.items()]
    reply = site.put("system/setting", "admin", data={"list": json.dumps(pairs)})
    assert reply.status_code == 200, reply.text


def use_server(site: RestSite, port: int, **values: Any) -> None:
    configure(site, **{"core__smtp_host": "127.0.0.1", "core__smtp__port": port,
                       "joist__mail__retry_base_seconds": 0.2, "joist__smtp__timeout": 5,
                       **values})


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def smtp(site: RestSite, inbox: Inbox) -> Iterator[SmtpServer]:
    server = SmtpServer(inbox).start()
    try:
        use_server(site, server.port)
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- settings

def test_smtp_settings_validated_and_password_never_shown(site: RestSite,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    caplog.set_level(logging.DEBUG)
    for key, bad in (("core.smtp.encryption", "tls"), ("core.smtp.port", 0),
                     ("core.smtp_host", " "), ("core.email_host", "ftp://x"),
                     ("core.email_from_address", "")):
        reply = site.put("system/setting", "admin", data={"key": key, "value": bad})
        assert reply.status_code == 400, (key, reply.text)
    configure(site, core__smtp__password=SECRET, core__smtp__username="mailer")
    one = site.get("system/setting", "admin", params={"key": "core.smtp.password"})
    assert one.status_code == 200 and one.json() == "********"
    listed = site.get("system/setting", "admin", params={"list": json.dumps(
        ["core.smtp.password", "core.smtp.username"])})
    assert listed.json() == {"core.smtp.password": "********", "core.smtp.username": "mailer"}
    # A form that writes back what it read keeps the stored password.
    configure(site, core__smtp__password="********")
    assert site.app.services.settings.get("core.smtp.password") == SECRET
    assert SECRET not in json.dumps(site.app.services.settings.all())
    assert site.get("system/setting", "alice",
                    params={"key": "core.smtp.password"}).status_code == 403
    assert SECRET not in caplog.text


# ---------------------------------------------------------------- email verification

def test_registration_with_verification_required(site: RestSite, smtp: SmtpServer,
                                                 inbox: Inbox) -> None:
    configure(site, core__email_verification="required")
    created = site.post("user", data={
        "login": "newbie", "email": "Newbie@Example.org", "firstName": "New",
        "lastName": "Bie", "password": PASSWORD})
    assert created.status_code == 200, created.text
    user = created.json()
    assert "authToken" not in user and "girderToken" not in created.headers.get("Set-Cookie", "")
    assert user["emailVerified"] is False
    refused = requests.get(site.url("user/authentication"), auth=("newbie", PASSWORD),
                           timeout=10)
    assert refused.status_code == 401
    assert refused.json()["extra"] == "emailVerification"

    message = inbox.to("newbie@example.org")
    assert message["Subject"] == "Joist: Email verification"
    assert message["From"] == "Joist <no-reply@joist.invalid>"
    link = re.search(r"(\S+)/#useraccount/(\w+)/verification/(\w+)", body(message))
    assert link is not None and link.group(2) == user["_id"]
    # No core.email_host: the server's own name and port (not the Host header).
    assert link.group(1).startswith("http://") and \
        link.group(1).endswith(f":{site.server.url.rsplit(':', 1)[1]}")
    # Ask again (by email): a second mail with another working token.
    again = site.post("user/verification", params={"login": "NEWBIE@example.org"})
    assert again.status_code == 200 and again.json() == {"message": "Sent verification email."}
    second = inbox.wait(2)[1]
    token2 = re.search(r"/verification/(\w+)", body(second))
    assert token2 is not None and token2.group(1) != link.group(3)

    verified = site.put(f"user/{user['_id']}/verification", data={"token": link.group(3)})
    assert verified.status_code == 200, verified.text
    assert verified.json()["authToken"]["token"]
    assert requests.get(site.url("user/authentication"), auth=("newbie", PASSWORD),
                        timeout=10).status_code == 200


def test_optional_verification_mails_and_logs_in(site: RestSite, smtp: SmtpServer,
                                                 inbox: Inbox) -> None:
    configure(site, core__email_verification="optional",
              core__email_host="https://data.example.org/")
    created = site.post("user", data={
        "login": "optin", "email": "optin@example.org", "firstName": "O",
        "lastName": "P", "password": PASSWORD})
    assert created.status_code == 200 and created.json()["authToken"]["token"]
    text = body(inbox.to("optin@example.org"))
    assert f"https://data.example.org/#useraccount/{created.json()['_id']}/verification/" in text


# ---------------------------------------------------------------- password reset

def test_password_reset_by_mail(site: RestSite, smtp: SmtpServer, inbox: Inbox) -> None:
    # A forged Host header does not steer the link (and its token) elsewhere.
    sent = site.put("user/password/temporary", params={"email": "BOBBY@example.org"},
                    headers={"Host": "evil.example:80"})
    assert sent.status_code == 200 and sent.json() == {"message": "Sent temporary access email."}
    message = inbox.to("bobby@example.org")
    assert message["Subject"] == "Joist: Temporary access"
    link = re.search(r"#useraccount/(\w+)/token/(\w+)", body(message))
    assert link is not None and link.group(1) == site.id("bobby")
    assert "evil.example" not in body(message)
    user_id, temporary = link.groups()

    assert site.get(f"user/password/temporary/{site.id('alice')}",
                    params={"token": temporary}).status_code == 401  # not alice's
    checked = site.get(f"user/password/temporary/{user_id}", params={"token": temporary})
    assert checked.status_code == 200, checked.text
    reply = checked.json()
    assert reply["user"]["login"] == "bobby" and reply["authToken"]["temporary"] is True
    assert reply["message"] == "Temporary access token is valid."
    login_token = reply["authToken"]["token"]
    assert login_token != temporary

    headers = {"Girder-Token": login_token}
    wrong = site.put("user/password", headers=headers, data={"old": "guess", "new": "n3w pass"})
    assert wrong.status_code == 401
    changed = site.put("user/password", headers=headers,
                       data={"old": temporary, "new": "n3w password"})
    assert changed.status_code == 200, changed.text
    assert requests.get(site.url("user/authentication"), auth=("bobby", "n3w password"),
                        timeout=10).status_code == 200
    # The temporary token is used up.
    assert site.get(f"user/password/temporary/{user_id}",
                    params={"token": temporary}).status_code == 401
    assert site.put("user/password", headers=headers,
                    data={"old": temporary, "new": "other pass"}).status_code == 401


# ---------------------------------------------------------------- notices

def test_approval_notices(site: RestSite, smtp: SmtpServer, inbox: Inbox) -> None:
    configure(site, core__registration_policy="approve")
    created = site.post("user", data={
        "login": "waiting", "email": "waiting@example.org", "firstName": "Wait",
        "lastName": "Ing", "password": PASSWORD})
    assert created.status_code == 200 and "authToken" not in created.json()
    notice = inbox.to("admin@example.org")
    assert notice["Subject"] == "Joist: Account pending approval"
    assert "waiting@example.org" in body(notice)
    assert f"#user/{created.json()['_id']}" in body(notice)
    approved = site.put(f"user/{created.json()['_id']}", "admin", params={
        "firstName": "Wait", "lastName": "Ing", "email": "waiting@example.org",
        "status": "enabled"})
    assert approved.status_code == 200, approved.text
    welcome = inbox.to("waiting@example.org")
    assert welcome["Subject"] == "Joist: Account approved"
    assert "Hello Wait" in body(welcome)


def test_group_invitation_mail(site: RestSite, smtp: SmtpServer, inbox: Inbox) -> None:
    group = site.post("group", "alice", params={"name": "readers"}).json()
    quiet = site.post(f"group/{group['_id']}/invitation", "alice",
                      data={"userId": site.id("carol"), "quiet": "true"})
    assert quiet.status_code == 200, quiet.text
    loud = site.post(f"group/{group['_id']}/invitation", "alice",
                     data={"userId": site.id("bobby")})
    assert loud.status_code == 200, loud.text
    first = inbox.wait(1)[0]  # one worker, in order: a mail to carol would come first
    assert first["To"] == "bobby@example.org"
    assert first["Subject"] == "Joist: You've been invited to a group"
    assert '"readers"' in body(first) and "Alice Tester (alice)" in body(first)
    assert f"#group/{group['_id']}" in body(first)
    assert len(inbox.messages) == 1


def test_template_override(site: RestSite, smtp: SmtpServer, inbox: Inbox,
                           caplog: pytest.LogCaptureFixture) -> None:
    overrides = site.app.settings.data_path / "mail_templates"
    overrides.mkdir()
    (overrides / "temporaryAccess.txt").write_text(
        "Subject: Reset for $login at $brand_name\n\nGo to $url now.\n")
    (overrides / "emailVerification.txt").write_text("Subject: x\n\n$no_such_field\n")
    site.put("user/password/temporary", params={"email": "carol@example.org"})
    custom = inbox.to("carol@example.org")
    assert custom["Subject"] == "Reset for carol at Joist"
    assert re.match(r"Go to \S+/#useraccount/\w+/token/\w+ now\.", body(custom))
    site.post("user/verification", params={"login": "alice"})  # broken override: shipped
    assert inbox.to("alice@example.org")["Subject"] == "Joist: Email verification"
    assert "emailVerification.txt is invalid" in caplog.text


# ---------------------------------------------------------------- delivery

def test_retries_until_the_server_is_back(site: RestSite, smtp: SmtpServer, inbox: Inbox,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="joist.mail")
    smtp.stop()
    sent = site.put("user/password/temporary", params={"email": "alice@example.org"})
    assert sent.status_code == 200
    deadline = time.monotonic() + 10
    while "retry in" not in caplog.text:  # the first attempt failed
        assert time.monotonic() < deadline, caplog.text
        time.sleep(0.05)
    smtp.start()  # the same port
    assert inbox.to("alice@example.org")["Subject"] == "Joist: Temporary access"
    deadline = time.monotonic() + 10  # the worker finishes the session after DATA
    while (status := site.get("system/mail", "admin").json())["queued"]:
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert status["failureCount"] == 0 and len(inbox.messages) == 1


def test_failures_recorded_for_administrators(site: RestSite) -> None:
    use_server(site, closed_port(), joist__mail__retries=1)
    assert site.post("user/verification", params={"login": "bobby"}).status_code == 200
    deadline = time.monotonic() + 10
    while not (status := site.get("system/mail", "admin").json())["failureCount"]:
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    failure = status["failures"][0]
    assert failure["kind"] == "emailVerification" and failure["to"] == ["bobby@example.org"]
    assert failure["attempts"] == 2 and "ConnectionRefused" in failure["error"]
    assert site.get("system/mail", "alice").status_code == 403
    assert site.get("system/mail").status_code == 401
    assert site.delete("system/mail", "admin").json() == {"removed": 1}
    assert site.get("system/mail", "admin").json()["failureCount"] == 0


def test_requests_never_wait_for_a_stalled_server(site: RestSite) -> None:
    stalled = StalledServer()
    try:
        use_server(site, stalled.port, joist__smtp__timeout=3)
        for _ in range(3):
            started = time.monotonic()
            reply = site.put("user/password/temporary", params={"email": "alice@example.org"})
            assert reply.status_code == 200
            assert time.monotonic() - started < 1.5
        assert site.get("system/mail", "admin").json()["queued"] >= 2
    finally:
        stalled.close()


# aiosmtpd does not count implicit TLS as TLS when it checks where AUTH is allowed.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_tls_and_login_without_leaking_the_password(site: RestSite, inbox: Inbox,
                                                    tmp_path: Path, mode: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cert = self_signed(tmp_path)
    server = SmtpServer(inbox, mode=mode, cert=cert, credentials=("mailer", SECRET)).start()
    try:
        # Without trusting the certificate: refused, and recorded.
        use_server(site, server.port, core__smtp__encryption=mode,
                   core__smtp__username="mailer", core__smtp__password=SECRET,
                   joist__mail__retries=0)
        site.put("user/password/temporary", params={"email": "alice@example.org"})
        deadline = time.monotonic() + 10
        while not (status := site.get("system/mail", "admin").json())["failureCount"]:
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        assert "CERTIFICATE_VERIFY_FAILED" in status["failures"][0]["error"]
        configure(site, joist__smtp__ca_file=str(cert[0]))
        site.put("user/password/temporary", params={"email": "bobby@example.org"})
        assert inbox.to("bobby@example.org")["Subject"] == "Joist: Temporary access"
        assert inbox.logins == [("mailer", SECRET)]
        shown = site.get("system/setting", "admin", params={"list": json.dumps(
            ["core.smtp.password", "core.smtp.encryption"])}).json()
        assert shown == {"core.smtp.password": "********", "core.smtp.encryption": mode}
        # The server has the message before the sender's call returns and logs it.
        deadline = time.monotonic() + 10
        while "mail temporaryAccess sent to bobby@example.org" not in (ours := joist_log(caplog)):
            assert time.monotonic() < deadline, ours
            time.sleep(0.05)
    finally:
        server.stop()
    assert SECRET not in joist_log(caplog)


def joist_log(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("joist"))
