"""Browser tests: Debian's headless Chromium, driven by Selenium through Debian's
chromium-driver (pinned to the same browser version), against a live server on
127.0.0.1, port 0. One server and one browser per module (they are the costly
part); both are stopped even on failure.

On a failure the page is saved as a screenshot (and its console log beside it)
under pytest's base temp directory, ``web-failures/``. With
``JOIST_WEB_SCREENS=DIR`` the tests also save a screenshot of each main page
there, for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateways.http.restsite import RestSite, running_site

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FAILURES: list[Any] = []


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for binary in (CHROMIUM, DRIVER):
        if not os.access(binary, os.X_OK):
            return f"{binary} is missing (make system-deps installs chromium, chromium-driver)"
    return None


@pytest.fixture(scope="module")
def web_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestSite]:
    with running_site(tmp_path_factory.mktemp("web") / "data",
                      **{"webdav.enabled": True}) as site:
        yield site


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    missing = _missing()
    if missing:
        pytest.fail(missing)  # the suite needs them: say so instead of skipping quietly
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-sync",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=DRIVER, log_output=os.devnull)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    FAILURES.append(driver)
    try:
        yield driver
    finally:
        FAILURES.remove(driver)
        driver.quit()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed and FAILURES:
        folder = Path(item.config._tmp_path_factory.getbasetemp()) / "web-failures"  # type: ignore[attr-defined]
        folder.mkdir(parents=True, exist_ok=True)
        name = item.name.replace("/", "_")[:120]
        driver = FAILURES[-1]
        try:
            driver.save_screenshot(str(folder / f"{name}.png"))
            (folder / f"{name}.log").write_text("\n".join(
                [driver.current_url, *[str(e) for e in driver.get_log("browser")]]))
            report.sections.append(("web", f"screenshot: {folder / (name + '.png')}"))
        except Exception as exc:  # the browser may be gone; the failure itself matters more
            report.sections.append(("web", f"no screenshot: {exc}"))
    return report
