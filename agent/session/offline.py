"""A capture without a server: ``analyze`` and the PAD bench open a camera, plan the challenge from
a nonce of their own, set the projector's power on a short pre-roll, read the window and judge it.

The daemon's sessions (``agent.session.capture``) do the same steps with the server's nonce and the
quality loop in place of the pre-roll.
"""

from __future__ import annotations

import itertools

from agent.liveness.challenge import Challenge, Kind
from agent.liveness.fusion import VerdictThresholds
from agent.liveness.judge import JudgeResult, judge
from agent.pipeline.align import align_frameset
from agent.pipeline.frames import FramesetReader
from agent.quality import QualityGate
from agent.session.capabilities import capabilities
from agent.session.projector import Projector
from agent.session.window import collect
from drivers.base import Camera
from drivers.frame import FrameSet

PREROLL_MAX = 8                   # lit framesets before a challenge to set the projector's power
PREROLL_TIMEOUT_S = 10.0
WINDOW_TIMEOUT_S = 30.0


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


def preroll(reader: FramesetReader, gate: QualityGate, projector: Projector, max_sets: int = PREROLL_MAX) -> None:
    """Lit framesets before the challenge, until the projector's power suits this face and light
    (in the daemon the quality phase's own framesets do this)."""
    if not projector.plans_power:
        return
    if projector.switchable:
        projector.show(True)
    for fs in itertools.islice(reader.stream(timeout_s=PREROLL_TIMEOUT_S), max_sets):
        a = align_frameset(fs)
        projector.observe(a, gate.measure(a).face)
        if projector.settled:
            break
    projector.wait_applied(itertools.islice(reader.stream(timeout_s=PREROLL_TIMEOUT_S), PREROLL_MAX))


def capture(cam: Camera, n: int, nonce: bytes | None,
            gate: QualityGate) -> tuple[Challenge | None, list[str], list[FrameSet]]:
    """Plan the challenge, set the projector's power for it, and read its ``n`` framesets; the
    projector is back at its default afterwards."""
    challenge, notes = plan_challenge(cam, n, nonce)
    reader = FramesetReader(cam)
    if challenge is None:
        return None, notes, collect(reader, n, None, None, timeout_s=WINDOW_TIMEOUT_S)
    projector = Projector(cam) if Kind.PROJECTOR in challenge.kinds else None
    if projector is None or not projector.plans_power:
        return challenge, notes, collect(reader, n, challenge, projector, timeout_s=WINDOW_TIMEOUT_S)
    projector.begin()
    try:
        preroll(reader, gate, projector)
        if projector.range is not None and projector.power != projector.range.default:
            notes.append(f"projector at {projector.power:g} mW for the challenge (default "
                         f"{projector.range.default:g} mW), from the skin's IR headroom")
        return challenge, notes, collect(reader, n, challenge, projector, timeout_s=WINDOW_TIMEOUT_S)
    finally:
        projector.end()


def capture_and_judge(cam: Camera, n: int, *, gate: QualityGate | None = None,
                      thresholds: VerdictThresholds | None = None, nonce: bytes | None = None) -> JudgeResult:
    """Capture from an open camera and judge in this process (offline analysis, the PAD bench)."""
    gate = gate or QualityGate()
    challenge, notes, sets = capture(cam, n, nonce, gate)
    return judge(sets, gate, thresholds or VerdictThresholds(), challenge=challenge, notes=notes)
