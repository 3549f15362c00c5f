"""texture26: the dots' sharpness with the unlit frame's texture taken out (``features.texture_out``),
against main 4d96aa7's reading, on the very same frames (issue 14, review 25's attack B on textured
surfaces; docs/liveness.md, "Attack B on textured surfaces: the unlit texture taken out").

``run`` presents each ``split:species:index`` as pad-eval runs it (``hil.pad_records.run_presentation``,
the 32-frameset challenge window, the judge on the material region) with this tree's judge, and reads
every on-off pair again as main read it (``_PairImages.texture`` unset: the difference's shape as it
is), pooled as the judge pools (``ProjectorMeasure.pool``). A row holds pad-eval's record (no face
data) and both readings' projector cues (``bench.skin_area.projector_cues``, the eye discs' included).

``gate`` refits the ramps on the dots' sharpness (``REFIT``: the challenge material detector's, life
signs' ``challenge_soft_dots``, the eye region's ``eye_dots``) on the train rows' texture-out readings
with pad-eval's rule (``hil.pad_fit.fit_ramp`` via ``bench.skin_area.fitted_ramps``), the others as
``--before`` has them, and rescores every row (``hil.pad_fit.rescore``): main (main's reading, main's
ramps), texture-out at main's ramps, texture-out refitted; live refused and attacks accepted per
family and species, and each row whose verdict changed.

    PYTHONPATH=. nice -n 19 python -m bench.texture_out run OUT.jsonl train:live:0 train:mask:1 ...
    python -m bench.texture_out gate TRAIN.jsonl [--dev DEV.jsonl ...] [--before CAL] [--pin] [--keep eye_dots]
        [--write FILE]
    python -m bench.texture_out cost [--reps 9] [--size 200]

``cost``: a pair's reading with and without the texture taken out, as a ratio in one process.

Never on the unseen family (``hil.padeval.UNSEEN_SPLITS``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# The ramps on the dots' sharpness on the on-off pairs: what the texture-out moves.
REFIT = ("projector_sharpness", "challenge_soft_dots", "eye_dots")
MAIN, TEXTURE = "main", "texture"


class _Probe:
    """For one run: every pair the judge measures (``judge.projector_light_on``) measured again with
    main's reading (no texture taken out), and every pooling pooled again from those."""

    def __init__(self) -> None:
        from agent.liveness import features as F
        from agent.liveness import judge as J
        self.F, self.J = F, J
        self.lights: dict[int, tuple[Any, Any]] = {}
        self.measure: Any = None
        self._light_on = J.projector_light_on
        self._texture = F._PairImages.__dict__["texture"]
        self._pool = F.ProjectorMeasure.pool.__func__  # type: ignore[attr-defined]
        J.projector_light_on = self._wrap_light_on
        F.ProjectorMeasure.pool = classmethod(self._wrap_pool)  # type: ignore[method-assign, assignment]

    def close(self) -> None:
        self.J.projector_light_on = self._light_on
        self.F._PairImages.texture = self._texture  # type: ignore[method-assign]
        self.F.ProjectorMeasure.pool = classmethod(self._pool)  # type: ignore[method-assign, assignment]

    def _wrap_light_on(self, patch: Any, lit: Any, dark: Any, same: Any = None, reference: Any = None) -> Any:
        out = self._light_on(patch, lit, dark, same, reference)
        self.F._PairImages.texture = property(lambda _self: None)  # type: ignore[method-assign, assignment]
        try:
            self.lights[id(out)] = (out, self._light_on(patch, lit, dark, same, reference))
        finally:
            self.F._PairImages.texture = self._texture  # type: ignore[method-assign]
        return out

    def _wrap_pool(self, cls: Any, lights: list[Any]) -> Any:
        out = self._pool(cls, lights)
        got = [self.lights.get(id(x)) for x in lights]
        if lights and all(g is not None and g[0] is x for g, x in zip(got, lights, strict=True)):
            self.measure = self._pool(cls, [g[1] for g in got if g is not None])
        return out


