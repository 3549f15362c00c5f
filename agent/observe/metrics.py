"""The daemon's Prometheus metrics (``[metrics]``, off by default, loopback only).

Everything is observed, nothing is instrumented inside other parts:

- the session's audited events and its stream counts arrive through ``SessionDeps.observer``
  (:meth:`AgentMetrics.observe`): outcomes, verdicts, refusals, errors by stage and code, uplink
  errors, per-stage latency, fps, drops and sync skew;
- the liveness supervisor's restart count is read at scrape time (:meth:`AgentMetrics.watch_supervisor`);
- the audit log's refused records, by problem (``security.audit.PROBLEMS``), at scrape time too
  (:meth:`AgentMetrics.watch_audit`: every caller's, the daemon's own and the firmware gate's included);
- the device manager's source events (restart, reset, re-plug, given up) arrive through
  :meth:`AgentMetrics.on_source_event`.

Nothing identifying a person is ever a label: labels are stream kinds, stages, purposes, verdicts
and stable codes, each checked against its closed set (anything else becomes ``other``), so neither
a reference, a session id nor a string a compromised worker or server sends can become a label.
The registry is the daemon's own (not prometheus_client's global one).
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeGuard

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from agent import __version__
from agent.observe.settings import loopback_host_port

NS = "capture_agent"
CODE_RE = re.compile(r"[A-Z][A-Z0-9_]{1,63}")
OTHER = "other"

# Closed label sets. A value outside its set is counted as ``other``.
PURPOSES = frozenset({"enroll", "verify"})
STAGES = frozenset({"consent", "capture", "challenge", "challenge_window", "liveness", "probe", "seal", "submit"})
TIMED = frozenset({"camera_open", "capabilities", "quality", "challenge", "challenge_window", "liveness", "probe",
                   "seal", "submit", "after_last_frame"})
VERDICTS = frozenset({"live", "attack", "inconclusive"})
# The liveness detectors whose scores a refused session's ``result`` carries (``detector_<name>``).
DETECTORS = frozenset({"depth_geometry", "cross_modal", "material", "motion", "eye_region", "life_signs"})
REASONS = frozenset({"OK", "NOT_LIVE", "TAMPERED", "EXPIRED", "REPLAYED", "WRONG_KEY", "UNKNOWN_TERMINAL", "REVOKED",
                     "MALFORMED", "UNBOUND", "ATTESTATION_FAILED", "DOT_REFERENCE_MISSING",
                     "DOT_REFERENCE_MISMATCH"})
STREAMS = frozenset({"color", "depth", "ir"})
# The device manager's step names (agent.devices.manager.Source._set) -> label values.
RECOVERY_STEPS = {"re-open": "reopen", "hardware reset": "hardware_reset", "re-plug": "replug",
                  "re-plug after failure": "replug"}
FAULT_CAUSES = {"stalled": "stalled", "lost": "lost", "lost during a session": "lost"}
SOURCE_STATES = ("starting", "online", "reconnecting", "failed", "stopped", "maintenance")
MAX_CODES = 64                       # distinct codes per metric before new ones count as ``other``
MAX_CAMERAS = 8                      # camera index labels before ``other``
OPEN_SESSIONS = 16                   # sessions whose purpose and outcome are remembered until their end

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0)
SKEW_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.0167, 0.0333, 0.05, 0.1)


def _deciding(d: Mapping[str, Any]) -> list[str]:
    """The detectors with the lowest score among a result's ``detector_<name>`` fields (the fused
    score is the weakest detector's), each named from ``DETECTORS`` or ``other``; ``["none"]`` when
    the result carries no score (the worker sends scores, so their names are checked like any label)."""
    scores = {k[len("detector_"):]: v for k, v in d.items()
              if isinstance(k, str) and k.startswith("detector_") and _number(v)}
    if not scores:
        return ["none"]
    low = min(scores.values())
    return sorted({_member(k, DETECTORS) for k, v in scores.items() if v == low})


def _member(value: Any, allowed: Iterable[str]) -> str:
    return value if isinstance(value, str) and value in allowed else OTHER


class _Codes:
    """A stable code as a label: the code's own shape, and at most ``MAX_CODES`` distinct ones."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str) or not CODE_RE.fullmatch(value):
            return OTHER
        with self._lock:
            if value not in self._seen and len(self._seen) >= MAX_CODES:
                return OTHER
            self._seen.add(value)
        return value


