"""One capture session, start to receipt: the state machine behind the local API's ``Capture``.

Stages, in order, each with its own deadline (``[session]`` config):

1. ``consent``   — a ``consent_ref`` is required (PIPL: separate, explicit consent before capture);
                   the terminal and the subject must not be locked out (§8.2.5 d);
2. ``challenge`` — ``BeginCapture`` on the uplink: nonce, expiry, server key;
3. ``capture``   — quality loop: frames through sync, align and the gate; one prompt at a time and
                   progress until the gate has its good framesets; then the challenge window: the
                   projector follows the nonce's schedule for ``challenge.frames`` framesets;
4. ``liveness``  — the window is judged in the sandboxed worker; the verdict is bound to the frames;
5. ``probe``     — crops, landmarks, reports, attestation, timings;
6. ``seal``      — HPKE to the server key, signed by the terminal key; face buffers overwritten;
7. ``submit``    — to the ingest server; the receipt is the result.

Failures are typed (``SES_*``, plus the uplink's and the worker's codes), counted toward lockout,
and audited without biometric data. Nothing is written to disk but the audit log.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import drivers
from drivers.base import Capability
from drivers.errors import CaptureAgentError, FrameTimeout
from drivers.frame import StreamKind
from proto.capture_agent.v1 import ingest_pb2 as pb

from .align import align_frameset
from .config import SessionSettings
from .devices import DeviceSettings, check_policy
from .liveness.challenge import Challenge
from .liveness.fusion import load_thresholds
from .liveness.laser import ProjectorPlanner
from .liveness.session import collect
from .quality import QualityGate, QualitySettings
from .quality.gate import require_stream_spec
from .quality.settings import CHANNELS
from .sync import FrameSetMatcher, framesets
from .uplink.probe import build_payload, seal_probe

CONSENT_RE = re.compile(r"^[A-Za-z0-9._:/-]{4,128}$")
REF_RE = re.compile(r"^[A-Za-z0-9._:/-]{0,128}$")


class SessionError(CaptureAgentError):
    code = "SES_ERROR"


class ConsentRequired(SessionError):
    code = "SES_CONSENT_REQUIRED"


class LockedOut(SessionError):
    code = "SES_LOCKED_OUT"


class StageTimeout(SessionError):
    code = "SES_STAGE_TIMEOUT"


class Cancelled(SessionError):
    code = "SES_CANCELLED"


class BadRequest(SessionError):
    code = "SES_BAD_REQUEST"


class Busy(SessionError):
    """Another capture is running: the terminal has one camera and one person in front of it."""

    code = "SES_BUSY"


class Lockout:
    """Failed attempts per terminal and per subject; too many within the window locks both out."""

    def __init__(self, s: SessionSettings, clock: Callable[[], float] = time.monotonic):
        self.s, self.clock = s, clock
        self._fails: dict[str, deque] = defaultdict(deque)
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for k in keys:
                if self._until.get(k, 0) > now:
                    raise LockedOut(f"too many failed attempts ({k.split(':')[0]}); try again in "
                                    f"{int(self._until[k] - now)} s")

    def fail(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for k in keys:
                q = self._fails[k]
                q.append(now)
                while q and q[0] < now - self.s.failure_window_s:
                    q.popleft()
                if len(q) >= self.s.max_failures:
                    self._until[k] = now + self.s.lockout_s
                    q.clear()

    def succeed(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._fails.pop(k, None)


@dataclass
class CaptureRequest:
    purpose: str                 # enroll | verify
    channel: str
    consent_ref: str
    subject_ref: str = ""
    business_ref: str = ""


class ProbeCounter:
    """The terminal's monotonic probe counter, kept across restarts in a small state file (a number,
    nothing biometric), written atomically before the counter is used."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self.value = 0
        if self.path is not None and self.path.exists():
            try:
                self.value = int(self.path.read_text().strip() or 0)
            except ValueError:
                raise SessionError(f"probe counter file {self.path} is damaged") from None

    def next(self) -> int:
        with self._lock:
            self.value += 1
            if self.path is not None:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(str(self.value))
                os.replace(tmp, self.path)
            return self.value


