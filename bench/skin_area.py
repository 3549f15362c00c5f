"""How a session's material readings spread with the skin area they are read on (issue 14).

Until the seventeenth session the projector material measure read the dots on the skin patches
(``features.ir_skin``: discs of ``SKIN_RADIUS_IPD`` times the eyes' spacing around ``SKIN_PATCHES``),
a few dozen dots. Which dots happened to land there moved a session's sharpness by +-0.3-0.4
(``bench.sharpness_sampling``, docs/liveness.md "A session's dots"), and every pair of the session
sees the same dots, so more pairs do not help; more skin (more distinct dots) may. This bench runs
each presentation as pad-eval runs it (``hil.pad_records.run_presentation``: enrolment, quality phase, the
32-frameset challenge window, the judge on its own region, ``features.material_skin``) and, on the
very same frames, reads every on-off pair again on each of ``_variants()``' skin regions (other
landmarks, other radii; ``r10`` is the skin patches, main f50f5c3's region, ``r20o`` the one adopted),
pooled as the judge pools them (``ProjectorMeasure.pool``); docs/liveness.md, "More dots per
session". ``--seeds`` runs each presentation again under other dot patterns (the
same face, pose, light and schedule; other dots on the skin), as ``bench.sharpness_sampling`` does.

    nice -n 19 .venv/bin/python -m bench.skin_area run OUT.jsonl train:live:0 train:mask:3 ... --seeds 1,2,3
    .venv/bin/python -m bench.skin_area report OUT.jsonl
    .venv/bin/python -m bench.skin_area gate TRAIN.jsonl --dev DEV.jsonl ...

``report``: per region, the sampling spread (each presentation's SD of sharpness and speckle over its
dot patterns, pooled over presentations as an RMS) and the spread across presentations (SD of the
as-run readings), live and attacks apart. ``gate``: per region, every ramp on a projector cue (the
challenge material detector's speckle and sharpness, life signs' ``challenge_soft_dots``) refitted on
the train rows with pad-eval's own rule (``hil.pad_fit.fit_ramp``), and each row rescored
(``hil.pad_fit.rescore``) with the region's projector cues in place of the record's, against main's
judge (region ``--before-region``, default ``r20o``; the ramps of ``--before``, a calibration file):
live refused and attacks accepted per family and species, and every verdict that changed with its
readings either side. Rows hold no face data: readings only. Never on the unseen family
(``hil.padeval.UNSEEN_SPLITS``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

# Extra landmarks (MediaPipe's 468-point mesh), each away from the eyes, brows, nostrils, lips and
# the face's edge (a live train face, in eye spacings from the eyes' midpoint: brows at y -0.3 to
# -0.4, the lower lids at +0.04, the nostrils at +0.76): the forehead's upper sides (69, 299: x
# -+0.45-0.65, y -0.6) and the nose bridge's lower part (197: y +0.25, between the eyes' inner
# corners at x -+0.26). The upper cheeks under the eyes (117, 346) were left out: 0.2 eye spacings
# under the lids, and on a turned head at the face's edge.
MORE_PATCHES = (69, 299, 197)
# How far inside the face's oval the larger regions stay (eye spacings): a turned head brings the
# cheeks' discs to the face's edge.
INSET_IPD = 0.1
# The skin patches without the forehead's four (151, 9, 108, 337): the cheeks under the eyes (50,
# 280) and beside the nose (205, 425). A fringe lies on the forehead, and on the seventh family's
# night street the forehead's discs of spectacle wearers read a mask's speckle (docs/liveness.md,
# "Nineteenth session"); ``LOWER_CHEEKS``: the two beside the nose alone, clear of the spectacles' rims.
CHEEKS = (50, 280, 205, 425)
LOWER_CHEEKS = (205, 425)


def _variants() -> dict[str, tuple[tuple[int, ...], float, float | None]]:
    from agent.liveness.features import SKIN_PATCHES
    more = tuple(SKIN_PATCHES) + MORE_PATCHES
    return {"r10": (SKIN_PATCHES, 0.10, None), "r15": (SKIN_PATCHES, 0.15, None), "r20": (SKIN_PATCHES, 0.20, None),
            "r15o": (SKIN_PATCHES, 0.15, INSET_IPD), "r20o": (SKIN_PATCHES, 0.20, INSET_IPD),
            "more15o": (more, 0.15, INSET_IPD), "cheeks20o": (CHEEKS, 0.20, INSET_IPD),
            "low30o": (LOWER_CHEEKS, 0.30, INSET_IPD)}


PROJECTOR_KEYS = ("projector_speckle", "projector_speckle_low", "projector_speckle_high", "projector_pairs",
                  "projector_clipped_floor", "projector_clipped_floor_low", "projector_clipped_pairs",
                  "projector_share", "projector_snr", "projector_clipped", "projector_patterned_pairs",
                  "projector_sharpness", "projector_sharpness_floor", "projector_sharpness_ratio",
                  "projector_sharpness_ratio_floor", "projector_coarse_pairs", "projector_pattern_checked",
                  "projector_unmatched", "projector_untestable_pairs", "projector_sharpness_eyes",
                  "projector_eyes_unshaped_pairs")


def projector_cues(measure: Any) -> dict[str, float]:
    """The projector's part of the judge's cue summary (``detectors.cue_summary``) for ``measure``."""
    from agent.liveness.detectors import cue_summary
    m = cue_summary([], projector_on=None, projector=measure, motion={})
    return {k: v for k, v in m.items() if k.startswith("projector_")}


class _Probe:
    """For one run: every skin region the judge finds (``features.material_skin``) found again as
    each variant; every pair the judge measures (``judge.projector_light_on``) measured again on each
    variant's region; every pooling (``ProjectorMeasure.pool``) pooled again per variant."""

    def __init__(self, variants: Mapping[str, tuple[tuple[int, ...], float, float | None]]) -> None:
        from agent.liveness import features as F
        from agent.liveness import judge as J
        self.F, self.J, self.variants = F, J, dict(variants)
        self.skins: dict[int, tuple[Any, dict[str, Any]]] = {}
        self.lights: dict[int, tuple[Any, dict[str, Any]]] = {}
        self.measures: dict[str, Any] = {}
        self.pixels: dict[str, list[int]] = {k: [] for k in self.variants}
        self._ir_skin, self._light_on = F.ir_skin, J.projector_light_on
        self._material = F.material_skin
        self._pool = F.ProjectorMeasure.pool.__func__  # type: ignore[attr-defined]
        F.material_skin = self._wrap_material
        J.projector_light_on = self._wrap_light_on
        F.ProjectorMeasure.pool = classmethod(self._wrap_pool)  # type: ignore[method-assign, assignment]

    def close(self) -> None:
        self.F.material_skin = self._material
        self.J.projector_light_on = self._light_on
        self.F.ProjectorMeasure.pool = classmethod(self._pool)  # type: ignore[method-assign, assignment]

    def _wrap_material(self, aligned: Any, face: Any) -> Any:
        out = self._material(aligned, face)
        if out is not None:
            self.skins[id(out)] = (out, {k: self._ir_skin(aligned, face, *v) for k, v in self.variants.items()})
        return out

    def _wrap_light_on(self, patch: Any, lit: Any, dark: Any, same: Any = None, reference: Any = None) -> Any:
        out = self._light_on(patch, lit, dark, same, reference)
        got = self.skins.get(id(patch)) if patch is not None else None
        if got is not None and got[0] is patch:
            per = {}
            for k, vpatch in got[1].items():
                per[k] = self._light_on(vpatch, lit, dark, same, reference)
                self.pixels[k].append(int(vpatch.mask.sum()) if vpatch is not None else 0)
            self.lights[id(out)] = (out, per)
        return out

    def _wrap_pool(self, cls: Any, lights: list[Any]) -> Any:
        out = self._pool(cls, lights)
        got = [self.lights.get(id(x)) for x in lights]
        if lights and all(g is not None and g[0] is x for g, x in zip(got, lights, strict=True)):
            for k in self.variants:
                self.measures[k] = self._pool(cls, [g[1][k] for g in got if g is not None])
        return out