class _SupervisorCollector(Collector):
    """The liveness worker's restarts and liveness, read when scraped."""

    def __init__(self, supervisor: Any):
        self.supervisor = supervisor

    def collect(self) -> Iterable[Any]:
        restarts = CounterMetricFamily(f"{NS}_liveness_worker_restarts",
                                       "liveness worker restarts after a crash, hang or unbound verdict")
        restarts.add_metric([], float(self.supervisor.restarts))
        up = GaugeMetricFamily(f"{NS}_liveness_worker_up", "1 while the liveness worker process runs")
        up.add_metric([], 1.0 if self.supervisor.alive() else 0.0)
        return [restarts, up]


class _RecoveryCollector(Collector):
    """Each camera's recovery state (``DeviceManager.status()``'s ``recovery``), read when scraped:
    the factor on its camera host's warm/open/start deadlines, the re-opens in a row that cost a host,
    the wait in force after them, and the seconds until the next re-open (no sample while none is
    waited for). Cameras labelled as the device gauges label them (``camera``: an index, never a URI)."""

    def __init__(self, status: Callable[[], Mapping[str, Any]], camera: Callable[[str], str]):
        self.status, self.camera = status, camera

    def collect(self) -> Iterable[Any]:
        fams = {key: GaugeMetricFamily(f"{NS}_device_recovery_{name}", text, labels=["camera"])
                for key, name, text in RECOVERY_GAUGES}
        for uri, st in self.status().items():
            rec = st.get("recovery") or {}
            for key, fam in fams.items():
                if rec.get(key) is not None:
                    fam.add_metric([self.camera(uri)], float(rec[key]))
        return list(fams.values())


# ``recovery`` keys of ``DeviceManager.status()``, their metric names' tails and help texts.
RECOVERY_GAUGES = (
    ("patience", "patience", "factor on the camera host's warm/open/start deadlines (1-8; doubled after each "
                             "host killed for missing one, 1 once a camera starts or the device is off the bus)"),
    ("consecutive_failures", "consecutive_failures", "re-opens in a row whose camera host was killed or died"),
    ("backoff_s", "backoff_seconds", "wait before the next re-open after host failures (0: none in force)"),
    ("next_attempt_in_s", "next_attempt_seconds", "seconds until the next re-open (no sample while none is waited "
                                                 "for)"),
)


MAX_SCRAPE_BYTES = 4 << 20          # a daemon's metrics page is ~30 KB; more is not ours to parse
CAMERA_LABEL_RE = re.compile(r"0|[1-9][0-9]{0,2}")   # the daemon's camera label: an ASCII index, never the URI


def probe_recovery(listen: str, timeout_s: float = 2.0) -> dict[str, Any]:
    """A running daemon's cameras' recovery state from its metrics endpoint (``[metrics] listen``,
    loopback), for ``diagnose``: ``{"text", "ok"}`` (ok None when it could not be read; True only while
    every camera is at rest, as docs/devices.md defines it: the base deadlines (patience 1), no host
    failure in a row, no backoff and no re-open waited for; False otherwise: a camera off the bus polled
    for at the base deadlines, with no backoff, is still being recovered, not at rest)."""
    import urllib.error
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    host, port = loopback_host_port(listen, "[metrics] listen")
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout_s) as r:
            text = r.read(MAX_SCRAPE_BYTES + 1).decode("utf-8", "replace")
        if len(text) > MAX_SCRAPE_BYTES:
            raise ValueError("metrics page too large")
        cams: dict[int, dict[str, float]] = {}
        names = {f"{NS}_device_recovery_{name}": key for key, name, _ in RECOVERY_GAUGES}
        for fam in text_string_to_metric_families(text):
            for smp in fam.samples:
                key = names.get(smp.name)
                if key is None:
                    continue
                camera = smp.labels.get("camera")
                # str.isdigit() takes '²' and '٣', which int() then refuses: only the daemon's own ASCII
                # index is read, and anything else makes the whole page invalid (a squatter, not ours)
                if not isinstance(camera, str) or CAMERA_LABEL_RE.fullmatch(camera) is None:
                    raise ValueError("recovery gauge without a camera index")
                if math.isfinite(smp.value):
                    cams.setdefault(int(camera), {})[key] = smp.value
    except (OSError, ValueError, urllib.error.URLError) as exc:
        return {"text": f"not read from {host}:{port} ({type(exc).__name__})", "ok": None}
    if not cams:
        return {"text": "no camera's recovery state in the daemon's metrics", "ok": None}
    parts, at_rest = [], True
    for index in sorted(cams):
        r = cams[index]
        patience, backoff = r.get("patience", 1.0), r.get("backoff_s", 0.0)
        failures = r.get("consecutive_failures", 0.0)
        at_rest = (at_rest and patience == 1.0 and failures == 0.0 and backoff == 0.0
                   and "next_attempt_in_s" not in r)
        text = f"camera {index}: deadlines x{patience:g}, {failures:g} host failure(s) in a row, backoff {backoff:g} s"
        if "next_attempt_in_s" in r:
            text += f", next re-open in {r['next_attempt_in_s']:.1f} s"
        parts.append(text)
    return {"text": "; ".join(parts), "ok": at_rest}


