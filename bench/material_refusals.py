"""Issue 14: why live faces are refused, from ``pad-eval`` records: which sub-measure of the material
measure (or which other check) refused each one, and the physical condition it was in.

For every judged bona fide presentation below the live threshold, the record's stored cue summary is
scored again through ``agent.liveness.detectors.evaluate`` (the judge's own rules on numbers, as
``pad-eval --report-only`` does) and the refusal is named by its *deciding* cause, the first that
applies of:

- ``challenge``: the challenge failed (the score is 0 whatever the cues say);
- ``injection``: the stream looked injected;
- ``detector:<name>``: a detector other than material scored under the threshold;
- material measured (its interval decides), the weakest of its terms: ``speckle`` (the projector
  speckle's ramp), ``sharpness`` (the dots' sharpness ramp), ``clip_floor`` (the one-sided pairs'
  speckle floor, at the lower end of its 95 % interval when the record has it: ``floor_low``),
  ``sharpness_floor`` (their sharpness floor);
- material not measured (abstained, capped at 0.45): ``clipped`` (more than 2 % of the skin's pixels
  at saturation), ``coarse`` / ``patterned`` (NIR light that is not the projector's), ``drowned``
  (ambient NIR: the projector's light under 5 noise deviations, or with no SNR at all under half of
  the skin's IR light, ``detectors.drowned``), ``pairs`` (fewer than 3 two-sided pairs),
  ``not_measured`` (fewer than 3 two-sided pairs, no SNR and no sign of ambient light: no pair had
  its noise measured; until session 17 this was called ``drowned``), ``speckle_floor`` (the
  speckle under any skin's 0.10: too much noise subtracted), ``interval`` (the interval spans the
  ramp), ``unmeasured`` (none of these); with ``+floor`` when the one-sided pairs' floor held the
  score at 0 (an ``attack`` verdict on pairs that could only say "hard");
- ``no_material``: no IR or a projector reported off.

The condition: camera, light (and its NIR share, ``drivers.sim.scene``), lux, distance, yaw, the IR
level on the face, the projector's noise deviations, its share of the skin's light, the clipped
share, two-sided and one-sided pairs, and the IR exposure when one was planned (from the notes).

    .venv/bin/python -m bench.material_refusals RECORDS.jsonl [MORE.jsonl ...] [--all] [--json]
    .venv/bin/python -m bench.material_refusals --compare BEFORE.jsonl AFTER.jsonl

``--all`` lists every judged live face (not only the refused ones); ``--json`` prints JSON lines.
``--compare``: the presentations (any kind) whose outcome, verdict or score differ between two runs of
the same presentations (same keys and URIs), with each side's cause and planned exposure, and
how many scored higher and lower. No face data: records hold cues and scores only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from agent.liveness.detectors import (
    MIN_PROJECTOR_PAIRS,
    SKIN_SPECKLE_FLOOR,
    Ramp,
    active_ramps,
    clipped_cap,
    drowned,
    evaluate,
    separates,
    sharpness_cap,
)
from agent.liveness.features import MAX_CLIPPED_SHARE
from agent.liveness.fusion import load_thresholds
from drivers.errors import CaptureAgentError
from drivers.sim.config import SimConfig
from drivers.sim.scene import ambient_nir_share
from hil.pad_fit import rescore

_EXPOSURE = re.compile(r"IR exposure held at (\d+) us for the challenge \(auto-exposure (\d+) us\)")


def _f(m: Mapping[str, float], key: str) -> float:
    v = m.get(key)
    return float("nan") if v is None else float(v)


def cues_of(rec: Mapping[str, Any]) -> dict[str, float]:
    return {k: (float("nan") if v is None else float(v)) for k, v in (rec.get("cues") or {}).items()}


def material_cause(m: Mapping[str, float], r: Mapping[str, Ramp]) -> str:
    """The material sub-measure that decided (see the module doc), from a cue summary."""
    s = evaluate(m, challenged=True, projector_seen=True, r=r)
    speckle, sharp = r["projector_speckle"], r["projector_sharpness"]
    if s.material is not None:
        terms = {"speckle": speckle(m), "sharpness": sharp(m), "clip_floor": clipped_cap(m, speckle),
                 "sharpness_floor": sharpness_cap(m, sharp)}
        if not np.isfinite(_f(m, "projector_speckle")):      # the clipped pairs' floor alone said "hard"
            return "clip_floor"
        return min(terms, key=lambda k: terms[k])
    if s.cues.get("speckle_contrast") is None or not np.isfinite(_f(m, "speckle_contrast")):
        return "no_material"
    clipped, snr = _f(m, "projector_clipped"), _f(m, "projector_snr")
    pairs, est = _f(m, "projector_pairs"), _f(m, "projector_speckle")
    one_sided = _f(m, "projector_clipped_pairs")
    coarse, patterned = _f(m, "projector_coarse_pairs"), _f(m, "projector_patterned_pairs")
    if np.isfinite(clipped) and clipped > MAX_CLIPPED_SHARE:
        cause = "clipped"
    elif np.isfinite(coarse) and coarse > 0 and 2 * coarse >= (one_sided if np.isfinite(one_sided) else 0):
        cause = "coarse"
    elif np.isfinite(patterned) and patterned > 0 and 2 * patterned >= (one_sided if np.isfinite(one_sided) else 0):
        cause = "patterned"
    elif drowned(m):
        cause = "drowned"
    elif not (np.isfinite(pairs) and pairs >= MIN_PROJECTOR_PAIRS):
        cause = "pairs" if np.isfinite(snr) else "not_measured"
    elif np.isfinite(snr) and np.isfinite(est) and est < SKIN_SPECKLE_FLOOR:
        cause = "speckle_floor"
    elif not separates(m, speckle):
        cause = "interval"
    else:
        cause = "unmeasured"
    if s.material_bound <= 0.0:
        cause += "+floor"
    return cause


def refusal(rec: Mapping[str, Any], r: Mapping[str, Ramp], live_min: float) -> str | None:
    """The deciding cause of a judged presentation's refusal, None if it is accepted at ``live_min``."""
    if rec["outcome"] not in ("accepted", "rejected"):
        return None
    if rescore(dict(rec), r) >= live_min:
        return None
    if (rec.get("challenge") or {}).get("passed") is False:
        return "challenge"
    if (rec.get("injection_signals") or {}).get("suspicious"):
        return "injection"
    m = cues_of(rec)
    challenged = any(k in m for k in ("projector_speckle", "projector_share"))
    s = evaluate(m, challenged=challenged, projector_seen=rec.get("projector_seen", True), r=r)
    others = {k: v for k, v in s.as_dict().items() if k != "material" and v < live_min}
    if others:
        return "detector:" + min(others, key=lambda k: others[k])
    if not challenged:
        return "passive_material"
    return material_cause(m, r)


