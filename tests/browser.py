"""Debian's chromium, headless, driven through chromium-driver (Selenium), for the page tests.

Every request the page makes is recorded from the browser's own network log
(``goog:loggingPrefs`` performance), so a test can assert that nothing left loopback.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
    "--disable-extensions", "--mute-audio", "--hide-scrollbars", "--force-device-scale-factor=1",
    "--lang=vi",
)  # fmt: skip


class Browser:
    def __init__(self, width: int = 800, height: int = 480) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="kiosk-browser-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        self.requests: list[str] = []
        self.driver.get("about:blank")
        self.driver.get_log("performance")  # the browser's own start-up pages are not the page's requests
        self.resize(width, height)

    def resize(self, width: int, height: int) -> None:
        """The page's viewport, exactly (the window's size would include the browser's frame)."""
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def open(self, url: str) -> None:
        self.driver.get(url)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def text(self, element_id: str) -> str:
        found = self.js(f"const e = document.getElementById({json.dumps(element_id)}); return e ? e.textContent : ''")
        return str(found)

    def data(self, name: str) -> str:
        return str(self.js(f"return document.body.dataset[{json.dumps(name)}] || ''"))

    def wait(self, check: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.02)
        raise AssertionError(f"the page never showed {what}; body: {self.js('return document.body.dataset')}")

    def wait_code(self, code: str, timeout: float = 5.0) -> None:
        self.wait(lambda: self.data("code") == code, timeout, f"screen {code!r}")

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))

    def network(self) -> list[str]:
        """Every URL the browser asked for since the last call (documents, scripts, fonts, streams)."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])
        return list(self.requests)

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]

    def close(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)


def off_loopback(urls: list[str]) -> list[str]:
    bad = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            continue
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            bad.append(url)
    return bad


def have_chromium() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not have_chromium():
        pytest.fail("Debian's chromium and chromium-driver are required (./run setup installs them)")
    b = Browser()
    try:
        yield b
    finally:
        b.close()
