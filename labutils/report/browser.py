"""Check the rendered report in a real browser: headless Chromium, driven by Selenium.

:func:`check_report` serves a report folder on localhost, opens the index and every notebook
page, and reports per page: console errors and uncaught exceptions, images that did not decode
(natural width 0), local links that do not resolve; it saves a full-page screenshot of each.
It drives the system's Chromium through its ChromeDriver (Debian's ``chromium`` and
``chromium-driver`` packages): nothing is downloaded.
"""

from __future__ import annotations

import base64
import functools
import http.server
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PageCheck", "check_report", "find_chromedriver", "find_chromium"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMEDRIVER_NAMES = ("chromedriver", "chromium.chromedriver")


def _first_on_path(names: Sequence[str]) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def find_chromium() -> str | None:
    """The path of a Chromium/Chrome binary on PATH, or None."""
    return _first_on_path(CHROMIUM_NAMES)


def find_chromedriver() -> str | None:
    """The path of a ChromeDriver binary on PATH (Debian: ``chromium-driver``), or None."""
    return _first_on_path(CHROMEDRIVER_NAMES)


@dataclass
class PageCheck:
    """What one page did in the browser."""

    page: str
    errors: list[str] = field(default_factory=list)
    images: int = 0
    broken_images: list[str] = field(default_factory=list)
    links: int = 0
    broken_links: list[str] = field(default_factory=list)
    screenshot: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.errors or self.broken_images or self.broken_links)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client that hangs up early (the browser cancelling a request) is not the report's error


def _link_resolves(url: str) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


#: Resolves with [src, naturalWidth] for every image once each has decoded or failed.
_IMAGES_SCRIPT = """
const done = arguments[arguments.length - 1];
Promise.all(Array.from(document.images).map(
    image => image.decode().catch(() => null).then(() => [(image.getAttribute('src') || '').slice(0, 80),
                                                         image.naturalWidth]))).then(done);
"""


def _driver(chromium: str, chromedriver: str, width: int, timeout: float):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        f"--window-size={width},900",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages and uncaught errors
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(timeout)
    driver.set_script_timeout(timeout)
    return driver


def check_report(
    folder: str | Path,
    pages: Sequence[str] | None = None,
    *,
    screenshots: str | Path | None = None,
    chromium: str | None = None,
    chromedriver: str | None = None,
    width: int = 1280,
    timeout: float = 60.0,
) -> list[PageCheck]:
    """Load ``pages`` (default: index.html and every ``NN_*/NN_*.html``) of a report ``folder`` in Chromium.

    Screenshots go to ``screenshots`` (default: ``folder/screenshots``), one full-page PNG per page.
    """
    folder = Path(folder).resolve()
    binary, driver_binary = chromium or find_chromium(), chromedriver or find_chromedriver()
    if binary is None or driver_binary is None:
        missing = " and ".join(
            name for name, path in (("Chromium", binary), ("ChromeDriver", driver_binary)) if not path
        )
        raise FileNotFoundError(
            f"no {missing} found (install Debian's packages: apt-get install chromium chromium-driver)"
        )
    if not (folder / "index.html").is_file():
        raise FileNotFoundError(f"{folder} holds no index.html: run the report first (make report)")
    if pages is None:
        pages = ["index.html"] + sorted(
            path.relative_to(folder).as_posix() for path in folder.glob("[0-9][0-9]_*/*.html")
        )
    shots = Path(screenshots) if screenshots else folder / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    server = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        driver = _driver(binary, driver_binary, width, timeout)
        try:
            return [_check_page(driver, base, page, shots, width) for page in pages]
        finally:
            driver.quit()
    finally:
        server.shutdown()


def _check_page(driver, base: str, page: str, shots: Path, width: int) -> PageCheck:
    driver.get_log("browser")  # what the previous page logged is not this page's
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    )
    driver.get(base + page)  # returns once the page's load event has fired
    check = PageCheck(page)
    images = driver.execute_async_script(_IMAGES_SCRIPT) or []
    check.images = len(images)
    check.broken_images = [source for source, natural_width in images if not natural_width]
    links = (
        driver.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        or []
    )
    local = sorted({urllib.parse.urldefrag(link)[0] for link in links if link.startswith(base)})
    check.links = len(local)
    check.broken_links = [link[len(base) :] for link in local if not _link_resolves(link)]
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    height = int(min(metrics["cssContentSize"]["height"], 30000))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": max(height, 1), "deviceScaleFactor": 1, "mobile": False},
    )
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    name = page.replace("/", "__").removesuffix(".html") + ".png"
    (shots / name).write_bytes(base64.b64decode(shot["data"]))
    check.screenshot = str(shots / name)
    check.errors = [
        f"{entry.get('source', 'console')}: {entry.get('message', '')}"
        for entry in driver.get_log("browser")
        if entry.get("level") == "SEVERE"
    ]
    return check
