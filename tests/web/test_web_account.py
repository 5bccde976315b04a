"""My account in a real Chromium: the profile, a password change (a wrong
current password said in words), an API key created (shown once, usable),
deactivated, activated and revoked, TOTP enrolment from the server's QR code
then sign-in with a code and removal, and SSH keys added and removed."""

from __future__ import annotations

import time
from typing import Any

import pyotp
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from selenium.webdriver.common.by import By

from tests.gateways.http.restsite import RestSite
from tests.web.pages import (
    button,
    by_label,
    find,
    heading,
    link,
    screen,
    sign_in,
    sign_out,
    wait_for,
    wait_text,
)
from tests.world import PASSWORD


def _open_account(b: Any) -> None:
    link(b, "Account").click()
    heading(b, "My account")


def test_profile_and_password(web_site: RestSite, browser: Any) -> None:
    b, base = browser, web_site.server.url
    sign_in(b, base, "bobby")
    _open_account(b)
    screen(b, "account")
    first = by_label(b, "First name")
    assert first.get_attribute("value") == "Bobby"
    first.clear()
    first.send_keys("Robert")
    email = by_label(b, "Email")
    email.clear()
    email.send_keys("not an email")
    b.execute_script("arguments[0].type = 'text'", email)  # let the server judge it
    button(b, "Save profile").click()
    assert "email" in wait_for(lambda: b.find_element(By.ID, "email-error").text,
                               "the email refused").lower()
    email.clear()
    email.send_keys("robert@example.org")
    button(b, "Save profile").click()
    wait_text(b, "Profile saved.", "#profile-done")
    me = web_site.get("user/me", "bobby").json()
    assert (me["firstName"], me["email"]) == ("Robert", "robert@example.org")

    by_label(b, "Current password").send_keys("not my password")
    by_label(b, "New password").send_keys("a new password 1")
    by_label(b, "New password again").send_keys("a new password 1")
    button(b, "Change password").click()
    assert wait_for(lambda: b.find_element(By.ID, "password-error").text,
                    "the refusal") == "Old password is incorrect."
    by_label(b, "Current password").clear()
    by_label(b, "Current password").send_keys(PASSWORD)
    button(b, "Change password").click()
    wait_text(b, "Password changed.", "#password-done")
    url = web_site.url("user/authentication")
    assert requests.get(url, auth=("bobby", "a new password 1"), timeout=10).status_code == 200
    assert requests.get(url, auth=("bobby", PASSWORD), timeout=10).status_code == 401
    sign_out(b)


def test_create_use_and_revoke_an_api_key(web_site: RestSite, browser: Any) -> None:
    b, base = browser, web_site.server.url
    sign_in(b, base, "alice")
    _open_account(b)
    by_label(b, "Name").send_keys("nightly <script>")
    by_label(b, "Token lifetime (days)").send_keys("2")
    find(b, "#key-full").click()  # only some scopes
    find(b, "#scope-core\\.data\\.read").click()
    button(b, "Create API key").click()
    key = wait_for(lambda: b.find_element(By.ID, "new-key").get_attribute("value"), "the key")
    assert len(key) == 40
    row = find(b, "tr[data-key='nightly <script>']")
    assert "Active" in row.text and "2 days" in row.text and "Read data" in row.text
    screen(b, "account-api-key")
    token_url = web_site.url("api_key/token")
    made = requests.post(token_url, params={"key": key}, timeout=10)
    assert made.status_code == 200, made.text
    assert made.json()["authToken"]["scope"] == ["core.data.read"]

    row.find_element(By.XPATH, ".//button[text()='Deactivate']").click()
    wait_for(lambda: "Inactive" in find(b, "tr[data-key='nightly <script>']").text, "inactive")
    assert b.find_elements(By.ID, "new-key") == []  # shown once: gone with the list change
    assert requests.post(token_url, params={"key": key}, timeout=10).status_code == 400
    find(b, "tr[data-key='nightly <script>'] button").click()  # Activate
    wait_for(lambda: "Inactive" not in find(b, "tr[data-key='nightly <script>']").text, "active")
    assert requests.post(token_url, params={"key": key}, timeout=10).status_code == 200

    b.refresh()  # the key is not shown again
    heading(b, "My account")
    assert key not in b.page_source
    find(b, "tr[data-key='nightly <script>'] button.danger").click()
    find(b, "dialog[open] button.danger").click()  # the confirmation
    wait_for(lambda: not b.find_elements(By.CSS_SELECTOR, "tr[data-key='nightly <script>']"),
             "the key deleted")
    assert web_site.get("api_key", "alice").json() == []
    assert requests.post(token_url, params={"key": key}, timeout=10).status_code == 400
    sign_out(b)


