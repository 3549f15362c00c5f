"""Can the enrolled dot reference tell this camera from another unit? (issue 14/15, unit32; measurement only)

An injector's best stream with real projector dots comes from *another* camera of the same model. The judge
reads each on-off pair against this unit's enrolled pattern (``features.predicted_pattern``,
``dotref.match_pattern`` at each of ``features.PATTERN_SHIFTS``) and reports the session's median as the
``projector_unmatched`` cue (never scored). This bench captures each presentation ONCE, as pad-eval does
(``hil.pad_records``: the quality phase, the challenge window, the simulator's own pattern, seed 7), and judges
the same framesets against several references:

``own``          the camera's own enrolment (``hil.pad_enrolment.dot_reference_for``);
``seed=S``       the enrolment of a unit whose projector draws its dots with seed S (another pattern design:
                 the simulator gives every unit seed 7's, ``drivers/sim/sensor.DotPattern``; the pattern is
                 swapped as ``bench.sharpness_sampling --seeds`` swaps it, and enrolled from the same board
                 and wall scenes);
``shift=DX,DY``  the own reference moved by (DX, DY) imager pixels: a unit with the *same* pattern design (a
                 replicated diffractive element) mounted a little differently.

Judging the camera's frames against another unit's reference is the injection "another unit's stream
replayed into this terminal" seen from the terminal's side (the terminal holds its own reference; the
frames carry the other projector's dots). Per presentation it prints one JSON row with each reference's
``projector_unmatched``, verdict and score; ``report`` gives the separation of ``own`` against each other
reference (AUC, the best threshold on train, Clopper-Pearson bounds on both error rates there). No face
data is written; the references stay in memory (the cache is not used for the swapped patterns).

    echo 19 > /proc/self/autogroup
    PYTHONPATH=$PWD timeout 1500 /work/main/.venv/bin/python -m bench.unit_pattern run /tmp/unit32-train.jsonl \\
        --split train --live 24 --seeds 1,2 --shifts 3,0 0,3
    PYTHONPATH=$PWD /work/main/.venv/bin/python -m bench.unit_pattern report /tmp/unit32-train.jsonl

Since unit33 the judge scores the cue (``challenge.unit_status``: ``PROJECTOR_NOT_THIS_UNIT``) and the simulator
has camera units (``unit=N``, ``mount_dx``/``mount_dy``), so pad-eval presents another unit's stream itself
(``other_unit``, ``other_mount``); ``records`` reads pad-eval records by the unit check (:func:`unit_rows`):

    PYTHONPATH=$PWD /work/main/.venv/bin/python -m bench.unit_pattern records /tmp/unit33/train.jsonl ...
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np


def other_unit_reference(uri: str, seed: int) -> Any:
    """The dot reference a unit whose projector draws seed ``seed``'s pattern enrols from the same scenes
    as ``uri``'s camera (not cached: the cache's key cannot see the pattern)."""
    from agent.commands.projector_enrol import enrol_uris
    from bench.sharpness_sampling import _pattern_seed
    from hil.pad_enrolment import ENROL_PAIRS, enrolment_uris
    undo = _pattern_seed(seed)
    try:
        return enrol_uris(enrolment_uris(uri), ENROL_PAIRS)
    finally:
        undo()


def shifted_reference(ref: Any, dx: int, dy: int) -> Any:
    """``ref``'s pattern moved by ``dx`` columns and ``dy`` rows of the imager (a replicated pattern mounted
    elsewhere); what moves off the reference's edge is uncovered."""
    pat = np.zeros_like(ref.pattern)
    cov = np.zeros_like(ref.covered)
    h, w = pat.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    pat[yd, xd] = ref.pattern[ys, xs]
    cov[yd, xd] = ref.covered[ys, xs]
    return dataclasses.replace(ref, pattern=pat, covered=cov)


