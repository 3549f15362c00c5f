"""The local API over a real Unix socket: peer credentials decide who reaches CaptureService, every
refusal carries its stable code, and captures stream prompts, progress and the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import cast

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agent.localapi.client import LocalApiError, LocalClient
from agent.localapi.service import LocalApiServer
from tests.helpers.requests import dicts, request

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sockdir():
    # Not under pytest's 0700 tmp: another user must be able to reach the socket's directory.
    d = tempfile.mkdtemp(prefix="ca-test-")
    os.chmod(d, 0o755)
    yield Path(d)
    import shutil
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def api(make_deps, sockdir):
    servers = []
    refused = []

    def start(camera_uri="sim://?seed=21&identity=3&lux=150", **kw):
        deps = make_deps(camera_uri, quality_timeout_s=kw.pop("quality_timeout_s", 20.0))
        kw.setdefault("allowed_uids", (os.getuid(),))
        srv = LocalApiServer(deps, str(sockdir / "agent.sock"), record=lambda ev, **d: refused.append((ev, d)), **kw)
        srv.start()
        servers.append(srv)
        return srv
    start.refused = refused
    yield start
    for s in servers:
        s.stop(1)


def code_of(exc: grpc.RpcError) -> str | bytes:
    # A client's RpcError is also the failed grpc.Call, whose trailing metadata is (key, value) pairs.
    return dict(cast(grpc.Call, exc).trailing_metadata())["ca-error-code"]


def test_allowed_peer_captures_with_prompts_progress_and_result(api, sockdir):
    srv = api()
    assert (os.stat(srv.socket_path).st_mode & 0o777) == 0o660
    with LocalClient(srv.socket_path) as c:
        call = c.capture(request("verify", "CONSENT-L-0001", subject_ref="c-9"))
        sids = set()
        evs = []
        for ev in call:
            sids.add(call.session_id)
            evs.append(ev)
        evs = dicts(evs)
    assert len(sids) == 1 and len(next(iter(sids))) == 36          # one session, a UUID
    assert evs[0]["progress"]["percent"] == 0
    r = evs[-1]["result"]
    assert r["accepted"] and r["reason"] == "OK" and r["timings_ms"]["total"] > 0


def test_health_check_through_the_gate(api):
    srv = api()
    with grpc.insecure_channel(f"unix:{srv.socket_path}") as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(
            service="capture_agent.v1.local.CaptureService"), timeout=5)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_peer_not_in_the_allowlist_is_refused_with_its_code(api):
    srv = api(allowed_uids=(54321,))
    with LocalClient(srv.socket_path) as c, pytest.raises(LocalApiError) as exc:
        dicts(c.capture(request("verify", "CONSENT-L-0002")))
    assert exc.value.code == "LAPI_PEER_NOT_ALLOWED" and exc.value.status == grpc.StatusCode.PERMISSION_DENIED
    assert ("local_api_refused", {"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid(), "suppressed": 0}) \
        in api.refused


CHILD = """
import json, os, sys
sys.path.insert(0, {root!r})
from agent.localapi.client import LocalApiError, LocalClient
from agent.purpose import Purpose
from agent.session.request import CaptureRequest
# Imports as root (the interpreter lives in root's home), then become nobody before connecting:
# SO_PEERCRED records the credentials of connect().
os.setgroups([]); os.setgid(65534); os.setuid(65534)
try:
    with LocalClient(sys.argv[1], timeout_s=10) as c:
        list(c.capture(CaptureRequest(Purpose.VERIFY, "kiosk", "")))
    print(json.dumps({{"code": "none"}}))
except LocalApiError as exc:
    print(json.dumps({{"code": exc.code}}))