@dataclass
class Agent:
    """What a session needs from the daemon (built by agent/daemon.py, or by tests directly)."""

    terminal_id: str
    camera_uri: str
    uplink: Any                      # agent.uplink.client.UplinkClient
    signer: Any                      # agent.keys.Signer
    supervisor: Any                  # agent.liveness.supervisor.LivenessSupervisor
    audit: Any = None                # agent.audit.AuditLog or None
    settings: SessionSettings = field(default_factory=SessionSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    devices: DeviceSettings = field(default_factory=DeviceSettings)
    counter: ProbeCounter = field(default_factory=ProbeCounter)
    lockout: Lockout | None = None
    _gates: dict[str, QualityGate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lockout = self.lockout or Lockout(self.settings)

    def gate(self, channel: str) -> QualityGate:
        # One gate (and one set of loaded face models) per channel; sessions run one at a time.
        if channel not in self._gates:
            self._gates[channel] = QualityGate(self.quality, channel=channel)
        return self._gates[channel]

    def record(self, event: str, **data) -> None:
        if self.audit is not None:
            self.audit.record(event, **data)


def _subject_key(subject_ref: str) -> str:
    # Lockout and audit use a digest: the subject reference itself is not kept or logged.
    return "subject:" + hashlib.sha256(subject_ref.encode()).hexdigest()[:16]


def validate(req: CaptureRequest) -> None:
    if req.purpose not in ("enroll", "verify"):
        raise BadRequest("purpose must be ENROLL or VERIFY")
    if req.channel not in CHANNELS:
        raise BadRequest(f"channel must be one of {', '.join(CHANNELS)}")
    if not req.consent_ref or not CONSENT_RE.match(req.consent_ref):
        raise ConsentRequired("a consent_ref (4-128 characters: letters, digits, . _ : / -) is required "
                              "before any capture")
    for name in ("subject_ref", "business_ref"):
        if not REF_RE.match(getattr(req, name)):
            raise BadRequest(f"{name} must be at most 128 characters of letters, digits, . _ : / -")


def run_capture(agent: Agent, req: CaptureRequest, cancel: threading.Event | None = None,
                session_id: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield events: ``{"prompt": ...}``, ``{"progress": ...}``, then one ``{"result": ...}`` or
    ``{"error": ...}``. Never raises for a session failure; the caller validates first."""
    sid = session_id or str(uuid.uuid4())
    cancel = cancel or threading.Event()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    keys = (f"terminal:{agent.terminal_id}",) + ((_subject_key(req.subject_ref),) if req.subject_ref else ())
    stage = "consent"
    sets: list = []

    def mark(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round((now - since) * 1000, 2)
        return now

    def check_cancel() -> None:
        if cancel.is_set():
            raise Cancelled("the capture was cancelled")

    try:
        validate(req)
        agent.lockout.check(*keys)
        agent.record("session_start", session_id=sid, purpose=req.purpose, channel=req.channel,
                     subject=_subject_key(req.subject_ref) if req.subject_ref else None,
                     business_ref=req.business_ref or None)
        agent.record("consent", session_id=sid, consent_ref=req.consent_ref)
        yield {"progress": {"percent": 0, "stage": "consent"}}
        stage = "challenge"
        t = time.perf_counter()
        ch = agent.uplink.begin(sid, pb.ENROLL if req.purpose == "enroll" else pb.VERIFY)
        t = mark("challenge", t)
        check_cancel()
        stage = "capture"
        yield {"progress": {"percent": 5, "stage": "capture"}}
        gate = agent.gate(req.channel)
        cam = drivers.open(agent.camera_uri)
        with cam, contextlib.ExitStack() as stack:                # starts the streams
            device = check_policy(cam.info, agent.devices)       # allowlist, virtual cameras refused
            require_stream_spec(cam.profiles(), gate.thresholds)  # §7.5 h before anyone is asked to pose
            t = mark("camera_open", t)
            # The projector's power for the challenge is set on the quality phase's frames, and
            # put back to the default on every way out of the session (the device keeps it).
            planner = ProjectorPlanner(cam)
            planner.start()
            stack.callback(planner.restore)
            if Capability.PROJECTOR_CONTROL in cam.capabilities:
                cam.set_projector(True)                 # the last challenge may have left it off
            yield from _quality_loop(agent, cam, gate, cancel, planner)
            planner.wait_applied(framesets(cam, 8, timeout_s=agent.settings.quality_timeout_s))
            if planner.enabled:
                agent.record("projector", session_id=sid, **planner.to_dict())
            t = mark("quality", t)
            check_cancel()
            stage = "challenge_window"
            challenge = Challenge.from_nonce(ch.nonce, frames=ch.frames)
            # Each frameset goes to the liveness worker as it arrives, so the worker judges while
            # the camera is still capturing; after the last frame only fusion remains.
            with agent.supervisor.session(frames=ch.frames, nonce=ch.nonce, thresholds=load_thresholds(req.channel),
                                          channel=req.channel) as worker:
                sets = collect(cam, ch.frames, challenge, timeout_s=agent.settings.challenge_window_s,
                               cancelled=cancel.is_set, on_frameset=worker.add)
                t_last_frame = time.perf_counter()
                planner.restore()
                cam.stop()                                    # every frame needed is in (stop is idempotent)
                t = mark("challenge_window", t)
                check_cancel()
                if len(sets) < ch.frames:
                    raise StageTimeout(f"only {len(sets)} of {ch.frames} framesets arrived within "
                                       f"{agent.settings.challenge_window_s:g} s of the challenge window")
                stage = "liveness"
                yield {"progress": {"percent": 70, "stage": "liveness"}}
                r = worker.finish()
                t = mark("liveness", t)
        v = r.verdict
        if v.verdict != "live" or r.best is None:
            sets.clear()
            agent.lockout.fail(*keys)
            why = (v.challenge or {}).get("detail") if v.challenge and not v.challenge.get("passed") else None
            agent.record("result", session_id=sid, accepted=False, reason="NOT_LIVE", verdict=v.verdict,
                         score=round(v.score, 3), challenge_passed=bool(v.challenge and v.challenge.get("passed")))
            timings["total"] = round((time.perf_counter() - t0) * 1000, 2)
            yield {"result": {"accepted": False, "reason": "NOT_LIVE", "probe_id": "",
                              "liveness_verdict": v.verdict, "detail": why or "; ".join(v.notes)[:300],
                              "timings_ms": timings}}
            return
        stage = "probe"
        yield {"progress": {"percent": 85, "stage": "seal"}}
        payload = build_payload(sets[r.best["index"]], r.best, quality=r.quality, liveness=v.to_dict(),
                                device=device, timings_ms=timings, frame_digest=v.frame_digests[r.best["index"]])
        sets.clear()                                   # face frames leave memory with this session
        t = mark("probe", t)
        stage = "seal"
        sealed = seal_probe(ch, payload, terminal_id=agent.terminal_id, session_id=sid, counter=agent.counter.next(),
                            signer=agent.signer, purpose=req.purpose)   # wipes the payload buffer
        header = pb.ProbeHeader()
        header.ParseFromString(sealed.header)
        t = mark("seal", t)
        stage = "submit"
        yield {"progress": {"percent": 95, "stage": "submit"}}
        receipt = agent.uplink.submit(sealed, header.probe_id)
        t = mark("submit", t)
        timings["after_last_frame"] = round((t - t_last_frame) * 1000, 2)
        timings["total"] = round((t - t0) * 1000, 2)
        budget = agent.settings.enroll_budget_ms if req.purpose == "enroll" else agent.settings.verify_budget_ms
        timings["budget"] = budget
        (agent.lockout.succeed if receipt.accepted else agent.lockout.fail)(*keys)
        agent.record("result", session_id=sid, accepted=receipt.accepted, reason=receipt.reason,
                     probe_id=header.probe_id, counter=header.counter, verdict=v.verdict, total_ms=timings["total"],
                     within_budget=timings["total"] <= budget)
        yield {"progress": {"percent": 100, "stage": "done"}}
        yield {"result": {"accepted": receipt.accepted, "reason": receipt.reason, "probe_id": header.probe_id,
                          "liveness_verdict": receipt.liveness_verdict or v.verdict,
                          "detail": receipt.detail, "timings_ms": timings}}
    except CaptureAgentError as exc:
        sets.clear()
        if not isinstance(exc, (ConsentRequired, BadRequest, LockedOut, Cancelled)):
            agent.lockout.fail(*keys)
        agent.record("error", session_id=sid, stage=stage, code=exc.code, message=exc.message[:200])
        yield {"error": {"code": exc.code, "message": exc.message}}
    finally:
        sets.clear()
        agent.record("session_end", session_id=sid, stage=stage,
                     elapsed_ms=round((time.perf_counter() - t0) * 1000, 1))


def _quality_loop(agent: Agent, cam, gate: QualityGate, cancel: threading.Event,
                  planner: ProjectorPlanner | None = None) -> Iterator[dict[str, Any]]:
    """Frames through sync, align and the gate until it has its good framesets: one prompt at a time,
    repeated only when it changes (the gate's hysteresis keeps it from flickering)."""
    profiles = cam.profiles()
    kinds = sorted({p.kind for p in profiles}, key=lambda k: (k is not StreamKind.DEPTH, k.value))
    matcher = FrameSetMatcher(kinds, min(p.fps for p in profiles), extrinsics=cam.all_extrinsics())
    deadline = time.monotonic() + agent.settings.quality_timeout_s
    last_prompt = None
    last_percent = -1
    gate.reset()
    while not gate.complete:
        if cancel.is_set():
            return
        if time.monotonic() > deadline:
            raise StageTimeout(f"the capture spec was not met within {agent.settings.quality_timeout_s:g} s "
                               f"(last prompt: {last_prompt or 'none'})")
        try:
            frame = cam.read(timeout_s=1.0)
        except FrameTimeout:
            continue                       # the deadline above bounds the wait
        for fs in matcher.push(frame):
            aligned = align_frameset(fs)
            report = gate.evaluate(aligned)
            if planner is not None:
                planner.observe(aligned, report.face)
            code = report.prompt.code if report.prompt else None
            if code != last_prompt and report.prompt is not None:
                yield {"prompt": report.prompt.to_dict()}
            last_prompt = code
            percent = 5 + int(0.6 * gate.progress)
            if percent != last_percent:
                yield {"progress": {"percent": percent, "stage": "capture"}}
                last_percent = percent
