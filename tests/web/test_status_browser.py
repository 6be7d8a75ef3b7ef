"""The status page in a real headless Chromium (Debian's chromium + chromium-driver, driven by selenium): log in,
see the list, open a server's page, log out, log in as a member of another project who does not see that server.
Screenshots are kept: under pytest's tmp dir and copied to $PROVISION_TEST_ARTIFACTS (default
tests/web/artifacts/, ignored by git); their paths are printed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from apitest import PASSWORD
from .webtest import HOSTILE, Site

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("PROVISION_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
# Without these, Chromium reaches for Google's hosts (updates, sync, field trials, QUIC probes); every
# request of the test must stay on 127.0.0.1.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
         "--no-default-browser-check", "--metrics-recording-only", "--window-size=1280,900",
         # and any host name it might still look up resolves to nothing: only 127.0.0.1 is reachable by name.
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile, quit at the end."""
    for needed in (CHROMIUM, CHROMEDRIVER):
        assert needed.exists(), f"{needed} is missing: run bin/install-deps --test (Debian's chromium, chromium-driver)"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER), log_output=str(tmp_path / "driver.log")))
    try:
        yield driver
    finally:
        driver.quit()


def _screenshot(driver: webdriver.Chrome, tmp_path: Path, name: str) -> Path:
    """Save the page under the test's tmp dir and copy it to ARTIFACTS; print where."""
    shot = tmp_path / name
    assert driver.save_screenshot(str(shot)), "the screenshot was not written"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kept = ARTIFACTS / name
    shutil.copyfile(shot, kept)
    print(f"screenshot: {kept}")
    return kept


def _arrive(driver: webdriver.Chrome, path: str) -> None:
    """Wait (30 s at most) until a click's navigation has reached `path`: a form's POST answers with a redirect."""
    WebDriverWait(driver, 30).until(expected_conditions.url_matches(f"^[^?#]*{path}$"),
                                    f"never reached {path}")


def _log_in(driver: webdriver.Chrome, site: Site, user: str) -> None:
    driver.get(site.live.url + "/")
    assert driver.current_url.endswith("/login"), "a visitor without a session is sent to the login form"
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login").click()
    _arrive(driver, "/status")


def test_login_list_server_page_and_a_member_of_another_project(browser: webdriver.Chrome, site: Site,
                                                                 tmp_path: Path) -> None:
    _log_in(browser, site, "alice")
    servers = browser.find_element(By.ID, "servers").text
    assert site.server_name in servers and "ACTIVE" in servers and site.domain in servers
    assert site.image_name in browser.find_element(By.ID, "images").text
    shot = _screenshot(browser, tmp_path, "status-list.png")
    assert shot.stat().st_size > 10_000, "a rendered page, not a blank one"

    browser.find_element(By.LINK_TEXT, site.server_name).click()
    _arrive(browser, f"/status/servers/{site.server_id}")
    assert browser.find_element(By.ID, "server-status").text == "ACTIVE"
    assert "applied" in browser.find_element(By.ID, "last-apply").text
    console = browser.find_element(By.ID, "console").text
    assert '<script>alert("pwned")</script>' in console, "hostile console text shown as text"
    assert HOSTILE.split("\x1b")[0] in console
    assert browser.find_elements(By.CSS_SELECTOR, "main script, main img") == [], "and never as markup"
    _screenshot(browser, tmp_path, "status-server.png")

    browser.find_element(By.ID, "logout").click()
    _arrive(browser, "/login")  # the logout form's POST passed the CSRF and Origin checks
    browser.get(site.live.url + "/status")
    assert browser.current_url.endswith("/login"), "logged out"

    _log_in(browser, site, "bob")
    assert site.server_name not in browser.find_element(By.TAG_NAME, "main").text
    assert browser.find_elements(By.ID, "no-servers"), "bob's project has no server"
    browser.get(f"{site.live.url}/status/servers/{site.server_id}")
    assert "no such server" in browser.find_element(By.ID, "message").text
    assert site.server_name not in browser.page_source
    _screenshot(browser, tmp_path, "status-member-404.png")
