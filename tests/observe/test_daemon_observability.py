"""The daemon as a real process with ``[metrics] enabled``: its Prometheus endpoint on loopback
counts a verification made through ``capture-agent capture``; its local API's health says SERVING
and the camera online; ``capture-agent diagnose --config`` reads the daemon's health and its audit
log; the endpoint is gone after SIGTERM."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agent.localapi.service import SERVICE
from agent.observe.health import CAMERA_SERVICE
from hil.devproc import start_daemon, start_dev_server
from hil.provision import provision_dev
from tests.helpers.live import cli_events, until_accepted

pytestmark = pytest.mark.slow

S = health_pb2.HealthCheckResponse


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    root = tmp_path_factory.mktemp("obs-deploy")
    p = provision_dev(root / "dev", port=0, camera_uri="sim://?seed=21&identity=3&lux=150")
    with open(p.agent_config, "a") as f:
        f.write('\n[metrics]\nenabled = true\nlisten = "127.0.0.1:0"\n')     # a port the kernel picks
    server, p = start_dev_server(p)
    with server, start_daemon(p.agent_config) as d:
        bound = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", d.output())
        assert bound, d.output()[-2000:]
        yield p, d, int(bound.group(1))


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def health(socket_path, service: str) -> int:
    with grpc.insecure_channel(f"unix:{socket_path}") as ch:
        stub: Any = health_pb2_grpc.HealthStub(ch)          # its stub types lack the methods
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_metrics_and_health_of_a_running_daemon(daemon):
    p, d, port = daemon
    text = scrape(port)
    assert "capture_agent_ready 1.0" in text and "capture_agent_liveness_worker_up 1.0" in text
    # The daemon's audit log is watched (misc25): no record refused by its start.
    assert 'capture_agent_audit_refused_total{problem="TOO_LONG"} 0.0' in text
    assert health(p.socket, "") == health(p.socket, SERVICE) == S.SERVING
    # the device manager opened the camera when the daemon started: online before any session
    assert health(p.socket, CAMERA_SERVICE) == S.SERVING

    def attempt(k: int) -> list[dict]:
        # (A live face judged inconclusive is asked again, as the kiosk app does: tests/helpers/live.py.)
        out = subprocess.run([sys.executable, "-m", "agent.cli", "capture", "--socket", str(p.socket), "--purpose",
                              "verify", "--consent", f"CONSENT-O-00{k:02d}", "--subject", "cust-obs-1", "--json"],
                             capture_output=True, text=True, timeout=180)
        return cli_events(out)
    runs = until_accepted(attempt)
    assert runs[-1][-1].get("result", {}).get("accepted"), runs[-1][-1]
    text = scrape(port)
    assert 'capture_agent_sessions_total{outcome="accepted",purpose="verify"} 1.0' in text
    assert f'capture_agent_session_stage_seconds_count{{stage="liveness"}} {len(runs)}.0' in text
    assert 'capture_agent_stream_frames_total{stream="ir"}' in text
    assert "cust-obs" not in text and "CONSENT-O" not in text
    assert health(p.socket, CAMERA_SERVICE) == S.SERVING

    out = subprocess.run([sys.executable, "-m", "agent.cli", "diagnose", "--config", str(p.agent_config),
                          "--frames", "5", "--json"], capture_output=True, text=True, timeout=300)
    diag = json.loads(out.stdout)
    assert diag["agent"]["daemon"] == {"text": "SERVING", "ok": True}
    assert diag["agent"]["camera (daemon)"] == {"text": "SERVING", "ok": True}
    assert diag["sessions"]["rows"][0]["outcome"] == "accepted"
    assert diag["sessions"]["rows"][0]["timings_ms"]["liveness"] > 0
    assert diag["sessions"]["audit_refused"]["count"] == 0 and diag["sessions"]["rows"][0]["unrecorded"] == []


def test_the_endpoint_closes_with_the_daemon(daemon):
    p, d, port = daemon
    assert d.stop() == 0
    with pytest.raises(urllib.error.URLError):
        scrape(port)