def _nir_share(q: Mapping[str, str]) -> float | None:
    """The simulator's own NIR share of the scene's ambient light (None: derived from the colour
    temperature, or not a simulated scene's URI)."""
    try:
        return ambient_nir_share(SimConfig.from_query(q))
    except (CaptureAgentError, ValueError, KeyError):
        return None


def condition(rec: Mapping[str, Any]) -> dict[str, Any]:
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(rec["uri"]).query))
    m = cues_of(rec)
    light = q.get("light", "?")
    exposure = ""
    for note in rec.get("notes") or []:
        if (hit := _EXPOSURE.search(note)) is not None:
            exposure = f"{int(hit[1]) / 1000:.2f}/{int(hit[2]) / 1000:.2f}"
    clipped = _f(m, "projector_clipped")
    return {"key": rec["key"], "camera": q.get("camera", "?"), "light": light,
            "nir_share": _nir_share(q), "lux": float(q.get("lux", "nan")),
            "distance_mm": int(q.get("distance_mm", "0")), "yaw": float(q.get("yaw", "nan")),
            "ir_face_dn": round(_f(m, "ir_face_level"), 1), "snr": round(_f(m, "projector_snr"), 2),
            "share": round(_f(m, "projector_share"), 3),
            "clipped": round(clipped, 4) if np.isfinite(clipped) else 0.0,
            "pairs": int(_f(m, "projector_pairs")) if np.isfinite(_f(m, "projector_pairs")) else 0,
            "one_sided": int(_f(m, "projector_clipped_pairs")) if np.isfinite(_f(m, "projector_clipped_pairs")) else 0,
            "speckle": round(_f(m, "projector_speckle"), 3),
            "interval": f"{_f(m, 'projector_speckle_low'):.3f}-{_f(m, 'projector_speckle_high'):.3f}",
            "floor": round(_f(m, "projector_clipped_floor"), 3),
            "floor_low": round(_f(m, "projector_clipped_floor_low"), 3),
            "sharpness": round(_f(m, "projector_sharpness"), 3),
            "sharpness_floor": round(_f(m, "projector_sharpness_floor"), 3),
            "sharpness_ratio": round(_f(m, "projector_sharpness_ratio"), 3),
            "exposure_ms": exposure, "score": rec.get("score"), "verdict": rec.get("verdict")}


