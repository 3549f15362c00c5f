"""The installer's diagnostics page: an HTTP server on loopback behind a one-time token.

``capture-agent diagnose --web`` prints ``http://127.0.0.1:PORT/?token=...`` once. The first request
that carries the token (compared in constant time) is answered with a session cookie (HttpOnly,
SameSite=Strict) and a redirect to ``/``, and the token is spent: a copied link is worth nothing
afterwards, and after ``MAX_BAD_TOKENS`` wrong tokens it is spent too. Everything else needs the
cookie. The token never reaches a log: request lines are not logged at all.

What the browser may keep: nothing. Every response is ``Cache-Control: no-store``; frames travel as
JPEG bytes inside JSON and become ``data:`` URLs in memory; the Content-Security-Policy allows only
this origin's script and style. A request whose ``Host`` is not this loopback address is refused
(DNS rebinding), and the one state-changing request (run the checks again) needs a same-origin
``Origin`` and a custom header, which a cross-site page cannot send without this server's consent.

Routes: ``/`` (the page), ``/static/page.js``, ``/static/page.css``, ``/api/live?after=N`` (the next
:class:`~agent.observe.live.Snapshot`, long-polled), ``/api/status`` (device, checklist, last
sessions, the daemon's health), ``POST /api/checklist`` (run doctor's checks again).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agent.observe.errors import DiagnosticsListen
from agent.observe.live import LiveView
from agent.observe.settings import loopback_host_port

log = logging.getLogger(__name__)

COOKIE = "ca_diag"
MAX_BAD_TOKENS = 20
LONG_POLL_S = 5.0
STATIC = {"/static/page.js": ("page.js", "text/javascript; charset=utf-8"),
          "/static/page.css": ("page.css", "text/css; charset=utf-8")}
SECURITY_HEADERS = (
    ("Cache-Control", "no-store, max-age=0"),
    ("Pragma", "no-cache"),
    ("Expires", "0"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
)


def _asset(name: str) -> bytes:
    return resources.files("agent.observe").joinpath("page", name).read_bytes()


class Checklist:
    """Doctor's checks, run in the background while the live view lets go of the camera."""

    def __init__(self, run: Callable[[], list[dict[str, Any]]], live: LiveView):
        self._run, self._live = run, live
        self._lock = threading.Lock()
        self.state = "not run"               # not run | running | done | error
        self.rows: list[dict[str, Any]] = []
        self.finished_at = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        with self._lock:
            if self.state == "running":
                return False
            self.state = "running"
            self._thread = threading.Thread(target=self._go, name="diagnostics-checklist", daemon=True)
        self._thread.start()
        return True

    def wait(self, timeout_s: float) -> None:
        """Let a running check finish (it holds the camera and the face models' threads)."""
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _go(self) -> None:
        try:
            with self._live.paused():
                rows = self._run()
            state = "done"
        except Exception as exc:             # a checklist that cannot run says why on the page
            log.exception("diagnostics: the checklist failed")
            rows, state = [{"clause": "", "check": "checklist", "result": "FAIL", "value": type(exc).__name__,
                            "requirement": "the checks run", "next_step": str(exc)[:300]}], "error"
        with self._lock:
            self.rows, self.state, self.finished_at = rows, state, time.time()

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"state": self.state, "rows": list(self.rows), "finished_at": self.finished_at}


