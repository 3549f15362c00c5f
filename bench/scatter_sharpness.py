"""Issue 14, physical scattering: does ``projector_sharpness`` separate skin from hard masks when the
simulator scatters each dot over millimetres on the surface (``scatter=physical``: width in pixels
``σ_mm · fx / z``) instead of a fixed width in pixels, across distance and camera? And does a
measure normalised by distance and focal length (the extra blur converted to millimetres) spread
less?

``run``: pad-eval's own presentations (``families.presentation_query``: identity, light, lux, pose,
background), with the camera, the distance and the scattering model set, each run as pad-eval runs
it (``hil.pad_records.run_presentation``: the camera enrolled under the same model, the quality phase,
the challenge window, the judge). One JSON record a line, pad-eval's record plus ``scatter``,
``camera``, ``distance_mm``; a record already in the file (same key) is not run again::

    nice -n 19 .venv/bin/python -m bench.scatter_sharpness run OUT.jsonl --split train \\
        --scatter physical --cameras d435,d415 --distances 350,500,700 \\
        --species live,mask,head_model --per-cell 4

``scenes``: the same scenes without the quality gate or the judge (the gate refuses faces beyond
about 0.52 m: their IPD falls under 60 px), so distances up to 0.7 m can be seen: every on-off pair's
``dot_shape`` sharpness on the pixels whose measured depth lies within 4 cm of the set distance,
eroded 6 px (``bench.enrol_sharpness.scene_pairs``, the unlit noise pair removed as the judge
removes it), median over the pairs. One JSON line a scene::

    nice -n 19 .venv/bin/python -m bench.scatter_sharpness scenes OUT.jsonl --scatter physical \
        --cameras d435,d415 --distances 350,500,700 --species live,mask,head_model --per-cell 3

``report``: per camera, distance and species group (live; ``detectors.HARD_3D``; silicone masks
apart) the judged presentations' ``projector_sharpness`` (n, median, range), what main's absolute
ramp does with them, and the same for the normalised measure (``blur_mm``)::

    .venv/bin/python -m bench.scatter_sharpness report OUT.jsonl [--distances 350,450,520]

``blur_mm``: a sharpness is mapped to the Gaussian width σ (px) of spots whose on-off difference
``features.dot_shape`` reads at that sharpness (a table made once from the simulator's own
camera-independent dot image, ``DotPattern.make``, blurred at known σ, noiseless), the camera's
hard-surface width σ_0 (the same table at the sharpness of the hard surface itself: σ 0, i.e. the
dot image) removed in quadrature, and the rest taken to the surface: ``sqrt(σ² - σ_0²) · z / fx``
with z the presentation's distance and fx the IR imager's. The judge knows both (depth, intrinsics).

Nothing here is used by the agent.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agent.liveness.detectors import HARD_3D, RAMPS
from agent.liveness.features import dot_shape

GROUPS = {"live": ("live",), "hard_3d": HARD_3D, "silicone_mask": ("silicone_mask",)}


def presentation(split: str, species: str, index: int, camera: str, distance_mm: int, scatter: str,
                 core: float | None = None) -> Any:
    from drivers.sim.families import presentation_query
    from hil.pad_presentations import Presentation
    q = presentation_query(split, species, index)
    q.update(camera=camera, distance_mm=str(distance_mm))
    if scatter != "fixed":
        q["scatter"] = scatter
    if core is not None:
        q["scatter_core"] = f"{core:g}"
    uri = "sim://?" + "&".join(f"{k}={v}" for k, v in q.items())
    kind = "bona_fide" if species == "live" else "attack"
    return Presentation(kind, species, split, index, uri)


def run(out: Path, *, split: str, scatter: str, cameras: list[str], distances: list[int], species: list[str],
        per_cell: int, frames: int, core: float | None = None) -> None:
    from agent.liveness.fusion import load_thresholds
    from agent.quality import QualityGate
    from hil.pad_records import run_presentation
    done = set()
    if out.exists():
        done = {json.loads(line)["bench_key"] for line in out.read_text().splitlines() if line.strip()}
    gate, thresholds = QualityGate(), load_thresholds("kiosk", challenged=True)
    for i in range(per_cell):
        for cam in cameras:
            for d in distances:
                for sp in species:
                    model = scatter if core is None else f"{scatter}-core{core:g}"
                    key = f"{split}/{model}/{cam}/{d}/{sp}/{i}"
                    if key in done:
                        continue
                    p = presentation(split, sp, i, cam, d, scatter, core)
                    rec = run_presentation(p, frames=frames, passive=False, gate=gate, thresholds=thresholds)
                    rec.update(bench_key=key, scatter=model, camera=cam, distance_mm=d)
                    with out.open("a") as fh:
                        fh.write(json.dumps(rec) + "\n")
                    s = (rec.get("cues") or {}).get("projector_sharpness")
                    print(key, rec.get("outcome"), rec.get("reason", ""), s, flush=True)


def scenes(out: Path, *, split: str, scatter: str, cameras: list[str], distances: list[int], species: list[str],
           per_cell: int) -> None:
    from bench.enrol_sharpness import scene_pairs
    done = set()
    if out.exists():
        done = {json.loads(line)["bench_key"] for line in out.read_text().splitlines() if line.strip()}
    for i in range(per_cell):
        for cam in cameras:
            for d in distances:
                for sp in species:
                    key = f"scene/{split}/{scatter}/{cam}/{d}/{sp}/{i}"
                    if key in done:
                        continue
                    p = presentation(split, sp, i, cam, d, scatter)
                    pairs = scene_pairs(p.uri)
                    v = [x["sharpness"] for x in pairs if np.isfinite(x["sharpness"])]
                    rec = {"bench_key": key, "uri": p.uri, "scatter": scatter, "camera": cam, "distance_mm": d,
                           "species": sp, "pairs": len(v), "sharpness": float(np.median(v)) if v else None,
                           "clipped": float(np.median([x["clipped"] for x in pairs])) if pairs else None}
                    with out.open("a") as fh:
                        fh.write(json.dumps(rec) + "\n")
                    print(json.dumps(rec), flush=True)


# --- sharpness -> equivalent Gaussian width ---------------------------------------------------------

_SIGMAS = np.round(np.arange(0.0, 4.01, 0.1), 2)


def _sharpness_table(fx: float) -> tuple[np.ndarray, np.ndarray]:
    """(σ px, dot_shape sharpness) of the simulator's dot image at focal length ``fx`` blurred by a
    Gaussian of σ: noiseless, over the whole image, energy kept (what a surface with only scattering
    and no texture would give on an on-off difference)."""
    from drivers.sim.sensor import DotPattern
    img = DotPattern.make(640, 480, fx=fx).image.astype(np.float32) * 100.0
    mask = np.zeros(img.shape, bool)
    mask[40:-40, 40:-40] = True
    out = []
    for s in _SIGMAS:
        b = img if s == 0 else cv2.GaussianBlur(img, (0, 0), float(s))
        out.append(dot_shape(b, mask)[0])
    return _SIGMAS.astype(np.float64), np.array(out)


def blur_mm(sharpness: float, fx: float, z_m: float, table: tuple[np.ndarray, np.ndarray]) -> float:
    """The extra blur, in millimetres on the surface, that a ``sharpness`` shows over the dot image's
    own (the table's σ 0)."""
    sig, sh = table
    # sharpness falls as σ grows: interpolate on the reversed (increasing) arrays
    s = float(np.interp(sharpness, sh[::-1], sig[::-1]))
    return s * z_m / fx * 1000.0


def _fx(camera: str) -> float:
    from drivers.sim.profiles import PROFILES
    return float(PROFILES[camera].depth_intrinsics.fx)


def _stats(v: list[float]) -> dict[str, Any]:
    if not v:
        return {"n": 0}
    a = np.array(v)
    return {"n": int(a.size), "median": round(float(np.median(a)), 3), "min": round(float(a.min()), 3),
            "max": round(float(a.max()), 3)}


def report(paths: list[Path], distances: set[int] | None = None) -> None:
    ramp = RAMPS["projector_sharpness"]
    rows: dict[tuple[str, str, int, str], list[dict[str, Any]]] = defaultdict(list)
    outcomes: dict[tuple[str, str, int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for path in paths:
        for line in path.read_text().splitlines():
            r = json.loads(line)
            grp = next((g for g, members in GROUPS.items() if r["species"] in members), None)
            if grp is None:
                continue
            if distances is not None and int(r["distance_mm"]) not in distances:
                continue
            k = (r["scatter"], r["camera"], int(r["distance_mm"]), grp)
            if "pairs" in r:                       # a ``scenes`` record: no gate, no verdict
                r = {**r, "outcome": "scene" if r["sharpness"] is not None else "no_pair",
                     "cues": {"projector_sharpness": r["sharpness"]}}
            outcome = r.get("outcome", "?")
            outcomes[k][outcome if outcome != "not_acquired" else "fta:" + str(r.get("reason"))] += 1
            s = (r.get("cues") or {}).get("projector_sharpness")
            if r.get("outcome") in ("accepted", "rejected", "scene") and s is not None and np.isfinite(s):
                rows[k].append({"s": float(s), "outcome": r["outcome"]})
    tables = {cam: _sharpness_table(_fx(cam)) for cam in {k[1] for k in rows}}
    for cam, (sig, sh) in tables.items():
        print(json.dumps({"camera": cam, "fx": _fx(cam), "table_sigma_px": sig[::5].tolist(),
                          "table_sharpness": np.round(sh[::5], 3).tolist()}))
    pooled: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for k in sorted(rows):
        scatter, cam, d, grp = k
        s = [x["s"] for x in rows[k]]
        mm = [blur_mm(x, _fx(cam), d / 1000.0, tables[cam]) for x in s]
        pooled[(scatter, grp)]["s"] += s
        pooled[(scatter, grp)]["mm"] += mm
        print(json.dumps({"scatter": scatter, "camera": cam, "distance_mm": d, "group": grp,
                          "outcomes": dict(outcomes[k]), "sharpness": _stats(s), "blur_mm": _stats(mm),
                          "past_live_end": int(sum(x > ramp.live for x in s)),
                          "accepted": int(sum(x["outcome"] == "accepted" for x in rows[k]))}))
    for (scatter, grp), v in sorted(pooled.items()):
        print(json.dumps({"scatter": scatter, "group": grp, "pooled": True, "sharpness": _stats(v["s"]),
                          "blur_mm": _stats(v["mm"])}))
    # Spread across conditions: how far apart the live faces' per-(camera, distance) medians lie,
    # in units of the gap between the pooled live and hard medians (unit-free, so the forms compare).
    for scatter in sorted({k[0] for k in pooled}):
        for form in ("s", "mm"):
            cells: dict[str, float] = {}
            for k, judged in rows.items():
                if k[0] == scatter and k[3] == "live" and judged:
                    vals = [x["s"] for x in judged] if form == "s" else \
                        [blur_mm(x["s"], _fx(k[1]), k[2] / 1000.0, tables[k[1]]) for x in judged]
                    cells[f"{k[1]}@{k[2]}"] = float(np.median(vals))
            live_pool, hard_pool = pooled.get((scatter, "live")), pooled.get((scatter, "hard_3d"))
            if cells and live_pool and hard_pool:
                gap = abs(float(np.median(hard_pool[form])) - float(np.median(live_pool[form])))
                print(json.dumps({"scatter": scatter, "form": "sharpness" if form == "s" else "blur_mm",
                                  "live_cell_medians": {c: round(m, 3) for c, m in sorted(cells.items())},
                                  "live_cell_median_spread_over_median_gap":
                                      round((max(cells.values()) - min(cells.values())) / gap, 3)}))
    # Separation in each form: the gap between the groups over the live faces' spread.
    for scatter in sorted({k[0] for k in pooled}):
        live, hard = pooled.get((scatter, "live")), pooled.get((scatter, "hard_3d"))
        if not live or not hard:
            continue
        for form, sign in (("s", 1.0), ("mm", -1.0)):
            lv, hd = np.array(live[form]) * sign, np.array(hard[form]) * sign   # larger = harder
            iqr = float(np.quantile(lv, 0.75) - np.quantile(lv, 0.25))
            print(json.dumps({"scatter": scatter, "form": "sharpness" if form == "s" else "blur_mm",
                              "live_n": int(lv.size), "hard_n": int(hd.size),
                              "gap": round(float(hd.min() - lv.max()), 4),
                              "gap_over_live_range": round(float((hd.min() - lv.max()) / (lv.max() - lv.min())), 3),
                              "live_iqr": round(iqr, 4),
                              "medians_apart_over_live_iqr": round(float((np.median(hd) - np.median(lv)) / iqr), 2)}))


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="bench.scatter_sharpness", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    grid = argparse.ArgumentParser(add_help=False)     # the sessions' grid, shared by run and scenes
    grid.add_argument("out", type=Path)
    grid.add_argument("--split", default="train")
    grid.add_argument("--scatter", default="physical", choices=("fixed", "physical"))
    grid.add_argument("--cameras", default="d435,d415")
    grid.add_argument("--distances", default="350,500,700")
    grid.add_argument("--species", default="live,mask,head_model")
    r = sub.add_parser("run", parents=[grid])
    r.add_argument("--per-cell", type=int, default=4)
    r.add_argument("--frames", type=int, default=32)
    r.add_argument("--core", type=float, default=None, help="scatter_core (physical only; default: the sim's)")
    sc = sub.add_parser("scenes", parents=[grid])
    sc.add_argument("--per-cell", type=int, default=3)
    rep = sub.add_parser("report")
    rep.add_argument("records", type=Path, nargs="+")
    rep.add_argument("--distances", default="", help="only these distances (mm, comma-separated)")
    a = ap.parse_args(argv)
    if a.cmd == "run":
        run(a.out, split=a.split, scatter=a.scatter, cameras=a.cameras.split(","),
            distances=[int(x) for x in a.distances.split(",")], species=a.species.split(","),
            per_cell=a.per_cell, frames=a.frames, core=a.core)
    elif a.cmd == "scenes":
        scenes(a.out, split=a.split, scatter=a.scatter, cameras=a.cameras.split(","),
               distances=[int(x) for x in a.distances.split(",")], species=a.species.split(","), per_cell=a.per_cell)
    else:
        report(a.records, {int(x) for x in a.distances.split(",")} if a.distances else None)


if __name__ == "__main__":
    main(sys.argv[1:])
