"""Sign in and out in a real Chromium: the labelled form, the one-time code step,
a reload keeping the session, an expired token leading back to the page after a
new sign-in, errors in words next to the form, registration by policy."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import pyotp
from selenium.webdriver.common.by import By

from tests.gateways.http.restsite import RestSite
from tests.web.pages import (
    button,
    by_label,
    find,
    heading,
    screen,
    sign_in,
    sign_out,
    wait_for,
    wait_text,
)
from tests.world import PASSWORD


def _token(driver: Any) -> str | None:
    return driver.execute_script("return localStorage.getItem('joist.token')")  # type: ignore[no-any-return]


def test_sign_in_reload_and_sign_out(web_site: RestSite, browser: Any) -> None:
    base = web_site.server.url
    browser.get(base + "/login")
    heading(browser, "Sign in")
    screen(browser, "sign-in")
    by_label(browser, "Login or email").send_keys("alice")
    by_label(browser, "Password").send_keys("wrong password")
    button(browser, "Log in").click()
    error = wait_text(browser, "Login failed.", "#signin-error")
    assert error.is_displayed() and _token(browser) is None

    by_label(browser, "Password").clear()
    by_label(browser, "Password").send_keys(PASSWORD)
    button(browser, "Log in").click()
    wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "#account .me").text == "alice",
             "alice signed in")
    token = _token(browser)
    assert token and web_site.get("user/me", headers={"Girder-Token": token}).json()[
        "login"] == "alice"

    browser.get(base + "/user/alice/Private")  # a reload keeps the session
    heading(browser, "Private")
    assert find(browser, "#account .me").text == "alice"

    sign_out(browser)
    assert _token(browser) is None
    # The token is gone on the server too, not just forgotten by the page.
    assert web_site.get("user/me", headers={"Girder-Token": token}).json() is None
    browser.get(base + "/user/alice/Private")
    heading(browser, "Not found")


def test_sign_in_by_email(web_site: RestSite, browser: Any) -> None:
    sign_in(browser, web_site.server.url, "bobby@example.org", expect="bobby")
    sign_out(browser)


def test_sign_in_with_a_one_time_code(web_site: RestSite, browser: Any) -> None:
    uri = web_site.post("user/{}/otp".format(web_site.id("carol")), "carol").json()["totpUri"]
    totp = pyotp.TOTP(pyotp.parse_uri(uri).secret)
    enabled = web_site.put("user/{}/otp".format(web_site.id("carol")), "carol",
                           headers={"Girder-OTP": totp.now()})
    assert enabled.status_code == 200, enabled.text
    base = web_site.server.url
    browser.get(base + "/login?next=/collection/shared")
    by_label(browser, "Login or email").send_keys("carol")
    by_label(browser, "Password").send_keys(PASSWORD)
    button(browser, "Log in").click()
    code = by_label(browser, "One-time code")  # appears only now, when the server asks
    wait_text(browser, "one-time code", "#signin-error")
    screen(browser, "sign-in-otp")
    code.send_keys("000000" if totp.now() != "000000" else "111111")
    button(browser, "Log in").click()
    wait_text(browser, "Login failed.", "#signin-error")
    # The step after the one used to enrol (the server takes one step of drift and
    # refuses a step already used).
    code.clear()
    code.send_keys(totp.at(time.time() + 30))
    button(browser, "Log in").click()
    heading(browser, "shared")  # and back to where the sign-in was asked for
    assert find(browser, "#account .me").text == "carol"
    sign_out(browser)


def test_expired_token_returns_to_the_page_after_sign_in(web_site: RestSite,
                                                         browser: Any) -> None:
    base = web_site.server.url
    sign_in(browser, base, "alice")
    browser.get(base + "/user/alice/Private/data")
    heading(browser, "data")
    token = _token(browser)
    assert token
    web_site.app.services.auth.tokens.delete(token)  # expired or revoked on the server

    browser.get(base + "/user/alice/Private/data/deep")  # a reload with the dead token
    heading(browser, "Sign in")
    wait_text(browser, "Your session has ended")
    next_path = urllib.parse.parse_qs(urllib.parse.urlsplit(browser.current_url).query)["next"]
    assert next_path == ["/user/alice/Private/data/deep"]
    by_label(browser, "Login or email").send_keys("alice")
    by_label(browser, "Password").send_keys(PASSWORD)
    button(browser, "Log in").click()
    heading(browser, "deep")
    assert browser.current_url == base + "/user/alice/Private/data/deep"

    # Expiring while the page is open: the next API call brings the form back.
    web_site.app.services.auth.tokens.delete(_token(browser))
    find(browser, "a[href='/user/alice/Private/data/deep/d1']").click()
    heading(browser, "Sign in")
    sign_in(browser, base, "alice", next_path="/user/alice/Private/data/deep/d1")
    heading(browser, "d1")
    sign_out(browser)


def test_registration_by_policy(web_site: RestSite, browser: Any) -> None:
    base = web_site.server.url
    settings = web_site.app.services.settings

    def register(login: str) -> None:
        browser.get(base + "/register")
        heading(browser, "Register")
        for label, value in (("Login", login), ("Email", f"{login}@example.org"),
                             ("First name", "Dee"), ("Last name", "Tester"),
                             ("Password", PASSWORD)):
            by_label(browser, label).send_keys(value)
        button(browser, "Create account").click()

    register("alice")  # taken: the error is next to the login field
    wait_text(browser, "That login is already registered.", "#reg-login-error")
    screen(browser, "register-error")

    register("dora")  # open: signed in at once
    wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "#account .me").text == "dora",
             "dora signed in")
    sign_out(browser)

    settings.set("core.registration_policy", "approve")
    try:
        register("eddie")
        wait_text(browser, "waits for an administrator's approval")
        assert browser.find_elements(By.CSS_SELECTOR, "#account .me") == []
        settings.set("core.registration_policy", "closed")
        browser.get(base + "/register")
        wait_text(browser, "Registration on this server is closed.")
        browser.get(base + "/login")
        heading(browser, "Sign in")
        assert browser.find_elements(By.LINK_TEXT, "Register") == []
    finally:
        settings.set("core.registration_policy", "open")


def test_anonymous_sees_public_data_only(web_site: RestSite, browser: Any) -> None:
    base = web_site.server.url
    browser.delete_all_cookies()
    browser.get(base + "/user/alice/Public")
    heading(browser, "Public")  # public data needs no sign-in
    assert "readme.txt" in find(browser, "table.contents").text
    browser.get(base + "/user/alice/Private/data")  # exists, but not for anonymous
    heading(browser, "Not found")
    wait_text(browser, "Path not found: /user/alice/Private/data")
    find(browser, "#main a[href^='/login']").click()
    heading(browser, "Sign in")
    by_label(browser, "Login or email").send_keys("alice")
    by_label(browser, "Password").send_keys(PASSWORD)
    button(browser, "Log in").click()
    heading(browser, "data")  # and the page asked for, now visible
    sign_out(browser)


def test_next_never_leaves_the_site(web_site: RestSite, browser: Any) -> None:
    base = web_site.server.url
    for hostile in ("//example.org/x", "/\\example.org/x", "https://example.org/"):
        sign_in(browser, base, "alice", next_path=urllib.parse.quote(hostile, safe=""))
        assert browser.current_url.startswith(base + "/"), browser.current_url
        sign_out(browser)
