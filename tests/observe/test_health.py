"""gRPC health that says something (agent/observe/health.py): the local API's readiness and the
camera's state as sessions find it, over the real Unix socket and its peer gate, by Check and by
Watch; the ingest server NOT_SERVING when its Redis store goes away, over mutual TLS."""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agent.localapi.service import SERVICE, LocalApiServer
from agent.observe.daemon import DaemonObservers
from agent.observe.health import CAMERA_SERVICE, CameraState, camera_state_of
from agent.observe.settings import MetricsSettings
from agent.session.capture import run_capture
from firmware.maintenance import MaintenanceLock
from hil.ingest.redis_store import RedisStore
from hil.ingest.server import SERVICE as INGEST
from hil.ingest.server import ServerState, ServerTLS, serve
from hil.redisproc import start_redis
from tests.helpers.live import until_accepted
from tests.helpers.requests import dicts, request
from tests.helpers.terminals import LIVE_UNPACED

S = health_pb2.HealthCheckResponse
LIVE_OK = LIVE_UNPACED                   # sessions judged, not paced (tests/helpers/terminals.py)


@pytest.fixture
def daemon_api(make_deps):
    d = Path(tempfile.mkdtemp(prefix="ca-health-"))
    obs = DaemonObservers(MetricsSettings(), SERVICE, maintenance=MaintenanceLock(d).update_running)
    deps = make_deps(LIVE_OK)
    deps.observer = obs.observe
    api = LocalApiServer(deps, str(d / "agent.sock"), allowed_uids=(os.getuid(),), health_servicer=obs.health)
    api.start()
    channel = grpc.insecure_channel(f"unix:{d / 'agent.sock'}")
    yield obs, deps, health_pb2_grpc.HealthStub(channel), d
    channel.close()
    api.stop(1)
    obs.stop()
    shutil.rmtree(d, ignore_errors=True)


def check(stub, service: str) -> int:
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_readiness_and_camera_state_through_the_gate(daemon_api, make_deps):
    obs, deps, stub, d = daemon_api
    watched: queue.Queue[int] = queue.Queue()
    watch = stub.Watch(health_pb2.HealthCheckRequest(service=CAMERA_SERVICE), timeout=120)

    def follow() -> None:
        try:
            for r in watch:
                watched.put(r.status)
        except grpc.RpcError:                                 # cancelled at the end of the test
            pass
    threading.Thread(target=follow, daemon=True).start()

    assert check(stub, "") == S.NOT_SERVING                  # up, but the daemon has not said ready
    assert check(stub, CAMERA_SERVICE) == S.UNKNOWN           # nobody has seen the camera yet
    obs.set_ready(True)
    assert check(stub, "") == check(stub, SERVICE) == S.SERVING
    assert watched.get(timeout=5) == S.UNKNOWN

    # (A live face judged inconclusive is asked again, as the kiosk app does: tests/helpers/live.py.)
    evs = until_accepted(lambda k: dicts(run_capture(deps, request("verify", f"CONSENT-H-01{k:02d}"))))[-1]
    assert evs[-1].get("result", {}).get("accepted"), evs[-1]
    assert check(stub, CAMERA_SERVICE) == S.SERVING
    assert watched.get(timeout=5) == S.SERVING                # pushed to the watcher at once

    broken = make_deps("realsense+file:///nonexistent/recording.db3")
    broken.observer = obs.observe
    evs = dicts(run_capture(broken, request("verify", "CONSENT-H-0002")))
    assert evs[-1]["error"]["code"].startswith("DRV_"), evs[-1]
    assert obs.sessions_camera.code == evs[-1]["error"]["code"]
    assert check(stub, CAMERA_SERVICE) == S.NOT_SERVING
    assert check(stub, "") == check(stub, SERVICE) == S.NOT_SERVING
    assert watched.get(timeout=5) == S.NOT_SERVING

    # a session that fails for the person (never posed) says nothing about the camera
    obs.sessions_camera("error", {"stage": "capture", "code": "SES_STAGE_TIMEOUT"})
    assert check(stub, CAMERA_SERVICE) == S.NOT_SERVING
    # (A live face judged inconclusive is asked again, as the kiosk app does: tests/helpers/live.py.)
    evs = until_accepted(lambda k: dicts(run_capture(deps, request("verify", f"CONSENT-H-03{k:02d}"))))[-1]
    assert evs[-1].get("result", {}).get("accepted"), evs[-1]
    assert check(stub, "") == check(stub, CAMERA_SERVICE) == S.SERVING

    # a firmware update holds the camera: nothing may capture
    with MaintenanceLock(d).update():
        time.sleep(0.6)                                       # past Check's refresh interval
        assert check(stub, "") == S.NOT_SERVING and check(stub, CAMERA_SERVICE) == S.NOT_SERVING
    time.sleep(0.6)
    assert check(stub, "") == S.SERVING

    obs.set_ready(False)                                      # stopping
    assert check(stub, "") == S.NOT_SERVING
    watch.cancel()


def test_camera_state_of_a_rig_is_its_worst_source():
    assert camera_state_of([]) is CameraState.UNKNOWN
    assert camera_state_of(["online", "online"]) is CameraState.ONLINE
    assert camera_state_of(["online", "reconnecting"]) is CameraState.RECONNECTING
    assert camera_state_of(["maintenance", "maintenance"]) is CameraState.MAINTENANCE   # handed to an update
    assert camera_state_of(["starting"]) is CameraState.RECONNECTING
    assert camera_state_of(["reconnecting", "failed"]) is CameraState.FAILED
    from agent.devices.manager import SourceState
    assert camera_state_of([SourceState.ONLINE]) is CameraState.ONLINE


def test_ingest_server_is_not_serving_while_its_store_is_down(ingest, tmp_path):
    proc = start_redis(tmp_path / "redis")
    state = ServerState(registry=ingest["state"].registry, keys={ingest["key"].key_id: ingest["key"]},
                        current_key_id=ingest["key"].key_id, store=RedisStore.from_url(proc.url, prefix="health:"))
    sc = ingest["server_cert"]
    server, port = serve(state, ServerTLS(sc.cert_pem, sc.key_pem, ingest["ca"].cert_pem))
    client = ingest["uplink"](endpoints=(f"127.0.0.1:{port}",))
    try:
        client._stub(client.s.endpoints[0])                   # opens the mTLS channel
        stub = health_pb2_grpc.HealthStub(client._channels[client.s.endpoints[0]])
        assert check(stub, INGEST) == check(stub, "") == S.SERVING
        proc.stop()
        time.sleep(0.6)
        assert check(stub, INGEST) == check(stub, "") == S.NOT_SERVING
    finally:
        client.close()
        server.stop(0)
        proc.stop()
