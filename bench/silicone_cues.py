"""Candidate cues for silicone masks (issue 14), measured before anything is built
(docs/liveness.md, *Silicone masks: candidate cues measured*).

Each presentation runs as ``pad-eval`` runs it (``hil.padeval``: the camera's dot reference, the
quality phase, the presentation's nonce, the 32-frameset challenge window, the committed
thresholds), and the window's aligned framesets and face observations are then measured again for
the candidates below. Rows hold the judge's outcome and a few of its cue summaries, and each
candidate's window summary: numbers only, no frames, no landmarks, no face data.

Candidates (per frame with a face, then the median over the window's frames that carry them):

- ``ring_*``: the eye hole's depth step (:func:`ring_steps`). Median depth on a small disc at each
  pupil (radius 0.06 IPD: inside any mask's eye hole) minus the median depth on an annulus around it
  (0.14-0.20 IPD, ``ring_in``; 0.20-0.28 IPD, ``ring_out``), in mm; ``ring_up`` / ``ring_down`` only
  the annulus's part above / below the pupil (|dy| > |dx|: the skin over and under the eye);
  ``ring_mean`` as ``ring_in`` with 10-90 % trimmed means (depth is quantised in units and medians
  tie), ``ring_lid`` trimmed means on 0.10-0.16 IPD above and below the pupil only, where a mask's
  material lies wholly outside its hole. A silicone mask's eye hole puts the wearer's eye a mask
  thickness behind the material around it; a face's lids lie on the eyeball.
- ``eye_recess_mm``: the judge's own (eyes behind the nose bridge), for comparison.
- ``lower_nonrigid``: the lower face's departure from the upper face's rigid motion: the
  similarity transform fitted (least squares) to upper-face landmarks between each frame and the
  window's first, applied to the lips' and jaw's landmarks; the 90th percentile over frames of their
  median residual, per IPD. ``upper_nonrigid`` the same on held-out upper-face landmarks (the
  jitter floor), ``lower_over_upper`` their ratio.
- ``mouth_depth_p2p``: the mouth's depth relative to the cheeks (median over a disc at the lips
  minus the median over the cheek discs, mm), its 90th minus 10th percentile over the window;
  ``brow_depth_p2p`` the same for the forehead (a control with no jaw in it).
- ``nir_over_colour``: the IR level on the skin patches (the judge's ``ir_face_level``, distance
  compensated) over the colour image's luminance on the same patches: not normalised for the
  projector's power, the IR exposure or ambient NIR (reported, not a cue on its own).

``python -m bench.silicone_cues run SPLIT SPECIES FIRST COUNT OUT.jsonl`` appends one row per
presentation (resumable: keys already in OUT are skipped); ``python -m bench.silicone_cues summary
FILE...`` prints each candidate's distribution per split and species, and for each the live faces on
the masks' side of the most live-like silicone mask (with the exact one-sided 95 % bound) and the
masks past the most mask-like live face (:func:`separation`). The figures and what they decided
(nothing separates; nothing built) are in docs/liveness.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.stats import beta

import drivers
from agent.liveness.dotref import DotReference
from agent.liveness.features import IPD_MEAN_M, SKIN_PATCHES, face_roi
from agent.liveness.fusion import load_thresholds
from agent.liveness.judge import Judge, judge_pool
from agent.quality import QualityGate
from agent.quality.metrics import discs_mask
from agent.session.offline import capture
from drivers.errors import CaptureAgentError
from hil.pad_enrolment import dot_reference_for
from hil.pad_presentations import Presentation, presentation_nonce, presentation_uri

FRAMES = 32
# MediaPipe face-mesh indices. Upper face: forehead, brows, eye corners, bridge and nose (what a
# full-head mask moves only with the head). Lower face: lips and jaw.
UPPER = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 33, 133, 362, 263, 70, 63, 105, 66, 107, 336, 296, 334,
         293, 300, 108, 337, 69, 299, 50, 280, 123, 352)
LOWER = (0, 13, 14, 17, 37, 267, 84, 314, 61, 291, 78, 308, 152, 148, 377, 176, 400, 149, 378)
CONTROL = (67, 297, 109, 338, 104, 333, 116, 345)      # upper face, left out of the fit: the jitter floor
LIPS = (13, 14, 0, 17)
CHEEKS = (50, 280, 205, 425)
FOREHEAD = (151, 9, 108, 337)

RINGS = ("ring_in", "ring_out", "ring_up", "ring_down", "ring_mean", "ring_lid")
CANDIDATES = (*RINGS, "eye_recess_mm", "lower_nonrigid", "upper_nonrigid", "lower_over_upper", "mouth_depth_p2p",
              "brow_depth_p2p", "nir_over_colour")


def _median_depth(roi: Any, mask: np.ndarray) -> float:
    sel = mask & roi.valid
    return float(np.median(roi.depth_m[sel]) * 1000) if sel.sum() >= 4 else float("nan")


def _depth_at(depth_m: np.ndarray, valid: np.ndarray, mask: np.ndarray, *, trimmed: bool) -> float:
    """The depth (mm) of ``mask``'s pixels with depth: their median, or (``trimmed``) the mean of
    those between their 10th and 90th percentiles, finer than a median of depth quantised in units
    and as robust to a few stray pixels. NaN with fewer than 4 pixels."""
    sel = mask & valid
    if sel.sum() < 4:
        return float("nan")
    z = depth_m[sel].astype(np.float64)
    if not trimmed:
        return float(np.median(z) * 1000)
    lo, hi = np.percentile(z, [10, 90])
    return float(z[(z >= lo) & (z <= hi)].mean() * 1000)


def ring_steps(depth_m: np.ndarray, valid: np.ndarray, pupils: np.ndarray, ipd: float) -> dict[str, float]:
    """The eye holes' depth steps in one frame (mm; the mean over both eyes, NaN if either has too
    few pixels with depth): a small disc at each pupil (radius 0.06 IPD) minus an annulus around it.
    ``pupils`` in ``depth_m``'s pixels, ``ipd`` in pixels."""
    h, w = depth_m.shape
    yy, xx = np.mgrid[0:h, 0:w]
    out: dict[str, list[float]] = {k: [] for k in RINGS}
    for px, py in pupils:
        dx, dy = xx - px, yy - py
        r = np.hypot(dx, dy) / ipd
        vertical = np.abs(dy) > np.abs(dx)
        eye = _depth_at(depth_m, valid, r < 0.06, trimmed=False)
        eye_mean = _depth_at(depth_m, valid, r < 0.06, trimmed=True)
        out["ring_mean"].append(eye_mean - _depth_at(depth_m, valid, (r >= 0.14) & (r < 0.20), trimmed=True))
        out["ring_lid"].append(eye_mean - _depth_at(depth_m, valid, (r >= 0.10) & (r < 0.16) & vertical,
                                                    trimmed=True))
        for name, m in (("ring_in", (r >= 0.14) & (r < 0.20)), ("ring_out", (r >= 0.20) & (r < 0.28)),
                        ("ring_up", (r >= 0.14) & (r < 0.24) & vertical & (dy < 0)),
                        ("ring_down", (r >= 0.14) & (r < 0.24) & vertical & (dy > 0))):
            out[name].append(eye - _depth_at(depth_m, valid, m, trimmed=False))
    return {k: float(np.mean(v)) if v and all(np.isfinite(v)) else float("nan") for k, v in out.items()}


