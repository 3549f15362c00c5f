"""The physical challenge: a server nonce decides, frame by frame, when the IR projector is on.

A live camera obeys: its IR images show the dot pattern exactly on the scheduled frames (give or
take the actuation latency). A recording, or a hijacked stream fed from elsewhere, cannot know the
schedule in advance — even if it forges the "projector on" metadata, the pixels give it away.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import cv2
import numpy as np

from drivers.errors import CaptureAgentError

INFO = b"capture-agent/challenge/v1"


class ChallengeError(CaptureAgentError):
    code = "LIV_CHALLENGE_INVALID"


@dataclass(frozen=True)
class Challenge:
    nonce: bytes
    schedule: tuple[bool, ...]       # per frame: projector on?

    @classmethod
    def from_nonce(cls, nonce: bytes, frames: int = 24, min_run: int = 2, max_run: int = 4) -> Challenge:
        """Derive an on/off schedule of runs of 2–4 frames (robust to one frame of latency)."""
        if not isinstance(nonce, (bytes, bytearray)) or len(nonce) < 16:
            raise ChallengeError("challenge nonce must be at least 16 random bytes")
        if frames < 8:
            raise ChallengeError("a challenge needs at least 8 frames")
        stream = b""
        counter = 0
        while len(stream) < frames:
            stream += hmac.new(bytes(nonce), INFO + counter.to_bytes(4, "big"), hashlib.sha256).digest()
            counter += 1
        out: list[bool] = []
        state = bool(stream[0] & 1)
        i = 1
        while len(out) < frames:
            run = min_run + stream[i % len(stream)] % (max_run - min_run + 1)
            out.extend([state] * run)
            state = not state
            i += 1
        return cls(bytes(nonce), tuple(out[:frames]))


def dot_energy(ir: np.ndarray, mask: np.ndarray | None = None) -> float:
    """High-frequency energy of an IR image (DN): the projected dots dominate it when present."""
    x = ir.astype(np.float32)
    hp = x - cv2.GaussianBlur(x, (0, 0), 2.0)
    return float(np.std(hp[mask] if mask is not None else hp))


@dataclass(frozen=True)
class ChallengeResult:
    passed: bool
    agreement: float          # share of frames whose observed projector state matches the schedule
    lag_frames: int
    separation: float         # d': (mean on - mean off) / pooled std, frames grouped by the schedule
    detail: str

    def to_dict(self) -> dict:
        return {"passed": self.passed, "agreement": round(self.agreement, 3), "lag_frames": self.lag_frames,
                "separation": round(self.separation, 2), "detail": self.detail}


def _dprime(e: np.ndarray, on: np.ndarray) -> float:
    a, b = e[on], e[~on]
    if a.size < 2 or b.size < 2:
        return 0.0
    pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    # A floor on the spread: a perfectly repeatable energy (no sensor noise) must not divide by ~0.
    pooled = max(pooled, 1e-3 * max(abs(a.mean()), abs(b.mean()), 1e-6))
    return float((a.mean() - b.mean()) / pooled)


# How many frames may show the other projector state than commanded (at the best lag): one per
# full 32 compared frames. Every allowed mismatch is an attacker's gift: with one frame in ten
# allowed, a blind stream imitating the schedule's 2-4-frame runs passed a 16-frame challenge 5 %
# of the time. Now (`python -m bench liveness`, 4000 nonces each): 16 frames (exact) 0.85 %,
# 24 (exact) 0.075 %, 32 (one allowed, the server's default) ~0.03 %. The one allowed frame
# absorbs a noisy frame or a projector that lands a frame late at one edge; a camera that is late
# at many edges needs a longer window, not a looser rule.
FRAMES_PER_ALLOWED_MISMATCH = 32


def verify(challenge: Challenge, energies: list[float], *, max_lag: int = 2,
           min_agreement: float | None = None, min_separation: float = 3.0) -> ChallengeResult:
    """Did the IR frames follow the schedule? ``energies[k]`` is frame k's dot energy.

    Two tests, both at the best lag: the frames split into on/off by their own energy agree with
    the schedule (at most one disagreeing frame per ``FRAMES_PER_ALLOWED_MISMATCH`` compared, or a
    share ``min_agreement`` when given), and grouped by the schedule their energies differ by ``min_separation`` pooled
    standard deviations. In sunlight the projector adds little energy (a small on/off ratio) but
    adds it on every scheduled frame, so d' stays large; a stream that ignores the schedule gives
    d' near 0 whatever its brightness."""
    e = np.asarray(energies, dtype=np.float64)
    n = min(len(e), len(challenge.schedule))
    if n < 8:
        return ChallengeResult(False, 0.0, 0, 0.0, "too few frames to verify the challenge")
    e = e[:n]
    # Two-level split of the observed energies (on/off), at the geometric middle of the extremes.
    lo, hi = np.percentile(e, 10), np.percentile(e, 90)
    threshold = np.sqrt(max(lo, 1e-6) * max(hi, 1e-6))
    observed = e > threshold
    sched = np.array(challenge.schedule[:n])
    best = (0.0, 0, False)
    for lag in range(max_lag + 1):
        # The projector state commanded for frame k shows up in frame k + lag.
        m = n - lag
        if m < 8:
            continue
        mismatches = int(np.sum(observed[lag:] != sched[:m]))
        agree = 1.0 - mismatches / m
        ok = agree >= min_agreement if min_agreement is not None else mismatches <= m // FRAMES_PER_ALLOWED_MISMATCH
        best = max(best, (agree, lag, ok), key=lambda t: (t[2], t[0]))
    lag, agreed = best[1], best[2]
    separation = _dprime(e[lag:], sched[:n - lag])
    passed = agreed and separation >= min_separation
    detail = ("frames follow the projector schedule" if passed else
              "frames do not follow the projector schedule: replayed, injected or not this camera")
    return ChallengeResult(passed, best[0], lag, separation, detail)