def test_totp_enrolment_then_sign_in_with_a_code(web_site: RestSite, browser: Any) -> None:
    b, base = browser, web_site.server.url
    sign_in(b, base, "carol")
    _open_account(b)
    assert find(b, "#otp-state").text == "Two-step sign-in is off."
    button(b, "Set up two-step sign-in").click()
    qr = find(b, "#otp-qr")
    wait_for(lambda: b.execute_script("return arguments[0].complete && "
                                      "arguments[0].naturalWidth", qr) > 100, "the QR code")
    secret = find(b, "#otp-secret").text
    totp = pyotp.TOTP(secret)
    screen(b, "account-otp")
    by_label(b, "Code from the app").send_keys("000000" if totp.now() != "000000" else "111111")
    button(b, "Confirm").click()
    assert wait_for(lambda: b.find_element(By.ID, "otp-error").text, "the refusal") \
        == "Invalid one-time password."
    now = time.time()
    code = by_label(b, "Code from the app")
    code.clear()
    code.send_keys(totp.at(now))
    button(b, "Confirm").click()
    wait_text(b, "Two-step sign-in is on", "#otp")
    assert web_site.get("user/{}".format(web_site.id("carol")), "admin").json()["otp"] is True

    sign_out(b)
    b.get(f"{base}/login")
    by_label(b, "Login or email").send_keys("carol")
    by_label(b, "Password").send_keys(PASSWORD)
    button(b, "Log in").click()
    by_label(b, "One-time code").send_keys(totp.at(now + 30))
    button(b, "Log in").click()
    wait_for(lambda: b.find_element(By.CSS_SELECTOR, "#account .me").text == "carol",
             "carol signed in with a code")
    _open_account(b)
    button(b, "Turn off two-step sign-in").click()
    wait_text(b, "Two-step sign-in is off.", "#otp")
    assert web_site.get("user/{}".format(web_site.id("carol")), "admin").json()["otp"] is False
    sign_out(b)


def test_ssh_keys_added_listed_and_removed(web_site: RestSite, browser: Any) -> None:
    b, base = browser, web_site.server.url
    public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    sign_in(b, base, "alice")
    _open_account(b)
    by_label(b, "Public key (OpenSSH format)").send_keys("not a key")
    button(b, "Add SSH key").click()
    assert wait_for(lambda: b.find_element(By.ID, "ssh-key-error").text or
                    b.find_element(By.ID, "ssh-error").text, "the refusal")
    field = by_label(b, "Public key (OpenSSH format)")
    field.clear()
    field.send_keys(public + " alice@laptop")
    by_label(b, "Name (optional)").send_keys("laptop")
    button(b, "Add SSH key").click()
    entry = wait_for(lambda: b.find_element(By.CSS_SELECTOR, "#ssh-keys li[data-fingerprint]"),
                     "the key listed")
    keys = web_site.get("user/{}/sshkey".format(web_site.id("alice")), "alice").json()
    assert [(k["name"], k["fingerprint"]) for k in keys] == [
        ("laptop", entry.get_attribute("data-fingerprint"))]
    assert "laptop" in entry.text and "ssh-ed25519" in entry.text
    entry.find_element(By.TAG_NAME, "button").click()
    wait_text(b, "No SSH keys.", "#ssh-keys")
    assert web_site.get("user/{}/sshkey".format(web_site.id("alice")), "alice").json() == []
    sign_out(b)
