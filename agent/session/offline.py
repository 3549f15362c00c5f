"""A capture without a server: ``analyze`` and the PAD bench open a camera, plan the challenge from
a nonce of their own, run the quality phase (which also meters the face's exposure and sets the
projector's power, or the IR exposure when the power cannot cure clipped dots), read the window and
judge it.

The daemon's sessions (``agent.session.capture``) do the same steps with the server's nonce and its
own quality loop with prompts for the person.
"""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass, field

import numpy as np

from agent.config import ChallengeSettings
from agent.errors import NoDepth, NoFace
from agent.face import FaceDetector
from agent.liveness.challenge import Challenge, Kind
from agent.liveness.dotref import DotReference
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import JudgeResult, judge
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import FramesetReader
from agent.pipeline.sync import SyncTimeout
from agent.quality import QualityGate
from agent.quality.metering import FaceMetering
from agent.quality.prompts import PRIORITY
from agent.session.capabilities import capabilities
from agent.session.projector import ClippedSkin, ExposurePlan, Projector
from agent.session.window import collect, screen_luminance
from drivers.base import Camera, ExposureSetting
from drivers.frame import FrameSet

QUALITY_MAX_SETS = 30             # framesets the quality phase may take (the daemon gives 20 s)
PREROLL_MAX = 8                   # pre-roll when the phase's outcome is not needed; projector settling
# The wall-clock bound on waiting for a frame that does not come (``FramesetReader.stream`` with
# ``per_frameset``), which only a stalled source reaches: a slow renderer on a loaded machine must not
# cut a phase short, or the same presentation would end differently from run to run (a bound on a
# whole 32-frameset window cut sessions short at load 12-18; one on each frameset could still be
# reached by a starved process rendering 1280x720 colour). Frames that never make a frameset end the
# read after 30 s of the streams' frames, a count.
STALL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class QualityPhase:
    """How the quality phase ended: complete (the gate had its good framesets) or not, and why not.

    ``reason`` is the prompt the person would have been shown last (or the most frequent failing
    one if the selector showed none), the reason a bench counts the attempt under."""

    ran: bool
    complete: bool
    framesets: int
    reason: str | None
    failing: dict[str, int] = field(default_factory=dict)     # prompt code -> framesets it failed
    faces: int = 0                                             # framesets with a face found
    ipd_px: float = float("nan")                               # median measured IPD over them
    lux: float = float("nan")      # the face's illuminance, median of the last 5 estimates (a lux calibration only)

    def to_dict(self) -> dict:
        return {"ran": self.ran, "complete": self.complete, "framesets": self.framesets, "reason": self.reason,
                "failing": dict(self.failing), "faces": self.faces,
                "ipd_px": round(self.ipd_px, 2) if self.ipd_px == self.ipd_px else None}


@dataclass
class OfflineCapture:
    challenge: Challenge | None
    notes: list[str]
    sets: list[FrameSet]
    quality: QualityPhase


def plan_challenge(cam: Camera, n: int, nonce: bytes | None) -> tuple[Challenge | None, list[str]]:
    """With a nonce, a live camera is challenged with every challenge it can take (projector,
    illumination); recordings and cameras that can take none are judged without one, and the notes
    say so."""
    info = cam.info
    kinds = capabilities(cam)
    if nonce is not None and kinds:
        notes = [] if Kind.PROJECTOR in kinds else [f"{info.backend} camera cannot drive its projector: "
                                                    "the illumination challenge alone"]
        return Challenge.from_nonce(nonce, frames=n, kinds=kinds), notes
    if info.is_recording:
        return None, ["recording: it cannot obey a live challenge, so presentation-attack detection ran without one"]
    if nonce is not None:
        return None, [f"{info.backend} camera can take no physical challenge (no projector control, no screen)"]
    return None, []