def run(out: Path, split: str, live: int, start: int, seeds: list[int], shifts: list[tuple[int, int]],
        frames: int) -> None:
    import drivers
    from agent.liveness.fusion import load_thresholds
    from agent.liveness.judge import judge
    from agent.session.offline import capture
    from hil.pad_enrolment import dot_reference_for, enrolment_uris
    from hil.pad_presentations import presentation_nonce, presentations
    from hil.pad_records import kiosk_gate
    from hil.padeval import refuse_unseen
    refuse_unseen([f"{split}:live:0"])
    gate, thresholds = kiosk_gate(), load_thresholds("kiosk", challenged=True)
    done = set()
    if out.exists():
        done = {json.loads(line)["key"] for line in out.read_text().splitlines() if line.strip()}
    others: dict[tuple[int, tuple[str, ...]], Any] = {}
    for p in presentations(split, live=start + live, per_species=0, injection=0, species=["live"])[start:]:
        if p.key in done:
            continue
        own = dot_reference_for(p.uri)
        refs = {"own": own}
        for s in seeds:      # one enrolment per seed (every train camera's enrolment scenes are alike)
            key = (s, tuple(enrolment_uris(p.uri)))
            if key not in others:
                others[key] = other_unit_reference(p.uri, s)
            refs[f"seed={s}"] = others[key]
        for dx, dy in shifts:
            refs[f"shift={dx},{dy}"] = shifted_reference(own, dx, dy)
        row: dict[str, Any] = {"key": p.key, "uri": p.uri}
        try:
            with drivers.open(p.uri) as cam:
                cap = capture(cam, frames, presentation_nonce(p), gate, require_quality=True)
        except Exception as exc:  # noqa: BLE001  (a presentation that cannot be captured is reported, not hidden)
            row["error"] = f"{type(exc).__name__}: {exc}"
        else:
            if not cap.quality.complete or len(cap.sets) < frames:
                row["error"] = "not acquired"
            for name, ref in ([] if "error" in row else refs.items()):
                v = judge(cap.sets, gate, thresholds, challenge=cap.challenge, notes=cap.notes,
                          dot_reference=ref).verdict
                u = (v.cues or {}).get("projector_unmatched")
                row[name] = {"unmatched": None if u is None or not math.isfinite(u) else round(float(u), 4),
                             "verdict": v.verdict, "score": round(float(v.score), 4)}
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def separation(genuine: list[float], other: list[float]) -> dict[str, Any]:
    """``other`` (another unit's reference) should read higher than ``genuine``: the AUC (ties half), and the
    threshold t ("other unit" when unmatched > t) minimising the larger of the two error rates, with each
    rate's two-sided 95 % Clopper-Pearson bounds."""
    from bench.challenge_stats import clopper_pearson_lower, clopper_pearson_upper
    g, o = np.asarray(genuine, float), np.asarray(other, float)
    auc = float(np.mean([(x > g).mean() + 0.5 * (x == g).mean() for x in o])) if len(g) and len(o) else math.nan
    best: dict[str, Any] = {}
    for t in sorted(set(g.tolist()) | set(o.tolist())):
        fr, fa = int((g > t).sum()), int((o <= t).sum())      # genuine refused, other unit passed
        worst = max(fr / len(g), fa / len(o))
        if not best or worst < best["worst"]:
            best = {"worst": worst, "threshold": t, "genuine_refused": f"{fr}/{len(g)}",
                    "genuine_refused_95": [round(clopper_pearson_lower(fr, len(g)), 3),
                                           round(clopper_pearson_upper(fr, len(g)), 3)],
                    "other_passed": f"{fa}/{len(o)}",
                    "other_passed_95": [round(clopper_pearson_lower(fa, len(o)), 3),
                                        round(clopper_pearson_upper(fa, len(o)), 3)]}
    return {"n_genuine": len(g), "n_other": len(o), "auc": round(auc, 4),
            "genuine_range": [float(g.min()), float(g.max())] if len(g) else None,
            "other_range": [float(o.min()), float(o.max())] if len(o) else None,
            "margin": round(float(o.min() - g.max()), 4) if len(g) and len(o) else None, **best}


