"""The pages the server's mail links open, followed in Chromium from a message
a real SMTP server (aiosmtpd on 127.0.0.1) received: email verification, and a
password reset that ends signed in with the new password."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By

from tests.gateways.http.restsite import RestSite
from tests.gateways.http.test_rest_mail import body, configure, use_server
from tests.mailserver import Inbox, SmtpServer
from tests.web.pages import button, by_label, find, heading, screen, sign_out, wait_for, wait_text

NEW_PASSWORD = "a brand new one"


@pytest.fixture(scope="module")
def inbox(web_site: RestSite) -> Iterator[Inbox]:
    box = Inbox()
    server = SmtpServer(box).start()
    try:
        use_server(web_site, server.port, core__email_host=web_site.server.url)
        yield box
    finally:
        server.stop()


def _link(message: Any) -> str:
    found = re.search(r"(http://\S+/#useraccount/\S+)", body(message))
    assert found is not None, body(message)
    return found.group(1)


def test_password_reset_link_sets_a_new_password(web_site: RestSite, browser: Any,
                                                  inbox: Inbox) -> None:
    b = browser
    b.get(f"{web_site.server.url}/login")
    find(b, "#forgot-link").click()
    heading(b, "Reset your password")
    by_label(b, "Email address").send_keys("nobody@example.org")
    button(b, "Send the link").click()
    wait_text(b, "That email is not registered.")  # Girder's answer, shown in words
    field = by_label(b, "Email address")
    field.clear()
    field.send_keys("carol@example.org")
    button(b, "Send the link").click()
    wait_text(b, "The link is on its way. Check your email.")
    link = _link(inbox.to("carol@example.org"))
    b.get(link)
    heading(b, "Choose a new password")
    by_label(b, "New password").send_keys(NEW_PASSWORD)
    by_label(b, "New password again").send_keys(NEW_PASSWORD + "x")
    button(b, "Set password").click()
    wait_text(b, "The two passwords differ.")
    again = by_label(b, "New password again")
    again.clear()
    again.send_keys(NEW_PASSWORD)
    button(b, "Set password").click()
    wait_text(b, "Your password is changed. You are signed in.")
    wait_for(lambda: find(b, "#account .me").text == "carol", "carol signed in")
    screen(b, "mail-reset")
    assert requests.get(web_site.url("user/authentication"), auth=("carol", NEW_PASSWORD),
                        timeout=10).status_code == 200
    sign_out(b)
    b.get(link)  # the mailed token is used up
    wait_text(b, "This reset link is not valid any more.")
    assert b.find_elements(By.ID, "reset-form") == []


def test_verification_link_verifies_the_address(web_site: RestSite, browser: Any,
                                                 inbox: Inbox) -> None:
    b = browser
    configure(web_site, core__email_verification="required")
    try:
        made = web_site.post("user", data={
            "login": "vera", "email": "vera@example.org", "firstName": "Vera",
            "lastName": "Fied", "password": NEW_PASSWORD})
        assert made.status_code == 200 and "authToken" not in made.json()
        refused = requests.get(web_site.url("user/authentication"),
                               auth=("vera", NEW_PASSWORD), timeout=10)
        assert refused.status_code == 401
        b.get(_link(inbox.to("vera@example.org")))
        wait_text(b, "Your email address is verified.")
        screen(b, "mail-verified")
        assert requests.get(web_site.url("user/authentication"), auth=("vera", NEW_PASSWORD),
                            timeout=10).status_code == 200
    finally:
        configure(web_site, core__email_verification=None)  # back to the default
