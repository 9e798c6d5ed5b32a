"""Check the rendered report in a real browser: headless Chromium, driven over the DevTools protocol.

:func:`check_report` serves a report folder on localhost, opens the index and every notebook
page, and reports per page: console errors and uncaught exceptions, images that did not decode
(natural width 0), local links that do not resolve; it saves a full-page screenshot of each.
It needs a Chromium binary (Debian's ``chromium`` package; no browser download) and the
``websocket-client`` package.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PageCheck", "check_report", "find_chromium"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The path of a Chromium/Chrome binary on PATH, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


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


class _DevTools:
    """A minimal DevTools-protocol client for one page target."""

    def __init__(self, websocket_url: str, timeout: float):
        import websocket

        self.socket = websocket.create_connection(websocket_url, timeout=timeout, suppress_origin=True)
        self.timeout = timeout
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        self.socket.settimeout(self.timeout)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(message.get("method") == event for message in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {timeout:.0f} s")
            self.socket.settimeout(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(self.socket.recv()))

    def drain(self, seconds: float) -> None:
        import websocket

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.socket.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self.events.append(json.loads(self.socket.recv()))
            except websocket.WebSocketTimeoutException:
                break

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def close(self) -> None:
        self.socket.close()


def _errors(events: Sequence[dict[str, Any]]) -> list[str]:
    errors = []
    for message in events:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append(
                f"exception: {details.get('exception', {}).get('description') or details.get('text')}"
            )
        elif method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            errors.append(
                "console: "
                + " ".join(
                    str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])
                )
            )
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
    return errors


def _link_resolves(url: str) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _start_chromium(binary: str, profile: Path) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            return process, int(port_file.read_text().splitlines()[0])
        if process.poll() is not None:
            raise RuntimeError(f"{binary} exited with status {process.returncode} before opening DevTools")
        time.sleep(0.1)
    process.kill()
    raise TimeoutError(f"{binary} did not open DevTools within 60 s")


def check_report(
    folder: str | Path,
    pages: Sequence[str] | None = None,
    *,
    screenshots: str | Path | None = None,
    chromium: str | None = None,
    width: int = 1280,
    timeout: float = 60.0,
) -> list[PageCheck]:
    """Load ``pages`` (default: index.html and every ``NN_*/NN_*.html``) of a report ``folder`` in Chromium.

    Screenshots go to ``screenshots`` (default: ``folder/screenshots``), one full-page PNG per page.
    """
    folder = Path(folder).resolve()
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError(
            "no Chromium found (install Debian's chromium package: apt-get install chromium)"
        )
    if pages is None:
        pages = ["index.html"] + sorted(
            path.relative_to(folder).as_posix() for path in folder.glob("[0-9][0-9]_*/*.html")
        )
    shots = Path(screenshots) if screenshots else folder / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    server = _Server(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    results = []
    with tempfile.TemporaryDirectory() as profile:
        process, port = _start_chromium(binary, Path(profile))
        try:
            for page in pages:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT"
                )
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    target = json.loads(response.read())
                tools = _DevTools(target["webSocketDebuggerUrl"], timeout)
                try:
                    results.append(_check_page(tools, base, page, shots, width, timeout))
                finally:
                    tools.close()
                    urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/json/close/{target['id']}", timeout=timeout
                    ).close()
        finally:
            process.kill()
            process.wait(timeout=30)
            server.shutdown()
    return results


def _check_page(tools: _DevTools, base: str, page: str, shots: Path, width: int, timeout: float) -> PageCheck:
    for domain in ("Runtime", "Log", "Page"):
        tools.call(f"{domain}.enable")
    tools.call(
        "Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False
    )
    tools.call("Page.navigate", url=base + page)
    tools.wait_for("Page.loadEventFired", timeout)
    tools.drain(0.5)
    check = PageCheck(page)
    images = (
        tools.evaluate(
            "Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null).then("
            "() => [i.getAttribute('src').slice(0, 80), i.naturalWidth])))"
        )
        or []
    )
    check.images = len(images)
    check.broken_images = [source for source, natural_width in images if not natural_width]
    links = tools.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)") or []
    local = sorted({urllib.parse.urldefrag(link)[0] for link in links if link.startswith(base)})
    check.links = len(local)
    check.broken_links = [link[len(base) :] for link in local if not _link_resolves(link)]
    metrics = tools.call("Page.getLayoutMetrics")
    height = int(min(metrics["cssContentSize"]["height"], 30000))
    tools.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=max(height, 1),
        deviceScaleFactor=1,
        mobile=False,
    )
    shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    name = page.replace("/", "__").removesuffix(".html") + ".png"
    (shots / name).write_bytes(base64.b64decode(shot["data"]))
    check.screenshot = str(shots / name)
    tools.drain(0.2)
    check.errors = _errors(tools.events)
    return check
