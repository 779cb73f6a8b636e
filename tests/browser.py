"""Debian's Chromium, headless, driven through Debian's chromedriver (Selenium): the one driver behind the HTML
report's browser tests (tests/test_report_browser.py) and scripts/render-html-report.

Nothing leaves the machine.  Selenium is given the driver, so Selenium Manager
never looks for one to download (``SE_OFFLINE`` says so too); Chromium starts
with a throwaway profile and everything that would reach the network on its own
switched off (no QUIC, background networking, component updates or sync), and
every remote URL a page asks for is refused inside Chromium (DevTools' blocked
URLs), yet logged.
Chromium's own logs (``goog:loggingPrefs``) give every request the page made
and every console message, so a test counts them instead of trusting the HTML.

A viewport is set with the DevTools protocol's device metrics, not the window
size, so "390 px wide, mobile" is exactly that: the page's own ``<meta
name="viewport">`` applies, as on a phone.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTALL = "apt-get install -y --no-install-recommends chromium chromium-driver"
# The browser itself, not Debian's /usr/bin/chromium launcher script (which only adds the flags below, and prints
# "[: ...: unexpected operator" on some machines); then whatever else is on PATH.
BROWSERS = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVERS = ("chromedriver", "/usr/lib/chromium/chromedriver")
FLAGS = (
    "--headless=new", "--no-sandbox",  # as root, in a container: the sandbox needs user namespaces it may not have
    "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run", "--mute-audio",
    "--disable-quic", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--metrics-recording-only",
)
REMOTE = ("http", "https", "ws", "wss", "ftp")  # schemes that would leave the machine: refused by Chromium itself
BROWSER_PAGES = ("chrome://", "chrome-untrusted://", "chrome-search://", "devtools://")  # Chromium's own
LOGS = ("performance", "browser")  # every request (Network.requestWillBeSent), every console message
MOBILE_BELOW_PX = 600  # a viewport narrower than this is emulated as a phone's (touch, the meta viewport honoured)


@dataclass(frozen=True)
class Tools:
    """Where the browser and its driver are."""

    browser: str
    driver: str


def find_tools() -> Tools | str:
    """The browser and the driver ($CHROMIUM and $CHROMEDRIVER first), or why not: what is missing and how to get it."""
    import importlib.util

    def first(explicit: str | None, names: tuple[str, ...]) -> str | None:
        if explicit:
            return shutil.which(explicit)
        return next((path for path in map(shutil.which, names) if path), None)

    browser = first(os.environ.get("CHROMIUM"), BROWSERS)
    driver = first(os.environ.get("CHROMEDRIVER"), DRIVERS)
    missing = [what for what, found in (("Chromium", browser), ("chromedriver", driver)) if not found]
    if importlib.util.find_spec("selenium") is None:
        missing.append("Selenium (the `test` extra)")
    if missing:
        return f"no {' and no '.join(missing)} here: run scripts/provision.sh (Debian's {INSTALL}, and pip's selenium)"
    assert browser is not None and driver is not None
    return Tools(browser, driver)


class Browser:
    """One headless Chromium: open a page, size its viewport, ask it things, photograph it, read its logs."""

    def __init__(self, tools: Tools, profile: str) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never fetch a driver or a browser
        options = webdriver.ChromeOptions()
        options.binary_location = tools.browser
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {log: "ALL" for log in LOGS})
        self.driver = webdriver.Chrome(options=options, service=Service(tools.driver))
        # A page that asks for a remote URL gets it refused inside Chromium (net::ERR_BLOCKED_BY_CLIENT), before
        # any name lookup or connection: the request is still logged, and counted, but nothing leaves the machine.
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": [f"{scheme}://*" for scheme in REMOTE]})
        self.url = ""
        self._logs: dict[str, list[dict[str, Any]]] = {log: [] for log in LOGS}  # this page's entries so far

    def open(self, page: Path, width: int, height: int) -> None:
        """Load ``page`` in a ``width`` x ``height`` viewport, with the logs emptied first (they are this page's)."""
        self.viewport(width, height)
        for log in LOGS:
            self.driver.get_log(log)  # the page before's, and the first tab's
        self._logs = {log: [] for log in LOGS}
        self.url = page.resolve().as_uri()
        self.driver.get(self.url)

    def viewport(self, width: int, height: int) -> None:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < MOBILE_BELOW_PX})

    def run(self, script: str, *args: Any) -> Any:
        """The value of ``script`` (a function body: ``return ...``) run in the page."""
        return self.driver.execute_script(script, *args)

    def requests(self) -> list[str]:
        """Every URL the page asked for since it was opened (Network.requestWillBeSent), its own first.

        Not the browser's own pages': Chromium may still be loading its New
        Tab Page, the first tab, when the page opens (seen on a fresh Debian 12:
        twenty chrome:// resources and a data: image), and those requests name
        that page as their document.
        """
        urls = []
        for entry in self._read("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent" and not browser_own(
                    message["params"].get("documentURL", "")):
                urls.append(message["params"]["request"]["url"])
        return urls

    def console(self) -> list[dict[str, Any]]:
        """Every console message and page error since the page was opened (level, message), but the browser's own."""
        return [entry for entry in self._read("browser") if not browser_own(entry.get("message", ""))]

    def screenshot(self, path: Path) -> Path:
        """The whole page (beyond the viewport) as a PNG at ``path``."""
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def _read(self, log: str) -> list[dict[str, Any]]:
        """This page's entries of a Chromium log so far: Chromium hands each entry out once, so they are kept."""
        self._logs[log].extend(self.driver.get_log(log))
        return self._logs[log]

    def close(self) -> None:
        self.driver.quit()


def browser_own(url: str) -> bool:
    """A URL (or a console message, which starts with one) of Chromium's own pages, not of a page it was given."""
    return url.startswith(BROWSER_PAGES)


@contextmanager
def chromium(tools: Tools) -> Iterator[Browser]:
    """A browser for the block, with its own profile; quit and removed after, whatever happened."""
    with tempfile.TemporaryDirectory(prefix="netkit-chromium-") as profile:
        browser = Browser(tools, profile)
        try:
            yield browser
        finally:
            browser.close()
