"""The daemon's Prometheus metrics (agent/observe/metrics.py) from real sessions on the sim camera,
a real liveness worker that crashes, a real device source unplugged and re-plugged, scraped over
its loopback HTTP endpoint; and labels that never carry anything a person or an attacker chose."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

import drivers
from agent.devices.manager import Source, SourceState
from agent.devices.policy import DeviceSettings
from agent.liveness.challenge import Challenge
from agent.liveness.supervisor import LivenessSupervisor, LivenessWorkerCrashed
from agent.observe.errors import MetricsUnavailable
from agent.observe.metrics import CODE_RE, DETECTORS, MAX_CODES, AgentMetrics
from agent.observe.settings import MetricsSettings
from agent.pipeline.frames import FramesetReader
from agent.session.capture import run_capture
from agent.session.projector import Projector
from agent.session.window import collect
from hil.fakes.cameras import FakeCable, FaultInjectingCamera
from tests.helpers.live import until_accepted
from tests.helpers.requests import dicts, request
from tests.helpers.terminals import LIVE_UNPACED

# The shared live subject, unpaced (tests.helpers.terminals.LIVE_UNPACED: the stream rates below are measured
# on the frames' hardware timestamps, which an unpaced simulator stamps at 30 fps however slowly it renders).
LIVE_OK = LIVE_UNPACED


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.status == 200
        return r.read().decode()


@pytest.fixture
def metrics():
    m = AgentMetrics()
    server = m.serve("127.0.0.1:0")
    yield m, server.port
    server.stop()


def session(deps, purpose="verify", subject="cust-metrics-1", consent="CONSENT-M-0001"):
    return dicts(run_capture(deps, request(purpose, consent, subject_ref=subject)))


def test_an_accepted_session_is_counted_timed_and_its_streams_measured(make_deps):
    # Each attempt is counted by metrics of its own, so the last (accepted) one's counts are exact.
    # (A live face judged inconclusive is asked again, as the kiosk app does: tests/helpers/live.py.)
    served = []

    def attempt(k: int) -> list[dict]:
        m = AgentMetrics()
        served.append(m.serve("127.0.0.1:0"))
        deps = make_deps(LIVE_OK)
        deps.observer = m.observe
        return session(deps, consent=f"CONSENT-M-01{k:02d}")
    try:
        evs = until_accepted(attempt)[-1]
        check_accepted_session_metrics(evs, served[-1].port)
    finally:
        for server in served:
            server.stop()


def check_accepted_session_metrics(evs: list[dict], port: int) -> None:
    assert evs[-1].get("result", {}).get("accepted"), evs[-1]
    text = scrape(port)
    assert value(text, "capture_agent_sessions_total", purpose="verify", outcome="accepted") == 1
    assert value(text, "capture_agent_results_total", accepted="true", reason="OK") == 1
    assert value(text, "capture_agent_liveness_verdicts_total", verdict="live") == 1
    for stage in ("camera_open", "capabilities", "quality", "challenge", "challenge_window", "liveness", "probe",
                  "seal", "submit", "after_last_frame"):
        assert value(text, "capture_agent_session_stage_seconds_count", stage=stage) == 1, stage
    # the histogram's sum is the session's own timing
    t = evs[-1]["result"]["timings_ms"]
    assert value(text, "capture_agent_session_stage_seconds_sum", stage="quality") == pytest.approx(
        t["quality"] / 1000, abs=1e-4)
    assert value(text, "capture_agent_session_seconds_count", purpose="verify", outcome="accepted") == 1
    for kind in ("color", "depth", "ir"):
        assert 25 <= value(text, "capture_agent_stream_fps", stream=kind) <= 35, kind     # the sim runs at 30
        assert value(text, "capture_agent_stream_frames_total", stream=kind) >= 12
        assert value(text, "capture_agent_stream_dropped_frames_total", stream=kind) >= 0
    assert value(text, "capture_agent_sync_skew_max_seconds_count") == 1
    assert 0 <= value(text, "capture_agent_sync_skew_mean_seconds") < 1 / 30
    assert value(text, "process_resident_memory_bytes") > 0


def test_attacks_errors_and_refusals_by_reason_and_code(make_deps, metrics, ingest):
    m, port = metrics
    deps = make_deps("sim://?seed=22&identity=0&lux=300&subject=print&realtime=0")   # no frameset lost to load
    deps.observer = m.observe
    evs = session(deps, subject="cust-metrics-2")
    assert evs[-1]["result"]["reason"] == "NOT_LIVE"
    # the server is unreachable: an uplink error, not the person's failure
    dead = make_deps(LIVE_OK, uplink=ingest["uplink"](endpoints=("127.0.0.1:1",), retries=0, deadline_s=0.5))
    dead.observer = m.observe
    evs = session(dead, subject="cust-metrics-3")
    assert evs[-1]["error"]["code"] == "UPL_UNAVAILABLE"
    deps.record("request_refused", code="SES_CONSENT_REQUIRED")
    deps.record("local_api_refused", uid=1234, gid=1234, pid=99, suppressed=4)
    text = scrape(port)
    assert value(text, "capture_agent_results_total", accepted="false", reason="NOT_LIVE") == 1
    assert value(text, "capture_agent_liveness_verdicts_total", verdict="attack") + \
        value(text, "capture_agent_liveness_verdicts_total", verdict="inconclusive") == 1
    assert value(text, "capture_agent_sessions_total", purpose="verify", outcome="rejected") == 1
    # the print was refused by some detector, named from the closed set, and only that session counted
    deciding = {dict(k[1])["detector"]: v for k, v in samples(text).items()
                if k[0] == "capture_agent_liveness_refusals_by_detector_total"}
    assert sum(deciding.values()) >= 1 and set(deciding) <= DETECTORS | {"none"}, deciding
    assert value(text, "capture_agent_sessions_total", purpose="verify", outcome="error") == 1
    # the first call to the server is the capability check, before anyone is asked to pose
    assert value(text, "capture_agent_session_errors_total", stage="capture", code="UPL_UNAVAILABLE") == 1
    assert value(text, "capture_agent_uplink_errors_total", code="UPL_UNAVAILABLE") == 1
    assert value(text, "capture_agent_refusals_total", code="SES_CONSENT_REQUIRED") == 1
    assert value(text, "capture_agent_refusals_total", code="LAPI_PEER_NOT_ALLOWED") == 5   # 1 + 4 suppressed
    # Every sample line without its value (a *_created timestamp's digits once held "1234": the test
    # failed on the clock, not on a label), and the HELP/TYPE lines as they are.
    unvalued = "\n".join(line if line.startswith("#") else line.rsplit(" ", 1)[0] for line in text.splitlines())
    for secret in ("cust-metrics", "CONSENT-M", "1234"):          # references, peers: never in a label
        assert secret not in unvalued


def wait_dead(sup: LivenessSupervisor) -> None:
    deadline = time.monotonic() + 30.0                    # SIGKILL is delivered asynchronously
    while sup._proc is not None and sup._proc.poll() is None:
        assert time.monotonic() < deadline, "the worker outlived SIGKILL"
        time.sleep(0.01)


def test_worker_restarts_are_read_from_the_supervisor(metrics):
    m, port = metrics
    nonce = bytes(range(32))
    cam = drivers.open(LIVE_OK)
    with cam:
        sets = collect(FramesetReader(cam), 12, Challenge.from_nonce(nonce, 12), Projector(cam), per_frameset=True)
    with LivenessSupervisor() as sup:
        m.watch_supervisor(sup)
        text = scrape(port)
        assert value(text, "capture_agent_liveness_worker_up") == 1
        assert value(text, "capture_agent_liveness_worker_restarts_total") == 0
        with pytest.raises(LivenessWorkerCrashed):
            with sup.open_judge(frames=len(sets), nonce=nonce) as j:
                j.add(sets[0])
                sup.kill(signal.SIGKILL)
                wait_dead(sup)                            # dead mid-session, whatever the scheduler does
                for fs in sets[1:]:
                    j.add(fs)
                j.finish()
        text = scrape(port)
        assert value(text, "capture_agent_liveness_worker_up") == 0
        assert value(text, "capture_agent_liveness_worker_restarts_total") == 1
        sup.judge(sets, nonce=nonce)                      # a fresh worker
        text = scrape(port)
        assert value(text, "capture_agent_liveness_worker_up") == 1
        assert value(text, "capture_agent_liveness_worker_restarts_total") == 1
        sup.kill(signal.SIGKILL)                          # and one that dies between sessions
        wait_dead(sup)
        assert value(scrape(port), "capture_agent_liveness_worker_up") == 0
        sup.judge(sets, nonce=nonce)
        text = scrape(port)
        assert value(text, "capture_agent_liveness_worker_up") == 1
        assert value(text, "capture_agent_liveness_worker_restarts_total") == 2


def test_a_camera_handed_to_a_firmware_update_is_labelled_maintenance():
    from agent.devices.manager import SourceEvent
    m = AgentMetrics()
    m.on_source_event(SourceEvent("fakeusb://X", SourceState.ONLINE, 0.0, "opened"))
    m.on_source_event(SourceEvent("fakeusb://X", SourceState.MAINTENANCE, 1.0, "firmware update"))
    text = m.exposition().decode()
    assert value(text, "capture_agent_device_state", camera="0", state="maintenance") == 1
    assert value(text, "capture_agent_device_state", camera="0", state="online") == 0
    assert value(text, "capture_agent_device_failures_total") == 0     # a hand-over is not a failure


def test_device_faults_and_recoveries_from_a_real_source(metrics):
    m, port = metrics
    settings = DeviceSettings(allow_development_cameras=True,
                              stall_timeout_s=0.5, read_timeout_s=0.2, restart_timeout_s=0.5, reset_timeout_s=0.5,
                              replug_timeout_s=5.0, replug_poll_s=0.05)
    cable = FakeCable()
    src = Source("sim://?fps=30&seed=77", settings, queue.Queue(maxsize=8),
                 lambda uri: FaultInjectingCamera(drivers.open(uri), cable), on_event=m.on_source_event)
    src.open()
    src.run_in_thread()
    try:
        assert value(scrape(port), "capture_agent_device_state", camera="0", state="online") == 1
        cable.plugged.clear()
        t0 = time.monotonic()
        while src.state is SourceState.ONLINE:
            assert time.monotonic() - t0 < 10      # the loss is noticed (bounded), not how fast
            time.sleep(0.01)
        text = scrape(port)
        assert value(text, "capture_agent_device_faults_total", cause="lost") == 1
        assert value(text, "capture_agent_device_state", camera="0", state="reconnecting") == 1
        cable.plugged.set()
        while src.state is not SourceState.ONLINE:
            assert time.monotonic() - t0 < 20      # back online (bounded)
            time.sleep(0.01)
        text = scrape(port)
        # recovered by whichever step of the ladder was running when the cable came back
        assert sum(value(text, "capture_agent_device_recoveries_total", step=s)
                   for s in ("reopen", "hardware_reset", "replug")) == 1
        assert value(text, "capture_agent_device_state", camera="0", state="online") == 1
        assert "sim://" not in text and "seed=77" not in text        # cameras by index, never by URI
    finally:
        src.stop()


NASTY = st.one_of(st.text(max_size=300), st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(),
                  st.dictionaries(st.text(max_size=20), st.text(max_size=20), max_size=3))
EVENTS = st.sampled_from(["session_start", "result", "error", "request_refused", "local_api_refused",
                          "session_end", "session_streams", "consent", "projector"])


@given(st.lists(st.tuples(EVENTS, st.dictionaries(
    st.sampled_from(["session_id", "purpose", "code", "stage", "reason", "verdict", "accepted", "within_budget",
                     "elapsed_ms", "quality_ms", "suppressed", "streams", "skew_max_ms", "subject",
                     "detector_material", "detector_<script>", "detector_"]), NASTY)),
    max_size=25))
def test_no_event_can_put_its_own_strings_into_a_label(events):
    m = AgentMetrics()
    for event, data in events:
        m.observe(event, data)                              # never raises, whatever arrives
    allowed = re.compile(r"(other|true|false|enroll|verify|accepted|rejected|error|cancelled|abandoned|live|attack|"
                         r"inconclusive|color|depth|ir|[a-z_]+|\d+\.\d+\.\d+|[0-9]|" + CODE_RE.pattern + r")")
    for fam in text_string_to_metric_families(m.exposition().decode()):
        for s in fam.samples:
            for k, v in s.labels.items():
                if k in ("le", "quantile"):
                    continue
                assert allowed.fullmatch(v), (s.name, k, v)
                assert len(v) <= 64


def test_a_refusal_is_counted_by_the_detector_that_decided_it():
    m = AgentMetrics()
    base = {"accepted": False, "reason": "NOT_LIVE", "verdict": "attack"}
    m.observe("result", {**base, "detector_material": 0.1, "detector_motion": 0.9, "detector_depth_geometry": 1.0})
    m.observe("result", {**base, "detector_motion": 0.3, "detector_eye_region": 0.3})     # a tie: both count
    m.observe("result", {**base, "detector_made_up": 0.0, "detector_material": 0.5})      # a name not ours
    m.observe("result", {**base, "detector_material": float("nan"), "detector_motion": "0"})  # no usable score
    m.observe("result", {"accepted": True, "reason": "OK", "verdict": "live", "detector_material": 0.0})
    m.observe("result", {"accepted": False, "reason": "EXPIRED", "detector_material": 0.0})  # not a liveness refusal
    text = m.exposition().decode()
    got = {dict(k[1])["detector"]: v for k, v in samples(text).items()
           if k[0] == "capture_agent_liveness_refusals_by_detector_total"}
    assert got == {"material": 1, "motion": 1, "eye_region": 1, "other": 1, "none": 1}


def test_codes_are_bounded_in_number():
    m = AgentMetrics()
    for i in range(MAX_CODES * 3):
        m.observe("request_refused", {"code": f"SES_FLOOD_{i}"})
    fam = [f for f in text_string_to_metric_families(m.exposition().decode()) if f.name == "capture_agent_refusals"]
    codes = {s.labels["code"] for s in fam[0].samples if s.name.endswith("_total")}
    assert len(codes) == MAX_CODES + 1 and "other" in codes
    m.observe("request_refused", {"code": "not a code; DROP TABLE"})
    assert "DROP" not in m.exposition().decode()


def test_the_endpoint_is_loopback_only_and_a_taken_port_is_a_typed_error(metrics, supervisor):
    for bad in ("0.0.0.0:9464", "192.168.1.5:9464", "[::]:9464", "example.org:9464", "9464", "127.0.0.1:99999"):
        with pytest.raises(ValueError):
            MetricsSettings(enabled=True, listen=bad)
    assert MetricsSettings(enabled=True, listen="[::1]:9464").listen == "[::1]:9464"
    _, port = metrics
    from agent.observe.daemon import DaemonObservers
    obs = DaemonObservers(MetricsSettings(enabled=True, listen=f"127.0.0.1:{port}"), "svc")
    with pytest.raises(MetricsUnavailable) as exc:
        obs.start(supervisor)
    assert exc.value.code == "OBS_METRICS_LISTEN"
    obs.stop()


def test_a_config_that_puts_metrics_on_the_network_is_refused(tmp_path):
    from agent.config import load
    from agent.errors import ConfigError
    (tmp_path / "a.toml").write_text('[metrics]\nenabled = true\nlisten = "0.0.0.0:9464"\n')
    with pytest.raises(ConfigError) as exc:
        load(tmp_path / "a.toml")
    assert exc.value.code == "AGT_CONFIG_INVALID" and "loopback" in exc.value.message
    (tmp_path / "b.toml").write_text('[metrics]\nenabled = true\nlisten = "127.0.0.1:9464"\n')
    assert load(tmp_path / "b.toml").metrics == MetricsSettings(enabled=True, listen="127.0.0.1:9464")
    assert load(None).metrics.enabled is False                          # off by default


def test_a_daemon_without_metrics_does_not_import_prometheus_client():
    # Its HTTP stack and registry are memory a daemon that serves no metrics would carry (issue 20).
    probe = ("import sys\n"
             "import agent.daemon\n"
             "from agent.observe.daemon import DaemonObservers\n"
             "from agent.observe.settings import MetricsSettings\n"
             "DaemonObservers(MetricsSettings(), 'svc')\n"
             "print('prometheus_client' in sys.modules)\n"
             "DaemonObservers(MetricsSettings(enabled=True), 'svc')\n"
             "print('prometheus_client' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.split() == ["False", "True"]


def test_the_audit_logs_refused_records_are_counted_by_problem(tmp_path):
    # misc25, review24's finding: a record the audit log refuses (an audit_refused entry written in its place)
    # is a defect an operator must see: counted at scrape time, whichever caller made it.
    from agent.security.audit import PROBLEMS, AuditLog
    m = AgentMetrics()
    log = AuditLog(tmp_path / "audit.jsonl")
    m.watch_audit(log)
    assert all(value(m.exposition().decode(), "capture_agent_audit_refused_total", problem=p) == 0 for p in PROBLEMS)
    log.record("agent_start", camera="sim://" + "x" * 300)
    log.record("result", session_id="s", accepted=True, reason="R" * 300)
    log.record("frame_seen", pixels="...")
    log.record("result", session_id="s", accepted=True, reason="OK")
    text = m.exposition().decode()
    assert value(text, "capture_agent_audit_refused_total", problem="TOO_LONG") == 2
    assert value(text, "capture_agent_audit_refused_total", problem="BIOMETRIC_FIELD") == 1
    assert value(text, "capture_agent_audit_refused_total", problem="NOT_SCALAR") == 0
    log.close()


def test_each_cameras_recovery_state_is_read_from_the_device_manager_when_scraped(metrics):
    """Patience, consecutive host failures, backoff and the seconds to the next re-open, per camera
    (an index, never the URI); no next-attempt sample while none is waited for."""
    m, port = metrics
    status = {"fakeusb://A?bus=/secret/path": {"state": "reconnecting", "recovery": {
        "patience": 4.0, "consecutive_failures": 2, "backoff_s": 0.5, "next_attempt_in_s": 0.375}},
        "fakeusb://B": {"state": "online", "recovery": {
            "patience": 1.0, "consecutive_failures": 0, "backoff_s": 0.0, "next_attempt_in_s": None}}}
    m.watch_devices(lambda: status)
    text = scrape(port)
    assert "secret" not in text and "fakeusb" not in text
    assert value(text, "capture_agent_device_recovery_patience", camera="0") == 4.0
    assert value(text, "capture_agent_device_recovery_consecutive_failures", camera="0") == 2
    assert value(text, "capture_agent_device_recovery_backoff_seconds", camera="0") == 0.5
    assert value(text, "capture_agent_device_recovery_next_attempt_seconds", camera="0") == 0.375
    assert value(text, "capture_agent_device_recovery_patience", camera="1") == 1.0
    assert ("capture_agent_device_recovery_next_attempt_seconds", (("camera", "1"),)) not in samples(text)
    status["fakeusb://A?bus=/secret/path"]["recovery"].update(patience=1.0, next_attempt_in_s=None)
    text = scrape(port)                               # read again at every scrape
    assert value(text, "capture_agent_device_recovery_patience", camera="0") == 1.0
    assert ("capture_agent_device_recovery_next_attempt_seconds", (("camera", "0"),)) not in samples(text)


def test_diagnose_reads_each_cameras_recovery_state_from_the_daemons_metrics(metrics):
    """``diagnose`` (``probe_recovery``): the recovery gauges of a served endpoint in one line, ok while
    every camera is at rest as docs/devices.md defines it (patience 1, no failure in a row, no backoff,
    no re-open waited for), False while its deadlines are stretched, a backoff is in force, or a camera
    off the bus is polled for at the base deadlines (docs33: patience 1 and backoff 0 alone said "at rest"
    then); an endpoint that does not answer is said so (ok None), never taken for at rest."""
    from agent.observe.metrics import probe_recovery

    m, port = metrics
    rec = {"patience": 1.0, "consecutive_failures": 0, "backoff_s": 0.0, "next_attempt_in_s": None}
    m.watch_devices(lambda: {"fakeusb://A": {"state": "online", "recovery": rec}})
    assert probe_recovery(f"127.0.0.1:{port}") == {
        "text": "camera 0: deadlines x1, 0 host failure(s) in a row, backoff 0 s", "ok": True}
    rec.update(patience=4.0, consecutive_failures=2, backoff_s=0.5, next_attempt_in_s=0.375)
    assert probe_recovery(f"127.0.0.1:{port}") == {
        "text": "camera 0: deadlines x4, 2 host failure(s) in a row, backoff 0.5 s, next re-open in 0.4 s",
        "ok": False}
    # Off the bus (DRV_DEVICE_NOT_FOUND): patience and backoff forgotten, the next re-open a poll away.
    rec.update(patience=1.0, consecutive_failures=0, backoff_s=0.0, next_attempt_in_s=0.5)
    assert probe_recovery(f"127.0.0.1:{port}") == {
        "text": "camera 0: deadlines x1, 0 host failure(s) in a row, backoff 0 s, next re-open in 0.5 s",
        "ok": False}
    rec.update(consecutive_failures=1, next_attempt_in_s=None)
    assert probe_recovery(f"127.0.0.1:{port}")["ok"] is False
    rec.update(consecutive_failures=0)
    assert probe_recovery(f"127.0.0.1:{port}")["ok"] is True
    m2 = AgentMetrics()
    server = m2.serve("127.0.0.1:0")
    free = server.port
    server.stop()
    got = probe_recovery(f"127.0.0.1:{free}", timeout_s=1.0)
    assert got["ok"] is None and got["text"].startswith(f"not read from 127.0.0.1:{free}")


@pytest.mark.parametrize("label", ["\u00b2", "\u0663", "\uff11", "1\u00b2", "-1", "01", "1000", " 1", "", "fakeusb://A"])
def test_diagnose_says_a_squatters_page_with_a_camera_label_that_is_not_an_ascii_index_is_invalid(label):
    """A squatter on the metrics port serving a recovery gauge whose camera label is no ASCII index
    (``str.isdigit`` takes '²', which ``int`` refuses): ``diagnose`` says the endpoint was not read
    (ok None), never crashes and never reads the other cameras' samples as the daemon's state."""
    import http.server
    import threading

    from agent.observe.metrics import probe_recovery

    label_text = label.replace("\\", "\\\\").replace('"', '\\"')
    page = ("# TYPE capture_agent_device_recovery_patience gauge\n"
            'capture_agent_device_recovery_patience{camera="0"} 1.0\n'
            f'capture_agent_device_recovery_patience{{camera="{label_text}"}} 1.0\n').encode()

    class Squatter(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Squatter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        got = probe_recovery(f"127.0.0.1:{server.server_port}", timeout_s=5.0)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert got == {"text": f"not read from 127.0.0.1:{server.server_port} (ValueError)", "ok": None}