class DiagnosticsServer:
    def __init__(self, live: LiveView, checklist: Checklist, status: Callable[[], dict[str, Any]],
                 listen: str = "127.0.0.1:0"):
        try:
            host, port = loopback_host_port(listen, "--listen")
        except ValueError as exc:
            raise DiagnosticsListen(str(exc)) from None
        self.live, self.checklist, self._status = live, checklist, status
        self.token = secrets.token_urlsafe(32)
        self._token_lock = threading.Lock()
        self._token_spent = False
        self._bad_tokens = 0
        self._session_digest: bytes | None = None     # SHA-256 of the one session cookie issued
        handler = type("Handler", (_Handler,), {"app": self})
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise DiagnosticsListen(f"cannot listen on {listen}: {exc.strerror or exc}") from None
        self.httpd.daemon_threads = True
        self.host = host
        self.port: int = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self) -> str:
        """The one-time link (print it once; never log it)."""
        return f"{self.origin}/?token={self.token}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="diagnostics-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- authentication ----------------------------------------------------------------------------
    def redeem(self, given: str) -> str | None:
        """A new session cookie for the right token, once; None otherwise."""
        with self._token_lock:
            if self._token_spent:
                return None
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                self._bad_tokens += 1
                if self._bad_tokens >= MAX_BAD_TOKENS:
                    self._token_spent = True
                    log.warning("diagnostics: %d wrong tokens; the link is spent, start diagnose again",
                                self._bad_tokens)
                return None
            self._token_spent = True
            cookie = secrets.token_urlsafe(32)
            self._session_digest = hashlib.sha256(cookie.encode()).digest()
            return cookie

    def authenticated(self, cookie: str | None) -> bool:
        want = self._session_digest
        if want is None or not cookie:
            return False
        return hmac.compare_digest(hashlib.sha256(cookie.encode()).digest(), want)

    def allowed_hosts(self) -> set[str]:
        return {f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]")} | {self.origin[len("http://"):]}

    # -- data --------------------------------------------------------------------------------------
    def live_json(self, after: int) -> dict[str, Any]:
        snap = self.live.wait_next(after, LONG_POLL_S)
        out: dict[str, Any] = {"camera": self.live.status()}
        if snap is not None:
            out.update(seq=snap.seq, at=snap.at, quality=snap.quality, streams=snap.streams,
                       images={k: base64.b64encode(v).decode() for k, v in snap.images.items()})
        return out

    def status_json(self) -> dict[str, Any]:
        return {**self._status(), "checklist": self.checklist.to_dict(), "camera": self.live.status()}


class _Handler(BaseHTTPRequestHandler):
    app: DiagnosticsServer
    server_version = "capture-agent-diagnostics"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        # The request line may carry the token: log the method and path only, never the query.
        log.debug("diagnostics: %s %s", self.command, urlsplit(self.path).path[:100])

    def _send(self, status: int, body: bytes, ctype: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        for k, v in SECURITY_HEADERS + extra:
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _refuse(self, status: HTTPStatus, why: str) -> None:
        self._send(status, f"{status.value} {status.phrase}: {why}\n".encode(), "text/plain; charset=utf-8")

    def _cookie(self) -> str | None:
        for part in self.headers.get("Cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == COOKIE:
                return v
        return None

    def _checked(self) -> bool:
        """Host is ours (no DNS rebinding) and the session cookie is valid; refuses otherwise."""
        if self.headers.get("Host", "") not in self.app.allowed_hosts():
            self._refuse(HTTPStatus.MISDIRECTED_REQUEST, "not this server's address")
            return False
        if not self.app.authenticated(self._cookie()):
            self._refuse(HTTPStatus.UNAUTHORIZED, "open the link `capture-agent diagnose --web` printed")
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/" and "token" in query:
            if self.headers.get("Host", "") not in self.app.allowed_hosts():
                self._refuse(HTTPStatus.MISDIRECTED_REQUEST, "not this server's address")
                return
            cookie = self.app.redeem(query["token"][0])
            if cookie is None:
                self._refuse(HTTPStatus.UNAUTHORIZED, "this link is not valid (or was used already)")
                return
            self._send(HTTPStatus.SEE_OTHER, b"", "text/plain",
                       (("Location", "/"), ("Set-Cookie", f"{COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/")))
            return
        if not self._checked():
            return
        if url.path == "/":
            self._send(200, _asset("index.html"), "text/html; charset=utf-8")
        elif url.path in STATIC:
            name, ctype = STATIC[url.path]
            self._send(200, _asset(name), ctype)
        elif url.path == "/api/live":
            try:
                after = int(query.get("after", ["0"])[0])
            except ValueError:
                self._refuse(HTTPStatus.BAD_REQUEST, "after must be an integer")
                return
            self._json(self.app.live_json(after))
        elif url.path == "/api/status":
            self._json(self.app.status_json())
        else:
            self._refuse(HTTPStatus.NOT_FOUND, "no such page")

    def do_POST(self) -> None:  # noqa: N802
        if not self._checked():
            return
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > 1024:
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "no body expected")
            return
        self.rfile.read(int(length))                 # keep the connection's framing
        if self.headers.get("X-Diagnostics") != "1" or self.headers.get("Origin") != self.app.origin:
            self._refuse(HTTPStatus.FORBIDDEN, "cross-site request")
            return
        if urlsplit(self.path).path != "/api/checklist":
            self._refuse(HTTPStatus.NOT_FOUND, "no such action")
            return
        started = self.app.checklist.start()
        self._json({"started": started, "checklist": self.app.checklist.to_dict()}, 202 if started else 409)
