"""Challenge evidence that meets a nonce's challenges, without a camera: for server tests and the
ingest fuzzer, whose synthetic probes must reach the server's later checks.

It is what a terminal's judge would measure of an obedient camera and a face lit by the screen: the
IR energy high on the frames the projector schedule lights (one frame of latency), the face's colour
grid raised in each channel the screen's colour has on (one frame of latency), a colour crop whose
own grid is the grid of the frameset the crops come from, frame counters and timestamps of a
30 fps camera. Writing it is as easy as this module shows for anyone who holds the nonce and the
terminal's key: the server's evidence check stops a careless forger (a hand-written "live"), not a
terminal whose software an attacker controls (``hil/ingest/evidence.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from agent.liveness.challenge import GRID, Challenge, Kind, face_grid
from proto.capture_agent.v1 import ingest_pb2 as pb

KIND_VALUES = {Kind.PROJECTOR: pb.PROJECTOR, Kind.ILLUMINATION: pb.ILLUMINATION}
CROP_AT = (180, 120)                      # the colour crop's top-left in the colour image
CROP_SIZE = (64, 72)                      # width, height
BOX_IN_CROP = (12, 14, 52, 62)            # the evidence's face box, in crop pixels


@dataclass(frozen=True)
class Synthetic:
    evidence: pb.ChallengeEvidence
    color: pb.Crop                        # the crops' colour crop, consistent with the evidence
    digests: list[str]                    # the frame digests, for the liveness report
    best: int                             # the frameset the crops come from

    @property
    def frame_digest(self) -> str:
        return self.digests[self.best]


def skin_crop(seed: int = 0) -> np.ndarray:
    """A smooth skin-toned BGR crop with a little texture (any image does; this one looks like skin)."""
    rng = np.random.default_rng(seed)
    w, h = CROP_SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.array([120.0, 150.0, 200.0])[None, None] * (0.85 + 0.15 * np.cos((xx - w / 2) / w * 2.5))[..., None]
    return np.clip(base * (0.95 + 0.1 * (yy / h))[..., None] + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)


def valid_evidence(nonce: bytes, kinds: Iterable[Kind | str], frames: int, *, best: int | None = None,
                   lag: int = 1, seed: int = 0) -> Synthetic:
    """Evidence for ``frames`` framesets under ``nonce`` that the server's check accepts."""
    ch = Challenge.from_nonce(nonce, frames=frames, kinds=kinds)
    rng = np.random.default_rng(seed)
    digests = [hashlib.sha256(rng.bytes(32)).hexdigest() for _ in range(frames)]
    best = frames // 2 if best is None else best
    px = skin_crop(seed)
    base = face_grid(px, BOX_IN_CROP).reshape(GRID * GRID, 3)
    colours = ch.colours()
    screen = np.array([colours[k - lag] if k >= lag else np.zeros(3) for k in range(frames)])
    # The screen adds 30 % in each channel it lights; the crop is the frameset `best` as lit then.
    gain = 1.0 + 0.3 * screen
    ev = pb.ChallengeEvidence(challenges=[KIND_VALUES[k] for k in sorted(ch.kinds, key=lambda k: k.value)],
                              face_box=[CROP_AT[0] + BOX_IN_CROP[0], CROP_AT[1] + BOX_IN_CROP[1],
                                        CROP_AT[0] + BOX_IN_CROP[2], CROP_AT[1] + BOX_IN_CROP[3]])
    for k in range(frames):
        lit = ch.schedule[k - lag] if ch.schedule and k >= lag else True
        grid = base if k == best else base / gain[best] * gain[k] * (1 + rng.normal(0, 0.002, (GRID * GRID, 1)))
        ev.frames.add(frame_counter=5000 + k, timestamp_ms=1.0e6 + k * 1000 / 30,
                      color_frame_counter=5000 + k, color_timestamp_ms=1.0e6 + 4.1 + k * 1000 / 30,
                      ir_energy=float((12.0 if lit else 4.0) + rng.normal(0, 0.1)),
                      face_grid=[float(v) for v in grid.reshape(-1)], digest=digests[k], face=True)
    raw = px.tobytes()
    color = pb.Crop(width=CROP_SIZE[0], height=CROP_SIZE[1], format="bgr8", pixels=raw, x=CROP_AT[0], y=CROP_AT[1],
                    sha256=hashlib.sha256(raw).digest())
    return Synthetic(ev, color, digests, best)


def for_challenge(ch: pb.Challenge, **kw) -> Synthetic:
    """Valid evidence for a server's ``Challenge`` (its nonce, frames and demanded challenges)."""
    names = {pb.PROJECTOR: Kind.PROJECTOR, pb.ILLUMINATION: Kind.ILLUMINATION}
    return valid_evidence(ch.nonce, [names[c] for c in ch.challenges], ch.frames, **kw)
