"""What the browser tests share: waiting on the page (polling with a deadline,
never sleeping), signing in, reading the console, saving review screenshots."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium.common.exceptions import (
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.world import PASSWORD

T = TypeVar("T")
DEADLINE = 10.0
SCREENS = os.environ.get("JOIST_WEB_SCREENS")


def wait_for(check: Callable[[], T | None], what: str, deadline: float = DEADLINE) -> T:
    """Poll ``check`` until it returns something truthy, or fail saying ``what``."""
    end = time.monotonic() + deadline
    last: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (NoSuchElementException, StaleElementReferenceException) as exc:
            last = exc
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}" +
                                 (f" ({last.__class__.__name__})" if last else ""))
        time.sleep(0.05)  # a poll interval, not a synchronisation


def find(driver: Any, css: str) -> WebElement:
    return wait_for(lambda: driver.find_element(By.CSS_SELECTOR, css), css)


def main_text(driver: Any) -> str:
    return str(driver.find_element(By.ID, "main").text)


def wait_text(driver: Any, text: str, css: str = "#main") -> WebElement:
    return wait_for(lambda: (lambda el: el if text in el.text else None)(
        driver.find_element(By.CSS_SELECTOR, css)), f"{text!r} in {css}")


def heading(driver: Any, text: str) -> WebElement:
    """Wait until the page's h1 reads ``text`` (the view has rendered)."""
    return wait_for(lambda: (lambda el: el if el.text == text and
                             driver.find_element(By.ID, "main").get_attribute("aria-busy")
                             is None else None)(driver.find_element(By.CSS_SELECTOR, "#main h1")),
                    f"the page titled {text!r}")


def open_page(driver: Any, base: str, path: str, title: str) -> None:
    driver.get(base + path)
    heading(driver, title)


def link(driver: Any, text: str) -> WebElement:
    return wait_for(lambda: driver.find_element(By.LINK_TEXT, text), f"link {text!r}")


def by_label(driver: Any, label: str) -> WebElement:
    """The input a visible <label> names (what a person reads on the page)."""
    def found() -> WebElement | None:
        for element in driver.find_elements(By.TAG_NAME, "label"):
            if element.text.strip() == label and element.is_displayed():
                target = element.get_attribute("for")
                if target:
                    return driver.find_element(By.ID, target)
        return None
    return wait_for(found, f"the field labelled {label!r}")


def button(driver: Any, text: str) -> WebElement:
    def found() -> WebElement | None:
        for element in driver.find_elements(By.TAG_NAME, "button"):
            if element.text.strip() == text and element.is_displayed():
                return element
        return None
    return wait_for(found, f"the button {text!r}")


def sign_in(driver: Any, base: str, login: str, password: str = PASSWORD,
            next_path: str = "/", expect: str | None = None) -> None:
    """Sign in through the form; ``expect``: the login shown after (when signing
    in by email)."""
    driver.get(f"{base}/login?next={next_path}")
    by_label(driver, "Login or email").send_keys(login)
    by_label(driver, "Password").send_keys(password)
    button(driver, "Log in").click()
    wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#account .me").text ==
             (expect or login), f"{login} signed in")


def sign_out(driver: Any) -> None:
    find(driver, "#sign-out").click()
    find(driver, "#sign-in")


def no_alert(driver: Any) -> bool:
    try:
        alert = driver.switch_to.alert
    except NoAlertPresentException:
        return True
    text = alert.text
    alert.dismiss()
    raise AssertionError(f"a dialog opened: {text!r}")


def console(driver: Any) -> list[dict[str, Any]]:
    return list(driver.get_log("browser"))


def csp_violations(entries: list[dict[str, Any]]) -> list[str]:
    return [e["message"] for e in entries if "Content Security Policy" in e["message"] or
            "Content-Security-Policy" in e["message"]]


def script_errors(entries: list[dict[str, Any]]) -> list[str]:
    """Uncaught script errors (a failed request the page handled is logged by the
    browser too, as a network entry: those are not counted)."""
    return [e["message"] for e in entries
            if e["level"] == "SEVERE" and e.get("source") != "network"]


def screen(driver: Any, name: str) -> None:
    """A review screenshot (only when JOIST_WEB_SCREENS names a folder)."""
    if SCREENS:
        Path(SCREENS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SCREENS) / f"{name}.png"))
