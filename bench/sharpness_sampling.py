"""How precise a session's dot sharpness is: the same presentation with its dots moved a little.

Issue 14's fresh-family refusals (docs/liveness.md, "The dots' sharpness is a sample of a few dozen
dots"). A session's ``projector_sharpness`` is the median over its on-off pairs of the difference's
fine- over mid-band energy on the skin patches (``features.dot_shape``). The pairs of one session
see the same dots on the same skin (the face holds nearly still for a second), so their agreement
says nothing about how the reading depends on *which* dots happened to land on the patches. This
bench measures that: each presentation is run as pad-eval runs it (``hil.pad_records.run_presentation``:
the camera enrolled, the quality phase, the 32-frameset challenge window, the judge) and again with
its head turned by a fraction of a degree (``--jitter``), which moves the face's skin under the
projector's fixed dots by about a pixel and changes nothing else that the judge reads. Per run it
records the session's sharpness, each two-sided pair's, and the last pair's per-patch readings (each
skin disc alone, noise removed as ``pair_light`` removes it).

    nice -n 19 .venv/bin/python -m bench.sharpness_sampling run OUT.jsonl fresh:live:24 fresh:mask:3 ...
    .venv/bin/python -m bench.sharpness_sampling report OUT.jsonl

``--seeds 1,2,3`` runs each presentation again under the dot pattern drawn with each seed (the
simulator's cameras project seed 7's): the same face, pose, light and challenge schedule, other dots
on the patches; the camera is enrolled again under each pattern in the process (the reference's disk
cache is off while a pattern is swapped, since its key cannot see the patch; the camera's own pattern's
runs use it). ``--offset M`` runs with every profile's projector offset set to M metres (the dots land
elsewhere on the face; the optics are as they were); ``--set k=v`` sets a URI key (``fringe=0``,
``yaw=-13.7``). Each row also has the session's ``projector_sharpness_ratio`` and each pair's
``reference`` (the recorded pattern's own reading on the pair's skin pixels). Diagnosis only: it changes
no judge code and records no image.

    .venv/bin/python -m bench.sharpness_sampling ratio-scored [--eyes] [--either] [--max-unmatched U] LIVE ATTACKS
    .venv/bin/python -m bench.sharpness_sampling ratio-fit [--eyes] TRAIN_LIVE.jsonl TRAIN_ATTACKS.jsonl
    .venv/bin/python -m bench.sharpness_sampling rerun OUT.jsonl LIVE_ALL.jsonl ATTACKS.jsonl --eye-refused --sample N
    nice -n 19 .venv/bin/python -m bench.sharpness_sampling injector OUT.jsonl train:mask:0 ... [--jitter-mm 2,5]
    .venv/bin/python -m bench.sharpness_sampling injector-report OUT.jsonl --max-unmatched U --attack-end A

``ratio-scored`` rescored stored records with the ratio's ramp (``--max-unmatched``: only where the dots fit the
pattern the depth predicts); ``ratio-fit`` the ratio's ramp and that gate from train records only; ``injector``
each pair read again with the patch's depth moved as an injector on the camera link would move it
(docs/liveness.md, "The ratio gated by the pattern's fit"). ``--eyes``: the same for the discs over the eyes'
ratio (``projector_sharpness_eyes_ratio`` in ``eye_dots``' place, fitted against the printed eyes); ``rerun``
stored records' presentations judged again for cues they do not carry (docs/liveness.md, "The eye discs'
reference reading").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_JITTER = (-1.0, -0.5, 0.5, 1.0)


def _uri(split: str, species: str, index: int, sets: dict[str, str]) -> str:
    from bench.pair_glints import with_keys
    from hil.pad_presentations import presentation_uri
    return with_keys(presentation_uri(split, species, index), sets)


class _Probe:
    """Wraps ``features.pair_light`` and ``ProjectorMeasure.pool`` for one run: each pair's readings
    and the last pair's per-patch sharpness."""

    def __init__(self) -> None:
        from agent.liveness import features as F
        self.F = F
        self.pairs: list[list[dict[str, Any]]] = []
        self.patches: list[dict[str, Any]] = []
        measure: Any = F.ProjectorMeasure
        self._measure = measure
        self._pair_light, self._pool = F.pair_light, measure.pool.__func__
        F.pair_light = self._wrap_pair_light
        measure.pool = classmethod(self._wrap_pool)

    def close(self) -> None:
        self.F.pair_light = self._pair_light
        self._measure.pool = classmethod(self._pool)

    def _wrap_pair_light(self, on: np.ndarray, off: np.ndarray, skin: np.ndarray, same: Any = None, **kw: Any) -> Any:
        import cv2
        F = self.F
        out = self._pair_light(on, off, skin, same, **kw)
        if same is not None and skin.any():
            on2, off2, skin2, same2, _ = F.without_glints(on, off, skin, same)
            a, b = same2
            m_same = float((a[skin2].mean() + b[skin2].mean()) / 2)
            scale = (float(on2[skin2].mean()) + float(off2[skin2].mean())) / max(2.0 * m_same, 1.0)
            diff, nd = on2 - off2, a - b
            n, lab = cv2.connectedComponents(skin2.astype(np.uint8))
            self.patches = [{"pixels": int((lab == i).sum()),
                             "sharpness": round(F.dot_shape(diff, lab == i, nd, scale)[0], 4)} for i in range(1, n)]
        return out

    def _wrap_pool(self, cls: Any, lights: list[Any]) -> Any:
        # ``reference_sharpness``: the recorded pattern's own reading on the pair's skin pixels
        # (``features.reference_dot_shape``), NaN without a dot reference.
        nan = float("nan")
        self.pairs.append([{"sharpness": round(float(x.sharpness), 4), "one_sided": bool(x.one_sided),
                            "pixels": int(x.pixels),
                            "reference": round(float(getattr(x, "reference_sharpness", nan)), 4)}
                           for x in lights if np.isfinite(x.contrast2)])
        return self._pool(cls, lights)


