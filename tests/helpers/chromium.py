"""Headless Chromium (Debian's ``chromium``) for tests: the one-shot command line (``chromium()``,
e.g. ``--screenshot``, ``--dump-dom``) and a browser driven over the DevTools protocol on a pipe
(:class:`Browser`: navigate, evaluate script, wait for a condition, screenshot), for pages that
never finish loading, such as a live view. Each start gets a fresh profile directory, which a test
may scan afterwards for what the browser kept."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")


def fresh_profile(tmp: Path) -> Path:
    return tmp / f"profile-{len(list(tmp.glob('profile-*')))}"


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={fresh_profile(tmp)}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


class Browser:
    """Chromium with ``--remote-debugging-pipe``: DevTools commands as NUL-terminated JSON on fd 3,
    answers and events on fd 4."""

    def __init__(self, tmp: Path, width: int = 1400, height: int = 1100):
        assert CHROMIUM is not None
        self.profile = fresh_profile(tmp)
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def fds() -> None:                               # the pipe's ends at the numbers Chromium expects
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe",
                                      f"--window-size={width},{height}", "about:blank"],
                                     pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._next = 0
        self._answers: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cond:
                        self._answers[msg["id"]] = msg
                        self._cond.notify_all()

    def call(self, method: str, *, session: bool = False, timeout_s: float = 30.0, **params: Any) -> dict[str, Any]:
        self._next += 1
        mid = self._next
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while mid not in self._answers:
                left = deadline - time.monotonic()
                assert left > 0, f"DevTools {method} did not answer within {timeout_s} s"
                self._cond.wait(left)
            answer = self._answers.pop(mid)
        assert "error" not in answer, (method, answer["error"])
        return answer.get("result", {})

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", session=True, url=url)

    def evaluate(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 60.0) -> Any:
        """Evaluate ``expression`` until it is truthy (an exception counts as not yet: the page may
        still be loading); its value."""
        deadline = time.monotonic() + timeout_s
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return false; }} }})()"
        while True:
            v = self.evaluate(guarded)
            if v:
                return v
            assert time.monotonic() < deadline, f"not true within {timeout_s} s: {expression}"
            time.sleep(0.2)

    def screenshot(self, path: Path) -> bytes:
        png = base64.b64decode(self.call("Page.captureScreenshot", session=True, format="png",
                                         captureBeyondViewport=True)["data"])
        path.write_bytes(png)
        return png

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout_s=5)
        except AssertionError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self._to_child)
        os.close(self._from_child)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
