"""pad-eval's fit on train: the detectors' ramps and the verdict thresholds, from training records.

``fit_ramps`` fits every cue's ramp (``fit_ramp``) on the train family's records; ``fit_thresholds``
places the live threshold where every attack species' APCER holds at the target; ``with_mode`` writes
them into the calibration. ``rescore`` gives a record's session score under other ramps by the
judge's own rules, so a fit can be tried without rendering again (``rescored``: a list of records).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from agent.liveness.challenge import failed_unmeasurable
from agent.liveness.detectors import Ramp, evaluate
from agent.liveness.fusion import fuse
from agent.liveness.judge import DROWNED_SCORE_CAP


def rescore(rec: dict[str, Any], r: Mapping[str, Ramp]) -> float:
    """The session score a record's stored cue summary gets under ramps ``r``: the judge's own rules
    (``agent.liveness.judge.Judge.finish``) on numbers instead of frames, so ramps fitted on a
    training split can be tried on its records without rendering them again. A test checks it
    gives the judge's score under the ramps the judge used."""
    cues = rec.get("cues") or {}
    if not rec.get("detectors"):
        return 0.0                                   # too few face frames: inconclusive, score 0
    m = {k: (float("nan") if v is None else float(v)) for k, v in cues.items()}
    # (A window a foreign flood's bursts left no pair in is challenged too: ``judge.flood_pairs``.)
    challenged = any(k in m for k in ("projector_speckle", "projector_share", "projector_flood_edges"))
    s = evaluate(m, challenged=challenged, projector_seen=rec.get("projector_seen", True), r=r)
    fused = min(fuse(s.as_dict()), s.material_bound)
    if s.unmeasured:
        fused = min(fused, DROWNED_SCORE_CAP)
    if (rec.get("challenge") or {}).get("passed") is False:
        # Not measurable (bright light) caps the score like drowned material; a contradiction is 0.
        fused = min(fused, DROWNED_SCORE_CAP) if failed_unmeasurable(rec.get("challenge")) else 0.0
    if rec.get("projector_claimed_off") and ((rec.get("challenge") or {}).get("projector") or {}).get("passed"):
        fused = 0.0                                  # metadata contradicting the dots (the judge's rule)
    if (rec.get("injection_signals") or {}).get("suspicious"):
        fused = 0.0
    return float(fused)


def rescored(records: list[dict[str, Any]], r: Mapping[str, Ramp]) -> list[dict[str, Any]]:
    """Records with ``score`` as ramps ``r`` give it (``rescore``), the run's own kept as ``run_score``
    (every attempt of a record that followed prompts too)."""
    out = []
    for rec in records:
        if rec["outcome"] in ("accepted", "rejected"):
            rec = {**rec, "run_score": rec.get("run_score", rec.get("score")), "score": round(rescore(rec, r), 5)}
        if rec.get("attempts"):
            rec = {**rec, "attempts": rescored(rec["attempts"], r)}
        out.append(rec)
    return out


def threshold_for_apcer(attack_scores: dict[str, list[float]], target: float) -> float:
    """The lowest live threshold that holds every species' APCER at or below ``target`` on these
    scores (ties at the threshold count as accepted, so it sits just above the deciding score)."""
    t = 0.0
    for scores in attack_scores.values():
        s = np.sort(np.asarray(scores, dtype=np.float64))
        if s.size == 0:
            continue
        allowed = int(np.floor(target * s.size))
        t = max(t, float(s[s.size - 1 - allowed]) + 1e-6) if allowed < s.size else t
    return t


LIVE_MIN_CAP = 0.9          # a live threshold above this would turn away live faces by the score's own noise


def fit_thresholds(records: list[dict[str, Any]], target_apcer: float = 0.001, margin: float = 0.02,
                   floor: float = 0.5) -> dict[str, Any]:
    """Verdict thresholds from a training split's records: the live threshold holds every attack
    species' APCER (decided presentations) at ``target_apcer`` with a margin above the deciding
    score, never below ``floor``; the attack threshold sits under the lowest live score.

    A species that no threshold up to ``LIVE_MIN_CAP`` holds at the target (its attacks score like
    live faces on every cue) is named in ``not_held`` and left out of the choice: the threshold is
    then fitted on the others, and every report shows that species' APCER as it is."""
    decided = [r for r in records if r["outcome"] in ("accepted", "rejected")]
    attacks: dict[str, list[float]] = defaultdict(list)
    for r in decided:
        if r["kind"] == "attack":
            attacks[r["species"]].append(r.get("score") or 0.0)
    live = [r.get("score") or 0.0 for r in decided if r["kind"] == "bona_fide"]
    raw = threshold_for_apcer(attacks, target_apcer)
    not_held = sorted(sp for sp, sc in attacks.items() if threshold_for_apcer({sp: sc}, target_apcer) > LIVE_MIN_CAP)
    held = {sp: sc for sp, sc in attacks.items() if sp not in not_held}
    live_min = round(float(min(1.0, max(floor, threshold_for_apcer(held, target_apcer) + margin))), 4)
    attack_max = round(float(max(0.0, min(live_min - 0.01, (min(live) - 0.02) if live else 0.2))), 4)
    return {"live_min": live_min, "attack_max": attack_max, "apcer_threshold": round(raw, 4),
            "target_apcer": target_apcer, "not_held": not_held,
            "live": len(live), "attacks": sum(map(len, attacks.values()))}