def _pattern_seed(seed: int | None) -> Any:
    """Make the simulator's cameras project the dot pattern drawn with ``seed`` (None: their own, 7);
    returns the undo. Until the undo the enrolment's disk cache is off (``CAPTURE_AGENT_CACHE=off``): its key
    cannot see the swapped pattern, so an enrolment made under it must not be stored or read there (fix34: the
    cache was switched off by ``run`` for the whole process, and by no one for another caller)."""
    from drivers.sim.sensor import DotPattern
    original = DotPattern.make.__func__  # type: ignore[attr-defined]
    if seed is None:
        return lambda: None

    def make(cls: Any, width: int, height: int, seed_: int = 7, fx: float | None = None) -> Any:
        return original(cls, width, height, seed, fx) if fx is not None else original(cls, width, height, seed)
    DotPattern.make = classmethod(make)  # type: ignore[method-assign, assignment]
    from hil import pad_enrolment
    pad_enrolment._DOT_REFERENCES.clear()    # enrol the camera again under this pattern (in this process)
    cache = os.environ.get("CAPTURE_AGENT_CACHE")
    os.environ["CAPTURE_AGENT_CACHE"] = "off"

    def undo() -> None:
        DotPattern.make = classmethod(original)  # type: ignore[method-assign, assignment]
        pad_enrolment._DOT_REFERENCES.clear()
        if cache is None:
            os.environ.pop("CAPTURE_AGENT_CACHE", None)
        else:
            os.environ["CAPTURE_AGENT_CACHE"] = cache
    return undo


def present_probed(probe: Any, pseed: int | None, split: str, species: str, index: int, uri: str, *,
                   frames: int, gate: Any, thresholds: Any) -> dict[str, Any]:
    """One presentation as pad-eval runs it (``run_presentation``) under the dot pattern drawn with
    ``pseed`` (None: the camera's own), with ``probe`` reading its pairs; the probe is closed and the
    pattern undone whatever happens. Returns pad-eval's record."""
    from hil.pad_presentations import Presentation
    from hil.pad_records import run_presentation
    undo = _pattern_seed(pseed)
    try:
        kind = "bona_fide" if species == "live" else "attack"
        return run_presentation(Presentation(kind, species, split, index, uri), frames=frames,
                                passive=False, gate=gate, thresholds=thresholds)
    finally:
        probe.close()
        undo()