def run(out: Path, specs: list[str], frames: int) -> None:
    from agent.liveness.fusion import load_thresholds
    from agent.quality import QualityGate
    from bench.sharpness_sampling import _uri, present_probed
    from bench.skin_area import projector_cues
    from hil.padeval import refuse_unseen
    refuse_unseen(specs)
    gate_, thresholds = QualityGate(), load_thresholds("kiosk", challenged=True)
    done = set()
    if out.exists():
        done = {json.loads(line)["bench_key"] for line in out.read_text().splitlines() if line.strip()}
    for spec in specs:
        if spec in done:
            continue
        split, species, index = spec.split(":")
        probe = _Probe()
        rec = present_probed(probe, None, split, species, int(index), _uri(split, species, int(index), {}),
                             frames=frames, gate=gate_, thresholds=thresholds)
        cues = rec.get("cues") or {}
        regions = {TEXTURE: {k: v for k, v in cues.items() if k.startswith("projector_")}}
        if probe.measure is not None:
            regions[MAIN] = projector_cues(probe.measure)
        row = {"bench_key": spec, "spec": spec, "pattern_seed": None, "record": rec, "regions": regions}
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        m = regions.get(MAIN, {})
        print(spec, rec.get("outcome"), rec.get("score"),
              {k: (m.get(k), cues.get(k)) for k in ("projector_sharpness", "projector_sharpness_eyes")}, flush=True)


def gate(train_paths: list[Path], dev_paths: list[Path], before: Path | None, write: Path | None,
         pin: bool = False, keep: tuple[str, ...] = ()) -> None:
    """``pin``: each refitted ramp's attack end held at ``before``'s (fitted on a larger attack sample;
    the texture-out never lowers a hard surface's reading, so it stays under them): pad-eval's rule
    with that end as the only attack, the live end refitted. ``keep``: ramps left as ``before`` has them."""
    import numpy as np

    from agent.liveness.detectors import DETECTORS, Ramp
    from agent.liveness.fusion import load_thresholds
    from bench.skin_area import _judged, _ramps_of, _rows, _said, _with_region, fitted_ramps, tally
    from hil.pad_fit import _values, fit_ramp, rescore
    live_min = load_thresholds("kiosk", challenged=True).live_min
    train = [r for r in _rows(train_paths) if MAIN in r["regions"] or not _judged(r)]
    rows = [r for r in train + _rows(dev_paths) if _judged(r)]
    base = _ramps_of(before)
    fitted, notes = fitted_ramps(train, TEXTURE, base)
    if pin:
        rule_of = {n: (rule, q) for rule, ns, q in DETECTORS.values() for n in ns}
        recs = [_with_region(r["record"], r["regions"].get(TEXTURE)) for r in train if _judged(r)]
        for k in REFIT:
            live = _values(recs, base[k].cue, None)
            a, li, how = fit_ramp(rule_of[k][0], live, np.array([base[k].attack]), rule_of[k][1])
            fitted[k] = Ramp(base[k].cue, round(a, 5), round(li, 5), base[k].answers)
            notes[k] = f"{how} [{a:.5f}, {li:.5f}] ({live.size} live; attack end main's, pinned)"
    for k in keep:
        fitted[k], notes[k] = base[k], f"kept [{base[k].attack}, {base[k].live}] (fitted: {notes[k]})"
    ramps = {k: (fitted[k] if k in REFIT else base[k]) for k in base}
    print(f"threshold {live_min}; rows {len(rows)} ({len(train)} train)")
    for k in REFIT:
        print(f"  {k}: main [{base[k].attack}, {base[k].live}] -> {notes[k]}")
    plans = {"main": (MAIN, base), "texture-out, main's ramps": (TEXTURE, base),
             "texture-out, refitted": (TEXTURE, ramps)}
    for plan, (reading, r) in plans.items():
        def scored(row: dict[str, Any], reading: str = reading, r: Any = r) -> tuple[float, float, str]:
            rec = row["record"]
            old = _with_region(rec, row["regions"].get(MAIN))
            new = _with_region(rec, row["regions"].get(reading))
            return (rescore(old, base), rescore(new, r),
                    f"{_said(old['cues'])}, eyes {_eyes(old)} -> {_said(new['cues'])}, eyes {_eyes(new)}")
        tally(plan, rows, live_min, scored, moved=0.05 if plan != "main" else float("inf"))
    if write is not None:
        cal = json.loads((before or _calibration_path()).read_text())
        for k in (k for k in REFIT if k not in keep):
            cal["ramps"][k] = [ramps[k].attack, ramps[k].live]
            cal.setdefault("ramps_fit", {})[k] = (f"{notes[k]} (train, challenged, the dots' sharpness with the unlit "
                                                  "texture taken out: `python -m bench.texture_out gate`, "
                                                  "docs/liveness.md \"Attack B on textured surfaces\")")
        write.write_text(json.dumps(cal, indent=2) + "\n")
        print(f"\nwritten {write}")