class _AuditCollector(Collector):
    """The audit log's refused records (``audit_refused`` entries written in their place), read when
    scraped: a count that should stay 0, each one a caller's defect (``agent/security/audit.py``)."""

    def __init__(self, audit: Any):
        self.audit = audit

    def collect(self) -> Iterable[Any]:
        from agent.security.audit import PROBLEMS
        refused = CounterMetricFamily(f"{NS}_audit_refused", "audit records refused (an audit_refused entry "
                                      "written in place of each), by problem", labels=["problem"])
        counts = self.audit.refusals()
        for problem in PROBLEMS:
            refused.add_metric([problem], float(counts.get(problem, 0)))
        return [refused]


class AgentMetrics:
    """One daemon's metrics. ``observe`` is the session observer; ``exposition()`` the text format."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self._codes = _Codes()
        # session id -> [purpose, outcome] between its start and its end (a few at most at once)
        self._open: OrderedDict[str, list[str]] = OrderedDict()
        self._cameras: dict[str, str] = {}
        self._lock = threading.Lock()
        ProcessCollector(registry=r)                              # CPU, RSS, open fds of the daemon
        Gauge(f"{NS}_info", "the agent's version", ["version"], registry=r).labels(__version__).set(1)
        self.ready = Gauge(f"{NS}_ready", "1 once the daemon is up and taking captures", registry=r)
        self.sessions = Counter(f"{NS}_sessions", "finished sessions by purpose and outcome (accepted, "
                                "rejected, error, cancelled, abandoned: ended without a result or error)",
                                ["purpose", "outcome"], registry=r)
        self.results = Counter(f"{NS}_results", "session results by acceptance and receipt reason",
                               ["accepted", "reason"], registry=r)
        self.verdicts = Counter(f"{NS}_liveness_verdicts", "liveness verdicts of sessions that reached a result",
                                ["verdict"], registry=r)
        self.deciding = Counter(f"{NS}_liveness_refusals_by_detector", "NOT_LIVE sessions by the detector "
                                "that decided them (the lowest score: fusion takes the weakest; each of a tie "
                                "counts; none: no detector score, e.g. a failed challenge before scoring)",
                                ["detector"], registry=r)
        self.refusals = Counter(f"{NS}_refusals", "captures refused before they started, by code",
                                ["code"], registry=r)
        self.errors = Counter(f"{NS}_session_errors", "sessions that ended with an error, by stage and code",
                              ["stage", "code"], registry=r)
        self.uplink_errors = Counter(f"{NS}_uplink_errors", "sessions ended by the uplink, by code", ["code"],
                                     registry=r)
        self.over_budget = Counter(f"{NS}_sessions_over_budget", "accepted or rejected sessions slower than their "
                                   "§7.2 budget", ["purpose"], registry=r)
        self.stage_seconds = Histogram(f"{NS}_session_stage_seconds", "time per session stage "
                                       "(after_last_frame: from the last frame to the receipt)", ["stage"],
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.session_seconds = Histogram(f"{NS}_session_seconds", "whole session, start to end",
                                         ["purpose", "outcome"], buckets=LATENCY_BUCKETS, registry=r)
        self.fps = Gauge(f"{NS}_stream_fps", "measured frame rate per stream in the last session "
                         "(hardware timestamps)", ["stream"], registry=r)
        self.frames = Counter(f"{NS}_stream_frames", "frames read by sessions, per stream", ["stream"], registry=r)
        self.dropped = Counter(f"{NS}_stream_dropped_frames", "frames lost per stream (frame-number gaps)",
                               ["stream"], registry=r)
        self.skew = Histogram(f"{NS}_sync_skew_max_seconds", "largest skew among a session's framesets",
                              buckets=SKEW_BUCKETS, registry=r)
        self.skew_mean = Gauge(f"{NS}_sync_skew_mean_seconds", "mean frameset skew in the last session",
                               registry=r)
        self.device_faults = Counter(f"{NS}_device_faults", "camera faults seen by the device manager "
                                     "(stalled stream, lost device)", ["cause"], registry=r)
        self.device_recoveries = Counter(f"{NS}_device_recoveries", "camera recoveries by the step that worked "
                                         "(reopen, hardware_reset, replug)", ["step"], registry=r)
        self.device_failures = Counter(f"{NS}_device_failures", "cameras given up after every recovery step",
                                       registry=r)
        self.device_state = Gauge(f"{NS}_device_state", "1 for each camera's current state",
                                  ["camera", "state"], registry=r)

    # -- sources of observations -------------------------------------------------------------------
    def watch_supervisor(self, supervisor: Any) -> None:
        """Export ``supervisor.restarts`` and ``supervisor.alive()`` (a LivenessSupervisor) at scrape time."""
        self.registry.register(_SupervisorCollector(supervisor))

    def watch_devices(self, status: Callable[[], Mapping[str, Any]]) -> None:
        """Export each camera's recovery state from ``status`` (``DeviceManager.status``) at scrape time."""
        self.registry.register(_RecoveryCollector(status, self._camera))

    def watch_audit(self, audit: Any) -> None:
        """Export ``audit.refusals()`` (an ``AuditLog``) at scrape time."""
        self.registry.register(_AuditCollector(audit))

    def observe(self, event: str, data: Mapping[str, Any]) -> None:
        """``SessionDeps.observer``: one audited event (or ``session_streams``) of a session."""
        handler = _HANDLERS.get(event)
        if handler is not None:
            handler(self, data)

    def on_source_event(self, ev: Any) -> None:
        """A device manager's ``SourceEvent`` (``agent.devices.manager``): faults, recoveries, give-ups."""
        state = getattr(ev.state, "value", str(ev.state))
        camera = self._camera(ev.uri)
        for s in SOURCE_STATES:
            self.device_state.labels(camera, s).set(1.0 if s == state else 0.0)
        if state == "reconnecting":
            self.device_faults.labels(FAULT_CAUSES.get(ev.step, OTHER)).inc()
        elif state == "online" and ev.step in RECOVERY_STEPS:
            self.device_recoveries.labels(RECOVERY_STEPS[ev.step]).inc()
        elif state == "failed":
            self.device_failures.inc()

    def _camera(self, uri: str) -> str:
        # Cameras are labelled by the order they were first seen, never by URI (it may hold a serial
        # or a file path, and its length is not ours to bound).
        with self._lock:
            if uri not in self._cameras:
                if len(self._cameras) >= MAX_CAMERAS:
                    return OTHER
                self._cameras[uri] = str(len(self._cameras))
            return self._cameras[uri]

    # -- session events ----------------------------------------------------------------------------
    def _session_start(self, d: Mapping[str, Any]) -> None:
        with self._lock:
            self._open[str(d.get("session_id"))] = [_member(d.get("purpose"), PURPOSES), "abandoned"]
            while len(self._open) > OPEN_SESSIONS:
                self._open.popitem(last=False)

    def _session(self, d: Mapping[str, Any], outcome: str | None = None, *, end: bool = False) -> list[str]:
        """[purpose, outcome] of the event's session (``other`` for one never started here)."""
        sid = str(d.get("session_id"))
        with self._lock:
            entry = (self._open.pop(sid, None) if end else self._open.get(sid)) or [OTHER, "abandoned"]
            if outcome is not None:
                entry[1] = outcome
            return entry

    def _result(self, d: Mapping[str, Any]) -> None:
        accepted = d.get("accepted") is True
        self.results.labels(str(accepted).lower(), _member(d.get("reason"), REASONS)).inc()
        self.verdicts.labels(_member(d.get("verdict"), VERDICTS)).inc()
        if not accepted and d.get("reason") == "NOT_LIVE":
            for name in _deciding(d):
                self.deciding.labels(name).inc()
        purpose, _ = self._session(d, "accepted" if accepted else "rejected")
        if d.get("within_budget") is False:
            self.over_budget.labels(purpose).inc()

    def _error(self, d: Mapping[str, Any]) -> None:
        code = self._codes(d.get("code"))
        self.errors.labels(_member(d.get("stage"), STAGES), code).inc()
        if code.startswith("UPL_"):
            self.uplink_errors.labels(code).inc()
        self._session(d, "cancelled" if code == "SES_CANCELLED" else "error")

    def _refused(self, d: Mapping[str, Any]) -> None:
        self.refusals.labels(self._codes(d.get("code"))).inc()

    def _peer_refused(self, d: Mapping[str, Any]) -> None:
        suppressed = d.get("suppressed")
        n = 1 + (suppressed if isinstance(suppressed, int) and 0 <= suppressed < 1 << 31 else 0)
        self.refusals.labels("LAPI_PEER_NOT_ALLOWED").inc(n)

    def _session_end(self, d: Mapping[str, Any]) -> None:
        purpose, outcome = self._session(d, end=True)
        self.sessions.labels(purpose, outcome).inc()
        for name in TIMED:
            ms = d.get(f"{name}_ms")
            if _number(ms):
                self.stage_seconds.labels(name).observe(ms / 1000)
        if _number(d.get("elapsed_ms")):
            self.session_seconds.labels(purpose, outcome).observe(d["elapsed_ms"] / 1000)

    def _streams(self, d: Mapping[str, Any]) -> None:
        streams = d.get("streams")
        for kind, s in (streams.items() if isinstance(streams, dict) else ()):
            label = _member(kind, STREAMS)
            if not isinstance(s, dict):
                continue
            if _number(s.get("fps")):
                self.fps.labels(label).set(s["fps"])
            for counter, key in ((self.frames, "frames"), (self.dropped, "dropped")):
                n = s.get(key)
                if isinstance(n, int) and 0 <= n < 1 << 31:
                    counter.labels(label).inc(n)
        if _number(d.get("skew_max_ms")):
            self.skew.observe(d["skew_max_ms"] / 1000)
        if _number(d.get("skew_mean_ms")):
            self.skew_mean.set(d["skew_mean_ms"] / 1000)

    # -- exposition --------------------------------------------------------------------------------
    def exposition(self) -> bytes:
        from prometheus_client import generate_latest
        return generate_latest(self.registry)

    def serve(self, listen: str) -> MetricsServer:
        """Start ``http://<listen>/metrics`` on a loopback address; ``MetricsServer.stop()`` ends it."""
        host, port = loopback_host_port(listen, "[metrics] listen")
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        return MetricsServer(server, thread)


def _number(v: Any) -> TypeGuard[float]:
    """A plausible count, rate or duration from an event (never a bool, a string, negative or huge)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e9


_HANDLERS: dict[str, Callable[[AgentMetrics, Mapping[str, Any]], None]] = {
    "session_start": AgentMetrics._session_start,
    "result": AgentMetrics._result,
    "error": AgentMetrics._error,
    "request_refused": AgentMetrics._refused,
    "local_api_refused": AgentMetrics._peer_refused,
    "session_end": AgentMetrics._session_end,
    "session_streams": AgentMetrics._streams,
}


class MetricsServer:
    """The running endpoint: its bound port and a stop that frees it."""

    def __init__(self, server: Any, thread: threading.Thread):
        self._server, self._thread = server, thread
        self.port: int = server.server_address[1]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