def run(out: Path, specs: list[str], *, jitter: tuple[float, ...], sets: dict[str, str], offset: float | None,
        frames: int, seeds: tuple[int, ...] = ()) -> None:
    from agent.liveness.fusion import load_thresholds
    from agent.quality import QualityGate
    from drivers.sim import profiles
    from hil.padeval import refuse_unseen
    refuse_unseen(specs)
    if offset is not None:
        for name, p in list(profiles.PROFILES.items()):
            profiles.PROFILES[name] = dataclasses.replace(p, projector_offset_m=offset)
    gate, thresholds = QualityGate(), load_thresholds("kiosk", challenged=True)
    done = set()
    if out.exists():
        done = {json.loads(line)["bench_key"] for line in out.read_text().splitlines() if line.strip()}
    for spec in specs:
        split, species, index = spec.split(":")
        base = _uri(split, species, int(index), sets)
        yaw0 = float(re.search(r"[?&]yaw=([-0-9.]+)", base).group(1))  # type: ignore[union-attr]
        variants = [(0.0, None)] + [(dy, None) for dy in jitter] + [(0.0, sd) for sd in seeds]
        for dy, pseed in variants:
            # dyaw 0 is the presentation's own URI (its nonce, and so its challenge schedule, come from
            # the URI: a jittered run also has another schedule, i.e. other frames as its pairs).
            uri = base if dy == 0.0 else re.sub(r"([?&]yaw=)[-0-9.]+", rf"\g<1>{yaw0 + dy:.2f}", base)
            key = (f"{spec}|{','.join(f'{k}={v}' for k, v in sorted(sets.items()))}|offset={offset}"
                   f"|dyaw={dy:+.2f}" + ("" if pseed is None else f"|pattern={pseed}"))
            if key in done:
                continue
            probe = _Probe()
            rec = present_probed(probe, pseed, split, species, int(index), uri, frames=frames, gate=gate,
                                 thresholds=thresholds)
            cues = rec.get("cues") or {}
            row = {"bench_key": key, "spec": spec, "sets": sets, "offset": offset, "dyaw": dy, "pattern_seed": pseed,
                   "uri": uri,
                   "outcome": rec.get("outcome"), "verdict": rec.get("verdict"), "score": rec.get("score"),
                   "sharpness": cues.get("projector_sharpness"), "speckle": cues.get("projector_speckle"),
                   "ratio": cues.get("projector_sharpness_ratio"),
                   "pairs": probe.pairs[-1] if probe.pairs else [], "patches": probe.patches}
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(key, row["outcome"], row["score"], row["sharpness"], flush=True)


class _DepthInjector:
    """An injector on the camera link who moves the lit frames' depth on the skin patches to move the
    pattern the judge predicts from it (``features.predicted_pattern``), and so the ratio's denominator
    (``reference_dot_shape``), while the IR, and so the dots the camera saw, stays the camera's. Wraps
    the judge's ``projector_light_on``: each pair tested against the dot reference is read as the judge
    reads it, then again with the patch's depth moved by each of ``offsets`` (metres, the same on every
    patch pixel: ``features._patch_depth`` answers with it), recording per pair and offset the fit to
    the pattern (``unmatched``) and the pattern's own reading (``reference``). The judge is handed the
    honest reading; the injector's best choice per pair is worked out afterwards (``injector_report``).
    ``jitters`` (metres): the depth moved on each patch pixel by its own uniform draw within +-the
    amount instead (a fixed seed): the prediction's columns scrambled, not moved as one."""

    def __init__(self, offsets: tuple[float, ...], jitters: tuple[float, ...] = ()) -> None:
        import threading

        from agent.liveness import features as F
        from agent.liveness import judge as J
        self.F, self.J = F, J
        self.moves = [(f"{o * 1000:+g}mm", o, 0.0) for o in offsets] + [(f"jitter{j * 1000:g}mm", 0.0, j)
                                                                          for j in jitters]
        self.local = threading.local()
        self.lock = threading.Lock()
        self.grids: dict[int, tuple[Any, list[list[Any]]]] = {}
        self.pairs: list[list[dict[str, Any]]] = []
        measure: Any = F.ProjectorMeasure
        self._measure = measure
        self._light_on, self._depth, self._pool = J.projector_light_on, F._patch_depth, measure.pool.__func__
        J.projector_light_on = self._wrap_light
        F._patch_depth = self._wrap_depth
        measure.pool = classmethod(self._wrap_pool)

    def close(self) -> None:
        self.J.projector_light_on = self._light_on
        self.F._patch_depth = self._depth
        self._measure.pool = classmethod(self._pool)

    def _wrap_depth(self, reference: Any, patch: Any, lit: Any) -> Any:
        got = self._depth(reference, patch, lit)
        off, jit = getattr(self.local, "move", (0.0, 0.0))
        if got is None or (off == 0.0 and jit == 0.0):
            return got
        raw, good = got
        moved = raw + np.float32(off)
        if jit:
            moved = moved + np.random.default_rng(7).uniform(-jit, jit, raw.shape).astype(np.float32)
        return np.where(good, moved, raw).astype(np.float32), good

    def _wrap_light(self, patch: Any, lit: Any, dark: Any, same: Any = None, reference: Any = None) -> Any:
        light = self._light_on(patch, lit, dark, same, reference)
        if reference is None or not np.isfinite(light.contrast2):
            return light
        plain = reference.reference if isinstance(reference, self.F.PatternFit) else reference
        grid: list[list[Any]] = []
        for label, off, jit in self.moves:
            self.local.move = (off, jit)
            try:
                x = self._light_on(patch, lit, dark, same, plain)
            finally:
                self.local.move = (0.0, 0.0)
            grid.append([label, float(x.unmatched), float(x.reference_sharpness)])
        with self.lock:
            self.grids[id(light)] = (light, grid)
        return light

    def _wrap_pool(self, cls: Any, lights: list[Any]) -> Any:
        with self.lock:
            self.pairs.append([{"sharpness": float(x.sharpness), "one_sided": bool(x.one_sided),
                                "unmatched": float(x.unmatched), "reference": float(x.reference_sharpness),
                                "grid": self.grids[id(x)][1]}
                               for x in lights if np.isfinite(x.contrast2) and id(x) in self.grids])
        return self._pool(cls, lights)