def quality_phase(reader: FramesetReader, gate: QualityGate, projector: Projector | None, metering: FaceMetering,
                  max_sets: int = QUALITY_MAX_SETS, exposure: ExposurePlan | None = None) -> QualityPhase:
    """Framesets through the gate until it has its good framesets (at most ``max_sets``), as the
    daemon's quality loop does; their faces steer the exposure metering, their lit IR the
    projector's power and, when that cannot cure clipped dots, the IR exposure (in the daemon the
    same framesets do all three)."""
    gate.reset()
    failing: collections.Counter[str] = collections.Counter()
    shown: str | None = None
    ipds: list[float] = []
    luxes: list[float] = []
    n = 0
    clipped = ClippedSkin(projector, exposure) if projector is not None and exposure is not None else None
    try:
        for fs in itertools.islice(reader.stream(timeout_s=STALL_TIMEOUT_S, per_frameset=True), max_sets):
            n += 1
            a = align_frameset(fs)
            report = gate.evaluate(a)
            failing.update(report.prompts)
            if report.face is not None:
                ipds.append(report.face.mesh.ipd_px)
                if np.isfinite(report.metrics.get("lux", float("nan"))):
                    luxes.append(float(report.metrics["lux"]))
            if report.prompt is not None:
                shown = report.prompt.code
            metering.observe(report.face, a.color.width, a.color.height)
            gate.face_metered = metering.active
            if projector is not None and projector.plans_power:
                projector.observe(a, report.face)
            if exposure is not None:
                exposure.observe(a, report.face, "DEPTH_SPARSE" in report.prompts)
            if clipped is not None:
                clipped.observe(a, report.face)
                if clipped.uncured:             # the session's own prompt, as the daemon's (capture.py)
                    failing["IR_TOO_BRIGHT"] += 1
                    if report.prompt is None or PRIORITY["IR_TOO_BRIGHT"] < PRIORITY[report.prompt.code]:
                        shown = "IR_TOO_BRIGHT"
            if gate.complete and (projector is None or not projector.plans_power or projector.settled) \
                    and (exposure is None or exposure.settled) and not (clipped is not None and clipped.uncured):
                break
    except SyncTimeout:
        pass
    complete = gate.complete and not (clipped is not None and clipped.uncured)
    reason = None
    if not complete:
        reason = shown or (failing.most_common(1)[0][0] if failing else "NO_FRAMES")
    return QualityPhase(True, complete, n, reason, dict(failing), len(ipds),
                        float(np.median(ipds)) if ipds else float("nan"),
                        float(np.median(luxes[-5:])) if luxes else float("nan"))


def exposure_note(planned: ExposureSetting, auto: ExposureSetting) -> str:
    """The note for an IR exposure the plan locked: held shorter than the auto-exposure's (the dots'
    headroom), held longer (ambient NIR drowned the dots and the power could not rise), or, on a
    camera whose exposure does not move (an Astra's is fixed at 8.5 ms), fixed where it was."""
    if abs(planned.exposure_us - auto.exposure_us) <= auto.exposure_us * 0.01:
        return (f"IR exposure fixed at {planned.exposure_us:.0f} us: the camera kept it when the skin's IR "
                f"headroom asked for another")
    why = ("lengthened: ambient NIR drowned the projector's dots" if planned.exposure_us > auto.exposure_us
           else "from the skin's IR headroom")
    return (f"IR exposure held at {planned.exposure_us:.0f} us for the challenge (auto-exposure "
            f"{auto.exposure_us:.0f} us), {why}")