def eye_rings(aligned: Any, face: Any) -> dict[str, float]:
    """:func:`ring_steps` in one aligned frameset, in the judge's face neighbourhood."""
    roi = face_roi(aligned, face)
    return ring_steps(roi.depth_m, roi.valid, roi.local(np.array(face.mesh.pupils, dtype=np.float64)),
                      face.mesh.ipd_px)


def region_depths(aligned: Any, face: Any) -> tuple[float, float, float]:
    roi = face_roi(aligned, face)
    lm = roi.local(face.mesh.landmarks[:, :2])
    ipd = face.mesh.ipd_px
    return tuple(_median_depth(roi, discs_mask(roi.shape, lm[list(idx)], rad * ipd))  # type: ignore[return-value]
                 for idx, rad in ((LIPS, 0.08), (CHEEKS, 0.08), (FOREHEAD, 0.08)))


def skin_luma(aligned: Any, face: Any) -> float:
    lm = face.mesh.landmarks[:, :2]
    px = aligned.color.pixels
    mask = discs_mask(px.shape[:2], lm[list(SKIN_PATCHES)], 0.1 * face.mesh.ipd_px)
    grey = cv2.cvtColor(np.ascontiguousarray(px), cv2.COLOR_RGB2GRAY)
    return float(grey[mask].mean()) if mask.any() else float("nan")


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    m, _ = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.LMEDS)
    return m