def injector(out: Path, specs: list[str], *, offsets: tuple[float, ...], jitters: tuple[float, ...],
             frames: int) -> None:
    """Each ``split:species:index`` run as pad-eval runs it with ``_DepthInjector`` reading every
    pair again at each depth offset; one row per presentation (the honest cues and each pair's grid)."""
    from agent.liveness.fusion import load_thresholds
    from agent.quality import QualityGate
    from hil.padeval import refuse_unseen
    refuse_unseen(specs)
    gate, thresholds = QualityGate(), load_thresholds("kiosk", challenged=True)
    done = set()
    if out.exists():
        done = {json.loads(line)["spec"] for line in out.read_text().splitlines() if line.strip()}
    for spec in specs:
        if spec in done:
            continue
        split, species, index = spec.split(":")
        probe = _DepthInjector(offsets, jitters)
        rec = present_probed(probe, None, split, species, int(index), _uri(split, species, int(index), {}),
                             frames=frames, gate=gate, thresholds=thresholds)
        cues = rec.get("cues") or {}
        row = {"spec": spec, "outcome": rec.get("outcome"), "verdict": rec.get("verdict"), "score": rec.get("score"),
               "sharpness": cues.get("projector_sharpness"), "ratio": cues.get("projector_sharpness_ratio"),
               "unmatched": cues.get("projector_unmatched"),
               "pairs": probe.pairs[-1] if probe.pairs else []}
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(spec, row["outcome"], row["sharpness"], row["ratio"], row["unmatched"], flush=True)


def injector_best(row: dict[str, Any], max_unmatched: float) -> tuple[float, float, float]:
    """The injector's best over ``row``'s grid, each pair on its own (he sees every frame): the
    session's ratio as the median over the two-sided pairs of the sharpness over the largest
    reference reading among the offsets whose fit to the pattern stays within ``max_unmatched``, and
    the pairs' median ``unmatched`` at those choices: ``(honest ratio, injected ratio, injected
    unmatched)``; the injected ratio NaN when some pair has no such offset (the gate refuses the
    ratio there: not measurable)."""
    honest, best, fits = [], [], []
    nan = float("nan")
    for p in row["pairs"]:
        ok = [(ref, u) for _, u, ref in p["grid"] if math.isfinite(u) and u <= max_unmatched
              and math.isfinite(ref) and ref > 0]
        if p["one_sided"]:
            continue
        if math.isfinite(p["reference"]) and p["reference"] > 0:
            honest.append(p["sharpness"] / p["reference"])
        if not ok:
            return (float(np.median(honest)) if honest else nan), nan, nan
        ref, u = max(ok)
        best.append(p["sharpness"] / ref)
        fits.append(u)
    if not best:
        return nan, nan, nan
    return float(np.median(honest)) if honest else nan, float(np.median(best)), float(np.median(fits))


