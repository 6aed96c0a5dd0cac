"""A headless Chromium driven over the Chrome DevTools Protocol, for the dashboard's tests.

The protocol is JSON over one websocket, which aiohttp's client (already a
dependency) speaks; that spares the suite Selenium, a matching chromedriver and
their versions. Debian's `chromium` package is enough (the Makefile installs it).
Clicks and typing go through Input.* as a person's would: real mouse events at
the element's place on the page, text inserted into the focused field.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

WIDTH, HEIGHT = 1280, 800


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("no chromium on PATH: `make chromium` installs Debian's package")


class Browser:
    """One page in a headless Chromium of its own (own profile, killed at close)."""

    def __init__(self, proc: subprocess.Popen[bytes], session: aiohttp.ClientSession,
                 ws: aiohttp.ClientWebSocketResponse) -> None:  # fmt: skip
        self.proc = proc
        self.session = session
        self.ws = ws
        self.errors: list[str] = []  # uncaught exceptions and console errors of the page
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, profile: Path) -> Browser:
        proc = _launch(profile)
        try:
            port = await _devtools_port(profile / "DevToolsActivePort", proc)
            session = aiohttp.ClientSession()
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            page = next(t for t in targets if t["type"] == "page")
            ws = await session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        browser = cls(proc, session, ws)
        await browser.send("Runtime.enable")
        await browser.send("Page.enable")
        await browser.send(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH, height=HEIGHT, deviceScaleFactor=1, mobile=False,
        )  # fmt: skip
        return browser

    async def viewport(self, width: int, height: int, mobile: bool = False) -> None:
        """Resize the page's window, as a phone's (`mobile`) or a desktop's."""
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width, height=height, deviceScaleFactor=1, mobile=mobile,
        )  # fmt: skip

    async def timezone(self, zone: str) -> None:
        """The time zone the page's Date sees (an IANA name)."""
        await self.send("Emulation.setTimezoneOverride", timezoneId=zone)

    async def before_each_page(self, source: str) -> None:
        """Run `source` in every page loaded from now on, before the page's own scripts."""
        await self.send("Page.addScriptToEvaluateOnNewDocument", source=source)

    async def ignore_csp(self) -> None:
        """Load pages as if they sent no Content-Security-Policy, so a test can see what
        the page's own code would do without that second line of defence."""
        await self.send("Page.setBypassCSP", enabled=True)

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif data.get("method") == "Runtime.exceptionThrown":
                self.errors.append(json.dumps(data["params"]["exceptionDetails"])[:2000])
            elif (
                data.get("method") == "Runtime.consoleAPICalled"
                and data["params"]["type"] == "error"
            ):
                self.errors.append(json.dumps(data["params"]["args"])[:2000])

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One protocol command; its result, or AssertionError with the protocol's error."""
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, 15)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply["result"]
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll until the expression is truthy; its value. An exception counts as not
        yet (the page may still be loading)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(AssertionError):
                value = await self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                text = await self.evaluate("document.body?.innerText")
                raise AssertionError(f"not true within {timeout}s: {expression}\npage:\n{text}")
            await asyncio.sleep(0.1)

    async def goto(self, url: str) -> None:
        """Load `url`, or move to it by its #fragment alone when only that changes."""
        await self.send("Page.navigate", url=url)

    async def click(self, selector: str) -> None:
        """A real left click in the middle of the first element matching `selector`."""
        at = await self.press(selector)
        await self.release(at)

    async def press(self, selector: str) -> dict[str, float]:
        """The left button pressed (not yet released) in the middle of the first element
        matching `selector`; where, for `release`."""
        box: dict[str, float] = await self.wait_for(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e || e.disabled) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )  # fmt: skip
        await self._mouse("mousePressed", box)
        return box

    async def release(self, at: dict[str, float]) -> None:
        await self._mouse("mouseReleased", at)

    async def _mouse(self, kind: str, at: dict[str, float]) -> None:
        await self.send("Input.dispatchMouseEvent", type=kind, x=at["x"], y=at["y"],
                        button="left", clickCount=1)  # fmt: skip

    async def type(self, selector: str, text: str) -> None:
        """Focus a field and type into it."""
        await self.click(selector)
        await self.send("Input.insertText", text=text)

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        _write(path, base64.b64decode(shot["data"]))

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.ws.close()
        await self.session.close()
        self.proc.kill()
        self.proc.wait()


async def _devtools_port(path: Path, proc: subprocess.Popen[bytes]) -> int:
    """The port Chromium chose, from the file it writes once it listens."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited {proc.returncode} before listening")
        port = _read_port(path)
        if port is not None:
            return port
        await asyncio.sleep(0.05)
    raise AssertionError(f"chromium wrote no {path.name} within 20 s")


def _launch(profile: Path) -> subprocess.Popen[bytes]:
    """Chromium with a profile of its own and nothing that reaches for the network
    (the machine may have none: background fetches would only fail, many at a time)."""
    profile.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [chromium_path(), "--headless=new", "--no-sandbox", "--disable-gpu",
         "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--remote-debugging-port=0", f"--user-data-dir={profile}",
         f"--window-size={WIDTH},{HEIGHT}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _read_port(path: Path) -> int | None:
    with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
        return int(path.read_text().splitlines()[0])
    return None


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