LIVE_COST = 0.01            # an "all" ramp may cost at most this share of the training family's live faces
ANY_MARGIN = 0.25           # an "any" ramp's live end: this far from its attack end toward the live median
MIN_LIVE, MIN_ATTACKS = 20, 5
CHALLENGE_ONLY = ("projector_speckle", "projector_sharpness", "challenge_soft_dots", "eye_dots")


def _values(records: list[dict[str, Any]], cue: str, species: Iterable[str] | None) -> np.ndarray:
    want = None if species is None else set(species)
    v = [r["cues"].get(cue) for r in records if r.get("cues") and r["outcome"] in ("accepted", "rejected")
         and (r["kind"] == "bona_fide" if want is None else r["species"] in want)]
    return np.array([x for x in v if x is not None], dtype=np.float64)


def fit_ramp(rule: str, live: np.ndarray, attack: np.ndarray, attack_quantile: float = 1.0
             ) -> tuple[float, float, str]:
    """One ramp's (attack, live) ends from the cue's values on live faces and on the attacks it answers.

    - ``all`` (every cue of the detector must look alive): the live end at the live faces' 1st
      percentile on the attack side (``LIVE_COST``); the attack end at the most live-like attack if
      they separate (the ramp spans the gap), else just beyond the live end (the cue then stops only
      what lies beyond 99 % of live faces; other detectors must stop the rest).
    - ``any`` (one sign of life is enough): every one of the detector's cues must miss an attack for
      the detector to stop it, so each cue's attack end lies beyond ``attack_quantile`` of the
      attacks (the detector's own, ``detectors.DETECTORS``); the live end ``ANY_MARGIN`` of the way
      toward the live median. Attacks left over are other detectors' to stop."""
    up = float(np.median(live)) > float(np.median(attack))        # live-like values are high
    sign = 1.0 if up else -1.0
    worst = float(attack.max() if up else attack.min())           # the most live-like attack
    if rule == "any":
        end = float(np.quantile(attack, attack_quantile if up else 1 - attack_quantile))
        return end, end + ANY_MARGIN * (float(np.median(live)) - end), "any"
    live_end = float(np.quantile(live, LIVE_COST if up else 1 - LIVE_COST))
    if sign * (live_end - worst) > 0:
        return worst, live_end, "separable"
    width = 0.1 * abs(float(np.median(live)) - live_end) or 1e-3
    return live_end - sign * width, live_end, "overlap"


def fit_ramps(passive: list[dict[str, Any]], challenged: list[dict[str, Any]]) -> dict[str, Any]:
    """Every ramp refitted on training records. A ramp serves both modes, so its cue's values are
    pooled over the ``passive`` records (all frames lit) and the ``challenged`` ones (the cues the
    judge reads from the frames the challenge left usable: lit frames, same-colour pairs), and the
    live end holds for live faces of either; the projector's own speckle exists only under the
    challenge. A ramp keeps its default when its training data is too thin (a species the gate never
    let through, say), and the result says so."""
    from agent.liveness.detectors import DETECTORS, RAMPS

    rule_of = {name: (rule, q) for rule, names, q in DETECTORS.values() for name in names}
    fitted: dict[str, list[float]] = {}
    notes: dict[str, str] = {}
    for name, r in RAMPS.items():
        recs = challenged if name in CHALLENGE_ONLY else passive + challenged
        live, attack = _values(recs, r.cue, None), _values(recs, r.cue, r.answers)
        if live.size < MIN_LIVE or attack.size < MIN_ATTACKS:
            notes[name] = f"default kept: {live.size} live, {attack.size} attacks of {', '.join(r.answers)} judged"
            continue
        a, li, how = fit_ramp(*rule_of[name][:1], live, attack, rule_of[name][1])
        fitted[name] = [round(a, 5), round(li, 5)]
        notes[name] = f"{how}: {live.size} live, {attack.size} attacks"
    return {"ramps": fitted, "notes": notes}


def thresholds_entry(fit: dict[str, Any]) -> dict[str, float]:
    return {"live_min": fit["live_min"], "attack_max": fit["attack_max"]}


def with_mode(calibration: dict[str, Any], mode: str, fit: dict[str, Any], note: dict[str, Any]) -> dict[str, Any]:
    """``calibration`` with ``mode``'s thresholds replaced by ``fit`` for every channel."""
    out = dict(calibration)
    entry = thresholds_entry(fit)
    out[mode] = {"default": entry, "channels": {c: entry for c in ("counter", "kiosk", "vtm", "mobile")},
                 "fitted": {**note, **{k: fit[k] for k in ("apcer_threshold", "target_apcer", "not_held", "live",
                                                           "attacks")}}}
    for legacy in ("default", "channels"):
        out.pop(legacy, None)
    return out
