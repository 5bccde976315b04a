"""Issue 17 items 3 and 4 in a real Chromium: the sign-in page shows a button
per enabled OAuth provider; it leads to the real OpenID Connect provider's
sign-in form (tests/oidc_op.py), which the test fills and consents to, and
the browser lands back in Joist signed in. The account page says that the
account has no password and what to use on WebDAV and SFTP. A provider that
fails sends the person back to the sign-in page with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from tests.gateways.plugins.oauthsite import OAuthSite, oauth_site
from tests.web.pages import find, heading, screen, wait_for, wait_text


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthSite]:
    with oauth_site(tmp_path_factory.mktemp("web-oauth") / "data") as found:
        yield found


def _token(driver: Any) -> str | None:
    return driver.execute_script("return localStorage.getItem('joist.token')")  # type: ignore[no-any-return]


def test_sign_in_with_provider_then_account_page(op: OAuthSite, browser: Any) -> None:
    base = op.site.server.url
    browser.get(base + "/login?next=%2Fcollections")
    heading(browser, "Sign in")
    button = wait_for(lambda: browser.find_elements(By.ID, "oauth-testop"), "provider button")[0]
    assert button.text == "Sign in with Test OP"
    screen(browser, "sign-in-oauth")
    button.click()
    # the provider's own sign-in form
    login = wait_for(lambda: browser.find_elements(By.NAME, "login"), "provider form")[0]
    assert browser.current_url.startswith(op.issuer)
    login.send_keys("wanda")
    browser.find_element(By.NAME, "password").send_keys("her provider password")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: "Continue" in browser.page_source or
             browser.current_url.startswith(base), "consent page")
    if not browser.current_url.startswith(base):
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#account .me") and
             browser.find_element(By.CSS_SELECTOR, "#account .me").text == "wanda",
             "wanda signed in")
    wait_for(lambda: browser.current_url == base + "/collections", "back at the next page")
    assert "girderToken" not in browser.current_url
    token = _token(browser)
    assert token and op.site.get("user/me", headers={"Girder-Token": token}).json()[
        "email"] == "wanda@example.org"

    find(browser, "#my-account").click()
    heading(browser, "My account")
    note = wait_text(browser, "This account has no password", "#no-password")
    assert "API key" in note.text and "SSH key" in note.text
    assert find(browser, "#oauth-linked").text == "You sign in with Test OP."
    # no password to change, nor to add a one-time code to
    assert not browser.find_elements(By.ID, "old-password")
    assert not browser.find_elements(By.ID, "otp-start")
    assert find(browser, "#api-keys")  # what it uses on WebDAV and SFTP instead
    screen(browser, "account-oauth")


def test_provider_failure_comes_back_to_the_form(op: OAuthSite, browser: Any) -> None:
    browser.execute_script("localStorage.clear()")
    browser.delete_all_cookies()  # the provider's session too (same host, other port)
    settings = op.site.app.services.settings
    settings.set("core.registration_policy", "closed")
    try:
        browser.get(op.site.server.url + "/login")
        wait_for(lambda: browser.find_elements(By.ID, "oauth-testop"), "provider button")[
            0].click()
        wait_for(lambda: browser.find_elements(By.NAME, "login"), "provider form")[
            0].send_keys("xavier")
        browser.find_element(By.NAME, "password").send_keys("pw")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_for(lambda: "Continue" in browser.page_source or
                 browser.current_url.startswith(op.site.server.url), "consent page")
        if not browser.current_url.startswith(op.site.server.url):
            browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        error = wait_text(browser, "Registration on this instance is closed", "#signin-error")
        assert error.is_displayed() and _token(browser) is None
    finally:
        settings.set("core.registration_policy", "open")