"""


def run_as_nobody(socket_path: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), socket_path], capture_output=True,
                          text=True, timeout=60, cwd="/")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")
@pytest.mark.parametrize("groups, expected", [((), "LAPI_PEER_NOT_ALLOWED"), (("65534",), "SES_CONSENT_REQUIRED")])
def test_a_real_other_user_is_judged_by_its_credentials(api, groups, expected):
    # The socket is group nogroup (65534), mode 0660: user nobody (gid 65534) may connect; whether
    # it reaches CaptureService is then the allowlist's decision, made on SO_PEERCRED.
    srv = api(allowed_uids=(0,), allowed_groups=groups, group="65534")
    out = run_as_nobody(srv.socket_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["code"] == expected


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")
def test_the_socket_mode_keeps_other_users_out_before_the_allowlist(api):
    srv = api(allowed_uids=(65534,))                        # allowed, but not in the socket's group
    out = run_as_nobody(srv.socket_path)
    assert json.loads(out.stdout.strip().splitlines()[-1])["code"] == "LAPI_UNAVAILABLE"   # connect: EACCES


def _raw_call(path: str, method: str, payload: bytes, stream: bool):
    with grpc.insecure_channel(f"unix:{path}") as ch:
        if stream:
            streaming = ch.unary_stream(f"/capture_agent.v1.local.CaptureService/{method}",
                                        request_serializer=lambda b: b, response_deserializer=lambda b: b)
            return list(streaming(payload, timeout=10))
        unary = ch.unary_unary(f"/capture_agent.v1.local.CaptureService/{method}",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
        return unary(payload, timeout=10)


def test_malformed_and_oversized_requests_get_distinct_codes(api):
    srv = api()
    with pytest.raises(grpc.RpcError) as exc:
        _raw_call(srv.socket_path, "Capture", b"\xff\xff\xff\xff", stream=True)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and code_of(exc.value) == "LAPI_MALFORMED"
    with pytest.raises(grpc.RpcError) as exc:
        _raw_call(srv.socket_path, "Cancel", b"\x0a\xff", stream=False)
    assert code_of(exc.value) == "LAPI_MALFORMED"
    with pytest.raises(grpc.RpcError) as exc:
        _raw_call(srv.socket_path, "Capture", b"\x1a" + b"\xff\xff\x04" + b"a" * 70000, stream=True)
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_refusals_before_capture_have_their_codes(api):
    srv = api()
    with LocalClient(srv.socket_path) as c:
        with pytest.raises(LocalApiError) as exc:
            dicts(c.capture(request("verify", "")))
        assert exc.value.code == "SES_CONSENT_REQUIRED" and exc.value.status == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(LocalApiError) as exc:
            dicts(c.capture(request("nothing", "CONSENT-L-0003")))
        assert exc.value.code == "SES_BAD_REQUEST"


def test_one_capture_at_a_time_cancel_by_session_id_and_hang_up(api):
    srv = api("sim://?seed=2&subject=none", quality_timeout_s=60)
    with LocalClient(srv.socket_path) as c, LocalClient(srv.socket_path) as c2:
        call = c.capture(request("verify", "CONSENT-L-0004"))
        stream = iter(call)
        next(stream)
        sid = call.session_id
        with pytest.raises(LocalApiError) as exc:
            dicts(c2.capture(request("verify", "CONSENT-L-0005")))
        assert exc.value.code == "SES_BUSY" and exc.value.status == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert c2.cancel("no-such-session") is False
        t0 = time.monotonic()
        assert c2.cancel(sid) is True
        rest = dicts(stream)
        assert rest[-1]["error"]["code"] == "SES_CANCELLED" and time.monotonic() - t0 < 10
    # A caller that hangs up mid-capture frees the terminal for the next one.
    with LocalClient(srv.socket_path) as c:
        call = c.stub.Capture(__import__("proto.capture_agent.v1.capture_pb2", fromlist=["x"]).CaptureRequest(
            purpose=2, consent_ref="CONSENT-L-0006"), timeout=60)
        next(call)
        call.cancel()
    deadline = time.monotonic() + 10
    while srv.service._busy.locked() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not srv.service._busy.locked()


def test_stop_cancels_a_running_capture_which_reports_it(api):
    srv = api("sim://?seed=2&subject=none", quality_timeout_s=60)
    got = []
    with LocalClient(srv.socket_path) as c:
        stream = iter(c.capture(request("verify", "CONSENT-L-0007")))
        got.append(next(stream))
        t = threading.Thread(target=lambda: got.extend(dicts(stream)))
        t.start()
        time.sleep(0.3)
        srv.stop(5)
        t.join(10)
    assert got[-1]["error"]["code"] == "SES_CANCELLED"
    assert not Path(srv.socket_path).exists()