def rows(records: list[dict[str, Any]], *, every: bool = False) -> list[dict[str, Any]]:
    r = active_ramps()
    live_min = load_thresholds(challenged=True).live_min
    out = []
    for rec in records:
        if rec.get("kind") != "bona_fide" or rec["outcome"] not in ("accepted", "rejected") or rec.get("passive"):
            continue
        cause = refusal(rec, r, live_min)
        if cause is None and not every:
            continue
        out.append({**condition(rec), "refused_by": cause or "-", "split": rec["split"]})
    return out


COLUMNS = ("key", "refused_by", "verdict", "score", "camera", "light", "nir_share", "lux", "distance_mm", "yaw",
           "ir_face_dn", "snr", "share", "clipped", "pairs", "one_sided", "speckle", "interval", "floor",
           "floor_low", "sharpness", "sharpness_floor", "sharpness_ratio", "exposure_ms")


def table(rs: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rs:
        lines.append("| " + " | ".join("" if row[c] is None else str(row[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


def compare(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The presentations whose outcome, verdict or score changed between two runs (by key)."""
    r = active_ramps()
    live_min = load_thresholds(challenged=True).live_min
    old = {rec["key"]: rec for rec in before}
    out = []
    for rec in after:
        b = old.get(rec["key"])
        if b is None or b.get("uri") != rec.get("uri"):
            continue
        if (b["outcome"], b.get("verdict"), b.get("score")) == (rec["outcome"], rec.get("verdict"), rec.get("score")):
            continue

        def side(x: dict[str, Any]) -> str:
            if x["outcome"] not in ("accepted", "rejected"):
                return f"{x['outcome']} {x.get('reason') or x.get('error') or ''}".strip()
            cause = refusal(x, r, live_min)
            return f"{x.get('verdict')} {x.get('score')}" + (f" ({cause})" if cause else "")

        out.append({"key": rec["key"], "before": side(b), "after": side(rec),
                    "exposure_ms": condition(rec)["exposure_ms"] if rec["outcome"] in ("accepted", "rejected") else "",
                    "delta": None if b.get("score") is None or rec.get("score") is None
                    else round(float(rec["score"]) - float(b["score"]), 5)})
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.material_refusals", description=__doc__.split("\n\n")[0])
    ap.add_argument("records", nargs="+")
    ap.add_argument("--all", action="store_true", help="every judged live face, not only the refused")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--compare", action="store_true", help="two record files: what changed from one to the other")
    a = ap.parse_args(argv)
    if a.compare:
        if len(a.records) != 2:
            ap.error("--compare takes two record files")
        runs = []
        for path in a.records:
            with open(path) as fh:
                runs.append([json.loads(line) for line in fh if line.strip()])
        changed = compare(runs[0], runs[1])
        for row in changed:
            print(json.dumps(row) if a.json else f"{row['key']}: {row['before']} -> {row['after']}"
                  + (f" [IR exposure {row['exposure_ms']} ms planned/auto]" if row["exposure_ms"] else ""))
        up = sum(1 for row in changed if row["delta"] is not None and row["delta"] > 0)
        down = sum(1 for row in changed if row["delta"] is not None and row["delta"] < 0)
        print(f"{len(changed)} changed: {up} scored higher, {down} lower")
        return 0
    records: list[dict[str, Any]] = []
    for path in a.records:
        with open(path) as fh:
            records += [json.loads(line) for line in fh if line.strip()]
    rs = rows(records, every=a.all)
    if a.json:
        for row in rs:
            print(json.dumps(row))
        return 0
    print(table(rs))
    judged = [rec for rec in records if rec.get("kind") == "bona_fide" and rec["outcome"] in ("accepted", "rejected")
              and not rec.get("passive")]
    refused = [row for row in rs if row["refused_by"] != "-"]
    print(f"\n{len(refused)} of {len(judged)} judged live faces refused; by cause: "
          f"{dict(Counter(row['refused_by'] for row in refused))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
