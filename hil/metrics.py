"""ISO/IEC 30107-3 figures from a run's session records, with exact (Clopper–Pearson) bounds.

* APCER per species: attack presentations of that species accepted, among those the agent decided
  on (accepted or refused as an attack); the headline is the worst species, never the mean.
* BPCER: bona fide presentations refused as attacks, among those decided on.
* APNRR / BPNRR: presentations the quality gate never let through (``not_acquired``), among all of
  that species; reported apart, never inside APCER or BPCER.
* BPCER at fixed APCER: the threshold on the terminal's liveness score that holds every species'
  APCER at or below the target *on this run's own scores* (optimistic: the threshold is chosen on
  the data it is reported on; a test split must not choose it, see PAD-EVAL).
* Injection attacks: one row per kind, never mixed with presentations.

Sessions that ended in an error (camera, server, worker) count in none of the rates; they are listed.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import beta

from hil.records import SessionRecord

DECIDED = ("accepted", "not_live", "rejected")
APCER_TARGETS = (0.001, 0.01, 0.05, 0.10)


@dataclass(frozen=True)
class Rate:
    errors: int
    n: int
    rate: float                        # NaN when n == 0
    lower: float                       # two-sided 95 % Clopper–Pearson
    upper: float
    upper_one_sided: float             # one-sided 95 %: 1 - 0.05^(1/n) with no errors

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rate(errors: int, n: int, confidence: float = 0.95) -> Rate:
    if n == 0:
        nan = float("nan")
        return Rate(errors, 0, nan, nan, nan, nan)
    a = 1 - confidence
    lo = 0.0 if errors == 0 else float(beta.ppf(a / 2, errors, n - errors + 1))
    hi = 1.0 if errors == n else float(beta.ppf(1 - a / 2, errors + 1, n - errors))
    one = 1.0 if errors == n else float(beta.ppf(confidence, errors + 1, n - errors))
    return Rate(errors, n, errors / n, lo, hi, one)


def demonstrable(n: int) -> float:
    """The smallest error rate ``n`` error-free trials show at 95 % (one-sided): about 3/n."""
    return 1 - 0.05 ** (1 / n) if n else float("nan")


def _by(records: list[SessionRecord], kind: str) -> dict[str, list[SessionRecord]]:
    out: dict[str, list[SessionRecord]] = defaultdict(list)
    for r in records:
        if r.kind == kind:
            out[r.species].append(r)
    return dict(sorted(out.items()))


def presentation_table(records: list[SessionRecord]) -> dict[str, Any]:
    bona = [r for r in records if r.kind == "bona_fide"]
    decided_bona = [r for r in bona if r.outcome in DECIDED]
    species: dict[str, Any] = {}
    for sp, rs in _by(records, "attack").items():
        decided = [r for r in rs if r.outcome in DECIDED]
        species[sp] = {
            "presentations": len(rs),
            "apcer": rate(sum(r.outcome == "accepted" for r in decided), len(decided)).to_dict(),
            "apnrr": rate(sum(r.outcome == "not_acquired" for r in rs), len(rs)).to_dict(),
            "errors": sum(r.outcome in ("error", "device_refused") for r in rs),
        }
    # The headline is the worst species; among equal rates, the one whose bound is widest (fewest
    # decided presentations), so a tie never hides the least-tested species.
    worst = max(species.items(), key=lambda kv: (_nan_low(kv[1]["apcer"]["rate"]),
                                                 _nan_low(kv[1]["apcer"]["upper_one_sided"])), default=None)
    return {
        "bpcer": rate(sum(r.outcome != "accepted" for r in decided_bona), len(decided_bona)).to_dict(),
        "bpnrr": rate(sum(r.outcome == "not_acquired" for r in bona), len(bona)).to_dict(),
        "bona_fide": len(bona),
        "bona_fide_errors": sum(r.outcome in ("error", "device_refused") for r in bona),
        "species": species,
        "max_apcer": {"species": worst[0], **worst[1]["apcer"]} if worst else None,
    }


def _nan_low(x: float) -> float:
    return -1.0 if math.isnan(x) else x


def scores(records: list[SessionRecord]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Bona fide scores and attack scores per species (sessions the worker judged)."""
    live = np.array([r.score for r in records if r.kind == "bona_fide" and r.score is not None], float)
    attacks = {sp: np.array([r.score for r in rs if r.score is not None], float)
               for sp, rs in _by(records, "attack").items()}
    return live, {sp: a for sp, a in attacks.items() if a.size}