def run(out: Path, specs: list[str], *, seeds: tuple[int, ...], frames: int,
        only: tuple[str, ...] = ()) -> None:
    """``only``: read only these of ``_variants()`` (all of them when empty; each one read costs time)."""
    from agent.liveness.fusion import load_thresholds
    from agent.quality import QualityGate
    from bench.sharpness_sampling import _uri, present_probed
    from hil.padeval import refuse_unseen
    refuse_unseen(specs)
    variants = _variants()
    if unknown := [r for r in only if r not in variants]:
        raise SystemExit(f"unknown regions {', '.join(unknown)}: one of {', '.join(variants)}")
    if only:
        variants = {k: v for k, v in variants.items() if k in only}
    gate, thresholds = QualityGate(), load_thresholds("kiosk", challenged=True)
    done = set()
    if out.exists():
        done = {json.loads(line)["bench_key"] for line in out.read_text().splitlines() if line.strip()}
    for spec in specs:
        split, species, index = spec.split(":")
        uri = _uri(split, species, int(index), {})
        for pseed in (None, *seeds):
            key = spec + ("" if pseed is None else f"|pattern={pseed}")
            if key in done:
                continue
            probe = _Probe(variants)
            rec = present_probed(probe, pseed, split, species, int(index), uri, frames=frames, gate=gate,
                                 thresholds=thresholds)
            regions = {k: {**projector_cues(m), "pixels": int(np.median(probe.pixels[k])) if probe.pixels[k] else 0}
                       for k, m in probe.measures.items()}
            row = {"bench_key": key, "spec": spec, "pattern_seed": pseed, "record": rec, "regions": regions}
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            r10 = regions.get("r10", {})
            print(key, rec.get("outcome"), rec.get("score"), (rec.get("cues") or {}).get("projector_sharpness"),
                  r10.get("projector_sharpness"), {k: round(v.get("projector_sharpness", math.nan), 3)
                                                   for k, v in regions.items()}, flush=True)