def lower_motion(landmarks: list[np.ndarray], ipd: float) -> tuple[float, float]:
    """(lower, control) non-rigid motion per IPD: the 90th percentile over frames of the median
    residual of those landmarks after the upper face's similarity transform from the first frame."""
    ref = landmarks[0]
    low, ctl = [], []
    for cur in landmarks[1:]:
        m = _similarity(ref[list(UPPER)], cur[list(UPPER)])
        if m is None:
            continue
        pred = ref @ m[:, :2].T + m[:, 2]
        res = np.linalg.norm(cur - pred, axis=1)
        low.append(float(np.median(res[list(LOWER)])) / ipd)
        ctl.append(float(np.median(res[list(CONTROL)])) / ipd)
    if len(low) < 3:
        return float("nan"), float("nan")
    return float(np.percentile(low, 90)), float(np.percentile(ctl, 90))


def _nanmedian(v: list[float]) -> float:
    a = np.array(v, dtype=np.float64)
    return float(np.nanmedian(a)) if np.isfinite(a).any() else float("nan")


def _p2p(v: list[float]) -> float:
    a = np.array([x for x in v if np.isfinite(x)])
    return float(np.percentile(a, 90) - np.percentile(a, 10)) if a.size >= 5 else float("nan")


def measure(p: Presentation, gate: QualityGate) -> dict[str, Any]:
    row: dict[str, Any] = {"key": p.key, "split": p.split, "species": p.species, "index": p.index, "uri": p.uri}
    ref: DotReference = dot_reference_for(p.uri)
    try:
        with drivers.open(p.uri) as cam:
            cap = capture(cam, FRAMES, presentation_nonce(p), gate, require_quality=True)
    except CaptureAgentError as exc:
        return {**row, "outcome": "error", "error": exc.code}
    if not cap.quality.complete:
        return {**row, "outcome": "not_acquired", "reason": cap.quality.reason}
    j = Judge(gate, load_thresholds(challenged=True), challenge=cap.challenge, notes=cap.notes, pool=judge_pool(),
              dot_reference=ref)
    for fs in cap.sets:
        j.add(fs)
    res = j.finish()
    v = res.verdict
    row.update(outcome="accepted" if v.verdict == "live" else "rejected", verdict=v.verdict, score=v.score,
               camera=(p.uri.split("camera=")[1].split("&")[0] if "camera=" in p.uri else ""),
               cues={k: (v.cues or {}).get(k) for k in ("eye_recess_mm", "nonrigid_peak", "blink_drop", "motion_snr",
                                                        "ir_face_level", "projector_sharpness")})
    per: dict[str, list[float]] = {k: [] for k in (*RINGS, "mouth", "brow")}
    for k in j.cue_frames:
        a, face = j.aligned[k], j.faces[k]
        if face is None:
            continue
        for name, val in eye_rings(a, face).items():
            per[name].append(val)
        lips, cheeks, forehead = region_depths(a, face)
        per["mouth"].append(lips - cheeks)
        per["brow"].append(forehead - cheeks)
    luma = [skin_luma(j.aligned[k], j.faces[k]) for k in j.cue_frames if j.faces[k] is not None]
    ipd = float(np.median([c.ipd_px for c in j.cues])) if j.cues else float("nan")
    low, ctl = lower_motion([c.landmarks for c in j.cues], ipd) if len(j.cues) >= 4 else (float("nan"),) * 2
    level = (v.cues or {}).get("ir_face_level")
    cand = {name: _nanmedian(per[name]) for name in RINGS}
    cand.update(eye_recess_mm=float((v.cues or {}).get("eye_recess_mm", float("nan"))),
                lower_nonrigid=low, upper_nonrigid=ctl,
                lower_over_upper=low / ctl if ctl and ctl > 0 else float("nan"),
                mouth_depth_p2p=_p2p(per["mouth"]), brow_depth_p2p=_p2p(per["brow"]),
                nir_over_colour=(level / _nanmedian(luma)) if level is not None and np.isfinite(_nanmedian(luma))
                else float("nan"),
                ipd_mm_px=IPD_MEAN_M * 1000 / ipd if ipd == ipd else float("nan"))
    row["candidates"] = {k: (None if v is None or not np.isfinite(v) else round(float(v), 5)) for k, v in cand.items()}
    j.close()
    return row