def threshold_for_apcer(attacks: dict[str, np.ndarray], target: float) -> float:
    """The lowest score threshold (accept when score >= t) keeping every species' APCER <= target."""
    t = -math.inf
    for a in attacks.values():
        allowed = int(math.floor(target * a.size + 1e-9))
        ordered = np.sort(a)[::-1]
        if allowed < a.size:
            t = max(t, float(np.nextafter(ordered[allowed], math.inf)))
    return t


def bpcer_at_apcer(records: list[SessionRecord]) -> list[dict[str, Any]]:
    live, attacks = scores(records)
    out = []
    for target in APCER_TARGETS:
        if not live.size or not attacks:
            out.append({"apcer_target": target, "threshold": None, "bpcer": rate(0, 0).to_dict(),
                        "supported": False})
            continue
        t = threshold_for_apcer(attacks, target)
        smallest = min(a.size for a in attacks.values())
        out.append({"apcer_target": target, "threshold": None if t == -math.inf else t,
                    "bpcer": rate(int(np.sum(live < t)), int(live.size)).to_dict(),
                    # can this run's attack count show an APCER this small at all?
                    "supported": demonstrable(smallest) <= target})
    return out


def det_points(live: np.ndarray, attack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(APCER, BPCER) at every threshold between the observed scores."""
    ts = np.unique(np.concatenate([live, attack, [np.inf]]))
    apcer = np.array([np.mean(attack >= t) for t in ts])
    bpcer = np.array([np.mean(live < t) for t in ts])
    return apcer, bpcer


def injection_table(records: list[SessionRecord]) -> dict[str, Any]:
    out = {}
    for sp, rs in _by(records, "injection").items():
        out[sp.split(":", 1)[1]] = {
            "n": len(rs),
            "accepted": rate(sum(r.outcome == "accepted" for r in rs), len(rs)).to_dict(),
            "how_refused": dict(Counter(r.outcome if r.outcome != "error" else f"error:{r.code}"
                                        for r in rs if r.outcome != "accepted")),
        }
    return out


def latency(records: list[SessionRecord]) -> dict[str, Any]:
    """Agent-measured totals (``timings_ms.total``) of accepted sessions per purpose, against §7.2."""
    out: dict[str, Any] = {}
    for purpose in ("enroll", "verify"):
        rs = [r for r in records if r.purpose == purpose and r.outcome == "accepted" and "total" in r.timings_ms]
        if not rs:
            continue
        total = np.array([r.timings_ms["total"] for r in rs])
        budget = rs[0].budget_ms
        out[purpose] = {"n": len(rs), "budget_ms": budget, "p50_ms": float(np.percentile(total, 50)),
                        "p95_ms": float(np.percentile(total, 95)), "max_ms": float(total.max()),
                        "over_budget": rate(int(np.sum(total > budget)), len(rs)).to_dict(),
                        "stages_p50_ms": {k: float(np.median([r.timings_ms[k] for r in rs if k in r.timings_ms]))
                                          for k in ("challenge", "camera_open", "quality", "challenge_window",
                                                    "liveness", "probe", "seal", "submit", "after_last_frame")
                                          if any(k in r.timings_ms for r in rs)}}
    return out


def quality_refusals(records: list[SessionRecord]) -> dict[str, dict[str, int]]:
    """Sessions the quality gate never let through, by the last prompt shown, per kind."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        if r.outcome == "not_acquired":
            out[r.kind][r.last_prompt or "no prompt"] += 1
    return {k: dict(v.most_common()) for k, v in sorted(out.items())}


def lux_sweep(records: list[SessionRecord]) -> list[dict[str, Any]]:
    """Bona fide sessions by illuminance: acceptance, failures to acquire, score."""
    groups: dict[float, list[SessionRecord]] = defaultdict(list)
    for r in records:
        if r.kind == "bona_fide":
            groups[float(r.conditions.get("lux_set", 0))].append(r)
    out = []
    for lux, rs in sorted(groups.items()):
        measured = [float(r.conditions["lux_measured"]) for r in rs if r.conditions.get("lux_measured") is not None]
        sc = [float(r.score) for r in rs if r.score is not None]
        out.append({"lux": lux, "n": len(rs), "lux_measured": float(np.mean(measured)) if measured else None,
                    "accepted": rate(sum(r.outcome == "accepted" for r in rs), len(rs)).to_dict(),
                    "not_acquired": sum(r.outcome == "not_acquired" for r in rs),
                    "not_live": sum(r.outcome in ("not_live", "rejected") for r in rs),
                    "errors": sum(r.outcome in ("error", "device_refused") for r in rs),
                    "score_mean": float(np.mean(sc)) if sc else None})
    return out


def _band(value: float, edges: tuple[float, ...], unit: str) -> str:
    lo = max((e for e in edges if e <= value), default=None)
    hi = min((e for e in edges if e > value), default=None)
    if lo is None:
        return f"< {hi:g} {unit}"
    return f"≥ {lo:g} {unit}" if hi is None else f"{lo:g}–{hi:g} {unit}"


BANDS: dict[str, tuple[str, tuple[float, ...], str]] = {
    "lux": ("lux_set", (0, 50, 200, 1000, 3000), "lux"),
    "distance": ("distance_mm", (0, 400, 550, 700), "mm"),
    "yaw": ("yaw", (-90, -10, 10), "°"),
}


def breakdown(records: list[SessionRecord]) -> list[dict[str, Any]]:
    """Bona fide and attack outcomes by light, distance, yaw and channel: an average can hide a
    condition where everything fails (PAD-EVAL "Conditions")."""
    rows: dict[tuple[str, str], list[SessionRecord]] = defaultdict(list)
    for r in records:
        if r.kind not in ("bona_fide", "attack"):
            continue
        for dim, (key, edges, unit) in BANDS.items():
            v = r.conditions.get(key)
            if v is not None:
                rows[(dim, _band(float(v), edges, unit))].append(r)
        rows[("channel", r.channel)].append(r)
    out = []
    for (dim, band), rs in sorted(rows.items(), key=lambda kv: (list(BANDS).index(kv[0][0])
                                                                if kv[0][0] in BANDS else 99, kv[0][1])):
        bona = [r for r in rs if r.kind == "bona_fide"]
        att = [r for r in rs if r.kind == "attack"]
        out.append({"dimension": dim, "band": band,
                    "bona_fide": len(bona), "bona_fide_accepted": sum(r.outcome == "accepted" for r in bona),
                    "bona_fide_not_acquired": sum(r.outcome == "not_acquired" for r in bona),
                    "attacks": len(att), "attacks_accepted": sum(r.outcome == "accepted" for r in att)})
    return out


def recovery(records: list[SessionRecord]) -> dict[str, Any]:
    cycles = [r.unplug for r in records if r.unplug is not None]
    times = [c["recovered_s"] for c in cycles if c.get("recovered_s") is not None]
    return {"cycles": len(cycles), "recovered": len(times), "times_s": times,
            "while_off": dict(Counter(c["while_off"]["code"] or c["while_off"]["outcome"] for c in cycles)),
            "p50_s": float(np.median(times)) if times else None, "max_s": max(times) if times else None}


def scenarios_table(records: list[SessionRecord]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], list[SessionRecord]] = {}
    for r in records:
        rows.setdefault((r.set, r.scenario), []).append(r)
    return [{"set": s, "scenario": name, "species": rs[0].species, "expected": rs[0].expected, "n": len(rs),
             "as_expected": sum(r.as_expected for r in rs), "outcomes": dict(Counter(r.outcome for r in rs))}
            for (s, name), rs in rows.items()]


def errors(records: list[SessionRecord]) -> dict[str, int]:
    return dict(Counter(r.code for r in records if r.outcome == "error").most_common())


def summarize(records: list[SessionRecord]) -> dict[str, Any]:
    return {"sessions": len(records), "presentations": presentation_table(records),
            "bpcer_at_apcer": bpcer_at_apcer(records), "injection": injection_table(records),
            "conditions": breakdown(records), "latency": latency(records),
            "quality_refusals": quality_refusals(records),
            "lux_sweep": lux_sweep(records), "recovery": recovery(records), "scenarios": scenarios_table(records),
            "errors": errors(records),
            "distinct_scenes": len({json.dumps(r.conditions.get("scene", {}), sort_keys=True) for r in records})}