def _rows(paths: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for p in paths for line in p.read_text().splitlines() if line.strip()]


def _judged(row: dict[str, Any]) -> bool:
    return row["record"].get("outcome") in ("accepted", "rejected")


def report(paths: list[Path]) -> None:
    rows = [r for r in _rows(paths) if _judged(r)]
    names = list(_variants())
    for cue in ("projector_sharpness", "projector_speckle"):
        print(f"\n{cue}: sampling SD (RMS over presentations of the SD over dot patterns), "
              "SD across presentations (as run), median, pixels (median)")
        print("| region | live: sampling SD | live: across | live: median | attacks: sampling SD | attacks: across "
              "| attacks: median | pixels |")
        print("|---|---|---|---|---|---|---|---|")
        for name in names:
            out = []
            for live in (True, False):
                groups: dict[str, list[float]] = {}
                base = []
                for r in rows:
                    if (r["record"]["species"] == "live") != live:
                        continue
                    v = (r["regions"].get(name) or {}).get(cue)
                    if v is None or not math.isfinite(v):
                        continue
                    groups.setdefault(r["spec"], []).append(v)
                    if r["pattern_seed"] is None:
                        base.append(v)
                sds = [float(np.std(g, ddof=1)) for g in groups.values() if len(g) >= 2]
                out += [f"{math.sqrt(float(np.mean(np.square(sds)))):.3f} (n {len(sds)})" if sds else "-",
                        f"{float(np.std(base, ddof=1)):.3f} (n {len(base)})" if len(base) >= 2 else "-",
                        f"{float(np.median(base)):.3f}" if base else "-"]
            pix = [r["regions"][name]["pixels"] for r in rows if name in r["regions"]]
            print(f"| {name} | " + " | ".join(out) + f" | {int(np.median(pix)) if pix else 0} |")


def _with_region(rec: dict[str, Any], region: Mapping[str, float] | None) -> dict[str, Any]:
    if region is None:
        return rec
    cues = {k: v for k, v in (rec.get("cues") or {}).items() if k not in PROJECTOR_KEYS}
    cues.update({k: v for k, v in region.items() if k in PROJECTOR_KEYS})
    return {**rec, "cues": cues}


# The region main's judge reads: the material region since efa0206 (session 17; ``r10``: main f50f5c3's
# skin patches, which the gate compared against until the nineteenth session).
BEFORE = "r20o"


def _ramps_of(calibration: Path | None) -> dict[str, Any]:
    """The ramps a calibration file gives (``detectors.ramps``), or the active ones."""
    from agent.liveness.detectors import active_ramps, ramps
    if calibration is None:
        return dict(active_ramps())
    return ramps(json.loads(calibration.read_text()).get("ramps"))