def run(split: str, species: str, first: int, count: int, out: Path) -> None:
    done = set()
    if out.exists():
        done = {json.loads(line)["key"] for line in out.read_text().splitlines() if line.strip()}
    gate = QualityGate()
    for i in range(first, first + count):
        kind = "bona_fide" if species == "live" else "attack"
        p = Presentation(kind, species, split, i, presentation_uri(split, species, i))
        if p.key in done:
            continue
        row = measure(p, gate)
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        c = row.get("candidates") or {}
        print(p.key, row["outcome"], " ".join(f"{k}={c.get(k)}" for k in CANDIDATES), flush=True)


def upper95(k: int, n: int) -> float:
    return float(beta.ppf(0.95, k + 1, n - k)) if k < n else 1.0


def separation(live: np.ndarray, attack: np.ndarray) -> dict[str, Any]:
    """How a candidate separates live faces from silicone masks: which side is live-like (the live
    median's), the most live-like mask, how many live faces lie at or beyond it, and a threshold
    just past the live faces' most attack-like value, with the masks it would stop and the live
    faces it would refuse there (none on these live faces, by construction)."""
    up = bool(np.median(live) > np.median(attack))                  # live-like values are high
    worst = float(attack.max() if up else attack.min())
    cost = int((live <= worst).sum() if up else (live >= worst).sum())
    edge = float(live.min() if up else live.max())                   # the most attack-like live face
    stopped = int((attack < edge).sum() if up else (attack > edge).sum())
    return {"live_high": up, "worst_attack": worst, "live_beyond_worst": cost, "live_edge": edge,
            "stopped_past_live_edge": stopped, "n_live": int(live.size), "n_attack": int(attack.size)}


def summary(paths: list[Path]) -> None:
    rows = [json.loads(line) for p in paths for line in p.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("candidates")]
    for split in sorted({r["split"] for r in rows}):
        sub = [r for r in rows if r["split"] == split]
        live = [r for r in sub if r["species"] == "live"]
        sil = [r for r in sub if r["species"] == "silicone_mask"]
        print(f"== {split}: {len(live)} live, {len(sil)} silicone masks judged")
        for name in CANDIDATES:
            lv = np.array([r["candidates"][name] for r in live if r["candidates"].get(name) is not None])
            sv = np.array([r["candidates"][name] for r in sil if r["candidates"].get(name) is not None])
            if lv.size == 0 or sv.size == 0:
                continue
            q = np.percentile(lv, [0, 1, 10, 50, 90, 99, 100])
            print(f"  {name:17s} live min/p1/p10/med/p90/p99/max " + " ".join(f"{x:8.4f}" for x in q))
            print(f"  {'':17s} silicone sorted " + " ".join(f"{x:.4f}" for x in np.sort(sv)))
            s = separation(lv, sv)
            k = s["live_beyond_worst"]
            print(f"  {'':17s} live at or beyond the most live-like silicone ({s['worst_attack']:.4f}): "
                  f"{k}/{s['n_live']} (upper 95 % {upper95(k, s['n_live']):.3f}); "
                  f"past the live edge ({s['live_edge']:.4f}): silicone {s['stopped_past_live_edge']}/{s['n_attack']}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["run"] and len(argv) == 6:
        run(argv[1], argv[2], int(argv[3]), int(argv[4]), Path(argv[5]))
        return 0
    if argv[:1] == ["summary"] and len(argv) >= 2:
        summary([Path(a) for a in argv[1:]])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
