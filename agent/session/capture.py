"""One capture session, start to receipt: the state machine behind the local API's ``Capture``.

Stages, in order, each with its own deadline (``[session]`` config):

1. ``consent``   — a ``consent_ref`` is required (PIPL: separate, explicit consent before capture);
                   the terminal and the subject must not be locked out (§8.2.5 d);
2. ``capture``   — quality loop: framesets through align and the gate in the liveness worker
                   (``LivenessSupervisor.open_quality``: the daemon loads no face model), one
                   prompt at a time and progress until the gate has its good framesets (their lit
                   IR also sets the projector's power);
3. ``challenge`` — ``BeginCapture`` on the uplink: nonce, expiry, server key, the challenges to
                   run; asked for after the quality loop, so however long the person takes to pose,
                   the nonce's lifetime only has to cover the window, liveness and the submit.
                   (What the camera and screen can be challenged with was checked against the
                   server's policy right after the camera opened, before the person posed.) Then the
                   challenge window: the projector and the kiosk screen follow the nonce's
                   sequences for ``challenge.frames`` framesets, exposures held;
4. ``liveness``  — the window is judged in the sandboxed worker as it arrives; the verdict is bound
                   to the frames;
5. ``probe``     — crops of the best frameset, landmarks, reports, attestation, timings (the
                   frameset the worker names best so far is aligned while the window is captured,
                   ``probe_ahead.py``: at the verdict only a frameset it did not name is aligned);
6. ``seal``      — HPKE to the server key, signed by the terminal key; face buffers overwritten;
7. ``submit``    — to the ingest server; the receipt is the result.

``run_capture`` calls one function a stage, in this order, each handed the session's state
(``_Session``): ``_consent``, ``_open_camera`` (the camera and what the session drives on it, held
until the verdict), ``_posing``, ``_begin_challenge``, ``_judged_window``, then ``_refused`` or
``_seal_and_submit``; ``_failed`` for a typed failure and ``_ended`` on every way out
(docs/architecture.md, "Inside session/capture.py").

Failures are typed (``SES_*``, plus the uplink's and the worker's codes) and audited without
biometric data; only presentation failures (not live, a failed challenge, a receipt saying so)
count toward lockout, and a challenge window that lost frames (``SES_FRAMES_LOST``: not judged,
the person asked to try again, counted like a failed presentation so that faked gaps buy no tries; one the
terminal itself made late is graced within the lockout's hourly allowance, ``Lockout.grace``).
References reach the audit log and lockout only as keyed pseudonyms
(``agent/security/pseudonym.py``). The probe carries the audit log's latest signed checkpoint
(an anchor the server keeps). Nothing is written to disk but the audit log and the lockout state.
Every audited event, and the session's stream counts (``session_streams``, not audited), also go to
``SessionDeps.observer`` when the daemon sets one: its metrics and health (``agent/observe``). A record
the audit log refuses changes nothing here: the verdict, the probe and the receipt go on, and an
``audit_refused`` entry stands in its place (``agent/security/audit.py``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import drivers
from agent.config import ChallengeSettings, RecordSettings, SessionSettings
from agent.devices.lease import DeviceManager
from agent.devices.policy import DeviceSettings, check_policy
from agent.liveness.challenge import Challenge, Kind, detail_code, relabelled_code
from agent.liveness.fusion import LivenessVerdict, VerdictThresholds, load_thresholds
from agent.liveness.supervisor import Assessment, LivenessSupervisor, LivenessWorkerError, RemoteGate, WorkerResult
from agent.pipeline.align import AlignedFrameSet, align_frameset
from agent.pipeline.frames import FramesetReader
from agent.purpose import Purpose
from agent.quality.metering import FaceMetering
from agent.quality.prompts import BY_CODE, PRIORITY, Prompt
from agent.quality.settings import QualitySettings
from agent.quality.spec import require_stream_spec
from agent.security.audit import AuditLog
from agent.security.keys import Signer
from agent.security.pseudonym import Pseudonymizer
from agent.session.capabilities import capabilities
from agent.session.counter import ProbeCounter
from agent.session.errors import Cancelled, ExposureNotHeld, FramesLost, StageTimeout
from agent.session.events import (
    FRAMES_LOST,
    PLEASE_WAIT,
    CaptureEvent,
    Error,
    Progress,
    Result,
    verdict_prompt,
)
from agent.session.lockout import PRESENTATION_FAILURES, Lockout
from agent.session.probe_ahead import ProbeAhead
from agent.session.projector import ClippedSkin, ExposurePlan, Projector
from agent.session.record import open_recording
from agent.session.request import CaptureRequest, validate
from agent.session.window import UNKNOWN_LUX, ExposureHold, exposure_lock_declared, screen_luminance
from agent.session.window import run as run_window
from agent.uplink.client import ChallengeInvalid, UplinkClient, capabilities_to_proto, challenge_names
from agent.uplink.probe import build_payload, calibration_digest, seal_probe
from drivers import DeviceInfo
from drivers.base import Camera
from drivers.errors import CaptureAgentError
from drivers.frame import FrameSet, StreamKind
from firmware.maintenance import MaintenanceLock
from firmware.policy import FirmwareGate

if TYPE_CHECKING:
    from agent.security.tpm import TpmAttestor
    from proto.capture_agent.v1 import ingest_pb2 as pb

log = logging.getLogger(__name__)
IR_TOO_BRIGHT = BY_CODE["IR_TOO_BRIGHT"]          # the session's own prompt (``projector.ClippedSkin``)

SETTLE_SETS = 8                   # framesets the projector may take to show its planned power


@dataclass
class SessionDeps:
    """What a session needs from the daemon (built by ``agent.daemon``, or by tests directly)."""

    terminal_id: str
    camera_uri: str
    uplink: UplinkClient
    signer: Signer
    supervisor: LivenessSupervisor
    audit: AuditLog | None = None
    settings: SessionSettings = field(default_factory=SessionSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    devices: DeviceSettings = field(default_factory=DeviceSettings)
    counter: ProbeCounter = field(default_factory=ProbeCounter)
    lockout: Lockout | None = None
    pseudonym: Pseudonymizer = field(default_factory=Pseudonymizer.ephemeral)   # the daemon's: from state_dir
    read_timeout_s: float = 1.0       # one wait for a camera frame ([camera] read_timeout_s)
    # The daemon's device manager: cameras kept open between sessions, each session a lease on
    # them. None (tests, tools): the session opens ``camera_uri`` itself and closes it after.
    cameras: DeviceManager | None = None
    attestor: TpmAttestor | None = None   # TPM quote of the measured state for each challenge ([keys] attestation)
    # Firmware: the manifest's verdict at device open, and the maintenance lock a session shares with
    # firmware updates (the daemon owns both; None in tests and tools without them).
    firmware: FirmwareGate | None = None
    maintenance: MaintenanceLock | None = None
    recording: RecordSettings = field(default_factory=RecordSettings)   # lab-only raw session recording
    challenge: ChallengeSettings = field(default_factory=ChallengeSettings)   # the kiosk screen's part
    # Telemetry (agent/observe): called with (event, data) for every audited event and for the
    # session's stream counts. None: nobody listens (tests, tools).
    observer: Callable[[str, dict[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        self.lockout = self.lockout or Lockout(self.settings, audit=self.audit)

    def open_camera(self) -> Camera:
        return self.cameras.lease() if self.cameras is not None else drivers.open(self.camera_uri)

    def camera_window(self) -> contextlib.AbstractContextManager[None]:
        """Held for the session: ``FW_MAINTENANCE`` while a firmware update holds the camera."""
        return self.maintenance.session() if self.maintenance is not None else contextlib.nullcontext()

    def record(self, event: str, **data: Any) -> None:
        """Audit ``event`` (key operations, §8.2.5) and tell the observer. A record the audit log
        refuses (not flat short scalars) never changes the session: an ``audit_refused`` entry is
        written in its place (``AuditLog.record``) and the observer is told the event as it was."""
        if self.audit is not None:
            self.audit.record(event, **data)
        self.observe(event, **data)

    def observe(self, event: str, **data: Any) -> None:
        """Tell the observer only (counts that are not audited). A failing observer never fails a session."""
        if self.observer is None:
            return
        try:
            self.observer(event, data)
        except Exception:
            log.exception("session observer failed on %s", event)


def run_capture(deps: SessionDeps, req: CaptureRequest, cancel: threading.Event | None = None,
                session_id: str | None = None) -> Iterator[CaptureEvent]:
    """Yield ``Prompt`` and ``Progress`` events, then one ``Result`` or ``Error``. Never raises for a
    session failure; the caller validates the request first.

    The stages below, in order, each a function of its own; the camera is open (and the projector,
    the IR exposure and the colour metering are the session's) from posing to the verdict."""
    s = _Session(deps, req, cancel or threading.Event(), session_id or str(uuid.uuid4()))
    try:
        yield from _consent(s)
        with _open_camera(s) as rig:
            yield from _posing(s, rig)
            nonce = _begin_challenge(s, rig)
            judged = yield from _judged_window(s, rig, nonce)
        s.lockout.settle(s.sid)                        # judged: the verdict counts, as below
        if judged.refused:
            yield from _refused(s, judged)
        else:
            yield from _seal_and_submit(s, rig, nonce, judged)
    except CaptureAgentError as exc:
        yield from _failed(s, exc)
    finally:
        _ended(s)


class _Session:
    """One session's state, which its stages share: its id, request and cancel; its clock and stage
    timings; who the lockout charges; the stage it is in (its error and end records name it); the face
    framesets it holds and the maintenance lock it keeps."""

    def __init__(self, deps: SessionDeps, req: CaptureRequest, cancel: threading.Event, sid: str):
        self.deps, self.req, self.cancel, self.sid = deps, req, cancel, sid
        self.t0 = time.perf_counter()
        self.t = self.t0                           # the last timing mark
        self.timings: dict[str, float] = {}
        # Lockout and audit see the subject only as a keyed pseudonym, never the reference itself.
        self.subject = deps.pseudonym("subject", req.subject_ref) if req.subject_ref else None
        self.keys = (f"terminal:{deps.terminal_id}",) + ((self.subject,) if self.subject else ())
        self.stage = "consent"
        assert deps.lockout is not None            # SessionDeps.__post_init__ always sets one
        self.lockout: Lockout = deps.lockout
        self.sets: list = []
        self.reader: FramesetReader | None = None  # its stream counts go to the observer at the end
        self.t_last_frame = self.t0
        self.window = contextlib.ExitStack()       # the maintenance lock, released with the session
        # The best frameset so far aligned for the probe while the window is captured; it and its
        # alignment are dropped wherever the session's framesets are (``drop_frames``).
        self.ahead = ProbeAhead()
        # The face's illuminance in the quality loop: the window's screen and a refusal's prompt read it.
        self.lux = _FaceLux()

    def mark(self, name: str) -> None:
        """The time since the last mark, as stage ``name``'s (ms)."""
        now = time.perf_counter()
        self.timings[name] = round((now - self.t) * 1000, 2)
        self.t = now

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("the capture was cancelled")

    @property
    def purpose(self) -> Purpose:
        """The request's purpose (``validate`` made it one)."""
        assert isinstance(self.req.purpose, Purpose)
        return self.req.purpose

    def drop_frames(self) -> None:
        """Face frames leave memory with this session: its framesets, and the one aligned ahead."""
        self.sets.clear()
        self.ahead.close()


@dataclass
class _Rig:
    """The open camera and what the session drives on it, from posing to the verdict."""

    cam: Camera
    device: DeviceInfo                # as the policy allowed it, for the probe
    calibration: str                  # the server pins the camera by it
    offered: frozenset[Kind]          # what it and the screen can be challenged with
    caps: pb.ChallengeCapabilities    # ... as the server was told
    reader: FramesetReader
    projector: Projector
    exposure: ExposurePlan
    metering: FaceMetering


@dataclass
class _Nonce:
    """The server's challenge (``BeginCapture``), the TPM quote over its nonce, and the submit's deadline."""

    ch: pb.Challenge
    quote: pb.PlatformQuote | None
    not_after: float
    ima_log: bytes = b""                 # pin34: the kernel's IMA list, read right after the quote


@dataclass
class _Judged:
    """The worker's verdict on the window, the thresholds it was judged with, the exposure holds."""

    r: WorkerResult
    thresholds: VerdictThresholds
    holds: list[ExposureHold]

    @property
    def refused(self) -> bool:
        return self.r.verdict.verdict != "live" or self.r.best is None


def _consent(s: _Session) -> Iterator[CaptureEvent]:
    """Stage 1: the request valid (with its consent) and nobody locked out, the session under the
    maintenance lock and audited; then the capture stage begins."""
    deps, req = s.deps, s.req
    validate(req)
    purpose = s.purpose
    s.lockout.check(*s.keys)
    s.window.enter_context(deps.camera_window())  # no capture while a firmware update runs
    deps.record("session_start", session_id=s.sid, purpose=purpose.value, channel=req.channel,
                subject=s.subject, business_ref=deps.pseudonym("business", req.business_ref) if req.business_ref
                else None)
    deps.record("consent", session_id=s.sid, consent_ref=deps.pseudonym("consent", req.consent_ref))
    yield Progress(0, "consent")
    s.t = time.perf_counter()
    s.stage = "capture"
    yield Progress(5, "capture")


@contextlib.contextmanager
def _open_camera(s: _Session) -> Iterator[_Rig]:
    """The camera, checked and streaming, for as long as the block runs; what it and the screen can be
    challenged with checked against the server's policy before anyone is asked to pose. The projector,
    the IR exposure and the colour metering go back to their defaults on every way out."""
    deps = s.deps
    thresholds = deps.quality.thresholds_for(s.req.channel)
    cam = open_recording(deps.open_camera(), deps.recording, s.sid)
    with cam, contextlib.ExitStack() as stack:                # starts the streams
        device = check_policy(cam.info, deps.devices,        # allowlist, virtual cameras refused,
                              firmware=deps.firmware)        # firmware approved by the manifest
        require_stream_spec(cam.profiles(), thresholds)      # §7.5 h before anyone is asked to pose
        calibration = calibration_digest(cam)                # the server pins the camera by it
        s.mark("camera_open")
        # What this camera and screen can be challenged with, against the server's policy for the
        # channel, before anyone is asked to pose: a camera that cannot meet it is refused now
        # (UPL_CAPABILITY_REFUSED: an error, never a failed presentation).
        offered = capabilities(cam, kiosk_screen=deps.challenge.kiosk_screen)
        caps = _capabilities_proto(cam, offered)
        deps.uplink.check_capabilities(s.req.channel, caps)
        s.mark("capabilities")
        s.reader = reader = FramesetReader(cam, read_timeout_s=deps.read_timeout_s)
        # The session owns the projector: default power and on for the quality loop, whose lit
        # framesets set its power for the challenge; back to the default on every way out.
        projector = Projector(cam)
        projector.begin()
        stack.callback(projector.end)
        # The IR exposure, planned from the same framesets when the power cannot cure clipped dots.
        exposure = ExposurePlan(cam, projector)
        stack.callback(exposure.end)
        # The colour exposure meters the face (every skin tone exposed for itself), until the end.
        metering = FaceMetering(cam)
        stack.callback(metering.end)
        yield _Rig(cam, device, calibration, offered, caps, reader, projector, exposure, metering)


def _posing(s: _Session, rig: _Rig) -> Iterator[CaptureEvent]:
    """Stage 2, the quality loop: prompts and progress until the gate has its good framesets, whose
    lit IR sets the projector's power and the IR exposure for the window (applied before it ends)."""
    deps, projector, exposure = s.deps, rig.projector, rig.exposure
    # Skin still clipped after both cures: the person is asked to act and the loop waits.
    clipped = ClippedSkin(projector, exposure)
    prompter = _Prompter()
    # The face work is the worker's (models loaded once, in one process): each frameset's
    # assessment comes back with what the daemon acts on.
    with deps.supervisor.open_quality(s.req.channel, deps.quality) as remote:
        for fs, a in _quality_loop(deps, rig.reader, remote, rig.metering, s.cancel,
                                   hold=lambda: IR_TOO_BRIGHT.code if clipped.uncured else None):
            found = a.face is not None
            s.lux.observe(a.lux)
            projector.observe_skin(fs.ir, found, _given(a.ir_bright_end))
            exposure.observe_skin(fs.ir, found, _given(a.ir_bright_end), "DEPTH_SPARSE" in a.prompts)
            clipped.observe_skin(fs.ir, found, _given(a.ir_bright_end))
            if fs.color is not None:
                rig.metering.observe(a.face, fs.color.width, fs.color.height)
            yield from prompter.events(a, IR_TOO_BRIGHT if clipped.uncured else None)
    projector.wait_applied(_limited(rig.reader, SETTLE_SETS, deps.settings.quality_timeout_s))
    if projector.plans_power:
        deps.record("projector", session_id=s.sid, **projector.to_dict())
    exposure.wait_applied(_limited(rig.reader, SETTLE_SETS, deps.settings.quality_timeout_s))
    if exposure.setting is not None:
        deps.record("ir_exposure", session_id=s.sid, **exposure.to_dict())
    s.mark("quality")
    s.check_cancel()


def _begin_challenge(s: _Session, rig: _Rig) -> _Nonce:
    """Stage 3's ``BeginCapture``. The nonce is asked for only now, so its lifetime is spent on the
    window, not on posing."""
    deps = s.deps
    s.stage = "challenge"
    asked_at = time.monotonic()
    # Long enough for the window, ``[session] worker_timeout_s`` and the submit; not the worker's 0.5 s a frameset
    # (16 s at 32, a busy terminal's backlog: the bank's nonce is not lengthened for it): the verdict is instead never
    # waited for past the nonce (``_judged_window``, LIV_VERDICT_PAST_NONCE; perf34).
    ch = deps.uplink.begin(s.sid, s.purpose, subject_ref=s.req.subject_ref,
                           min_lifetime_s=deps.settings.challenge_window_s + deps.supervisor.s.judge_timeout_s,
                           capabilities=rig.caps, channel=s.req.channel)
    quote = deps.attestor.quote(ch.nonce) if deps.attestor is not None else None   # TPM quote over the nonce
    ima_log = deps.attestor.ima_list() if deps.attestor is not None else b""      # pin34: after the quote
    not_after = deps.uplink.nonce_deadline(ch, asked_at)   # no retry of the submit past the nonce's life
    s.mark("challenge")
    return _Nonce(ch, quote, not_after, ima_log)


def _judged_window(s: _Session, rig: _Rig, nonce: _Nonce) -> Generator[CaptureEvent, None, _Judged]:
    """Stage 3's window and stage 4: the projector and the screen follow the nonce's sequences, each
    frameset judged in the worker as it arrives; charged as a failed presentation until a verdict
    settles it. Returns the verdict (the camera is stopped)."""
    deps, ch, projector, exposure = s.deps, nonce.ch, rig.projector, rig.exposure
    s.stage = "challenge_window"
    kinds = _demanded(ch, rig.offered)
    challenge = Challenge.from_nonce(ch.nonce, frames=ch.frames, kinds=kinds)
    luminance = screen_luminance(s.lux.value(), deps.challenge.screen_boost, deps.challenge.screen_boost_lux)
    if Kind.ILLUMINATION in kinds and luminance != 1.0:
        deps.record("screen", session_id=s.sid, luminance=luminance, lux=round(s.lux.value(), 0))
    if Kind.PROJECTOR not in kinds:
        exposure.end()                 # no material measure to plan for: the IR imager's own AE again
    # Each frameset goes to the liveness worker as it arrives, so the worker judges while
    # the camera is still capturing; after the last frame only fusion remains.
    # From here the window is charged as a failed presentation until a verdict settles it:
    # ending it early (frames stopped, camera lost, cancel, the stream closed, the daemon
    # killed) must not buy an injector that sees it going badly a free try (lockout.begin).
    s.lockout.begin(s.sid, *s.keys)
    verdict_thresholds = load_thresholds(s.req.channel)
    with deps.supervisor.open_judge(frames=ch.frames, nonce=ch.nonce, thresholds=verdict_thresholds,
                                    channel=s.req.channel, kinds=tuple(k.value for k in kinds),
                                    on_best=lambda _index, fs: s.ahead.name(fs)) as worker:
        # Declared held, the exposure is held or the session ends (SES_EXPOSURE_NOT_HELD).
        holds: list[ExposureHold] = []
        s.sets = yield from run_window(rig.reader, ch.frames, challenge,
                                      projector if Kind.PROJECTOR in kinds else None,
                                      timeout_s=deps.settings.challenge_window_s,
                                      cancelled=s.cancel.is_set, on_frameset=worker.add,
                                      exposure_required=rig.caps.exposure_lock, on_exposure=holds.append,
                                      ir_exposure=exposure.setting if Kind.PROJECTOR in kinds else None,
                                      own_time=True, screen_luminance=luminance)
        s.t_last_frame = time.perf_counter()
        projector.end()
        rig.cam.stop()                                # every frame needed is in (stop is idempotent)
        s.mark("challenge_window")
        s.check_cancel()
        if len(s.sets) < ch.frames:
            raise StageTimeout(f"only {len(s.sets)} of {ch.frames} framesets arrived within "
                               f"{deps.settings.challenge_window_s:g} s of the challenge window")
        s.stage = "liveness"
        yield Progress(70, "liveness")
        # Never waited for past the nonce: the verdict must leave the submit one attempt to its deadline (the
        # worker's own deadline, worker_timeout_s + 0.5 s a frameset, can outlive it: LIV_VERDICT_PAST_NONCE then,
        # no strike). Not the submit's whole allowance (11 s by default): a verdict that leaves one attempt can still
        # be received, and the unused nonce is charged by the server either way.
        r = worker.finish(not_after=nonce.not_after - deps.uplink.s.deadline_s)
        s.mark("liveness")
        s.timings.update(_liveness_parts(r.timing_ms, s.timings["liveness"]))
    return _Judged(r, verdict_thresholds, holds)


def _refused(s: _Session, judged: _Judged) -> Iterator[CaptureEvent]:
    """Not live (or no frameset to send): a failed presentation, its cues recorded, the person told."""
    deps, v = s.deps, judged.r.verdict
    s.drop_frames()
    s.lockout.fail(*s.keys)
    why = (v.challenge or {}).get("detail") if v.challenge and not v.challenge.get("passed") else None
    # The face's illuminance before the window says whether the light that hid the projector
    # could be a visible one (IR_FLOOD_CANNOT_VERIFY when it cannot: a CCTV dome's flood).
    told = verdict_prompt(v, judged.thresholds.live_min, s.lux.value())
    # Which cue refused, for the operator who reads why a customer was turned away: scalar
    # scores only, nothing of the face (the terminal computes them itself, root learns nothing);
    # and what the person was told (a stable code: an infrared flood is the operator's to fix).
    deps.record("result", session_id=s.sid, accepted=False, reason="NOT_LIVE", verdict=v.verdict,
                score=round(v.score, 3), challenge_passed=bool(v.challenge and v.challenge.get("passed")),
                challenge_detail=detail_code(v.challenge), challenge_relabelled_from=relabelled_code(v.challenge),
                prompt=told.code if told is not None else None,
                **{f"detector_{k}"[:64]: round(float(x), 3) for k, x in sorted(v.detectors.items())
                   if x is not None and math.isfinite(x)})
    s.timings["total"] = round((time.perf_counter() - s.t0) * 1000, 2)
    if told is not None:
        # The light kept the challenge, or the material of a session every other detector
        # found live, from being measured: what the person can change (too much ambient or
        # patterned light, or the room's light changed or moved during it; the attempt still
        # counted above: an injector can fake an unmeasurable stream at will).
        yield told
    yield Result(False, "NOT_LIVE", "", v.verdict, why or "; ".join(v.notes)[:300], s.timings)


def _seal_and_submit(s: _Session, rig: _Rig, nonce: _Nonce, judged: _Judged) -> Iterator[CaptureEvent]:
    """Stages 5-7: the probe from the best frameset, sealed and signed, submitted; the receipt is the result."""
    deps, r, v, ch = s.deps, judged.r, judged.r.verdict, nonce.ch
    assert r.best is not None                      # not refused
    s.stage = "probe"
    yield Progress(85, "seal")
    # Aligned ahead when the worker named this very frameset before its verdict; else here.
    chosen = s.sets[r.best["index"]]
    best: AlignedFrameSet | None = s.ahead.take(chosen)
    if best is None:
        best = align_frameset(chosen)
    del chosen
    # The worker's quality report, and the daemon's own word on the window's exposure.
    quality = {**(r.quality or {}), "exposure_lock": judged.holds[0].to_dict()}   # a dict: the supervisor checked
    payload = build_payload(best, r.best, quality=quality, liveness=liveness_report(v, deps.supervisor),
                            device=rig.device, timings_ms=s.timings, frame_digest=v.frame_digests[r.best["index"]],
                            suite=ch.hpke_suite, evidence=r.evidence, calibration=rig.calibration,
                            ima_log=nonce.ima_log)
    del best
    s.drop_frames()                                    # face frames leave memory with this session
    s.mark("probe")
    s.stage = "seal"
    # covers this session so far; with the TPM's certification of its counter and chain for this nonce (sec31)
    anchor = deps.audit.anchor(ch.nonce) if deps.audit is not None else None
    sealed = seal_probe(ch, payload, terminal_id=deps.terminal_id, session_id=s.sid, counter=deps.counter.next(),
                        signer=deps.signer, purpose=s.purpose, audit_anchor=anchor,
                        quote=nonce.quote)   # wipes the payload buffer
    s.mark("seal")
    s.stage = "submit"
    yield Progress(95, "submit")
    # The same sealed bytes are resent, never re-sealed, while the server says copies of them are
    # being judged (PROBE_IN_PROGRESS), up to its claim lease and never past the nonce's life: the
    # person is told to wait (PLEASE_WAIT); giving up is UPL_PROBE_IN_PROGRESS (docs/uplink.md).
    receipt = yield from submit_with_prompts(deps.uplink, sealed.message, sealed.probe_id, nonce.not_after)
    s.mark("submit")
    s.timings["after_last_frame"] = round((s.t - s.t_last_frame) * 1000, 2)
    s.timings["total"] = round((s.t - s.t0) * 1000, 2)
    budget = deps.settings.enroll_budget_ms if s.purpose is Purpose.ENROLL else deps.settings.verify_budget_ms
    s.timings["budget"] = budget
    if receipt.accepted:
        s.lockout.succeed(*s.keys)
    elif receipt.reason in PRESENTATION_FAILURES:
        s.lockout.fail(*s.keys)                   # the server judged the presentation itself
    # The receipt's reason is the server's word (network input, a code of the proto's list): bounded
    # here so that an over-long one cannot cost the record (the audit log takes 256 characters).
    deps.record("result", session_id=s.sid, accepted=receipt.accepted, reason=receipt.reason[:64],
                probe_id=sealed.probe_id, counter=sealed.counter, verdict=v.verdict, score=round(v.score, 3),
                total_ms=s.timings["total"],
                within_budget=s.timings["total"] <= budget)
    yield Progress(100, "done")
    yield Result(receipt.accepted, receipt.reason, sealed.probe_id, receipt.liveness_verdict or v.verdict,
                 receipt.detail, s.timings)


def _failed(s: _Session, exc: CaptureAgentError) -> Iterator[CaptureEvent]:
    """A typed failure: the frames dropped, the lockout charged as ``_charged`` says, the error audited."""
    s.drop_frames()
    counted = _charged(s, exc)
    graced = isinstance(exc, FramesLost) and exc.host_late and not counted
    s.deps.record("error", session_id=s.sid, stage=s.stage, code=exc.code, message=exc.message[:200],
                  **({"counted": True} if counted else {}), **({"graced": True} if graced else {}))
    if isinstance(exc, FramesLost):
        yield FRAMES_LOST              # the person is asked to try again (a new session)
    yield Error(exc.code, exc.message)


def _charged(s: _Session, exc: CaptureAgentError) -> bool:
    """Whether a session ended by ``exc`` counts against the lockout, the window's charge settled or
    kept (``lockout.begin``) accordingly."""
    if isinstance(exc, FramesLost):
        # The window lost a frameset: not judged (by their place its framesets no longer line up with
        # the challenge), but counted like a failed presentation, so that gaps an injector on the
        # camera link fakes buy it no free tries. One the terminal itself made late or lossy (``host_late``:
        # the reader away on the terminal's work, no burst on the link) is graced, no strike, within the
        # lockout's allowance (``host_late_grace_per_hour``, late31); the server still counts its challenge.
        if exc.host_late and s.lockout.grace(s.sid, exc.code):
            return False
        if not s.lockout.forfeit(s.sid):
            s.lockout.fail(*s.keys)
        return True
    # An outage, a worker fault, a camera error or a timeout before the challenge window is not
    # the person's failure: no strike. Inside the window only a liveness worker fault (the
    # terminal's own) or an exposure lock the camera refuses (before the window's first frame
    # is read: nothing of it seen) settles the window's charge; a window that ended otherwise
    # keeps it.
    if isinstance(exc, (LivenessWorkerError, ExposureNotHeld)):
        s.lockout.settle(s.sid)
        return False
    return s.lockout.forfeit(s.sid)


def _ended(s: _Session) -> None:
    """Every way out: a charge still open counts, the lock released, the frames dropped, the end recorded."""
    # Still open here: the stream was closed in the window (GeneratorExit) or something
    # unexpected ended it. The charge counts.
    s.lockout.forfeit(s.sid)
    s.window.close()
    s.drop_frames()
    # Stage timings (ms, flat: the audit log takes scalars only) for the record and the metrics.
    s.deps.record("session_end", session_id=s.sid, stage=s.stage,
                  elapsed_ms=round((time.perf_counter() - s.t0) * 1000, 1),
                  **{f"{name}_ms": ms for name, ms in s.timings.items()})
    if s.reader is not None:
        s.deps.observe("session_streams", session_id=s.sid, **s.reader.stats.to_dict())


def submit_with_prompts(uplink: UplinkClient, sealed, probe_id: str,
                        not_after: float | None) -> Generator[CaptureEvent, None, Any]:
    """The submit (``UplinkClient.submitting``), yielding ``PLEASE_WAIT`` once when the server first
    says copies of this probe are still being judged (``PROBE_IN_PROGRESS``: the client waits out
    their lease, resending the same bytes), so the person is not left before a silent screen.
    Returns the receipt."""
    steps = uplink.submitting(sealed, probe_id, not_after=not_after)
    told = False
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        if not told:
            told = True
            yield PLEASE_WAIT


def liveness_report(v: LivenessVerdict, supervisor: LivenessSupervisor) -> dict[str, Any]:
    """The probe's liveness report: the verdict, and the digest of the dot reference the worker that judged it
    was started with (its hello checked against it; None: none), sealed and signed with the evidence for the
    server to check against the camera's registered reference (pin34, ``DOT_REFERENCE_MISMATCH``)."""
    return {**v.to_dict(), "dot_reference_sha256": supervisor.dot_reference_sha256}


def _liveness_parts(worker_ms: dict[str, Any], stage_ms: float) -> dict[str, float]:
    """The liveness stage's parts as the worker timed them (numbers only: it is the worker's word):
    ``liveness_fusion``, deciding once every frameset is measured, and ``liveness_drain``, waiting
    for the measurements of the framesets that arrived last. The rest of the stage is the ring, the
    socket and the verdict's checks. Whole milliseconds, within the stage's own time as the daemon
    measured it (``stage_ms``): these numbers reach the audit log and the probe, and a compromised
    worker, which sees the face, must not get a wide channel through them."""
    def number(v: Any) -> float | None:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= stage_ms
        return float(round(v)) if ok else None

    fusion, finish = number(worker_ms.get("finish")), number(worker_ms.get("worker_finish"))
    out: dict[str, float] = {}
    if fusion is not None:
        out["liveness_fusion"] = fusion
        if finish is not None and finish >= fusion:
            out["liveness_drain"] = finish - fusion
    return out


def _capabilities_proto(cam: Camera, offered: frozenset[Kind]):
    """What the server is told this terminal can be challenged with. ``exposure_lock`` is true only
    when the camera claims a lock for every imager the offered challenges need (projector -> IR,
    illumination -> colour); the window then holds them or the session fails (``window.ExposureHold``)."""
    fps = {p.kind: p.fps for p in cam.profiles()}
    return capabilities_to_proto(offered, exposure_lock=exposure_lock_declared(cam, offered),
                                 depth_fps=float(fps.get(StreamKind.DEPTH, fps.get(StreamKind.IR, 0.0))),
                                 color_fps=float(fps.get(StreamKind.COLOR, 0.0)))


def _demanded(ch, offered: frozenset[Kind]) -> frozenset[Kind]:
    """The challenges the server's challenge names, each one this terminal offered (the uplink client
    checked it; checked again here because the window runs them)."""
    kinds = frozenset(Kind(n) for n in challenge_names(ch.challenges))
    if not kinds or not kinds <= offered:
        raise ChallengeInvalid("the challenge demands what this terminal cannot do")
    return kinds


def _given(value: float | None) -> Callable[[], float | None]:
    """What the worker measured, as the projector's and the exposure plan's ``bright_end``."""
    return lambda: value


def _limited(reader: FramesetReader, count: int, timeout_s: float) -> Iterator:
    """At most ``count`` framesets from ``reader`` within ``timeout_s``."""
    for k, fs in enumerate(reader.stream(timeout_s=timeout_s, own_time=True), 1):
        yield fs
        if k >= count:
            return


def _quality_loop(deps: SessionDeps, reader: FramesetReader, gate: RemoteGate, metering: FaceMetering,
                  cancel: threading.Event, hold: Callable[[], str | None] = lambda: None
                  ) -> Iterator[tuple[FrameSet, Assessment]]:
    """Framesets through align and the gate (in the worker) until it has its good framesets (or the
    person runs out of time: ``SES_STAGE_TIMEOUT`` with the last prompt). A cancel ends the loop
    quietly; the session checks it next. ``metering``: whether the colour exposure meters the face
    when each frameset is judged (exposure prompts are read accordingly). ``hold``, asked after the
    caller has seen each frameset: the code of a prompt of the session's own that keeps the loop
    going although the gate is complete (``IR_TOO_BRIGHT``), or None."""
    timeout_s = deps.settings.quality_timeout_s
    last_prompt: str | None = None
    try:
        for fs in reader.stream(timeout_s=timeout_s, cancelled=cancel.is_set, own_time=True):
            a = gate.evaluate(fs, face_metered=metering.active)
            if a.prompt is not None:
                last_prompt = a.prompt.code
            yield fs, a
            held = hold()
            if held is not None:
                last_prompt = held
            elif a.complete:
                return
    except CaptureAgentError as exc:
        if exc.code != "SYN_TIMEOUT":
            raise
        raise StageTimeout(f"the capture spec was not met within {timeout_s:g} s "
                           f"(last prompt: {last_prompt or 'none'})") from None


class _FaceLux:
    """The face's illuminance over the quality loop's last ``keep`` estimates (the gate's, on a camera
    with a lux calibration): their median, what the screen's luminance for the window is planned from
    (``window.screen_luminance``); ``UNKNOWN_LUX`` (NaN) without any."""

    def __init__(self, keep: int = 5):
        self.keep = keep
        self.seen: list[float] = []

    def observe(self, lux: float | None) -> None:
        if lux is not None and math.isfinite(lux):
            self.seen = [*self.seen[-(self.keep - 1):], float(lux)] if self.keep > 1 else [float(lux)]

    def value(self) -> float:
        if not self.seen:
            return UNKNOWN_LUX
        s = sorted(self.seen)
        return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2.0


class _Prompter:
    """One prompt at a time, repeated only when it changes (the gate's hysteresis keeps it from
    flickering), and progress when it moves."""

    def __init__(self) -> None:
        self.prompt: str | None = None
        self.percent = -1

    def events(self, a: Assessment, own: Prompt | None = None) -> Iterator[CaptureEvent]:
        """``own``: the session's own prompt (``IR_TOO_BRIGHT``), shown unless the gate has a more
        urgent one (``PRIORITY``: it comes before the camera's ``DEPTH_SPARSE``)."""
        prompt = a.prompt
        if own is not None and (prompt is None or PRIORITY[own.code] < PRIORITY[prompt.code]):
            prompt = own
        code = prompt.code if prompt else None
        if code != self.prompt and prompt is not None:
            yield prompt
        self.prompt = code
        percent = 5 + int(0.6 * a.progress)
        if percent != self.percent:
            yield Progress(percent, "capture")
            self.percent = percent