def report(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "error" not in r and "own" in r]
    names = sorted({k for r in rows for k in r if k not in ("key", "uri", "own")})
    print(json.dumps({"presentations": len(rows)}))
    own = [r["own"]["unmatched"] for r in rows]
    print(json.dumps({"own_unmeasured": sum(u is None for u in own),
                      "own_verdicts": {v: sum(r["own"]["verdict"] == v for r in rows)
                                       for v in sorted({r["own"]["verdict"] for r in rows})}}))
    for name in names:
        paired = [(r["own"]["unmatched"], r[name]["unmatched"]) for r in rows if name in r]
        both = [(a, b) for a, b in paired if a is not None and b is not None]
        verdicts = {v: sum(r[name]["verdict"] == v for r in rows if name in r)
                    for v in sorted({r[name]["verdict"] for r in rows if name in r})}
        print(json.dumps({"reference": name, "unmeasured": sum(b is None for _, b in paired), "verdicts": verdicts,
                          **separation([a for a, _ in both], [b for _, b in both])}))


def _share(k: int, n: int) -> dict[str, Any]:
    from bench.challenge_stats import clopper_pearson_lower, clopper_pearson_upper
    return {"n": k, "of": n, "95": [round(clopper_pearson_lower(k, n), 3), round(clopper_pearson_upper(k, n), 3)]}


def unit_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pad-eval records (challenged, judged) read by the unit check (``challenge.unit_status`` on each record's
    cues, with this build's thresholds, whatever judge made the record): per split and species, how many read
    ``own``, ``unsure``, ``other`` and ``unmeasured``, the ``projector_unmatched`` range, and the share refused
    by the check (``unsure`` or ``other``) and judged another unit (``other``), each with its two-sided 95 %
    Clopper-Pearson bounds."""
    from agent.liveness.challenge import unit_status
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        if r.get("outcome") in ("accepted", "rejected") and not r.get("passive") and isinstance(r.get("cues"), dict):
            groups.setdefault((r["split"], r["species"]), []).append(r)
    rows = []
    for (split, species), rs in sorted(groups.items()):
        status = [unit_status({k: (math.nan if v is None else v) for k, v in r["cues"].items()}) for r in rs]
        u = [r["cues"].get("projector_unmatched") for r in rs]
        u = [x for x in u if x is not None]
        n = len(rs)

        refused = sum(s in ("unsure", "other") for s in status)
        rows.append({"split": split, "species": species, "n": n,
                     "status": {s: status.count(s) for s in ("own", "unsure", "other", "unmeasured")},
                     "unmatched_range": [min(u), max(u)] if u else None,
                     "refused": _share(refused, n), "other": _share(status.count("other"), n)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.unit_pattern")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("--split", default="train")
    r.add_argument("--live", type=int, default=24)
    r.add_argument("--start", type=int, default=0)
    r.add_argument("--frames", type=int, default=32)
    r.add_argument("--seeds", default="1,2", help="other units' pattern seeds (the simulator's own is 7)")
    r.add_argument("--shifts", nargs="*", default=["3,0", "0,3"], help="DX,DY pixel moves of the own reference")
    rp = sub.add_parser("report")
    rp.add_argument("path", type=Path)
    rr = sub.add_parser("records", help="pad-eval records read by the unit check (unit33)")
    rr.add_argument("paths", type=Path, nargs="+")
    args = ap.parse_args(argv)
    if args.cmd == "report":
        report(args.path)
        return 0
    if args.cmd == "records":
        from hil.pad_records import read_records
        for row in unit_rows([r for p in args.paths for r in read_records(p)]):
            print(json.dumps(row))
        return 0
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if 7 in seeds:
        print("seed 7 is the simulator's own pattern", file=sys.stderr)
        return 2
    shifts = [(int(a), int(b)) for a, b in (s.split(",") for s in args.shifts)]
    run(args.out, args.split, args.live, args.start, seeds, shifts, args.frames)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
