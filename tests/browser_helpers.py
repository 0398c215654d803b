"""A page opened in headless Chromium at a given viewport width, driven over the DevTools protocol.

Why the protocol and not `--window-size`: headless Chromium never makes its window narrower than
500 px, so a 390 px phone cannot be had from the command line. The protocol's device-metrics
override emulates the phone itself (viewport width, `<meta name=viewport>` honoured, touch).

Why a pipe and not a port: `--remote-debugging-pipe` talks JSON over file descriptors 3 and 4
(messages ended by a NUL byte), so no port is opened and no websocket client is needed. A small
Python trampoline puts the pipes on those two numbers and then execs Chromium (subprocess cannot
renumber descriptors, and a preexec_fn is unsafe in a process with threads).

    with Browser() as browser:
        page = browser.open(url, width=390)
        layout = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path)
"""
from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Plants fds 3 and 4 (Chromium's DevTools pipe) and becomes Chromium.
_TRAMPOLINE = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
               "os.execv(sys.argv[3], sys.argv[3:])")


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium; `open` gives a page (a tab) at a viewport width."""

    def __init__(self, executable: Optional[str] = None, deadline_seconds: float = 240):
        self.executable = executable or CHROMIUM
        if not self.executable:
            raise BrowserError("no chromium on PATH (apt-get install -y chromium)")
        self.deadline_seconds = deadline_seconds  # per call; only a hung browser ever reaches it
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict] = []  # every event received, in order (console calls, exceptions, ...)

    def __enter__(self) -> "Browser":
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [self.executable, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                "--no-default-browser-check", "--mute-audio", "--remote-debugging-pipe",
                f"--user-data-dir={self._profile.name}", "about:blank"]
        self._process = subprocess.Popen(
            [sys.executable, "-c", _TRAMPOLINE, str(to_browser_r), str(from_browser_w), *args],
            pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.call("Browser.close")
        except Exception:  # already gone: the process check below ends it
            pass
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for fd in (self._to_browser, self._from_browser):
            os.close(fd)
        self._profile.cleanup()

    # ------------------------------------------------------------------------------------------ protocol
    def call(self, method: str, params: Optional[dict] = None, session: Optional[str] = None) -> dict:
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for_event(self, method: str, session: Optional[str] = None) -> dict:
        for event in self.events:
            if event.get("method") == method and event.get("sessionId") == session:
                self.events.remove(event)
                return event
        while True:
            event = self._receive()
            if event.get("method") == method and event.get("sessionId") == session:
                return event
            self.events.append(event)

    def _receive(self) -> dict:
        deadline = time.monotonic() + self.deadline_seconds
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"Chromium sent nothing for {self.deadline_seconds} s")
            ready, _, _ = select.select([self._from_browser], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium closed its DevTools pipe (exit code {self._process.poll()})")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    # ------------------------------------------------------------------------------------------ pages
    def open(self, url: str, width: int, height: int = 900, mobile: Optional[bool] = None) -> "Page":
        """A new tab showing `url` with a viewport `width` px wide (a phone below 600 px), once loaded."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime"):
            self.call(f"{domain}.enable", session=session)
        page.resize(width, height, width < 600 if mobile is None else mobile)
        self.call("Page.navigate", {"url": url}, session=session)
        self.wait_for_event("Page.loadEventFired", session)
        return page


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def resize(self, width: int, height: int, mobile: bool) -> None:
        self.browser.call("Emulation.setDeviceMetricsOverride",
                          {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}, self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (a promise is awaited), as JSON."""
        result = self.browser.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                        "awaitPromise": True}, self.session)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"script failed: {details.get('exception', {}).get('description') or details.get('text')}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """Script errors and console errors or warnings the page produced so far."""
        out = []
        for event in self.browser.events:
            if event.get("sessionId") != self.session:
                continue
            if event.get("method") == "Runtime.exceptionThrown":
                details = event["params"]["exceptionDetails"]
                out.append(f"error: {details.get('exception', {}).get('description') or details.get('text')}")
            elif event.get("method") == "Runtime.consoleAPICalled" and event["params"]["type"] in ("error", "warning", "assert"):
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in event["params"]["args"])
                out.append(f"console.{event['params']['type']}: {args}")
        return out

    def screenshot(self, path: Path, top: int = 0, height: Optional[int] = None) -> Path:
        """The whole page (not only the viewport), or `height` px of it from `top`, as a PNG."""
        width, full = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        height = full - top if height is None else min(height, full - top)
        shot = self.browser.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": top, "width": width, "height": height, "scale": 1}}, self.session)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
