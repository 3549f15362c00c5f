"""Fusion of detector evidence into one score and a verdict, and threshold calibration.

The fused score is the weakest detector's evidence: each attack family is answered by one detector,
so a single detector that sees an attack must be able to stop it. Verdicts: ``live`` at or above the
channel's live threshold, ``attack`` at or below its attack threshold, ``inconclusive`` between, or
when there was too little to judge. There is no default pass: missing data is never "live".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CALIBRATION_PATH = Path(__file__).with_name("calibration.json")
ALGORITHM_VERSION = "physics-pad-2"
LIVE_MIN_FLOOR = 0.5


@dataclass(frozen=True)
class VerdictThresholds:
    live_min: float = 0.5
    attack_max: float = 0.2


MODES = ("challenged", "passive")


def load_calibration(path: Path = CALIBRATION_PATH) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return {}


def load_thresholds(channel: str = "kiosk", *, challenged: bool = True, path: Path = CALIBRATION_PATH
                    ) -> VerdictThresholds:
    """The verdict thresholds for a channel, fitted on the training family (``pad-eval --split train
    --write-calibration``): one pair for challenged sessions (the daemon; live cameras in
    ``analyze``) and one for the passive path (recordings, cameras that cannot drive a projector),
    whose scores come from different evidence."""
    data = load_calibration(path)
    mode = data.get("challenged" if challenged else "passive", data)     # (older files: one table)
    ch = mode.get("channels", {}).get(channel, mode.get("default", {}))
    return VerdictThresholds(float(ch.get("live_min", 0.5)), float(ch.get("attack_max", 0.2)))


@dataclass(frozen=True)
class LivenessVerdict:
    verdict: str                                   # live | attack | inconclusive
    score: float
    detectors: dict[str, float]
    frame_digests: list[str]
    model_versions: dict[str, str]
    challenge_used: bool
    challenge: dict[str, Any] | None = None
    injection: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cues: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            if v is None or (isinstance(v, float) and not np.isfinite(v)):
                return None
            return round(v, 4) if isinstance(v, float) else v
        return {"verdict": self.verdict, "score": clean(self.score),
                "detectors": {k: clean(v) for k, v in self.detectors.items()},
                "frame_digests": self.frame_digests, "model_versions": self.model_versions,
                "challenge_used": self.challenge_used, "challenge": self.challenge, "injection": self.injection,
                "notes": self.notes, "cues": {k: clean(v) for k, v in self.cues.items()}}


def fuse(detectors: dict[str, float]) -> float:
    return float(min(detectors.values())) if detectors else 0.0


def decide(score: float, t: VerdictThresholds) -> str:
    if score >= t.live_min:
        return "live"
    if score <= t.attack_max:
        return "attack"
    return "inconclusive"


def calibrate(live_scores: list[float], attack_scores: list[float], target_apcer: float = 0.001) -> dict[str, float]:
    """Pick the live threshold so that at most ``target_apcer`` of calibration attacks reach it.

    With fewer attacks than 1/target, that means above every attack seen; a small margin keeps
    a tie with the worst attack from passing. The attack threshold is the lowest live score
    seen, so no calibration live sample is called an outright attack."""
    a = np.sort(np.asarray(attack_scores, dtype=np.float64))
    live = np.asarray(live_scores, dtype=np.float64)
    allowed = int(np.floor(target_apcer * len(a)))
    worst = a[len(a) - 1 - allowed] if len(a) > allowed else 0.0
    # Never below 0.5: sessions whose material could not be measured are capped at 0.45.
    live_min = float(min(1.0, max(LIVE_MIN_FLOOR, worst + 0.02)))
    attack_max = float(min(live_min - 0.01, max(0.0, np.min(live) - 0.02))) if len(live) else 0.2
    return {"live_min": round(live_min, 4), "attack_max": round(max(attack_max, 0.0), 4),
            "calibration_bpcer": float(np.mean(live < live_min)) if len(live) else float("nan"),
            "calibration_apcer": float(np.mean(a >= live_min)) if len(a) else float("nan")}