def injector_report(path: Path, max_unmatched: float, attack_end: float) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    print(f"gate: projector_unmatched <= {max_unmatched}; the ratio's attack end {attack_end}")
    print("| presentation | outcome | sharpness | ratio (judge) | ratio (honest, pairs) | injected ratio | "
          "its unmatched | per move: unmatched/reference (medians over pairs) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        honest, inj, fit = injector_best(r, max_unmatched)
        per_off = []
        two = [p for p in r["pairs"] if not p["one_sided"]]
        for i, (label, _, _) in enumerate(two[0]["grid"] if two else []):
            us = [p["grid"][i][1] for p in two]
            refs = [p["grid"][i][2] for p in two]
            per_off.append(f"{label} {np.median(us):.2f}/{np.median(refs):.2f}")
        flag = " (past the attack end)" if math.isfinite(inj) and inj >= attack_end else ""
        print(f"| {r['spec']} | {r['outcome']} | {r['sharpness']} | {r['ratio']} | {honest:.3f} | {inj:.3f}{flag} | "
              f"{fit:.3f} | {'; '.join(per_off)} |")


def report(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["bench_key"].split("|dyaw=")[0], []).append(r)
    print("| presentation | as run | varied (n, range) | SD over runs | pairs' SD in a run (median) | patches' range |")
    print("|---|---|---|---|---|---|")
    sds: dict[str, list[float]] = {}
    for name, rs in groups.items():
        rs.sort(key=lambda r: (r["dyaw"], r.get("pattern_seed") or 0))
        vals = [r["sharpness"] for r in rs if r["sharpness"] is not None]
        base = next((r["sharpness"] for r in rs if r["dyaw"] == 0.0 and r.get("pattern_seed") is None), None)
        jit = [r["sharpness"] for r in rs if (r["dyaw"] != 0.0 or r.get("pattern_seed") is not None)
               and r["sharpness"] is not None]
        pair_sd = [float(np.std([p["sharpness"] for p in r["pairs"] if not p["one_sided"]], ddof=1))
                   for r in rs if sum(not p["one_sided"] for p in r["pairs"]) >= 2]
        patch = [p["sharpness"] for r in rs for p in r["patches"] if np.isfinite(p["sharpness"])]
        sd = float(np.std(vals, ddof=1)) if len(vals) >= 2 else float("nan")
        sds.setdefault("live" if ":live:" in name else "attack", []).append(sd)
        print(f"| {name} | {base if base is None else f'{base:.3f}'} | {len(jit)}, "
              f"{min(jit) if jit else float('nan'):.3f}-{max(jit) if jit else float('nan'):.3f} | {sd:.3f} | "
              f"{np.median(pair_sd) if pair_sd else float('nan'):.3f} | "
              f"{min(patch) if patch else float('nan'):.2f}-{max(patch) if patch else float('nan'):.2f} |")
    for k, v in sds.items():
        a = np.array([x for x in v if np.isfinite(x)])
        if len(a):
            print(f"{k}: {len(a)} presentations, SD over runs: median {np.median(a):.3f}, "
                  f"pooled (RMS) {float(np.sqrt(np.mean(a ** 2))):.3f}")


# What the ratio stands in for: ``(ramp, the ratio's cue, the instruments it answers)``. The skin's
# patches (``projector_sharpness``, the rigid instruments) or, ``eyes``, the discs over the eyes
# (``eye_dots``, the printed eyes; docs/liveness.md, "The eye discs' reference reading").
def _ratio_target(eyes: bool) -> tuple[str, str, tuple[str, ...]]:
    from agent.liveness import detectors as D
    return (("eye_dots", "projector_sharpness_eyes_ratio", D.PRINTED_EYES) if eyes
            else ("projector_sharpness", "projector_sharpness_ratio", D.HARD_3D))


def ratio_scored(paths: list[Path], attack: float, live: float, either: bool = False,
                 max_unmatched: float = math.inf, eyes: bool = False) -> None:
    """pad-eval records scored twice: as the judge scores them (the ratio reported, not scored), and
    with ``projector_sharpness_ratio``'s ramp ``attack`` -> ``live`` in place of the absolute
    sharpness ramp, and the ratio's floor in place of the absolute floor, in every session whose
    pairs were all tested against the dot reference (``life_signs``' soft dots stay absolute). The
    question docs/liveness.md ("A session's dots") asks of the ratio, answered without rendering.
    ``either``: the larger of the two ramps' evidence (and of the two floors' caps) instead, so the
    ratio can only clear a session the absolute reading holds down, never refuse one it passes
    (docs/liveness.md, "The nineteenth's material and eye-region refusals": measured, not adopted).
    ``max_unmatched``: the ratio says anything only where the session's dots fit the pattern predicted
    from its own depth (``projector_unmatched``) within it; elsewhere the absolute reading stands, so
    an injector who moves the depth to move the ratio's denominator is judged as without the ratio
    (docs/liveness.md, "The ratio gated by the pattern's fit"). ``eyes``: the same for the discs over
    the eyes (``projector_sharpness_eyes_ratio`` in ``eye_dots``' place; no floor there), gated by the
    same fit (the skin's pairs' ``projector_unmatched``: the discs' pattern is predicted from the same
    box's depth) (docs/liveness.md, "The eye discs' reference reading")."""

    from agent.liveness import detectors as D
    from agent.liveness.fusion import load_thresholds
    from hil.metrics import rate
    from hil.pad_fit import rescore
    key, ratio_cue, answers = _ratio_target(eyes)
    ratio = D.Ramp(ratio_cue, attack, live, answers)

    def fits(m: Any) -> bool:
        return m.get("projector_pattern_checked") == 1.0 and m.get("projector_unmatched", math.inf) <= max_unmatched

    class Sharp(D.Ramp):
        def __call__(self, m: Any) -> float:
            checked = fits(m)
            absolute = D.Ramp.__call__(self, m)
            if checked and math.isfinite(m.get(ratio_cue, math.nan)):
                return max(absolute, ratio(m)) if either else ratio(m)
            return absolute

    before = D.active_ramps()
    ab = before[key]
    sharp = Sharp(ab.cue, ab.attack, ab.live, ab.answers)
    after = {**before, key: sharp}
    plain_cap = D.sharpness_cap

    def cap(m: Any, ramp_: D.Ramp) -> float:
        floor = m.get("projector_sharpness_ratio_floor", math.nan)
        if ramp_ is sharp and not eyes and fits(m) and math.isfinite(floor):
            by_ratio = D.ramp(floor, ratio.attack, ratio.live)
            return max(by_ratio, plain_cap(m, ramp_)) if either else by_ratio
        return plain_cap(m, ramp_)

    live_min = load_thresholds("kiosk", challenged=True).live_min
    counts: dict[str, list[int]] = {}
    moved = []
    D.sharpness_cap = cap          # type: ignore[assignment]
    try:
        for path in paths:
            for line in path.read_text().splitlines():
                rec = json.loads(line)
                if rec["outcome"] not in ("accepted", "rejected"):
                    continue
                sb, sa = rescore(rec, before), rescore(rec, after)
                c = counts.setdefault(rec["species"], [0, 0, 0])
                c[0] += 1
                c[1] += sb >= live_min
                c[2] += sa >= live_min
                if abs(sa - sb) > 1e-3:
                    cues = rec.get("cues") or {}
                    moved.append(f"{rec['key']}: {sb:.3f} -> {sa:.3f} ({ab.cue} "
                                 f"{cues.get(ab.cue)}, ratio {cues.get(ratio_cue)})")
    finally:
        D.sharpness_cap = plain_cap
    how = "with the larger of the absolute and the ratio scored" if either else "with the ratio scored"
    how += " on the discs over the eyes" if eyes else ""
    if math.isfinite(max_unmatched):
        how += f" where projector_unmatched <= {max_unmatched}"
    for sp, (n, b, a) in sorted(counts.items()):
        what = "refused" if sp == "live" else "accepted"
        nb, na = (n - b, n - a) if sp == "live" else (b, a)
        ci = " ".join(f"[{r.lower:.1%}, {r.upper:.1%}]" for r in (rate(nb, n), rate(na, n)))
        print(f"{sp}: {what} {nb} of {n} as judged, {na} of {n} {how} (95 % Clopper-Pearson {ci})")
    print("\n".join(moved))


def ratio_fit(paths: list[Path], eyes: bool = False) -> tuple[tuple[float, float, str], float]:
    """The ratio's ramp and the gate on the pattern's fit, from ``train`` records only: the ramp as
    ``hil.pad_fit.fit_ramp`` fits ``projector_sharpness``'s (the rule ``all``, the attacks the rigid
    instruments it answers, ``detectors.HARD_3D``), on the sessions every pair of which was tested;
    the gate at the live faces' ``1 - LIVE_COST`` quantile of ``projector_unmatched`` (the fit a live
    face's own NIR texture leaves: the ratio may clear no session whose dots fit the depth's pattern
    worse than 99 % of train's faces do). Prints both, with each one's margin. ``eyes``: the discs over
    the eyes' ratio against the printed eyes ``eye_dots`` answers, with ``eye_region``'s rule."""
    from agent.liveness import detectors as D
    from hil.pad_fit import LIVE_COST, _values, fit_ramp
    recs = [json.loads(line) for path in paths for line in path.read_text().splitlines() if line.strip()]
    bad = sorted({r["split"] for r in recs} - {"train"})
    if bad:
        raise SystemExit(f"ratio-fit fits on train only, not on {', '.join(bad)}")
    recs = [r for r in recs if (r.get("cues") or {}).get("projector_pattern_checked") == 1.0]
    key, ratio_cue, answers = _ratio_target(eyes)
    live, attack = (_values(recs, ratio_cue, s) for s in (None, answers))
    live, attack = live[np.isfinite(live)], attack[np.isfinite(attack)]
    if not (live.size and attack.size):
        raise SystemExit(f"ratio-fit: no {ratio_cue} on {'lives' if not live.size else ', '.join(answers)}")
    rule = next(rule for rule, names, _ in D.DETECTORS.values() if key in names)
    a, li, how = fit_ramp(rule, live, attack)
    unmatched = _values(recs, "projector_unmatched", None)
    unmatched = unmatched[np.isfinite(unmatched)]
    gate = float(np.quantile(unmatched, 1 - LIVE_COST))
    hard = _values(recs, "projector_unmatched", answers)
    names = ",".join(answers)
    print(f"{ratio_cue} ramp ({rule}, {how}): attack end {a:.5f}, live end {li:.5f}; {live.size} lives "
          f"{live.min():.3f}-{live.max():.3f}, {attack.size} of {names} {attack.min():.3f}-{attack.max():.3f} "
          f"(margin {attack.min() - live.max():+.3f})")
    print(f"gate: projector_unmatched <= {gate:.4f} ({unmatched.size} lives "
          f"{unmatched.min():.3f}-{unmatched.max():.3f}; "
          f"{names} {hard.min():.3f}-{hard.max():.3f})")
    return (a, li, how), gate


def eye_refused(rec: dict[str, Any]) -> bool:
    """A record the eye region refused (its detector under one half)."""
    return rec["outcome"] == "rejected" and (rec.get("detectors") or {}).get("eye_region", 1.0) < 0.5


def rerun(out: Path, sources: list[Path], *, eyes_refused: bool, sample: int, species: tuple[str, ...],
          per_species: int, seed: int, frames: int) -> None:
    """Stored pad-eval records' presentations run again on this judge (``hil.pad_records.run``, its
    records appended to ``out``, resumed by key): every live one the eye region refused
    (``eyes_refused``), ``sample`` other lives drawn with ``seed``, and the first ``per_species``
    of each of ``species``. The URI run is the one the record was judged on (``final_uri`` when it
    followed a prompt). For cues the stored records do not carry (the eye discs' ratio)."""
    from agent.liveness.fusion import load_thresholds
    from hil.pad_presentations import Presentation
    from hil.pad_records import run as run_records
    recs = [json.loads(line) for path in sources for line in path.read_text().splitlines() if line.strip()]
    lives = [r for r in recs if r["kind"] == "bona_fide"]
    chosen = [r for r in lives if eyes_refused and eye_refused(r)]
    rest = [r for r in lives if r not in chosen]
    rng = np.random.default_rng(seed)
    chosen += [rest[i] for i in sorted(rng.choice(len(rest), size=min(sample, len(rest)), replace=False))]
    for sp in species:
        chosen += [r for r in recs if r["species"] == sp][:per_species]
    items = [Presentation(r["kind"], r["species"], r["split"], r["index"], r.get("final_uri") or r["uri"])
             for r in chosen]
    print(f"{len(items)} presentations", flush=True)
    run_records(items, frames=frames, passive=False, thresholds=load_thresholds("kiosk", challenged=True),
                records=out, progress=lambda k, n, rec: print(k, n, rec["key"], rec["outcome"], flush=True))


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.sharpness_sampling")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out", type=Path)
    r.add_argument("specs", nargs="+", help="split:species:index")
    r.add_argument("--jitter", default=",".join(f"{x:g}" for x in DEFAULT_JITTER),
                   help="yaw offsets in degrees, comma-separated ('' for none)")
    r.add_argument("--set", action="append", default=[], help="URI key=value")
    r.add_argument("--offset", type=float, default=None, help="projector offset (m) for every profile")
    r.add_argument("--seeds", default="", help="dot-pattern seeds to run each presentation with as well "
                   "(the simulator's cameras project seed 7): the same face under other dots")
    r.add_argument("--frames", type=int, default=32)
    p = sub.add_parser("report")
    p.add_argument("out", type=Path)
    c = sub.add_parser("ratio-scored", help="pad-eval records scored with the ratio's ramp in place of the absolute")
    c.add_argument("records", nargs="+", type=Path)
    c.add_argument("--ramp", default="0.77848,0.67636", help="attack,live ends (train fit)")
    c.add_argument("--either", action="store_true",
                   help="score the larger of the absolute and the ratio's evidence, not the ratio alone")
    c.add_argument("--eyes", action="store_true", help="the discs over the eyes' ratio in eye_dots' place")
    j = sub.add_parser("injector", help="each pair read again with the patch's depth moved (an injector's)")
    j.add_argument("out", type=Path)
    j.add_argument("specs", nargs="+", help="split:species:index")
    j.add_argument("--offsets-mm", default="-20,-8,-3,3,8,20",
                   help="depth offsets on the patch, millimetres, comma-separated")
    j.add_argument("--jitter-mm", default="", help="per-pixel depth jitter amplitudes, millimetres")
    j.add_argument("--frames", type=int, default=32)
    k = sub.add_parser("injector-report")
    k.add_argument("out", type=Path)
    k.add_argument("--max-unmatched", type=float, required=True, help="the gate on the pattern's fit")
    k.add_argument("--attack-end", type=float, default=0.77848)
    c.add_argument("--max-unmatched", type=float, default=math.inf,
                   help="the ratio scored only where projector_unmatched is at most this (default: no gate)")
    f = sub.add_parser("ratio-fit", help="the ratio's ramp and the gate on the pattern's fit, from train records")
    f.add_argument("records", nargs="+", type=Path)
    f.add_argument("--eyes", action="store_true", help="the discs over the eyes' ratio against the printed eyes")
    e = sub.add_parser("rerun", help="stored records' presentations run again on this judge (new cues)")
    e.add_argument("out", type=Path)
    e.add_argument("sources", nargs="+", type=Path)
    e.add_argument("--eye-refused", action="store_true", help="every live one the eye region refused")
    e.add_argument("--sample", type=int, default=0, help="other lives drawn at random")
    e.add_argument("--species", default="", help="attack species, comma-separated")
    e.add_argument("--per-species", type=int, default=3)
    e.add_argument("--seed", type=int, default=32)
    e.add_argument("--frames", type=int, default=32)
    a = ap.parse_args(argv)
    if a.cmd == "rerun":
        rerun(a.out, a.sources, eyes_refused=a.eye_refused, sample=a.sample,
              species=tuple(x for x in a.species.split(",") if x), per_species=a.per_species, seed=a.seed,
              frames=a.frames)
        return
    if a.cmd == "ratio-fit":
        ratio_fit(a.records, eyes=a.eyes)
        return
    if a.cmd == "injector":
        offsets = tuple(float(x) / 1000.0 for x in a.offsets_mm.split(",") if x.strip())
        jitters = tuple(float(x) / 1000.0 for x in a.jitter_mm.split(",") if x.strip())
        injector(a.out, a.specs, offsets=offsets, jitters=jitters, frames=a.frames)
        return
    if a.cmd == "injector-report":
        injector_report(a.out, a.max_unmatched, a.attack_end)
        return
    if a.cmd == "ratio-scored":
        attack, live = (float(x) for x in a.ramp.split(","))
        ratio_scored(a.records, attack, live, either=a.either, max_unmatched=a.max_unmatched, eyes=a.eyes)
        return
    if a.cmd == "run":
        jitter = tuple(float(x) for x in a.jitter.split(",") if x.strip())
        sets = dict(kv.split("=", 1) for kv in a.set)
        seeds = tuple(int(x) for x in a.seeds.split(",") if x.strip())
        run(a.out, a.specs, jitter=jitter, sets=sets, offset=a.offset, frames=a.frames, seeds=seeds)
    else:
        report(a.out)


if __name__ == "__main__":
    main(sys.argv[1:])
