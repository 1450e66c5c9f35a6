"""Headless Debian chromium over the DevTools protocol: load a page, list what went wrong, screenshot it."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from PIL import Image, ImageStat
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-port=0",
)
# Schemes a self-contained local page may load; anything else is a request that leaves the machine.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
BLOCKED = ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]
MAX_SCREENSHOT_HEIGHT = 16000  # chromium paint surfaces top out near 16k px
# Settled: loaded, every <img> decoded or broken, every <video>/<audio> has its metadata or an error.
SETTLED = """document.readyState === 'complete'
  && [...document.images].every(i => i.complete)
  && [...document.querySelectorAll('video, audio')].every(m => m.readyState >= 1 || m.error
       || (m.preload === 'none' && m.networkState !== HTMLMediaElement.NETWORK_LOADING))"""
# Each <video>'s poster loaded as an image of its own, so its decoded size can be read.
POSTER_IMAGES = """window.cutroomPosters = [...document.querySelectorAll('video')]
  .map(v => Object.assign(new Image(), {src: v.poster}))"""
VIDEO_BOXES = """[...document.querySelectorAll('video')].map(v => v.getBoundingClientRect())
  .map(r => [r.left + scrollX, r.top + scrollY, r.right + scrollX, r.bottom + scrollY])"""
#: A player's box is black (its background, #0d1017) when no poster is painted in it: darker than any poster.
BLACK_BOX_BRIGHTNESS = 40


class BrowserError(RuntimeError):
    pass


def require_chromium() -> str:
    """The chromium executable, or an error saying how to install it: a missing browser fails, never skips."""
    exe = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).is_file() else None)
    if exe is None:
        raise BrowserError(
            "chromium is not installed: run `make browser` (Debian's chromium), then test again"
        )
    return exe


class Page:
    """One open tab. What went wrong while it loaded (and after) accumulates in the three lists."""

    def __init__(self, browser: Chromium, session: str, width: int, height: int):
        self._browser = browser
        self._session = session
        self._size = (width, height)
        self.console: list[str] = []
        self.failed_loads: list[str] = []
        self.external_requests: list[str] = []
        self._urls: dict[str, str] = {}
        self._pending: set[str] = set()

    @property
    def problems(self) -> list[str]:
        external = [f"external request: {url}" for url in self.external_requests]
        return [*self.console, *self.failed_loads, *external]

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._browser.send(method, params, session=self._session)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def resize(self, width: int, height: int) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def screenshot(self, path: Path | None = None) -> bytes:
        """A PNG of the whole page, optionally saved to `path`."""
        width, height = self._size
        content = math.ceil(self.send("Page.getLayoutMetrics")["cssContentSize"]["height"])
        # A viewport as tall as the page paints every element; captureBeyondViewport leaves videos blank.
        self.resize(width, max(height, min(content, MAX_SCREENSHOT_HEIGHT)))
        self._browser.pump(0.3)
        try:
            png = base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"])
        finally:
            self.resize(width, height)
        if path is not None:
            Path(path).write_bytes(png)
        return png

    def poster_widths(self, timeout: float = 10.0) -> list[int]:
        """The natural width of each <video>'s poster as chromium decodes it: 0 when it has none, or a broken one."""
        self.evaluate(POSTER_IMAGES)
        deadline = time.monotonic() + timeout
        while not self.evaluate("cutroomPosters.every(i => i.complete)"):
            if time.monotonic() > deadline:
                raise BrowserError(f"posters did not load in {timeout:.0f} s")
            self._browser.pump(0.05)
        return self.evaluate("cutroomPosters.map(i => i.naturalWidth)")

    def black_videos(self, screenshot: bytes) -> list[int]:
        """The indexes of the <video>s that a screenshot of the page (screenshot()) shows as a black box."""
        image = Image.open(io.BytesIO(screenshot)).convert("L")
        return [
            i
            for i, box in enumerate(self.evaluate(VIDEO_BOXES))
            if ImageStat.Stat(image.crop(tuple(round(v) for v in box))).mean[0] < BLACK_BOX_BRIGHTNESS
        ]

    def wait_settled(self, timeout: float) -> None:
        """Until no request is in flight and every media element has loaded or failed, or raise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._browser.pump(0.1)
            if not self._pending and self.evaluate(SETTLED):
                return
        raise BrowserError(f"page did not settle in {timeout:.0f} s; still loading: {sorted(self._pending)}")

    def on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.console.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.console.append(
                f"uncaught: {details.get('exception', {}).get('description') or details['text']}"
            )
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            entry = params["entry"]
            self.console.append(
                f"{entry['source']} {entry['level']}: {entry['text']} {entry.get('url', '')}".strip()
            )
        elif method == "Page.javascriptDialogOpening":
            self.console.append(f"dialog {params['type']}: {params['message']}")
            self.send("Page.handleJavaScriptDialog", {"accept": False})
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            self._urls[params["requestId"]] = url
            self._pending.add(params["requestId"])
            if not url.startswith(LOCAL_SCHEMES):
                self.external_requests.append(url)
        elif method == "Network.loadingFinished":
            self._pending.discard(params["requestId"])
        elif method == "Network.loadingFailed":
            self._pending.discard(params["requestId"])
            if params.get("type") == "Media" and params.get("errorText") == "net::ERR_ABORTED":
                return  # the media pipeline cancels the rest of a file once it has what preload asked for
            blocked = params.get("blockedReason")
            reason = f"blocked ({blocked})" if blocked else params["errorText"]
            self.failed_loads.append(f"{self._urls.get(params['requestId'], '?')}: {reason}")


class Chromium:
    """A headless chromium for the length of a `with` block; it is always killed on the way out."""

    def __init__(self, timeout: float = 20.0):
        self.timeout = timeout
        self._exe = require_chromium()
        self._profile = Path(tempfile.mkdtemp(prefix="cutroom-chromium-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._ws: ClientConnection | None = None
        self._next_id = 0
        self._pages: dict[str, Page] = {}
        self._replies: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> Chromium:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        log_path = self._profile / "chromium.log"
        with log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [self._exe, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so close() can end its helpers too
            )
        port_file = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise BrowserError(f"chromium did not start (exit code {self._proc.poll()}):\n{tail}")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        # proxy=None: the loopback DevTools socket must never go through an HTTP(S)_PROXY from the environment
        url = f"ws://127.0.0.1:{port}{path}"
        self._ws = connect(url, max_size=None, proxy=None, open_timeout=self.timeout)

    def close(self) -> None:
        """Kill chromium and every helper it started (its process group), and drop its profile."""
        if self._ws is not None:
            self._ws.close()
            self._ws = None
        if self._proc is not None:
            with suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)
        shutil.rmtree(self._profile, ignore_errors=True)

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """One DevTools command and its result; events that arrive meanwhile go to their page."""
        if self._ws is None:
            raise BrowserError("use Chromium in a `with` block")
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        deadline = time.monotonic() + self.timeout
        while message["id"] not in self._replies:
            if (remaining := deadline - time.monotonic()) <= 0:
                raise BrowserError(f"chromium did not answer {method} in {self.timeout:.0f} s")
            self._receive(remaining)
        reply = self._replies.pop(message["id"])
        if "error" in reply:
            raise BrowserError(f"{method} failed: {reply['error'].get('message')}")
        return reply.get("result", {})

    def pump(self, seconds: float) -> None:
        """Hand events to their pages for `seconds`."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self._receive(remaining)

    def _receive(self, timeout: float) -> None:
        assert self._ws is not None
        try:
            message = json.loads(self._ws.recv(timeout=timeout))
        except TimeoutError:
            return
        # Replies are kept by id: an event handler may send a command while another awaits its reply.
        if "id" in message:
            self._replies[message["id"]] = message
        elif (page := self._pages.get(message.get("sessionId", ""))) is not None:
            page.on_event(message["method"], message.get("params", {}))

    @contextmanager
    def page(self, target: Path | str, *, width: int = 1280, height: int = 900) -> Iterator[Page]:
        """Open `target` (a path or URL) in a fresh tab, wait until it has settled; the tab closes after."""
        url = Path(target).resolve().as_uri() if isinstance(target, Path) else target
        target_id = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target_id, "flatten": True})["sessionId"]
        page = self._pages[session] = Page(self, session, width, height)
        try:
            for domain in ("Page", "Runtime", "Log", "Network", "Animation"):
                page.send(f"{domain}.enable")
            # Fast-forward animations (the video controls spinner) so screenshots show a settled page.
            page.send("Animation.setPlaybackRate", {"playbackRate": 1000})
            # Off-machine requests are recorded in on_event, then refused so a test never waits on a network.
            page.send("Network.setBlockedURLs", {"urls": BLOCKED})
            page.resize(width, height)
            navigation = page.send("Page.navigate", {"url": url})
            if navigation.get("errorText"):
                raise BrowserError(f"could not open {url}: {navigation['errorText']}")
            page.wait_settled(self.timeout)
            yield page
        finally:
            self._pages.pop(session, None)
            # A browser that died mid-test must not hide the error that says why.
            with suppress(BrowserError, ConnectionClosed):
                self.send("Target.closeTarget", {"targetId": target_id})