def cost(reps: int, size: int) -> None:
    """What the texture-out costs a pair's reading: ``features.pair_light`` on one synthetic pair (a
    ``size`` px square crop, the material region and eye discs in it, a noise pair) with and without
    ``_PairImages.texture``, alternated in this process; the ratio of each round's times."""
    import time

    import numpy as np

    from agent.liveness import features as F
    rng = np.random.default_rng(0)
    skin, eyes = np.zeros((size, size), bool), np.zeros((size, size), bool)
    skin[size // 3:-size // 8, size // 6:-size // 6] = True
    eyes[size // 5:size // 3 - 4, size // 6:-size // 6] = True
    on, off, a, b = (rng.normal(m, 4, (size, size)).astype(np.float32) for m in (60, 30, 30, 30))
    texture = F._PairImages.__dict__["texture"]

    def timed(n: int = 10) -> float:
        t = time.perf_counter()
        for _ in range(n):
            F.pair_light(on, off, skin, (a, b), eyes=eyes)
        return time.perf_counter() - t
    ratios = []
    try:
        for _ in range(reps):
            F._PairImages.texture = texture  # type: ignore[method-assign]
            with_out = timed()
            F._PairImages.texture = property(lambda _self: None)  # type: ignore[method-assign, assignment]
            ratios.append(with_out / timed())
    finally:
        F._PairImages.texture = texture  # type: ignore[method-assign]
    print(f"pair_light, {size} px crop: texture-out / main {[round(r, 2) for r in ratios]}, "
          f"median {float(np.median(ratios)):.2f}")


def _eyes(rec: dict[str, Any]) -> str:
    v = (rec.get("cues") or {}).get("projector_sharpness_eyes")
    return "-" if v is None else f"{v:.3f}"


def _calibration_path() -> Path:
    from agent.liveness.fusion import CALIBRATION_PATH
    return CALIBRATION_PATH


def main(argv: list[str]) -> None:
    from agent.liveness import features
    # The reading this bench measures, on: the judge runs with it off until the eye ramp is refitted
    # with it (``features.TEXTURE_OUT``); "main" below is the difference's shape as it is.
    features.TEXTURE_OUT = True
    ap = argparse.ArgumentParser(prog="python -m bench.texture_out")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("specs", nargs="+", help="split:species:index")
    r.add_argument("--frames", type=int, default=32)
    g = sub.add_parser("gate")
    g.add_argument("train", nargs="+", type=Path)
    g.add_argument("--dev", nargs="*", type=Path, default=[])
    g.add_argument("--before", type=Path, default=None,
                   help="the calibration file main's judge used (default: the active one)")
    g.add_argument("--write", type=Path, default=None, help="write --before with the refitted ramps to this file")
    g.add_argument("--pin", action="store_true", help="hold each refitted ramp's attack end at --before's")
    g.add_argument("--keep", default="", help="ramps of REFIT left as --before has them (comma-separated)")
    c = sub.add_parser("cost")
    c.add_argument("--reps", type=int, default=9)
    c.add_argument("--size", type=int, default=200)
    a = ap.parse_args(argv)
    if a.cmd == "run":
        run(a.out, a.specs, a.frames)
    elif a.cmd == "cost":
        cost(a.reps, a.size)
    else:
        gate(a.train, a.dev, a.before, a.write, a.pin, tuple(k for k in a.keep.split(",") if k))


if __name__ == "__main__":
    main(sys.argv[1:])