def fitted_ramps(train: list[dict[str, Any]], name: str, base: Mapping[str, Any]
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    """``base`` with every ramp on a projector cue (the challenge material detector's two and life
    signs' ``challenge_soft_dots``) refitted on ``train`` rows read on region ``name`` (pad-eval's
    rule, ``fit_ramps``' for these; the as-run patterns only, one row per presentation)."""
    from agent.liveness.detectors import DETECTORS, Ramp
    from hil.pad_fit import _values, fit_ramp
    recs = [_with_region(r["record"], r["regions"].get(name)) for r in train
            if r["pattern_seed"] is None and _judged(r)]
    rule_of = {n: (rule, q) for rule, ns, q in DETECTORS.values() for n in ns}
    ramps = dict(base)
    notes = {}
    for n in [n for n, r in ramps.items() if r.cue.startswith("projector_")]:
        r = ramps[n]
        live, attack = _values(recs, r.cue, None), _values(recs, r.cue, r.answers)
        a, li, how = fit_ramp(rule_of[n][0], live, attack, rule_of[n][1])
        ramps[n] = Ramp(r.cue, round(a, 5), round(li, 5), r.answers)
        notes[n] = f"{how} [{a:.5f}, {li:.5f}] ({live.size} live, {attack.size} attacks)"
    return ramps, notes


def _said(m: Mapping[str, Any]) -> str:
    def f(k: str) -> str:
        v = m.get(k)
        return "-" if v is None else f"{v:.3f}"
    return (f"sharpness {f('projector_sharpness')} (floor {f('projector_sharpness_floor')}), speckle "
            f"{f('projector_speckle')} [{f('projector_speckle_low')}, {f('projector_speckle_high')}], floor "
            f"{f('projector_clipped_floor_low')}, pairs {m.get('projector_pairs')}/{m.get('projector_clipped_pairs')}")


def gate(train_paths: list[Path], dev_paths: list[Path], before: Path | None, keep: tuple[str, ...] = (),
         before_region: str = BEFORE) -> None:
    """Each row scored as main's judge scored it (region ``before_region``, ramps of ``before``, a
    calibration file; default the active one) and on each region with its projector ramps refitted
    on the train rows (those named in ``keep`` left as ``before`` has them); live refused and
    attacks accepted per family and species, and every row whose verdict changed with its readings
    either side."""
    from agent.liveness.fusion import load_thresholds
    from hil.pad_fit import rescore
    live_min = load_thresholds("kiosk", challenged=True).live_min
    train = _rows(train_paths)
    rows = [r for r in train + _rows(dev_paths) if _judged(r) and r["pattern_seed"] is None]
    print(f"threshold {live_min}; rows {len(rows)}")
    base = _ramps_of(before)
    plans: dict[str, Any] = {"as judged": base}
    for name in [n for n in _variants() if any(n in r["regions"] for r in rows)]:
        ramps, notes = fitted_ramps(train, name, base)
        for k in keep:
            ramps[k], notes[k] = base[k], f"kept {base[k].attack}, {base[k].live} (fitted: {notes[k]})"
        print(f"{name}: " + "; ".join(f"{k}: {v}" for k, v in notes.items()))
        plans[name] = ramps
    for plan, ramps in plans.items():
        def scored(r: dict[str, Any], plan: str = plan, ramps: Any = ramps) -> tuple[float, float, str]:
            rec = r["record"]
            old = _with_region(rec, r["regions"].get(before_region))
            was = rescore(old, base)
            now = was if plan == "as judged" else rescore(_with_region(rec, r["regions"].get(plan)), ramps)
            return was, now, f"{_said(old['cues'])} -> {_said(r['regions'].get(plan) or {})}"
        tally(plan, rows, live_min, scored)


def tally(plan: str, rows: list[dict[str, Any]], live_min: float,
          scored: Callable[[dict[str, Any]], tuple[float, float, str]], moved: float = math.inf) -> None:
    """Prints live refused and attacks accepted per family and species under ``plan`` (``scored``:
    a row's score before and under it, and its readings said), and each row whose verdict changed or
    whose score moved by ``moved`` or more."""
    counts: dict[tuple[str, str], list[int]] = {}
    changed = []
    for r in rows:
        rec = r["record"]
        was, now, said = scored(r)
        c = counts.setdefault((rec["split"], rec["species"]), [0, 0])
        c[0] += 1
        ok = now >= live_min
        c[1] += (not ok) if rec["species"] == "live" else ok
        if ok != (was >= live_min) or abs(now - was) >= moved:
            changed.append(f"{rec['key']} {'accepted' if ok else 'refused'} {was:.3f} -> {now:.3f}: {said}")
    print(f"\n{plan}: " + ", ".join(f"{sp}/{spc} {e}/{n} {'refused' if spc == 'live' else 'accepted'}"
                                   for (sp, spc), (n, e) in sorted(counts.items())))
    for line in changed:
        print("  " + line)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.skin_area")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("specs", nargs="+", help="split:species:index")
    r.add_argument("--seeds", default="", help="dot-pattern seeds to run each presentation with as well")
    r.add_argument("--frames", type=int, default=32)
    r.add_argument("--regions", default="", help="only these regions (comma-separated; default: every one)")
    p = sub.add_parser("report")
    p.add_argument("rows", nargs="+", type=Path)
    g = sub.add_parser("gate")
    g.add_argument("train", nargs="+", type=Path)
    g.add_argument("--dev", nargs="*", type=Path, default=[])
    g.add_argument("--before", type=Path, default=None,
                   help="the calibration file main's judge used (default: the active one)")
    g.add_argument("--keep", default="", help="ramps not refitted (comma-separated names, e.g. projector_speckle)")
    g.add_argument("--before-region", default=BEFORE, help="the region main's judge reads (default %(default)s)")
    a = ap.parse_args(argv)
    if a.cmd == "run":
        run(a.out, a.specs, seeds=tuple(int(x) for x in a.seeds.split(",") if x.strip()), frames=a.frames,
            only=tuple(x for x in a.regions.split(",") if x.strip()))
    elif a.cmd == "report":
        report(a.rows)
    else:
        gate(a.train, a.dev, a.before, tuple(k for k in a.keep.split(",") if k), a.before_region)


if __name__ == "__main__":
    main(sys.argv[1:])
