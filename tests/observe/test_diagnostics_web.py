"""The diagnostics page's server (agent/observe/web.py) over real HTTP on loopback, as an attacker on
the terminal or a malicious web page in the installer's browser would try it: the one-time token,
the session cookie, DNS rebinding, cross-site requests, no-store on every response, nothing logged
that carries the token; and the live view's snapshots from the sim camera."""

from __future__ import annotations

import base64
import http.client
import json
import logging

import cv2
import numpy as np
import pytest

import drivers
from agent.commands.diagnose import _checklist
from agent.observe.errors import DiagnosticsListen
from agent.observe.live import LiveView
from agent.observe.web import COOKIE, MAX_BAD_TOKENS, Checklist, DiagnosticsServer

CAMERA = "sim://?seed=21&identity=0&lux=300&subject=live"


@pytest.fixture
def server():
    live = LiveView(lambda: drivers.open(CAMERA), idle_s=5.0)
    checklist = Checklist(lambda: _checklist(CAMERA, 5, False), live)
    srv = DiagnosticsServer(live, checklist, lambda: {"device": {"name": "sim"}, "sessions": {"rows": []},
                                                       "agent": {}})
    live.start()
    srv.start()
    yield srv
    srv.stop()
    live.stop()
    checklist.wait(120)


def get(srv: DiagnosticsServer, path: str, *, cookie: str | None = None, host: str | None = None,
        method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=15)
    h = {"Host": host or f"127.0.0.1:{srv.port}", **(headers or {})}
    if cookie:
        h["Cookie"] = f"{COOKIE}={cookie}"
    c.request(method, path, headers=h)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def login(srv: DiagnosticsServer) -> str:
    status, headers, _ = get(srv, f"/?token={srv.token}")
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    return cookie.split(";")[0].split("=", 1)[1]


def test_nothing_without_the_token_and_the_token_works_once(server, caplog):
    caplog.set_level(logging.DEBUG)
    for path in ("/", "/api/live?after=0", "/api/status", "/static/page.js"):
        status, _, body = get(server, path)
        assert status == 401 and b"diagnose --web" in body and b"sim" not in body
    assert get(server, "/?token=wrong")[0] == 401
    assert get(server, f"/?token={server.token}", host="attacker.example")[0] == 421   # rebinding: not spent
    cookie = login(server)
    assert get(server, f"/?token={server.token}")[0] == 401                             # spent
    assert get(server, "/api/status", cookie=cookie)[0] == 200
    assert get(server, "/api/status", cookie=cookie + "x")[0] == 401
    assert get(server, "/api/status", cookie=cookie, host=f"rebind.example:{server.port}")[0] == 421
    assert server.token not in caplog.text and cookie not in caplog.text
    assert "diagnostics: GET /" in caplog.text                                      # requests are logged, bare


def test_wrong_tokens_spend_the_link():
    live = LiveView(lambda: drivers.open(CAMERA))
    srv = DiagnosticsServer(live, Checklist(lambda: [], live), dict)
    srv.start()
    try:
        for _ in range(MAX_BAD_TOKENS):
            assert get(srv, "/?token=guess")[0] == 401
        assert get(srv, f"/?token={srv.token}")[0] == 401
    finally:
        srv.stop()


def test_every_response_forbids_caching_and_foreign_script(server):
    cookie = login(server)
    for path in ("/", "/static/page.js", "/static/page.css", "/api/status", "/nothing-here"):
        status, h, _ = get(server, path, cookie=cookie)
        assert h["cache-control"].startswith("no-store"), path
        csp = h["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "img-src data:" in csp
        assert h["x-content-type-options"] == "nosniff" and h["referrer-policy"] == "no-referrer"
    status, h, _ = get(server, "/?token=x")
    assert h["cache-control"].startswith("no-store")


def test_the_live_view_serves_aligned_jpegs_and_the_gate_report(server):
    cookie = login(server)
    status, h, body = get(server, "/api/live?after=0", cookie=cookie)
    assert status == 200 and h["cache-control"].startswith("no-store")
    d = json.loads(body)
    assert d["camera"]["state"] == "streaming" and d["seq"] >= 1
    sizes = set()
    for kind in ("color", "depth", "ir"):
        img = cv2.imdecode(np.frombuffer(base64.b64decode(d["images"][kind]), np.uint8), cv2.IMREAD_COLOR)
        sizes.add(img.shape)
        assert img.std() > 10, kind
    assert sizes == {(480, 640, 3)}
    q = d["quality"]
    assert q["faces_found"] == 1 and 50 < q["metrics"]["ipd_px"] < 90 and "landmarks" not in json.dumps(q)
    _, _, body = get(server, f"/api/live?after={d['seq']}", cookie=cookie)
    assert json.loads(body)["seq"] > d["seq"]                                   # the next one, long-polled
    assert get(server, "/api/live?after=x", cookie=cookie)[0] == 400


def test_running_the_checks_again_needs_a_same_origin_request(server):
    cookie = login(server)
    base = {"Content-Length": "0"}
    assert get(server, "/api/checklist", cookie=cookie, method="POST", headers=base)[0] == 403
    assert get(server, "/api/checklist", cookie=cookie, method="POST",
               headers={**base, "X-Diagnostics": "1", "Origin": "http://evil.example"})[0] == 403
    assert get(server, "/api/checklist", method="POST",
               headers={**base, "X-Diagnostics": "1", "Origin": server.origin})[0] == 401
    ok = {**base, "X-Diagnostics": "1", "Origin": server.origin}
    status, _, body = get(server, "/api/checklist", cookie=cookie, method="POST", headers=ok)
    assert status == 202 and json.loads(body)["checklist"]["state"] == "running"
    assert get(server, "/api/checklist", cookie=cookie, method="POST", headers=ok)[0] == 409


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "192.0.2.1:8080", "localhost:0", "[::]:0"])
def test_the_page_listens_on_loopback_only(listen):
    live = LiveView(lambda: drivers.open(CAMERA))
    with pytest.raises(DiagnosticsListen) as exc:
        DiagnosticsServer(live, Checklist(lambda: [], live), dict, listen)
    assert exc.value.code == "DIAG_LISTEN"
