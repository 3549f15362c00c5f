"""An ISO/IEC 30107-3 style presentation-attack bench on simulated presentations.

Calibration and test splits never share a seed, an identity, a pose, a light level or a distance.
VerdictThresholds are fitted on the calibration split (``fusion.calibrate``) and reported on the test split:
APCER per attack species (worst first), BPCER, BPCER at APCER 0.1 %, and the sample counts.
Injection is measured separately: replayed streams that ignore the challenge must all be rejected.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

import drivers
from agent.liveness.fusion import VerdictThresholds, calibrate
from agent.quality import QualityGate
from agent.session.offline import capture_and_judge
from drivers.sim import ATTACKS


@dataclass(frozen=True)
class Presentation:
    species: str          # "live" or an attack species, or "injection"
    uri: str


def presentations(split: str, per_species: int, live: int, injection: int = 0) -> list[Presentation]:
    """Scene draws for one split. Calibration: even identities, seeds < 10^5; test: odd, >= 10^5."""
    rng = np.random.default_rng(7 if split == "calibration" else 8)
    base_seed = 1000 if split == "calibration" else 100_000
    out = []

    def draw(species: str, i: int) -> Presentation:
        identity = 2 * i + (0 if split == "calibration" else 1) + (10 if species == "live" else 0)
        q = {"subject": species if species != "injection" else "live",
             "seed": base_seed + 97 * i + sum(map(ord, species)),
             "identity": identity,
             "yaw": round(float(rng.uniform(-12, 12)), 1), "pitch": round(float(rng.uniform(-10, 10)), 1),
             "lux": round(float(np.exp(rng.uniform(np.log(40), np.log(2500)))), 0),
             "distance_mm": round(float(rng.uniform(420, 600)), 0), "cct": round(float(rng.uniform(3000, 6500)), 0),
             "realtime": 0}
        if species == "injection":
            q["inject"] = "replay"
        return Presentation(species, "sim://?" + "&".join(f"{k}={v}" for k, v in q.items()))

    out += [draw("live", i) for i in range(live)]
    for sp in ATTACKS:
        out += [draw(sp, i) for i in range(per_species)]
    out += [draw("injection", i) for i in range(injection)]
    return out


def presentation_nonce(p: Presentation) -> bytes:
    """The challenge nonce for one presentation: fixed by its scene, so the same command gives the
    same table (the server draws fresh random nonces in service; a bench must be repeatable)."""
    return hashlib.sha256(b"capture-agent/pad-eval/v1\0" + p.uri.encode()).digest()


def run_split(items: list[Presentation], frames: int, gate: QualityGate, thresholds: VerdictThresholds,
              progress=None) -> list[tuple[str, float, str]]:
    results = []
    for k, p in enumerate(items):
        cam = drivers.open(p.uri)
        with cam:
            r = capture_and_judge(cam, frames, gate=gate, thresholds=thresholds, nonce=presentation_nonce(p))
        results.append((p.species, r.verdict.score, r.verdict.verdict))
        if progress:
            progress(k + 1, len(items), p, r.verdict)
    return results


def evaluate(per_species: int = 6, live: int = 12, frames: int = 32, injection: int = 4, progress=None) -> dict:
    gate = QualityGate()
    provisional = VerdictThresholds()
    cal = run_split(presentations("calibration", per_species, live), frames, gate, provisional, progress)
    fitted = calibrate([s for sp, s, _ in cal if sp == "live"], [s for sp, s, _ in cal if sp != "live"], 0.001)
    # Never accept on less than half the evidence, however clean the calibration split looked.
    live_min = max(0.5, fitted["live_min"])
    thresholds = VerdictThresholds(live_min, min(fitted["attack_max"], live_min - 0.01))
    both = run_split(presentations("test", per_species, live, injection), frames, gate, thresholds, progress)
    test = [r for r in both if r[0] != "injection"]
    inj = [r for r in both if r[0] == "injection"]

    def accepted(verdict: str) -> bool:
        return verdict == "live"

    live_res = [(s, v) for sp, s, v in test if sp == "live"]
    bpcer = float(np.mean([not accepted(v) for _, v in live_res])) if live_res else float("nan")
    species_apcer = {}
    for sp in ATTACKS:
        rs = [v for s_, _, v in test if s_ == sp]
        species_apcer[sp] = {"apcer": float(np.mean([accepted(v) for v in rs])) if rs else float("nan"), "n": len(rs)}
    ordered = dict(sorted(species_apcer.items(), key=lambda kv: -kv[1]["apcer"]))
    # BPCER at APCER 0.1 %: the live threshold that keeps every species' APCER <= 0.1 % on test.
    attack_scores = np.array([s for sp, s, _ in test if sp != "live"])
    t_01 = (max(thresholds.live_min, float(np.quantile(attack_scores, 0.999)) + 1e-9) if attack_scores.size
            else thresholds.live_min)
    bpcer_at = float(np.mean([s < t_01 for s, _ in live_res])) if live_res else float("nan")
    return {
        "thresholds": {"fitted_live_min": fitted["live_min"], "calibration_bpcer": fitted["calibration_bpcer"],
                       "calibration_apcer": fitted["calibration_apcer"],
                       "live_min": thresholds.live_min, "attack_max": thresholds.attack_max},
        "test": {"bpcer": bpcer, "bpcer_at_apcer_0.1pct": bpcer_at, "apcer_by_species": ordered,
                 "max_apcer": max(v["apcer"] for v in ordered.values()),
                 "counts": {"live": len(live_res), "attacks": int(attack_scores.size)}},
        "injection": {"n": len(inj), "rejected": int(sum(v != "live" for _, _, v in inj)),
                      "all_rejected": all(v != "live" for _, _, v in inj)},
        "calibration_counts": {"live": sum(sp == "live" for sp, _, _ in cal),
                               "attacks": sum(sp != "live" for sp, _, _ in cal)},
        "frames_per_session": frames,
    }