def capture(cam: Camera, n: int, nonce: bytes | None, gate: QualityGate, *,
            require_quality: bool = False, window: bool = True, screen_boost: float = 1.0,
            screen_boost_lux: float = ChallengeSettings.screen_boost_lux) -> OfflineCapture:
    """Plan the challenge, run the quality phase (live cameras; a recording's frames are what they
    are), and read the window's ``n`` framesets; the projector and the exposure metering are the
    camera's own again afterwards. With ``require_quality`` a quality phase that does not complete
    ends the capture there, as the daemon's session would (no window is read). Without ``window``
    the capture ends after the quality phase whatever its outcome (``bench.quality_phase``
    measures the phase so, on this very set-up): no window is read, ``sets`` is empty.
    ``screen_boost``, ``screen_boost_lux``: the screen's luminance planned as the daemon plans it
    (``[challenge]``, ``window.screen_luminance``, from the quality phase's ``lux``; a gate without a lux
    calibration measures none, and the screen keeps its everyday luminance)."""
    challenge, notes = plan_challenge(cam, n, nonce)
    reader = FramesetReader(cam)
    if cam.info.is_recording:
        sets = collect(reader, n, None, None, timeout_s=STALL_TIMEOUT_S, per_frameset=True) if window else []
        return OfflineCapture(None, notes, sets, QualityPhase(False, True, 0, None))
    projector = Projector(cam) if challenge is not None and Kind.PROJECTOR in challenge.kinds else None
    exposure = ExposurePlan(cam, projector) if projector is not None else None
    metering = FaceMetering(cam)
    if projector is not None:
        projector.begin()
    try:
        # Without a need for its outcome the phase is a pre-roll: enough to meter the face and plan
        # the projector's power (or the IR exposure), not the daemon's whole patience.
        quality = quality_phase(reader, gate, projector, metering,
                                QUALITY_MAX_SETS if require_quality else PREROLL_MAX, exposure)
        if not window or (require_quality and not quality.complete):
            return OfflineCapture(challenge, notes, [], quality)
        if quality.reason == "IR_TOO_BRIGHT":
            notes.append("the skin's IR stayed clipped after every cure this camera allows: the person "
                         "would have been asked to step back or out of direct light (IR_TOO_BRIGHT)")
        if projector is not None and projector.plans_power:
            settling = reader.stream(timeout_s=STALL_TIMEOUT_S, per_frameset=True)
            projector.wait_applied(itertools.islice(settling, PREROLL_MAX))
            if projector.range is not None and projector.power != projector.range.default:
                notes.append(f"projector at {projector.power:g} mW for the challenge (default "
                             f"{projector.range.default:g} mW), from the skin's IR headroom")
        planned = exposure.setting if exposure is not None else None
        if exposure is not None and planned is not None and exposure.auto is not None:
            exposure.wait_applied(itertools.islice(reader.stream(timeout_s=STALL_TIMEOUT_S, per_frameset=True),
                                                   PREROLL_MAX))
            notes.append(exposure_note(planned, exposure.auto))
            if exposure.floor_us is not None:
                notes.append(f"a shorter IR exposure left the face's depth sparse: back at "
                             f"{exposure.floor_us:.0f} us, the plan's floor")
        luminance = screen_luminance(quality.lux, screen_boost, screen_boost_lux)
        if challenge is not None and challenge.steps and luminance != 1.0:
            notes.append(f"the screen at {luminance:g} times its everyday luminance for the illumination "
                         f"challenge: the face at {quality.lux:.0f} lux")
        sets = collect(reader, n, challenge, projector, timeout_s=STALL_TIMEOUT_S, per_frameset=True,
                       ir_exposure=planned, screen_luminance=luminance)
        return OfflineCapture(challenge, notes, sets, quality)
    finally:
        metering.end()
        if exposure is not None:
            exposure.end()
        if projector is not None:
            projector.end()


def check_input(sets: list[FrameSet], detector: FaceDetector, *, min_faces: int) -> None:
    """Refuse input nothing can be judged on, with a typed error instead of a verdict: no
    framesets, depth that is empty on every frameset, fewer than ``min_faces`` framesets with a
    face. (A missing stream is refused before capture by the stream spec.)"""
    if not sets:
        raise SyncTimeout("no framesets arrived from the source")
    if not any(fs.depth is not None and bool(fs.depth.pixels.any()) for fs in sets):
        raise NoDepth(f"depth is empty (all zero) on every one of {len(sets)} framesets: nothing to measure a face on")
    faces = sum(1 for fs in sets if fs.color is not None and detector.detect(fs.color.pixels))
    if faces < min_faces:
        raise NoFace(f"a face shows in {faces} of {len(sets)} framesets; at least {min_faces} are needed to judge")


def capture_and_judge(cam: Camera, n: int, *, gate: QualityGate | None = None,
                      thresholds: VerdictThresholds | None = None, nonce: bytes | None = None,
                      dot_reference: DotReference | None = None) -> JudgeResult:
    """Capture from an open camera and judge in this process (offline analysis, tests)."""
    gate = gate or QualityGate()
    c = capture(cam, n, nonce, gate)
    return judge(c.sets, gate, thresholds or VerdictThresholds(), challenge=c.challenge, notes=c.notes,
                 dot_reference=dot_reference)
